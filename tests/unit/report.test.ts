import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { buildMatrix, cellOf, renderJunit, renderMarkdown, renderTerminal, runVerdict, writeReports } from '../../harness/report/report.js';
import { type KernelRun, rerunCommand, writeKernelRun } from '../../harness/report/run-record.js';

const run = (kernel: string, over: Partial<KernelRun> = {}): KernelRun => ({
  kernel,
  wallMs: 12_000,
  suiteMs: { xdp: 12_300, lwt_xmit: 9_000 },
  suiteErrors: [],
  tests: [
    { suite: 'xdp', name: 'drops', state: 'passed', durationMs: 1200 },
    { suite: 'lwt_xmit', name: 'encap', state: 'skipped', durationMs: 0, note: 'needs 4.18: bpf_lwt_push_encap (kernel 4.14.336)' },
    { suite: 'lwt_xmit', name: 'rewrite', state: 'passed', durationMs: 900 },
  ],
  ...over,
});

test('a cell fails on any failed test, and passes with skips noted', () => {
  const bad = run('6.1', { tests: [{ suite: 'xdp', name: 'drops', state: 'failed', durationMs: 5, error: 'expected 0 to be 20\nstack', consoleLog: '/r/x/console.log' }] });
  expect(cellOf(bad, 'xdp')).toMatchObject({ state: 'fail', failed: 1, logs: ['/r/x/console.log'] });
  expect(cellOf(run('4.14'), 'lwt_xmit')).toMatchObject({ state: 'pass', passed: 1, skipped: 1, detail: ['encap: skipped, needs 4.18: bpf_lwt_push_encap (kernel 4.14.336)'] });
});

test('a guest that did not boot fails its whole column with the console path', () => {
  const dead = run('sid', { tests: [], suiteErrors: [{ suite: 'xdp', error: 'QEMU exited (code 0) before the guest answered SSH\n--- console (/r/xdp-sid/console.log), last lines ---\n...' }] });
  const c = cellOf(dead, 'xdp');
  expect(c.state).toBe('fail');
  expect(c.logs).toEqual(['/r/xdp-sid/console.log']);
  expect(c.detail[0]).toMatch(/QEMU exited/);
});

test('the terminal table has a row per program type and a column per kernel, with reasons below', () => {
  const text = renderTerminal(buildMatrix([run('4.14'), run('6.1')]));
  const lines = text.split('\n');
  expect(lines[0]).toMatch(/^program type +4\.14 +6\.1/);
  expect(lines.find((l) => l.startsWith('lwt_xmit'))).toMatch(/pass 1 \+1 skip +pass 1 \+1 skip/);
  expect(text).toMatch(/\[4\.14\] lwt_xmit: encap: skipped, needs 4\.18: bpf_lwt_push_encap/);
});

test('JUnit XML has a testsuite per kernel and type, with failures and skip reasons, escaped', () => {
  const xml = renderJunit(
    buildMatrix([run('6.1', { tests: [{ suite: 'xdp', name: 'a <b> & "c"', state: 'failed', durationMs: 1500, error: 'boom <x>' }] }), run('5.10')]),
  );
  expect(xml).toMatch(/<testsuite name="xdp on 6\.1" tests="1" failures="1" skipped="0" time="1\.500">/);
  expect(xml).toContain('name="a &lt;b&gt; &amp; &quot;c&quot;"');
  expect(xml).toContain('<failure message="boom &lt;x&gt;">');
  expect(xml).toContain('<skipped message="needs 4.18: bpf_lwt_push_encap (kernel 4.14.336)"/>');
});

test('writeReports writes Markdown and JUnit files from the per-kernel records, in the given order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'report-'));
  await writeFile(join(dir, 'kernel-6.1.json'), JSON.stringify(run('6.1')));
  await writeFile(join(dir, 'kernel-5.10.json'), JSON.stringify(run('5.10')));
  const r = writeReports(dir, ['6.1', '5.10']);
  expect(r.failed).toBe(false);
  const md = await readFile(r.markdown, 'utf8');
  expect(md).toContain('| program type | 6.1 | 5.10 |');
  expect(md).toContain('| xdp | pass 1 | pass 1 |');
  expect(md).toContain('| xdp | 12.3 | 12.3 |');
  expect(md).toContain('| **run** | 12.0 | 12.0 |');
  expect(await readFile(r.junit, 'utf8')).toMatch(/^<\?xml/);
});

