/**
 * The node:http floor of bench/tiles as a process: the tiles' bytes are written once to a run folder,
 * and each cold pass gets a fresh `node floor-server.mjs` serving them at the gateway's tile paths.
 */
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TILE_CACHE_CONTROL } from '../../src/routes/slides.js';
import { fetchOk } from './load.js';
import { findFreePort, spawnTracked, stopChild, waitForHttp } from './children.js';

const serverScript = join(dirname(fileURLToPath(import.meta.url)), 'floor-server.mjs');

/** Where the floor's tiles were written. */
export interface FloorTiles {
  tilesPath: string;
  indexPath: string;
}

/** Fetches each tile from `sourceUrls` (untimed) and writes them for the floor server, keyed by `paths`. */
export async function writeFloorTiles(dir: string, paths: readonly string[], sourceUrls: readonly string[]): Promise<FloorTiles> {
  const bodies: Buffer[] = [];
  for (const url of sourceUrls) bodies.push(await fetchOk(url, ", fetching the floor's tiles"));
  const tiles: FloorTiles = { tilesPath: join(dir, 'floor-tiles.bin'), indexPath: join(dir, 'floor-index.json') };
  await writeFile(tiles.tilesPath, Buffer.concat(bodies));
  await writeFile(tiles.indexPath, JSON.stringify({ paths, lengths: bodies.map((b) => b.length) }));
  return tiles;
}

/** Runs `body` against a fresh floor server process, stopped afterwards. */
export async function withFloorServer<T>(tiles: FloorTiles, logPath: string, body: (baseUrl: string) => Promise<T>): Promise<T> {
  const port = await findFreePort();
  const child = spawnTracked(process.execPath, [serverScript], {
    env: { PATH: process.env['PATH'], PORT: String(port), FLOOR_TILES: tiles.tilesPath, FLOOR_INDEX: tiles.indexPath, FLOOR_CACHE_CONTROL: TILE_CACHE_CONTROL },
    logPath,
  });
  try {
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitForHttp(`${baseUrl}/healthz`, child);
    return await body(baseUrl);
  } finally {
    await stopChild(child);
  }
}
