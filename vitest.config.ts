import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside the code, and integration tests that start a real Orthanc
// (one per run, from test/support/global-setup.ts). Integration tests skip with a message when Orthanc
// is not installed; CI installs it, so CI never skips them.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'viewer/src/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
