// A VM is a resource with a lifetime: start (restored from its kernel's snapshot, or booted to
// SSH), use, stop. What a start is made of is planned in plan.ts; the wait for a booting guest's
// SSH is ssh-ready.ts, its save as a snapshot snapshot-save.ts, a restore snapshot-restore.ts;
// QEMU dies with the process that started it (reaper.ts); a boot that fails names its cause
// (vm-error.ts, boot-causes.ts).
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { loadAllowlist } from './allowlist.js';
import { keptDir, type KeptGuest } from './kept.js';
import { ConsoleLog } from './console.js';
import type { Image } from './image.js';
import type { Kernel } from '../kernels/catalog.js';
import { resultsRoot } from '../base/config.js';
import { fileSafe } from '../base/paths.js';
import { type BootPlan, bootCommand } from './boot-command.js';
import { dropSnapshot, type Snapshot, sweepBootMemory } from './snapshot.js';
import { type Launch, type RestoreError, restoreGuest } from './snapshot-restore.js';
import { saveGuest } from './snapshot-save.js';
import { type Accel, formatCommand, timeouts } from './qemu.js';
import type { GuestCommands } from './commands.js';
import type { SshSession } from './ssh.js';
import { waitForSsh } from './ssh-ready.js';
import { stuckWindowMs, VcpuMonitor } from './vcpu-time.js';
import { type BootCause, VmError } from './vm-error.js';
import { installExitHooks, live } from './reaper.js';
import { freePort, type GuestPlan, planGuest, startPlan, type VmEvent, type VmOptions } from './plan.js';

export { type BootCause, freePort, type GuestPlan, planGuest, startPlan, type VmEvent, type VmOptions, VmError };

interface LaunchContext {
  kernel: Kernel;
  image: Image;
  accel: Accel;
  logDir: string;
  allow: ReturnType<typeof loadAllowlist>;
  emit: (e: VmEvent) => void;
}

export { resultsRoot };

let counter = 0;
let syncCounter = 0;

export class Vm {
  ssh!: SshSession;
  bootMs = 0;
  /** When QEMU was started (performance.now(): a wall-clock step does not move a deadline). */
  readonly started = performance.now();
  /** The snapshot this guest was started from, if it was not booted. */
  restoredFrom?: Snapshot;
  /** A restored guest: at most how far its clock was from the host's after it was stepped (ms). */
  clockErrorMs?: number;
  private snapshotFiles?: BootPlan['snapshot'];
  /** Handed over to its keeper (keep()): this process no longer ends it. */
  private kept = false;
  /** What the host gives the vCPUs, sampled for as long as QEMU runs. */
  private vcpus?: VcpuMonitor;
  exited: { code: number | null } | null = null;
  private exitWaiters: (() => void)[] = [];

  private constructor(
    readonly kernel: Kernel,
    readonly image: Image,
    readonly accel: Accel,
    readonly logDir: string,
    readonly console: ConsoleLog,
    private readonly proc: ResultPromise,
    readonly sshPort: number,
    private readonly emit: (e: VmEvent) => void,
  ) {
    proc.then(
      (r) => this.onExit(r.exitCode ?? null),
      (e: { exitCode?: number }) => this.onExit(e.exitCode ?? null),
    );
  }

  private onExit(code: number | null) {
    this.exited = { code };
    live.delete(this);
    for (const w of this.exitWaiters.splice(0)) w();
    this.emit({ type: 'stopped', kernel: this.kernel.name, code });
  }

  get timeouts() {
    return timeouts(this.accel);
  }

