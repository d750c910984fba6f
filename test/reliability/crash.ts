/**
 * Crash safety (issue 7, part 2): the gateway, a real process, is killed with SIGKILL again and again
 * while it embeds, and started again without anyone resubmitting the job: its durable job list
 * (pending-jobs.json) must bring the job back, the resumed job must continue from its last committed
 * batch, no file may ever be corrupt, and the final embeddings.npy and coords.npy must be byte for byte
 * those of an uninterrupted run (the reference, computed first by one gateway in its own store).
 *
 * Kill points are drawn from a seeded PRNG (CRASH_SEED replays a run): a random time into start-up and
 * resume, a random time after the process's first commit (inside or between batches), at the nth write
 * of progress.json's temp file (inside a commit), or at a file of finish() appearing. Where each kill
 * landed is read afterwards from what it left on disk (crash-store.ts), not assumed from the plan.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32 } from '../../src/embed/generate/graph.js';
import type { EmbedJobSpec } from '../../src/embed/jobs/job-queue.js';
import { sampleSlideId, wsiSamples, type WsiSample } from '../support/wsi-data.js';
import { listJobs, runCycle, sameRun, sleep, submit, type CyclePlan } from './crash-cycle.js';
import { checkStoreAfterKill, classifyKill, readRunBytes, readRunState, runDir, type KillPhase, type RunBytes, type RunState } from './crash-store.js';
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { formatCount, type Scenario, type Scale } from './scenario.js';

/** The seed of a run, in the report; CRASH_SEED replays another. */
export const DEFAULT_CRASH_SEED = 20_250_607;
const DIM = 32; // stain-texture
/**
 * Every patch (no tissue mask) of CMU-1 at 0.5 µm/px, in batches of 64: stride 56 px is 1,764 patches
 * (28 batches) for ci; stride 28 px is 7,056 patches a slide, two slides at once, for full.
 */
const PLANS: Record<Scale, { kills: number; finishKills: number; stridePx: number; samples: WsiSample[] }> = {
  ci: { kills: 8, finishKills: 1, stridePx: 56, samples: [wsiSamples.cmu1T256Q90] },
  full: { kills: 30, finishKills: 3, stridePx: 28, samples: [wsiSamples.cmu1T256Q90, wsiSamples.cmu1T256J2k] },
};

