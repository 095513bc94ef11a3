// `bisect`: the kernel commit between --good and --bad where the chosen tests changed. Each step
// builds the clone as checked out (kernels/build.ts: the stock fragment and the compatibility
// fixes, cached by the tree's content) and runs the suites on it in a child run of the CLI, whose
// record gives the verdict (bisectVerdict). The walk itself is kernels/bisect.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { cacheRoot, childEnv, resultsRoot } from '../base/config.js';
import { cliArgs, REPO_ROOT, timestamp } from '../base/paths.js';
import { bisect, bisectPaths, type StepResult } from '../kernels/bisect.js';
import { buildKernel, KernelBuildError } from '../kernels/build.js';
import type { KernelRun } from '../report/run-record.js';
import { listSuites, say } from './suite.js';

export interface BisectArgs {
  tree?: string;
  good?: string;
  bad?: string;
  suites: string[];
  test?: string;
  work?: string;
  reverse?: boolean;
  resume?: boolean;
}

const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';

/**
 * A step's verdict from the run's record: a failed test (a kernel fault fails its test) is a
 * fail; a guest that did not come up, a suite file that could not start, or tests that all
 * skipped cannot be judged (skip); otherwise the tests passed.
 */
export function bisectVerdict(run: KernelRun | undefined, exitCode: number, output: string): Pick<StepResult, 'verdict' | 'reason'> {
  if (!run) return { verdict: 'skip', reason: `the run ended before any test (exit ${exitCode}): ${firstLine(output.split('\n').filter((l) => /bpf-harness:|Error/.test(l)).pop() ?? output)}` };
  const failed = run.tests.filter((t) => t.state === 'failed' || t.flaky);
  if (failed.length) {
    const t = failed[0];
    const why = t.faults?.length ? `kernel ${t.faults[0].kind}: ${t.faults[0].line}` : firstLine(t.error ?? 'failed');
    return { verdict: 'fail', reason: `${t.suite} > ${t.name}: ${why}${failed.length > 1 ? ` (and ${failed.length - 1} more)` : ''}` };
  }
  if (run.suiteErrors.length) return { verdict: 'skip', reason: `${run.suiteErrors[0].suite}: ${firstLine(run.suiteErrors[0].error)}` };
  const passed = run.tests.filter((t) => t.state === 'passed');
  if (!passed.length) {
    const skipped = run.tests.find((t) => t.state === 'skipped');
    return { verdict: 'skip', reason: skipped ? `the tests skipped: ${skipped.note ?? 'no reason given'}` : 'no test ran (does -t match a test?)' };
  }
  return { verdict: 'pass', reason: `${passed.length} test${passed.length === 1 ? '' : 's'} passed` };
}

export async function bisectCommand(a: BisectArgs): Promise<number> {
  if (!a.tree || !a.good || !a.bad) throw new Error('bisect: --tree PATH, --good REV and --bad REV are needed');
  if (!a.suites.length) throw new Error(`bisect: name the suites to run: ${listSuites().join(', ')}`);
  for (const n of a.suites) if (!listSuites().includes(n)) throw new Error(`unknown suite "${n}": known suites are ${listSuites().join(', ')}`);
  const tree = resolve(a.tree);
  if (!existsSync(join(tree, '.git'))) throw new Error(`bisect: ${tree} is not a git repository (a fetched tree has no history: commit it first)`);
  const work = resolve(a.work ?? join(resultsRoot(), `bisect-${timestamp()}`));
  const results = join(work, 'runs');
  let n = 0;
  const step = async (clone: string, rev: string): Promise<StepResult> => {
    const t0 = Date.now();
    const name = `bisect-${rev.slice(0, 12)}`;
    let bzImage: string;
    try {
      // Every step builds into one directory (make compiles what changed since the last step) and
      // through ccache (what any step compiled before is not compiled again).
      const incremental = { outDir: join(work, 'build'), ccacheDir: join(cacheRoot(), 'ccache') };
      bzImage = (await buildKernel(name, { source: 'tree', path: clone }, { onProgress: (m) => say(`  ${m}`), logDir: join(work, 'builds', name), incremental })).bzImage;
    } catch (e) {
      if (!(e instanceof KernelBuildError)) throw e;
      return { verdict: 'skip', reason: `the build failed: ${firstLine(e.message).replace(/^kernel \S+: /, '').replace(/:$/, '')}`, buildMs: Date.now() - t0 };
    }
    const buildMs = Date.now() - t0;
    const runDir = join(results, `${String(++n).padStart(2, '0')}-${rev.slice(0, 12)}`);
    await mkdir(runDir, { recursive: true });
    const t1 = Date.now();
    const r = await execa(process.execPath, [...cliArgs(), 'suite', ...a.suites, '--kernel', bzImage, ...(a.test ? ['--test', a.test] : [])], {
      cwd: REPO_ROOT,
      reject: false,
      all: true,
      env: { ...childEnv({ runDir }), FORCE_COLOR: '0' },
    });
    const record = readdirSync(runDir).find((f) => /^kernel-.*\.json$/.test(f));
    const run = record ? (JSON.parse(readFileSync(join(runDir, record), 'utf8')) as KernelRun) : undefined;
    const output = r.all ?? '';
    return { ...bisectVerdict(run, r.exitCode ?? 1, output), buildMs, testMs: Date.now() - t1, output: output.split('\n').slice(-40).join('\n') };
  };
  const o = await bisect({ tree, good: a.good, bad: a.bad, work, reverse: a.reverse, resume: a.resume, step, say });
  const log = bisectPaths(work).log;
  if (o.kind === 'found') console.log(`\nthe first ${a.reverse ? 'fixed' : 'bad'} commit: ${o.rev} ${o.subject}\nlog: ${log}`);
  else if (o.kind === 'ambiguous') console.log(`\nonly skipped commits are left; the commit is one of:\n${o.candidates.map((c) => `  ${c}`).join('\n')}\nlog: ${log}`);
  else console.log(`\nbisect stopped: ${o.message}\nlog: ${log}`);
  return o.kind === 'endpoint' ? 1 : 0;
}
