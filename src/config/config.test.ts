import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from './index.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  it('has defaults that serve ./data/slides on port 8080', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 8080, dicomwebUrl: undefined, dicomDir: './data/slides', tileCacheBytes: 512 * 1024 ** 2, upstreamAuth: { kind: 'none' } });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads a PACS with basic auth, a size with units and extra headers', () => {
    const config = loadConfig({
      DICOMWEB_URL: 'https://pacs.example/dicom-web/',
      DICOMWEB_USERNAME: 'gw',
      DICOMWEB_PASSWORD: 's3cret',
      TILE_CACHE_BYTES: '2GiB',
      DICOMWEB_HEADERS: '{"x-api-key":"k"}',
    });
    expect(config.dicomwebUrl).toBe('https://pacs.example/dicom-web');
    expect(config.upstreamAuth).toEqual({ kind: 'basic', username: 'gw', password: 's3cret' });
    expect(config.tileCacheBytes).toBe(2 * 1024 ** 3);
    expect(config.upstreamHeaders).toEqual({ 'x-api-key': 'k' });
    expect(JSON.stringify(describeConfig(config))).not.toContain('s3cret');
  });

  it('hides patient data unless told to show it, and accepts only true or false', () => {
    expect(loadConfig({}).showPatientData).toBe(false);
    expect(loadConfig({ GATEWAY_SHOW_PATIENT_DATA: 'true' }).showPatientData).toBe(true);
    expect(loadConfig({ GATEWAY_SHOW_PATIENT_DATA: '0' }).showPatientData).toBe(false);
    expect(problemsOf({ GATEWAY_SHOW_PATIENT_DATA: 'yes please' })).toEqual(['GATEWAY_SHOW_PATIENT_DATA: must be true or false']);
  });

  it('reads a bearer token from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'token'), 'tok\n');
    expect(loadConfig({ DICOMWEB_URL: 'http://p/dicom-web', DICOMWEB_TOKEN_FILE: join(dir, 'token') }).upstreamAuth).toEqual({ kind: 'bearer', token: 'tok' });
  });

  it('reports every problem at once, naming each setting', () => {
    const problems = problemsOf({
      PORT: '80a',
      DICOMWEB_URL: 'ftp://x',
      TILE_CACHE_BYTES: 'lots',
      DICOMWEB_TIMEOUT: '5',
      DICOMWEB_AUTH: 'bearer',
      DICOMWEB_HEADERS: 'x-key: 1',
    });
    expect(problems.map((p) => p.split(':')[0])).toEqual(
      expect.arrayContaining(['PORT', 'DICOMWEB_URL', 'TILE_CACHE_BYTES', 'DICOMWEB_TIMEOUT', 'DICOMWEB_HEADERS']),
    );
    expect(problems.join('\n')).toContain('unknown setting');
  });

  it('refuses credentials inside the URL and incomplete auth', () => {
    expect(problemsOf({ DICOMWEB_URL: 'http://u:p@pacs/dicom-web' }).join()).toContain('not in the URL');
    expect(problemsOf({ DICOMWEB_URL: 'http://pacs/dicom-web', DICOMWEB_AUTH: 'basic' }).join()).toContain('DICOMWEB_USERNAME');
  });

  it('ignores unrelated environment variables', () => {
    expect(problemsOf({ PATH: '/usr/bin', HOME: '/root', npm_config_foo: '1' })).toEqual([]);
  });

  it('reads the embedding settings: providers in order, cpu by default, typos named', () => {
    const config = loadConfig({ ONNX_EXECUTION_PROVIDERS: 'TensorRT, cuda', MODELS_DIR: '/opt/models', EMBED_CONCURRENT_SLIDES: '3' });
    expect(config.onnxExecutionProviders).toEqual(['tensorrt', 'cuda']);
    expect(config.modelsDir).toBe('/opt/models');
    expect(config.embedConcurrentSlides).toBe(3);
    expect(loadConfig({}).onnxExecutionProviders).toEqual(['cpu']);
    expect(problemsOf({ ONNX_EXECUTION_PROVIDERS: 'cuda,rocm' })[0]).toMatch(/^ONNX_EXECUTION_PROVIDERS/);
    expect(problemsOf({ EMBED_FRAMES_PER_REQUST: '10' })[0]).toMatch(/^EMBED_FRAMES_PER_REQUST: unknown setting/);
  });

  it('reads the PACS retry and circuit breaker settings, the deadline twice the timeout by default', () => {
    expect(loadConfig({})).toMatchObject({ upstreamRetries: 2, upstreamDeadlineMs: 60_000, breakerFailures: 10, breakerCooldownMs: 5000 });
    expect(loadConfig({ DICOMWEB_TIMEOUT_MS: '1000' }).upstreamDeadlineMs).toBe(2000);
    const config = loadConfig({ DICOMWEB_RETRIES: '0', DICOMWEB_DEADLINE_MS: '4500', DICOMWEB_BREAKER_FAILURES: '0', DICOMWEB_BREAKER_COOLDOWN_MS: '250' });
    expect(config).toMatchObject({ upstreamRetries: 0, upstreamDeadlineMs: 4500, breakerFailures: 0, breakerCooldownMs: 250 });
    expect(problemsOf({ DICOMWEB_RETRIES: '11', DICOMWEB_BREAKER_COOLDOWN_MS: 'soon' }).map((p) => p.split(':')[0])).toEqual(['DICOMWEB_RETRIES', 'DICOMWEB_BREAKER_COOLDOWN_MS']);
  });
});
