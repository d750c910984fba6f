/**
 * A cold pass with curl as the client: the same closed loop as {@link runPass} (a fixed number of
 * requests in flight, in list order, connections kept alive) run by libcurl's multi interface in C.
 * It spends about half the CPU per request of the Node client; on two cores shared by the client,
 * the server and Orthanc, that changes which target the spare CPU goes to, so bench/tiles reports the
 * cold passes with both clients.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runToEnd } from './children.js';
import type { PassResult } from './load.js';

/** Fetches every URL once with `curl --parallel`, `concurrency` at a time; the time includes starting curl. */
export async function runCurlPass(urls: readonly string[], { workDir, concurrency = 8 }: { workDir: string; concurrency?: number }): Promise<PassResult> {
  const configFile = join(workDir, 'curl-pass.cfg');
  await writeFile(configFile, urls.map((url) => `url = "${url}"\noutput = "/dev/null"\n`).join(''));
  const args = ['--silent', '--parallel', '--parallel-immediate', '--parallel-max', String(concurrency), '--write-out', '%{http_code} %{size_download} %{time_total}\\n', '--config', configFile];
  const started = performance.now();
  const { code, stdout, stderr } = await runToEnd('curl', args);
  const seconds = (performance.now() - started) / 1000;
  const lines = stdout.split('\n').filter((line) => line !== '');
  if (lines.length !== urls.length) throw new Error(`curl ${args.join(' ')} answered ${lines.length} of ${urls.length} transfers (exit ${code}):\n${stderr}`);
  let bytes = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const latenciesMs = lines.map((line) => {
    const [status, size, totalSeconds] = line.split(' ');
    bytes += Number(size);
    if (status !== '200') {
      failures++;
      firstFailure ??= `HTTP ${status} from curl`;
    }
    return Number(totalSeconds) * 1000;
  });
  latenciesMs.sort((a, b) => a - b);
  return { requests: urls.length, seconds, bytes, failures, firstFailure, latenciesMs };
}
