/**
 * README's first command, `npm install && npm start`, with nothing configured: the gateway generates
 * the demo slide, lists it, serves its tiles, embeds it with the built-in model and clusters it. Run as
 * a user would: a child process (the viewer and server builds, then `node dist/wsi-gateway.mjs serve`,
 * which is what `npm start` runs), started from an empty directory that is not the repository, with no
 * environment but PORT. So the production build itself is tested here, end to end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));

interface Gateway {
  child: ChildProcess;
  baseUrl: string;
  log: () => string;
  exited: Promise<number | null>;
}

async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Starts the built gateway in `cwd` with only PORT set (and PATH/HOME, which any shell has). */
async function startGateway(cwd: string): Promise<Gateway> {
  const port = await findFreePort();
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? cwd, PORT: String(port) };
  const child = spawn(process.execPath, ['--enable-source-maps', join(repo, 'dist', 'wsi-gateway.mjs'), 'serve'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (output.includes('gateway listening')) resolve();
    };
    child.stdout!.on('data', check);
    void exited.then((code) => reject(new Error(`the gateway exited (${code}) before listening:\n${output}`)));
  });
  return { child, baseUrl: `http://127.0.0.1:${port}`, log: () => output, exited };
}

async function stop(gateway: Gateway): Promise<number | null> {
  gateway.child.kill('SIGTERM');
  return gateway.exited;
}

async function json<T>(response: Response): Promise<T> {
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return (await response.json()) as T;
}

interface SlideList {
  total: number;
  slides: Array<{ id: string; studyDescription?: string; levelCount: number; hasLabel: boolean; widthPx: number }>;
}

let cwd: string;
let gateway: Gateway | undefined;

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'first-run-'));
  // `npm start` builds the viewer and the server first (the prestart script).
  for (const script of ['build-viewer.mjs', 'build-server.mjs']) {
    const build = spawnSync(process.execPath, [join(repo, 'scripts', script)], { cwd: repo, encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
  }
});

afterAll(async () => {
  if (gateway && gateway.child.exitCode === null) gateway.child.kill('SIGKILL');
  await rm(cwd, { recursive: true, force: true });
});

describe('the first run, with nothing configured', () => {
  let slideId = '';

  it('generates the demo slide, then lists it', async () => {
    gateway = await startGateway(cwd);
    expect(gateway.log()).toContain('generating a synthetic demo slide');
    const list = await json<SlideList>(await fetch(`${gateway.baseUrl}/api/slides`));
    expect(list.total).toBe(1);
    expect(list.slides[0]).toMatchObject({ studyDescription: 'Demo slide', hasLabel: true, widthPx: 8192 });
    expect(list.slides[0]!.levelCount).toBeGreaterThanOrEqual(4);
    slideId = list.slides[0]!.id;
    // Relative to where it was started, as DICOM_DIR's default says.
    expect((await readdir(join(cwd, 'data', 'slides', 'demo'))).sort()).toContain('level-0.dcm');
  });

  it('serves its tiles, label and viewer', async () => {
    for (const path of [`/api/slides/${slideId}/tiles/0/10/10.jpg`, `/api/slides/${slideId}/tiles/3/0/0.jpg`, `/api/slides/${slideId}/label.jpg`]) {
      const response = await fetch(`${gateway!.baseUrl}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type'), path).toBe('image/jpeg');
      expect((await response.arrayBuffer()).byteLength, path).toBeGreaterThan(500);
    }
    const page = await fetch(`${gateway!.baseUrl}/`);
    expect(page.status).toBe(200);
  });

  it('embeds it with the built-in model and returns clusters', async () => {
    const base = gateway!.baseUrl;
    const job = await json<{ id: string }>(
      await fetch(`${base}/api/slides/${slideId}/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stain-texture' }) }),
    );
    let state = '';
    let progress: { embedded: number } = { embedded: 0 };
    while (state !== 'done' && state !== 'failed') {
      await new Promise((r) => setTimeout(r, 250));
      ({ state, progress } = await json<{ state: string; progress: { embedded: number } }>(await fetch(`${base}/api/jobs/${job.id}`)));
    }
    expect(state).toBe('done');
    expect(progress.embedded).toBeGreaterThan(100);
    const clusters = await json<{ clusters: Array<{ count: number }> }>(await fetch(`${base}/api/slides/${slideId}/clusters?k=4`));
    expect(clusters.clusters).toHaveLength(4);
    expect(clusters.clusters.reduce((n, c) => n + c.count, 0)).toBe(progress.embedded);
    expect(clusters.clusters.every((c) => c.count > 0)).toBe(true);
  }, 180_000);

  it('stops with exit code 0 on SIGTERM, and a second start serves the same slide without regenerating it', async () => {
    expect(await stop(gateway!)).toBe(0);
    gateway = await startGateway(cwd);
    expect(gateway.log()).not.toContain('generating a synthetic demo slide');
    const list = await json<SlideList>(await fetch(`${gateway.baseUrl}/api/slides`));
    expect(list.slides.map((s) => s.id)).toEqual([slideId]);
    expect(await stop(gateway)).toBe(0);
  });
});