  /** QEMU's process id. */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.exited === null;
  }

  /**
   * Starts a guest and returns once an SSH handshake with it succeeded: from the kernel's
   * snapshot when there is one (harness/guest/snapshot.ts), else by booting it, which saves a snapshot
   * for the next guest once init is ready for SSH.
   */
  static async start(opts: VmOptions): Promise<Vm> {
    installExitHooks();
    const emit = opts.onEvent ?? (() => {});
    const progress = (message: string) => emit({ type: 'progress', message });
    const g = await planGuest(opts, progress);
    const { kernel, image, probe, accel, key } = g;
    const logDir = join(resultsRoot(), `${opts.label ?? 'vm'}-${fileSafe(kernel.name)}-${process.pid}-${++counter}`);
    await mkdir(logDir, { recursive: true });
    const t = timeouts(accel);
    const allow = loadAllowlist(kernel.name);
    const ctx: LaunchContext = { kernel, image, accel, logDir, allow, emit };

    if (key) await sweepBootMemory();
    if (g.snapshot) {
      try {
        const launch: Launch<Vm> = (argv, keepable, con, sshPort, snapshot) => Vm.launch(ctx, argv, keepable, con, sshPort, snapshot);
        return await restoreGuest(ctx, { ...g, snapshot: g.snapshot }, t, opts.bootTimeoutMs ?? t.bootMs, launch);
      } catch (e) {
        const why = (e as Error).message.split('\n')[0];
        // Only a snapshot QEMU could not load is dropped: a guest that failed later is no verdict on it.
        const dropped = (e as RestoreError).notLoaded;
        progress(`the guest snapshot ${g.snapshot.dir} did not restore (${why}); booting the guest instead${dropped ? ', and saving a new snapshot' : ''}`);
        if (dropped) await dropSnapshot(g.snapshot.key);
      }
    }

    for (let attempt = 1; ; attempt++) {
      const sshPort = await freePort();
      // A boot that may be saved has its memory in a file, which the save copies.
      const boot = startPlan({ ...g, snapshot: null }, sshPort, opts.entropy?.seed === false ? undefined : randomBytes(64).toString('hex'));
      const { argv, keepable } = bootCommand(boot);
      const con = new ConsoleLog(join(logDir, 'console.log'), allow);
      const vm = Vm.launch(ctx, argv, keepable, con, sshPort, boot.snapshot);
      try {
        // Saved once init is ready for SSH, when the kernel can reseed (snapshot-save.ts).
        const save = key ? () => saveGuest(key, { kernel: kernel.name, console: con, files: boot.snapshot!, running: () => vm.running, deadlineMs: vm.timeouts.bootMs, progress }) : undefined;
        await waitForSsh(vm, vm.vcpus, opts.bootTimeoutMs ?? t.bootMs, save);
        vm.bootMs = Math.round(performance.now() - vm.started);
        emit({ type: 'ready', kernel: kernel.name, bootMs: vm.bootMs, from: 'boot' });
        return vm;
      } catch (e) {
        vm.kill();
        await vm.waitExit(2_000);
        await con.close();
        // A KVM verdict read from the cache that the guest then fails under: forget it, so that
        // the next run probes again, and say where the choice came from.
        if (e instanceof VmError && accel === 'kvm' && probe.cachedIn && (e.bootCause === 'no-output' || e.bootCause === 'qemu-exited')) {
          await rm(probe.cachedIn, { force: true });
          e.message = `${e.message}\nThe guest ran under KVM because ${probe.cachedIn} said so; that file is removed and the next run probes the accelerator again.`;
        }
        // Another process may have taken the port between our check and QEMU's bind.
        if (attempt < 3 && /Could not set up host forwarding rule/.test(con.tail(5))) continue;
        throw e;
      }
    }
  }

  /** Spawns QEMU for a guest (a boot or a restore) and wires its console, faults and vCPU watch. */
  private static launch(ctx: LaunchContext, argv: string[], keepable: boolean, con: ConsoleLog, sshPort: number, snapshot?: BootPlan['snapshot']): Vm {
    const { emit } = ctx;
    emit({ type: 'booting', kernel: ctx.kernel.name, accel: ctx.accel, command: formatCommand(argv[0], argv.slice(1)) });
    // A keepable guest's QEMU dies with its keeper, and the keeper with this process (its
    // stdin closes) unless it was told to keep the guest; in its own process group, so that a
    // Ctrl-C of the run does not reach a guest that was kept.
    const proc = keepable
      ? execa(argv[0], argv.slice(1), { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false, reject: false, detached: true })
      : execa(argv[0], argv.slice(1), { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', buffer: false, reject: false });
    const vm = new Vm(ctx.kernel, ctx.image, ctx.accel, ctx.logDir, con, proc, sshPort, emit);
    vm.snapshotFiles = snapshot;
    live.add(vm);
    proc.stdout!.on('data', (d: Buffer) => con.write(d));
    proc.stderr!.on('data', (d: Buffer) => con.write(`[qemu] ${d.toString()}`));
    con.onFault((kind, line) => emit({ type: 'fault', kind, line }));
    // A stall or lockup is judged against what the host gave the vCPUs over the time it names.
    const vcpus = proc.pid ? new VcpuMonitor(proc.pid) : undefined;
    vm.vcpus = vcpus;
    con.excuse = (kind, line) => {
      const s = vcpus?.starvation(stuckWindowMs(line));
      if (s?.starved) emit({ type: 'progress', message: `guest ${kind} while the host starved it, not counted as a kernel fault: ${s.text}` });
      return s ?? null;
    };
    const done = () => {
      vcpus?.stop();
      vm.dropBootMemory();
      if (snapshot) rm(snapshot.qmp, { force: true }).catch(() => {});
    };
    proc.then(done, done);
    return vm;
  }

  /** Unlinks a booting guest's shared memory file (/dev/shm): QEMU's mapping lives on without the name. */
  dropBootMemory(): void {
    const f = this.snapshotFiles?.memoryFile;
    if (f?.shared) rmSync(f.path, { force: true });
  }

  /**
   * Waits until everything the kernel printed so far is in the console log: a marker written to
   * /dev/kmsg comes back on the serial console after every earlier message. `before` is shell
   * lines run in the same command (over SSH, or `via` the agent) ahead of the marker (e.g. a
   * reset), or a function that writes the marker itself (the agent's reset does). False when the
   * marker did not come.
   */
  async syncConsole(before: string | ((mark: string) => Promise<unknown>) = 'true', timeoutMs = 5_000, via: GuestCommands = this.ssh): Promise<boolean> {
    const mark = `bpf-harness-sync-${process.pid}-${++syncCounter}`;
    const seen = this.console.waitForLine((l) => l.includes(mark), timeoutMs);
    if (typeof before === 'function') await before(mark);
    else await via.exec(`${before}\necho '${mark}' > /dev/kmsg`);
    return seen;
  }

  /** An error that carries the tail of the console, for any failure involving this guest. */
  error(message: string, bootCause?: BootCause): VmError {
    return new VmError(message, this.console.tail(40), this.console.path, bootCause);
  }

  /** Resolves true once QEMU has exited, false after `ms`. */
  waitExit(ms: number): Promise<boolean> {
    if (!this.running) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.exitWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /**
   * Leaves the guest running after this process ends (a keepable guest only): its keeper takes
   * over the console log and registers the guest (harness/guest/kept.ts) until it is stopped or
   * `maxSeconds` pass. This Vm no longer owns it: kill() and stop() leave it alone.
   */
  async keep(info: Omit<KeptGuest, 'registry' | 'keeperPid' | 'qemuPid'>): Promise<KeptGuest> {
    if (!this.proc.stdin) throw new Error('this guest was not started keepable (BPF_HARNESS_KEEP_ON_FAIL=1 or keepable: true)');
    await mkdir(keptDir(), { recursive: true });
    const kept: KeptGuest = { ...info, registry: join(keptDir(), `${info.id}.json`) };
    const acked = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 5_000);
      this.proc.stdout!.on('data', (d: Buffer) => {
        if (/^kept$/m.test(d.toString())) {
          clearTimeout(t);
          resolve(true);
        }
      });
    });
    this.proc.stdin.write(`keep ${JSON.stringify(kept)}\n`);
    if (!(await acked)) throw new Error('the guest\'s keeper did not confirm keeping it');
    this.kept = true;
    live.delete(this);
    return kept;
  }

  /** Kills QEMU at once (safe to call any time, also from an exit handler). */
  kill(): void {
    if (this.running && this.proc.pid && !this.kept) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

  /**
   * Ends a guest whose state nothing needs any more (its memory is private, it has no disk): QEMU
   * is killed at once instead of waiting for the guest to power off.
   */
  async discard(): Promise<void> {
    this.kill();
    await this.waitExit(5_000);
    this.ssh?.close();
    await this.console.close();
  }

  /** Orderly shutdown: power off through SSH, then a hard kill if the guest lingers. */
  async stop(): Promise<void> {
    if (this.running && !this.kept) {
      try {
        this.ssh?.channel('poweroff -f').catch(() => {});
      } catch {
        /* connection already down */
      }
      if (!(await this.waitExit(this.timeouts.shutdownMs))) this.kill();
      await this.waitExit(5_000);
    }
    this.ssh?.close();
    await this.console.close();
  }
}
