// `bpf-harness run -- PROGRAM`: a project's own test programs in guests. C programs from
// tests/fixtures/programs/ (static and dynamically linked, loading BPF with the raw syscall and
// with libbpf), each passing and failing on purpose; TAP lines as JUnit cases; two kernels; and a
// kernel fault during the program failing the run, naming it.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, execaSync } from 'execa';
import { beforeAll, expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { system } from '../../harness/base/config.js';
import { getKernel } from '../../harness/kernels/catalog.js';
import { CLI, cli } from '../helpers/cli.js';
import { hostMs } from '../helpers/timeouts.js';
import { buildWarnModule } from '../helpers/warn-module.js';

const FIXTURES = join(REPO_ROOT, 'tests/fixtures/programs');
let dir: string;
let staticProg: string;
let dynamicProg: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'run-programs-'));
  staticProg = join(dir, 'raw_load');
  dynamicProg = join(dir, 'libbpf_load');
  await execa('gcc', ['-static', '-O2', '-o', staticProg, join(FIXTURES, 'raw_load.c')]);
  await execa('gcc', ['-O2', '-o', dynamicProg, join(FIXTURES, 'libbpf_load.c'), '-lbpf']);
});

/** `run` with these arguments, results in a folder of their own; the report's paths and texts. */
async function run(...args: string[]) {
  return runWith({}, ...args);
}

async function runWith(env: Record<string, string>, ...args: string[]) {
  const results = await mkdtemp(join(dir, 'results-'));
  // In the programs' folder: the checkout, which other tests write into, is not what these test.
  const r = await cli(['run', ...args], { cwd: dir, env: { BPF_HARNESS_RESULTS: results, FORCE_COLOR: '0', ...env } });
  const out = r.all ?? '';
  const report = /^report: (\S+)$/m.exec(out)?.[1];
  expect(report, out).toBeDefined();
  return { code: r.exitCode, out, md: await readFile(report!, 'utf8'), junit: await readFile(report!.replace(/report\.md$/, 'junit.xml'), 'utf8') };
}

test('a static program that loads BPF with the raw syscall: its output streamed, its TAP lines cases of JUnit, its exit code the verdict, on two kernels when it fails', async () => {
  const ok = await run('--kernel', '6.1', '--', staticProg);
  expect(ok.code, ok.out).toBe(0);
  expect(ok.out).toMatch(/^ok 1 - BPF_PROG_LOAD of a socket filter gives a program fd$/m);
  expect(ok.md).toContain('| raw_load | pass 2 |');
  expect(ok.junit).toMatch(/<testcase [^>]*name="BPF_PROG_LOAD of a socket filter gives a program fd"/);
  expect(ok.junit).toMatch(/<testcase [^>]*name="the second test passes"/);

  // Failing on purpose, on two kernels (at once): each column fails on its own.
  const bad = await runWith({ BPF_HARNESS_PARALLEL: '2' }, '--kernel', '6.1,5.10', '--', staticProg, 'fail');
  expect(bad.code, bad.out).toBe(1);
  expect(bad.md).toContain('| raw_load | FAIL 1/2 | FAIL 1/2 |');
  expect(bad.junit).toMatch(/<testcase [^>]*name="the second test fails on purpose"[^>]*><failure message="not ok 2 the second test fails on purpose"/);
}, hostMs(300_000));

