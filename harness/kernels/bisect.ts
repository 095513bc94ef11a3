// The walk of a bisect: from a revision where the chosen tests pass and one where they fail, to
// the first commit that changed that. git's own bisect chooses each step (in a clone of the user's
// tree, which is never written to), and a step function says what the tests did there: pass, fail,
// or skip (it does not build, boot, or the tests skip), with the reason. The state is kept beside
// the clone after every step, so an interrupted bisect resumes where it stopped.
//   reverse: the tests fail at the older revision and pass at the newer: the first commit that
//   fixed them (for a backport).
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { readJsonFile, writeJsonFile } from '../base/json-file.js';
import { which } from '../base/tools.js';

export type Verdict = 'pass' | 'fail' | 'skip';

/** What a step found at a revision. */
export interface StepResult {
  verdict: Verdict;
  /** Why (the failing test, the build error, what the kernel lacks): one line. */
  reason: string;
  buildMs?: number;
  testMs?: number;
  /** The chosen tests' output there, for the end report (the first bad commit and its parent). */
  output?: string;
}

export interface StepRecord extends StepResult {
  rev: string;
  subject: string;
  /** The two checks of the given revisions first, then git's steps. */
  role: 'good' | 'bad' | 'step';
}

export interface BisectOptions {
  /** The user's kernel tree (a git repository); only read. */
  tree: string;
  /** Where the tests pass. */
  good: string;
  /** Where they fail. */
  bad: string;
  /** The bisect's own directory: the clone (work/tree) and its state. */
  work: string;
  reverse?: boolean;
  /** Go on with the bisect under way in `work`. */
  resume?: boolean;
  /** Runs the chosen tests on the clone as checked out at `rev`. */
  step(tree: string, rev: string): Promise<StepResult>;
  say?(line: string): void;
}

export type BisectOutcome =
  | { kind: 'found'; rev: string; subject: string; steps: StepRecord[] }
  | { kind: 'ambiguous'; candidates: string[]; steps: StepRecord[] }
  | { kind: 'endpoint'; message: string; steps: StepRecord[] };

interface State {
  tree: string;
  good: string;
  bad: string;
  reverse: boolean;
  goodRev: string;
  badRev: string;
  steps: StepRecord[];
}

export class BisectError extends Error {}

const git = async (cwd: string, ...args: string[]) => {
  const r = await execa(which('git'), args, { cwd, reject: false, all: true, env: { LC_ALL: 'C' } });
  if (r.exitCode !== 0) throw new BisectError(`git ${args.join(' ')} failed (exit ${r.exitCode}): ${(r.all ?? '').trim()}`);
  return (r.stdout ?? '').trim();
};

const short = (rev: string) => rev.slice(0, 12);


/** The clone of a bisect, and where its state is kept. */
export const bisectPaths = (work: string) => ({ clone: join(work, 'tree'), state: join(work, 'bisect.json'), log: join(work, 'bisect.md') });

