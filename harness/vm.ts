// A VM is a resource with a lifetime: start (QEMU + SSH handshake), use, stop. QEMU is started
// under `setpriv --pdeathsig SIGKILL`, so it dies with the process that started it even when
// that process is killed outright; every live VM is also killed on exit and on SIGINT/SIGTERM.
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ConsoleLog, type Fault } from './console.js';
import { buildImage, type Image } from './image.js';
import { getKernel, type Kernel } from './kernels.js';
import { fileSafe, resultsRoot } from './paths.js';
import { type Accel, chooseAccel, formatCommand, qemuArgs, timeouts } from './qemu.js';
import { SshSession } from './ssh.js';
import { which } from './tools.js';

export type VmEvent =
  | { type: 'progress'; message: string }
  | { type: 'booting'; kernel: string; accel: Accel; command: string }
  | { type: 'ready'; kernel: string; bootMs: number }
  | { type: 'fault'; kind: Fault; line: string }
  | { type: 'stopped'; kernel: string; code: number | null };

export interface VmOptions {
  /** Catalog name, bzImage path, or a resolved kernel. Default: BPF_HARNESS_KERNEL or the catalog default. */
  kernel?: string | Kernel;
  memoryMiB?: number;
  cpus?: number;
  /** Names the log directory, e.g. the suite. */
  label?: string;
  /** Extra kernel command line. */
  append?: string;
  /** How long to wait for SSH; default scales with the accelerator. */
  bootTimeoutMs?: number;
  onEvent?: (e: VmEvent) => void;
}

export class VmError extends Error {
  constructor(
    message: string,
    readonly consoleTail: string,
    readonly consolePath: string,
  ) {
    super(`${message}\n--- console (${consolePath}), last lines ---\n${consoleTail}`);
    this.name = 'VmError';
  }
}

export { resultsRoot };

const live = new Set<Vm>();
let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const vm of live) vm.kill();
  });
  // Orphaned (the process that started us died without telling us, e.g. SIGKILL to a wrapper
  // such as npm or tsx): take our guests down with us.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent && live.size) {
      for (const vm of live) vm.kill();
      process.exit(1);
    }
  }, 500).unref();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const vm of live) vm.kill();
      process.kill(process.pid, sig);
    });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let counter = 0;

export class Vm {
  ssh!: SshSession;
  bootMs = 0;
  private exited: { code: number | null } | null = null;
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

  /** Boots a guest and returns once an SSH handshake with it succeeded. */
  static async start(opts: VmOptions = {}): Promise<Vm> {
    installExitHooks();
    const emit = opts.onEvent ?? (() => {});
    const progress = (message: string) => emit({ type: 'progress', message });
    const kernel = typeof opts.kernel === 'object' ? opts.kernel : await getKernel(opts.kernel, { onProgress: progress });
    const image = await buildImage(kernel, progress);
    const { accel } = await chooseAccel(kernel.bzImage, progress);
    const logDir = join(resultsRoot(), `${opts.label ?? 'vm'}-${fileSafe(kernel.name)}-${process.pid}-${++counter}`);
    await mkdir(logDir, { recursive: true });
    const qemu = which('qemu-system-x86_64');
    const setpriv = which('setpriv');
    const t = timeouts(accel);
    for (let attempt = 1; ; attempt++) {
      const sshPort = await freePort();
      const args = qemuArgs({
        qemu,
        accel,
        bzImage: kernel.bzImage,
        initramfs: image.initramfs,
        memoryMiB: opts.memoryMiB ?? 1024,
        cpus: opts.cpus ?? 2,
        sshPort,
        append: opts.append,
      });
      const con = new ConsoleLog(join(logDir, 'console.log'));
      emit({ type: 'booting', kernel: kernel.name, accel, command: formatCommand(qemu, args) });
      const started = Date.now();
      const proc = execa(setpriv, ['--pdeathsig', 'SIGKILL', '--', qemu, ...args], {
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'pipe',
        buffer: false,
        reject: false,
      });
      const vm = new Vm(kernel, image, accel, logDir, con, proc, sshPort, emit);
      live.add(vm);
      proc.stdout!.on('data', (d: Buffer) => con.write(d));
      proc.stderr!.on('data', (d: Buffer) => con.write(`[qemu] ${d.toString()}`));
      con.onFault((kind, line) => emit({ type: 'fault', kind, line }));
      try {
        await vm.waitForSsh(opts.bootTimeoutMs ?? t.bootMs);
        vm.bootMs = Date.now() - started;
        emit({ type: 'ready', kernel: kernel.name, bootMs: vm.bootMs });
        return vm;
      } catch (e) {
        vm.kill();
        await vm.waitExit(2_000);
        await con.close();
        // Another process may have taken the port between our check and QEMU's bind.
        if (attempt < 3 && /Could not set up host forwarding rule/.test(con.tail(5))) continue;
        throw e;
      }
    }
  }

  private async waitForSsh(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    let lastErr = '';
    // Readiness is the handshake, but a connection made before the guest's network is up only
    // sits in QEMU's port forward while it retries with back-off, which costs seconds. So the
    // first attempt waits until init says it starts the SSH server (an image whose init never
    // says so is tried after a quarter of the deadline anyway).
    const hint = Date.now() + deadlineMs / 4;
    while (!this.console.guestSays.includes('starting sshd') && Date.now() < hint && this.running && !this.console.fault) {
      await sleep(50);
    }
    while (Date.now() < deadline) {
      if (this.console.fault) throw this.error(`guest ${this.console.fault.kind} during boot: ${this.console.fault.line.trim()}`);
      if (!this.running) throw this.error(`QEMU exited (code ${this.exited?.code}) before the guest answered SSH`);
      try {
        this.ssh = await SshSession.connect({
          port: this.sshPort,
          privateKey: this.image.clientKey,
          hostKey: this.image.hostKey,
          readyTimeoutMs: Math.min(10_000, Math.max(1_000, deadline - Date.now())),
        });
        return;
      } catch (e) {
        lastErr = (e as Error).message;
        await sleep(250);
      }
    }
    throw this.error(`guest did not answer SSH within ${deadlineMs / 1000} s (${this.accel}); last error: ${lastErr}`);
  }

  /** An error that carries the tail of the console, for any failure involving this guest. */
  error(message: string): VmError {
    return new VmError(message, this.console.tail(40), this.console.path);
  }

  private waitExit(ms: number): Promise<boolean> {
    if (!this.running) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.exitWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Kills QEMU at once (safe to call any time, also from an exit handler). */
  kill(): void {
    if (this.running && this.proc.pid) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

  /** Orderly shutdown: power off through SSH, then a hard kill if the guest lingers. */
  async stop(): Promise<void> {
    if (this.running) {
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
