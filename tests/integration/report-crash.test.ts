// A worker that dies mid-test makes the run red everywhere: the closing summary line, report.md
// and junit.xml all count a failure, and the exit code is not 0.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { hostMs } from '../helpers/timeouts.js';

/** Runs the guest fixtures matching `filter` with the reporter, into a run directory of their own. */
async function runFixtures(filter: string) {
  const dir = await mkdtemp(join(tmpdir(), 'crash-run-'));
  const r = await execa(join(REPO_ROOT, 'node_modules/.bin/vitest'), ['run', '--config', 'tests/fixtures/guest/vitest.config.ts', filter], {
    cwd: REPO_ROOT,
    reject: false,
    all: true,
    env: { BPF_HARNESS_RUN_DIR: dir, FORCE_COLOR: '0' },
  });
  return { dir, r, out: r.all ?? '' };
}

test('a crashed worker is a failure in the summary, the Markdown report and JUnit', async () => {
  const { dir, r, out } = await runFixtures('crash');
  expect(r.exitCode, out).not.toBe(0);
  const summary = /^summary: (\d+) passed, (\d+) failed, (\d+) skipped/m.exec(out);
  expect(summary, out).not.toBeNull();
  expect(Number(summary![2]), out).toBeGreaterThan(0);
  // The reporter wrote the run's record (no table: BPF_HARNESS_RUN_DIR belongs to a matrix), so render it.
  const { writeReports } = await import('../../harness/report/report.js');
  const rep = writeReports(dir);
  expect(rep.failed).toBe(true);
  expect(await readFile(rep.markdown, 'utf8')).toMatch(/\| crash \| FAIL/);
  expect(await readFile(rep.junit, 'utf8')).toMatch(/failures="[1-9]/);
}, hostMs(600_000));

test('a guest that panics during a test: the record, report.md and JUnit carry the kernel\'s panic lines for that test', async () => {
  const { dir, r, out } = await runFixtures('suites/panic/');
  expect(r.exitCode, out).not.toBe(0);
  expect(out).toMatch(/^summary: 0 passed, 1 failed, 0 skipped$/m);
  const { readRuns } = await import('../../harness/report/run-record.js');
  const [run] = readRuns(dir);
  const t = run.tests.find((x) => x.suite === 'panic')!;
  expect(t.state, out).toBe('failed');
  // The record keeps the fault apart from the test's own error (what the dying guest left it).
  expect(t.faults?.map((f) => f.kind), out).toEqual(['panic']);
  expect(t.faults![0].line).toMatch(/Kernel panic - not syncing: sysrq triggered crash/);
  expect(t.faults![0].lines.join('\n')).toMatch(/Call Trace:/);
  const { writeReports } = await import('../../harness/report/report.js');
  const rep = writeReports(dir);
  const md = await readFile(rep.markdown, 'utf8');
  // The failure section names the panic beside the test, and shows the kernel's lines.
  expect(md).toMatch(/^- the guest panics during this test: kernel panic: .*Kernel panic - not syncing: sysrq triggered crash$/m);
  expect(md).toMatch(/The kernel's lines of the panic during "the guest panics during this test":\n\n~~~\n[^~]*Kernel panic - not syncing[^~]*Call Trace:[^~]*\n~~~/);
  const junit = await readFile(rep.junit, 'utf8');
  expect(junit).toMatch(/<failure message="kernel panic: [^"]*Kernel panic - not syncing: sysrq triggered crash[^"]*">[^<]*Call Trace:/);
  expect(rep.table).toMatch(/\] panic: the guest panics during this test: kernel panic: .*sysrq triggered crash/);
}, hostMs(600_000));
