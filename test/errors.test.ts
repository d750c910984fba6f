/**
 * Bad input and a failing PACS: 4xx for the caller's mistakes, 502/504 naming the upstream failure,
 * a JSON error body every time, and the process still standing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrthanc } from './support/orthanc.js';
import { createTestGateway, readJson, type TestGateway } from './support/gateway.js';
import { describeWithOrthanc } from './support/skip.js';
import { readDicomFileFacts, sharedWsiDir, wsiSamples } from './support/wsi-data.js';

interface ErrorBody {
  error: { code: string; message: string };
}

async function expectError(response: Response, status: number, code: string): Promise<ErrorBody> {
  const body = await readJson<ErrorBody>(response);
  expect({ status: response.status, code: body.error.code }).toEqual({ status, code });
  expect(body.error.message.length).toBeGreaterThan(0);
  return body;
}

/** A PACS stand-in that misbehaves in one chosen way. */
async function startFakePacs(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web`, server };
}

describe('caller mistakes (folder source)', () => {
  let gateway: TestGateway;
  let id: string;
  beforeAll(async () => {
    gateway = createTestGateway({ DICOM_DIR: sharedWsiDir });
    const facts = await readDicomFileFacts(wsiSamples.cmu1T256Q90.paths[0]!);
    id = `${facts.studyInstanceUid}/${facts.seriesInstanceUid}`;
  });
  afterAll(() => gateway.close());

  it.each(['abc', '1..2', '1.2.', '.1', `1.${'2'.repeat(63)}`, '1.2%2F..%2F..', '-1', '1 2'])('refuses the malformed UID %j with 400', async (uid) => {
    await expectError(await gateway.get(`/api/slides/${uid}/1.2.3`), 400, 'INVALID_UID');
    await expectError(await gateway.get(`/api/slides/1.2.3/${uid}/tiles/0/0/0.jpg`), 400, 'INVALID_UID');
  });

  it('answers 404 for an unknown slide, level or tile outside the grid', async () => {
    await expectError(await gateway.get('/api/slides/1.2.3/4.5.6'), 404, 'SERIES_NOT_FOUND');
    await expectError(await gateway.get(`/api/slides/${id}/tiles/5/0/0.jpg`), 404, 'LEVEL_NOT_FOUND');
    await expectError(await gateway.get(`/api/slides/${id}/tiles/0/9/0.jpg`), 404, 'TILE_NOT_FOUND');
    await expectError(await gateway.get(`/api/slides/${id}/tiles/0/0/12.jpg`), 404, 'TILE_NOT_FOUND');
    await expectError(await gateway.get(`/api/slides/${id}/tiles/0/0/0.png`), 404, 'NOT_FOUND');
    await expectError(await gateway.get('/api/nothing'), 404, 'NOT_FOUND');
  });

  it('answers 400 for malformed numbers', async () => {
    await expectError(await gateway.get(`/api/slides/${id}/tiles/x/0/0.jpg`), 400, 'INVALID_PARAMETER');
    await expectError(await gateway.get(`/api/slides/${id}/tiles/0/-1/0.jpg`), 400, 'INVALID_PARAMETER');
    await expectError(await gateway.get(`/api/slides/${id}/tiles/0/99999999999/0.jpg`), 400, 'INVALID_PARAMETER');
    await expectError(await gateway.get('/api/slides?limit=0'), 400, 'INVALID_PARAMETER');
    await expectError(await gateway.get('/api/slides?offset=abc'), 400, 'INVALID_PARAMETER');
    await expectError(await gateway.get(`/api/slides/${id}/thumbnail.jpg?size=5000`), 400, 'INVALID_PARAMETER');
  });

  it('answers 503 while draining for shutdown', async () => {
    const draining = createTestGateway({ DICOM_DIR: sharedWsiDir });
    expect((await draining.get('/healthz')).status).toBe(200);
    draining.services.drain();
    await expectError(await draining.get('/healthz'), 503, 'CLOSING');
    await draining.close();
  });

  it('answers 400 for a series that is not a slide', async () => {
    const facts = await readDicomFileFacts(wsiSamples.ezwsiLabel.paths[0]!);
    await expectError(await gateway.get(`/api/slides/${facts.studyInstanceUid}/${facts.seriesInstanceUid}`), 400, 'NOT_A_SLIDE');
  });
});

describe('a failing PACS', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it('answers 502 naming the failure when the PACS is down', async () => {
    const { url, server } = await startFakePacs(() => undefined);
    await new Promise((resolve) => server.close(resolve)); // nothing listens there any more
    const gateway = createTestGateway({ DICOMWEB_URL: url });
    const body = await expectError(await gateway.get('/api/slides'), 502, 'UPSTREAM_FAILED');
    expect(body.error.message).toContain('ECONNREFUSED');
    await gateway.close();
  });

  it('answers 504 when the PACS does not answer in time', async () => {
    const { url, server } = await startFakePacs(() => undefined); // accepts, never answers
    servers.push(server);
    const gateway = createTestGateway({ DICOMWEB_URL: url, DICOMWEB_TIMEOUT_MS: '300' });
    await expectError(await gateway.get('/api/slides'), 504, 'UPSTREAM_TIMEOUT');
    await expectError(await gateway.get('/api/slides/1.2/3.4'), 504, 'UPSTREAM_TIMEOUT');
    await gateway.close();
  });

  it('answers 502 for a PACS error or a body that is not JSON, without echoing the body', async () => {
    const { url, server } = await startFakePacs((req, res) => {
      if (req.url?.startsWith('/dicom-web/series')) res.writeHead(500).end('Patient^Secret stack trace');
      else res.writeHead(200, { 'content-type': 'application/dicom+json' }).end('{not json');
    });
    servers.push(server);
    const gateway = createTestGateway({ DICOMWEB_URL: url });
    const body = await expectError(await gateway.get('/api/slides'), 502, 'UPSTREAM_FAILED');
    expect(body.error.message).not.toContain('Secret');
    await expectError(await gateway.get('/api/slides/1.2/3.4'), 502, 'UPSTREAM_FAILED');
    await gateway.close();
  });

  it("passes on the PACS's Retry-After when it is busy for longer than a retry waits", async () => {
    const { url, server } = await startFakePacs((_, res) => void res.writeHead(503, { 'retry-after': '30' }).end('maintenance'));
    servers.push(server);
    const gateway = createTestGateway({ DICOMWEB_URL: url });
    const response = await gateway.get('/api/slides');
    expect(response.headers.get('retry-after')).toBe('30');
    const body = await expectError(response, 502, 'UPSTREAM_FAILED');
    expect(body.error.message).toContain('503');
    await gateway.close();
  });

  it('answers 502 with the auth hint when the PACS refuses the credentials', async () => {
    const { url, server } = await startFakePacs((req, res) => {
      res.writeHead(req.headers.authorization === `Basic ${Buffer.from('u:p').toString('base64')}` ? 204 : 401).end();
    });
    servers.push(server);
    const wrong = createTestGateway({ DICOMWEB_URL: url, DICOMWEB_USERNAME: 'u', DICOMWEB_PASSWORD: 'nope' });
    await expectError(await wrong.get('/api/slides'), 502, 'UPSTREAM_UNAUTHORIZED');
    const right = createTestGateway({ DICOMWEB_URL: url, DICOMWEB_USERNAME: 'u', DICOMWEB_PASSWORD: 'p' });
    expect((await right.get('/api/slides')).status).toBe(200);
    await Promise.all([wrong.close(), right.close()]);
  });
});

describeWithOrthanc('a PACS that returns only main tags in series metadata', () => {
  it('reads each instance\'s own metadata and serves the slide', async () => {
    const pacs = await startOrthanc({ metadataMode: 'MainDicomTags', withWsiPlugin: false });
    const gateway = createTestGateway({ DICOMWEB_URL: pacs.dicomwebUrl });
    try {
      await pacs.upload([...wsiSamples.cmu1T256Q90.paths]);
      const facts = await readDicomFileFacts(wsiSamples.cmu1T256Q90.paths[0]!);
      const slide = await readJson<{ levelCount: number; hasLabel: boolean }>(
        await gateway.get(`/api/slides/${facts.studyInstanceUid}/${facts.seriesInstanceUid}`),
      );
      expect(slide).toMatchObject({ levelCount: 5, hasLabel: true });
    } finally {
      await gateway.close();
      await pacs.stop();
    }
  });
});
