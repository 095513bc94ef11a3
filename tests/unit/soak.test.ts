// A soak's findings from synthetic run records: failure rates over the runs in which a test ran,
// the first error, each bounded figure at its worst with its margin, closest to its bound first.
import { expect, test } from 'vitest';
import type { KernelRun, TestRecord } from '../../harness/report/run-record.js';
import { marginPct } from '../../harness/report/margin.js';
import { OUTSIDE_ANY_TEST, renderSoak, runCounts, summarizeSoak } from '../../harness/report/soak.js';

const t = (name: string, state: TestRecord['state'], more: Partial<TestRecord> = {}): TestRecord => ({ suite: 'perf_event', name, state, durationMs: 100, ...more });
const run = (kernel: string, tests: TestRecord[], suiteErrors: KernelRun['suiteErrors'] = []): KernelRun => ({ kernel, tests, suiteErrors, wallMs: 1000, suiteMs: { perf_event: 900 } });
const idle = (value: number, atMost = 5) => ({ bounds: [{ name: 'idle samples', value, atMost }] });

test('a margin is the room left inside the bound, in percent of it; the nearer bound of two counts', () => {
  expect(marginPct({ name: 'a', value: 45, atMost: 50 })).toBeCloseTo(10);
  expect(marginPct({ name: 'a', value: 15, atLeast: 20 })).toBeCloseTo(-25);
  expect(marginPct({ name: 'a', value: 50, atLeast: 25, atMost: 52 })).toBeCloseTo((100 * 2) / 52);
  expect(marginPct({ name: 'a', value: 5, atMost: 5 })).toBe(0);
  expect(marginPct({ name: 'a', value: 0, atMost: 0 })).toBe(0);
  expect(marginPct({ name: 'a', value: 1, atMost: 0 })).toBe(-Infinity);
  expect(marginPct({ name: 'a', value: Number.NaN, atMost: 3 })).toBe(-Infinity);
});

test('failure rates count only the runs in which a test ran, with the first error\'s first line', () => {
  const s = summarizeSoak([
    run('6.1', [t('sampler', 'passed'), t('sleeper', 'skipped', { note: 'needs 6.2' }), t('busy', 'passed')]),
    run('6.1', [t('sampler', 'failed', { error: 'expected 3 to be 5\n  at line 7' }), t('sleeper', 'passed'), t('busy', 'passed')]),
    run('6.1', [t('sampler', 'failed', { error: 'a later error' }), t('sleeper', 'failed', { error: '\nsleeper error' }), t('busy', 'pending')]),
    run('5.10', [t('sampler', 'passed'), t('sleeper', 'skipped'), t('busy', 'passed')]),
  ]);
  expect(s.failures).toBe(4);
  expect(s.kernels.map((k) => [k.kernel, k.runs, k.failedRuns])).toEqual([['6.1', 3, 2], ['5.10', 1, 0]]);
  expect(s.kernels[0]!.flaky).toEqual([
    { suite: 'perf_event', test: 'busy', failures: 1, runs: 3, firstError: '', firstRun: 3 },
    { suite: 'perf_event', test: 'sampler', failures: 2, runs: 3, firstError: 'expected 3 to be 5', firstRun: 2 },
    // Skipped in the first run: two runs, not three.
    { suite: 'perf_event', test: 'sleeper', failures: 1, runs: 2, firstError: 'sleeper error', firstRun: 3 },
  ]);
  expect(s.kernels[1]!.flaky).toEqual([]);
});

test('a suite file that failed outside any test counts once per run, over the runs in which the file ran', () => {
  const s = summarizeSoak([
    run('6.1', [t('sampler', 'passed')]),
    run('6.1', [t('sampler', 'skipped')], [{ suite: 'perf_event', error: 'the guest did not boot\nconsole tail' }, { suite: 'perf_event', error: 'again' }]),
  ]);
  expect(s.failures).toBe(1);
  expect(s.kernels[0]!.flaky).toEqual([{ suite: 'perf_event', test: OUTSIDE_ANY_TEST, failures: 1, runs: 2, firstError: 'the guest did not boot', firstRun: 2 }]);
  expect(runCounts(run('6.1', [t('a', 'passed'), t('b', 'skipped')], [{ suite: 'perf_event', error: 'x' }]))).toEqual({ passed: 1, failed: 1, skipped: 0 });
  expect(runCounts(run('6.1', [t('a', 'passed'), t('b', 'skipped'), t('c', 'pending')]))).toEqual({ passed: 1, failed: 1, skipped: 1 });
});

test('each bounded figure at its worst over the runs (failing runs too, skipped ones not), closest first', () => {
  const s = summarizeSoak([
    run('6.1', [t('sleeper', 'passed', idle(1)), t('busy', 'passed', { bounds: [{ name: 'busy samples', value: 40, atLeast: 25, atMost: 52 }] })]),
    run('6.1', [t('sleeper', 'passed', idle(4)), t('busy', 'passed', { bounds: [{ name: 'busy samples', value: 30, atLeast: 25, atMost: 52 }] })]),
    // A bound derived from the kernel's own figure changes from run to run: the margin decides.
    run('6.1', [t('sleeper', 'passed', idle(6, 12)), t('busy', 'skipped', { bounds: [{ name: 'busy samples', value: 0, atLeast: 25 }] })]),
    run('5.10', [t('sleeper', 'failed', { ...idle(7), error: 'idle samples = 7, bound: at most 5' })]),
  ]);
  expect(s.figures.map((f) => [f.kernel, f.test, f.name, f.value, f.atMost, f.atLeast, Math.round(f.marginPct), f.run, f.seen])).toEqual([
    ['5.10', 'sleeper', 'idle samples', 7, 5, undefined, -40, 1, 1],
    ['6.1', 'busy', 'busy samples', 30, 52, 25, 20, 2, 2],
    ['6.1', 'sleeper', 'idle samples', 4, 5, undefined, 20, 2, 3],
  ]);
  const md = renderSoak(s, 'soak: perf_event');
  expect(md).toContain('| 5.10 | perf_event: sleeper | idle samples | 7 | ≤ 5 | -40.0% (past it) | 1 (1) |');
  expect(md).toContain('| 6.1 | perf_event: busy | busy samples | 30 | ≥ 25, ≤ 52 | 20.0% | 2 (2) |');
  expect(md).toContain('| perf_event: sleeper | 1/1 | run 1: idle samples = 7, bound: at most 5 |');
  expect(md).toContain('**1 failure** in 1 of 4 runs.');
});
