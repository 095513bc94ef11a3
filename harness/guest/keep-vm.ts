// --keep-on-fail's hand-over of a guest to its keeper (harness/guest/keeper.mjs): the guest stays
// up, as it was, after this process ends, with the lines that say how to get in and how to end it.
// For a suite's failing test (harness/suite/keep.ts) and for a program `run` ran (harness/cli/run.ts).
import { settings } from '../base/config.js';
import { sshAccess } from './shell.js';
import type { Vm } from './vm.js';

/** Keeps `vm` (started keepable) for the failure of `test` in `suite` (left so by `leftBy`: the test, the program); returns the kept guest's id. */
export async function keepVm(vm: Vm, what: { suite: string; test: string; leftBy: string }): Promise<string> {
  console.error(`--- guest console (${vm.console.path}), last lines ---\n${vm.console.tail(30)}`);
  const id = `${what.suite.replace(/[^\w.-]/g, '_')}-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const { keyPath, knownHosts, command: ssh } = await sshAccess(vm.logDir, vm.sshPort, vm.image.clientKey, vm.image.hostKey);
  const maxSeconds = settings().keepSeconds;
  await vm.keep({
    id,
    kernel: vm.kernel.name,
    suite: what.suite,
    test: what.test,
    sshPort: vm.sshPort,
    keyPath,
    knownHosts,
    hostKey: vm.image.hostKey,
    console: vm.console.path,
    ssh,
    maxSeconds,
    keptAt: new Date().toISOString(),
  });
  await vm.stop(); // closes this process's connection and console; the guest stays up
  console.error(
    [
      `[harness] kept the guest of "${what.test}" as ${what.leftBy} left it (kernel ${vm.kernel.release}): id ${id}`,
      `[harness]   get in:  npm run shell -- --attach ${id}    (or: ${ssh})`,
      `[harness]   end it:  npm run shell -- --stop ${id}    (it ends by itself after ${Math.round(maxSeconds / 60)} min)`,
    ].join('\n'),
  );
  return id;
}
