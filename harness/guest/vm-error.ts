// Why a guest did not come up (BootCause), and the error of a guest's failure, which carries the
// tail of its console and the console log's path.

/**
 * Why a guest did not come up, from what its console showed:
 * - no-output: the kernel printed nothing at all (not a bootable x86_64 kernel, no serial console);
 * - panic / fault: the kernel died or reported a fault during boot;
 * - hung: before init ran, the console went silent and the vCPUs halted, for longer than a
 *   boot ever pauses (the kernel waits for an interrupt or a timer that does not come);
 * - qemu-exited: QEMU ended without a panic on the console (bad arguments, a triple fault);
 * - no-sshd: the kernel ran, but init never said it starts the SSH server;
 * - no-network: init said the guest has no network (no eth0: no device, or no driver for it; or
 *   an `ip` command that failed), so no SSH connection can reach it;
 * - sshd-silent: init started the SSH server, but it never completed a handshake.
 */
export type BootCause = 'no-output' | 'panic' | 'fault' | 'hung' | 'qemu-exited' | 'no-sshd' | 'no-network' | 'sshd-silent';

export class VmError extends Error {
  constructor(
    message: string,
    readonly consoleTail: string,
    readonly consolePath: string,
    /** Set when the guest did not come up: why. */
    readonly bootCause?: BootCause,
  ) {
    super(`${message}\n--- console (${consolePath}), last lines ---\n${consoleTail}`);
    this.name = 'VmError';
  }
}
