/**
 * The body of a decode pool worker (decode-pool.ts): one WASM decode per message, answered with the
 * samples or the reason it failed. The thread is started through decode-worker.mjs, which loads this
 * file with tsx: a worker gets no TypeScript loader of its own under vitest.
 */
import { parentPort } from 'node:worker_threads';
import { runWasmDecode, type WasmDecodeRequest, type WasmDecodeResult } from './wasm-run.js';

/** What a worker answers to one request. */
export type DecodeReply = { ok: true; result: WasmDecodeResult } | { ok: false; message: string };

/**
 * The samples in a buffer that can be transferred rather than copied. Both codecs already copy their
 * output out of WASM memory into a buffer of its own; should a build ever return a view instead, it
 * is copied here, since transferring it would detach (or, for WASM memory, fail on) the whole buffer.
 */
function toTransferable(view: Uint8Array): Uint8Array {
  const ownsBuffer = view.buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
  return ownsBuffer ? view : view.slice();
}

const port = parentPort;
if (!port) throw new Error('decode-worker.ts runs only as a worker thread');

port.on('message', (request: WasmDecodeRequest) => {
  runWasmDecode(request).then(
    (result) => {
      const pixels = toTransferable(result.pixels);
      const reply: DecodeReply = { ok: true, result: { ...result, pixels } };
      port.postMessage(reply, [pixels.buffer as ArrayBuffer]);
    },
    (error: unknown) => {
      const reply: DecodeReply = { ok: false, message: error instanceof Error ? error.message : String(error) };
      port.postMessage(reply);
    },
  );
});
