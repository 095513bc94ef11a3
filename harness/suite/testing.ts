// Vitest glue: one guest per suite file, booted before its first test and always torn down after
// the last; BPF sources compiled on the host and copied in; on a failed test the console's tail
// and the log paths are printed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, inject, type TestContext } from 'vitest';
import { Agent, type BpfMap, type BpfObject } from '../agent/agent.js';
import { attach, type AttachResult, type AttachSpec } from '../agent/attach.js';
import { compileAll, GUEST_OBJECT_DIR } from './compile.js';
import { config } from '../base/config.js';
import { atLeast, type Kernel } from '../kernels/catalog.js';
import { PROGRAM_TYPES, type ProgramTypeName } from './progtypes.js';
import type { GuestCommands } from '../guest/commands.js';
import { featureVerdict, typeNeeds } from './probe.js';
import type { SshSession } from '../guest/ssh.js';
import { FATAL_FAULTS, type FaultRecord } from '../guest/console.js';
import { inPhase, type SetupTimes, takePhaseTimes } from '../base/phases.js';
import { RunState } from './run-state.js';
import type { KernelFault } from '../report/run-record.js';
import { sshAccess } from '../guest/shell.js';
import { Vm, VmError, type VmEvent } from '../guest/vm.js';

export interface GuestOptions {
  /** Suite name (the folder under suites/), used in log directory names. */
  suite: string;
  /** BPF sources relative to the suite's folder, compiled and copied to /run/bpf in the guest. */
  sources?: string[];
  /** The test file's own URL (import.meta.url), to find the sources next to it. */
  from: string;
  /**
   * The program type the suite exercises (default: the suite's name, when it names one): on a
   * kernel older than the type, every test skips with the reason.
   */
  type?: ProgramTypeName;
  memoryMiB?: number;
  /**
   * Added to the guest's kernel command line (after BPF_HARNESS_APPEND), e.g. `lsm=…,bpf`. Suite
   * files share a guest only with files that ask for the same command line.
   */
  append?: string;
}

/** A suite's guest; its `run` and `exec` go through the agent (see harness/guest/commands.ts). */
export interface Guest extends GuestCommands {
  readonly vm: Vm;
  readonly ssh: SshSession;
  readonly agent: Agent;
  readonly kernel: Kernel;
  /** Path in the guest of a compiled source, e.g. objectPath('xdp_drop.bpf.c'). */
  objectPath(source: string): string;
  /** Loads a compiled source's object through the agent. */
  load(source: string): Promise<BpfObject>;
  /** Attaches a program the way users do (see harness/agent/attach.ts); the result is typed by spec.type. */
  attach<S extends AttachSpec>(spec: S): Promise<AttachResult<S>>;
  /** A map pinned in bpffs by another loader, e.g. pinnedMap(`${TC_PIN_DIR}/cls_drop`) for a map tc pinned. */
  pinnedMap(path: string): BpfMap;
  /** Skips the running test, with the reason, when the guest's kernel is older than `version`. */
  requireKernel(ctx: TestContext, version: string, feature: string): void;
}

export { GUEST_OBJECT_DIR };
/** How long a guest that hit a fatal fault may go on printing its report before it is killed. */
const FATAL_REPORT_MS = 2_000;
// Booting may include a first kernel download and image build.
const SETUP_TIMEOUT_MS = 15 * 60_000;

/** Milliseconds since the last call (or since it was made). */
function stopwatch(): () => number {
  let t = performance.now();
  return () => {
    const now = performance.now();
    const ms = Math.round(now - t);
    t = now;
    return ms;
  };
}

function printEvent(e: VmEvent): void {
  if (e.type === 'progress') console.log(`[harness] ${e.message}`);
  else if (e.type === 'booting') console.log(`[harness] booting kernel ${e.kernel} (${e.accel})`);
  else if (e.type === 'ready') console.log(`[harness] kernel ${e.kernel}: SSH ready after ${(e.bootMs / 1000).toFixed(1)} s${e.from === 'snapshot' ? ' (from its snapshot)' : ''}`);
  else if (e.type === 'fault') console.error(`[harness] guest ${e.kind}: ${e.line}`);
}