/** Walks from opts.good and opts.bad to the first commit whose tests differ from the good one's. */
export async function bisect(opts: BisectOptions): Promise<BisectOutcome> {
  const say = opts.say ?? (() => {});
  const paths = bisectPaths(opts.work);
  const reverse = Boolean(opts.reverse);
  let state: State;
  if (opts.resume) {
    if (!existsSync(paths.state)) throw new BisectError(`there is no bisect to resume in ${opts.work}`);
    state = readJsonFile<State>(paths.state);
    const asked = { tree: opts.tree, good: opts.good, bad: opts.bad, reverse };
    const was = { tree: state.tree, good: state.good, bad: state.bad, reverse: state.reverse };
    if (JSON.stringify(asked) !== JSON.stringify(was)) throw new BisectError(`the bisect in ${opts.work} was started with ${JSON.stringify(was)}, not ${JSON.stringify(asked)}`);
    say(`bisect: resuming in ${opts.work} after ${state.steps.length} step${state.steps.length === 1 ? '' : 's'}`);
  } else {
    if (existsSync(paths.state)) throw new BisectError(`a bisect is under way in ${opts.work}: resume it (--resume) or remove the directory`);
    await mkdir(opts.work, { recursive: true });
    // --shared: the clone borrows the tree's objects and writes nothing into it.
    await git(opts.work, 'clone', '-q', '--shared', '--no-checkout', opts.tree, paths.clone);
    const revOf = (r: string) => git(paths.clone, 'rev-parse', '--verify', '-q', `${r}^{commit}`).catch(() => {
      throw new BisectError(`${r} is not a commit of ${opts.tree}`);
    });
    state = { tree: opts.tree, good: opts.good, bad: opts.bad, reverse, goodRev: await revOf(opts.good), badRev: await revOf(opts.bad), steps: [] };
    await writeJsonFile(paths.state, state);
  }
  const save = () => writeJsonFile(paths.state, state);
  const subjectOf = (rev: string) => git(paths.clone, 'log', '-1', '--format=%s', rev);
  // A step may leave the tree edited (a build's compatibility fixes): git's next checkout must not trip on it.
  const clean = () => git(paths.clone, 'reset', '-q', '--hard');

  // The given revisions first: a bisect from a wrong premise finds nothing worth having.
  for (const role of ['good', 'bad'] as const) {
    if (state.steps.some((s) => s.role === role)) continue;
    const rev = role === 'good' ? state.goodRev : state.badRev;
    await git(paths.clone, 'checkout', '-q', '--detach', rev);
    const subject = await subjectOf(rev);
    say(`bisect: checking --${role} ${short(rev)} ${subject}`);
    const r = await opts.step(paths.clone, rev);
    await clean();
    state.steps.push({ ...r, rev, subject, role });
    await save();
    say(`bisect: --${role} ${short(rev)}: ${r.verdict} (${r.reason})`);
  }
  for (const role of ['good', 'bad'] as const) {
    const s = state.steps.find((x) => x.role === role)!;
    const want: Verdict = role === 'good' ? 'pass' : 'fail';
    if (s.verdict !== want) {
      const outcome: BisectOutcome = { kind: 'endpoint', message: `--${role} ${opts[role]} (${short(s.rev)}) was to ${want === 'pass' ? 'pass' : 'fail'}, but it ${s.verdict === 'skip' ? 'could not be judged' : `${s.verdict}ed`}: ${s.reason}`, steps: state.steps };
      await writeFile(paths.log, bisectMarkdown(opts, outcome));
      return outcome;
    }
  }

  // git's terms: the older revision's verdict is "old", the newer's "new".
  const [oldTerm, newTerm]: Verdict[] = reverse ? ['fail', 'pass'] : ['pass', 'fail'];
  const [newRev, oldRev] = reverse ? [state.goodRev, state.badRev] : [state.badRev, state.goodRev];
  const bisecting = existsSync(join(paths.clone, '.git', 'BISECT_START'));
  let said = bisecting ? '' : await git(paths.clone, 'bisect', 'start', `--term-old=${oldTerm}`, `--term-new=${newTerm}`, newRev, oldRev);
  if (bisecting) {
    // Interrupted after a verdict was kept but before git was told: tell it now.
    const head = await git(paths.clone, 'rev-parse', 'HEAD');
    const last = state.steps[state.steps.length - 1];
    if (last?.role === 'step' && last.rev === head) said = await mark(last.verdict);
  }
  async function mark(v: Verdict): Promise<string> {
    await clean();
    const r = await execa(which('git'), ['bisect', v], { cwd: paths.clone, reject: false, all: true, env: { LC_ALL: 'C' } });
    // git says "only skipped commits left" with exit 2, and names the candidates.
    if (r.exitCode !== 0 && !finished(r.all ?? '', newTerm)) throw new BisectError(`git bisect ${v} failed (exit ${r.exitCode}): ${(r.all ?? '').trim()}`);
    return r.all ?? '';
  }
  for (;;) {
    const done = finished(said, newTerm);
    if (done) {
      const outcome: BisectOutcome = done.kind === 'found' ? { kind: 'found', rev: done.rev, subject: await subjectOf(done.rev), steps: state.steps } : { kind: 'ambiguous', candidates: done.candidates, steps: state.steps };
      await writeFile(paths.log, bisectMarkdown(opts, outcome));
      await git(paths.clone, 'bisect', 'reset', '-q').catch(() => {});
      return outcome;
    }
    const rev = await git(paths.clone, 'rev-parse', 'HEAD');
    const subject = await subjectOf(rev);
    const left = /roughly (\d+) steps?/.exec(said)?.[1];
    const n = state.steps.filter((s) => s.role === 'step').length + 1;
    const r = await opts.step(paths.clone, rev);
    state.steps.push({ ...r, rev, subject, role: 'step' });
    await save();
    const times = [r.buildMs !== undefined ? `build ${fmt(r.buildMs)}` : '', r.testMs !== undefined ? `tests ${fmt(r.testMs)}` : ''].filter(Boolean).join(', ');
    say(`bisect: step ${n}: ${short(rev)} ${subject}: ${r.verdict} (${r.reason})${times ? `; ${times}` : ''}${left !== undefined ? `; about ${left} step${left === '1' ? '' : 's'} left` : ''}`);
    said = await mark(r.verdict);
  }
}