test('records of one kernel from several shards merge into one column', async () => {
  const a = await mkdtemp(join(tmpdir(), 'shard-'));
  const b = await mkdtemp(join(tmpdir(), 'shard-'));
  await writeFile(join(a, 'kernel-6.1.json'), JSON.stringify(run('6.1', { tests: [{ suite: 'xdp', name: 't1', state: 'passed', durationMs: 1 }] })));
  await writeFile(join(b, 'kernel-6.1.json'), JSON.stringify(run('6.1', { tests: [{ suite: 'xdp', name: 't2', state: 'failed', durationMs: 1, error: 'x' }] })));
  const out = join(await mkdtemp(join(tmpdir(), 'merged-')), 'out');
  const r = writeReports(out, [], [a, b]);
  expect(r.failed).toBe(true);
  expect(await readFile(r.markdown, 'utf8')).toContain('| xdp | FAIL 1/2 |');
});

test('a failed test carries the command that re-runs it alone on its kernel, in all three reports', async () => {
  expect(rerunCommand('sk_skb', '5.10', 'SK_PASS leaves the stream (parser + verdict)')).toBe(
    "npm run suite sk_skb -- --kernel 5.10 -t 'SK_PASS leaves the stream \\(parser \\+ verdict\\)'",
  );
  expect(rerunCommand('xdp', '/k/linux-4.14', "it's")).toBe("npm run suite xdp -- --kernel /k/linux-4.14 -t 'it'\\''s'");
  // A project's own suites folder (--dir): the package's command, with the folder.
  expect(rerunCommand('udp', '6.1', 'drops', '/src/my project/bpf-tests')).toBe("npx bpf-harness suite --dir '/src/my project/bpf-tests' udp --kernel 6.1 -t drops");
  const cmd = rerunCommand('xdp', '6.1', 'drops');
  const bad = run('6.1', { tests: [{ suite: 'xdp', name: 'drops', state: 'failed', durationMs: 5, error: 'expected 0 to be 20', rerun: cmd }] });
  const m = buildMatrix([bad]);
  expect(renderTerminal(m)).toContain(`[6.1] xdp: re-run: ${cmd}`);
  expect(renderJunit(m)).toContain(`re-run: ${cmd}`);
  const dir = await mkdtemp(join(tmpdir(), 'rerun-'));
  writeKernelRun(dir, bad);
  const r = writeReports(dir);
  expect(await readFile(r.markdown, 'utf8')).toContain(`re-run: ${cmd}`);
});

