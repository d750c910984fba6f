/**
 * The folder half of the fuzz, as a process of its own so that strace can watch every file it opens
 * (fuzz-files.ts): `node --import tsx test/reliability/fuzz-child.ts OPTIONS.json RESULT.json`.
 * Progress lines go to stdout; the result (or the error that stopped it) to RESULT.json.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { runTargetFuzz, type TargetOptions } from './fuzz-target.js';

const [optionsFile, resultFile] = process.argv.slice(2);
if (!optionsFile || !resultFile) throw new Error('usage: fuzz-child.ts OPTIONS.json RESULT.json');
const options = JSON.parse(readFileSync(optionsFile, 'utf8')) as TargetOptions;
try {
  const result = await runTargetFuzz(options, (line) => console.log(line));
  writeFileSync(resultFile, JSON.stringify({ result }));
} catch (error) {
  writeFileSync(resultFile, JSON.stringify({ error: (error as Error).stack ?? String(error) }));
}
// The gateway is closed; anything still holding the loop (a stray timer) must not keep the child alive.
process.exit(0);
