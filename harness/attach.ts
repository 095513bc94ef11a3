// Attaching every program type the way users do, behind one typed call:
//   const a = await attach(guest, { type: 'cgroup_skb', obj, prog: 'deny', cgroup, direction: 'egress' });
//   ...; await a.detach();
// Types the agent attaches (XDP, cgroup, sockmap, tracing, sockets) go through it; tc and
// lightweight-tunnel programs go through iproute2 in the guest, exactly as a user would type it.
import { inPhase } from './phases.js';
import type { Agent, BpfObject } from './agent.js';
import { shq } from './quote.js';
import type { GuestCommands } from './commands.js';

export interface Attached {
  /** What was attached where, for messages. */
  readonly what: string;
  detach(): Promise<void>;
}

/** A program in an object loaded by the agent. */
interface AgentProg {
  obj: BpfObject;
  prog: string;
}

/** A program in an object file in the guest, loaded by iproute2 (tc, ip). */
interface FileProg {
  /** Object path in the guest (guest.objectPath('x.bpf.c')). */
  object: string;
  /** ELF section of the program, e.g. "tc" or "lwt_out". */
  section: string;
}

export type AttachSpec =
  | ({ type: 'xdp'; ifname: string; netns?: string; mode?: 'generic' | 'native' | 'any' } & AgentProg)
  | ({ type: 'cgroup_skb'; cgroup: string; direction: 'ingress' | 'egress' } & AgentProg)
  | ({ type: 'cgroup_sock'; cgroup: string } & AgentProg)
  | ({ type: 'sock_ops'; cgroup: string } & AgentProg)
  /** `link: true`: a bpf_link (5.7) instead of BPF_PROG_ATTACH; the hook then comes from the program's section. */
  | ({ type: 'cgroup_sock_addr'; cgroup: string; hook: SockAddrHook; link?: boolean } & AgentProg)
  | ({ type: 'sk_skb'; map: string; kind: 'stream_verdict' | 'stream_parser' } & AgentProg)
  | ({ type: 'sk_msg'; map: string } & AgentProg)
  | ({ type: 'kprobe'; func: string; retprobe?: boolean } & AgentProg)
  | ({ type: 'tracepoint'; category: string; name: string } & AgentProg)
  | ({ type: 'kprobe_multi'; syms: string[]; retprobe?: boolean } & AgentProg)
  | ({ type: 'uprobe'; binary: string; func: string; retprobe?: boolean; pid?: number } & AgentProg)
  | ({ type: 'perf_event'; freq: number } & AgentProg)
  | ({ type: 'raw_tracepoint'; name: string } & AgentProg)
  /** tcx (6.6): a link on a device's hook; `before`/`after` another program of the object there. */
  | ({ type: 'tcx'; ifname: string; netns?: string; direction: 'ingress' | 'egress'; before?: string; after?: string } & AgentProg)
  /** A network namespace's socket lookup (5.9), or its flow dissector (a link since 5.7), as a bpf_link. */
  | ({ type: 'sk_lookup' | 'flow_dissector'; netns: string } & AgentProg)
  /** tp_btf, fentry, fexit, lsm: the target is in the program's section (tp_btf/NAME, fentry/FUNC, lsm/HOOK). */
  | ({ type: 'tracing' | 'lsm' } & AgentProg)
  | ({ type: 'sched_cls'; ifname: string; netns?: string; direction: 'ingress' | 'egress' } & FileProg)
  | ({ type: 'sched_act'; ifname: string; netns?: string; direction: 'ingress' | 'egress' } & FileProg)
  | ({
      type: 'lwt_in' | 'lwt_out' | 'lwt_xmit';
      /** Route prefix, e.g. 10.200.1.0/24 or 10.200.1.2/32. */
      prefix: string;
      dev: string;
      netns?: string;
      /** lwt_xmit: bytes of headroom for pushed headers. */
      headroom?: number;
    } & FileProg);

/** The cgroup sock_addr hooks (section cgroup/<hook>) and the agent's attach type of each. */
export const SOCK_ADDR_HOOKS = {
  bind4: 'cgroup_inet4_bind',
  bind6: 'cgroup_inet6_bind',
  connect4: 'cgroup_inet4_connect',
  connect6: 'cgroup_inet6_connect',
  sendmsg4: 'cgroup_udp4_sendmsg',
  sendmsg6: 'cgroup_udp6_sendmsg',
  recvmsg4: 'cgroup_udp4_recvmsg',
  recvmsg6: 'cgroup_udp6_recvmsg',
} as const;
export type SockAddrHook = keyof typeof SOCK_ADDR_HOOKS;

export interface AttachTarget {
  agent: Agent;
  /** Where tc and ip run (default: the agent's `run`). */
  commands?: GuestCommands;
}

