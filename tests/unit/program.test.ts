// What of the working directory `run` copies into the guest (harness/guest/program.ts), the kernels of a shard (harness/kernels/shard.ts), and the pool the kernels of a matrix run in (harness/base/at-once.ts).
import { mkdir, mkdtemp, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { CWD_MAX_BYTES, cwdFiles } from '../../harness/guest/program.js';

test('the working directory comes along without .git, node_modules and target, at any depth', async () => {
  const d = await mkdtemp(join(tmpdir(), 'cwd-files-'));
  for (const f of ['go.mod', 'testdata/hello.txt', 'sub/pkg/x_test.go', '.git/HEAD', 'node_modules/a/index.js', 'target/debug/big', 'sub/target/y', 'sub/.hidden']) {
    await mkdir(join(d, f, '..'), { recursive: true });
    await writeFile(join(d, f), 'x');
  }
  await symlink('go.mod', join(d, 'link'));
  expect(await cwdFiles(d)).toEqual(['go.mod', 'link', 'sub/.hidden', 'sub/pkg/x_test.go', 'testdata/hello.txt']);
  // The harness's own results folder, where it lies inside, is left out too.
  expect(await cwdFiles(d, [join(d, 'sub', 'pkg')])).toEqual(['go.mod', 'link', 'sub/.hidden', 'testdata/hello.txt']);
});

test('a working directory too large to copy is refused, naming the way out', async () => {
  const d = await mkdtemp(join(tmpdir(), 'cwd-big-'));
  await writeFile(join(d, 'a'), '');
  await truncate(join(d, 'a'), CWD_MAX_BYTES + 1); // sparse: no disk used
  await expect(cwdFiles(d)).rejects.toThrow(/holds more than 256 MiB to copy into the guest \(\.git, node_modules, target left out\): run from a smaller directory, or name one with --cwd/);
});

test('a shard of run\'s kernels is every n-th from the i-th; a bad shard is none', async () => {
  const { parseShard, shardOf } = await import('../../harness/kernels/shard.js');
  const ks = ['6.1', '5.10', '6.12', 'sid', '4.19'];
  expect(shardOf(ks, parseShard('1/2')!)).toEqual(['6.1', '6.12', '4.19']);
  expect(shardOf(ks, parseShard('2/2')!)).toEqual(['5.10', 'sid']);
  expect(shardOf(ks, parseShard('1/1')!)).toEqual(ks);
  expect(shardOf(['6.1'], parseShard('2/3')!)).toEqual([]);
  for (const bad of ['0/2', '3/2', '1/0', 'one/two', '1-2']) expect(parseShard(bad)).toBeNull();
});

test('eachAtOnce runs every item, never more than the limit at a time, taking them in order', async () => {
  const { eachAtOnce } = await import('../../harness/base/at-once.js');
  let running = 0;
  let most = 0;
  const started: number[] = [];
  await eachAtOnce([1, 2, 3, 4, 5], 2, async (n) => {
    started.push(n);
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 5 * (6 - n)));
    running--;
  });
  expect(started).toEqual([1, 2, 3, 4, 5]);
  expect(most).toBe(2);
  let one = 0;
  await eachAtOnce(['a'], 8, async () => void one++);
  expect(one).toBe(1);
});
