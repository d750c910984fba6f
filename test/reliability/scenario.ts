/**
 * The contract of the reliability suite (issue 7). Each scenario (faults, crash, fuzz, soak, security)
 * is one module in this folder exporting a `Scenario`. It runs twice over: in reduced form (`scale:
 * 'ci'`, a minute or so) from a `test/reliability-*.test.ts` file that asserts `failures` is empty, and
 * in full (`scale: 'full'`) from `npm run reliability` (run.ts), which writes docs/reliability.md from
 * every scenario's figures. A scenario checks its own invariants and reports what broke in `failures`
 * rather than throwing, so one broken invariant does not hide the figures of the rest.
 */
import { readMemoryMiB } from '../../bench/support/children.js';

/** `ci`: the reduced form run by `npm test`; `full`: the sizes the issue asks for. */
export type Scale = 'ci' | 'full';

export interface ScenarioContext {
  scale: Scale;
  /** A real Orthanc's DICOMweb root, loaded with every DICOM file in ../shared/wsi. */
  dicomwebUrl: string;
  /** The same Orthanc's REST root (uploads of generated slides, if a scenario needs more data). */
  orthancUrl: string;
  /** A fresh temp folder for this scenario's files; removed by the caller afterwards. */
  workDir: string;
  /** Progress for a person watching a long run (one line each; not part of the report). */
  log(line: string): void;
}

/** One row of the report: "Faults injected", "12,345". */
export interface Figure {
  label: string;
  value: string;
}

export interface ScenarioResult {
  /** Section title in docs/reliability.md ("Faults between the gateway and the PACS"). */
  title: string;
  /** What was done, in a sentence or two, for the report. */
  summary: string;
  figures: Figure[];
  /** Each broken invariant, in words; empty when the scenario passed. */
  failures: string[];
  /** Peak resident memory of the process under test in bytes, where the scenario measured it. */
  peakRssBytes?: number;
  seconds: number;
}

export type Scenario = (context: ScenarioContext) => Promise<ScenarioResult>;

/** 12345 -> "12,345"; the report's numbers are read by people. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Bytes -> "123.4 MiB". */
export function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Resident memory of a process now, and its peak (VmHWM), in bytes; undefined where /proc is absent. */
export async function readProcessMemory(pid: number): Promise<{ rssBytes: number; peakRssBytes: number } | undefined> {
  const mib = await readMemoryMiB(pid);
  return mib && { rssBytes: mib.rssMiB * 2 ** 20, peakRssBytes: mib.peakMiB * 2 ** 20 };
}
