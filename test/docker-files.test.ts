/**
 * docker/: no Docker engine runs here, so the files are checked against the repository instead: the
 * compose file's services, volumes and Orthanc settings, the gateway settings it and the images pass
 * (through the real config loader), and each Dockerfile's sources, entry point, port, health check and
 * user. (hadolint has no Debian package; run it by hand where it is installed.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config/index.js';

const repoRoot = resolve(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

interface Instruction {
  keyword: string;
  args: string;
}

/** A Dockerfile's instructions, continuation lines joined, comments and the parser directive dropped. */
function parseDockerfile(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(line)!;
      return { keyword: keyword!.toUpperCase(), args: args! };
    });
}

/** ENV instructions as a record (`ENV A=1 B=2` form, the one these files use). */
function envOf(instructions: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of instructions.filter((i) => i.keyword === 'ENV')) {
    for (const [, key, value] of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[key!] = value!.replace(/^"|"$/g, '');
  }
  return env;
}

/** Compose's `${NAME:-default}` as the engine would substitute it with NAME unset. */
function interpolateDefaults(value: string): string {
  return value.replace(/\$\{\w+:-([^}]*)\}/g, '$1');
}

const dockerignore = read('.dockerignore')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));

const OUR_PREFIXES = ['DICOMWEB_', 'DICOM_', 'TILE_', 'GATEWAY_', 'EMBED_', 'ONNX_', 'MODELS_', 'ANALYSIS_'];
/** A gateway setting by its name: ours by prefix (loadConfig rejects unknown ones) or one of the plain ones. */
const isGatewaySetting = (key: string) => OUR_PREFIXES.some((p) => key.startsWith(p)) || ['PORT', 'HOST', 'LOG_LEVEL'].includes(key);

for (const file of ['docker/Dockerfile', 'docker/Dockerfile.gpu']) {
  describe(file, () => {
    const instructions = parseDockerfile(read(file));
    const all = (keyword: string) => instructions.filter((i) => i.keyword === keyword);

    it('copies only sources that exist and that .dockerignore lets through', () => {
      const sources = all('COPY')
        .filter((i) => !i.args.startsWith('--from='))
        .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
      expect(sources.length).toBeGreaterThan(0);
      for (const source of sources) {
        expect(existsSync(join(repoRoot, source)), `${source} exists`).toBe(true);
        expect(dockerignore, `${source} is not ignored`).not.toContain(source);
      }
    });

    it('runs the built dist/wsi-gateway.mjs serve, and that command line works', () => {
      const entrypoint = JSON.parse(all('ENTRYPOINT').at(-1)!.args) as string[];
      const cmd = JSON.parse(all('CMD').at(-1)!.args) as string[];
      expect(entrypoint).toEqual(['node', '--enable-source-maps', 'dist/wsi-gateway.mjs']);
      expect(cmd).toEqual(['serve']);
      expect(instructions.some((i) => i.keyword === 'RUN' && i.args.includes('scripts/build-server.mjs'))).toBe(true);
      const build = spawnSync(process.execPath, ['scripts/build-server.mjs'], { cwd: repoRoot, encoding: 'utf8' });
      expect(build.status, build.stderr).toBe(0);
      const run = spawnSync(process.execPath, [...entrypoint.slice(1), ...cmd, '--help'], { cwd: repoRoot, env: { PATH: process.env['PATH'] ?? '' }, encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
    });

    it('sets only settings the config loader accepts, and exposes the port it will listen on', () => {
      const env = envOf(instructions);
      const gatewayEnv = Object.fromEntries(Object.entries(env).filter(([key]) => key !== 'NODE_ENV'));
      for (const key of Object.keys(gatewayEnv)) expect(isGatewaySetting(key), key).toBe(true);
      const config = loadConfig(gatewayEnv);
      expect(all('EXPOSE').map((i) => i.args)).toEqual([String(config.port)]);
      expect(config.port).toBe(loadConfig({}).port);
      expect(config.modelsDir).toBe('/models');
      for (const dir of [config.dicomDir, config.embedDir]) expect(dir.startsWith('/data/')).toBe(true);
      expect(all('VOLUME').map((i) => JSON.parse(i.args) as string[])).toEqual([['/data', '/models']]);
    });

    it('checks health at /healthz and runs as a user other than root', () => {
      expect(all('HEALTHCHECK')).toHaveLength(1);
      expect(all('HEALTHCHECK')[0]!.args).toContain('/healthz');
      const user = all('USER').at(-1)?.args;
      expect(user).toBeDefined();
      expect(['root', '0', '0:0']).not.toContain(user);
    });

    it('prunes dev dependencies, so what the app needs at run time is a dependency', () => {
      expect(instructions.some((i) => i.keyword === 'RUN' && i.args.includes('npm prune --omit=dev'))).toBe(true);
      const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
      // The decode workers and the CLI's TypeScript entries load through tsx; the GPU image builds the
      // server with esbuild after pruning.
      expect(Object.keys(pkg.dependencies)).toEqual(expect.arrayContaining(['tsx', 'esbuild']));
    });
  });
}

describe('docker/Dockerfile.gpu', () => {
  const instructions = parseDockerfile(read('docker/Dockerfile.gpu'));

  it('starts from a CUDA 12 + cuDNN 9 runtime image', () => {
    const from = instructions.find((i) => i.keyword === 'FROM')!.args;
    // From CUDA 12.4 NVIDIA's tags say `cudnn` for cuDNN 9 (12.3 said `cudnn9`).
    expect(from).toMatch(/^nvidia\/cuda:12\.(\d+)\.\d+-cudnn9?-runtime-ubuntu\d\d\.04$/);
    expect(Number(/^nvidia\/cuda:12\.(\d+)/.exec(from)![1])).toBeGreaterThanOrEqual(4);
  });

  it("installs onnxruntime-node's CUDA 12 provider with a switch the installed version knows", () => {
    const command = 'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install';
    expect(instructions.some((i) => i.keyword === 'RUN' && i.args.includes(command))).toBe(true);
    const require = createRequire(join(repoRoot, 'package.json'));
    const metadata = require('onnxruntime-node/script/install-metadata.js') as { requirements: Record<string, string[]> };
    expect(metadata.requirements['linux/x64']).toContain('cuda12');
    expect(envOf(instructions)['ONNX_EXECUTION_PROVIDERS']).toBe('cuda,cpu');
  });
});

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  volumes?: string[];
  profiles?: string[];
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver?: string; capabilities?: string[] }> } } };
}

