// `suite`: suites in guests on one kernel (vitest in this process), or a kernel matrix (one child
// per kernel, up to the guest budget at once) with a report.
import { accessSync, constants, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { eachAtOnce } from '../base/at-once.js';
import { childEnv, config, resultsRoot, settings } from '../base/config.js';
import { getKernel, type Kernel, loadCatalog, lookupKernel, REPO_ROOT } from '../kernels/catalog.js';
import { cliArgs, harnessModule, timestamp } from '../base/paths.js';
import { runVerdict, writeReports } from '../report/report.js';
import { kernelRunPath, writeKernelRun } from '../report/run-record.js';
import { guestBudget, suiteFileOptions, vitestExperimental } from '../suite/config.js';

export const SUITES_DIR = join(REPO_ROOT, 'suites');

export const say = (m: string) => console.log(`[harness] ${m}`);

/** Suites: the folders of `dir` (this repository's suites/, or a project's own) with a test file. */
export function listSuites(dir = SUITES_DIR): string[] {
  if (!existsSync(dir)) throw new Error(`no suites folder at ${dir}`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && readdirSync(join(dir, e.name)).some((f) => f.endsWith('.test.ts')))
    .map((e) => e.name)
    .sort();
}

/** The kernels a run names: --kernel/--kernels (a list, or "all" packaged ones), else the default. */
export function kernelList(arg: string | undefined): string[] {
  const catalog = loadCatalog();
  if (arg === undefined) return [settings().kernel ?? catalog.default];
  if (!arg.split(',').some((k) => k.trim())) throw new Error('--kernel needs a kernel: a catalog name (npm run kernels -- list), a bzImage, or kernel source');
  // "all": the packaged kernels; kernels built from source (tens of minutes each) are named one by one.
  const packaged = Object.entries(catalog.kernels).filter(([, s]) => s.source === 'debian' || s.source === 'local');
  return arg === 'all' ? packaged.map(([n]) => n) : arg.split(',').map((k) => k.trim()).filter(Boolean);
}

export interface RunOptions {
  /** A project's own suites folder (--dir) instead of this repository's suites/. */
  dir?: string;
  modules?: string;
  /** vitest's --shard i/n. */
  shard?: string;
  /** Only tests whose name matches this pattern (vitest's -t). */
  test?: string;
}

/** vitest in this process on the run's kernel: its workers get the run's settings in their environment, its global setup the kernel. */
async function runVitest(suites: string[], kernel: { name: string; resolved: Kernel }, o: RunOptions): Promise<number> {
  const { startVitest } = await import('vitest/node');
  const filter = { run: true, shard: o.shard, testNamePattern: o.test };
  // This repository's suites or a project's own (--dir), with the settings of the suites project
  // of vitest.config.ts given here, so that no config file is loaded. A project's suites import the
  // harness's build from its node_modules, as plain JavaScript.
  const root = o.dir ?? REPO_ROOT;
  const vitest = await startVitest('test', suites.map((n) => `${join(o.dir ?? SUITES_DIR, n)}/`), {
    ...filter,
    config: false,
    root,
    ...(o.dir ? { include: ['**/*.test.ts'] } : { name: 'suites', include: ['suites/**/*.test.ts'] }),
    ...suiteFileOptions(),
    reporters: ['verbose', harnessModule('report/reporter')],
    experimental: vitestExperimental,
    // The workers are processes of their own: what the flags set and the run's kernel go in their
    // environment (on top of this process's); the resolved kernel goes to the global setup.
    env: childEnv({ kernel: kernel.name }),
    provide: { kernel: kernel.resolved },
  });
  await vitest?.close();
  return process.exitCode === undefined || process.exitCode === 0 ? 0 : Number(process.exitCode);
}

/**
 * How a matrix spends the guest budget: as many kernels at once as it allows (and there are
 * kernels), and the guests left over shared among them, so that 16 cores run 4 kernels with 4
 * guests each rather than 4 guests in all.
 */
export function matrixPlan(budget: number, kernels: number): { atOnce: number; guestsEach: number } {
  const atOnce = Math.max(1, Math.min(budget, kernels));
  return { atOnce, guestsEach: Math.max(1, Math.floor(budget / atOnce)) };
}

/** Runs one child per kernel (up to the guest budget at once), each line prefixed by its kernel. */
async function runMatrix(suites: string[], kernels: string[], o: RunOptions): Promise<number> {
  const dir = join(resultsRoot(), `run-${timestamp()}-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const { atOnce, guestsEach } = matrixPlan(guestBudget(), kernels.length);
  say(`matrix: ${suites.join(', ')} on kernels ${kernels.join(', ')}, ${atOnce} at a time with ${guestsEach} guest${guestsEach > 1 ? 's' : ''} each; results in ${dir}`);
  const codes: number[] = [];
  await eachAtOnce(kernels, atOnce, async (k) => {
    const t = Date.now();
    const args = [...cliArgs(), 'suite', ...suites, '--kernel', k];
    if (o.modules) args.push('--modules', o.modules);
    if (o.shard) args.push('--shard', o.shard);
    if (o.test) args.push('--test', o.test);
    if (o.dir) args.push('--dir', o.dir);
    const child = execa(process.execPath, args, {
      cwd: REPO_ROOT,
      reject: false,
      all: true,
      buffer: false,
      // What the flags set (childEnv), the matrix's record directory and each run's share of the guests.
      env: { ...childEnv({ runDir: dir, parallel: String(guestsEach) }), FORCE_COLOR: '0' },
    });
    let partial = '';
    child.all!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) console.log(`[${k}] ${l}`);
    });
    const r = await child;
    if (partial.trim()) console.log(`[${k}] ${partial}`);
    codes.push(r.exitCode ?? 1);
    say(`kernel ${k}: ${r.exitCode === 0 ? 'passed' : `FAILED (exit ${r.exitCode})`} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    if (!existsSync(kernelRunPath(dir, k))) {
      // The child died before its reporter ran (e.g. the kernel could not be fetched): record the column as failed.
      const error = `the run on kernel ${k} ended before any test (exit ${r.exitCode}); see its output above`;
      writeKernelRun(dir, { kernel: k, tests: [], suiteErrors: suites.map((suite) => ({ suite, error })), wallMs: Date.now() - t });
    }
  });
  const report = writeReports(dir, kernels);
  // Each kernel's run fails on its own flaky tests (unless --flaky-ok, which its environment
  // carries); the records decide too, so that the matrix's exit code cannot disagree with them.
  const verdict = runVerdict(report, settings().flakyOk);
  console.log(`\n${report.table}\n\nreport: ${report.markdown}\njunit:  ${report.junit}${verdict.line ? `\n${verdict.line}` : ''}`);
  return verdict.failed || codes.some((c) => c !== 0) ? 1 : 0;
}

