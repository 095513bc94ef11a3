#!/usr/bin/env -S npx tsx
// Runs the same suites many times on each chosen kernel, one run after another, optionally with
// host cores kept busy, and reports what a single run cannot show: which tests fail now and then
// (failures over runs), and how close each bounded figure (expectBounded) came to its bound
// (harness/report/soak.ts). Each run is a normal `suite` run of the harness's CLI with its own
// BPF_HARNESS_RUN_DIR under one soak directory; the findings go to soak.md there.
// Usage: npm run soak -- [--runs N] [--kernel K[,K2] | --kernels all] [--busy C] [-t PATTERN] [--dir DIR] SUITE...
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { kernelList, listSuites } from '../harness/cli/suite.js';
import { childEnv, positiveInt, resultsRoot } from '../harness/base/config.js';
import { loadCatalog, lookupKernel } from '../harness/kernels/catalog.js';
import { watchAncestors } from '../harness/guest/lifeline.js';
import { fileSafe, REPO_ROOT, timestamp } from '../harness/base/paths.js';
import { kernelRunPath, type KernelRun, readRuns } from '../harness/report/run-record.js';
import { renderSoak, runCounts, summarizeSoak } from '../harness/report/soak.js';
import { which } from '../harness/base/tools.js';

const USAGE = 'usage: npm run soak -- [--runs N] [--kernel K[,K2] | --kernels all] [--busy C] [-t PATTERN] [--dir DIR] SUITE...';
const { values, positionals: suites } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '10' },
    kernel: { type: 'string', short: 'k' },
    kernels: { type: 'string' },
    busy: { type: 'string', default: '0' },
    test: { type: 'string', short: 't' },
    dir: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const say = (m: string) => console.log(`[soak] ${m}`);
const fail = (m: string): never => {
  console.error(`soak: ${m}\n${USAGE}`);
  process.exit(2);
};
// --dir: a project's own suites folder, as `suite --dir` takes it.
const dir = values.dir && resolve(values.dir);
const known = (() => {
  try {
    return listSuites(dir);
  } catch (e) {
    return fail((e as Error).message);
  }
})();
if (!suites.length) fail(`name the suites: ${known.join(', ')} or all`);
for (const s of suites) if (s !== 'all' && !known.includes(s)) fail(`unknown suite "${s}": known suites are ${known.join(', ')}`);
if (!/^\d+$/.test(values.busy!)) fail(`--busy must be a number of cores, not "${values.busy}"`);
let runs = 0;
let kernels: string[] = [];
try {
  runs = positiveInt(values.runs!, '--runs');
  kernels = kernelList(values.kernels ?? values.kernel);
  for (const k of kernels) lookupKernel(k, loadCatalog());
} catch (e) {
  fail((e as Error).message);
}

// --busy: C processes that each keep a core busy, for the whole soak. Under `setpriv --pdeathsig`
// (as guests are) they die with this process even when it is killed outright; Ctrl-C, a signal,
// the end of the soak and the launch chain going away kill them too.
const busy: ChildProcess[] = Array.from({ length: Number(values.busy) }, () =>
  spawn(which('setpriv'), ['--pdeathsig', 'SIGKILL', '--', 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' }),
);
const stopBusy = () => {
  for (const b of busy) if (b.exitCode === null && b.signalCode === null) b.kill('SIGKILL');
};
process.on('exit', stopBusy);

/** The run under way, to pass a signal on to. */
let current: { kill(signal: NodeJS.Signals): boolean } | undefined;
let interrupted = '';
const interrupt = (why: string, signal: NodeJS.Signals) => {
  if (interrupted) return;
  interrupted = why;
  stopBusy();
  say(`${why}: ending the current run, then the soak`);
  current?.kill(signal);
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => interrupt(`${sig} received`, sig));
watchAncestors((gone) => interrupt(`process ${gone.pid}, which started the soak, is gone`, 'SIGTERM'));

const soakDir = join(resultsRoot(), `soak-${timestamp()}-${process.pid}`);
mkdirSync(soakDir, { recursive: true });
const what = `${suites.join(' ')}${values.test ? ` (-t ${values.test})` : ''}`;
say(`${what}: ${runs} run${runs > 1 ? 's' : ''} on ${kernels.join(', ')}${busy.length ? `, ${busy.length} host core${busy.length > 1 ? 's' : ''} kept busy` : ''}; results in ${soakDir}`);

/** One run of the suites on one kernel: the harness's own `suite` command, its output in a log. */
async function runOnce(kernel: string, runDir: string): Promise<{ record: KernelRun; exitCode: number; log: string }> {
  mkdirSync(runDir, { recursive: true });
  const log = join(runDir, 'output.log');
  const fd = openSync(log, 'w');
  const args = [join(REPO_ROOT, 'bin/bpf-harness.mjs'), 'suite', ...suites, '--kernel', kernel, ...(values.test ? ['--test', values.test] : []), ...(dir ? ['--dir', dir] : [])];
  const t = Date.now();
  try {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', fd, fd], env: { ...process.env, ...childEnv({ runDir }), FORCE_COLOR: '0' } });
    current = child;
    const [code] = (await once(child, 'exit')) as [number | null];
    const exitCode = code ?? 1;
    // A run that ended before its reporter wrote anything (a kernel that cannot be had, a crash) failed as a whole.
    const record = existsSync(kernelRunPath(runDir, kernel))
      ? readRuns(runDir)[0]!
      : { kernel, tests: [], suiteErrors: suites.map((suite) => ({ suite, error: `the run ended before any test (exit ${exitCode}); see ${log}` })), wallMs: Date.now() - t };
    return { record, exitCode, log };
  } finally {
    current = undefined;
    closeSync(fd);
  }
}

const records: KernelRun[] = [];
let anyFailed = false;
soak: for (const kernel of kernels) {
  for (let i = 1; i <= runs; i++) {
    if (interrupted) break soak;
    const t = Date.now();
    const { record, exitCode, log } = await runOnce(kernel, join(soakDir, fileSafe(kernel), `run-${i}`));
    if (interrupted) break soak; // a run cut short says nothing about its tests
    records.push(record);
    const n = runCounts(record);
    if (n.failed || exitCode !== 0) anyFailed = true;
    say(`run ${i}/${runs} on ${kernel}: ${n.passed} passed, ${n.failed} failed, ${n.skipped} skipped, ${((Date.now() - t) / 1000).toFixed(1)} s${exitCode !== 0 && !n.failed ? ` (exit ${exitCode})` : ''}`);
    for (const x of record.tests.filter((x) => x.state === 'failed' || x.state === 'pending')) say(`  failed: ${x.suite}: ${x.name}: ${(x.error ?? '').split('\n')[0]}`);
    for (const e of record.suiteErrors) say(`  failed: ${e.suite} (outside any test): ${e.error.split('\n')[0]}`);
    if (n.failed || exitCode !== 0) say(`  output: ${log}`);
  }
}
stopBusy();

const title = `Soak: ${what}, ${runs} run${runs > 1 ? 's' : ''} on ${kernels.join(', ')}${busy.length ? ` with ${busy.length} host core${busy.length > 1 ? 's' : ''} busy` : ''}${interrupted ? ` (${interrupted} after ${records.length} run${records.length === 1 ? '' : 's'})` : ''}`;
const md = renderSoak(summarizeSoak(records), title);
writeFileSync(join(soakDir, 'soak.md'), md);
console.log(`\n${md}\nsoak report: ${join(soakDir, 'soak.md')}`);
process.exit(interrupted ? 130 : anyFailed ? 1 : 0);
