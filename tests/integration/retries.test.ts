// --retries N: a test that fails and then passes on a retry is flaky, never a plain pass. The CLI
// runs a suite of a folder of its own (--dir) whose test fails on its first attempt only; it needs
// no guest (nothing calls useGuest), so no guest boots: the reporter, the reports and the exit code
// are the same as for any suite. Flaky tests fail the run unless --flaky-ok, on one kernel and in a
// kernel matrix; the reports name the test flaky with its first failure.
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect, test } from 'vitest';
import { getKernel } from '../../harness/kernels/catalog.js';
import type { KernelRun } from '../../harness/report/run-record.js';
import { cli } from '../helpers/cli.js';

const SUITE = String.raw`import { expect, test } from 'vitest';

test('steady', () => {
  expect(1 + 1).toBe(2);
});

// vitest counts the attempts: 0 on the first, 1 on the first retry.
test('flaky on purpose', ({ task }) => {
  expect(task.result?.retryCount ?? 0, 'the first attempt fails on purpose').toBeGreaterThan(0);
});
`;

const FIRST_ERROR = 'the first attempt fails on purpose: expected 0 to be greater than 0';

async function flakySuite(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'retries-'));
  await mkdir(join(dir, 'bpf-tests', 'flaky'), { recursive: true });
  await writeFile(join(dir, 'bpf-tests', 'flaky', 'flaky.test.ts'), SUITE);
  return dir;
}

/** `suite --dir … flaky` with these arguments, results in a folder of its own; none of the run's own settings leak in. */
async function runSuite(project: string, name: string, ...args: string[]) {
  const results = join(project, `results-${name}`);
  const r = await cli(['suite', '--dir', join(project, 'bpf-tests'), 'flaky', ...args], {
    // No guest boots; tcg spares a fresh machine the accelerator probe.
    env: { BPF_HARNESS_RESULTS: results, BPF_HARNESS_ACCEL: 'tcg', BPF_HARNESS_RETRIES: '', BPF_HARNESS_FLAKY_OK: '', BPF_HARNESS_RUN_DIR: '', FORCE_COLOR: '0' },
  });
  const out = (r.all ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  const report = /^report: (\S+)$/m.exec(out)?.[1];
  expect(report, out).toBeDefined();
  return { code: r.exitCode, out, md: await readFile(report!, 'utf8'), junit: await readFile(join(dirname(report!), 'junit.xml'), 'utf8'), runDir: dirname(report!) };
}

test('--retries 1: a test that fails, then passes, is flaky everywhere and fails the run unless --flaky-ok, on one kernel and in a matrix', async () => {
  const project = await flakySuite();
  // A second kernel for the matrix that needs nothing fetched: the default kernel's bzImage, by path.
  const path = (await getKernel()).bzImage;
  const [strict, matrix] = await Promise.all([
    runSuite(project, 'strict', '--retries', '1'),
    runSuite(project, 'matrix', '--retries', '1', '--flaky-ok', '--kernel', `6.1,${path}`),
  ]);

  // One kernel, the default: flaky fails the run.
  expect(strict.code, strict.out).toBe(1);
  expect(strict.out).toContain(`[harness] FLAKY: flaky > flaky on purpose failed, then passed on attempt 2; first failure: ${FIRST_ERROR}`);
  expect(strict.out).toMatch(/^summary: 1 passed, 0 failed, 0 skipped, 1 flaky \(failed, then passed on a retry; they fail the run unless --flaky-ok\)$/m);
  expect(strict.out).toMatch(/^flaky +FLAKY 1\/2 *$/m);
  // The re-run line of a project's own suite runs it from that folder.
  expect(strict.md).toContain(`re-run: npx bpf-harness suite --dir ${join(project, 'bpf-tests')} flaky --kernel 6.1 -t 'flaky on purpose'`);
  expect(strict.out).toContain(`[6.1] flaky: FLAKY flaky on purpose: failed, then passed on attempt 2; first failure: ${FIRST_ERROR}`);
  expect(strict.md).toContain('| flaky | FLAKY 1/2 |');
  expect(strict.md).toContain(`## Flaky tests: failed, then passed on a retry\n\n### flaky on 6.1: FLAKY 1/2\n\n- flaky on purpose: failed, then passed on attempt 2; first failure: ${FIRST_ERROR}\n`);
  expect(strict.junit).toMatch(/<testsuite name="flaky on 6\.1" tests="2" failures="0" skipped="0"/);
  expect(strict.junit).toContain(`<flakyFailure message="${FIRST_ERROR}" type="flaky"><stackTrace>${FIRST_ERROR}</stackTrace></flakyFailure>`);
  const record = JSON.parse(await readFile(join(strict.runDir, 'kernel-6.1.json'), 'utf8')) as KernelRun;
  expect(record.tests.find((t) => t.name === 'flaky on purpose')).toMatchObject({ state: 'passed', flaky: true, attempts: 2, firstError: FIRST_ERROR });
  expect(record.tests.find((t) => t.name === 'steady')).not.toHaveProperty('flaky');

  // --flaky-ok, in a matrix: each kernel's run gets --retries and --flaky-ok and passes (it says
  // so), the matrix passes, and the test is still flaky in every report.
  expect(matrix.code, matrix.out).toBe(0);
  for (const k of ['6.1', path]) {
    expect(matrix.out).toContain(`[${k}] [harness] FLAKY: flaky > flaky on purpose failed, then passed on attempt 2; first failure: ${FIRST_ERROR}`);
    expect(matrix.out).toContain(`[${k}] summary: 1 passed, 0 failed, 0 skipped, 1 flaky (failed, then passed on a retry; allowed by --flaky-ok)`);
    expect(matrix.out).toContain(`[harness] kernel ${k}: passed in`);
  }
  expect(matrix.md).toContain(`| program type | 6.1 | ${path} |`);
  expect(matrix.md).toContain('| flaky | FLAKY 1/2 | FLAKY 1/2 |');
  expect(matrix.junit.match(/<flakyFailure message="[^"]*"/g)).toEqual([`<flakyFailure message="${FIRST_ERROR}"`, `<flakyFailure message="${FIRST_ERROR}"`]);
  expect(matrix.out).toMatch(/^flaky: 2 tests \(failed, then passed on a retry; allowed by --flaky-ok\)$/m);

  // Merging the records (CI shards): flaky fails the merge too, unless --flaky-ok.
  const merge = (...args: string[]) => cli(['report', strict.runDir, '--out', join(project, `merged-${args.length}`), ...args], { env: { BPF_HARNESS_FLAKY_OK: '' } });
  const [merged, mergedOk] = await Promise.all([merge(), merge('--flaky-ok')]);
  expect(merged.exitCode, merged.all).toBe(1);
  expect(merged.stdout).toMatch(/^flaky: 1 test \(failed, then passed on a retry; they fail the run unless --flaky-ok\)$/m);
  expect(mergedOk.exitCode, mergedOk.all).toBe(0);
}, 300_000);

test('--retries takes a whole number, before anything runs', async () => {
  const r = await cli(['suite', 'xdp', '--retries', 'twice'], { env: { BPF_HARNESS_RETRIES: '' } });
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(/--retries must be a whole number \(0 or more\), not "twice"/);
});
