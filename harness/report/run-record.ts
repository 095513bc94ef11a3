// A run's records: what each test on one kernel did (outcome, skip reason, flaky with its first
// failure, logs, the command that re-runs it), one JSON file per kernel in the run directory;
// shards of one kernel merge on reading.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isObject, readJsonFile } from '../base/json-file.js';
import { fileSafe } from '../base/paths.js';
import type { Bounded } from './margin.js';
import type { PhaseTimes, SetupTimes } from '../base/phases.js';
import { shq } from '../base/quote.js';

/** A kernel fault printed while a test ran: its kind, its line, and the kernel's lines around it. */
export interface KernelFault {
  /** panic, oops, warning, rcu-stall, … (harness/guest/console.ts). */
  kind: string;
  line: string;
  /** The lines before the fault line and the kernel's report after it, as the console had them. */
  lines: string[];
}

export interface TestRecord {
  suite: string;
  name: string;
  state: 'passed' | 'failed' | 'skipped' | 'pending';
  durationMs: number;
  note?: string;
  error?: string;
  consoleLog?: string;
  agentLog?: string;
  /** The kernel faults printed while the test ran (each fails it), whatever else failed first. */
  faults?: KernelFault[];
  /** For a failed or flaky test: the command that runs just this test again on this kernel. */
  rerun?: string;
  /**
   * The test failed and then passed on a retry (--retries): its state is 'passed', but it is
   * never counted as a plain pass, and it fails the run unless --flaky-ok.
   */
  flaky?: boolean;
  /** For a flaky test: the error of its first failed attempt. */
  firstError?: string;
  /** How many times the test ran, when it ran more than once (--retries). */
  attempts?: number;
  /** Where the test's time went (harness/base/phases.ts), in milliseconds. */
  phases?: PhaseTimes;
  /** The test's bounded figures (expectBounded), each with its value in this run and its bound. */
  bounds?: Bounded[];
}

export interface KernelRun {
  kernel: string;
  tests: TestRecord[];
  /** Errors outside any test, e.g. a guest that did not boot. */
  suiteErrors: { suite: string; error: string }[];
  wallMs: number;
  /** Wall time of each suite file, boot and teardown included. */
  suiteMs?: Record<string, number>;
  /** Each suite file's set-up: compile, boot, agent start, copy, baseline. */
  setupMs?: Record<string, SetupTimes>;
}

const regexEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The one-line command that runs one test of a suite again, alone, on one kernel: this
 * repository's npm script, or for a project's own suites folder (`dir`, --dir) the package's
 * command with that folder.
 */
export function rerunCommand(suite: string, kernel: string, testName: string, dir?: string): string {
  const tail = `--kernel ${shq(kernel)} -t ${shq(regexEscape(testName))}`;
  return dir ? `npx bpf-harness suite --dir ${shq(dir)} ${suite} ${tail}` : `npm run suite ${suite} -- ${tail}`;
}

/** Path of a kernel's record in a run directory. */
export const kernelRunPath = (dir: string, kernel: string): string => join(dir, `kernel-${fileSafe(kernel)}.json`);

export function writeKernelRun(dir: string, run: KernelRun): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(kernelRunPath(dir, run.kernel), JSON.stringify(run, null, 1));
}

/** Reads the per-kernel records of one or more runs; records of one kernel (CI shards) merge. */
export function readRuns(...dirs: string[]): KernelRun[] {
  const byKernel = new Map<string, KernelRun>();
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((n) => /^kernel-.*\.json$/.test(n)).sort()) {
      const run = readJsonFile<KernelRun>(join(dir, f), (v) =>
        isObject(v) && typeof v.kernel === 'string' && Array.isArray(v.tests) && Array.isArray(v.suiteErrors) ? null : 'not a run record (kernel, tests, suiteErrors)',
      );
      const seen = byKernel.get(run.kernel);
      if (!seen) byKernel.set(run.kernel, run);
      else {
        seen.tests.push(...run.tests);
        seen.suiteErrors.push(...run.suiteErrors);
        seen.wallMs = Math.max(seen.wallMs, run.wallMs);
        seen.suiteMs = { ...seen.suiteMs, ...run.suiteMs };
        seen.setupMs = { ...seen.setupMs, ...run.setupMs };
      }
    }
  }
  return [...byKernel.values()];
}
