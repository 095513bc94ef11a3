// Starting a guest from its kernel's snapshot (what a snapshot is and why: snapshot.ts): QEMU
// starts waiting for one, with the snapshot's memory mapped copy-on-write; the device state is
// loaded over QMP and the guest resumed where the saved one was (init ready for SSH); it gets an
// SSH connection of its own (ssh-ready.ts), and its first command (bpf-agent --after-restore)
// redoes what must differ between guests: fresh randomness, reseeded, and the host's time.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { shq } from '../base/quote.js';
import type { Kernel } from '../kernels/catalog.js';
import { type BootPlan, bootCommand } from './boot-command.js';
import { type AllowRule, ConsoleLog } from './console.js';
import { freePort, type GuestPlan, startPlan, type VmEvent } from './plan.js';
import type { timeouts } from './qemu.js';
import { Qmp } from './qmp.js';
import { canReseed, type Snapshot } from './snapshot.js';
import type { SshSession } from './ssh.js';
import { connectSsh, type SshTarget } from './ssh-ready.js';

/** A restore that failed because QEMU could not load the snapshot (not because the guest failed after). */
export interface RestoreError extends Error {
  notLoaded?: boolean;
}

/** What a restore needs of its start: the kernel, where its console goes and what it may say, and who hears of it. */
export interface RestoreContext {
  kernel: Kernel;
  logDir: string;
  allow: AllowRule[];
  emit: (e: VmEvent) => void;
}

/** What a restore needs of the guest it launches (a Vm), and what it sets on it. */
export interface RestoringGuest extends SshTarget {
  /** When QEMU was started. */
  readonly started: number;
  readonly running: boolean;
  readonly exited: { code: number | null } | null;
  restoredFrom?: Snapshot;
  clockErrorMs?: number;
  bootMs: number;
  kill(): void;
  waitExit(ms: number): Promise<boolean>;
}

/** Spawns QEMU with this command line and console, and gives its guest. */
export type Launch<V> = (argv: string[], keepable: boolean, con: ConsoleLog, sshPort: number, snapshot: BootPlan['snapshot']) => V;

/**
 * Loads a snapshot into a QEMU started to wait for one (-incoming defer, its memory mapped from
 * the snapshot), then resumes the guest: the save paused it, so a loaded guest waits paused.
 */
