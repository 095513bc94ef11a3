import { defineConfig } from 'vitest/config';
import { suiteFileOptions, testFileOptions } from './harness/suite/config.js';

export default defineConfig({
  test: {
    // verbose: each test with pass/fail and its time; reporter.ts: the run records and the kernel × program-type report.
    reporters: ['verbose', './harness/report/reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts'],
          // The CLI's build (dist/), which these tests run, compiled from harness/ when it changed.
          globalSetup: ['tests/helpers/build-setup.ts'],
          // One file per core: they mostly wait (harness/suite/config.ts).
          ...testFileOptions(),
        },
      },
      {
        test: {
          name: 'suites',
          include: ['suites/**/*.test.ts'],
          // One guest per two cores; a file hands its guest to the next (harness/suite/config.ts).
          ...suiteFileOptions(),
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
