// The entry point of a decode pool worker, in plain JavaScript so that Node starts it as it is under
// tsx, `node --import tsx` and vitest alike (a worker gets none of vitest's transforms). It loads the
// TypeScript body with tsx's scoped import, which also works where tsx is already registered.
import { fileURLToPath, URL } from 'node:url';
import { tsImport } from 'tsx/esm/api';

await tsImport('./decode-worker.ts', {
  parentURL: import.meta.url,
  tsconfig: fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)),
});
