// A stand-in decode worker for src/tiles/codecs/decode-pool.test.ts, speaking the real worker's
// protocol (decode-worker.ts). The first byte of a request's data says what to do:
// 'b' block the thread for 10 ms x the second byte, as a WASM decode does, and report when it ran;
// 'x' exit with code 3; 't' throw an uncaught error; anything else answers at once. Every answer
// names the worker's thread.
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { parentPort, threadId } from 'node:worker_threads';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

parentPort.on('message', ({ data }) => {
  const command = String.fromCharCode(data[0] ?? 0);
  if (command === 'x') process.exit(3);
  if (command === 't') {
    setTimeout(() => {
      throw new Error('fake decoder blew up');
    });
    return;
  }
  const startedMs = Date.now();
  if (command === 'b') Atomics.wait(sleeper, 0, 0, 10 * (data[1] ?? 0));
  const info = { width: 1, height: 1, bitsPerSample: 8, componentCount: 1 };
  const timing = { startedMs, endedMs: Date.now() };
  parentPort.postMessage({ ok: true, result: { info, pixels: new Uint8Array(1), colourSpace: undefined, interleaveMode: undefined, timing, threadId } });
});
