// --keep-on-fail: the guest of the run's first failing test is handed to its keeper as the test
// left it (no reset), with the lines that say how to get in and how to end it (guest/keep-vm.ts).
import { keepVm } from '../guest/keep-vm.js';
import type { Vm } from '../guest/vm.js';
import type { GuestSlot } from './guest-slot.js';

/** Hands the slot's guest to its keeper; the slot is empty afterwards. */
export async function keepGuest(slot: GuestSlot, current: Vm, testName: string): Promise<void> {
  // The agent holds the test's programs, links and sockets after this process is gone.
  await slot.agent?.call('keep', {});
  await keepVm(current, { suite: slot.opts.suite, test: testName, leftBy: 'the test' });
  slot.vm = undefined;
  slot.agent = undefined;
}