/** A fault as the reports keep it: kind and line, and the kernel's lines around it. */
function kernelFault(f: FaultRecord): KernelFault {
  return { kind: f.kind, line: f.host ? `${f.line.trim()} (${f.host})` : f.line.trim(), lines: [...f.before, ...f.report].slice(0, 32) };
}

/** A fault report for a test's failure message: kind and line, then the kernel's lines around it. */
function describeFaults(faults: FaultRecord[]): string {
  return faults.map(kernelFault).map((f) => `kernel ${f.kind}: ${f.line}\n${f.lines.join('\n')}`).join('\n\n');
}

/**
 * Guests that suite files hand on to the next file run by the same worker process (the suites
 * project runs its files in one process, vitest's isolate: false): one per kernel and memory
 * size. A guest goes back only when it was handed over cleanly; one that faulted never does.
 */
const idleGuests = new Map<string, { vm: Vm; agent: Agent }>();

/** Declares the guest of a suite file. Call at the top level of the test file. */
export function useGuest(opts: GuestOptions): Guest {
  let vm: Vm | undefined;
  let agent: Agent | undefined;
  let staging: { dir: string; files: string[] } | undefined;
  /** Faults on the console before the running test started, and stalls the host caused. */
  let faultMark = 0;
  let excusedMark = 0;
  /** The running test's finishTest has not run yet (it does not when the test skips itself). */
  let unfinished = false;
  /** The last test's guest crashed and was torn down: the next test boots a fresh one. */
  let freshGuestFor: string | undefined;
  const suiteDir = dirname(fileURLToPath(opts.from));
  // Every suite file of a run boots the same kernel (BPF_HARNESS_KERNEL, set by the CLI).
  const kernelName = () => config.kernel.get() ?? 'default';
  const poolKey = () => `${kernelName()}:${opts.memoryMiB ?? 1024}:${opts.append ?? ''}`;
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} is not available: the guest did not start (see the error of the suite's setup)`);
    return v;
  };

  /** Boots a guest, starts its agent and copies the suite's objects in (compiled once per file). */
  async function bringUp(setup: SetupTimes = {}): Promise<void> {
    const lap = stopwatch();
    // All suite files of a run boot the same kernel: once one guest could not come up, the
    // others fail at once with its cause.
    const state = new RunState(inject('runStateDir'));
    const earlier = state.bootFailure(kernelName());
    if (earlier) {
      const msg = `kernel ${kernelName()} did not come up for suite ${earlier.suite} earlier in this run (${earlier.cause}); not booting it again:\n${earlier.message}`;
      console.error(`[harness] ${opts.suite}: ${msg.split('\n')[0]}`);
      throw new Error(msg);
    }
    // Compiled before the guest boots: a compile error fails the file at once, with clang's message.
    if (opts.sources?.length && !staging) {
      const dir = await mkdtemp(join(tmpdir(), 'bpf-harness-objs-'));
      const objs = await compileAll(opts.sources.map((src) => join(suiteDir, src)), dir);
      staging = { dir, files: objs.map((o) => o.name) };
      setup.compileMs = lap();
    }
    const idle = idleGuests.get(poolKey());
    idleGuests.delete(poolKey());
    if (idle && idle.vm.running && !idle.agent.exited) {
      vm = idle.vm;
      agent = idle.agent;
      try {
        lap();
        if (staging) await vm.ssh.put(staging.dir, staging.files, GUEST_OBJECT_DIR);
        setup.copyMs = lap();
        return;
      } catch (e) {
        await tearDown();
        throw idle.vm.error(`the guest handed over by the previous suite file could not take this file's objects: ${(e as Error).message}`);
      }
    }
    if (idle) idle.vm.kill();
    let booted: Vm;
    lap();
    try {
      booted = await Vm.start({ kernel: inject('kernel'), label: opts.suite, memoryMiB: opts.memoryMiB, append: opts.append, onEvent: printEvent });
    } catch (e) {
      if (e instanceof VmError && e.bootCause) {
        state.recordBootFailure({ kernel: kernelName(), suite: opts.suite, cause: e.bootCause, message: e.message });
        // Said now, in the live output, not only in the report at the end.
        console.error(`[harness] ${opts.suite}: the guest did not come up (${e.bootCause}): ${e.message}`);
      }
      throw e;
    }
    vm = booted;
    setup.bootMs = lap();
    // A fault that leaves the kernel untrustworthy (panic, lockup, stall, hung task) ends the
    // guest within seconds, so that the running test fails instead of waiting on a dead kernel;
    // not at once, so that the kernel can print the report's stack (an RCU stall's backtraces come
    // after its first line) for the failure message.
    booted.console.onFault((kind) => {
      if (FATAL_FAULTS.has(kind)) setTimeout(() => booted.kill(), FATAL_REPORT_MS).unref();
    });
    try {
      agent = await Agent.start(booted.ssh, join(booted.logDir, 'agent.log'), booted.timeouts.commandMs);
      setup.agentMs = lap();
      if (staging) await booted.ssh.put(staging.dir, staging.files, GUEST_OBJECT_DIR);
      setup.copyMs = lap();
      // A fault while booting is a failure too (warnings and the like do not stop a boot). The
      // guest's sysctls are recorded, to be put back when it is handed to the next file.
      const a = agent;
      await booted.syncConsole(async (mark) => {
        await a.call('sysctl_snapshot', {});
        await a.call('reset', { mark });
      });
      setup.baselineMs = lap();
      if (booted.console.faults.length) {
        throw new Error(`the kernel faulted while the guest came up (add the line to kernels/allowlist/ with a reason if it is harmless):\n${describeFaults(booted.console.faults)}`);
      }
    } catch (e) {
      const err = booted.error((e as Error).message);
      await tearDown();
      throw err;
    }
  }

  /** Hands the guest to its keeper, as the failed test left it, and says how to get in and end it. */
  async function keepGuest(current: Vm, testName: string): Promise<void> {
    console.error(`--- guest console (${current.console.path}), last lines ---\n${current.console.tail(30)}`);
    const id = `${opts.suite}-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
    const { keyPath, knownHosts, command: ssh } = await sshAccess(current.logDir, current.sshPort, current.image.clientKey, current.image.hostKey);
    const maxSeconds = config.keepSeconds.get();
    // The agent holds the test's programs, links and sockets after this process is gone.
    await agent?.call('keep', {});
    await current.keep({
      id,
      kernel: current.kernel.name,
      suite: opts.suite,
      test: testName,
      sshPort: current.sshPort,
      keyPath,
      knownHosts,
      hostKey: current.image.hostKey,
      console: current.console.path,
      ssh,
      maxSeconds,
      keptAt: new Date().toISOString(),
    });
    await current.stop(); // closes this process's connection and console; the guest stays up
    console.error(
      [
        `[harness] kept the guest of "${testName}" as the test left it (kernel ${current.kernel.release}): id ${id}`,
        `[harness]   get in:  npm run shell -- --attach ${id}    (or: ${ssh})`,
        `[harness]   end it:  npm run shell -- --stop ${id}    (it ends by itself after ${Math.round(maxSeconds / 60)} min)`,
      ].join('\n'),
    );
    vm = undefined;
    agent = undefined;
  }

  async function tearDown(): Promise<void> {
    agent?.close();
    agent = undefined;
    await vm?.stop();
    vm = undefined;
  }

  // vitest wants the first argument destructured; the second is the file.
  beforeAll(async ({}, file) => {
    const setup: SetupTimes = {};
    Object.assign(file.meta, { setup });
    await bringUp(setup);
  }, SETUP_TIMEOUT_MS);

  const type = opts.type ?? (opts.suite in PROGRAM_TYPES ? (opts.suite as ProgramTypeName) : undefined);
  beforeEach(async (ctx) => {
    // A test that skipped itself (ctx.skip) gets no onTestFinished: what it set up goes now.
    if (unfinished && vm?.running && agent && !agent.exited) await agent.call('reset', { scrub: 'test' });
    unfinished = false;
    // A guest that died without its test's clean-up noticing is torn down here.
    if (vm && (!vm.running || !agent || agent.exited)) {
      freshGuestFor ??= 'an earlier test';
      await tearDown();
    }
    // The guest of an earlier test crashed (and was torn down): this test gets a fresh one.
    if (!vm && freshGuestFor) {
      console.log(`[harness] ${opts.suite}: booting a fresh guest for "${ctx.task.name}": the guest of "${freshGuestFor}" faulted`);
      freshGuestFor = undefined;
      await bringUp();
    }
    if (type && vm) {
      const { since } = PROGRAM_TYPES[type];
      // Types with a probe (harness/suite/probe.ts) are asked of the kernel, not judged by version.
      if ('probe' in PROGRAM_TYPES[type] && agent) {
        const reason = await featureVerdict({ ssh: vm.ssh, kernel: vm.kernel, agent }, typeNeeds(type));
        if (reason) ctx.skip(reason);
      } else if (!atLeast(vm.kernel.version, since)) ctx.skip(`needs ${since}: program type ${type} (kernel ${vm.kernel.release})`);
    }
    faultMark = vm?.console.faults.length ?? 0;
    excusedMark = vm?.console.excused.length ?? 0;
    takePhaseTimes(); // the test's own phases start now
    // After the suite's own afterEach hooks, and even when one of them throws (one that talks to a
    // guest that crashed does): the reset, the fault check and the fresh guest for the next test.
    unfinished = true;
    ctx.onTestFinished(() => finishTest(ctx), SETUP_TIMEOUT_MS);
  }, SETUP_TIMEOUT_MS);

  // Every test leaves a clean guest: the agent detaches and closes what it holds, and namespaces,
  // pinned maps and the harness's cgroups go, so that tests can run in any order. A kernel fault
  // printed while the test ran, a guest that died or an agent that exited fails the test, and the
  // next test gets a fresh guest.
  async function finishTest(ctx: TestContext): Promise<void> {
    unfinished = false;
    if (!vm) return;
    const current = vm;
    // For the reports: where this test's guest logged.
    Object.assign(ctx.task.meta, { consoleLog: current.console.path, agentLog: join(current.logDir, 'agent.log') });
    const problems: string[] = [];
    // --keep-on-fail: the first failing test's guest stays as the test left it (no reset). A test
    // that made the kernel fault counts as failing, so the console is read up to now first.
    if (config.keepOnFail.get() && current.running && agent && !agent.exited) {
      await current.syncConsole('true', undefined, agent).catch(() => false);
      const faulted = current.console.faults.slice(faultMark);
      if ((ctx.task.result?.state === 'fail' || faulted.length) && current.running && new RunState(inject('runStateDir')).claimKeep()) {
        if (faulted.length) Object.assign(ctx.task.meta, { faults: faulted.map(kernelFault) });
        await keepGuest(current, ctx.task.name);
        freshGuestFor = ctx.task.name;
        if (faulted.length) throw new Error(`${describeFaults(faulted)}\n(console: ${current.console.path})`);
        return;
      }
    }
    if (current.running && agent && !agent.exited) {
      try {
        // The reset, then a marker through /dev/kmsg: every kernel message of the test is in the log after it.
        // One request: detach and close everything, remove namespaces, tc/ip pins and the
        // harness's cgroups, and write the marker.
        const a = agent;
        const synced = await inPhase('reset', () => current.syncConsole((mark) => a.call('reset', { scrub: 'test', mark })));
        if (!synced) problems.push('the guest\'s console did not echo the end-of-test marker within 5 s');
      } catch (e) {
        if (current.running && !agent.exited) problems.push(`resetting the guest failed: ${(e as Error).message}`);
      }
    }
    Object.assign(ctx.task.meta, { phases: takePhaseTimes() });
    // An agent gone with its connection usually means a dying guest: let QEMU finish (its console
    // output is complete once it has exited) before telling which it was.
    if (agent?.exited && current.running) await current.waitExit(3_000);
    const faults = current.console.faults.slice(faultMark);
    // For the reports, beside the test's own error (often only the closed connection of a guest
    // that died): the kernel's lines of each fault.
    if (faults.length) Object.assign(ctx.task.meta, { faults: faults.map(kernelFault) });
    if (!current.running) problems.push(`the guest died during this test (QEMU exited)${faults.length ? '' : '; the console shows no fault'}`);
    else if (agent?.exited) problems.push(`the guest agent died during this test: ${agent.exited.message}`);
    if (faults.length) problems.push(describeFaults(faults));
    // Stalls the host caused are no fault of the kernel's, but they explain a test that failed.
    const excused = current.console.excused.slice(excusedMark);
    for (const x of excused) console.log(`[harness] ${opts.suite}: "${ctx.task.name}": the kernel reported ${x.kind} (${x.line.trim()}); ${x.reason}`);
    const starved = excused.length ? `while this test ran, the host starved the guest (not a kernel fault): ${excused.map((x) => `${x.kind}: ${x.line.trim()}; ${x.reason}`).join('\n')}` : '';
    if (ctx.task.result?.state === 'fail' || problems.length) {
      console.error(`--- guest console (${current.console.path}), last lines ---\n${current.console.tail(30)}\n--- agent log: ${join(current.logDir, 'agent.log')}`);
    }
    if (problems.length) {
      await tearDown();
      freshGuestFor = ctx.task.name;
      throw new Error(`${[...problems, starved].filter(Boolean).join('\n')}\n(console: ${current.console.path})`);
    }
    // A test that failed while its guest was starved says so beside its own error.
    if (starved && ctx.task.result?.state === 'fail') throw new Error(starved);
  }

  // The guest goes to the next suite file of this worker, returned to how it booted; if that
  // fails, or the kernel faulted meanwhile, it is torn down instead.
  afterAll(async () => {
    if (staging) await rm(staging.dir, { recursive: true, force: true });
    const current = vm;
    // A guest booted with a suite's own command line (`append`) is not kept idle for a later
    // file that is unlikely to ask for the same: it would hold its memory for the rest of the run.
    if (!current || !agent || !current.running || agent.exited || idleGuests.has(poolKey()) || opts.append) return tearDown();
    const faults = current.console.faults.length;
    try {
      // Everything tests and the file left (namespaces, pins, cgroups, objects, probe events),
      // then every sysctl put back as the guest booted with it.
      const a = agent;
      const synced = await current.syncConsole(async (mark) => {
        await a.call('reset', { scrub: 'guest' });
        await a.call('sysctl_restore', {});
        await a.call('reset', { mark });
      });
      if (!synced || current.console.faults.length > faults) return tearDown();
    } catch {
      return tearDown();
    }
    idleGuests.set(poolKey(), { vm: current, agent });
    vm = undefined;
    agent = undefined;
  }, 60_000);

  const objectPath = (source: string) => `${GUEST_OBJECT_DIR}/${basename(source).replace(/\.c$/, '.o')}`;
  return {
    get vm() {
      return need(vm, 'the VM');
    },
    get ssh() {
      return need(vm, 'the VM').ssh;
    },
    get agent() {
      return need(agent, 'the agent');
    },
    get kernel() {
      return need(vm, 'the VM').kernel;
    },
    objectPath,
    load: (source) => need(agent, 'the agent').load(objectPath(source)),
    attach: (spec) => attach({ agent: need(agent, 'the agent') }, spec),
    pinnedMap: (path) => need(agent, 'the agent').pinnedMap(path),
    run: (command, o) => need(agent, 'the agent').run(command, o),
    exec: (command, o) => need(agent, 'the agent').exec(command, o),
    requireKernel(ctx, version, feature) {
      const k = need(vm, 'the VM').kernel;
      if (!atLeast(k.version, version)) ctx.skip(`needs ${version}: ${feature} (kernel ${k.release})`);
    },
  };
}
