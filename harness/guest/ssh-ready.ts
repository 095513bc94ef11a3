// From QEMU's start to a guest that answers SSH: the wait for a booting guest's SSH server, which
// fails as soon as the console shows that none will answer, with the cause (vm-error.ts's
// BootCause, worded by boot-causes.ts); and the SSH connection itself, with the guest's host key
// checked, which a restored guest makes too (snapshot-restore.ts).
import { type ConsoleLog, FATAL_FAULTS, type Fault } from './console.js';
import type { Image } from './image.js';
import type { Kernel } from '../kernels/catalog.js';
import type { Accel, timeouts } from './qemu.js';
import { SshSession } from './ssh.js';
import { vcpuState, type VcpuMonitor } from './vcpu-time.js';
import type { BootCause, VmError } from './vm-error.js';
import { measureSilence, noNetworkMessage, silenceNote } from './boot-causes.js';

/** What an SSH connection needs of a guest (a Vm), and where the session goes (its `ssh`). */
export interface SshTarget {
  readonly sshPort: number;
  readonly image: Image;
  readonly timeouts: ReturnType<typeof timeouts>;
  ssh: SshSession;
}

/** What the wait for SSH needs of a booting guest (a Vm). */
export interface BootingGuest extends SshTarget {
  /** When QEMU was started. */
  readonly started: number;
  readonly kernel: Kernel;
  readonly accel: Accel;
  readonly console: ConsoleLog;
  readonly running: boolean;
  readonly exited: { code: number | null } | null;
  error(message: string, bootCause?: BootCause): VmError;
  dropBootMemory(): void;
}

