// --keep-on-fail: the guest of the run's first failing test is handed to its keeper as the test
// left it (no reset), with the lines that say how to get in and how to end it.
import { config } from '../base/config.js';
import { sshAccess } from '../guest/shell.js';
import type { Vm } from '../guest/vm.js';
import type { GuestSlot } from './guest-slot.js';

/** Hands the slot's guest to its keeper; the slot is empty afterwards. */
export async function keepGuest(slot: GuestSlot, current: Vm, testName: string): Promise<void> {
  const { suite } = slot.opts;
  console.error(`--- guest console (${current.console.path}), last lines ---\n${current.console.tail(30)}`);
  const id = `${suite}-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const { keyPath, knownHosts, command: ssh } = await sshAccess(current.logDir, current.sshPort, current.image.clientKey, current.image.hostKey);
  const maxSeconds = config.keepSeconds.get();
  // The agent holds the test's programs, links and sockets after this process is gone.
  await slot.agent?.call('keep', {});
  await current.keep({
    id,
    kernel: current.kernel.name,
    suite,
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
  slot.vm = undefined;
  slot.agent = undefined;
}
