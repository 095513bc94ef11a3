// Cgroup v2 directories the harness makes for a test (useCgroup in harness/suite/fixtures.ts makes one
// per test and removes it afterwards).
import type { GuestCommands } from '../guest/commands.js';
import { shq } from '../base/quote.js';

/** A cgroup v2 directory the harness made; removed (after its processes left) by remove(). useCgroup makes one per test. */
export class Cgroup {
  static readonly ROOT = '/sys/fs/cgroup';
  private constructor(
    private readonly commands: GuestCommands,
    readonly path: string,
  ) {}

  static async create(commands: GuestCommands, name: string): Promise<Cgroup> {
    if (!/^[\w.-]+$/.test(name)) throw new Error(`cgroup name "${name}": letters, digits, '.', '_' and '-' only`);
    const path = `${Cgroup.ROOT}/bh-${name}`;
    await commands.exec(`mkdir -p ${shq(path)}`);
    return new Cgroup(commands, path);
  }

  /** Removes the directory (gone already is fine); fails, with the processes in it, when the kernel keeps it. */
  async remove(): Promise<void> {
    const p = shq(this.path);
    await this.commands.exec(`rmdir ${p} 2>/dev/null; test ! -d ${p} || { echo "cgroup ${this.path} could not be removed; processes in it: $(cat ${p}/cgroup.procs | tr '\\n' ' ')" >&2; exit 1; }`);
  }
}
