// The CLI's guests by hand: `shell` (a shell in a fresh or kept guest), `boot` (a guest kept up
// until Ctrl-C, or with --dry-run the command line it would run) and `image`.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../agent/agent.js';
import { bootCommand } from '../guest/boot-command.js';
import { compileAll, GUEST_OBJECT_DIR } from '../suite/compile.js';
import { buildImage } from '../guest/image.js';
import { getKernel } from '../kernels/catalog.js';
import { findKept, listKept, stopKept } from '../guest/kept.js';
import { formatCommand } from '../guest/qemu.js';
import { interactiveShell, sshAccess } from '../guest/shell.js';
import { SshSession } from '../guest/ssh.js';
import { VethPair } from '../agent/topology.js';
import { freePort, planGuest, startPlan, Vm } from '../guest/vm.js';
import type { Values } from './options.js';
import { listSuites, say, SUITES_DIR } from './suite.js';

/** A guest with a shell on this terminal; with a suite, its objects are in and a veth pair is up. */
async function shellInGuest(kernelArg: string | undefined, modules: string | undefined, suiteName: string | undefined): Promise<number> {
  if (suiteName && !listSuites().includes(suiteName)) throw new Error(`unknown suite "${suiteName}": known suites are ${listSuites().join(', ')}`);
  const k = await getKernel(kernelArg, { onProgress: say, modules });
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

export async function shell(values: Values): Promise<number> {
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
  return shellInGuest(values.kernel, values.modules, values.suite);
}

/**
 * The command line `boot` runs, planned by the same functions as Vm.start's (planGuest,
 * startPlan, bootCommand): the same memory, CPUs, network, wrapper and command line, and a
 * restore of the kernel's snapshot when it has one. What differs from start to start is said on
 * stderr: the SSH port (one free now), the entropy seed and the QMP socket.
 */
export async function bootDryRun(kernelArg: string | undefined, modules: string | undefined): Promise<string> {
  const k = await getKernel(kernelArg, { onProgress: say, modules });
  const g = await planGuest({ kernel: k }, say);
  const sshPort = await freePort();
  const { argv } = bootCommand(startPlan(g, sshPort, randomBytes(64).toString('hex')));
  const how = g.snapshot ? `a start of kernel ${k.name} runs: a restore of its snapshot ${g.snapshot.dir} (--no-snapshot boots)` : `a boot of kernel ${k.name} runs`;
  console.error(`# the command line ${how}; the SSH port (${sshPort}, free now), the bpf_harness.seed= entropy seed and the QMP socket are chosen afresh by every start`);
  return formatCommand(argv[0], argv.slice(1));
}

export async function boot(values: Values): Promise<number> {
  if (values['dry-run']) {
    console.log(await bootDryRun(values.kernel, values.modules));
    return 0;
  }
  const k = await getKernel(values.kernel, { onProgress: say, modules: values.modules });
  const vm = await Vm.start({ kernel: k, label: 'boot', onEvent: (e) => e.type !== 'booting' && say(JSON.stringify(e)) });
  say(`guest up (${vm.accel}, ${(vm.bootMs / 1000).toFixed(1)} s); console log ${vm.console.path}; SSH on 127.0.0.1:${vm.sshPort}; Ctrl-C ends it`);
  await new Promise<void>((resolve) => process.once('SIGINT', resolve));
  await vm.stop();
  return 0;
}

export async function image(values: Values): Promise<number> {
  const k = await getKernel(values.kernel, { onProgress: say, modules: values.modules });
  const img = await buildImage(k, say);
  console.log(`${img.initramfs}${img.missingModules.length ? `\nmodules not in this kernel: ${img.missingModules.join(', ')}` : ''}`);
  return 0;
}
