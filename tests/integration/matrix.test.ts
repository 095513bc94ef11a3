// The kernel matrix end to end: one run per kernel, a column per kernel in the report, and a
// kernel that cannot boot fails its own column while the others go on.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { cli } from '../helpers/cli.js';
import { groupMembers } from '../helpers/processes.js';
import { hostMs } from '../helpers/timeouts.js';

test('a matrix of two kernels and a broken one reports each column on its own', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'matrix-'));
  const broken = join(dir, 'not-a-bzImage');
  await writeFile(broken, Buffer.alloc(4096, 7));
  const results = join(dir, 'results');
  const run = cli(['suite', 'cgroup_sock', '--kernel', `6.1,5.10,${broken}`], { env: { BPF_HARNESS_RESULTS: results, FORCE_COLOR: '0' }, detached: true });
  const r = await run;
  expect(r.exitCode, r.all).toBe(1);
  // The run ended its guests before it ended: the idle ones its workers held for a next file too,
  // when vitest ended the workers (a QEMU left to die after its worker was a zombie of init's).
  expect(groupMembers(run.pid!), 'processes the run left in its process group').toEqual([]);
  const report = /^report: (\S+)$/m.exec(r.all ?? '')?.[1];
  expect(report, r.all).toBeDefined();
  const md = await readFile(report!, 'utf8');
  const row = md.split('\n').find((l) => l.startsWith('| cgroup_sock |'));
  expect(row).toMatch(/^\| cgroup_sock \| pass \d+ \| pass \d+ \| FAIL 0\/0 \(setup\) \|$/);
  expect(md).toMatch(/the run on kernel .*not-a-bzImage ended before any test/);
  const junit = await readFile(report!.replace(/report\.md$/, 'junit.xml'), 'utf8');
  expect(junit).toContain('<testsuite name="cgroup_sock on 6.1"');
  expect(junit).toContain('<testsuite name="cgroup_sock on 5.10"');
  expect(r.all).toMatch(/not an x86 bzImage/);
}, hostMs(600_000));

test('a matrix spends the guest budget on kernels at once first, and shares what is left among them', async () => {
  const { matrixPlan } = await import('../../harness/cli/suite.js');
  expect(matrixPlan(2, 4), '2 cores, the 4 packaged kernels').toEqual({ atOnce: 2, guestsEach: 1 });
  expect(matrixPlan(16, 4), '16 cores').toEqual({ atOnce: 4, guestsEach: 4 });
  expect(matrixPlan(5, 2), 'a budget that does not divide').toEqual({ atOnce: 2, guestsEach: 2 });
  expect(matrixPlan(1, 3), 'one guest').toEqual({ atOnce: 1, guestsEach: 1 });
});
