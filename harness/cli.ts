#!/usr/bin/env -S npx tsx
// The command line: a thin layer over the library. `npm run suite xdp -- --kernel 5.10`.
import { accessSync, constants, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { writeReports } from './report.js';
import { kernelRunPath, writeKernelRun } from './run-record.js';
import { buildImage } from './image.js';
import { resolveDebian } from './apt.js';
import { getKernel, loadCatalog, lookupKernel, REPO_ROOT } from './kernels.js';
import { readLock, writePin } from './lock.js';
import { chooseAccel, formatCommand, qemuArgs } from './qemu.js';
import { which } from './tools.js';
import { resultsRoot, timestamp } from './paths.js';
import { buildKernel } from './build.js';
import { compileAll, GUEST_OBJECT_DIR } from './compile.js';
import { findKept, listKept, stopKept } from './kept.js';
import { watchAncestors } from './lifeline.js';
import { interactiveShell, sshAccess } from './shell.js';
import { Agent } from './agent.js';
import { SshSession } from './ssh.js';
import { guestBudget, positiveInt, suiteFileOptions } from './suites-config.js';
import { VethPair } from './topology.js';
import { Vm } from './vm.js';

const SUITES_DIR = join(REPO_ROOT, 'suites');

const USAGE = `usage:
  npm run suite <type...|all> [-- --kernel NAME|PATH] [--modules DIR]   run suites in guests
  npm run suite <type...|all> -- --kernel 5.10,6.1 | --kernels all     the kernel matrix, with a report
      [--shard i/n]                                                    run one CI shard of the tests
      [-t|--test PATTERN]                                              only the tests whose name matches
      [--dir DIR]                                                      suites from your own folder (one subfolder each)
  npm run kernels -- list                                              the kernel catalog
  npm run kernels -- fetch NAME                                        download and cache a kernel
  npm run kernels -- lock [NAME...]                                    pin Debian kernels to the newest packages
  npm run kernels -- build NAME|PATH|URL [--sha256 HEX] [--source FILE] [--jobs N] [--config-only]
                                                                       build a kernel from source (cached)
  npm run image -- [--kernel NAME]                                     build the guest image
  npx tsx harness/cli.ts report DIR... [--out DIR]                     merge runs (CI shards) into one report
      [--keep-on-fail]                                                 keep the guest of the first failing test up
  npm run shell -- [--kernel NAME] [--suite TYPE]                      a shell in a guest (with the suite's objects
                                                                       and a veth pair); exit ends the guest
  npm run shell -- --attach ID | --stop ID | --list                    a shell in a kept guest; end it; list them
  npx tsx harness/cli.ts boot [--kernel NAME] [--dry-run]              boot a guest and keep it up (Ctrl-C ends it)

Environment: BPF_HARNESS_KERNEL (default kernel), BPF_HARNESS_ACCEL=kvm|tcg (skip the probe),
BPF_HARNESS_CACHE (cache directory), BPF_HARNESS_RESULTS (logs), BPF_HARNESS_DEBIAN_MIRROR,
BPF_HARNESS_BUILD_JOBS (make -j of source builds; default: all cores).`;

/** Suites: the folders of `dir` (this repository's suites/, or a project's own) with a test file. */
export function listSuites(dir = SUITES_DIR): string[] {
  if (!existsSync(dir)) throw new Error(`no suites folder at ${dir}`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && readdirSync(join(dir, e.name)).some((f) => f.endsWith('.test.ts')))
    .map((e) => e.name)
    .sort();
}

const say = (m: string) => console.log(`[harness] ${m}`);

/** How many guests may run at once: one per two cores, and 2 GiB of memory each. */
function kernelList(arg: string | undefined): string[] {
  const catalog = loadCatalog();
  if (arg === undefined) return [process.env.BPF_HARNESS_KERNEL || catalog.default];
  if (!arg.split(',').some((k) => k.trim())) throw new Error('--kernel needs a kernel: a catalog name (npm run kernels -- list), a bzImage, or kernel source');
  // "all": the packaged kernels; kernels built from source (tens of minutes each) are named one by one.
  const packaged = Object.entries(catalog.kernels).filter(([, s]) => s.source === 'debian' || s.source === 'local');
  return arg === 'all' ? packaged.map(([n]) => n) : arg.split(',').map((k) => k.trim()).filter(Boolean);
}

interface RunOptions {
  /** A project's own suites folder (--dir) instead of this repository's suites/. */
  dir?: string;
  modules?: string;
  /** vitest's --shard i/n. */
  shard?: string;
  /** Only tests whose name matches this pattern (vitest's -t). */
  test?: string;
}

async function runVitest(suites: string[], o: RunOptions): Promise<number> {
  const { startVitest } = await import('vitest/node');
  const filter = { run: true, shard: o.shard, testNamePattern: o.test };
  const dir = o.dir;
  const vitest = dir
    ? // A project's own suites: the same settings as this repository's suites project, with the
      // harness's files named by absolute path, and the harness (TypeScript) transformed by vitest
      // when it sits in the project's node_modules.
      await startVitest('test', suites.map((n) => `${join(dir, n)}/`), {
        ...filter,
        config: false,
        root: dir,
        include: ['**/*.test.ts'],
        ...suiteFileOptions(),
        reporters: ['verbose', join(REPO_ROOT, 'harness/reporter.ts')],
        server: { deps: { inline: [/bpf-harness/] } },
      })
    : await startVitest('test', suites.map((n) => `suites/${n}/`), { ...filter, project: 'suites', root: REPO_ROOT });
  await vitest?.close();
  return process.exitCode === undefined || process.exitCode === 0 ? 0 : Number(process.exitCode);
}

/** Runs one child per kernel (up to the guest budget at once), each line prefixed by its kernel. */
async function runMatrix(suites: string[], kernels: string[], o: RunOptions): Promise<number> {
  const dir = join(resultsRoot(), `run-${timestamp()}-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const budget = guestBudget();
  say(`matrix: ${suites.join(', ')} on kernels ${kernels.join(', ')}, ${budget} at a time; results in ${dir}`);
  const queue = [...kernels];
  const codes: number[] = [];
  const worker = async () => {
    for (let k = queue.shift(); k !== undefined; k = queue.shift()) {
      const t = Date.now();
      const args = ['--import', 'tsx', join(REPO_ROOT, 'harness/cli.ts'), 'suite', ...suites, '--kernel', k];
      if (o.modules) args.push('--modules', o.modules);
      if (o.shard) args.push('--shard', o.shard);
      if (o.test) args.push('--test', o.test);
      if (o.dir) args.push('--dir', o.dir);
      const child = execa(process.execPath, args, {
        cwd: REPO_ROOT,
        reject: false,
        all: true,
        buffer: false,
        env: { BPF_HARNESS_RUN_DIR: dir, BPF_HARNESS_PARALLEL: '1', FORCE_COLOR: '0' },
      });
      let partial = '';
      child.all!.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) console.log(`[${k}] ${l}`);
      });
      const r = await child;
      if (partial.trim()) console.log(`[${k}] ${partial}`);
      codes.push(r.exitCode ?? 1);
      say(`kernel ${k}: ${r.exitCode === 0 ? 'passed' : `FAILED (exit ${r.exitCode})`} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      if (!existsSync(kernelRunPath(dir, k))) {
        // The child died before its reporter ran (e.g. the kernel could not be fetched): record the column as failed.
        const error = `the run on kernel ${k} ended before any test (exit ${r.exitCode}); see its output above`;
        writeKernelRun(dir, { kernel: k, tests: [], suiteErrors: suites.map((suite) => ({ suite, error })), wallMs: Date.now() - t });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(budget, kernels.length) }, worker));
  const report = writeReports(dir, kernels);
  console.log(`\n${report.table}\n\nreport: ${report.markdown}\njunit:  ${report.junit}`);
  return report.failed || codes.some((c) => c !== 0) ? 1 : 0;
}