test('a flaky test (failed, then passed on a retry) is never a plain pass: its mark in the table, its first failure in every report', async () => {
  const cmd = rerunCommand('xdp', '6.1', 'counts');
  const flaky = run('6.1', {
    tests: [
      { suite: 'xdp', name: 'drops', state: 'passed', durationMs: 1200 },
      {
        suite: 'xdp',
        name: 'counts',
        state: 'passed',
        durationMs: 2500,
        flaky: true,
        attempts: 2,
        firstError: 'kernel warning: WARNING: CPU: 0 PID: 1 at x.c:1\n(console: /r/xdp-6.1-1-0/console.log)',
        rerun: cmd,
        consoleLog: '/r/xdp-6.1-1-1/console.log',
      },
    ],
  });
  expect(cellOf(flaky, 'xdp')).toMatchObject({ state: 'flaky', passed: 1, flaky: 1, failed: 0 });
  const m = buildMatrix([flaky, run('5.10')]);
  const text = renderTerminal(m);
  expect(text.split('\n').find((l) => l.startsWith('xdp'))).toMatch(/^xdp +FLAKY 1\/2 +pass 1 *$/);
  expect(text).toContain('[6.1] xdp: FLAKY counts: failed, then passed on attempt 2; first failure: kernel warning: WARNING: CPU: 0 PID: 1 at x.c:1');
  expect(text).toContain(`[6.1] xdp: re-run: ${cmd}`);
  // The guest that faulted (named in the first failure) and the one the test passed on.
  expect(text).toContain('[6.1] xdp: log /r/xdp-6.1-1-0/console.log');
  expect(text).toContain('[6.1] xdp: log /r/xdp-6.1-1-1/console.log');

  // JUnit: a passing testcase with Surefire's <flakyFailure>, and the same words in system-out.
  const xml = renderJunit(m);
  expect(xml).toMatch(/<testsuite name="xdp on 6\.1" tests="2" failures="0" skipped="0"/);
  const testcase = /<testcase [^>]*name="counts"[^>]*>[\s\S]*?<\/testcase>/.exec(xml)?.[0] ?? '';
  expect(testcase).toContain('<flakyFailure message="kernel warning: WARNING: CPU: 0 PID: 1 at x.c:1" type="flaky"><stackTrace>kernel warning: WARNING: CPU: 0 PID: 1 at x.c:1\n(console: /r/xdp-6.1-1-0/console.log)</stackTrace></flakyFailure>');
  expect(testcase).toContain('<system-out>FLAKY counts: failed, then passed on attempt 2; first failure: kernel warning');
  expect(testcase).not.toContain('<failure');

  const dir = await mkdtemp(join(tmpdir(), 'flaky-'));
  writeKernelRun(dir, flaky);
  const r = writeReports(dir);
  expect(r).toMatchObject({ failed: false, flaky: 1 });
  const md = await readFile(r.markdown, 'utf8');
  expect(md).toContain('| xdp | FLAKY 1/2 |');
  expect(md).toContain('## Flaky tests: failed, then passed on a retry\n\n### xdp on 6.1: FLAKY 1/2\n\n- counts: failed, then passed on attempt 2; first failure: kernel warning: WARNING: CPU: 0 PID: 1 at x.c:1\n');
  expect(md).toContain(`- re-run: ${cmd}`);
  // Flaky only: nothing under failures and skips.
  expect(md).not.toContain('## Failures and skips');

  // Flaky tests fail the run, unless allowed; a failure fails it either way.
  expect(runVerdict(r, false)).toEqual({ failed: true, line: 'flaky: 1 test (failed, then passed on a retry; they fail the run unless --flaky-ok)' });
  expect(runVerdict(r, true)).toEqual({ failed: false, line: 'flaky: 1 test (failed, then passed on a retry; allowed by --flaky-ok)' });
  expect(runVerdict({ failed: true, flaky: 2 }, true).failed).toBe(true);
  expect(runVerdict({ failed: false, flaky: 0 }, false)).toEqual({ failed: false });
});

test('a cell with a failure and a flaky test fails, and counts both; a test that failed every attempt says so', () => {
  const c = cellOf(
    run('6.1', {
      tests: [
        { suite: 'xdp', name: 'a', state: 'failed', durationMs: 1, error: 'boom\nboom', attempts: 2 },
        { suite: 'xdp', name: 'b', state: 'passed', durationMs: 1, flaky: true, firstError: 'once', attempts: 2 },
        { suite: 'xdp', name: 'c', state: 'passed', durationMs: 1 },
      ],
    }),
    'xdp',
  );
  expect(c).toMatchObject({ state: 'fail', passed: 1, failed: 1, flaky: 1 });
  expect(c.detail[0]).toBe('a (all 2 attempts failed): boom');
  expect(renderTerminal(buildMatrix([run('6.1', { tests: [
    { suite: 'xdp', name: 'a', state: 'failed', durationMs: 1, error: 'boom' },
    { suite: 'xdp', name: 'b', state: 'passed', durationMs: 1, flaky: true, firstError: 'once' },
    { suite: 'xdp', name: 'c', state: 'passed', durationMs: 1 },
  ] })]))).toMatch(/^xdp +FAIL 1\/3 \+1 flaky *$/m);
});

test('garbage run records and a garbage lock file are errors that name the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'garbage-'));
  await writeFile(join(dir, 'kernel-6.1.json'), '{"not": "a record"}');
  expect(() => writeReports(dir)).toThrow(`${join(dir, 'kernel-6.1.json')}: not a run record (kernel, tests, suiteErrors)`);
  await writeFile(join(dir, 'kernel-6.1.json'), '{"kernel": ');
  expect(() => writeReports(dir)).toThrow(new RegExp(`${join(dir, 'kernel-6\\.1\\.json').replace(/\//g, '\\/')}: not valid JSON`));
  const { readLock } = await import('../../harness/kernels/pins.js');
  await writeFile(join(dir, 'lock.json'), 'garbage');
  expect(() => readLock(join(dir, 'lock.json'))).toThrow(`${join(dir, 'lock.json')}: not valid JSON`);
  await writeFile(join(dir, 'lock.json'), '{"6.1": {"suite": "bookworm"}}');
  expect(() => readLock(join(dir, 'lock.json'))).toThrow(/lock\.json: not a kernel lock: each entry needs a package and a version/);
});

