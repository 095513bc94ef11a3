// expectBounded: asserts a figure against its bounds and records it on the running test, failing
// or not; the reporter carries the records into the run's record (kernel-<name>.json).
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { expectBounded } from '../../harness/index.js';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { writeReports } from '../../harness/report/report.js';
import type { KernelRun } from '../../harness/report/run-record.js';

const failureOf = (f: () => void): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
};

test('a figure within its bounds passes and is recorded', ({ task }) => {
  expectBounded('busy samples', 40, { atLeast: 25, atMost: 52 });
  expectBounded('idle samples', 5, { atMost: 5 });
  expectBounded('rate', 0.5, { atLeast: 0.5 });
  expect(task.meta.bounds).toEqual([
    { name: 'busy samples', value: 40, atMost: 52, atLeast: 25 },
    { name: 'idle samples', value: 5, atMost: 5 },
    { name: 'rate', value: 0.5, atLeast: 0.5 },
  ]);
});

test('a figure past its bound fails with its name, value, bound and detail, and is recorded first', ({ task }) => {
  const over = failureOf(() => expectBounded('idle samples', 7, { atMost: 5 }, 'the sleeper, pid 42'));
  expect(over.message).toContain('idle samples = 7, bound: at most 5 (the sleeper, pid 42)');
  expect(over.message).toMatch(/expected 7 to be less than or equal to 5/);
  const under = failureOf(() => expectBounded('busy samples', 3, { atLeast: 25, atMost: 52 }));
  expect(under.message).toContain('busy samples = 3, bound: at least 25 and at most 52');
  expect(task.meta.bounds).toEqual([
    { name: 'idle samples', value: 7, atMost: 5 },
    { name: 'busy samples', value: 3, atMost: 52, atLeast: 25 },
  ]);
});

test('a figure needs a bound, and a name once per test', ({ task }) => {
  expect(() => expectBounded('x', 1, {})).toThrow(/give atMost, atLeast or both/);
  expect(() => expectBounded('x', 1, { atMost: Number.NaN })).toThrow(/finite number/);
  expectBounded('x', 1, { atMost: 2 });
  expect(() => expectBounded('x', 1, { atMost: 2 })).toThrow(/"x" was already checked in this test/);
  expect(task.meta.bounds).toHaveLength(1);
});

test('the run record carries each test\'s figures, the failing test\'s too', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bounds-run-'));
  const r = await execa(join(REPO_ROOT, 'node_modules/.bin/vitest'), ['run', '--config', 'tests/fixtures/guest/vitest.config.ts', 'bounds'], {
    cwd: REPO_ROOT,
    reject: false,
    all: true,
    env: { BPF_HARNESS_RUN_DIR: dir, BPF_HARNESS_ACCEL: 'tcg', FORCE_COLOR: '0' },
  });
  expect(r.exitCode, r.all).toBe(1);
  const [file] = (await readdir(dir)).filter((f) => f.startsWith('kernel-'));
  const run = JSON.parse(await readFile(join(dir, file!), 'utf8')) as KernelRun;
  const byName = Object.fromEntries(run.tests.map((t) => [t.name, t]));
  expect(byName['holds its bounds']).toMatchObject({
    state: 'passed',
    bounds: [
      { name: 'busy samples', value: 40, atMost: 52, atLeast: 25 },
      { name: 'idle samples', value: 1, atMost: 5 },
    ],
  });
  expect(byName['goes past its bound']).toMatchObject({ state: 'failed', bounds: [{ name: 'idle samples', value: 7, atMost: 5 }] });
  expect(byName['goes past its bound']!.error).toContain('idle samples = 7, bound: at most 5 (the sleeper)');
  // The reports of the run (what the CLI writes from the records of its runs): report.md lists
  // them, the one past its bound first; JUnit has them as properties of their tests.
  const reports = writeReports(dir);
  const md = await readFile(reports.markdown, 'utf8');
  const rows = md.slice(md.indexOf('## Bounded figures, closest to their bound first')).split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| kernel'));
  expect(rows.map((l) => l.split(' | ').slice(1, 5).join(' | '))).toEqual([
    'bounds: goes past its bound | idle samples | 7 | ≤ 5',
    'bounds: holds its bounds | busy samples | 40 | ≥ 25, ≤ 52',
    'bounds: holds its bounds | idle samples | 1 | ≤ 5',
  ]);
  const junit = await readFile(reports.junit, 'utf8');
  expect(junit).toContain('<property name="bound: idle samples" value="7 (at most 5; margin -40.0% (past it))"/>');
}, 600_000);