/** Faults that end a boot at once: the kernel is dead or cannot be trusted. */
const BOOT_ENDING: ReadonlySet<Fault> = new Set([...FATAL_FAULTS, 'oops', 'bug', 'kasan']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for a completed SSH handshake, and fails as soon as the console shows that none will
 * come, with the cause: a kernel that prints nothing, a panic or fault, an init that never
 * starts the SSH server, a guest without network, or an SSH server that never answers. `vcpus`
 * is what the host gave the guest's vCPUs; `save`, when given, saves the guest once init is
 * ready for SSH, before the first connection.
 */
export async function waitForSsh(vm: BootingGuest, vcpus: VcpuMonitor | undefined, deadlineMs: number, save?: () => Promise<void>): Promise<void> {
  const started = vm.started;
  const deadline = started + deadlineMs;
  const t = vm.timeouts;
  const secs = (ms: number) => `${Math.round(ms / 100) / 10} s`;
  const sshdAt = () => vm.console.saidAt.get('starting sshd');
  let hungJudgedAt = 0;
  const check = () => {
    // A warning, UBSAN or lockdep report does not stop a boot; the guest's first user sees it.
    const fault = vm.console.faults.find((f) => BOOT_ENDING.has(f.kind));
    if (fault) {
      const cause = fault.kind === 'panic' ? 'panic' : 'fault';
      const lines = fault.report.slice(0, fault.kind === 'panic' ? 12 : 20).join('\n');
      throw vm.error(`guest ${fault.kind} during boot: ${fault.line.trim()}\n${lines}`, cause);
    }
    if (!vm.running) {
      // With -no-reboot, a CPU reset (a triple fault) ends QEMU with code 0.
      const early = /Booting the kernel\.\s*$/.test(vm.console.tail(3)) ? ': the kernel reset the machine right after the decompressor handed over (a triple fault in early boot; a toolchain the tree predates can cause it)' : '';
      throw vm.error(`QEMU exited (code ${vm.exited?.code}) before the guest answered SSH${early}`, 'qemu-exited');
    }
    const now = performance.now();
    if (!vm.console.guestLines && now - started > Math.min(t.silentMs, deadlineMs)) {
      throw vm.error(`the kernel printed nothing on the serial console in ${secs(now - started)}: is it an x86_64 bzImage with a serial console (CONFIG_SERIAL_8250_CONSOLE)?`, 'no-output');
    }
    // Silent and halted before init: hung (BootCause 'hung'). Judged at most once a second.
    const last = vm.console.lastGuestLine;
    if (!vm.console.initRan && !vm.console.guestSays.length && last && now - last.at > t.hungMs && now - hungJudgedAt >= 1_000) {
      hungJudgedAt = now;
      const q = measureSilence(vm.console, vcpus);
      if (q?.vcpus && vcpuState(q.vcpus) === 'idle') throw vm.error(`the kernel hung before it ran init${silenceNote(q)}`, 'hung');
    }
    // init says what is wrong with the network before "starting sshd": by then it has said all of it.
    if (sshdAt() !== undefined) {
      const said = vm.console.guestSays.filter((l) => l.startsWith('no network: '));
      if (said.length) throw vm.error(noNetworkMessage(vm.kernel, said), 'no-network');
    }
  };
  // Wakes as soon as init says something, or after 50 ms to look for faults and QEMU's exit.
  const nextSay = () => vm.console.waitForLine((l) => l.includes('bpf-harness: '), 50);
  // A connection made before the guest's network is up only sits in QEMU's port forward while
  // it retries with back-off, which costs seconds: the first attempt waits for init's word.
  while (sshdAt() === undefined) {
    check();
    if (performance.now() >= deadline) {
      throw vm.error(
        `init never started the SSH server within ${secs(deadlineMs)}: the kernel ${vm.console.guestSays.length ? 'ran init, which stopped before "starting sshd"' : 'did not reach the image\'s init (no "bpf-harness:" line on the console)'}${silenceNote(measureSilence(vm.console, vcpus))}`,
        'no-sshd',
      );
    }
    await nextSay();
  }
  // Once the server is started, a guest that can answer does so within seconds.
  const sshdDeadline = Math.min(deadline, sshdAt()! + t.sshdMs);
  // init says "ready for ssh" once the server listens; a connection made before that is reset
  // by the guest. An init that never says it (a test's own) is tried from 2 s on.
  const tryFrom = sshdAt()! + 2_000;
  while (!vm.console.saidAt.has('ready for ssh') && performance.now() < Math.min(tryFrom, sshdDeadline)) {
    check();
    await nextSay();
  }
  // Saved before the first connection: no SSH state of this guest's is in the snapshot.
  if (save && vm.console.saidAt.has('ready for ssh')) {
    check();
    await save();
  }
  // Saved or not, the memory file's name is not needed any more (QEMU keeps its mapping).
  vm.dropBootMemory();
  const lastErr = await connectSsh(vm, sshdDeadline, check);
  if (lastErr === null) return;
  check();
  const seeded = vm.console.guestSays.find((l) => l.startsWith('entropy:'));
  // "fast init done" (crng_init 1) is not enough: getrandom() blocks until "crng init done".
  const crng = /crng init done/.test(vm.console.tail(400));
  const hint = crng
    ? 'the random pool was initialised, so look at the SSH server itself'
    : `hint: the kernel never said "random: crng init done", so its random pool is not initialised and the SSH server blocks waiting for random bytes (${seeded ? `init said "${seeded}"` : 'init did not seed it'})`;
  throw vm.error(
    `the SSH server was started ${secs(sshdAt()! - started)} into the boot but did not answer within ${secs(performance.now() - sshdAt()!)} (${vm.accel}); last error: ${lastErr}; ${hint}`,
    'sshd-silent',
  );
}

/**
 * Connects over SSH, with the guest's host key checked, retrying until `deadline`; `check`
 * throws when the guest can no longer answer. Null once connected (the session is `vm.ssh`),
 * else the last error.
 */
export async function connectSsh(vm: SshTarget, deadline: number, check: () => void): Promise<string | null> {
  const t = vm.timeouts;
  let lastErr = `no attempt before the deadline`;
  while (performance.now() < deadline) {
    check();
    try {
      vm.ssh = await SshSession.connect({
        port: vm.sshPort,
        privateKey: vm.image.clientKey,
        hostKey: vm.image.hostKey,
        readyTimeoutMs: Math.min(10_000, Math.max(1_000, deadline - performance.now())),
        keepaliveMs: t.keepaliveMs,
      });
      vm.ssh.commandTimeoutMs = t.commandMs;
      return null;
    } catch (e) {
      lastErr = (e as Error).message;
      await sleep(50);
    }
  }
  return lastErr;
}