async function suite(names: string[], kernelArg: string | undefined, o: RunOptions): Promise<number> {
  const { modules } = o;
  if (o.dir) {
    o.dir = resolve(o.dir);
    // The reporter records the suites of this folder; logs and reports go where the user is.
    process.env.BPF_HARNESS_SUITES_DIR = o.dir;
    process.env.BPF_HARNESS_RESULTS ??= join(process.cwd(), 'results');
  }
  const known = listSuites(o.dir);
  if (!names.length) throw new Error(`name a suite: ${known.join(', ')} or all`);
  const chosen = names.includes('all') ? known : names;
  for (const n of chosen) if (!known.includes(n)) throw new Error(`unknown suite "${n}": known suites are ${known.join(', ')}`);
  const kernels = kernelList(kernelArg);
  for (const k of kernels) lookupKernel(k, loadCatalog(), modules); // fails early on an unknown name
  if (modules) process.env.BPF_HARNESS_MODULES = modules;
  checkResultsDir();
  if (kernels.length > 1) return runMatrix(chosen, kernels, o);
  process.env.BPF_HARNESS_KERNEL = kernels[0];
  // Resolved (fetched, built, checked) before vitest starts, so that a kernel that is not one
  // fails here with its own message; the run's global setup takes it from here.
  const kernel = await getKernel(kernels[0], { onProgress: say });
  process.env.BPF_HARNESS_KERNEL_RESOLVED = JSON.stringify(kernel);
  return runVitest(chosen, o);
}

