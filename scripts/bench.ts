#!/usr/bin/env -S npx tsx
// Prints the figures the project tracks, each next to its target (issue: speed): boot-to-SSH per
// kernel (median of a few boots) beside a start from the kernel's snapshot (median of as many),
// and a suite run per kernel, with snapshots and without, broken down into its tests (median,
// 90th percentile, slowest) and its suite files; with --matrix, also the kernel matrix (the suite
// on every packaged kernel, `suite --kernels all`) against its target; with --ci, also CI's test
// command (.ci/run) from a fresh clone of this checkout's HEAD with an empty cache.
// Usage: npm run bench -- [--kernels 6.1,5.10] [--suite all] [--boots 3] [--matrix] [--ci]
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { $ } from 'zx';
import { getKernel } from '../harness/kernels/catalog.js';
import { PHASES, type SetupTimes } from '../harness/base/phases.js';
import type { KernelRun, TestRecord } from '../harness/report/run-record.js';
import { Vm } from '../harness/guest/vm.js';

const { values } = parseArgs({
  options: {
    kernels: { type: 'string', default: '6.1,5.10' },
    suite: { type: 'string', default: 'all' },
    boots: { type: 'string', default: '3' },
    matrix: { type: 'boolean', default: false },
    ci: { type: 'boolean', default: false },
  },
});

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const pct = (xs: number[], p: number) => sorted(xs)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rows: string[] = [];
/** Prints a block of figures now, and again in the summary at the end. */
function print(lines: string[]): void {
  console.log(lines.join('\n'));
  rows.push(...lines, '');
}

/** The suite files' set-up, summed over the run: compile, boots, agent starts, copies, baselines. */
function setupBreakdown(run: KernelRun | null): string[] {
  const files = Object.values(run?.setupMs ?? {});
  const sum = (k: keyof SetupTimes) => files.reduce((a, f) => a + (f[k] ?? 0), 0);
  const boots = files.filter((f) => f.bootMs !== undefined).length;
  return [
    `  set-up of ${files.length} suite files (${boots} booted a guest, the others were handed one), summed:`,
    `    compile ${s(sum('compileMs'))}, boot ${s(sum('bootMs'))}, agent start ${s(sum('agentMs'))}, copy ${s(sum('copyMs'))}, baseline ${s(sum('baselineMs'))}`,
  ];
}

