// A suite file's guest coming up: the run's earlier boot failure shared, the suite's objects
// compiled, an idle guest taken over or a fresh one started (with the kill timer of fatal faults),
// its agent, the objects copied in, and the sysctl baseline the hand-over puts back.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { Agent } from '../agent/agent.js';
import { settings } from '../base/config.js';
import type { SetupTimes } from '../base/phases.js';
import { FATAL_FAULTS } from '../guest/console.js';
import { Vm, VmError, type VmEvent } from '../guest/vm.js';
import { compileAll, GUEST_OBJECT_DIR } from './compile.js';
import type { GuestSlot } from './guest-slot.js';
import { takeIdle } from './guest-pool.js';
import { describeFaults } from './kernel-faults.js';
import { RunState } from './run-state.js';

/** How long a guest that hit a fatal fault may go on printing its report before it is killed. */
const FATAL_REPORT_MS = 2_000;

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

/** Brings the slot's guest up: booted (or taken over), agent started, the suite's objects in. */
export async function bringUp(slot: GuestSlot, setup: SetupTimes = {}): Promise<void> {
  const { opts } = slot;
  const lap = stopwatch();
  // All suite files of a run boot the same kernel: once one guest could not come up, the
  // others fail at once with its cause.
  const state = new RunState(inject('runStateDir'));
  const earlier = state.bootFailure(slot.kernelName());
  if (earlier) {
    const msg = `kernel ${slot.kernelName()} did not come up for suite ${earlier.suite} earlier in this run (${earlier.cause}); not booting it again:\n${earlier.message}`;
    console.error(`[harness] ${opts.suite}: ${msg.split('\n')[0]}`);
    throw new Error(msg);
  }
  // Compiled before the guest boots: a compile error fails the file at once, with clang's message.
  if (opts.sources?.length && !slot.staging) {
    const dir = await mkdtemp(join(tmpdir(), 'bpf-harness-objs-'));
    const objs = await compileAll(opts.sources.map((src) => join(slot.suiteDir, src)), dir);
    slot.staging = { dir, files: objs.map((o) => o.name) };
    setup.compileMs = lap();
  }
  const { staging } = slot;
  // --pristine: no hand-over; every file's guest starts afresh.
  const idle = settings().pristine ? undefined : takeIdle(slot);
  if (idle) {
    slot.vm = idle.vm;
    slot.agent = idle.agent;
    try {
      lap();
      if (staging) await idle.vm.ssh.put(staging.dir, staging.files, GUEST_OBJECT_DIR);
      setup.copyMs = lap();
      return;
    } catch (e) {
      await slot.tearDown();
      throw idle.vm.error(`the guest handed over by the previous suite file could not take this file's objects: ${(e as Error).message}`);
    }
  }
  let booted: Vm;
  lap();
  try {
    booted = await Vm.start({ kernel: inject('kernel'), label: opts.suite, memoryMiB: opts.memoryMiB, append: opts.append, onEvent: printEvent });
  } catch (e) {
    if (e instanceof VmError && e.bootCause) {
      state.recordBootFailure({ kernel: slot.kernelName(), suite: opts.suite, cause: e.bootCause, message: e.message });
      // Said now, in the live output, not only in the report at the end.
      console.error(`[harness] ${opts.suite}: the guest did not come up (${e.bootCause}): ${e.message}`);
    }
    throw e;
  }
  slot.vm = booted;
  setup.bootMs = lap();
  // A fault that leaves the kernel untrustworthy (panic, lockup, stall, hung task) ends the
  // guest within seconds, so that the running test fails instead of waiting on a dead kernel;
  // not at once, so that the kernel can print the report's stack (an RCU stall's backtraces come
  // after its first line) for the failure message.
  booted.console.onFault((kind) => {
    if (FATAL_FAULTS.has(kind)) setTimeout(() => booted.kill(), FATAL_REPORT_MS).unref();
  });
  try {
    const agent = await Agent.start(booted.ssh, join(booted.logDir, 'agent.log'), booted.timeouts.commandMs);
    slot.agent = agent;
    setup.agentMs = lap();
    if (staging) await booted.ssh.put(staging.dir, staging.files, GUEST_OBJECT_DIR);
    setup.copyMs = lap();
    // A fault while booting is a failure too (warnings and the like do not stop a boot). The
    // guest's sysctls are recorded, to be put back when it is handed to the next file (not with
    // --pristine, where no guest is handed on).
    await booted.syncConsole(async (mark) => {
      if (!settings().pristine) await agent.call('sysctl_snapshot', {});
      await agent.call('reset', { mark });
    });
    setup.baselineMs = lap();
    if (booted.console.faults.length) {
      throw new Error(`the kernel faulted while the guest came up (add the line to kernels/allowlist/ with a reason if it is harmless):\n${describeFaults(booted.console.faults)}`);
    }
  } catch (e) {
    const err = booted.error((e as Error).message);
    await slot.tearDown();
    throw err;
  }
}
