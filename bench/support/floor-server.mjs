/**
 * The node:http floor (bench/tiles): a bare Node HTTP server answering the level-0 tiles from memory,
 * with the gateway's tile headers and nothing else (no PACS, no cache, no routing, no metrics). Started
 * as a fresh process for each cold pass, like the gateway, it shows what a fresh Node process alone
 * costs for a pass on this machine. Plain JavaScript, so nothing but node:http runs per request.
 *
 * FLOOR_TILES: a file of the tiles' bytes back to back; FLOOR_INDEX: JSON { paths, lengths } in the
 * same order. FLOOR_CACHE_CONTROL: the tile route's Cache-Control. PORT: where to listen (127.0.0.1).
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import process from 'node:process';

const bytes = readFileSync(process.env.FLOOR_TILES);
const { paths, lengths } = JSON.parse(readFileSync(process.env.FLOOR_INDEX, 'utf8'));
const tiles = new Map();
let offset = 0;
paths.forEach((path, i) => {
  tiles.set(path, { data: bytes.subarray(offset, offset + lengths[i]), etag: `"floor-${i}"` });
  offset += lengths[i];
});

createServer((req, res) => {
  const tile = tiles.get(req.url);
  if (!tile) {
    res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-length': 0 });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'image/jpeg', etag: tile.etag, 'cache-control': process.env.FLOOR_CACHE_CONTROL, 'content-length': tile.data.length });
  res.end(tile.data);
}).listen(Number(process.env.PORT), '127.0.0.1');
