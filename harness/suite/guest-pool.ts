// Guests that suite files hand on to the next file run by the same worker process (the suites
// project runs its files in one process, vitest's isolate: false): one per kernel, memory size and
// command line. A guest goes back only when it was handed over cleanly; one that faulted never does.
import type { Agent } from '../agent/agent.js';
import { settings } from '../base/config.js';
import type { Vm } from '../guest/vm.js';
import type { GuestSlot } from './guest-slot.js';

const idleGuests = new Map<string, { vm: Vm; agent: Agent }>();

/** The idle guest this file may take over, out of the pool; a dead one is killed and not given. */
export function takeIdle(slot: GuestSlot): { vm: Vm; agent: Agent } | undefined {
  const idle = idleGuests.get(slot.poolKey());
  idleGuests.delete(slot.poolKey());
  if (idle && idle.vm.running && !idle.agent.exited) return idle;
  idle?.vm.kill();
  return undefined;
}

/**
 * At the end of a file: its guest goes to the pool, returned to how it booted; if that fails, or
 * the kernel faulted meanwhile, it is torn down instead.
 */
export async function handBack(slot: GuestSlot): Promise<void> {
  const { vm, agent } = slot;
  // A guest booted with a suite's own command line (`append`) is not kept idle for a later
  // file that is unlikely to ask for the same: it would hold its memory for the rest of the run.
  // --pristine: nothing is handed on, and the guest's end is not waited for.
  if (settings().pristine) return slot.discard();
  if (!vm || !agent || !slot.live || idleGuests.has(slot.poolKey()) || slot.opts.append) return slot.tearDown();
  const faults = vm.console.faults.length;
  try {
    // Everything tests and the file left (namespaces, pins, cgroups, objects, probe events),
    // then every sysctl put back as the guest booted with it.
    const synced = await vm.syncConsole(async (mark) => {
      await agent.call('reset', { scrub: 'guest' });
      await agent.call('sysctl_restore', {});
      await agent.call('reset', { mark });
    });
    if (!synced || vm.console.faults.length > faults) return slot.tearDown();
  } catch {
    return slot.tearDown();
  }
  idleGuests.set(slot.poolKey(), { vm, agent });
  slot.vm = undefined;
  slot.agent = undefined;
}
