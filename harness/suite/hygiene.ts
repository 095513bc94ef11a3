// Between tests: every test leaves a clean guest. The agent detaches and closes what it holds, and
// namespaces, pinned maps and the harness's cgroups go, so that tests can run in any order. A
// kernel fault printed while the test ran, a guest that died or an agent that exited fails the
// test, and the next test gets a fresh guest. Stalls the host caused are said, not charged to the
// kernel.
import { join } from 'node:path';
import { inject, type TestContext } from 'vitest';
import { settings } from '../base/config.js';
import { inPhase, takePhaseTimes } from '../base/phases.js';
import type { GuestSlot } from './guest-slot.js';
import { keepGuest } from './keep.js';
import { describeFaults, kernelFault } from './kernel-faults.js';
import { RunState } from './run-state.js';

/** Where the console's faults and excused stalls stood when a test started. */
export interface TestMarks {
  faults: number;
  excused: number;
}

export function marksNow(slot: GuestSlot): TestMarks {
  takePhaseTimes(); // the test's own phases start now
  return { faults: slot.vm?.console.faults.length ?? 0, excused: slot.vm?.console.excused.length ?? 0 };
}

/**
 * A test's end: the reset and its console marker, then the verdict on what the kernel did.
 * Returns the test's name when the next test needs a fresh guest (this one was kept or torn down).
 */
export async function finishTest(slot: GuestSlot, ctx: TestContext, marks: TestMarks): Promise<string | undefined> {
  const current = slot.vm;
  if (!current) return undefined;
  const { suite } = slot.opts;
  // For the reports: where this test's guest logged.
  Object.assign(ctx.task.meta, { consoleLog: current.console.path, agentLog: join(current.logDir, 'agent.log') });
  const problems: string[] = [];
  // --keep-on-fail: the first failing test's guest stays as the test left it (no reset). A test
  // that made the kernel fault counts as failing, so the console is read up to now first.
  if (settings().keepOnFail && slot.live) {
    await current.syncConsole('true', undefined, slot.agent).catch(() => false);
    const faulted = current.console.faults.slice(marks.faults);
    if ((ctx.task.result?.state === 'fail' || faulted.length) && current.running && new RunState(inject('runStateDir')).claimKeep()) {
      if (faulted.length) Object.assign(ctx.task.meta, { faults: faulted.map(kernelFault) });
      await keepGuest(slot, current, ctx.task.name);
      if (faulted.length) throw new FreshGuestNeeded(ctx.task.name, `${describeFaults(faulted)}\n(console: ${current.console.path})`);
      return ctx.task.name;
    }
  }
  const agent = slot.agent;
  if (current.running && agent && !agent.exited) {
    try {
      // The reset, then a marker through /dev/kmsg: every kernel message of the test is in the log after it.
      // One request: detach and close everything, remove namespaces, tc/ip pins and the
      // harness's cgroups, and write the marker.
      const synced = await inPhase('reset', () => current.syncConsole((mark) => agent.call('reset', { scrub: 'test', mark })));
      if (!synced) problems.push('the guest\'s console did not echo the end-of-test marker within 5 s');
    } catch (e) {
      if (current.running && !agent.exited) problems.push(`resetting the guest failed: ${(e as Error).message}`);
    }
  }
  Object.assign(ctx.task.meta, { phases: takePhaseTimes() });
  // An agent gone with its connection usually means a dying guest: let QEMU finish (its console
  // output is complete once it has exited) before telling which it was.
  if (agent?.exited && current.running) await current.waitExit(3_000);
  const faults = current.console.faults.slice(marks.faults);
  // For the reports, beside the test's own error (often only the closed connection of a guest
  // that died): the kernel's lines of each fault.
  if (faults.length) Object.assign(ctx.task.meta, { faults: faults.map(kernelFault) });
  if (!current.running) problems.push(`the guest died during this test (QEMU exited)${faults.length ? '' : '; the console shows no fault'}`);
  else if (agent?.exited) problems.push(`the guest agent died during this test: ${agent.exited.message}`);
  if (faults.length) problems.push(describeFaults(faults));
  // Stalls the host caused are no fault of the kernel's, but they explain a test that failed.
  const excused = current.console.excused.slice(marks.excused);
  for (const x of excused) console.log(`[harness] ${suite}: "${ctx.task.name}": the kernel reported ${x.kind} (${x.line.trim()}); ${x.reason}`);
  const starved = excused.length ? `while this test ran, the host starved the guest (not a kernel fault): ${excused.map((x) => `${x.kind}: ${x.line.trim()}; ${x.reason}`).join('\n')}` : '';
  if (ctx.task.result?.state === 'fail' || problems.length) {
    console.error(`--- guest console (${current.console.path}), last lines ---\n${current.console.tail(30)}\n--- agent log: ${join(current.logDir, 'agent.log')}`);
  }
  if (problems.length) {
    await slot.tearDown();
    // The caller marks the next test for a fresh guest before this error reaches vitest.
    throw new FreshGuestNeeded(ctx.task.name, `${[...problems, starved].filter(Boolean).join('\n')}\n(console: ${current.console.path})`);
  }
  // A test that failed while its guest was starved says so beside its own error.
  if (starved && ctx.task.result?.state === 'fail') throw new Error(starved);
  return undefined;
}

/** A test's failure after which its guest is gone: the next test boots a fresh one. */
export class FreshGuestNeeded extends Error {
  constructor(
    readonly testName: string,
    message: string,
  ) {
    super(message);
  }
}
