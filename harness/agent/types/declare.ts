// What a program type's module declares (one module per type, or per family of types that share
// their attach code): its name, the first kernel with it and how the kernel is probed for it (what
// suite/progtypes.ts lists as PROGRAM_TYPES), its attach spec and what attach() does with one.
// registry.ts lists the declarations; attach.ts and suite/progtypes.ts are made from that list.
import { shq } from '../../base/quote.js';
import type { GuestCommands } from '../../guest/commands.js';
import type { Agent, BpfObject } from '../agent.js';
import type { Ops } from '../protocol.js';

export interface Attached {
  /** What was attached where, for messages. */
  readonly what: string;
  detach(): Promise<void>;
}

export interface AttachTarget {
  agent: Agent;
  /** Where tc and ip run (default: the agent's `run`). */
  commands?: GuestCommands;
}

/** A program in an object loaded by the agent. */
export interface AgentProg {
  obj: BpfObject;
  prog: string;
}

/** A program in an object file in the guest, loaded by iproute2 (tc, ip). */
export interface FileProg {
  /** Object path in the guest (guest.objectPath('x.bpf.c')). */
  object: string;
  /** ELF section of the program, e.g. "tc" or "lwt_out". */
  section: string;
}

export interface ProgramTypeDeclaration {
  /** The program type's name: its PROGRAM_TYPES key, and its suite's folder (suites/<name>/). */
  readonly name: string;
  /** Oldest kernel with this program type and the attach point the harness uses. */
  readonly since: string;
  /** How users attach it, as the harness does (PROGRAM_TYPES' `attach`). */
  readonly how: string;
  /**
   * How harness/suite/probe.ts asks the kernel for the type (libbpf's program type name, config
   * symbols, BTF, an active LSM): a suite of a type with a probe skips with what the kernel lacks
   * instead of by version alone.
   */
  readonly probe?: { progType?: string; attachType?: string; mapType?: string; config?: string[]; btf?: boolean; lsm?: string };
  /** The `type` of the attach spec that `attach` takes, where it is not `name` (fentry's is `tracing`). */
  readonly spec?: string;
  /**
   * What attach() does with a spec of this type; the spec's type is its second parameter's. None
   * where users attach the type through a socket of the agent's (sk_reuseport, af_xdp).
   */
  readonly attach?: (t: AttachTarget, spec: never) => Promise<Attached>;
}

/** A program type's declaration, its literal types kept (PROGRAM_TYPES and AttachSpec are made of them). */
export const programType = <const D extends ProgramTypeDeclaration>(d: D): D => d;

/** Where tc and ip run: the target's commands, else the agent's `run`. */
export const commandsOf = (t: AttachTarget): GuestCommands => t.commands ?? t.agent;

/** Attaches with the agent's `attach_cgroup` (to a cgroup or a sockmap); detach() sends `detach_cgroup` with the same request. */
export async function attachCgroup(t: AttachTarget, req: Ops['attach_cgroup']['req'], what: string): Promise<Attached> {
  await t.agent.call('attach_cgroup', req);
  return { what, detach: async () => void (await t.agent.call('detach_cgroup', req)) };
}

/** A bpf_link the agent made (`{ link }` of an attach op); detach() closes it. */
export const linked = (t: AttachTarget, link: number, what: string): Attached => ({ what, detach: async () => void (await t.agent.call('detach', { link })) });

/** The agent's ops that answer with a bpf_link it made (`{ link }`). */
type LinkOp = { [K in keyof Ops]: Ops[K]['res'] extends { link: number } ? K : never }[keyof Ops];

/** Sends an attach op that answers with a bpf_link; detach() closes the link. */
export async function attachLinked<K extends LinkOp>(t: AttachTarget, op: K, req: Ops[K]['req'], what: string): Promise<Attached> {
  const { link } = (await t.agent.call(op, req)) as { link: number };
  return linked(t, link, what);
}

/**
 * The command that runs iproute2's `ip` or `tc` in a network namespace so that the maps it pins
 * land in the guest's bpffs: not `ip netns exec` (nor `ip -n`, `tc -n`), which remount /sys in a
 * private mount namespace where iproute2 mounts a bpffs of its own that vanishes when it exits.
 * nsenter --net changes only the network namespace. The full path, because busybox's nsenter
 * would otherwise run busybox's own cut-down `ip`/`tc` applet.
 */
export function iproute2(tool: 'ip' | 'tc', netns?: string): string {
  return `${netns ? `nsenter ${shq(`--net=/var/run/netns/${netns}`)} ` : ''}/usr/bin/${tool}`;
}
