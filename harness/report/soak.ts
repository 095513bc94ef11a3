// A soak's findings, from the run records of many runs of the same suites (npm run soak,
// scripts/soak.ts): per kernel, each test that failed at least once (failures over the runs in
// which it ran, and its first error), and every bounded figure (expectBounded) at its worst over
// the runs beside its bound, closest to its bound first. Pure functions over KernelRun records.
import { type Bounded, boundCell, marginPct, pctCell } from './margin.js';
import { mdEscape } from './report.js';
import type { KernelRun } from './run-record.js';

/** A test (or a suite file, outside any test) that failed in at least one run. */
export interface Flaky {
  suite: string;
  /** The test's full name, or OUTSIDE_ANY_TEST for a suite file's own error. */
  test: string;
  failures: number;
  /** The runs in which it ran: a run that skipped it does not count. */
  runs: number;
  /** The first line of its first error, and which run (1-based, on its kernel) that was. */
  firstError: string;
  firstRun: number;
}

/** A bounded figure at its worst over the runs: the run in which it came closest to (or past) its bound. */
export interface Worst extends Bounded {
  kernel: string;
  suite: string;
  test: string;
  /** How far the value stayed inside its bound, in percent of the bound; below 0: past it. */
  marginPct: number;
  /** Which run (1-based, on its kernel). */
  run: number;
  /** In how many runs the figure was measured. */
  seen: number;
}

export interface KernelSoak {
  kernel: string;
  runs: number;
  /** Runs with at least one failure. */
  failedRuns: number;
  flaky: Flaky[];
}

export interface SoakSummary {
  kernels: KernelSoak[];
  /** Failures over every run and kernel (a test that failed in 3 runs counts 3). */
  failures: number;
  figures: Worst[];
}

export const OUTSIDE_ANY_TEST = '(outside any test)';

const firstLine = (s: string | undefined) => (s ?? '').split('\n').find((l) => l.trim())?.trim() ?? '';

/**
 * One run's counts, as the CLI's closing summary line counts them: a test that never finished
 * failed, and so did every test of a suite file that failed outside any test (vitest calls them
 * skipped); a suite file that failed with no test counts once.
 */
export function runCounts(run: KernelRun): { passed: number; failed: number; skipped: number } {
  const n = { passed: 0, failed: 0, skipped: 0 };
  const broken = new Set(run.suiteErrors.map((e) => e.suite));
  for (const t of run.tests) {
    if (t.state === 'passed') n.passed++;
    else if (t.state === 'failed' || t.state === 'pending' || broken.has(t.suite)) n.failed++;
    else n.skipped++;
  }
  for (const s of broken) if (!run.tests.some((t) => t.suite === s)) n.failed++;
  return n;
}

