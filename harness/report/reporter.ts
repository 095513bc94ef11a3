// The vitest reporter of suite runs: records each test's outcome per kernel (harness/report/run-record.ts),
// renders the report of a run of its own, and prints the closing summary line. A test that failed
// and then passed on a retry (--retries) is flaky: said when it happens, counted apart in the
// summary, and it fails the run (the exit code) unless flaky tests are allowed (--flaky-ok).
import { basename, dirname, join } from 'node:path';
import type { Reporter, TestCase, TestModule } from 'vitest/node';
import { loadCatalog } from '../kernels/catalog.js';
import { resultsRoot, settings } from '../base/config.js';
import { timestamp } from '../base/paths.js';
import type { Bounded } from './margin.js';
import type { PhaseTimes, SetupTimes } from '../base/phases.js';
import { flakyNote, writeReports } from './report.js';
import { type KernelFault, type KernelRun, rerunCommand, writeKernelRun } from './run-record.js';

/** A test that failed and then passed on a retry: the error of its first failed attempt. */
function flakyOf(t: TestCase): { firstError: string; attempts: number } | undefined {
  const r = t.result();
  const d = t.diagnostic();
  if (r.state !== 'passed' || !d?.flaky) return undefined;
  // vitest keeps the errors of the failed attempts on a test that passed on a retry, in order.
  return { firstError: r.errors?.[0]?.message ?? '(the failed attempt left no error message)', attempts: d.retryCount + 1 };
}

const suiteOf = (moduleId: string) => basename(dirname(moduleId));
/** A suite file: under BPF_HARNESS_SUITES_DIR (a project's own, --dir) or a suites/ folder. */
const isSuite = (m: TestModule) => {
  const own = settings().suitesDir;
  return own ? m.moduleId.startsWith(`${own}/`) : m.moduleId.includes('/suites/');
};

/** Vitest reporter: writes <run dir>/kernel-<name>.json when BPF_HARNESS_RUN_DIR is set. */
export default class RunRecorder implements Reporter {
  private started = Date.now();

  onTestRunStart(): void {
    this.started = Date.now();
  }

  /** A flaky test is said at once, in the live output, not only in the report at the end. */
  onTestCaseResult(t: TestCase): void {
    const flaky = flakyOf(t);
    if (flaky) console.log(`[harness] FLAKY: ${suiteOf(t.module.moduleId)} > ${t.fullName} failed, then passed on attempt ${flaky.attempts}; first failure: ${flaky.firstError.split('\n')[0]}`);
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    this.recordKernel(modules);
    // One plain closing line over everything that ran, for CI systems that read it.
    console.log(`\n${summaryLine(modules)}`);
    // Flaky tests pass in vitest's eyes; they fail the run unless allowed. vitest only ever sets
    // a non-zero exit code, so this one stands.
    if (countTests(modules).flaky && !settings().flakyOk) process.exitCode = 1;
  }

  private recordKernel(modules: ReadonlyArray<TestModule>): void {
    if (!modules.some(isSuite)) return;
    // A run of its own (not one kernel of a matrix, which the CLI reports): its own directory.
    const runDir = settings().runDir;
    const own = !runDir;
    const dir = runDir ?? join(resultsRoot(), `run-${timestamp()}-${process.pid}`);
    const run: KernelRun = { kernel: settings().kernel ?? loadCatalog().default, tests: [], suiteErrors: [], wallMs: Date.now() - this.started, suiteMs: {}, setupMs: {} };
    for (const mod of modules) {
      if (!isSuite(mod)) continue;
      const suite = suiteOf(mod.moduleId);
      run.suiteMs![suite] = Math.round(mod.diagnostic().duration);
      const { setup } = mod.meta() as { setup?: SetupTimes };
      if (setup) run.setupMs![suite] = setup;
      for (const err of mod.errors()) run.suiteErrors.push({ suite, error: err.message ?? String(err) });
      for (const t of mod.children.allTests()) {
        const r = t.result();
        const meta = t.meta() as { consoleLog?: string; agentLog?: string; phases?: PhaseTimes; faults?: KernelFault[]; bounds?: Bounded[] };
        // A test that never finished (its worker crashed, the run was cut) is a failure, not a skip.
        const unfinished = r.state === 'pending';
        const flaky = flakyOf(t);
        const retries = t.diagnostic()?.retryCount ?? 0;
        run.tests.push({
          suite,
          name: t.fullName,
          state: unfinished ? 'failed' : r.state,
          durationMs: Math.round(t.diagnostic()?.duration ?? 0),
          note: r.state === 'skipped' ? r.note : undefined,
          error:
            r.state === 'failed'
              ? r.errors.map((e) => e.message).join('\n')
              : unfinished
                ? 'the test did not finish: its worker process ended first (a crash, or the run was cut short)'
                : undefined,
          faults: meta.faults?.length ? meta.faults : undefined,
          rerun: r.state === 'failed' || unfinished || flaky ? rerunCommand(suite, run.kernel, t.name, settings().suitesDir) : undefined,
          flaky: flaky ? true : undefined,
          firstError: flaky?.firstError,
          attempts: retries > 0 ? retries + 1 : undefined,
          consoleLog: meta.consoleLog,
          agentLog: meta.agentLog,
          phases: meta.phases,
          bounds: meta.bounds?.length ? meta.bounds : undefined,
        });
      }
    }
    writeKernelRun(dir, run);
    if (own) {
      const r = writeReports(dir);
      console.log(`\n${r.table}\n\nreport: ${r.markdown}\njunit:  ${r.junit}`);
    }
  }
}

/**
 * The run's counts. A test counts as failed when it failed, when it never finished, or when its
 * file's setup failed so that it never ran (vitest itself calls those skipped); a file that failed
 * with no test at all (a module error) counts once. A flaky test (failed, then passed on a retry)
 * counts as flaky, not passed.
 */
function countTests(modules: ReadonlyArray<TestModule>) {
  const n = { passed: 0, failed: 0, skipped: 0, flaky: 0, brokenFiles: 0 };
  for (const mod of modules) {
    const setupFailed = mod.errors().length > 0;
    const tests = [...mod.children.allTests()];
    if (setupFailed) n.brokenFiles++;
    for (const t of tests) {
      const state = t.result().state;
      if (state === 'passed' && t.diagnostic()?.flaky) n.flaky++;
      else if (state === 'passed') n.passed++;
      else if (state === 'failed' || state === 'pending' || setupFailed) n.failed++;
      else n.skipped++;
    }
    if (setupFailed && !tests.length) n.failed++;
  }
  return n;
}

/** The closing line: passed, failed, skipped, and flaky when there were any (with whether they fail the run). */
export function summaryLine(modules: ReadonlyArray<TestModule>): string {
  const n = countTests(modules);
  const broken = n.brokenFiles ? ` (${n.brokenFiles} suite file${n.brokenFiles > 1 ? 's' : ''} failed outside any test; their tests count as failed)` : '';
  const flaky = n.flaky ? `, ${n.flaky} flaky (${flakyNote(settings().flakyOk)})` : '';
  return `summary: ${n.passed} passed, ${n.failed} failed, ${n.skipped} skipped${flaky}${broken}`;
}
