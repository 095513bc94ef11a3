// CO-RE programs (fentry, fexit, tp_btf, lsm): compiled against a vmlinux.h generated from the
// guest kernel's own BTF (/sys/kernel/btf/vmlinux), and loaded by the agent, whose libbpf relocates
// them against that same BTF. The header is cached by the BTF's content, outside the repo (cache
// area `vmlinux-h`): a kernel's header is made once, from the first guest that runs it.
//
//   const obj = await loadCore(guest, 'fentry.bpf.c');   // after requireFeature(…, { btf: true })
import { writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import type { Agent, BpfObject } from '../agent/agent.js';
import { cached, contentKey } from '../base/cache.js';
import { compileBpf } from './compile.js';
import { inPhase } from '../base/phases.js';
import type { SshSession } from '../guest/ssh.js';
import { which } from '../base/tools.js';

/** Where CO-RE objects go in the guest (next to the suite's other objects). */
export const GUEST_CORE_DIR = '/run/bpf/core';

interface GuestLike {
  ssh: SshSession;
  agent: Agent;
}

const headers = new WeakMap<SshSession, Promise<string>>();

/** The directory holding vmlinux.h for the guest's kernel (generated on the host with bpftool from the guest's BTF). */
export function vmlinuxHeaderDir(guest: GuestLike): Promise<string> {
  let p = headers.get(guest.ssh);
  if (!p) {
    p = (async () => {
      const sum = (await guest.ssh.exec('sha256sum /sys/kernel/btf/vmlinux')).split(/\s+/)[0];
      if (!/^[0-9a-f]{64}$/.test(sum)) throw new Error(`the guest has no readable /sys/kernel/btf/vmlinux (sha256sum said "${sum}")`);
      const { stdout: version } = await execa(which('bpftool'), ['version']);
      const { dir } = await cached({
        area: 'vmlinux-h',
        key: contentKey('vmlinux-h-v1', sum, version),
        build: async (tmp) => {
          const blob = Buffer.from((await guest.ssh.exec('base64 /sys/kernel/btf/vmlinux', { timeoutMs: 120_000 })).replace(/\s+/g, ''), 'base64');
          const btf = join(tmp, 'vmlinux.btf');
          await writeFile(btf, blob);
          const { stdout } = await execa(which('bpftool'), ['btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 1 << 30 });
          await writeFile(join(tmp, 'vmlinux.h'), stdout);
          return { btfSha256: sum };
        },
      });
      return dir;
    })();
    headers.set(guest.ssh, p);
    p.catch(() => headers.delete(guest.ssh));
  }
  return p;
}

/**
 * Compiles a CO-RE source of the suite (a path; it includes "vmlinux.h") against the guest
 * kernel's vmlinux.h, copies the object in and loads it.
 */
export async function loadCore(guest: GuestLike, source: string): Promise<BpfObject> {
  const obj = await inPhase('load', async () => {
    const dir = await vmlinuxHeaderDir(guest);
    return compileBpf(source, [`-I${dir}`]);
  });
  await guest.ssh.put(join(obj.path, '..'), [basename(obj.path)], GUEST_CORE_DIR);
  return guest.agent.load(`${GUEST_CORE_DIR}/${obj.name}`);
}
