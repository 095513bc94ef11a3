// A BPF project outside this checkout uses the harness as a dependency: it installs the package's
// tarball (npm pack), imports it from plain Node, keeps its suites in a folder of its own, imports
// the testing API from the package, and runs `npx bpf-harness suite --dir ./bpf-tests NAME` on the
// first suite that `npx bpf-harness init` wrote, and a program of its own with `npx bpf-harness run`.
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { hostMs } from '../helpers/timeouts.js';

test('a scratch project runs its own suite with the harness as a dependency', async () => {
  // A space in the path: file URLs of suite files must be turned into paths properly.
  const project = await mkdtemp(join(tmpdir(), 'bpf project-'));
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'my-bpf-project', private: true, type: 'module' }, null, 2));

  // The package as the registry would serve it: the tarball npm pack makes (its prepare step
  // brings the build up to date), installed into the project.
  const pack = await execa('npm', ['pack', '--json', '--pack-destination', project], { cwd: REPO_ROOT, reject: false });
  expect(pack.exitCode, pack.stderr).toBe(0);
  const tarball = join(project, (JSON.parse(pack.stdout) as { filename: string }[])[0].filename);
  // --prefer-offline: the dependencies come from npm's cache when it has their versions (the
  // checkout's own install put them there), without asking the registry about each again: what
  // this tests is the package, not the registry (24 s -> 15 s here).
  const install = await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--save-dev', tarball], { cwd: project, reject: false, all: true });
  expect(install.exitCode, install.all).toBe(0);

  // Plain Node imports it: JavaScript with its types beside it, no TypeScript loader.
  const imported = await execa(process.execPath, ['--input-type=module', '-e', "const h = await import('bpf-harness'); console.log(typeof h.useGuest, typeof h.Vm, typeof h.readU64s)"], { cwd: project, reject: false, all: true });
  expect(imported.all).toBe('function function function');
  const pkg = join(project, 'node_modules', 'bpf-harness');
  expect(existsSync(join(pkg, 'dist', 'index.d.ts')), 'the type declarations').toBe(true);
  expect(existsSync(join(pkg, 'node_modules', 'tsx')) || existsSync(join(project, 'node_modules', 'tsx')), 'tsx is not installed with it').toBe(false);

  // init writes the first suite, says how to run it, and does not write over it again.
  const init = await execa('npx', ['bpf-harness', 'init'], { cwd: project, reject: false, all: true });
  expect(init.exitCode, init.all).toBe(0);
  expect(init.all).toContain('bpf-harness: wrote bpf-tests/udp_counter/udp_counter.bpf.c and bpf-tests/udp_counter/udp_counter.test.ts');
  expect(init.all).toContain('run it:  npx bpf-harness suite --dir ./bpf-tests udp_counter');
  const again = await execa('npx', ['bpf-harness', 'init'], { cwd: project, reject: false, all: true });
  expect(again.exitCode).toBe(1);
  expect(again.all).toMatch(/init: .*bpf-tests\/udp_counter exists already; not overwriting it/);

  const run = await execa('npx', ['bpf-harness', 'suite', '--dir', './bpf-tests', 'udp_counter'], {
    cwd: project,
    reject: false,
    all: true,
    env: { FORCE_COLOR: '0' },
  });
  const out = (run.all ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  expect(run.exitCode, out).toBe(0);
  expect(out).toMatch(/✓ .*my XDP program drops and counts every UDP datagram/);
  expect(out).toMatch(/^summary: 1 passed, 0 failed, 0 skipped$/m);
  // The report is the project's, in its own results folder.
  expect(out).toMatch(new RegExp(`report: ${project}/results/run-[^/]+/report\\.md`));

  // A program of the project's own, through the installed package's `run`.
  await writeFile(join(project, 'check.sh'), '#!/bin/sh\necho "release $(cat /proc/sys/kernel/osrelease)"\n', { mode: 0o755 });
  const prog = await execa('npx', ['bpf-harness', 'run', '--kernel', '6.1', '--', './check.sh'], { cwd: project, reject: false, all: true, env: { FORCE_COLOR: '0' } });
  const { getKernel } = await import('../../harness/kernels/catalog.js');
  expect(prog.exitCode, prog.all).toBe(0);
  expect(prog.all).toContain(`release ${(await getKernel()).release}`);
  expect(prog.all).toMatch(/^check\.sh +pass 1 *$/m);
  expect(prog.all).toMatch(new RegExp(`report: ${project}/results/run-[^/]+/report\\.md`));
}, hostMs(900_000));
