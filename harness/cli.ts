#!/usr/bin/env -S npx tsx
// The command line: a thin layer over the library. `npm run suite xdp -- --kernel 5.10`.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildImage } from './image.js';
import { getKernel, loadCatalog, lookupKernel, REPO_ROOT } from './kernels.js';
import { chooseAccel, formatCommand, qemuArgs } from './qemu.js';
import { which } from './tools.js';
import { Vm } from './vm.js';

const SUITES_DIR = join(REPO_ROOT, 'suites');

const USAGE = `usage:
  npm run suite <type...|all> [-- --kernel NAME|PATH] [--modules DIR]   run suites in guests
  npm run kernels -- list                                              the kernel catalog
  npm run kernels -- fetch NAME                                        download and cache a kernel
  npm run image -- [--kernel NAME]                                     build the guest image
  npx tsx harness/cli.ts boot [--kernel NAME] [--dry-run]              boot a guest and keep it up (Ctrl-C ends it)

Environment: BPF_HARNESS_KERNEL (default kernel), BPF_HARNESS_ACCEL=kvm|tcg (skip the probe),
BPF_HARNESS_CACHE (cache directory), BPF_HARNESS_RESULTS (logs), BPF_HARNESS_DEBIAN_MIRROR.`;

export function listSuites(): string[] {
  return readdirSync(SUITES_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory() && readdirSync(join(SUITES_DIR, e.name)).some((f) => f.endsWith('.test.ts')))
    .map((e) => e.name)
    .sort();
}

const say = (m: string) => console.log(`[harness] ${m}`);

async function suite(names: string[], kernel: string | undefined, modules: string | undefined): Promise<number> {
  const known = listSuites();
  if (!names.length) throw new Error(`name a suite: ${known.join(', ')} or all`);
  const chosen = names.includes('all') ? known : names;
  for (const n of chosen) if (!known.includes(n)) throw new Error(`unknown suite "${n}": known suites are ${known.join(', ')}`);
  if (kernel) {
    lookupKernel(kernel, loadCatalog(), modules); // fails early on an unknown name
    process.env.BPF_HARNESS_KERNEL = kernel;
  }
  if (modules) process.env.BPF_HARNESS_MODULES = modules;
  const { startVitest } = await import('vitest/node');
  const vitest = await startVitest('test', chosen.map((n) => `suites/${n}/`), { run: true, project: 'suites', root: REPO_ROOT });
  await vitest?.close();
  return process.exitCode === undefined || process.exitCode === 0 ? 0 : Number(process.exitCode);
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      kernel: { type: 'string', short: 'k' },
      modules: { type: 'string' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  switch (cmd) {
    case 'suite':
      return suite(rest, values.kernel, values.modules);
    case 'kernels': {
      const catalog = loadCatalog();
      if (rest[0] === 'fetch') {
        const k = await getKernel(rest[1] ?? values.kernel, { onProgress: say });
        console.log(`${k.name}: ${k.pinned} (${k.release}) at ${k.bzImage}`);
        return 0;
      }
      if (rest[0] && rest[0] !== 'list') throw new Error(`unknown kernels command "${rest[0]}" (list, fetch)`);
      for (const [name, src] of Object.entries(catalog.kernels)) {
        const where = src.source === 'debian' ? `Debian ${src.suite}: ${src.package}` : src.bzImage;
        console.log(`${name === catalog.default ? '*' : ' '} ${name.padEnd(6)} ${where}${src.description ? ` (${src.description})` : ''}`);
      }
      return 0;
    }
    case 'image': {
      const k = await getKernel(values.kernel, { onProgress: say });
      const img = await buildImage(k, say);
      console.log(`${img.initramfs}${img.missingModules.length ? `\nmodules not in this kernel: ${img.missingModules.join(', ')}` : ''}`);
      return 0;
    }
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
