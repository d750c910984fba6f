/**
 * A PACS that tries to lead the gateway astray, for the security pass: an HTTP proxy in front of a real
 * Orthanc's DICOMweb root that plants things in what Orthanc answers.
 * - Every JSON dataset gets a patient name and ID, a RetrieveURL (0008,1190) and BulkDataURIs
 *   (an ICC profile, and Pixel Data where present) pointing at a canary server; Google's and
 *   dcm4chee's answers carry such URLs, and a gateway that followed them could be steered at any host.
 * - The series search gains a series, and series metadata an overview, whose UID climbs out of the
 *   DICOMweb root (`1.2.3/../../..`).
 * - Pixel data requests for one chosen series fail with a 500 whose body quotes the patient data and the
 *   Authorization header the gateway sent, as some servers' error pages do.
 * It records every path asked for, so the scenario can prove nothing left the configured base URL.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request } from 'undici';

export interface PlantingProxyOptions {
  /** Orthanc's REST root; the proxy serves its /dicom-web. */
  orthancUrl: string;
  canaryUrl: string;
  patientName: string;
  patientId: string;
  /** Frames of this series answer 500 with a body that quotes secrets. */
  failingSeriesUid: string;
}

export interface PlantingProxy {
  /** The DICOMweb root to configure: `http://127.0.0.1:PORT/dicom-web`. */
  readonly dicomwebUrl: string;
  readonly stats: { requests: number; outsideBase: string[]; urlsPlanted: number; leakyErrors: number; authorizations: Set<string> };
  close(): Promise<void>;
}

const BASE = '/dicom-web/';
/** Enough `..` to climb above any DICOMweb root (a client may resolve them before sending). */
const CLIMB = `1.2.3/${'../'.repeat(12)}system`;
export const TRAVERSAL_SERIES_UID = CLIMB;
export const TRAVERSAL_INSTANCE_UID = CLIMB;

type Dataset = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

export async function startPlantingProxy(options: PlantingProxyOptions): Promise<PlantingProxy> {
  const stats: PlantingProxy['stats'] = { requests: 0, outsideBase: [], urlsPlanted: 0, leakyErrors: 0, authorizations: new Set() };

  const plant = (dataset: Dataset): Dataset => {
    const planted: Dataset = {
      ...dataset,
      '00100010': { vr: 'PN', Value: [{ Alphabetic: options.patientName }] },
      '00100020': { vr: 'LO', Value: [options.patientId] },
      '00081190': { vr: 'UR', Value: [`${options.canaryUrl}/retrieve`] },
      '00282000': { vr: 'OB', BulkDataURI: `${options.canaryUrl}/icc` },
    };
    stats.urlsPlanted += 2;
    if (dataset['7FE00010']) {
      planted['7FE00010'] = { vr: 'OB', BulkDataURI: `${options.canaryUrl}/pixels` };
      stats.urlsPlanted++;
    }
    return planted;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests++;
    const url = req.url ?? '/';
    // As a server would resolve it: `/dicom-web/a/../../system` is /system.
    const resolved = new URL(url, 'http://pacs').pathname;
    if (!resolved.startsWith(BASE) || /(^|\/)\.\.?(\/|$)/.test(url.split('?')[0]!)) stats.outsideBase.push(url.slice(0, 200));
    if (typeof req.headers.authorization === 'string') stats.authorizations.add(req.headers.authorization);
    // Pixel data of the chosen series (frames, or whole instances), not its metadata.
    const isPixels = url.includes(`/series/${options.failingSeriesUid}/instances/`) && !url.split('?')[0]!.endsWith('/metadata');
    if (isPixels) {
      stats.leakyErrors++;
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`Internal error for patient ${options.patientName} (${options.patientId}); request had Authorization: ${req.headers.authorization ?? '-'}`);
      return;
    }
    const upstream = await request(`${options.orthancUrl}${url}`, {
      method: req.method === 'HEAD' ? 'HEAD' : 'GET',
      headers: { accept: req.headers.accept ?? '*/*', 'accept-encoding': 'identity' },
    });
    const contentType = String(upstream.headers['content-type'] ?? '');
    if (!contentType.includes('json') || upstream.statusCode !== 200) {
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'content-length']) if (upstream.headers[name] !== undefined) headers[name] = String(upstream.headers[name]);
      res.writeHead(upstream.statusCode, headers);
      for await (const chunk of upstream.body) res.write(chunk);
      res.end();
      return;
    }
    const datasets = ((await upstream.body.json()) as Dataset[]).map(plant);
    if (/\/series(\?|$)/.test(url) && !url.includes('/series/')) {
      datasets.push(plant({ '0020000D': { vr: 'UI', Value: ['1.2.3'] }, '0020000E': { vr: 'UI', Value: [TRAVERSAL_SERIES_UID] }, '00080060': { vr: 'CS', Value: ['SM'] } }));
    }
    if (url.split('?')[0]!.endsWith('/metadata')) {
      // The overview's UID is swapped for one that climbs out of the root: its frames would be asked for
      // at /instances/../../.. if the gateway took it for an instance.
      const overview = datasets.find((d) => JSON.stringify(d['00080008']?.Value ?? []).includes('OVERVIEW'));
      if (overview) overview['00080018'] = { vr: 'UI', Value: [TRAVERSAL_INSTANCE_UID] };
    }
    res.writeHead(200, { 'content-type': contentType });
    res.end(JSON.stringify(datasets));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  const port = await listen(server);
  let closing: Promise<void> | undefined;
  return {
    dicomwebUrl: `http://127.0.0.1:${port}/dicom-web`,
    stats,
    close: () => (closing ??= new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    })),
  };
}

/** A server that must never be called: it counts whoever does. */
export async function startCanary(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('[]');
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
