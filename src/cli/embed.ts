/**
 * `npm run embed -- [options] (STUDY/SERIES ... | --all | --query WORDS)`: embeds slides from the
 * configured PACS (or folder) without a server, with a progress bar, through the same queue, pipeline
 * and store as the HTTP jobs. Stopping it (Ctrl-C, or a crash) keeps every committed batch: running it
 * again resumes.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createServices, type Services } from '../app.js';
import { ConfigError, loadConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import { createJobSpec, DEFAULT_MIN_TISSUE, DEFAULT_MODEL, type Job } from '../embed/jobs/job-queue.js';
import { parseUid } from '../routes/params.js';
import { renderProgress } from './progress.js';

const USAGE = `Usage: wsi-gateway embed [options] STUDY_UID/SERIES_UID ...
       wsi-gateway embed [options] --all | --query "words"
       (from a checkout: npm run embed -- [options] ...)

Options:
  --model ID          model id (default ${DEFAULT_MODEL}; GET /api/models or models/ lists them)
  --mpp X             µm per pixel of the patches (default: the model's first recommended)
  --stride N          step between patches in pixels at that mpp (default: the patch size)
  --min-tissue F      least tissue fraction of a patch, 0..1 (default ${DEFAULT_MIN_TISSUE})
  --mpp-override X    level-0 µm per pixel, for slides with missing or wrong spacing
  --all               every slide the source has
  --query WORDS       slides whose descriptions, dates or UIDs contain all the words
The PACS, models and store come from the same environment variables as the gateway (README.md).
Exit codes: 0 every slide embedded, 1 some failed, 2 usage or configuration error, 130 interrupted
(committed batches are kept: the same command resumes).`;

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${value}'`);
  return n;
}

class UsageError extends Error {}

async function findSlides(services: Services, query: string): Promise<Array<{ studyUid: string; seriesUid: string }>> {
  const found: Array<{ studyUid: string; seriesUid: string }> = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await services.catalog.listSlides({ offset, limit: 1000, query });
    for (const entry of page.entries) if (entry.slide) found.push({ studyUid: entry.summary.studyUid, seriesUid: entry.summary.seriesUid });
    if (offset + 1000 >= page.total) return found;
  }
}

/**
 * Runs the embed command on its arguments (without the command name) and resolves to the exit code:
 * 0 all slides embedded, 1 some failed, 2 a usage or configuration error, 130 interrupted.
 */
export async function runEmbed(argv: string[]): Promise<number> {
  try {
    return await embed(argv);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) console.error(error.message);
    else console.error(error instanceof Error ? error.message : error);
    if (error instanceof UsageError) console.error(`\n${USAGE}`);
    // parseArgs' own errors (unknown flag, missing value) and 4xx errors (bad UID, unknown model) are the
    // caller's to fix: usage. Anything else (PACS down, disk full) is the work failing.
    const usage = error instanceof ConfigError || error instanceof UsageError || isParseArgsError(error) || (error instanceof GatewayError && error.status < 500);
    return usage ? 2 : 1;
  }
}

function isParseArgsError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_');
}

async function embed(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string', default: DEFAULT_MODEL },
      mpp: { type: 'string' },
      stride: { type: 'string' },
      'min-tissue': { type: 'string' },
      'mpp-override': { type: 'string' },
      all: { type: 'boolean', default: false },
      query: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const config = loadConfig(process.env);
  const services = createServices(config, { logger: pino({ level: config.logLevel === 'info' ? 'warn' : config.logLevel }, pino.destination(2)) });
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write('\nStopping: committed batches are kept, run the same command again to resume.\n');
    void services.jobs.close();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const manifest = await services.models.check(values.model);
    const slides =
      values.all || values.query !== undefined
        ? await findSlides(services, values.query ?? '')
        : positionals.map((p) => {
            const [study, series, extra] = p.split('/');
            if (extra !== undefined || series === undefined) throw new UsageError(`'${p}' is not STUDY_UID/SERIES_UID`);
            return { studyUid: parseUid(study, 'study'), seriesUid: parseUid(series, 'series') };
          });
    if (slides.length === 0) throw new UsageError('No slides to embed: name them, or use --all or --query.');
    const minTissue = number(values['min-tissue'], 'min-tissue') ?? DEFAULT_MIN_TISSUE;
    if (minTissue < 0 || minTissue > 1) throw new UsageError('--min-tissue must be from 0 to 1');
    const request = { mpp: number(values.mpp, 'mpp'), stride: number(values.stride, 'stride'), minTissue, mppOverride: number(values['mpp-override'], 'mpp-override') };
    const jobs: Job[] = slides.map((s) => services.jobs.submit(createJobSpec(manifest, s, request)));
    const render = renderProgress(process.stderr, jobs);
    await new Promise<void>((resolve) => {
      const check = () => {
        render();
        if (jobs.every((j) => j.state === 'done' || j.state === 'failed' || j.state === 'cancelled')) resolve();
      };
      for (const job of jobs) services.jobs.subscribe(job.id, check);
      check();
    });
    render(true);
    for (const job of jobs) {
      const what = `${job.spec.studyUid}/${job.spec.seriesUid}`;
      if (job.state === 'done') console.log(`${what}\t${job.result!.runId}\t${job.progress.embedded} embedded, ${job.progress.skipped} skipped`);
      else console.log(`${what}\t${job.state}${job.error ? `\t${job.error.code}: ${job.error.message}` : ''}`);
    }
    if (interrupted) return 130;
    return jobs.every((j) => j.state === 'done') ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await services.close();
  }
}

// `npm run embed` runs this file; `wsi-gateway embed` imports runEmbed instead.
if (process.argv[1] === import.meta.filename) void runEmbed(process.argv.slice(2)).then((code) => process.exit(code));
