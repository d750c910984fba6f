/**
 * bench/tiles' "level 0 already in memory" passes: a fresh gateway process that has read level 0 before
 * the timed pass. Set beside the cold pass, it separates what taking level 0 in over DICOMweb costs (PACS
 * reads, Orthanc's CPU, the gateway's intake) from what serving the tiles costs a fresh process.
 */
import { fetchBytes } from './load.js';
import type { Level0Map, TilePosition } from './tile-map.js';

/** For each level-0 instance, the tile of its first frame and the tile of its last, in instance order. */
export function pickInstanceEnds(map: Level0Map, order: readonly TilePosition[]): TilePosition[] {
  const ends = new Map<string, { first: TilePosition; last: TilePosition; firstFrame: number; lastFrame: number }>();
  for (const position of order) {
    const frame = map.frameAt(position.col, position.row);
    if (frame === undefined) continue;
    const seen = ends.get(frame.sopInstanceUid);
    if (seen === undefined) {
      ends.set(frame.sopInstanceUid, { first: position, last: position, firstFrame: frame.frameNumber, lastFrame: frame.frameNumber });
      continue;
    }
    if (frame.frameNumber < seen.firstFrame) Object.assign(seen, { first: position, firstFrame: frame.frameNumber });
    if (frame.frameNumber > seen.lastFrame) Object.assign(seen, { last: position, lastFrame: frame.frameNumber });
  }
  return map.instances.flatMap(({ sopInstanceUid }) => {
    const end = ends.get(sopInstanceUid);
    return end === undefined ? [] : [end.first, end.last];
  });
}

/**
 * Reads level 0 into the gateway, one request at a time: an instance's first-frame tile is its first miss
 * (a frame batch, and the whole instance read alongside), its last-frame tile then waits for that whole
 * read. Whether nothing was left to read is checked afterwards with {@link countPacsRequests}.
 */
export async function readLevel0In(tileUrls: readonly string[]): Promise<void> {
  for (const url of tileUrls) {
    const { status } = await fetchBytes(url);
    if (status !== 200) throw new Error(`HTTP ${status} for ${url}, reading level 0 in`);
  }
}

/** The PACS requests a gateway has made so far (the sum of its `wsi_gateway_pacs_requests_total`). */
export async function countPacsRequests(gatewayUrl: string): Promise<number> {
  const { status, body } = await fetchBytes(`${gatewayUrl}/metrics`);
  if (status !== 200) throw new Error(`HTTP ${status} for the gateway's /metrics`);
  let total = 0;
  for (const line of body.toString('utf8').split('\n')) {
    if (line.startsWith('wsi_gateway_pacs_requests_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