test('a dynamically linked program (libbpf) gets its libraries in the guest, on two kernels at once, a column each; --shard runs a share of them, where it fails on purpose', async () => {
  // Room for two guests: both kernels at once.
  const both = await runWith({ BPF_HARNESS_PARALLEL: '2' }, '--kernel', '6.1,5.10', '--', dynamicProg);
  expect(both.code, both.out).toBe(0);
  expect(both.out).toMatch(/run: libbpf_load on kernels 6\.1, 5\.10, 2 at a time; results in /);
  expect(both.out).toMatch(/^\[6\.1\] bpf_prog_load: \d+$/m);
  expect(both.out).toMatch(/^\[5\.10\] bpf_prog_load: \d+$/m);
  expect(both.md).toContain('| program type | 6.1 | 5.10 |');
  expect(both.md).toContain('| libbpf_load | pass 1 | pass 1 |');
  // Failing on purpose (a program the verifier refuses), in the second of two CI shards: the
  // second kernel only, as its own column.
  const second = await run('--kernel', '6.1,5.10', '--shard', '2/2', '--', dynamicProg, 'invalid');
  expect(second.code, second.out).toBe(1);
  expect(second.out).toMatch(/^bpf_prog_load: -13$/m);
  expect(second.md).toContain('| program type | 5.10 |');
  expect(second.md).toContain('| libbpf_load | FAIL 1/1 |');
  const bad = await cli(['run', '--kernel', '6.1', '--shard', '3/2', '--', dynamicProg]);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toMatch(/--shard must be i\/n with 1 <= i <= n, not "3\/2"/);
  // A failing one: a missing --copy path is refused before anything runs in the guest.
  const missing = await cli(['run', '--kernel', '6.1', '--copy', join(dir, 'nothing-here'), '--', dynamicProg]);
  expect(missing.exitCode).toBe(1);
  expect(missing.stderr).toMatch(/--copy \S+nothing-here: no such file or directory/);
}, hostMs(600_000));

test('a kernel fault while the program runs fails the run, with the kernel\'s lines, though the program exited 0', async (ctx) => {
  const { getKernel } = await import('../../harness/kernels/catalog.js');
  const release = (await getKernel()).release;
  if (!existsSync(`/usr/src/linux-headers-${release}`)) ctx.skip(`needs /usr/src/linux-headers-${release} (Debian's linux-headers package; scripts/setup.sh installs it) to build the module`);
  const module = join(await buildWarnModule(release), 'bh_warn.ko');
  const script = join(dir, 'insmod-warn.sh');
  await writeFile(script, `#!/bin/sh\ninsmod ${module} && echo loaded\n`);
  await chmod(script, 0o755);
  const r = await run('--kernel', '6.1', '--copy', module, '--', script);
  expect(r.code, r.out).toBe(1);
  expect(r.out).toMatch(/^loaded$/m);
  expect(r.md).toContain('| insmod-warn.sh | FAIL 1/1 |');
  expect(r.md).toContain('the kernel faulted while the program ran: warning: ');
  expect(r.junit).toMatch(/kernel warning: .*WARNING: CPU: \d+ PID: \d+ at .*bh_warn\.c:\d+/);
}, hostMs(600_000));

/** A toolchain the test drives, or the reason it cannot run (a failure in CI, where setup.sh installs it). */
function needTool(ctx: { skip(note: string): void }, tool: string, pkg: string): void {
  if (execaSync('sh', ['-c', `command -v ${tool}`], { reject: false }).exitCode === 0) return;
  const why = `needs ${tool} on the host (apt-get install ${pkg}; scripts/setup.sh installs it)`;
  if (system.ci()) expect.fail(`${why}, and CI must run this test`);
  ctx.skip(why);
}

/** The command a test runner is told to run each test binary with: this checkout's CLI. */
const runner = `${process.execPath} ${CLI} run --kernel 6.1 --`;

test('go test -exec runs a Go package\'s test binary in the guest as root, with its testdata; its verdict is the test\'s', async (ctx) => {
  needTool(ctx, 'go', 'golang-go');
  const pkg = join(FIXTURES, 'go');
  const release = (await getKernel()).release;
  const go = (...args: string[]) =>
    execa('go', ['test', '-count=1', '-v', '-exec', runner, ...args, '.'], { cwd: pkg, reject: false, all: true, env: { CGO_ENABLED: '0', BPF_HARNESS_RESULTS: dir, FORCE_COLOR: '0' } });
  const ok = await go('-run', 'TestMapCreate|TestKernelRelease|TestTestdata');
  expect(ok.exitCode, ok.all).toBe(0);
  for (const t of ['TestMapCreate', 'TestKernelRelease', 'TestTestdata']) expect(ok.all).toContain(`--- PASS: ${t}`);
  expect(ok.all).toContain(`kernel release ${release}`);
  expect(ok.all).toMatch(/^bpfprobe\.test +pass 1 *$/m);
  const bad = await go('-run', 'TestFailsOnPurpose');
  expect(bad.exitCode, bad.all).toBe(1);
  expect(bad.all).toContain('--- FAIL: TestFailsOnPurpose');
  expect(bad.all).toMatch(/^bpfprobe\.test +FAIL 1\/1 *$/m);
}, hostMs(600_000));

