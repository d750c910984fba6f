/**
 * Security pass (issue 7, part 5), against the gateway as its own process with auth on both sides
 * (GATEWAY_AUTH=token to its callers, DICOMWEB_AUTH=basic to the PACS) and logging everything (trace),
 * in front of a PACS that plants patient data, foreign URLs, a path-climbing UID and leaky error pages
 * (planting-proxy.ts). A user's whole day is replayed: search, open, tiles of every level, label,
 * overview, thumbnail, region, an embedding job, clusters, similarity, exports; plus every /api route
 * without and with wrong credentials.
 *
 * Checked: the canary host is never called and no request leaves the DICOMweb root; every /api route
 * refuses a caller without valid credentials; neither the patient's name or ID, nor the PACS password,
 * its base64 form, nor the API token appear in any answer or in any log line.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createTestGateway } from '../support/gateway.js';
import { listApiRoutes } from '../support/api-routes.js';
import { sampleSlideId, wsiSamples } from '../support/wsi-data.js';
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { startCanary, startPlantingProxy, TRAVERSAL_SERIES_UID } from './planting-proxy.js';
import { formatCount, type Scenario } from './scenario.js';

const PATIENT_NAME = 'Roe^Quintessa';
const PATIENT_ID = 'MRN-93810457';
const PACS_USER = 'gateway-svc';
const PACS_PASSWORD = 'pacs-pw-7c1e99d04b';
const API_TOKEN = 'api-token-3f0e6a2d9b8c417e';

/** Everything that must never be seen, in every form the gateway could write it. */
const SECRETS: Record<string, string> = {
  'patient name': 'Quintessa',
  'patient ID': PATIENT_ID,
  'PACS password': PACS_PASSWORD,
  'PACS credentials (base64)': Buffer.from(`${PACS_USER}:${PACS_PASSWORD}`).toString('base64'),
  'API token': API_TOKEN,
};

function findSecrets(text: string): string[] {
  return Object.entries(SECRETS).filter(([, value]) => text.includes(value)).map(([name]) => name);
}

