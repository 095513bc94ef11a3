// A kernel fault fails the test during which it happened, the next test gets a fresh guest, and a
// kernel that cannot come up fails every suite file of the run at once. Each case runs the
// fixture suite files in tests/fixtures/guest/ in a vitest of their own and reads its JSON report.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { hostMs, scaleFor } from '../helpers/timeouts.js';
import { buildWarnModule } from '../helpers/warn-module.js';

interface JsonReport {
  testResults: { name: string; message: string; assertionResults: { title: string; status: string; duration: number; failureMessages: string[] }[] }[];
}

async function runFixtures(filter: string, env: Record<string, string> = {}) {
  const out = join(await mkdtemp(join(tmpdir(), 'fixtures-')), 'report.json');
  const r = await execa(
    join(REPO_ROOT, 'node_modules/.bin/vitest'),
    ['run', '--config', 'tests/fixtures/guest/vitest.config.ts', '--reporter=verbose', '--reporter=./harness/report/reporter.ts', '--reporter=json', `--outputFile.json=${out}`, filter],
    { cwd: REPO_ROOT, reject: false, all: true, env: { ...env, FORCE_COLOR: '0' } },
  );
  const report = JSON.parse(await readFile(out, 'utf8')) as JsonReport;
  const tests = new Map(report.testResults.flatMap((f) => f.assertionResults.map((a) => [a.title.split(':')[0], a] as const)));
  return { r, report, tests, output: r.all ?? '' };
}

test('kernel faults fail their tests, with the kernel\'s lines, and the next test boots a fresh guest', async () => {
  const { r, tests, output } = await runFixtures('faults');
  expect(r.exitCode, output).not.toBe(0);
  const warning = tests.get('warning')!;
  expect(warning.status).toBe('failed');
  expect(warning.failureMessages.join('\n')).toMatch(/kernel warning: .*WARNING: CPU: 0 PID: 1 at lib\/bpf_harness_fake\.c:42/);
  expect(tests.get('fresh')!.status, tests.get('fresh')!.failureMessages.join('\n')).toBe('passed');
  const panic = tests.get('panic')!;
  expect(panic.status).toBe('failed');
  expect(panic.failureMessages.join('\n')).toMatch(/the guest died during this test/);
  expect(panic.failureMessages.join('\n')).toMatch(/kernel panic: .*Kernel panic - not syncing: sysrq triggered crash/);
  // The report goes on past its first line: the kernel's stack is in the failure.
  expect(panic.failureMessages.join('\n')).toMatch(/Call Trace:/);
  // Within seconds, not the agent's command timeout.
  expect(panic.duration).toBeLessThan(hostMs(20_000));
  expect(tests.get('after-panic')!.status, tests.get('after-panic')!.failureMessages.join('\n')).toBe('passed');
  expect(output).toMatch(/^summary: 2 passed, 2 failed, 0 skipped$/m);
}, hostMs(600_000));

test('a test retried after its guest faulted runs again on a fresh guest that works, and is flaky with the fault as its first failure', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'retry-run-'));
  // Flaky fails the run by default (BPF_HARNESS_FLAKY_OK of the run around this one left out).
  const { r, tests, output } = await runFixtures('retry.fixture', { BPF_HARNESS_RUN_DIR: dir, BPF_HARNESS_FLAKY_OK: '' });
  const retried = tests.get('retried')!;
  expect(retried.status, output).toBe('passed');
  expect(output).toMatch(/booting a fresh guest for "retried: .*": the guest of "retried: .*" faulted/);
  expect(output).toMatch(/\[harness\] FLAKY: retry > retried: .* failed, then passed on attempt 2; first failure: kernel warning: .*bpf_harness_fake\.c:42/);
  expect(output).toMatch(/^summary: 0 passed, 0 failed, 0 skipped, 1 flaky \(failed, then passed on a retry; they fail the run unless --flaky-ok\)$/m);
  expect(r.exitCode, output).toBe(1);
  const { readRuns } = await import('../../harness/report/run-record.js');
  const record = readRuns(dir)[0].tests.find((t) => t.name.startsWith('retried'))!;
  expect(record).toMatchObject({ state: 'passed', flaky: true, attempts: 2 });
  expect(record.firstError).toMatch(/^kernel warning: (\[ *[\d.]+\] )?WARNING: CPU: 0 PID: 1 at lib\/bpf_harness_fake\.c:42/);
  // The first attempt's guest, which faulted, is named; the test passed on another.
  const faulted = /\(console: ([^)]+)\)/.exec(record.firstError ?? '')?.[1];
  expect(faulted).toBeDefined();
  expect(record.consoleLog).toBeDefined();
  expect(record.consoleLog).not.toBe(faulted);
}, hostMs(600_000));

