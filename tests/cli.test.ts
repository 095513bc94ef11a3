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