describe('docker/compose.yaml', () => {
  const compose = parse(read('docker/compose.yaml')) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
  const { orthanc, gateway, 'gateway-gpu': gatewayGpu } = compose.services;

  it('has Orthanc, the gateway, and the GPU gateway behind the gpu profile', () => {
    expect(orthanc?.image).toMatch(/^orthancteam\/orthanc:/);
    expect(gateway?.profiles).toBeUndefined();
    expect(gatewayGpu?.profiles).toEqual(['gpu']);
    const devices = gatewayGpu?.deploy?.resources?.reservations?.devices ?? [];
    expect(devices.some((d) => d.driver === 'nvidia' && d.capabilities?.includes('gpu'))).toBe(true);
  });

  it('builds the gateways from the Dockerfiles in this folder', () => {
    expect(gateway?.build?.dockerfile).toBe('docker/Dockerfile');
    expect(gatewayGpu?.build?.dockerfile).toBe('docker/Dockerfile.gpu');
    for (const service of [gateway, gatewayGpu]) {
      const context = resolve(repoRoot, 'docker', service!.build!.context);
      expect(existsSync(join(context, service!.build!.dockerfile))).toBe(true);
    }
  });

  it('gives the gateways only settings the config loader accepts, pointing at the Orthanc service', () => {
    for (const service of [gateway, gatewayGpu]) {
      const env = Object.fromEntries(Object.entries(service!.environment!).map(([k, v]) => [k, interpolateDefaults(String(v))]));
      for (const key of Object.keys(env)) expect(isGatewaySetting(key), key).toBe(true);
      const config = loadConfig(env);
      const url = new URL(config.dicomwebUrl!);
      expect(url.hostname).toBe('orthanc');
      expect(`${url.pathname}/`).toBe(orthanc!.environment!['ORTHANC__DICOM_WEB__ROOT']);
      // The gateway's credentials are a user Orthanc registers.
      expect(config.upstreamAuth.kind).toBe('basic');
      const users = JSON.parse(interpolateDefaults(orthanc!.environment!['ORTHANC__REGISTERED_USERS']!)) as Record<string, string>;
      if (config.upstreamAuth.kind === 'basic') expect(users[config.upstreamAuth.username]).toBe(config.upstreamAuth.password);
    }
  });

  it('enables DICOMweb in Orthanc with Full series and studies metadata', () => {
    const env = orthanc!.environment!;
    expect(env['DICOM_WEB_PLUGIN_ENABLED']).toBe('true');
    expect(env['ORTHANC__DICOM_WEB__ENABLE']).toBe('true');
    expect(env['ORTHANC__DICOM_WEB__SERIES_METADATA']).toBe('Full');
    expect(env['ORTHANC__DICOM_WEB__STUDIES_METADATA']).toBe('Full');
  });

  it('declares every named volume it mounts, and mounts the models and data folders the images use', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const mount of service.volumes ?? []) {
        const source = mount.split(':')[0]!;
        if (source.startsWith('.') || source.startsWith('/')) continue;
        expect(Object.keys(compose.volumes), `${name} mounts ${source}`).toContain(source);
      }
    }
    for (const service of [gateway, gatewayGpu]) {
      const targets = (service!.volumes ?? []).map((m) => m.split(':')[1]);
      expect(targets).toEqual(expect.arrayContaining(['/models', '/data']));
    }
  });
});