test('a retried test whose fresh guest does not come up fails with the boot\'s cause, is not flaky, and the next test fails at once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'retry-noboot-'));
  const { r, tests, output } = await runFixtures('retry-noboot', {
    BPF_HARNESS_RUN_DIR: dir,
    BPF_HARNESS_FLAKY_OK: '',
    // What the first attempt gives every later guest: an init that says it starts the SSH server
    // and only sleeps, with the SSH server's bound a tenth as long (the cause is what is tested).
    BH_NOBOOT_APPEND: 'rdinit=/bin/busybox -- sh -c "echo bpf-harness: starting sshd; exec /bin/busybox sleep 600"',
    BH_NOBOOT_SCALE: scaleFor(0.1),
  });
  expect(r.exitCode, output).toBe(1);
  const retried = tests.get('retried-noboot')!;
  expect(retried.status, output).toBe('failed');
  expect(retried.failureMessages.join('\n')).toMatch(/the SSH server was started [\d.]+ s into the boot but did not answer/);
  expect(output).toMatch(/booting a fresh guest for "retried-noboot: .*": the guest of "retried-noboot: .*" faulted/);
  const after = tests.get('after-noboot')!;
  expect(after.status).toBe('failed');
  expect(after.failureMessages.join('\n')).toMatch(/did not come up for suite retry-noboot earlier in this run \(sshd-silent\); not booting it again/);
  expect(output).toMatch(/^summary: 0 passed, 2 failed, 0 skipped$/m);
  const { readRuns } = await import('../../harness/report/run-record.js');
  const record = readRuns(dir)[0].tests.find((t) => t.name.startsWith('retried-noboot'))!;
  expect(record).toMatchObject({ state: 'failed', attempts: 2 });
  expect(record.flaky).toBeUndefined();
}, hostMs(600_000));

test('a real WARN (a module that WARNs in its init) fails the running test; with an allowlist rule for its line it does not', async (ctx) => {
  const { getKernel } = await import('../../harness/kernels/catalog.js');
  const release = (await getKernel()).release;
  if (!existsSync(`/usr/src/linux-headers-${release}`)) ctx.skip(`needs /usr/src/linux-headers-${release} (Debian's linux-headers package; scripts/setup.sh installs it) to build the module`);
  const module = { BH_WARN_MODULE_DIR: await buildWarnModule(release) };
  const plain = await runFixtures('warn', module);
  const warned = plain.tests.get('real-warn')!;
  expect(warned.status, plain.output).toBe('failed');
  expect(warned.failureMessages.join('\n')).toMatch(/kernel warning: .*WARNING: CPU: \d+ PID: \d+ at .*bh_warn\.c:\d+ /);
  expect(warned.failureMessages.join('\n')).toMatch(/bpf-harness: a WARN on purpose/);

  const rules = join(await mkdtemp(join(tmpdir(), 'allow-')), 'allow.txt');
  await writeFile(rules, 'WARNING: CPU: \\d+ PID: \\d+ at .*bh_warn\\.c ## the test module WARNs on purpose\n');
  const allowed = await runFixtures('warn', { ...module, BPF_HARNESS_ALLOWLIST: rules });
  expect(allowed.tests.get('real-warn')!.status, allowed.output).toBe('passed');
}, hostMs(600_000));

test('a BPF source that does not compile fails its suite file with clang\'s message, before any guest boots', async () => {
  const { r, report, output } = await runFixtures('compile-error');
  expect(r.exitCode, output).not.toBe(0);
  expect(report.testResults[0].message).toMatch(/broken\.bpf\.c:\d+:\d+: error: expected expression/);
  expect(output).not.toMatch(/booting kernel|SSH ready/);
}, hostMs(300_000));

test('a kernel that cannot come up fails the first suite file with the cause, and the next one at once', async () => {
  const t = Date.now();
  // An init that says it starts the SSH server and then only sleeps.
  const { r, report, output } = await runFixtures('boot-', {
    BPF_HARNESS_APPEND: 'rdinit=/bin/busybox -- sh -c "echo bpf-harness: starting sshd; exec /bin/busybox sleep 600"',
    // The SSH server's bound a tenth as long: the cause and the fail-fast are what is tested.
    BPF_HARNESS_TIMEOUT_SCALE: scaleFor(0.1),
  });
  expect(r.exitCode, output).not.toBe(0);
  const [a, b] = [...report.testResults].sort((x, y) => x.name.localeCompare(y.name));
  expect(a.message).toMatch(/the SSH server was started [\d.]+ s into the boot but did not answer/);
  expect(b.message).toMatch(/did not come up for suite boot-a earlier in this run \(sshd-silent\); not booting it again/);
  // The live output said why when it happened.
  expect(output).toMatch(/\[harness\] boot-a: the guest did not come up \(sshd-silent\)/);
  expect(output).toMatch(/^summary: 0 passed, 2 failed, 0 skipped \(2 suite files failed outside any test/m);
  expect(Date.now() - t).toBeLessThan(hostMs(120_000));
}, hostMs(600_000));