/** The findings of a soak: `runs` in the order they ran, each one run of the suites on one kernel. */
export function summarizeSoak(runs: KernelRun[]): SoakSummary {
  const kernels = new Map<string, { soak: KernelSoak; flaky: Map<string, Flaky>; suiteRuns: Map<string, number> }>();
  const figures = new Map<string, Worst>();
  let failures = 0;
  for (const run of runs) {
    let k = kernels.get(run.kernel);
    if (!k) kernels.set(run.kernel, (k = { soak: { kernel: run.kernel, runs: 0, failedRuns: 0, flaky: [] }, flaky: new Map(), suiteRuns: new Map() }));
    const index = ++k.soak.runs;
    const suites = new Set([...run.tests.map((t) => t.suite), ...run.suiteErrors.map((e) => e.suite), ...Object.keys(run.suiteMs ?? {})]);
    for (const suite of suites) k.suiteRuns.set(suite, (k.suiteRuns.get(suite) ?? 0) + 1);
    // Every test that ran, and each suite file that failed outside any test (once per run).
    const outcomes = run.tests
      .filter((t) => t.state !== 'skipped')
      .map((t) => ({ suite: t.suite, test: t.name, failed: t.state !== 'passed', error: t.error }));
    for (const e of run.suiteErrors) if (!outcomes.some((o) => o.suite === e.suite && o.test === OUTSIDE_ANY_TEST)) outcomes.push({ suite: e.suite, test: OUTSIDE_ANY_TEST, failed: true, error: e.error });
    for (const o of outcomes) {
      const key = `${o.suite}\0${o.test}`;
      let f = k.flaky.get(key);
      if (!f) k.flaky.set(key, (f = { suite: o.suite, test: o.test, failures: 0, runs: 0, firstError: '', firstRun: 0 }));
      f.runs++;
      if (!o.failed) continue;
      if (!f.failures++) Object.assign(f, { firstError: firstLine(o.error), firstRun: index });
      failures++;
    }
    if (outcomes.some((o) => o.failed)) k.soak.failedRuns++;
    for (const t of run.tests) {
      if (t.state === 'skipped') continue;
      for (const b of t.bounds ?? []) {
        const key = `${run.kernel}\0${t.suite}\0${t.name}\0${b.name}`;
        const seen = figures.get(key);
        const m = marginPct(b);
        if (!seen || m < seen.marginPct) figures.set(key, { ...b, kernel: run.kernel, suite: t.suite, test: t.name, marginPct: m, run: index, seen: (seen?.seen ?? 0) + 1 });
        else seen.seen++;
      }
    }
  }
  const byName = (a: Flaky, b: Flaky) => a.suite.localeCompare(b.suite) || a.test.localeCompare(b.test);
  return {
    kernels: [...kernels.values()].map(({ soak, flaky, suiteRuns }) => {
      // A suite file's own failures are over the runs in which the file ran at all.
      for (const f of flaky.values()) if (f.test === OUTSIDE_ANY_TEST) f.runs = suiteRuns.get(f.suite) ?? f.runs;
      return { ...soak, flaky: [...flaky.values()].filter((f) => f.failures).sort(byName) };
    }),
    failures,
    figures: [...figures.values()].sort((a, b) => a.marginPct - b.marginPct || a.kernel.localeCompare(b.kernel) || a.test.localeCompare(b.test) || a.name.localeCompare(b.name)),
  };
}

/** The findings as Markdown (soak.md, and what the soak prints at the end). */
export function renderSoak(s: SoakSummary, title: string): string {
  const out = [`# ${title}`, ''];
  for (const k of s.kernels) {
    out.push(`## ${k.kernel}: ${k.runs} run${k.runs === 1 ? '' : 's'}, ${k.failedRuns} with a failure`, '');
    if (!k.flaky.length) out.push('Every test that ran passed in every run.', '');
    else {
      out.push('| test | failures/runs | first error |', '|---|---|---|');
      for (const f of k.flaky) out.push(`| ${mdEscape(`${f.suite}: ${f.test}`)} | ${f.failures}/${f.runs} | run ${f.firstRun}: ${mdEscape(f.firstError)} |`);
      out.push('');
    }
  }
  const runs = s.kernels.reduce((a, k) => a + k.runs, 0);
  const failedRuns = s.kernels.reduce((a, k) => a + k.failedRuns, 0);
  out.push(`**${s.failures} failure${s.failures === 1 ? '' : 's'}** in ${failedRuns} of ${runs} runs.`, '');
  out.push('## Bounded figures, closest to their bound first', '');
  if (!s.figures.length) out.push('No test of these suites checked a bounded figure (expectBounded).');
  else {
    out.push('| kernel | test | figure | worst | bound | margin | run (of runs measured) |', '|---|---|---|---|---|---|---|');
    for (const f of s.figures) out.push(`| ${mdEscape(f.kernel)} | ${mdEscape(`${f.suite}: ${f.test}`)} | ${mdEscape(f.name)} | ${f.value} | ${boundCell(f)} | ${pctCell(f.marginPct)} | ${f.run} (${f.seen}) |`);
  }
  return `${out.join('\n')}\n`;
}
