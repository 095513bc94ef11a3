// How suite files run under vitest, in one place for this repository's suites project
// (vitest.config.ts) and a project's own suites folder (npm run suite -- --dir): one guest per
// core and 2 GiB, files one after another in a worker process of their own (isolate: false) so
// that a file hands its guest to the next (harness/testing.ts), and the harness's global setup.
// Also how many of the harness's own test files run at once (testFileOptions), from the same cores
// and memory.
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { config, positiveInt } from './config.js';
import { REPO_ROOT } from './paths.js';

export { positiveInt };

/**
 * How many guests may run at once: BPF_HARNESS_PARALLEL, else one per core and 2 GiB of memory
 * each. A guest under test mostly waits for a round trip (a request, a command, a packet), so a
 * guest per core keeps the cores busy: `suite all` on 6.1 under TCG on 2 cores took 69 s with one
 * guest and 49 s with two (README, Speed).
 */
export function guestBudget(): number {
  return config.parallel.get() ?? Math.max(1, Math.min(availableParallelism(), Math.floor(totalmem() / 2 ** 31)));
}

/**
 * vitest options of the harness's own test files: they mostly wait (on guests that fail on
 * purpose, on timeouts, on npm), so one file runs per core (and 2 GiB of memory each). vitest
 * runs projects with different worker counts as separate groups: these go first, the suites after.
 */
export function testFileOptions() {
  return { maxWorkers: Math.max(1, Math.min(availableParallelism(), Math.floor(totalmem() / 2 ** 31))), sequence: { groupOrder: 0 } };
}

/**
 * vitest test options of suite files (everything but which files). `retry`: BPF_HARNESS_RETRIES
 * (--retries), vitest's own: a failed test runs again, its beforeEach hooks (the guest's checks,
 * harness/testing.ts) included; one that passes on a retry is reported flaky (harness/reporter.ts).
 */
export function suiteFileOptions() {
  const workers = guestBudget();
  return {
    pool: 'forks' as const,
    isolate: false,
    maxWorkers: workers,
    fileParallelism: workers > 1,
    retry: config.retries.get(),
    testTimeout: 240_000,
    hookTimeout: 900_000,
    globalSetup: [join(REPO_ROOT, 'harness/global-setup.ts')],
  };
}
