/** /api/jobs: embedding jobs' state, their live progress as server-sent events, and cancelling them. */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { BadRequestError } from '../errors.js';
import type { Job, JobQueue } from '../embed/jobs/job-queue.js';

/** Progress events are sent at most this often; state changes always go out at once. */
const PROGRESS_INTERVAL_MS = 250;
/** A comment line this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

const isEnded = (job: Job) => job.state === 'done' || job.state === 'failed' || job.state === 'cancelled';

function parseJobId(id: string): string {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new BadRequestError('job id must be a UUID', 'INVALID_PARAMETER');
  return id;
}

export function createJobRoutes({ jobs }: { jobs: JobQueue }): Hono {
  const app = new Hono();

  app.get('/', (c) => c.json({ jobs: jobs.list() }));

  app.get('/:id', (c) => c.json(jobs.get(parseJobId(c.req.param('id')))));

  app.delete('/:id', (c) => c.json(jobs.cancel(parseJobId(c.req.param('id')))));

  app.get('/:id/events', (c) => {
    const job = jobs.get(parseJobId(c.req.param('id')));
    return streamSSE(c, async (stream) => {
      let eventId = 0;
      const send = (event: string, data: Job) => stream.writeSSE({ event, data: JSON.stringify(data), id: String(++eventId) });
      let lastState = job.state;
      await send('state', job);
      if (isEnded(job)) return;

      let lastProgressAt = 0;
      let pending: ReturnType<typeof setTimeout> | undefined;
      let finished!: () => void;
      const ended = new Promise<void>((resolve) => (finished = resolve));
      const unsubscribe = jobs.subscribe(job.id, (j) => {
        if (j.state !== lastState || isEnded(j)) {
          lastState = j.state;
          clearTimeout(pending);
          pending = undefined;
          void send('state', j).then(() => isEnded(j) && finished());
          return;
        }
        // Throttled: a fast model would otherwise send hundreds of events a second.
        const waitMs = lastProgressAt + PROGRESS_INTERVAL_MS - Date.now();
        if (waitMs <= 0) {
          lastProgressAt = Date.now();
          void send('progress', j);
        } else {
          pending ??= setTimeout(() => {
            pending = undefined;
            lastProgressAt = Date.now();
            void send('progress', jobs.get(j.id));
          }, waitMs);
        }
      });
      // It may have ended while the first event was being written, before we listened.
      if (isEnded(job) && lastState !== job.state) void send('state', job).then(() => finished());
      const keepalive = setInterval(() => void stream.write(': keepalive\n\n'), KEEPALIVE_MS);
      stream.onAbort(() => finished());
      try {
        await ended;
      } finally {
        clearInterval(keepalive);
        clearTimeout(pending);
        unsubscribe();
      }
    });
  });

  return app;
}
