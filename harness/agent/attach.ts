// Attaching every program type the way users do, behind one typed call:
//   const a = await attach(guest, { type: 'cgroup_skb', obj, prog: 'deny', cgroup, direction: 'egress' });
//   ...; await a.detach();
// Types the agent attaches (XDP, cgroup, sockmap, tracing, socket filters, struct_ops) go through
// it; tc and lightweight-tunnel programs go through iproute2 in the guest, exactly as a user would
// type it. The result is typed by the spec's type (AttachResult): some types carry what the
// kernel reports about the attachment (XDP's mode and program id, a probe's tracefs event, the
// perf events opened), read from the kernel, not from the request. Each type's spec and attach
// are its declaration's, in types/ (types/registry.ts lists them).
import { inPhase } from '../base/phases.js';
import type { GuestCommands } from '../guest/commands.js';
import type { Attached, AttachTarget } from './types/declare.js';
import { REGISTRY, type Declaration } from './types/registry.js';

export { iproute2, type Attached, type AttachTarget } from './types/declare.js';
export type { XdpAttached } from './types/xdp.js';
export type { ProbeAttached } from './types/kprobe.js';
export type { PerfEventAttached } from './types/perf_event.js';
export type { SocketAttached } from './types/socket_filter.js';
export { SOCK_ADDR_HOOKS, type SockAddrHook } from './types/cgroup_sock_addr.js';

/** The attach functions of the declarations that have one. */
type Attacher = Extract<Declaration, { attach: unknown }>['attach'];

/** Every spec attach() takes: the second parameter of each declaration's attach. */
export type AttachSpec = Parameters<Attacher>[1];

/** What the attach that takes spec `S` gives back. */
type ResultOf<F, S> = F extends (t: AttachTarget, spec: infer P) => Promise<infer R> ? (S extends P ? R : never) : never;

/** What attach() gives back for a spec: Attached, with what the kernel reports for some types. */
export type AttachResult<S extends AttachSpec> = S extends unknown ? ResultOf<Attacher, S> : never;

/** Each spec type's declaration (`spec`, else the type's name). */
const BY_SPEC = new Map<string, Extract<Declaration, { attach: unknown }>>(REGISTRY.flatMap((d) => ('attach' in d ? [['spec' in d ? d.spec : d.name, d] as const] : [])));

/** Attaches a program; the result detaches it. Errors carry the kernel's (or tc's) own message. */
export function attach<S extends AttachSpec>(t: AttachTarget, spec: S): Promise<AttachResult<S>> {
  return inPhase('attach', () => attachNow(t, spec) as Promise<AttachResult<S>>);
}

async function attachNow(t: AttachTarget, spec: AttachSpec): Promise<Attached> {
  const d = BY_SPEC.get(spec.type);
  if (!d) throw new Error(`attach: no program type takes a spec of type ${spec.type}`);
  return d.attach(t, spec as never);
}

/** Where iproute2's libbpf loader pins maps that ask for it (`__uint(pinning, LIBBPF_PIN_BY_NAME)`). */
export const TC_PIN_DIR = '/sys/fs/bpf/tc/globals';
export const IP_PIN_DIR = '/sys/fs/bpf/ip/globals';

/**
 * Kernel symbol of a system call's entry, which differs between kernels: __x64_sys_NAME since
 * 4.17 (syscall wrappers), sys_NAME / SyS_NAME before.
 */
export async function syscallSymbol(commands: GuestCommands, name: string): Promise<string> {
  const candidates = [`__x64_sys_${name}`, `__se_sys_${name}`, `SyS_${name}`, `sys_${name}`];
  // Fixed strings: busybox's grep -E takes 0.8 s over the 90k lines of 6.1's kallsyms under TCG, -F 0.2 s.
  const out = await commands.exec(`grep -F ${candidates.map((c) => `-e ' ${c}'`).join(' ')} /proc/kallsyms`);
  const have = new Set(out.split('\n').map((l) => l.split(/\s+/)[2]));
  const found = candidates.find((c) => have.has(c));
  if (!found) throw new Error(`no kernel symbol for system call ${name} (looked for ${candidates.join(', ')})`);
  return found;
}
