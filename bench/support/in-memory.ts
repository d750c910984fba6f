/**
 * bench/tiles' "level 0 already in memory" passes: a fresh gateway process that has read level 0 before
 * the timed pass. Set beside the cold pass, it separates what taking level 0 in over DICOMweb costs (PACS
 * reads, Orthanc's CPU, the gateway's intake) from what serving the tiles costs a fresh process.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fetchOk } from './load.js';
import type { Level0Map, TilePosition } from './tile-map.js';

/** For each level-0 instance, the tile of its first frame and the tile of its last, in instance order. */
export function pickInstanceEnds(map: Level0Map, order: readonly TilePosition[]): TilePosition[] {
  const positionOf = new Map<string, TilePosition>();
  for (const position of order) {
    const frame = map.frameAt(position.col, position.row);
    if (frame !== undefined) positionOf.set(`${frame.sopInstanceUid}/${frame.frameNumber}`, position);
  }
  return map.instances.flatMap(({ sopInstanceUid, numberOfFrames }) => [1, numberOfFrames].flatMap((n) => positionOf.get(`${sopInstanceUid}/${n}`) ?? []));
}

/**
 * Reads level 0 into the gateway, one request at a time: an instance's first-frame tile is its first miss
 * (a frame batch, and the whole instance read alongside), its last-frame tile then waits for that whole
 * read. Whether nothing was left to read is checked afterwards with {@link countPacsRequests}.
 */
export async function readLevel0In(tileUrls: readonly string[]): Promise<void> {
  for (const url of tileUrls) await fetchOk(url, ', reading level 0 in');
}

/** The PACS requests a gateway has made so far (the sum of its `wsi_gateway_pacs_requests_total`). */
export async function countPacsRequests(gatewayUrl: string): Promise<number> {
  const body = await fetchOk(`${gatewayUrl}/metrics`);
  let total = 0;
  for (const line of body.toString('utf8').split('\n')) {
    if (line.startsWith('wsi_gateway_pacs_requests_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/**
 * The PACS request count once it has stopped moving. A request is counted when it ends, and a frame
 * batch started alongside a whole-instance read may end after that read has served its frames: read
 * before it lands, the count would charge that batch to the pass that follows.
 */
export async function countSettledPacsRequests(gatewayUrl: string, quietMs = 200): Promise<number> {
  let count = await countPacsRequests(gatewayUrl);
  for (;;) {
    await sleep(quietMs);
    const now = await countPacsRequests(gatewayUrl);
    if (now === count) return count;
    count = now;
  }
}