export async function loadSnapshot(qmp: Qmp, snap: Snapshot, deadlineMs: number): Promise<void> {
  const until = performance.now() + deadlineMs;
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
  await qmp.execute('migrate-incoming', { uri: `exec:cat ${shq(snap.devices)}` });
  for (;;) {
    const { status } = await qmp.execute<{ status: string }>('query-status');
    if (status !== 'inmigrate') {
      if (status === 'running') return;
      if (status === 'paused' || status === 'prelaunch') {
        await qmp.execute('cont');
        return;
      }
      throw new Error(`the loaded guest is ${status}, not paused`);
    }
    if (performance.now() > until) throw new Error(`QEMU was still loading the snapshot after ${deadlineMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface AfterRestore {
  /** What the agent said: the credit and reseed, then the clock's step. */
  said: string;
  /**
   * At most how far the guest's clock is from the host's after the step: the time between the
   * host reading its clock and the guest's answer that it stepped its own.
   */
  clockErrorMs: number;
}

/**
 * What a restored guest runs first (bpf-agent --after-restore): fresh host randomness, credited
 * and reseeded, and the clock stepped to the host's. The host's time goes over once the agent
 * asks for it, so that the step is off by one trip over SSH at most.
 */
export async function afterRestore(ssh: SshSession, timeoutMs: number): Promise<AfterRestore> {
  const command = `/usr/bin/bpf-agent --after-restore ${randomBytes(64).toString('hex')}`;
  const what = `the restored guest's bpf-agent --after-restore`;
  return new Promise<AfterRestore>((resolve, reject) => {
    let out = '';
    let err = '';
    let sentAt = 0;
    let answeredAt = 0;
    let code: number | null = null;
    let channel: { close: () => void } | undefined;
    const timer = setTimeout(() => {
      channel?.close();
      reject(new Error(`${what} did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    ssh
      .channel(command, (ch) => {
        channel = ch;
        ch.on('data', (d: Buffer) => {
          out += d.toString();
          if (!sentAt && out.includes('time?\n')) {
            const now = performance.timeOrigin + performance.now();
            sentAt = performance.now();
            ch.end(`${BigInt(Math.round(now * 1000)) * 1000n}\n`);
          }
          if (sentAt && !answeredAt && /stepped the clock/.test(out)) answeredAt = performance.now();
        });
        ch.stderr.on('data', (d: Buffer) => (err += d.toString()));
        ch.on('exit', (c: number | null) => (code = c));
        ch.on('close', () => {
          clearTimeout(timer);
          const said = out.replace('time?\n', '').trim();
          if (code !== 0 || !answeredAt) return reject(new Error(`${what} failed (exit ${code}): ${(err || said).trim()}`));
          resolve({ said, clockErrorMs: answeredAt - sentAt });
        });
      })
      .catch((e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
  });
}

/**
 * Starts a guest from a snapshot: QEMU loads it, the guest resumes where the saved one was
 * (init ready for SSH), and its first command redoes what must differ between guests. `launch`
 * spawns QEMU for it (Vm.launch) and gives the guest.
 */
export async function restoreGuest<V extends RestoringGuest>(ctx: RestoreContext, g: GuestPlan & { snapshot: Snapshot }, t: ReturnType<typeof timeouts>, deadlineMs: number, launch: Launch<V>): Promise<V> {
  const snap = g.snapshot;
  const sshPort = await freePort();
  // The snapshot's memory, mapped copy-on-write (share=off): the guest's writes never reach the file.
  const restore = startPlan(g, sshPort, undefined);
  const snapshot = restore.snapshot!;
  const qmpPath = snapshot.qmp;
  const { argv, keepable } = bootCommand(restore);
  const con = new ConsoleLog(join(ctx.logDir, 'console.log'), ctx.allow);
  con.write(`[harness] restored from the guest snapshot ${snap.dir}; the console of the boot it saved is ${snap.bootConsole}\n`);
  const vm = launch(argv, keepable, con, sshPort, snapshot);
  vm.restoredFrom = snap;
  const deadline = vm.started + deadlineMs;
  const exited = () => (vm.running ? null : `QEMU exited (code ${vm.exited?.code}): ${con.tail(3).replace(/\s+/g, ' ').trim()}`);
  let qmp: Qmp | undefined;
  try {
    try {
      qmp = await Qmp.connect(qmpPath, deadlineMs, exited);
      await loadSnapshot(qmp, snap, Math.max(1, deadline - performance.now()));
    } catch (e) {
      // QEMU ends when it cannot load the device state (another QEMU's, a corrupt file); its
      // QMP socket can close a moment before the exit is seen.
      if (vm.running && /QMP/.test((e as Error).message)) await vm.waitExit(2_000);
      const gone = exited();
      throw gone ? Object.assign(new Error(gone), { notLoaded: true }) : e;
    } finally {
      qmp?.close();
    }
    const sshFrom = performance.now();
    const sshErr = await connectSsh(vm, Math.min(deadline, sshFrom + t.sshdMs), () => {
      const why = exited();
      if (why) throw new Error(why);
    });
    if (sshErr !== null) throw new Error(`the restored guest did not answer SSH within ${((performance.now() - sshFrom) / 1000).toFixed(1)} s: ${sshErr}`);
    const redone = await afterRestore(vm.ssh, t.commandMs);
    if (!canReseed(redone.said)) throw new Error(`the restored guest did not reseed its random generator: ${redone.said}`);
    vm.clockErrorMs = redone.clockErrorMs;
    vm.bootMs = Math.round(performance.now() - vm.started);
    ctx.emit({ type: 'ready', kernel: ctx.kernel.name, bootMs: vm.bootMs, from: 'snapshot' });
    return vm;
  } catch (e) {
    vm.kill();
    await vm.waitExit(2_000);
    await con.close();
    throw e;
  }
}