const q = shq;
/** A route prefix, which may start with a route type ("local 10.0.0.1/32"): each word quoted. */
const qWords = (s: string) => s.trim().split(/\s+/).map(shq).join(' ');

/** Attaches a program; the result detaches it. Errors carry the kernel's (or tc's) own message. */
export function attach(t: AttachTarget, spec: AttachSpec): Promise<Attached> {
  return inPhase('attach', () => attachNow(t, spec));
}

async function attachNow(t: AttachTarget, spec: AttachSpec): Promise<Attached> {
  switch (spec.type) {
    case 'xdp': {
      const mode = spec.mode ?? 'generic';
      const used = await spec.obj.attachXdp(spec.prog, spec.ifname, { netns: spec.netns, mode });
      return {
        what: `xdp ${spec.prog} on ${spec.ifname} (${used})`,
        detach: async () => {
          await t.agent.call('detach_xdp', { ifname: spec.ifname, netns: spec.netns, mode: used });
        },
      };
    }
    case 'cgroup_skb':
    case 'cgroup_sock':
    case 'sock_ops': {
      const attachType =
        spec.type === 'cgroup_skb'
          ? spec.direction === 'ingress'
            ? 'cgroup_inet_ingress'
            : 'cgroup_inet_egress'
          : spec.type === 'cgroup_sock'
            ? 'cgroup_inet_sock_create'
            : 'cgroup_sock_ops';
      const req = { obj: spec.obj.handle, prog: spec.prog, attachType, cgroup: spec.cgroup } as const;
      await t.agent.call('attach_cgroup', req);
      return { what: `${spec.type} ${spec.prog} on ${spec.cgroup}`, detach: async () => void (await t.agent.call('detach_cgroup', req)) };
    }
    case 'sk_msg': {
      const req = { obj: spec.obj.handle, prog: spec.prog, attachType: 'sk_msg_verdict', map: spec.map } as const;
      await t.agent.call('attach_cgroup', req);
      return { what: `sk_msg ${spec.prog} on ${spec.map}`, detach: async () => void (await t.agent.call('detach_cgroup', req)) };
    }
    case 'cgroup_sock_addr': {
      if (spec.link) {
        const { link } = await t.agent.call('attach_prog', { obj: spec.obj.handle, prog: spec.prog, cgroup: spec.cgroup });
        return { what: `cgroup_sock_addr ${spec.hook} ${spec.prog} on ${spec.cgroup} (bpf_link)`, detach: async () => void (await t.agent.call('detach', { link })) };
      }
      const req = { obj: spec.obj.handle, prog: spec.prog, attachType: SOCK_ADDR_HOOKS[spec.hook], cgroup: spec.cgroup } as const;
      await t.agent.call('attach_cgroup', req);
      return { what: `cgroup_sock_addr ${spec.hook} ${spec.prog} on ${spec.cgroup}`, detach: async () => void (await t.agent.call('detach_cgroup', req)) };
    }
    case 'sk_skb': {
      const req = { obj: spec.obj.handle, prog: spec.prog, attachType: `sk_skb_${spec.kind}`, map: spec.map } as const;
      await t.agent.call('attach_cgroup', req);
      return { what: `sk_skb ${spec.kind} ${spec.prog} on ${spec.map}`, detach: async () => void (await t.agent.call('detach_cgroup', req)) };
    }
    case 'kprobe': {
      const { link } = await t.agent.call('attach_kprobe', { obj: spec.obj.handle, prog: spec.prog, func: spec.func, retprobe: spec.retprobe ?? false });
      return { what: `${spec.retprobe ? 'kretprobe' : 'kprobe'} ${spec.prog} on ${spec.func}`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'kprobe_multi': {
      const { link } = await t.agent.call('attach_kprobe_multi', { obj: spec.obj.handle, prog: spec.prog, syms: spec.syms.join(','), retprobe: spec.retprobe });
      return { what: `${spec.retprobe ? 'kretprobe' : 'kprobe'}.multi ${spec.prog} on ${spec.syms.length} functions`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'uprobe': {
      const { link } = await t.agent.call('attach_uprobe', { obj: spec.obj.handle, prog: spec.prog, binary: spec.binary, func: spec.func, retprobe: spec.retprobe, pid: spec.pid });
      return { what: `${spec.retprobe ? 'uretprobe' : 'uprobe'} ${spec.prog} on ${spec.binary}:${spec.func}`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'tracepoint': {
      const { link } = await t.agent.call('attach_tracepoint', { obj: spec.obj.handle, prog: spec.prog, category: spec.category, name: spec.name });
      return { what: `tracepoint ${spec.prog} on ${spec.category}/${spec.name}`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'perf_event': {
      const { link } = await t.agent.call('attach_perf_event', { obj: spec.obj.handle, prog: spec.prog, freq: spec.freq, event: 'cpu-clock' });
      return { what: `perf_event ${spec.prog} (cpu-clock ${spec.freq} Hz)`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'raw_tracepoint': {
      const { link } = await t.agent.call('attach_prog', { obj: spec.obj.handle, prog: spec.prog, rawTracepoint: spec.name });
      return { what: `raw_tracepoint ${spec.prog} on ${spec.name}`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'tcx': {
      const { link } = await t.agent.call('attach_tcx', {
        obj: spec.obj.handle,
        prog: spec.prog,
        ifname: spec.ifname,
        netns: spec.netns,
        direction: spec.direction,
        before: spec.before,
        after: spec.after,
      });
      return { what: `tcx ${spec.prog} on ${spec.ifname} ${spec.direction}`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'sk_lookup':
    case 'flow_dissector': {
      const { link } = await t.agent.call('attach_prog', { obj: spec.obj.handle, prog: spec.prog, netns: spec.netns });
      return { what: `${spec.type} ${spec.prog} on netns ${spec.netns}`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'tracing':
    case 'lsm': {
      const { link } = await t.agent.call('attach_prog', { obj: spec.obj.handle, prog: spec.prog });
      return { what: `${spec.type} ${spec.prog} (${spec.obj.program(spec.prog).section})`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'sched_cls':
    case 'sched_act': {
      const tc = iproute2('tc', spec.netns);
      // sched_cls: the program is the classifier, in direct-action mode. sched_act: a classifier
      // that matches every packet, with the program as its action.
      const filter = spec.type === 'sched_cls' ? 'bpf direct-action' : 'matchall action bpf';
      await (t.commands ?? t.agent).exec(
        `${tc} qdisc add dev ${q(spec.ifname)} clsact 2>/dev/null || ${tc} qdisc show dev ${q(spec.ifname)} | grep -q clsact\n` +
          `${tc} filter add dev ${q(spec.ifname)} ${spec.direction} ${filter} obj ${q(spec.object)} sec ${q(spec.section)}`,
      );
      return {
        what: `${spec.type} ${spec.section} on ${spec.ifname} ${spec.direction}`,
        detach: async () => void (await (t.commands ?? t.agent).exec(`${tc} filter del dev ${q(spec.ifname)} ${spec.direction}`)),
      };
    }
    case 'lwt_in':
    case 'lwt_out':
    case 'lwt_xmit': {
      // `prefix` may start with a route type, e.g. "local 10.200.249.9/32" (then dev lo; ip puts
      // local routes in the local table).
      const ip = iproute2('ip', spec.netns);
      const hook = spec.type.slice(4);
      const headroom = spec.type === 'lwt_xmit' && spec.headroom ? ` headroom ${spec.headroom}` : '';
      await (t.commands ?? t.agent).exec(`${ip} route add ${qWords(spec.prefix)} encap bpf ${hook} obj ${q(spec.object)} section ${q(spec.section)}${headroom} dev ${q(spec.dev)}`);
      return {
        what: `${spec.type} ${spec.section} on route ${spec.prefix}`,
        detach: async () => void (await (t.commands ?? t.agent).exec(`${ip} route del ${qWords(spec.prefix)} dev ${q(spec.dev)}`)),
      };
    }
  }
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

/** Where iproute2's libbpf loader pins maps that ask for it (`__uint(pinning, LIBBPF_PIN_BY_NAME)`). */
export const TC_PIN_DIR = '/sys/fs/bpf/tc/globals';
export const IP_PIN_DIR = '/sys/fs/bpf/ip/globals';

/** A cgroup v2 directory the harness made; removed (after its processes left) by remove(). */
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

  async remove(): Promise<void> {
    await this.commands.exec(`rmdir ${shq(this.path)} 2>/dev/null || true`);
  }
}

/**
 * Kernel symbol of a system call's entry, which differs between kernels: __x64_sys_NAME since
 * 4.17 (syscall wrappers), sys_NAME / SyS_NAME before.
 */
export async function syscallSymbol(commands: GuestCommands, name: string): Promise<string> {
  const candidates = [`__x64_sys_${name}`, `__se_sys_${name}`, `SyS_${name}`, `sys_${name}`];
  const out = await commands.exec(`grep -E ' (${candidates.join('|')})$' /proc/kallsyms | awk '{print $3}'`);
  const have = new Set(out.split('\n').filter(Boolean));
  const found = candidates.find((c) => have.has(c));
  if (!found) throw new Error(`no kernel symbol for system call ${name} (looked for ${candidates.join(', ')})`);
  return found;
}