/** Per-test phases (harness/base/phases.ts): each phase's total over the run and its median per test. */
function testBreakdown(ran: TestRecord[]): string[] {
  const total = ran.reduce((a, t) => a + t.durationMs, 0);
  const lines = [`  tests: ${s(total)} in all; by phase (total, share, median per test):`];
  const rest = ran.map((t) => t.durationMs - Object.values(t.phases ?? {}).reduce((a, b) => a + b, 0));
  for (const phase of PHASES) {
    const xs = ran.map((t) => t.phases?.[phase] ?? 0);
    const sum = xs.reduce((a, b) => a + b, 0);
    if (sum) lines.push(`    ${phase.padEnd(12)} ${s(sum).padStart(9)}  ${((100 * sum) / total).toFixed(0).padStart(3)}%  ${s(pct(xs, 0.5))}`);
  }
  const restSum = rest.reduce((a, b) => a + b, 0);
  lines.push(`    ${'host, waits'.padEnd(12)} ${s(restSum).padStart(9)}  ${((100 * restSum) / total).toFixed(0).padStart(3)}%  ${s(pct(rest, 0.5))}   (the test's own code, fixed waits, vitest; below 0 when requests overlapped)`);
  return lines;
}
for (const name of values.kernels!.split(',')) {
  const kernel = await getKernel(name);
  const boots: number[] = [];
  const restores: number[] = [];
  let accel = '';
  // A first start saves the kernel's snapshot when there is none; then boots and starts from
  // the snapshot alternate, so that both see the same host.
  await (await Vm.start({ kernel, label: 'bench-save' })).stop();
  for (let i = 0; i < Number(values.boots); i++) {
    const booted = await Vm.start({ kernel, label: 'bench', snapshot: false });
    boots.push(booted.bootMs);
    accel = booted.accel;
    await booted.stop();
    const started = await Vm.start({ kernel, label: 'bench-snapshot' });
    if (started.restoredFrom) restores.push(started.bootMs);
    await started.stop();
  }
  const suiteRun = async (...extra: string[]) => {
    const runDir = await mkdtemp(join(tmpdir(), 'bench-run-'));
    const t = Date.now();
    const r = await $({ nothrow: true, quiet: true, env: { ...process.env, BPF_HARNESS_RUN_DIR: runDir } })`node bin/bpf-harness.mjs suite ${values.suite!} --kernel ${name} ${extra}`;
    return { r, wall: Date.now() - t, runDir };
  };
  const plain = await suiteRun('--no-snapshot');
  const { r: suite, wall, runDir } = await suiteRun();
  const record = (await readdir(runDir)).find((f) => f.startsWith('kernel-'));
  const run = record ? (JSON.parse(await readFile(join(runDir, record), 'utf8')) as KernelRun) : null;
  const ran = run?.tests.filter((x) => x.state === 'passed' || x.state === 'failed') ?? [];
  const durations = ran.map((x) => x.durationMs);
  const slowest = ran.reduce((a, b) => (b.durationMs > (a?.durationMs ?? -1) ? b : a), ran[0]);
  const status = suite.exitCode === 0 ? 'pass' : `FAIL (exit ${suite.exitCode})`;
  const lines = [
    `${name} (${kernel.release}, ${accel}): suite ${values.suite} ${status}, ${ran.length} tests run`,
    `  boot to SSH, median of ${boots.length}   ${s(pct(boots, 0.5)).padStart(9)}   target <= 2.5 s   (${boots.map(s).join(', ')})`,
    restores.length
      ? `  ready from snapshot, median of ${restores.length} ${s(pct(restores, 0.5)).padStart(9)}   target <= 0.2 x boot to SSH: ${(pct(restores, 0.5) / pct(boots, 0.5)).toFixed(2)} x   (${restores.map(s).join(', ')})`
      : `  ready from snapshot            none: kernel ${name} had no snapshot saved (a kernel that cannot reseed on demand boots)`,
    `  suite ${values.suite} wall time          ${s(wall).padStart(9)}   target <= 60 s (all); without snapshots (--no-snapshot) ${s(plain.wall)}${plain.r.exitCode === 0 ? '' : ` FAIL (exit ${plain.r.exitCode})`}`,
    `  median test                    ${s(pct(durations, 0.5)).padStart(9)}   target <= 0.5 s`,
    `  90th percentile test           ${s(pct(durations, 0.9)).padStart(9)}`,
    `  slowest test                   ${s(slowest?.durationMs ?? NaN).padStart(9)}   target <= 2 s   (${slowest ? `${slowest.suite}: ${slowest.name}` : '-'})`,
    `  suite files (boot, setup, tests, handover), s: ${Object.entries(run?.suiteMs ?? {}).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`).join(', ')}`,
    ...setupBreakdown(run),
    ...testBreakdown(ran),
  ];
  print(lines);
}
if (values.matrix) {
  // The matrix as users run it: one `suite --kernels all`, kernels side by side up to the guest budget.
  const t = Date.now();
  const m = await $({ nothrow: true, quiet: true })`node bin/bpf-harness.mjs suite ${values.suite!} --kernels all`;
  const wall = Date.now() - t;
  const per = [...m.stdout.matchAll(/^\[([^\]]+)\] summary: (\d+) passed, (\d+) failed, (\d+) skipped/gm)].map((x) => `${x[1]} ${x[2]}/${x[3]}/${x[4]}`);
  const lines = [
    `matrix: suite ${values.suite} --kernels all ${m.exitCode === 0 ? 'pass' : `FAIL (exit ${m.exitCode})`}`,
    `  wall time                      ${s(wall).padStart(9)}   target <= 240 s (all, 4 packaged kernels)   (passed/failed/skipped: ${per.join(', ')})`,
  ];
  print(lines);
}
if (values.ci) {
  // What CI does: .ci/run on a fresh clone (committed work only), nothing cached.
  const dir = await mkdtemp(join(tmpdir(), 'bench-ci-'));
  await $({ quiet: true })`git clone -q ${process.cwd()} ${join(dir, 'repo')}`;
  const t = Date.now();
  const ci = await $({ nothrow: true, quiet: true, cwd: join(dir, 'repo'), env: { ...process.env, BPF_HARNESS_CACHE: join(dir, 'cache') } })`bash .ci/run`;
  const wall = Date.now() - t;
  const summary = /^summary: .*$/m.exec(ci.stdout)?.[0] ?? 'no summary';
  const lines = [
    `ci: .ci/run on a fresh clone of HEAD, empty cache: ${ci.exitCode === 0 ? 'pass' : `FAIL (exit ${ci.exitCode})`}`,
    `  wall time                      ${s(wall).padStart(9)}   target <= 240 s   (${summary}; clone in ${dir})`,
  ];
  print(lines);
}
console.log(`\n${rows.join('\n')}`);