export const runCrash: Scenario = async (ctx) => {
  const started = performance.now();
  const seed = Number(process.env['CRASH_SEED'] ?? DEFAULT_CRASH_SEED);
  const random = mulberry32(seed);
  const plan = PLANS[ctx.scale];
  const failures: string[] = [];
  const logFile = path.join(ctx.workDir, 'gateway.log');
  const specs: EmbedJobSpec[] = [];
  for (const sample of plan.samples) {
    const [studyUid, seriesUid] = (await sampleSlideId(sample)).split('/') as [string, string];
    specs.push({ studyUid, seriesUid, model: 'stain-texture', mpp: 0.5, stridePx: plan.stridePx, minTissue: 0, mppOverride: undefined });
  }
  const start = (embedDir: string) => startGatewayProcess({ env: { DICOMWEB_URL: ctx.dicomwebUrl, EMBED_DIR: embedDir }, logFile });
  let gateway: GatewayProcess | undefined;

  const figures = { kills: 0, restarts: 0, resumes: 0, unobserved: 0, resumedAtCommit: 0, batchesCut: 0, rowsCut: 0, checks: 0, checksPassed: 0, totalPatches: 0 };
  const phases: Record<KillPhase, number> = { start: 0, embedding: 0, commit: 0, finish: 0 };
  let identical = false;
  let referenceSeconds = 0;
  let crashSeconds = 0;
  try {
    // The reference: one gateway, the jobs to completion, no kill.
    const referenceDir = path.join(ctx.workDir, 'reference');
    const referenceStarted = performance.now();
    gateway = await start(referenceDir);
    for (const spec of specs) await submit(gateway, spec);
    const reference = await runCycle(gateway, {}, specs.map((s) => runDir(referenceDir, s)), specs.map(() => true), specs);
    await gateway.stop();
    gateway = undefined;
    referenceSeconds = (performance.now() - referenceStarted) / 1000;
    const notDone = reference.seen.filter((j) => j.state !== 'done');
    if (notDone.length > 0) throw new Error(`the reference run ended ${notDone.map((j) => `${j.state}: ${j.error?.message ?? ''}`).join(', ')}`);
    const references: RunBytes[] = await Promise.all(specs.map((s) => readRunBytes(runDir(referenceDir, s))));
    const totals = specs.map((s) => reference.seen.find((j) => sameRun(s, j.spec))!.progress.total);
    figures.totalPatches = totals.reduce((a, b) => a + b, 0);
    // The machine may be shared: the rate is measured again in every process that commits.
    let patchesPerMs = (reference.ratePerSecond ?? figures.totalPatches / referenceSeconds) / 1000;
    ctx.log(`crash: reference run of ${figures.totalPatches} patches in ${referenceSeconds.toFixed(1)} s`);

    // The crashed run: kill, check, restart without resubmitting, until every job has ended.
    const embedDir = path.join(ctx.workDir, 'crashed');
    await mkdir(embedDir, { recursive: true });
    const dirs = specs.map((s) => runDir(embedDir, s));
    const crashStarted = performance.now();
    let cycleStartMs = Date.now();
    gateway = await start(embedDir);
    for (const spec of specs) await submit(gateway, spec);
    let before: RunState[] = await Promise.all(dirs.map((d) => readRunState(d, DIM)));
    let setupMs = 1000;
    let finishKillsLeft = plan.finishKills;
    for (let cycle = 1; ; cycle++) {
      // Kills spread over the work left, so that the planned number fits before the jobs end.
      const remainingMs = before.reduce((n, r, i) => n + totals[i]! - r.gridDone, 0) / patchesPerMs;
      const windowMs = Math.max(50, remainingMs / (Math.max(1, plan.kills - figures.kills) + 2));
      const cyclePlan: CyclePlan = {};
      if (figures.kills < plan.kills) {
        const draw = random();
        if (draw < 0.2) cyclePlan.killAfterReadyMs = random() * setupMs;
        else if (draw < 0.4) cyclePlan.killAtCommitWrite = 1 + Math.floor(random() * 3);
        else cyclePlan.killAfterFirstCommitMs = random() * 2 * windowMs;
      }
      if (finishKillsLeft > 0) cyclePlan.killOnFinishFile = ['embeddings.npy.tmp', 'coords.npy.tmp', 'manifest.json.tmp'][Math.floor(random() * 3)];
      const open = before.map((r, i) => !r.complete && r.gridDone < totals[i]!);
      const outcome = await runCycle(gateway, cyclePlan, dirs, open, specs);
      if (outcome.setupMs !== undefined) setupMs = (setupMs + outcome.setupMs) / 2;
      if (outcome.ratePerSecond !== undefined) patchesPerMs = (patchesPerMs + outcome.ratePerSecond / 1000) / 2;
      const after = await Promise.all(dirs.map((d) => readRunState(d, DIM)));
      if (cycle > 1) {
        // Resumed without anyone asking (unless killed before our first look); at what the last kill left committed.
        const unfinished = specs.filter((_, i) => !before[i]!.complete);
        const back = unfinished.filter((s) => outcome.seen.some((j) => sameRun(s, j.spec))).length;
        figures.resumes += back;
        figures.unobserved += unfinished.length - back;
        for (const job of outcome.seen) {
          const at = /^Resumed: (\d+) of/.exec(job.notes.find((n) => n.startsWith('Resumed:')) ?? '')?.[1];
          const committed = before[specs.findIndex((s) => sameRun(s, job.spec))]!.gridDone;
          if (at === undefined) continue;
          if (Number(at) === committed) figures.resumedAtCommit++;
          else failures.push(`cycle ${cycle}: a job resumed at patch ${at}, but ${committed} were committed`);
        }
      }
      if (!outcome.killed) {
        await finishCheck(gateway, embedDir, specs, references, failures, start, figures);
        gateway = undefined;
        const finals = await Promise.all(dirs.map((d) => readRunBytes(d)));
        identical = finals.every((f, i) => f.embeddingsNpy.equals(references[i]!.embeddingsNpy) && f.coordsNpy.equals(references[i]!.coordsNpy));
        if (!identical) failures.push('the final embeddings.npy or coords.npy differ from the uninterrupted run');
        break;
      }
      gateway = undefined;
      figures.kills++;
      const phase = classifyKill(before, after, cycleStartMs);
      phases[phase]++;
      if (phase === 'finish') finishKillsLeft--;
      const cut = after.reduce((n, r) => n + r.rowsPastCommit, 0);
      if (cut > 0) figures.batchesCut++;
      figures.rowsCut += cut;
      const done = after.reduce((n, r) => n + r.gridDone, 0);
      ctx.log(`crash: kill ${figures.kills} (${phase}) with ${done} of ${figures.totalPatches} patches committed`);
      const problems = await checkStoreAfterKill(embedDir, specs, references, DIM, `after kill ${figures.kills} (${phase})`);
      figures.checks++;
      if (problems.length === 0) figures.checksPassed++;
      failures.push(...problems);

      cycleStartMs = Date.now();
      gateway = await start(embedDir);
      figures.restarts++;
      before = after;
    }
    crashSeconds = (performance.now() - crashStarted) / 1000;
  } catch (error) {
    failures.push(`the scenario stopped: ${(error as Error).message}`);
  } finally {
    await gateway?.kill9();
  }

  if (figures.kills < plan.kills) failures.push(`${figures.kills} kills, fewer than the ${plan.kills} planned: the job ended first`);
  if (phases.embedding + phases.commit === 0) failures.push('no kill landed while batches were being embedded or committed');
  const sorted = ['start', 'embedding', 'commit', 'finish'] as const;
  return {
    title: 'Crash safety: kill -9 during embedding',
    summary:
      `The gateway (its own process) embedded ${specs.length === 1 ? 'one slide' : `${specs.length} slides at once`} and was killed with SIGKILL ${figures.kills} times at random points, ` +
      'then started again without the job being resubmitted: its durable job list resumed it each time. After every kill the store was checked ' +
      '(every JSON file valid, committed rows equal to the reference\'s, complete runs matching their manifest); the final files were compared byte for byte with an uninterrupted run.',
    figures: [
      { label: 'Seed', value: String(seed) },
      { label: 'Work', value: `${specs.length} job(s), stain-texture at 0.5 µm/px, stride ${plan.stridePx} px, ${formatCount(figures.totalPatches)} patches` },
      { label: 'Kills (kill -9)', value: formatCount(figures.kills) },
      ...sorted.map((p) => ({ label: `Kills ${{ start: 'during start-up and resume', embedding: 'mid-embedding (between or inside batches)', commit: 'inside a commit (progress.json being replaced)', finish: 'during finish (.npy files, manifest)' }[p]}`, value: formatCount(phases[p]) })),
      { label: 'Restarts', value: formatCount(figures.restarts) },
      { label: 'Resumes observed (job back without resubmission)', value: `${formatCount(figures.resumes)} (${formatCount(figures.unobserved)} killed before the first look)` },
      { label: 'Resumed exactly at the last committed batch', value: formatCount(figures.resumedAtCommit) },
      { label: 'Kills that left a batch half-written (cut off at resume)', value: formatCount(figures.batchesCut) },
      { label: 'Rows written past the commit point, redone', value: formatCount(figures.rowsCut) },
      { label: 'Store checks passed', value: `${formatCount(figures.checksPassed)} of ${formatCount(figures.checks)}` },
      { label: 'Final files identical to the uninterrupted run', value: identical ? 'yes, byte for byte' : 'no' },
      { label: 'Uninterrupted run', value: `${referenceSeconds.toFixed(1)} s` },
      { label: 'Run with kills, restarts included', value: `${crashSeconds.toFixed(1)} s` },
    ],
    failures,
    seconds: (performance.now() - started) / 1000,
  };
};