const fmt = (ms: number) => (ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);

/** What git said when the bisect is over: the first new commit, or the candidates skips left. */
export function finished(said: string, newTerm: string): { kind: 'found'; rev: string } | { kind: 'ambiguous'; candidates: string[] } | undefined {
  const found = new RegExp(`^([0-9a-f]{40}) is the first ${newTerm} commit`, 'm').exec(said);
  if (found) return { kind: 'found', rev: found[1] };
  if (/only 'skip'ped commits left to test/.test(said)) return { kind: 'ambiguous', candidates: [...said.matchAll(/^([0-9a-f]{40})$/gm)].map((m) => m[1]) };
  return undefined;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The bisect's log as Markdown: the outcome, then every step with its verdict and reason. */
export function bisectMarkdown(opts: Pick<BisectOptions, 'tree' | 'good' | 'bad' | 'reverse'>, o: BisectOutcome): string {
  const what = opts.reverse ? 'first commit where the tests pass' : 'first commit where the tests fail';
  const lines = [`# bisect of ${opts.tree}`, '', `--good ${opts.good}, --bad ${opts.bad}${opts.reverse ? ', --reverse' : ''}: the ${what}.`, ''];
  if (o.kind === 'found') {
    lines.push(`**${o.rev}** ${cell(o.subject)}`, '');
    const at = o.steps.find((s) => s.rev === o.rev);
    const before = o.steps.filter((s) => s.rev !== o.rev && s.verdict !== 'skip' && s.verdict !== at?.verdict).pop();
    if (at?.output) lines.push(`At ${short(o.rev)}:`, '', '```', at.output.trim(), '```', '');
    if (before?.output) lines.push(`At ${short(before.rev)} (${before.role === 'step' ? 'the last tested commit with the other verdict' : `--${before.role}`}):`, '', '```', before.output.trim(), '```', '');
  } else if (o.kind === 'ambiguous') {
    lines.push(`Only skipped commits are left: the commit is one of`, '', ...o.candidates.map((c) => `- ${c}`), '');
  } else {
    lines.push(`Stopped before bisecting: ${cell(o.message)}`, '');
  }
  lines.push('| # | revision | subject | verdict | reason | build | tests |', '|---|---|---|---|---|---|---|');
  o.steps.forEach((s, i) => {
    lines.push(`| ${s.role === 'step' ? i + 1 - o.steps.filter((x) => x.role !== 'step').length : `--${s.role}`} | ${short(s.rev)} | ${cell(s.subject)} | ${s.verdict} | ${cell(s.reason)} | ${s.buildMs !== undefined ? fmt(s.buildMs) : ''} | ${s.testMs !== undefined ? fmt(s.testMs) : ''} |`);
  });
  return `${lines.join('\n')}\n`;
}
