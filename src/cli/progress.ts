/**
 * The CLI's progress display: one bar redrawn in place on a terminal; on a pipe or a log file, a plain
 * line every few seconds (and at the end), so CI logs and `2> file` stay readable.
 */
import type { Job } from '../embed/jobs/job-queue.js';

const BAR_WIDTH = 30;
const LINE_INTERVAL_MS = 5000;

function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** One line for a set of jobs: slides finished, patches done, rate, time left. */
export function describeProgress(jobs: readonly Job[]): string {
  const ended = jobs.filter((j) => j.state !== 'queued' && j.state !== 'running').length;
  const failed = jobs.filter((j) => j.state === 'failed').length;
  let done = 0;
  let total = 0;
  let rate = 0;
  let skipped = 0;
  for (const job of jobs) {
    done += job.progress.done;
    total += job.progress.total;
    skipped += job.progress.skipped;
    if (job.state === 'running') rate += job.progress.ratePerSecond;
  }
  // Slides not started yet have no total: the bar counts slides until every grid is known.
  const fraction = jobs.every((j) => j.progress.total > 0 || j.state !== 'queued') && total > 0 ? done / total : ended / jobs.length;
  const filled = Math.round(Math.min(1, fraction) * BAR_WIDTH);
  const eta = rate > 0 ? (total - done) / rate : undefined;
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${(fraction * 100).toFixed(1).padStart(5)}% ` +
    `slides ${ended}/${jobs.length}${failed ? ` (${failed} failed)` : ''}, patches ${done}/${total}` +
    `${skipped ? ` (${skipped} skipped)` : ''}, ${rate.toFixed(1)}/s, ${formatDuration(eta)} left`
  );
}

/** A function that redraws the progress; pass `final` for the last line. */
export function renderProgress(out: NodeJS.WriteStream, jobs: readonly Job[]): (final?: boolean) => void {
  let lastLineAt = 0;
  return (final = false) => {
    const line = describeProgress(jobs);
    if (out.isTTY) {
      out.write(`\r${line.padEnd(out.columns ? out.columns - 1 : line.length)}${final ? '\n' : ''}`);
      return;
    }
    const now = Date.now();
    if (final || now - lastLineAt >= LINE_INTERVAL_MS) {
      lastLineAt = now;
      out.write(`${line}\n`);
    }
  };
}