/**
 * Once every job has ended: the pending list empties, a graceful stop leaves a store that checks out and
 * files equal to the reference, and one more start resumes nothing (a finished job is not run forever).
 */
async function finishCheck(
  gateway: GatewayProcess,
  embedDir: string,
  specs: EmbedJobSpec[],
  references: RunBytes[],
  failures: string[],
  start: (dir: string) => Promise<GatewayProcess>,
  figures: { checks: number; checksPassed: number },
): Promise<void> {
  const jobs = ((await listJobs(gateway)) ?? []).filter((j) => specs.some((s) => sameRun(s, j.spec)));
  const failed = jobs.filter((j) => j.state !== 'done');
  if (failed.length > 0) failures.push(`jobs ended ${failed.map((j) => `${j.state} (${j.error?.message ?? ''})`).join(', ')}`);
  await gateway.stop();
  const problems = await checkStoreAfterKill(embedDir, specs, references, DIM, 'at the end');
  figures.checks++;
  if (problems.length === 0) figures.checksPassed++;
  failures.push(...problems);
  const again = await start(embedDir);
  try {
    await sleep(1500);
    const resumed = (await listJobs(again)) ?? [];
    if (resumed.length > 0) failures.push(`a start after the jobs ended resumed ${resumed.length} job(s)`);
  } finally {
    await again.stop();
  }
}
