/**
 * Patient identifiers and secrets never reach the logs (issue 6). A gateway logging everything (trace)
 * into memory serves a slide whose PatientName and PatientID are set, through every kind of request a
 * user makes, including failed ones; then neither identifier may appear anywhere in what it wrote.
 * The configuration's description (the start-up log line) must carry no password, token or API token.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeConfig, loadConfig, ConfigError } from '../src/config/index.js';
import { writeWsiPyramid } from '../src/import/index.js';
import { createTestPattern } from './support/synthetic-slide.js';
import { followJob } from './support/embeddings.js';
import { createTestGateway, readJson, type TestGateway } from './support/gateway.js';

const PATIENT_NAME = 'Doe^Jane';
const PATIENT_ID = 'PID-7788';
const TOKEN = 'log-test-token-5f3a9c0d1e2b';

describe('logs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsigw-logs-'));
  const lines: string[] = [];
  let gateway: TestGateway;
  let slideId: string;
  const auth = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    const pattern = createTestPattern(1200, 900, 150);
    const png = await sharp(pattern.data, { raw: { width: 1200, height: 900, channels: 3 } }).png().toBuffer();
    const label = await sharp({ create: { width: 300, height: 150, channels: 3, background: '#eeeeee' } }).png().toBuffer();
    const written = await writeWsiPyramid(png, join(dir, 'slides'), {
      levels: [
        { downsample: 1, tileSizePx: 256 },
        { downsample: 4, tileSizePx: 256 },
      ],
      patientName: PATIENT_NAME,
      patientId: PATIENT_ID,
      studyDescription: 'Log test',
      label,
    });
    slideId = `${written.studyUid}/${written.seriesUid}`;
    const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
    gateway = createTestGateway(
      { DICOM_DIR: join(dir, 'slides'), EMBED_DIR: join(dir, 'embeddings'), LOG_LEVEL: 'trace', GATEWAY_SHOW_PATIENT_DATA: 'true', GATEWAY_AUTH: 'token', GATEWAY_API_TOKENS: TOKEN },
      { logger },
    );
  });
  afterAll(async () => {
    await gateway?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds no patient name or ID after serving a slide that has them', async () => {
    // The data is really there: the list (patient data shown) and the search by name find it.
    const list = await readJson<{ slides: Array<{ patientName: string; patientId: string }> }>(await gateway.get('/api/slides', auth));
    // The gateway shows a DICOM person name with spaces for the carets.
    expect(list.slides[0]).toMatchObject({ patientName: 'Doe Jane', patientId: PATIENT_ID });
    const found = await readJson<{ total: number }>(await gateway.get('/api/slides?q=Doe', auth));
    expect(found.total).toBe(1);
    expect((await gateway.get(`/api/slides?q=${encodeURIComponent(PATIENT_ID)}`, auth)).status).toBe(200);

    expect((await gateway.get(`/api/slides/${slideId}`, auth)).status).toBe(200);
    for (const path of ['tiles/0/0/0.jpg', 'tiles/0/4/3.jpg', 'tiles/1/0/0.jpg', 'label.jpg', 'thumbnail.jpg', 'region.jpg?x=0&y=0&width=300&height=300']) {
      expect((await gateway.get(`/api/slides/${slideId}/${path}`, auth)).status, path).toBe(200);
    }
    // Failures log too: a tile outside the grid, a missing overview, no credentials.
    expect((await gateway.get(`/api/slides/${slideId}/tiles/0/99/99.jpg`, auth)).status).toBe(404);
    expect((await gateway.get(`/api/slides/${slideId}/overview.jpg`, auth)).status).toBe(404);
    expect((await gateway.get(`/api/slides/${slideId}`)).status).toBe(401);

    const started = await gateway.app.request(`/api/slides/${slideId}/embeddings`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stain-texture', mpp: 0.5 }) });
    expect(started.status, await started.clone().text()).toBe(202);
    const events = await followJob({ ...gateway, get: (path) => gateway.get(path, auth) }, (await readJson<{ id: string }>(started)).id);
    expect(events.at(-1)!.job.state).toBe('done');
    const clusters = await gateway.get(`/api/slides/${slideId}/clusters?model=stain-texture&k=2`, auth);
    expect(clusters.status).toBe(200);
    expect((await gateway.get(`/api/slides/${slideId}/clusters.png?model=stain-texture&k=2`, auth)).status).toBe(200);

    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(15);
    expect(log).toContain('"user":"token:1"');
    for (const forbidden of [PATIENT_NAME, 'Doe', 'Jane', PATIENT_ID, '7788', TOKEN]) expect(log, forbidden).not.toContain(forbidden);
  });
});

describe('secrets', () => {
  const secrets = { password: 'pacs-password-q8w7e6', pacsToken: 'pacs-token-z9x8c7v6', apiToken: 'api-token-m5n4b3v2c1x0', proxySecret: 'proxy-secret-l1k2j3h4g5' };
  const leaks = (text: string) => Object.values(secrets).filter((s) => text.includes(s));

  it('describeConfig carries no PACS password or token, API token or proxy secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wsigw-secrets-'));
    try {
      writeFileSync(join(dir, 'tokens'), `${secrets.apiToken}\n`);
      const configs = [
        loadConfig({ DICOMWEB_URL: 'http://pacs:8042/dicom-web', DICOMWEB_USERNAME: 'u', DICOMWEB_PASSWORD: secrets.password, GATEWAY_AUTH: 'token', GATEWAY_API_TOKENS: secrets.apiToken }),
        loadConfig({ DICOMWEB_URL: 'http://pacs:8042/dicom-web', DICOMWEB_TOKEN: secrets.pacsToken, GATEWAY_AUTH: 'token', GATEWAY_API_TOKENS_FILE: join(dir, 'tokens') }),
        loadConfig({ GATEWAY_AUTH: 'trusted-header', GATEWAY_TRUSTED_PROXY_SECRET: secrets.proxySecret }),
      ];
      // The secrets are in the configs (so the check below could fail) but not in their descriptions.
      expect(leaks(JSON.stringify(configs)).sort()).toEqual(Object.values(secrets).sort());
      for (const config of configs) expect(leaks(JSON.stringify(describeConfig(config)))).toEqual([]);
      expect(describeConfig(configs[1]!)).toMatchObject({ gatewayAuth: { kind: 'token', tokens: 1 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('configuration errors name a bad token by position, never by value', () => {
    const short = 'short-token';
    const error = (() => {
      try {
        loadConfig({ GATEWAY_AUTH: 'token', GATEWAY_API_TOKENS: `${secrets.apiToken},${short}`, GATEWAY_CORS_ORIGINS: '*' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('token 2 is shorter than 16 characters');
    expect(message).toContain('GATEWAY_CORS_ORIGINS: * is refused');
    expect(message).not.toContain(short);
    expect(leaks(message)).toEqual([]);
  });
});
