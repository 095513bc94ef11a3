// The guest of one suite file, as its hooks see it: the VM and its agent while there is one, the
// suite's compiled objects, and the options the file declared. useGuest (testing.ts) wires the
// hooks; bring-up.ts, guest-pool.ts, keep.ts and hygiene.ts work on this.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Agent } from '../agent/agent.js';
import { settings } from '../base/config.js';
import { DEFAULT_MEMORY_MIB } from '../guest/boot-command.js';
import type { Vm } from '../guest/vm.js';
import type { ProgramTypeName } from './progtypes.js';

export interface GuestOptions {
  /** Suite name (the folder under suites/), used in log directory names. */
  suite: string;
  /** BPF sources relative to the suite's folder, compiled and copied to /run/bpf in the guest. */
  sources?: string[];
  /** The test file's own URL (import.meta.url), to find the sources next to it. */
  from: string;
  /**
   * The program type the suite exercises (default: the suite's name, when it names one): on a
   * kernel older than the type, every test skips with the reason.
   */
  type?: ProgramTypeName;
  memoryMiB?: number;
  /**
   * Added to the guest's kernel command line (after BPF_HARNESS_APPEND), e.g. `lsm=…,bpf`. Suite
   * files share a guest only with files that ask for the same command line.
   */
  append?: string;
}

export class GuestSlot {
  vm?: Vm;
  agent?: Agent;
  /** The suite's objects, compiled once per file into a directory of the host. */
  staging?: { dir: string; files: string[] };
  readonly suiteDir: string;

  constructor(readonly opts: GuestOptions) {
    this.suiteDir = dirname(fileURLToPath(opts.from));
  }

  /** Every suite file of a run boots the same kernel (BPF_HARNESS_KERNEL, set by the CLI). */
  kernelName(): string {
    return settings().kernel ?? 'default';
  }

  /** Which idle guests this file can take over: same kernel, memory and command line. */
  poolKey(): string {
    return `${this.kernelName()}:${this.opts.memoryMiB ?? DEFAULT_MEMORY_MIB}:${this.opts.append ?? ''}`;
  }

  /** The VM and agent are up and answering. */
  get live(): boolean {
    return Boolean(this.vm?.running && this.agent && !this.agent.exited);
  }

  need<T>(v: T | undefined, what: string): T {
    if (v === undefined) throw new Error(`${what} is not available: the guest did not start (see the error of the suite's setup)`);
    return v;
  }

  /** Ends a guest that was clean and is not needed (--pristine): killed, not powered off. */
  async discard(): Promise<void> {
    this.agent?.close();
    this.agent = undefined;
    await this.vm?.discard();
    this.vm = undefined;
  }

  async tearDown(): Promise<void> {
    this.agent?.close();
    this.agent = undefined;
    await this.vm?.stop();
    this.vm = undefined;
  }
}
