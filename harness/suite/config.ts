// How suite files run under vitest, in one place for this repository's suites project
// (vitest.config.ts) and a project's own suites folder (npm run suite -- --dir): as many guests
// as there are host cores for their vCPUs and 2 GiB each, files one after another in a worker process of their own (isolate: false) so
// that a file hands its guest to the next (harness/suite/testing.ts), and the harness's global setup.
// Also how many of the harness's own test files run at once (testFileOptions), from the same cores
// and memory.
import { availableParallelism, totalmem } from 'node:os';
import { positiveInt, settings } from '../base/config.js';
import { DEFAULT_CPUS } from '../guest/boot-command.js';
import { hostSlowness } from '../base/host-speed.js';
import { harnessModule } from '../base/paths.js';

export { positiveInt };

/**
 * How many guests may run at once: BPF_HARNESS_PARALLEL, else as many as the host has cores for
 * their vCPUs (DEFAULT_CPUS each) and 2 GiB of memory each, at least one. Guests are counted by
 * their vCPUs, not one per core: two 2-vCPU guests on two cores ask for twice the CPU there is
 * whenever both are busy (a busy loop in one, a boot in the other), and a guest whose vCPUs wait
 * for the host sees stalls that are not there and loses the timer ticks that sampling tests count.
 */
export function guestBudget(): number {
  return settings().parallel ?? Math.max(1, Math.min(Math.floor(availableParallelism() / DEFAULT_CPUS), Math.floor(totalmem() / 2 ** 31)));
}

/**
 * vitest options of the harness's own test files: they mostly wait (on guests that fail on
 * purpose, on timeouts, on npm), so one file runs per core (and 2 GiB of memory each). vitest
 * runs projects with different worker counts as separate groups: these go first, the suites after.
 */
export function testFileOptions() {
  return { maxWorkers: Math.max(1, Math.min(availableParallelism(), Math.floor(totalmem() / 2 ** 31))), sequence: { groupOrder: 0 }, testTimeout: Math.round(60_000 * hostSlowness()) };
}

/**
 * vitest's settings for every vitest process the harness starts (the project's, the CLI's, the
 * fixtures'): the TypeScript it transformed is kept on disk, keyed by content, in node_modules'
 * .experimental-vitest-cache, so that a run's later vitest processes (a matrix's children, each
 * `suite`) read the harness's modules instead of transforming them again: about 2 s of CPU each.
 */
export const vitestExperimental = { fsModuleCache: true };

/** How long a suite file's guest may take to come up on the reference machines: a first kernel download and image build included. */
export const SETUP_MS = 15 * 60_000;

/** SETUP_MS on this host: times its measured slowness (harness/base/host-speed.ts). */
export const setupTimeoutMs = (): number => Math.round(SETUP_MS * hostSlowness());

/**
 * vitest test options of suite files (everything but which files). `retry`: BPF_HARNESS_RETRIES
 * (--retries), vitest's own: a failed test runs again, its beforeEach hooks (the guest's checks,
 * harness/suite/testing.ts) included; one that passes on a retry is reported flaky (harness/report/reporter.ts).
 */
export function suiteFileOptions() {
  const workers = guestBudget();
  return {
    pool: 'forks' as const,
    isolate: false,
    maxWorkers: workers,
    fileParallelism: workers > 1,
    retry: settings().retries,
    // Bounds on the reference machines, times this host's measured slowness (harness/base/host-speed.ts).
    testTimeout: Math.round(240_000 * hostSlowness()),
    hookTimeout: setupTimeoutMs(),
    globalSetup: [harnessModule('suite/global-setup')],
  };
}