export async function suite(names: string[], kernelArg: string | undefined, o: RunOptions): Promise<number> {
  const { modules } = o;
  // --dir's folder and the results beside it are in this run's settings (flagSettings, main.ts).
  if (o.dir) o.dir = resolve(o.dir);
  const known = listSuites(o.dir);
  if (!names.length) throw new Error(`name a suite: ${known.join(', ')} or all`);
  const chosen = names.includes('all') ? known : names;
  for (const n of chosen) if (!known.includes(n)) throw new Error(`unknown suite "${n}": known suites are ${known.join(', ')}`);
  const kernels = kernelList(kernelArg);
  for (const k of kernels) lookupKernel(k, loadCatalog(), modules); // fails early on an unknown name
  checkResultsDir();
  if (kernels.length > 1) return runMatrix(chosen, kernels, o);
  // Resolved (fetched, built, checked) before vitest starts, so that a kernel that is not one
  // fails here with its own message; the run's global setup takes it from here.
  const resolved = await getKernel(kernels[0], { onProgress: say, modules });
  return runVitest(chosen, { name: kernels[0], resolved }, o);
}

/** The results directory must be writable before anything runs. */
export function checkResultsDir(): void {
  const dir = resultsRoot();
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new Error(`the results directory ${dir} cannot be written (${(e as NodeJS.ErrnoException).code}); set ${config.results.name} to another`);
  }
}