export const runSecurity: Scenario = async (context) => {
  const started = performance.now();
  const failures: string[] = [];
  const canary = await startCanary();
  const goodSlide = await sampleSlideId(wsiSamples.cmu1T256Q90);
  const failingSlide = await sampleSlideId(wsiSamples.cmu1T256J2k);
  const proxy = await startPlantingProxy({
    orthancUrl: context.orthancUrl,
    canaryUrl: canary.url,
    patientName: PATIENT_NAME,
    patientId: PATIENT_ID,
    failingSeriesUid: failingSlide.split('/')[1]!,
  });
  const logFile = path.join(context.workDir, 'gateway.log');
  let gateway: GatewayProcess | undefined;
  let answersScanned = 0;
  let refused = 0;
  let routesChecked = 0;
  const byStatus = new Map<number, number>();
  try {
    gateway = await startGatewayProcess({
      env: {
        DICOMWEB_URL: proxy.dicomwebUrl,
        DICOMWEB_AUTH: 'basic',
        DICOMWEB_USERNAME: PACS_USER,
        DICOMWEB_PASSWORD: PACS_PASSWORD,
        DICOMWEB_RETRIES: '1',
        GATEWAY_AUTH: 'token',
        GATEWAY_API_TOKENS: API_TOKEN,
        EMBED_DIR: path.join(context.workDir, 'embeddings'),
        LOG_LEVEL: 'trace',
      },
      logFile,
    });
    const base = gateway.url;
    const call = async (url: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> => {
      const token = init.token === undefined ? API_TOKEN : init.token;
      const response = await fetch(`${base}${url}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string>) } });
      byStatus.set(response.status, (byStatus.get(response.status) ?? 0) + 1);
      const body = Buffer.from(await response.arrayBuffer());
      answersScanned++;
      const leaked = findSecrets(body.toString('latin1') + JSON.stringify([...response.headers]));
      if (leaked.length > 0) failures.push(`${init.method ?? 'GET'} ${url.slice(0, 120)} answered with the ${leaked.join(', ')}`);
      return new Response(body, { status: response.status, headers: response.headers });
    };

    // Every /api route refuses a caller without credentials, or with wrong ones.
    const routesApp = createTestGateway({ DICOM_DIR: path.join(context.workDir, 'none'), EMBED_DIR: path.join(context.workDir, 'none-embeddings') });
    const routes = listApiRoutes(routesApp.app);
    await routesApp.close();
    for (const { method, url } of routes) {
      routesChecked++;
      for (const token of [null, 'wrong-token-000000000000']) {
        const response = await call(url, { method, token, ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}) });
        if (response.status === 401) refused++;
        else failures.push(`${method} ${url} answered ${response.status} to a caller ${token ? 'with a wrong token' : 'without credentials'}`);
      }
    }

    // A user's day, with valid credentials.
    await call('/api/slides');
    await call('/api/slides?q=CMU');
    const climbing = await call(`/api/slides/1.2.3/${encodeURIComponent(TRAVERSAL_SERIES_UID)}`);
    if (climbing.status < 400 || climbing.status >= 500) failures.push(`the path-climbing series UID answered ${climbing.status}, not 4xx`);
    // The job runs before the failing slide is touched: its failures would open the circuit breaker.
    const submitted = await call(`/api/slides/${goodSlide}/embeddings`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    if (submitted.status !== 202) failures.push(`the embedding job was not accepted (${submitted.status})`);
    else {
      const { id } = (await submitted.json()) as { id: string };
      let state = 'queued';
      for (let i = 0; i < 600 && (state === 'queued' || state === 'running'); i++) {
        await new Promise((r) => setTimeout(r, 250));
        state = ((await (await call(`/api/jobs/${id}`)).json()) as { state: string }).state;
      }
      if (state !== 'done') failures.push(`the embedding job ended ${state}`);
      for (const what of ['clusters', 'clusters.png', 'clusters.geojson', 'clusters.csv', 'similarity?x=500&y=500', 'similarity.png?x=500&y=500', 'embeddings']) {
        await call(`/api/slides/${goodSlide}/${what}`);
      }
    }
    for (const slide of [goodSlide, failingSlide]) {
      const response = await call(`/api/slides/${slide}`);
      if (!response.ok) {
        failures.push(`slide ${slide} answered ${response.status}`);
        continue;
      }
      const { levels } = (await response.json()) as { levels: Array<{ gridCols: number; gridRows: number }> };
      for (const [index, level] of levels.entries()) {
        for (let row = 0; row < Math.min(level.gridRows, 4); row++) {
          for (let col = 0; col < Math.min(level.gridCols, 4); col++) await call(`/api/slides/${slide}/tiles/${index}/${col}/${row}.jpg`);
        }
      }
      for (const image of ['label', 'overview', 'thumbnail']) await call(`/api/slides/${slide}/${image}.jpg`);
      await call(`/api/slides/${slide}/region.jpg?x=100&y=100&width=600&height=400`);
    }
    const tileOfFailing = await call(`/api/slides/${failingSlide}/tiles/0/0/0.jpg`);
    if (tileOfFailing.status !== 502) failures.push(`a tile whose frames the PACS refuses answered ${tileOfFailing.status}, not 502`);
    const failedJob = await call(`/api/slides/${failingSlide}/embeddings`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    if (failedJob.ok) {
      const { id: failedId } = (await failedJob.json()) as { id: string };
      for (let i = 0; i < 600; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const job = (await (await call(`/api/jobs/${failedId}`)).json()) as { state: string };
        if (job.state !== 'queued' && job.state !== 'running') break;
      }
    }
    await call('/api/jobs');

    await gateway.stop();

    if (canary.hits.length > 0) failures.push(`the canary host was called ${canary.hits.length} times (${canary.hits.slice(0, 3).join('; ')})`);
    if (proxy.stats.outsideBase.length > 0) failures.push(`requests left the DICOMweb root: ${proxy.stats.outsideBase.slice(0, 3).join('; ')}`);
    if (proxy.stats.urlsPlanted === 0 || proxy.stats.leakyErrors === 0) failures.push('nothing was planted: the checks proved nothing');
    const expectedAuth = `Basic ${SECRETS['PACS credentials (base64)']}`;
    if (proxy.stats.authorizations.size !== 1 || !proxy.stats.authorizations.has(expectedAuth)) failures.push('the gateway did not send its PACS credentials on every request');
    const log = await readFile(logFile, 'utf8');
    const logLines = log.split('\n').filter((l) => l.trim() !== '');
    const leakedInLog = findSecrets(log);
    if (leakedInLog.length > 0) failures.push(`the log holds the ${leakedInLog.join(', ')}`);
    if (logLines.length < 100) failures.push(`only ${logLines.length} log lines: trace logging did not reach the file`);

    return {
      title: 'Security: where requests go, who may ask, what is written down',
      summary:
        'The gateway (its own process, caller auth by token, basic auth to the PACS, trace logging) in front of a PACS that plants a patient name and ID, ' +
        'foreign URLs (RetrieveURL, BulkDataURIs for Pixel Data and an ICC profile) pointing at a canary server, a series UID that climbs out of the DICOMweb root, ' +
        'and 500 pages that quote the patient and the Authorization header. Every /api route is called without and with a wrong token, then a full session with a valid one.',
      figures: [
        { label: '/api routes checked / refusals (no token, wrong token)', value: `${routesChecked} / ${refused} of ${routesChecked * 2}` },
        { label: 'URLs planted in metadata / requests to the canary host', value: `${formatCount(proxy.stats.urlsPlanted)} / ${canary.hits.length}` },
        { label: 'PACS requests / outside the DICOMweb root', value: `${formatCount(proxy.stats.requests)} / ${proxy.stats.outsideBase.length}` },
        { label: 'Leaky PACS error pages served', value: formatCount(proxy.stats.leakyErrors) },
        { label: 'Answers scanned (by status)', value: `${formatCount(answersScanned)} (${[...byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', ')})` },
        { label: 'Log lines scanned', value: formatCount(logLines.length) },
        { label: 'Secrets or identifiers found in answers and logs', value: String(failures.filter((f) => /answered with the|log holds/.test(f)).length) },
      ],
      failures,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await gateway?.stop();
    await proxy.close();
    await canary.close();
  }
};
