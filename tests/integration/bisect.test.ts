// The bisect walk (harness/kernels/bisect.ts) on a real git history with a fake step: each commit
// of the history says in a file what its tests do (pass, fail, or nobuild), and the step reads it
// from the clone as git bisect checked it out. Covers every verdict, the checks of the given
// revisions, an interruption and its resume, and --reverse.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { bisect, bisectPaths, type StepResult } from '../../harness/kernels/bisect.js';
import type { KernelRun } from '../../harness/report/run-record.js';
import { hostMs } from '../helpers/timeouts.js';

/** A repository whose commits c0, c1, ... hold `state` = states[i]; returns their SHAs. */
async function history(states: string[]): Promise<{ dir: string; revs: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'bisect-tree-'));
  const git = (...a: string[]) => execa('git', a, { cwd: dir, env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
  await git('init', '-q', '-b', 'main');
  const revs: string[] = [];
  for (const [i, s] of states.entries()) {
    await writeFile(join(dir, 'state'), `${s}\ncommit ${i}\n`);
    await git('add', 'state');
    await git('commit', '-q', '-m', `c${i}: ${s}`);
    revs.push((await git('rev-parse', 'HEAD')).stdout.trim());
  }
  return { dir, revs };
}

/** The fake step: what the checked-out commit's file says; it edits the tree as a build's fixes would. */
function fakeStep(calls: string[]) {
  return async (tree: string, rev: string): Promise<StepResult> => {
    calls.push(rev);
    const s = readFileSync(join(tree, 'state'), 'utf8').split('\n')[0];
    await writeFile(join(tree, 'state'), 'edited by the step\n');
    if (s === 'nobuild') return { verdict: 'skip', reason: 'the build failed', buildMs: 10 };
    return { verdict: s === 'pass' ? 'pass' : 'fail', reason: s === 'pass' ? 'the tests passed' : 'drops: expected 0 to be 20', buildMs: 10, testMs: 5, output: `tests ${s}ed at ${rev.slice(0, 7)}` };
  };
}

const work = () => mkdtemp(join(tmpdir(), 'bisect-work-')).then((d) => join(d, 'run'));

test('the first failing commit is found, in the steps git bisect takes, and the log names it with its output and the last good one', async () => {
  const { dir, revs } = await history(['pass', 'pass', 'pass', 'pass', 'pass', 'fail', 'fail', 'fail', 'fail', 'fail']);
  const calls: string[] = [];
  const lines: string[] = [];
  const w = await work();
  const o = await bisect({ tree: dir, good: revs[0], bad: 'main', work: w, step: fakeStep(calls), say: (l) => lines.push(l) });
  expect(o).toMatchObject({ kind: 'found', rev: revs[5], subject: 'c5: fail' });
  // The two given revisions first, then about log2(9) steps, none tested twice.
  expect(calls.slice(0, 2)).toEqual([revs[0], revs[9]]);
  expect(new Set(calls).size).toBe(calls.length);
  expect(calls.length - 2).toBeLessThanOrEqual(4);
  expect(lines.some((l) => /^bisect: step 1: [0-9a-f]{12} c\d: \w+: (pass|fail) \(.*\); build 0\.0 s, tests 0\.0 s; about \d+ steps? left$/.test(l)), lines.join('\n')).toBe(true);
  const md = await readFile(bisectPaths(w).log, 'utf8');
  expect(md).toContain(`**${revs[5]}** c5: fail`);
  expect(md).toContain(`tests failed at ${revs[5].slice(0, 7)}`);
  expect(md).toContain(`tests passed at ${revs[4].slice(0, 7)}`);
  // The user's tree was only read: its branch and working file are as they were.
  expect(readFileSync(join(dir, 'state'), 'utf8')).toBe('fail\ncommit 9\n');
  expect(existsSync(join(dir, '.git', 'BISECT_START'))).toBe(false);
});

test('commits that cannot be judged are skipped with their reason; when only they are left, the candidates are named', async () => {
  const { dir, revs } = await history(['pass', 'pass', 'pass', 'nobuild', 'fail', 'fail', 'fail']);
  const w = await work();
  const o = await bisect({ tree: dir, good: revs[0], bad: revs[6], work: w, step: fakeStep([]) });
  expect(o.kind).toBe('ambiguous');
  if (o.kind !== 'ambiguous') return;
  expect(o.candidates.sort()).toEqual([revs[3], revs[4]].sort());
  expect(o.steps.find((s) => s.rev === revs[3])).toMatchObject({ verdict: 'skip', reason: 'the build failed' });
  expect(await readFile(bisectPaths(w).log, 'utf8')).toMatch(/\| skip \| the build failed \|/);
});

test('a skipped commit beside the change does not hide it', async () => {
  const { dir, revs } = await history(['pass', 'nobuild', 'pass', 'pass', 'fail', 'fail', 'nobuild', 'fail']);
  const o = await bisect({ tree: dir, good: revs[0], bad: revs[7], work: await work(), step: fakeStep([]) });
  expect(o).toMatchObject({ kind: 'found', rev: revs[4] });
});

test('a --good that fails, or a --bad that passes, stops the bisect before its first step', async () => {
  const { dir, revs } = await history(['fail', 'fail', 'pass', 'fail']);
  const calls: string[] = [];
  const o = await bisect({ tree: dir, good: revs[0], bad: revs[3], work: await work(), step: fakeStep(calls) });
  expect(o.kind).toBe('endpoint');
  if (o.kind === 'endpoint') expect(o.message).toMatch(new RegExp(`^--good ${revs[0]} \\(${revs[0].slice(0, 12)}\\) was to pass, but it failed: drops: expected 0 to be 20$`));
  expect(calls).toEqual([revs[0], revs[3]]);
  const passes = await bisect({ tree: dir, good: revs[2], bad: revs[2], work: await work(), step: fakeStep([]) });
  expect(passes.kind === 'endpoint' && passes.message).toMatch(/^--bad \S+ \(\w+\) was to fail, but it passed/);
});

test('an interrupted bisect resumes where it stopped, without testing a commit again', async () => {
  const { dir, revs } = await history(['pass', 'pass', 'pass', 'pass', 'pass', 'pass', 'pass', 'fail', 'fail', 'fail', 'fail', 'fail', 'fail']);
  const w = await work();
  const calls: string[] = [];
  const step = fakeStep(calls);
  let n = 0;
  const interrupted = bisect({
    tree: dir,
    good: revs[0],
    bad: revs[12],
    work: w,
    step: async (tree, rev) => {
      if (++n === 4) throw new Error('interrupted');
      return step(tree, rev);
    },
  });
  await expect(interrupted).rejects.toThrow('interrupted');
  expect(calls.length).toBe(3);
  // A second start in the same place is refused; --resume goes on.
  await expect(bisect({ tree: dir, good: revs[0], bad: revs[12], work: w, step })).rejects.toThrow(/a bisect is under way in .*: resume it \(--resume\)/);
  await expect(bisect({ tree: dir, good: revs[1], bad: revs[12], work: w, step, resume: true })).rejects.toThrow(/was started with/);
  const lines: string[] = [];
  const o = await bisect({ tree: dir, good: revs[0], bad: revs[12], work: w, step, resume: true, say: (l) => lines.push(l) });
  expect(o).toMatchObject({ kind: 'found', rev: revs[7] });
  expect(lines[0]).toBe(`bisect: resuming in ${w} after 3 steps`);
  expect(new Set(calls).size, 'no commit tested twice').toBe(calls.length);
});

test('--reverse finds the first commit where the failing tests pass (the fix, for a backport)', async () => {
  const { dir, revs } = await history(['fail', 'fail', 'fail', 'fail', 'pass', 'pass', 'pass']);
  // The tests pass at the newer revision (--good) and fail at the older (--bad).
  const o = await bisect({ tree: dir, good: revs[6], bad: revs[0], reverse: true, work: await work(), step: fakeStep([]) });
  expect(o).toMatchObject({ kind: 'found', rev: revs[4], subject: 'c4: pass' });
});

test('a step\'s verdict comes from its run\'s record: a failed test or fault fails it; no guest, a broken suite file or tests that all skipped cannot be judged', async () => {
  const { bisectVerdict } = await import('../../harness/cli/bisect.js');
  const run = (tests: KernelRun['tests'], suiteErrors: KernelRun['suiteErrors'] = []): KernelRun => ({ kernel: 'k', tests, suiteErrors, wallMs: 1 });
  const t = (state: 'passed' | 'failed' | 'skipped', extra = {}) => ({ suite: 'xdp', name: 'drops', state, durationMs: 1, ...extra });
  expect(bisectVerdict(run([t('passed'), t('passed')]), 0, '')).toEqual({ verdict: 'pass', reason: '2 tests passed' });
  expect(bisectVerdict(run([t('passed'), t('failed', { error: 'expected 0 to be 20\nat …' })]), 1, '')).toEqual({ verdict: 'fail', reason: 'xdp > drops: expected 0 to be 20' });
  expect(bisectVerdict(run([t('failed', { error: 'the guest died', faults: [{ kind: 'oops', line: 'BUG: unable to handle page fault', lines: [] }] })]), 1, '').reason).toBe('xdp > drops: kernel oops: BUG: unable to handle page fault');
  expect(bisectVerdict(run([t('passed', { flaky: true })]), 1, '').verdict, 'flaky is not a pass').toBe('fail');
  expect(bisectVerdict(run([t('skipped', { note: 'needs 4.15: program type xdp' })]), 0, '')).toEqual({ verdict: 'skip', reason: 'the tests skipped: needs 4.15: program type xdp' });
  expect(bisectVerdict(run([], [{ suite: 'xdp', error: 'init never started the SSH server within 60 s\n…' }]), 1, '')).toEqual({ verdict: 'skip', reason: 'xdp: init never started the SSH server within 60 s' });
  expect(bisectVerdict(run([]), 0, '')).toEqual({ verdict: 'skip', reason: 'no test ran (does -t match a test?)' });
  expect(bisectVerdict(undefined, 1, 'lots\nbpf-harness: kernel /k: not an x86 bzImage\n').reason).toBe('the run ended before any test (exit 1): bpf-harness: kernel /k: not an x86 bzImage');
});

test('npm run bisect on a tree that does not build stops at the check of --good, with the build\'s error, and leaves its log', async () => {
  const { dir } = await history(['pass']);
  await writeFile(join(dir, 'Makefile'), 'VERSION = 4\nPATCHLEVEL = 14\nSUBLEVEL = 0\nEXTRAVERSION =\n%:\n\t@echo "no target $@" >&2; exit 1\n');
  await writeFile(join(dir, 'Kconfig'), 'mainmenu "not a kernel"\n');
  const g = (...a: string[]) => execa('git', a, { cwd: dir, env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
  await g('add', '.');
  await g('commit', '-q', '-m', 'a Makefile that builds nothing');
  await g('commit', '-q', '--allow-empty', '-m', 'nothing more');
  const w = await work();
  const { cli } = await import('../helpers/cli.js');
  const r = await cli(['bisect', '--tree', dir, '--good', 'HEAD~1', '--bad', 'HEAD', '--work', w, 'xdp'], { env: { BPF_HARNESS_CACHE: await mkdtemp(join(tmpdir(), 'bisect-cache-')) } });
  expect(r.exitCode, r.all).toBe(1);
  expect(r.all).toMatch(/^bisect stopped: --good HEAD~1 \(\w{12}\) was to pass, but it could not be judged: the build failed: make x86_64_defconfig failed \(make exited \d+\)$/m);
  expect(await readFile(bisectPaths(w).log, 'utf8')).toMatch(/^\| --good \| \w{12} \| a Makefile that builds nothing \| skip \| the build failed: make x86_64_defconfig failed/m);
  // Bad input is refused before anything is cloned.
  const noTree = await cli(['bisect', '--good', 'a', '--bad', 'b', 'xdp']);
  expect(noTree.stderr).toMatch(/bisect: --tree PATH, --good REV and --bad REV are needed/);
  const noGit = await cli(['bisect', '--tree', tmpdir(), '--good', 'a', '--bad', 'b', 'xdp']);
  expect(noGit.stderr).toMatch(/is not a git repository \(a fetched tree has no history: commit it first\)/);
}, hostMs(120_000));
