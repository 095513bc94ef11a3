import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../harness/kernels.js';
import { MissingToolError, which } from '../harness/tools.js';

const cli = (...args: string[]) => execa(join(REPO_ROOT, 'node_modules/.bin/tsx'), [join(REPO_ROOT, 'harness/cli.ts'), ...args], { reject: false, cwd: REPO_ROOT });

test('an unknown kernel name lists the known ones, before anything boots', async () => {
  const r = await cli('suite', 'xdp', '--kernel', '2.6');
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(/unknown kernel "2\.6": known kernels are 6\.1, 5\.10/);
});

test('an unknown suite lists the known ones', async () => {
  const r = await cli('suite', 'nosuch');
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(/unknown suite "nosuch": known suites are .*xdp/);
});

test('kernels list shows the catalog with the default marked', async () => {
  const r = await cli('kernels', 'list');
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toMatch(/^\* 6\.1 +Debian bookworm: linux-image-cloud-amd64/m);
  expect(r.stdout).toMatch(/^ {2}5\.10 +Debian bullseye/m);
});

test('a missing tool is one line that says what to install', () => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    expect(() => which('qemu-system-x86_64')).toThrow(MissingToolError);
    expect(() => which('qemu-system-x86_64')).toThrow('qemu-system-x86_64 not found: install it with `apt-get install qemu-system-x86` (or run scripts/setup.sh)');
    expect(() => which('clang')).toThrow(/apt-get install clang/);
  } finally {
    process.env.PATH = path;
  }
});

test('bad input is refused with a message, before vitest or a guest starts', async () => {
  const empty = await cli('suite', 'xdp', '--kernel', '');
  expect(empty.exitCode).toBe(1);
  expect(empty.stderr).toMatch(/--kernel needs a kernel/);

  const jobs = await cli('kernels', 'build', '5.10-src', '--jobs', 'many');
  expect(jobs.exitCode).toBe(1);
  expect(jobs.stderr).toMatch(/--jobs must be a whole number of at least 1, not "many"/);

  const parallel = await execa(join(REPO_ROOT, 'node_modules/.bin/tsx'), [join(REPO_ROOT, 'harness/cli.ts'), 'suite', 'xdp', '--kernel', '6.1,5.10'], {
    reject: false,
    cwd: REPO_ROOT,
    env: { BPF_HARNESS_PARALLEL: 'abc' },
  });
  expect(parallel.exitCode).toBe(1);
  expect(parallel.stderr).toMatch(/BPF_HARNESS_PARALLEL must be a whole number of at least 1, not "abc"/);

  // Not a kernel: it fails with the file named, and vitest never starts.
  const notKernel = await cli('suite', 'xdp', '--kernel', '/bin/ls');
  expect(notKernel.exitCode).toBe(1);
  expect(notKernel.stderr).toMatch(/kernel \/bin\/ls: \/bin\/ls is not an x86 bzImage/);
  expect(notKernel.stdout + notKernel.stderr).not.toMatch(/No test files found/);

  const unwritable = await execa(join(REPO_ROOT, 'node_modules/.bin/tsx'), [join(REPO_ROOT, 'harness/cli.ts'), 'suite', 'xdp'], {
    reject: false,
    cwd: REPO_ROOT,
    // Under a file: no directory can be made there (root may write anywhere else).
    env: { BPF_HARNESS_RESULTS: '/etc/hostname/results' },
  });
  expect(unwritable.exitCode).toBe(1);
  expect(unwritable.stderr).toMatch(/the results directory \/etc\/hostname\/results cannot be written \(ENOTDIR\)/);
}, 120_000);
