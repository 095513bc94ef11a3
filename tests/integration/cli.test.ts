import { execa } from 'execa';
import { expect, test, vi } from 'vitest';
import { parseCommandLine } from '../../harness/cli/options.js';
import { system } from '../../harness/base/config.js';
import { REPO_ROOT } from '../../harness/kernels/catalog.js';
import { MissingToolError, which } from '../../harness/base/tools.js';
import { Vm } from '../../harness/guest/vm.js';
import { CLI, cli as run } from '../helpers/cli.js';
import { defaultKernel } from '../helpers/kernel.js';
import { hostMs } from '../helpers/timeouts.js';

const cli = (...args: string[]) => run(args);

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
  const path = system.path();
  system.setPath('/nonexistent');
  try {
    expect(() => which('qemu-system-x86_64')).toThrow(MissingToolError);
    expect(() => which('qemu-system-x86_64')).toThrow('qemu-system-x86_64 not found: install it with `apt-get install qemu-system-x86` (or run scripts/setup.sh)');
    expect(() => which('clang')).toThrow(/apt-get install clang/);
  } finally {
    system.setPath(path);
  }
});

test('bad input is refused with a message, before vitest or a guest starts', async () => {
  const empty = await cli('suite', 'xdp', '--kernel', '');
  expect(empty.exitCode).toBe(1);
  expect(empty.stderr).toMatch(/--kernel needs a kernel/);

  const jobs = await cli('kernels', 'build', '5.10-src', '--jobs', 'many');
  expect(jobs.exitCode).toBe(1);
  expect(jobs.stderr).toMatch(/--jobs must be a whole number of at least 1, not "many"/);

  const parallel = await run(['suite', 'xdp', '--kernel', '6.1,5.10'], { env: { BPF_HARNESS_PARALLEL: 'abc' } });
  expect(parallel.exitCode).toBe(1);
  expect(parallel.stderr).toMatch(/BPF_HARNESS_PARALLEL must be a whole number of at least 1, not "abc"/);

  // Not a kernel: it fails with the file named, and vitest never starts.
  const notKernel = await cli('suite', 'xdp', '--kernel', '/bin/ls');
  expect(notKernel.exitCode).toBe(1);
  expect(notKernel.stderr).toMatch(/kernel \/bin\/ls: \/bin\/ls is not an x86 bzImage/);
  expect(notKernel.stdout + notKernel.stderr).not.toMatch(/No test files found/);

  // Under a file: no directory can be made there (root may write anywhere else).
  const unwritable = await run(['suite', 'xdp'], { env: { BPF_HARNESS_RESULTS: '/etc/hostname/results' } });
  expect(unwritable.exitCode).toBe(1);
  expect(unwritable.stderr).toMatch(/the results directory \/etc\/hostname\/results cannot be written \(ENOTDIR\)/);
}, hostMs(120_000));

test.each([
  [['suite', 'xdp', '--dry-run'], 'suite does not take --dry-run'],
  [['suite', 'xdp', '--jobs', '3'], 'suite does not take --jobs'],
  [['kernels', 'list', '--suite', 'x'], 'kernels list does not take --suite'],
  [['kernels', 'build', '5.10-src', '--kernels', 'all'], 'kernels build does not take --kernels'],
  [['report', 'dir', '--kernel', '6.1'], 'report does not take --kernel'],
  [['boot', '--keep-on-fail'], 'boot does not take --keep-on-fail'],
  [['image', '--suite', 'xdp'], 'image does not take --suite'],
  [['shell', '--bogus'], 'shell does not take --bogus'],
])('%j: an option of another subcommand is refused, naming both', (argv, message) => {
  expect(() => parseCommandLine(argv)).toThrow(message);
});

test('a subcommand\'s own options are taken; a refused one stops the CLI with its usage line, before anything runs', async () => {
  expect(parseCommandLine(['kernels', 'build', '5.10-src', '--jobs', '3', '--config-only'])).toMatchObject({ command: 'kernels build', args: ['5.10-src'], values: { jobs: '3', 'config-only': true } });
  expect(parseCommandLine(['suite', 'xdp', 'tc', '-k', '5.10', '--keep-on-fail'])).toMatchObject({ command: 'suite', args: ['xdp', 'tc'], values: { kernel: '5.10', 'keep-on-fail': true } });
  expect(parseCommandLine(['kernels'])).toMatchObject({ command: 'kernels list' });
  const r = await cli('suite', 'xdp', '--dry-run');
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toMatch(/^bpf-harness: suite does not take --dry-run\nusage:\n {2}npm run suite <type\.\.\.\|all>/);
  expect(r.stdout).toBe('');
});

test('importing cli/main.ts runs nothing (no usage, no exit): main() runs only when it is the program', async () => {
  // Its build, under plain Node.
  const r = await execa(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(CLI)}); console.log('imported')`], { reject: false, cwd: REPO_ROOT, all: true });
  expect(r.all).toBe('imported');
  expect(r.exitCode).toBe(0);
  // In this process too: nothing is printed and nothing exits.
  const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
  const log = vi.spyOn(console, 'log');
  try {
    const mod = await import('../../harness/cli/main.js');
    expect(typeof mod.main).toBe('function');
    await new Promise((r) => setTimeout(r, 200));
    expect(exit).not.toHaveBeenCalled();
    expect(log).not.toHaveBeenCalled();
  } finally {
    exit.mockRestore();
    log.mockRestore();
  }
});

test('boot --dry-run prints the command line Vm.start runs: the same wrapper, memory, CPUs, network and kernel command line', async () => {
  const dry = await cli('boot', '--dry-run');
  expect(dry.exitCode, dry.stderr).toBe(0);
  const printed = dry.stdout.trim();
  expect(dry.stderr).toMatch(/the SSH port \((\d+), free now\), the bpf_harness\.seed= entropy seed and the QMP socket are chosen afresh by every start/);
  // What a real start runs: Vm.start's own first 'booting' event (a restore when the kernel has a
  // snapshot, as the dry run then says), from a start cut short at once.
  let ran: string | undefined;
  await expect(Vm.start({ kernel: await defaultKernel(), label: 'dry-run-check', bootTimeoutMs: 1, keepable: false, onEvent: (e) => e.type === 'booting' && (ran ??= e.command) })).rejects.toThrow();
  expect(ran).toBeDefined();
  // The port, the seed and the per-start files are chosen by each start; everything else is the same, character for character.
  const fixed = (line: string) =>
    line
      .replace(/hostfwd=tcp:127\.0\.0\.1:\d+-:22/, 'hostfwd=tcp:127.0.0.1:PORT-:22')
      .replace(/bpf_harness\.seed=[0-9a-f]{128}/, 'bpf_harness.seed=SEED')
      .replace(/bpf-harness-qmp-\d+-\d+\.sock/, 'QMP')
      .replace(/bpf-harness-ram-\d+-\d+/, 'RAM');
  expect(fixed(printed)).toBe(fixed(ran!));
  expect(printed).toMatch(/^\S*setpriv --pdeathsig SIGKILL -- \S*qemu-system-x86_64 /);
  expect(printed).toContain(' -m 1024 -smp 2 ');
  expect(printed).toMatch(/ -netdev user,id=net0,restrict=on,hostfwd=tcp:127\.0\.0\.1:\d+-:22 /);
}, hostMs(120_000));
