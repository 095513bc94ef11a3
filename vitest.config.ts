import { defineConfig } from 'vitest/config';
import { suiteFileOptions, testFileOptions, vitestExperimental } from './harness/suite/config.js';

export default defineConfig({
  test: {
    // verbose: each test with pass/fail and its time; reporter.ts: the run records and the kernel × program-type report.
    reporters: ['verbose', './harness/report/reporter.ts'],
    experimental: vitestExperimental,
    projects: [
      {
        test: {
          // Host only: no guest, no QEMU, no CLI run; well under a minute.
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          ...testFileOptions(),
          // Its files share worker processes instead of each starting one (they leave no state
          // behind: settings overrides are scoped, spies restored): 24 s of CPU to 16 s for the project.
          isolate: false,
        },
      },
      {
        test: {
          // The harness's own tests that boot guests, run QEMU, the agent, or the CLI.
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
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
