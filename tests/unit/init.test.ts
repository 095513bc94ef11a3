// `bpf-harness init`'s first suite (harness/suite/first-suite.ts): the first suite of a project, where `suite --dir` finds it.
import { readFile, readdir } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { initSuite, INIT_SUITE } from '../../harness/suite/first-suite.js';

test('init writes one BPF source and one test that imports the package, into DIR/udp_counter, and never over a suite', async () => {
  const project = await mkdtemp(join(tmpdir(), 'init-'));
  const files = await initSuite('bpf-tests', project);
  expect(files).toEqual([join(project, 'bpf-tests', INIT_SUITE, 'udp_counter.bpf.c'), join(project, 'bpf-tests', INIT_SUITE, 'udp_counter.test.ts')]);
  expect(await readdir(join(project, 'bpf-tests', INIT_SUITE))).toEqual(['udp_counter.bpf.c', 'udp_counter.test.ts']);
  const [bpf, test_] = await Promise.all(files.map((f) => readFile(f, 'utf8')));
  expect(bpf).toMatch(/SEC\("xdp"\)\nint drop_udp\(struct xdp_md \*ctx\)/);
  expect(test_).toContain("from 'bpf-harness'");
  expect(test_).toContain("sources: ['udp_counter.bpf.c']");
  await expect(initSuite('bpf-tests', project)).rejects.toThrow(/udp_counter exists already; not overwriting it \(name another folder with --dir\)/);
  expect(await readFile(files[0], 'utf8')).toBe(bpf);
});
