import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Guests under TCG are CPU-bound: by default run one suite file (one VM) per two cores.
const vmWorkers = Number(process.env.BPF_HARNESS_PARALLEL) || Math.max(1, Math.floor(availableParallelism() / 2));

export default defineConfig({
  test: {
    // verbose: each test with pass/fail and its time; reporter.ts: the run records and the kernel × program-type report.
    reporters: ['verbose', './harness/reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'suites',
          include: ['suites/**/*.test.ts'],
          // Files run one after another in a worker process of their own (isolate: false), so that
          // a file hands its guest, returned to how it booted, to the next (harness/testing.ts).
          pool: 'forks',
          isolate: false,
          maxWorkers: vmWorkers,
          fileParallelism: vmWorkers > 1,
          testTimeout: 240_000,
          hookTimeout: 900_000,
          globalSetup: ['harness/global-setup.ts'],
        },
      },
    ],
  },
});