test('a cargo runner runs a Rust crate\'s test binary in the guest as root, with its testdata but not target/; its verdict is the test\'s', async (ctx) => {
  needTool(ctx, 'cargo', 'cargo');
  const crate = join(FIXTURES, 'rust');
  const release = (await getKernel()).release;
  const target = await mkdtemp(join(tmpdir(), 'run-cargo-target-'));
  const cargo = (...args: string[]) =>
    execa('cargo', ['test', '--offline', '--test', 'kernel', '--', '--nocapture', ...args], {
      cwd: crate,
      reject: false,
      all: true,
      env: { CARGO_TARGET_DIR: target, CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER: runner, BPF_HARNESS_RESULTS: dir, FORCE_COLOR: '0' },
    });
  const ok = await cargo();
  expect(ok.exitCode, ok.all).toBe(0);
  expect(ok.all).toMatch(/^test bpf_map_create \.\.\. ok$/m);
  expect(ok.all).toMatch(/^test testdata_comes_along \.\.\. ok$/m);
  expect(ok.all).toContain(`kernel release ${release}`);
  expect(ok.all).toMatch(/^kernel-[0-9a-f]+ +pass 1 *$/m);
  const bad = await cargo('--ignored', 'fails_on_purpose');
  expect(bad.exitCode, bad.all).not.toBe(0);
  expect(bad.all).toMatch(/^test fails_on_purpose \.\.\. FAILED$/m);
  expect(bad.all).toMatch(/^kernel-[0-9a-f]+ +FAIL 1\/1 *$/m);
}, hostMs(600_000));

test('--keep-on-fail keeps the guest of the first kernel where the program failed, as it left it; --stop ends it', async () => {
  const { listKept } = await import('../../harness/guest/kept.js');
  const { alive } = await import('../helpers/processes.js');
  const { SshSession } = await import('../../harness/guest/ssh.js');
  const script = join(dir, 'leave-and-fail.sh');
  await writeFile(script, '#!/bin/sh\necho left-by-the-program > /tmp/left\nexit 3\n');
  await chmod(script, 0o755);
  const r = await run('--kernel', '6.1', '--keep-on-fail', '--', script);
  expect(r.code, r.out).toBe(1);
  const id = /kept the guest of "[^"]*leave-and-fail\.sh" as the program left it \(kernel [^)]+\): id (\S+)/.exec(r.out)?.[1];
  expect(id, r.out).toBeTruthy();
  expect(r.out).toContain(`npm run shell -- --attach ${id}`);
  const [k] = listKept().filter((x) => x.id === id);
  expect(alive(k.keeperPid!) && alive(k.qemuPid!), 'the run is over and the guest is up').toBe(true);
  const ssh = await SshSession.connect({ port: k.sshPort, privateKey: await readFile(k.keyPath, 'utf8'), hostKey: k.hostKey });
  try {
    expect((await ssh.exec('cat /tmp/left')).trim()).toBe('left-by-the-program');
  } finally {
    ssh.close();
  }
  const stop = await cli(['shell', '--stop', id!]);
  expect(stop.exitCode, stop.all).toBe(0);
  expect(alive(k.qemuPid!)).toBe(false);
  // A program that passes keeps nothing.
  const before = listKept().length;
  const ok = await run('--kernel', '6.1', '--keep-on-fail', '--', staticProg);
  expect(ok.code, ok.out).toBe(0);
  expect(ok.out).not.toMatch(/kept the guest/);
  expect(listKept().length).toBe(before);
}, hostMs(600_000));
