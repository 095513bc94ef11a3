// Opt-in: a real bisect on a real kernel tree (20-60 minutes: one cold build, then incremental
// steps), too slow for `npm test`.
//   BPF_HARNESS_BISECT_TREE=/path/to/linux-4.14.67 npx vitest run tests/integration/bisect-real.test.ts
// The tree is a plain kernel source tree without history (a fetched snapshot, as the README's
// old-kernel section describes); it is only read. The test gives it a history in a repository of
// its own, without copying it: the tree as the first commit, then three commits on top, of which
// the second breaks generic XDP's XDP_DROP (the packets go up the stack instead), which the xdp
// suite's "XDP_DROP drops every packet" observes. `npm run bisect` must name that commit.
// Without the variable the test is reported as skipped, with the reason in its name.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, test } from 'vitest';
import type { StepRecord } from '../../harness/kernels/bisect.js';
import { cli } from '../helpers/cli.js';

const TREE = process.env.BPF_HARNESS_BISECT_TREE;
const say = (m: string) => console.log(`[bisect-real] ${m}`);

/** The generic XDP receive path of 4.14-4.19 (net/core/dev.c), before and after the breaking commit. */
const DROP_BEFORE = '\tcase XDP_PASS:\n\t\tbreak;\n\n\tdefault:';
const DROP_AFTER = '\tcase XDP_PASS:\n\tcase XDP_DROP: /* bisect-real: the commit that breaks XDP_DROP */\n\t\tact = XDP_PASS;\n\t\tbreak;\n\n\tdefault:';
const DROP_LABEL = '\tcase XDP_DROP:\n\tdo_drop:';

/**
 * A repository at `repo` whose first commit is `tree` as it is, and whose next commits change one
 * file each (from the blob of the commit before). git reads the tree in place (--work-tree), so
 * nothing is copied and nothing is written to it.
 */
async function makeHistory(tree: string, repo: string, changes: { subject: string; file: string; edit: (text: string) => string }[]): Promise<string[]> {
  const env = { GIT_INDEX_FILE: join(repo, 'index.bisect-real'), GIT_AUTHOR_NAME: 'bisect-real', GIT_AUTHOR_EMAIL: 'bisect-real@example.invalid', GIT_COMMITTER_NAME: 'bisect-real', GIT_COMMITTER_EMAIL: 'bisect-real@example.invalid' };
  const git = (args: string[], input?: string) => execa('git', ['-C', repo, ...args], { env, input, maxBuffer: 1 << 28 }).then((r) => r.stdout.trim());
  await execa('git', ['init', '-q', repo]);
  // -f: the files of the tree as they are, .gitignore or not (a snapshot's files are all source).
  await execa('git', ['--git-dir', join(repo, '.git'), '--work-tree', tree, 'add', '-A', '-f', '.'], { env });
  let head = await git(['commit-tree', await git(['write-tree']), '-m', 'the tree as fetched']);
  const revs = [head];
  for (const c of changes) {
    const text = await git(['cat-file', 'blob', `${head}:${c.file}`]);
    const edited = c.edit(text + '\n');
    expect(edited, `${c.subject}: the edit changes ${c.file}`).not.toBe(text + '\n');
    const blob = await git(['hash-object', '-w', '--stdin'], edited);
    await git(['update-index', '--cacheinfo', `100644,${blob},${c.file}`]);
    head = await git(['commit-tree', await git(['write-tree']), '-p', head, '-m', c.subject]);
    revs.push(head);
  }
  await git(['update-ref', 'refs/heads/main', head]);
  await git(['symbolic-ref', 'HEAD', 'refs/heads/main']);
  return revs;
}

describe.skipIf(!TREE)('a real bisect (opt-in: set BPF_HARNESS_BISECT_TREE to a 4.14 or 4.19 kernel tree)', () => {
  test('npm run bisect names the commit that broke a test, building each step incrementally', async () => {
    expect(existsSync(join(TREE!, 'net/core/dev.c')), `${TREE} is a kernel tree`).toBe(true);
    const dev = await readFile(join(TREE!, 'net/core/dev.c'), 'utf8');
    expect(dev.includes(DROP_BEFORE) && dev.includes(DROP_LABEL), 'the tree has 4.14-4.19 generic XDP (netif_receive_generic_xdp)').toBe(true);
    const repo = await mkdtemp(join(tmpdir(), 'bisect-real-repo-'));
    const t0 = Date.now();
    const [base, , broke, top] = await makeHistory(TREE!, repo, [
      { subject: 'net: a comment in filter.c (only net/ changes)', file: 'net/core/filter.c', edit: (t) => t.replace('#include <linux/module.h>', '/* bisect-real: a comment */\n#include <linux/module.h>') },
      { subject: 'net: generic XDP passes what XDP_DROP drops', file: 'net/core/dev.c', edit: (t) => t.replace(DROP_BEFORE, DROP_AFTER).replace(DROP_LABEL, '\tdo_drop:') },
      { subject: 'bpf: a comment in syscall.c', file: 'kernel/bpf/syscall.c', edit: (t) => t.replace('#include <linux/bpf.h>', '/* bisect-real: another comment */\n#include <linux/bpf.h>') },
    ]);
    say(`history of 4 commits made in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    const work = await mkdtemp(join(tmpdir(), 'bisect-real-work-'));
    const t1 = Date.now();
    const r = await cli(['bisect', '--tree', repo, '--good', base, '--bad', top, '--work', work, 'xdp', '-t', 'XDP_DROP drops every packet'], { env: { FORCE_COLOR: '0' } });
    const out = r.all ?? '';
    say(`bisect took ${((Date.now() - t1) / 60_000).toFixed(1)} min`);
    expect(r.exitCode, out).toBe(0);
    expect(out).toContain(`the first bad commit: ${broke} net: generic XDP passes what XDP_DROP drops`);

    const state = JSON.parse(await readFile(join(work, 'bisect.json'), 'utf8')) as { steps: StepRecord[] };
    const by = (rev: string) => state.steps.find((s) => s.rev === rev)!;
    expect(by(base)).toMatchObject({ role: 'good', verdict: 'pass' });
    expect(by(top)).toMatchObject({ role: 'bad', verdict: 'fail' });
    expect(by(top).reason).toMatch(/XDP_DROP drops every packet/);
    expect(by(broke)).toMatchObject({ verdict: 'fail' });
    for (const s of state.steps) say(`${s.role} ${s.rev.slice(0, 12)} ${s.subject}: ${s.verdict}; build ${((s.buildMs ?? 0) / 1000).toFixed(0)} s, tests ${((s.testMs ?? 0) / 1000).toFixed(0)} s`);
    // Every step after the first built in the directory the first one left: none compiled the tree from scratch.
    const logs = await Promise.all(state.steps.slice(1).map((s) => readFile(join(work, 'builds', `bisect-${s.rev.slice(0, 12)}`, 'build.log'), 'utf8').catch(() => '')));
    for (const [i, log] of logs.entries()) {
      if (!log) continue; // a cache hit: no build at all
      const compiled = (log.match(/^ {2}CC +/gm) ?? []).length;
      say(`step ${i + 2}: ${compiled} files compiled`);
      expect(compiled, `step ${i + 2} compiled only what changed`).toBeLessThan(100);
    }
    const md = await readFile(join(work, 'bisect.md'), 'utf8');
    expect(md).toContain(broke);
  }, 4 * 3600_000);
});