/** The results directory must be writable before anything runs. */
function checkResultsDir(): void {
  const dir = resultsRoot();
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new Error(`the results directory ${dir} cannot be written (${(e as NodeJS.ErrnoException).code}); set BPF_HARNESS_RESULTS to another`);
  }
}

/** A guest with a shell on this terminal; with a suite, its objects are in and a veth pair is up. */
async function shell(kernelArg: string | undefined, suiteName: string | undefined): Promise<number> {
  if (suiteName && !listSuites().includes(suiteName)) throw new Error(`unknown suite "${suiteName}": known suites are ${listSuites().join(', ')}`);
  const k = await getKernel(kernelArg, { onProgress: say });
  const vm = await Vm.start({ kernel: k, label: `shell-${suiteName ?? 'guest'}`, onEvent: (e) => e.type === 'progress' && say(e.message) });
  // With a suite, the agent that made the veth pair stays until the shell ends: closing its
  // channel while dropbear set up the shell's pseudo-terminal made that request fail now and then.
  let agent: Agent | undefined;
  try {
    if (suiteName) {
      const dir = join(SUITES_DIR, suiteName);
      const staging = await mkdtemp(join(tmpdir(), 'bpf-harness-shell-'));
      try {
        const objs = await compileAll(readdirSync(dir).filter((f) => f.endsWith('.bpf.c')).map((f) => join(dir, f)), staging);
        await vm.ssh.put(staging, objs.map((o) => o.name), GUEST_OBJECT_DIR);
        say(`suite ${suiteName}: ${objs.map((o) => o.name).join(' ')} in ${GUEST_OBJECT_DIR}`);
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
      agent = await Agent.start(vm.ssh, join(vm.logDir, 'agent.log'), vm.timeouts.commandMs);
      const { a, b } = await VethPair.create(agent);
      say(`veth pair: ${a.ifname} ${a.ip} (netns ${a.netns}) <-> ${b.ifname} ${b.ip} (netns ${b.netns})`);
    }
    say(`guest up: kernel ${k.release} (${vm.accel}, ${(vm.bootMs / 1000).toFixed(1)} s), QEMU pid ${vm.pid}; console log ${vm.console.path}`);
    say(`from another terminal: ${(await sshAccess(vm.logDir, vm.sshPort, vm.image.clientKey, vm.image.hostKey)).command}`);
    say('exit (or Ctrl-D) ends the guest');
    return await interactiveShell(vm.ssh);
  } finally {
    agent?.close();
    await vm.stop();
  }
}

/** A shell in a guest kept by --keep-on-fail; leaving the shell leaves the guest up. */
async function attachKept(id: string): Promise<number> {
  const k = findKept(id);
  const ssh = await SshSession.connect({ port: k.sshPort, privateKey: await readFile(k.keyPath, 'utf8'), hostKey: k.hostKey });
  say(`kept guest ${k.id}: kernel ${k.kernel}, left by ${k.suite}: "${k.test}"; console ${k.console}`);
  say(`leaving the shell leaves the guest up; npm run shell -- --stop ${k.id} ends it`);
  try {
    return await interactiveShell(ssh);
  } finally {
    ssh.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      kernel: { type: 'string', short: 'k' },
      kernels: { type: 'string' },
      shard: { type: 'string' },
      test: { type: 'string', short: 't' },
      dir: { type: 'string' },
      out: { type: 'string' },
      modules: { type: 'string' },
      sha256: { type: 'string' },
      source: { type: 'string' },
      jobs: { type: 'string' },
      'config-only': { type: 'boolean' },
      suite: { type: 'string' },
      'keep-on-fail': { type: 'boolean' },
      attach: { type: 'string' },
      stop: { type: 'string' },
      list: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  // Long-running commands end, with their guests, when whatever started them goes away (npm
  // killed, the tsx wrapper killed, the terminal closed): their workers then see themselves
  // orphaned and take their guests down.
  if (cmd === 'suite' || cmd === 'shell' || cmd === 'boot') {
    watchAncestors((gone) => {
      console.error(`bpf-harness: process ${gone.pid}, which started this run, is gone; ending the run and its guests`);
      process.exit(1);
    });
  }
  // A source kernel's tarball checksum or local copy, for this run and the suite runs it starts.
  if (values.source) process.env.BPF_HARNESS_KERNEL_SOURCE = values.source;
  if (values.sha256) process.env.BPF_HARNESS_KERNEL_SHA256 = values.sha256;
  switch (cmd) {
    case 'suite':
      if (values['keep-on-fail']) process.env.BPF_HARNESS_KEEP_ON_FAIL = '1';
      return suite(rest, values.kernels ?? values.kernel, { dir: values.dir, modules: values.modules, shard: values.shard, test: values.test });
    case 'kernels': {
      const catalog = loadCatalog();
      if (rest[0] === 'fetch') {
        const k = await getKernel(rest[1] ?? values.kernel, { onProgress: say });
        console.log(`${k.name}: ${k.pinned} (${k.release}) at ${k.bzImage}`);
        return 0;
      }
      if (rest[0] === 'lock') {
        const names = rest.slice(1).length ? rest.slice(1) : Object.keys(catalog.kernels);
        for (const name of names) {
          const src = lookupKernel(name, catalog);
          if (src.source !== 'debian' && src.source !== 'debian-source') continue;
          const pin = await resolveDebian(name, { source: 'debian', suite: src.suite, package: src.package }, say);
          writePin(name, pin);
          console.log(`${name}: pinned to ${pin.package} ${pin.version}`);
        }
        return 0;
      }
      if (rest[0] === 'build') {
        const target = rest[1] ?? values.kernel;
        if (!target) throw new Error('kernels build: name a catalog kernel, a source tree or tarball, or a tarball URL');
        const src = lookupKernel(target, catalog);
        if (src.source !== 'tarball' && src.source !== 'debian-source' && src.source !== 'tree') {
          throw new Error(`kernels build: ${target} is a ${src.source} kernel, not kernel source (see \`npm run kernels -- list\`)`);
        }
        const t = Date.now();
        const configOnly = values['config-only'];
        const k = await buildKernel(target, src, { onProgress: say, jobs: values.jobs !== undefined ? positiveInt(values.jobs, '--jobs') : undefined, configOnly });
        if (configOnly) {
          console.log(`${k.name}: Linux ${k.release}: the config check passed (nothing built)`);
          return 0;
        }
        const took = ((Date.now() - t) / 1000).toFixed(1);
        console.log(`${k.name}: ${k.release} ${k.built ? `built in ${took} s` : `from the cache in ${took} s (built in ${k.buildSeconds} s)`}\n  ${k.pinned}\n  ${k.bzImage}`);
        return 0;
      }
      if (rest[0] && rest[0] !== 'list') throw new Error(`unknown kernels command "${rest[0]}" (list, fetch, lock, build)`);
      const lock = readLock();
      for (const [name, src] of Object.entries(catalog.kernels)) {
        const where =
          src.source === 'debian'
            ? `Debian ${src.suite}: ${src.package}`
            : src.source === 'debian-source'
              ? `built from Debian ${src.suite} ${src.package}`
              : src.source === 'tarball'
                ? `built from ${src.url.split('/').pop()}${src.sha256 ? '' : ' (needs --sha256)'}`
                : src.source === 'tree'
                  ? `built from ${src.path}`
                  : src.bzImage;
        const pin = lock[name];
        const pinned = pin ? ` -> ${pin.package} ${pin.version}` : src.source === 'debian' ? ' (not pinned: newest)' : '';
        console.log(`${name === catalog.default ? '*' : ' '} ${name.padEnd(6)} ${where}${pinned}${src.description ? `  ${src.description}` : ''}`);
      }
      return 0;
    }
    case 'report': {
      // Merges the per-kernel records of several runs (e.g. CI shards) into one report.
      if (!rest.length) throw new Error('report: name the result directories to merge');
      const out = values.out ?? join(resultsRoot(), `report-${timestamp()}`);
      const r = writeReports(out, [], rest);
      console.log(`${r.table}\n\nreport: ${r.markdown}\njunit:  ${r.junit}`);
      return r.failed ? 1 : 0;
    }
    case 'image': {
      const k = await getKernel(values.kernel, { onProgress: say });
      const img = await buildImage(k, say);
      console.log(`${img.initramfs}${img.missingModules.length ? `\nmodules not in this kernel: ${img.missingModules.join(', ')}` : ''}`);
      return 0;
    }
    case 'shell':
      if (values.list) {
        const kept = listKept();
        for (const k of kept) console.log(`${k.id}  kernel ${k.kernel}, ${k.suite}: "${k.test}", kept ${k.keptAt}; console ${k.console}`);
        if (!kept.length) console.log('no kept guests');
        return 0;
      }
      if (values.stop) {
        await stopKept(values.stop);
        say(`kept guest ${values.stop} ended`);
        return 0;
      }
      if (values.attach) return attachKept(values.attach);
      return shell(values.kernel, values.suite);
    case 'boot': {
      const k = await getKernel(values.kernel, { onProgress: say });
      if (values['dry-run']) {
        const img = await buildImage(k, say);
        const { accel } = await chooseAccel(k.bzImage, say);
        const qemu = which('qemu-system-x86_64');
        console.log(formatCommand(qemu, qemuArgs({ qemu, accel, bzImage: k.bzImage, initramfs: img.initramfs, memoryMiB: 1024, cpus: 2, sshPort: 2222 })));
        return 0;
      }
      const vm = await Vm.start({ kernel: k, label: 'boot', onEvent: (e) => e.type !== 'booting' && say(JSON.stringify(e)) });
      say(`guest up (${vm.accel}, ${(vm.bootMs / 1000).toFixed(1)} s); console log ${vm.console.path}; SSH on 127.0.0.1:${vm.sshPort}; Ctrl-C ends it`);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve));
      await vm.stop();
      return 0;
    }
    default:
      throw new Error(`unknown command "${cmd}"\n${USAGE}`);
  }
}

if (existsSync(SUITES_DIR)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      console.error(`bpf-harness: ${e.message}`);
      process.exit(1);
    },
  );
}