test('a failed test\'s kernel faults are named in the terminal and Markdown reports and lead its JUnit failure, with their lines', () => {
  const panic = { kind: 'panic', line: '[    6.2] Kernel panic - not syncing: sysrq triggered crash', lines: ['[    6.2] sysrq: Trigger a crash', '[    6.2] Kernel panic - not syncing: sysrq triggered crash', '[    6.2] Call Trace:'] };
  const t = { suite: 'xdp', name: 'drops', state: 'failed' as const, durationMs: 5, error: 'the guest agent exited', faults: [panic] };
  const m = buildMatrix([run('6.1', { tests: [t] })]);
  expect(renderTerminal(m)).toContain('[6.1] xdp: drops: kernel panic: [    6.2] Kernel panic - not syncing: sysrq triggered crash');
  const md = renderMarkdown(m, '/r');
  expect(md).toContain('- drops: the guest agent exited\n- drops: kernel panic: [    6.2] Kernel panic - not syncing: sysrq triggered crash\n');
  expect(md).toContain(`The kernel's lines of the panic during "drops":\n\n~~~\n${panic.lines.join('\n')}\n~~~\n`);
  const xml = renderJunit(m);
  expect(xml).toContain('<failure message="kernel panic: [    6.2] Kernel panic - not syncing: sysrq triggered crash (the test: the guest agent exited)">the guest agent exited\n\nkernel panic:');
  expect(xml).toContain('[    6.2] Call Trace:');
  // An error that carries the lines already (the harness's own fault message) does not get them twice.
  const withLines = { ...t, error: `the guest agent exited\nkernel panic: ${panic.line}\n${panic.lines.join('\n')}` };
  expect(renderJunit(buildMatrix([run('6.1', { tests: [withLines] })])).split('Call Trace:').length).toBe(2);
});

test('each bounded figure is in report.md, nearest its bound first, and in JUnit as a property of its test', () => {
  const tests: KernelRun['tests'] = [
    { suite: 'perf_event', name: 'busy', state: 'passed', durationMs: 5, bounds: [{ name: 'busy samples', value: 205, atLeast: 99, atMost: 209 }, { name: 'sleeper samples', value: 2, atMost: 7 }] },
    { suite: 'perf_event', name: 'dd', state: 'failed', durationMs: 5, error: 'dd samples = 33, bound: at least 50', bounds: [{ name: 'dd samples', value: 33, atLeast: 50 }] },
    { suite: 'xdp', name: 'drops', state: 'passed', durationMs: 5 },
  ];
  const m = buildMatrix([run('6.1', { tests })]);
  const md = renderMarkdown(m, '/r');
  const section = md.slice(md.indexOf('## Bounded figures, closest to their bound first'));
  expect(section.split('\n').filter((l) => l.startsWith('| 6.1'))).toEqual([
    '| 6.1 | perf_event: dd | dd samples | 33 | ≥ 50 | -34.0% (past it) |',
    '| 6.1 | perf_event: busy | busy samples | 205 | ≥ 99, ≤ 209 | 1.9% |',
    '| 6.1 | perf_event: busy | sleeper samples | 2 | ≤ 7 | 71.4% |',
  ]);
  const xml = renderJunit(m);
  expect(xml).toContain('<testcase classname="6.1.perf_event" name="busy" time="0.005"><properties><property name="bound: busy samples" value="205 (at least 99 and at most 209; margin 1.9%)"/><property name="bound: sleeper samples" value="2 (at most 7; margin 71.4%)"/></properties></testcase>');
  expect(xml).toMatch(/<testcase classname="6\.1\.perf_event" name="dd" time="0\.005"><properties><property name="bound: dd samples" value="33 \(at least 50; margin -34\.0% \(past it\)\)"\/><\/properties><failure /);
  // A test without figures stays as it was, and a run without any has no such section.
  expect(xml).toContain('<testcase classname="6.1.xdp" name="drops" time="0.005"/>');
  expect(renderMarkdown(buildMatrix([run('6.1')]), '/r')).not.toContain('Bounded figures');
});
