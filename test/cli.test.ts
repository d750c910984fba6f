/**
 * The `wsi-gateway` command as a script sees it: the real bin file in a child process, its exit codes
 * (0 ok, 1 work failed, 2 usage or configuration, 130 interrupted) and where its messages go.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = resolve(import.meta.dirname, '..');
const bin = join(repoRoot, 'bin/wsi-gateway.mjs');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the bin with only PATH and `env` set (no stray settings from the test's own environment). */
function runBin(args: string[], env: Record<string, string> = {}, onStart?: (child: ChildProcess, stdout: () => string) => void): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  onStart?.(child, () => stdout);
  return new Promise((done) => child.on('close', (code, signal) => done({ code, signal, stdout, stderr })));
}

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

describe('wsi-gateway command line', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('--help lists every command and the exit codes, on stdout, exit 0', async () => {
    const run = await runBin(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['serve', 'embed', 'import', 'bench']) expect(run.stdout).toMatch(new RegExp(`^\\s+${command}\\s`, 'm'));
    expect(run.stdout).toMatch(/130\s+interrupted/);
  });

  it('--version prints the package version', async () => {
    const run = await runBin(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each(['serve', 'embed', 'import', 'bench'])('%s --help exits 0 with its usage', async (command) => {
    const run = await runBin([command, '--help']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/usage/i);
  });

  it('an unknown command exits 2 with the usage on stderr', async () => {
    const run = await runBin(['frobnicate']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain("Unknown command 'frobnicate'");
    expect(run.stderr).toContain('Usage: wsi-gateway');
  });

  it('no command at all exits 2', async () => {
    expect((await runBin([])).code).toBe(2);
  });

  it('serve with an invalid setting exits 2 naming the variable', async () => {
    const run = await runBin(['serve'], { PORT: 'abc' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/PORT: /);
  });

  it('serve refuses unknown flags, flags for secrets and bad values as usage errors (exit 2)', async () => {
    const cases: Array<[string[], string]> = [
      [['--prot', '9000'], '--prot: unknown setting'],
      [['--dicomweb-password', 'hunter2'], 'secrets are read only from the environment'],
      [['--port'], '--port: needs a value'],
      [['9000'], '9000: not a setting'],
      [['--port', 'abc'], 'PORT: '],
    ];
    for (const [args, message] of cases) {
      const run = await runBin(['serve', ...args]);
      expect([args.join(' '), run.code, run.stderr.includes(message)]).toEqual([args.join(' '), 2, true]);
      expect(run.stderr).not.toContain('hunter2');
    }
  });

  it('serve rejects a misspelt setting of ours (exit 2)', async () => {
    const run = await runBin(['serve'], { DICOMWEB_ULR: 'http://pacs/dicom-web' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('DICOMWEB_ULR: unknown setting');
  });

  it('embed with an unknown flag exits 2', async () => {
    const run = await runBin(['embed', '--no-such-flag', '1.2/3.4'], { DICOM_DIR: work });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--no-such-flag');
  });

  it('embed of a slide the folder does not have exits 1: the work failed, the command was fine', async () => {
    const empty = join(work, 'empty');
    await mkdir(empty);
    const run = await runBin(['embed', '1.2.3/4.5.6'], { DICOM_DIR: empty, EMBED_DIR: join(work, 'embeddings') });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/1\.2\.3\/4\.5\.6\tfailed\tSERIES_NOT_FOUND/);
  });

  it('embed of something that is not STUDY/SERIES exits 2', async () => {
    const run = await runBin(['embed', 'not-a-slide'], { DICOM_DIR: work });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('STUDY_UID/SERIES_UID');
  });

  it('bench with an unknown benchmark exits 2 listing the known ones', async () => {
    const run = await runBin(['bench', 'nope']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("Unknown benchmark 'nope'");
    expect(run.stderr).toContain('tiles|embed|kmeans|client');
  });

  it('serve listens, answers /healthz, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    let health: number | undefined;
    // Port and host as flags (they win over the environment's PORT); the rest from the environment.
    const run = await runBin(['serve', '--port', String(port), '--host=127.0.0.1'], { PORT: '1', LOG_LEVEL: 'info', GATEWAY_DEMO: 'false', DICOM_DIR: join(work, 'served'), EMBED_DIR: join(work, 'served-embeddings') }, (child, stdout) => {
      // The start-up log line says when it listens; then one request, then the signal.
      const poll = setInterval(() => {
        if (!stdout().includes('gateway listening')) return;
        clearInterval(poll);
        void fetch(`http://127.0.0.1:${port}/healthz`)
          .then((response) => (health = response.status))
          .finally(() => child.kill('SIGTERM'));
      }, 50);
      child.on('close', () => clearInterval(poll));
    });
    expect(run.stderr).toBe('');
    expect(health).toBe(200);
    expect(run.signal).toBeNull();
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('shutting down');
  });
});
