// Attaching every program type the way users do, behind one typed call:
//   const a = await attach(guest, { type: 'cgroup_skb', obj, prog: 'deny', cgroup, direction: 'egress' });
//   ...; await a.detach();
// Types the agent attaches (XDP, cgroup, sockmap, tracing, socket filters, struct_ops) go through
// it; tc and lightweight-tunnel programs go through iproute2 in the guest, exactly as a user would
// type it. The result is typed by the spec's type (AttachResult): some types carry what the
// kernel reports about the attachment (XDP's mode and program id, a probe's tracefs event, the
// perf events opened), read from the kernel, not from the request.
import { inPhase } from '../base/phases.js';
import type { Agent, BpfObject } from './agent.js';
import { shq } from '../base/quote.js';
import type { GuestCommands } from '../guest/commands.js';

export interface Attached {
  /** What was attached where, for messages. */
  readonly what: string;
  detach(): Promise<void>;
}

/** XDP: what the kernel reports on the device afterwards (netlink, through `ip -j link`). */
export interface XdpAttached extends Attached {
  readonly mode: 'generic' | 'native' | 'offload';
  /** The id of the program the kernel runs there. */
  readonly progId: number;
}

/** kprobe, uprobe: how the kernel made the probe's event. */
export interface ProbeAttached extends Attached {
  /**
   * The event was made through tracefs (the legacy path, kernels before 4.17): kprobe_events or
   * uprobe_events lists an event for the target that it did not list before the attach. Through
   * the kprobe/uprobe PMU the kernel lists none.
   */
  readonly legacy: boolean;
}

/** perf_event: one sampling event per CPU. */
export interface PerfEventAttached extends Attached {
  /** How many perf events the attach opened, as the agent's fd table in /proc lists them. */
  readonly cpus: number;
}

/** socket_filter: a socket made for the filter, with it attached (SO_ATTACH_BPF). */
export interface SocketAttached extends Attached {
  /** The agent's socket handle (sock_stats, sock_read ...); detach() closes it. */
  readonly sock: number;
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
  /** A new socket with the filter on it: AF_PACKET bound to `ifname`, or UDP bound to `addr`:`port`. */
  | ({ type: 'socket_filter'; netns?: string; socket: { kind: 'packet'; ifname: string } | { kind: 'udp'; port: number; addr?: string } } & AgentProg)
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
  /** struct_ops (5.6): registers a struct_ops map of the object (e.g. a TCP congestion control) with the kernel. */
  | { type: 'struct_ops'; obj: BpfObject; map: string }
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

/** What attach() gives back for a spec: Attached, with what the kernel reports for some types. */
export type AttachResult<S extends AttachSpec> = S extends { type: 'xdp' }
  ? XdpAttached
  : S extends { type: 'kprobe' | 'uprobe' }
    ? ProbeAttached
    : S extends { type: 'perf_event' }
      ? PerfEventAttached
      : S extends { type: 'socket_filter' }
        ? SocketAttached
        : Attached;

/** Attaches a program; the result detaches it. Errors carry the kernel's (or tc's) own message. */
export function attach<S extends AttachSpec>(t: AttachTarget, spec: S): Promise<AttachResult<S>> {
  return inPhase('attach', () => attachNow(t, spec) as Promise<AttachResult<S>>);
}

/** Lines of a tracefs file (kprobe_events, uprobe_events); empty when tracefs has no such file. */
async function tracefsLines(c: GuestCommands, file: string): Promise<string[]> {
  const out = await c.exec(`cat /sys/kernel/tracing/${file} 2>/dev/null || cat /sys/kernel/debug/tracing/${file} 2>/dev/null || true`);
  return out.split('\n').filter(Boolean);
}

/** Perf event fds the agent holds ($PPID: the agent forks the shell that runs this). */
async function agentPerfEvents(c: GuestCommands): Promise<number> {
  return Number((await c.exec("ls -l /proc/$PPID/fd | grep -c 'anon_inode:\\[perf_event\\]' || true")).trim());
}

/** The kernel's XDP mode and program id on a device (IFLA_XDP, through ip's JSON). */
async function xdpOnDevice(c: GuestCommands, ifname: string, netns?: string): Promise<{ mode: XdpAttached['mode'] | 'none'; progId: number }> {
  const [link] = JSON.parse(await c.exec(`${iproute2('ip', netns)} -j link show dev ${q(ifname)}`)) as { xdp?: { mode: number; prog?: { id: number } } }[];
  const mode = ({ 1: 'native', 2: 'generic', 3: 'offload' } as const)[link.xdp?.mode ?? 0] ?? 'none';
  return { mode, progId: link.xdp?.prog?.id ?? 0 };
}

async function attachNow(t: AttachTarget, spec: AttachSpec): Promise<Attached> {
  const c = t.commands ?? t.agent;
  switch (spec.type) {
    case 'socket_filter': {
      const { sock } = await t.agent.call('sock_open', { netns: spec.netns, ...spec.socket, obj: spec.obj.handle, prog: spec.prog });
      const where = spec.socket.kind === 'packet' ? `packet socket on ${spec.socket.ifname}` : `udp socket on port ${spec.socket.port}`;
      const r: SocketAttached = { what: `socket_filter ${spec.prog} on a ${where}`, sock, detach: async () => void (await t.agent.call('sock_close', { sock })) };
      return r;
    }
    case 'xdp': {
      const used = await spec.obj.attachXdp(spec.prog, spec.ifname, { netns: spec.netns, mode: spec.mode ?? 'generic' });
      const seen = await xdpOnDevice(c, spec.ifname, spec.netns);
      if (seen.mode === 'none') throw new Error(`xdp ${spec.prog} on ${spec.ifname}: the attach succeeded but the kernel reports no XDP program on the device`);
      const r: XdpAttached = {
        what: `xdp ${spec.prog} on ${spec.ifname} (${seen.mode})`,
        mode: seen.mode,
        progId: seen.progId,
        detach: async () => void (await t.agent.call('detach_xdp', { ifname: spec.ifname, netns: spec.netns, mode: used })),
      };
      return r;
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
      const before = new Set(await tracefsLines(c, 'kprobe_events'));
      const { link } = await t.agent.call('attach_kprobe', { obj: spec.obj.handle, prog: spec.prog, func: spec.func, retprobe: spec.retprobe ?? false });
      const legacy = (await tracefsLines(c, 'kprobe_events')).some((l) => !before.has(l) && /^[pr]\d*:/.test(l) && [spec.func, `${spec.func}+0`].includes(l.split(/\s+/)[1]));
      const r: ProbeAttached = {
        what: `${spec.retprobe ? 'kretprobe' : 'kprobe'} ${spec.prog} on ${spec.func}${legacy ? ' (tracefs)' : ''}`,
        legacy,
        detach: async () => void (await t.agent.call('detach', { link })),
      };
      return r;
    }
    case 'kprobe_multi': {
      const { link } = await t.agent.call('attach_kprobe_multi', { obj: spec.obj.handle, prog: spec.prog, syms: spec.syms.join(','), retprobe: spec.retprobe });
      return { what: `${spec.retprobe ? 'kretprobe' : 'kprobe'}.multi ${spec.prog} on ${spec.syms.length} functions`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'uprobe': {
      const before = new Set(await tracefsLines(c, 'uprobe_events'));
      const { link } = await t.agent.call('attach_uprobe', { obj: spec.obj.handle, prog: spec.prog, binary: spec.binary, func: spec.func, retprobe: spec.retprobe, pid: spec.pid });
      const legacy = (await tracefsLines(c, 'uprobe_events')).some((l) => !before.has(l) && l.split(/\s+/)[1]?.startsWith(`${spec.binary}:`));
      const r: ProbeAttached = {
        what: `${spec.retprobe ? 'uretprobe' : 'uprobe'} ${spec.prog} on ${spec.binary}:${spec.func}${legacy ? ' (tracefs)' : ''}`,
        legacy,
        detach: async () => void (await t.agent.call('detach', { link })),
      };
      return r;
    }
    case 'tracepoint': {
      const { link } = await t.agent.call('attach_tracepoint', { obj: spec.obj.handle, prog: spec.prog, category: spec.category, name: spec.name });
      return { what: `tracepoint ${spec.prog} on ${spec.category}/${spec.name}`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'perf_event': {
      const before = await agentPerfEvents(c);
      const { link } = await t.agent.call('attach_perf_event', { obj: spec.obj.handle, prog: spec.prog, freq: spec.freq, event: 'cpu-clock' });
      const r: PerfEventAttached = {
        what: `perf_event ${spec.prog} (cpu-clock ${spec.freq} Hz)`,
        cpus: (await agentPerfEvents(c)) - before,
        detach: async () => void (await t.agent.call('detach', { link })),
      };
      return r;
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
    case 'struct_ops': {
      const { link } = await t.agent.call('attach_struct_ops', { obj: spec.obj.handle, map: spec.map });
      return { what: `struct_ops ${spec.map}`, detach: async () => void (await t.agent.call('detach', { link })) };
    }
    case 'sched_cls':
    case 'sched_act': {
      const tc = iproute2('tc', spec.netns);
      // sched_cls: the program is the classifier, in direct-action mode. sched_act: a classifier
      // that matches every packet, with the program as its action.
      const filter = spec.type === 'sched_cls' ? 'bpf direct-action' : 'matchall action bpf';
      await c.exec(
        `${tc} qdisc add dev ${q(spec.ifname)} clsact 2>/dev/null || ${tc} qdisc show dev ${q(spec.ifname)} | grep -q clsact\n` +
          `${tc} filter add dev ${q(spec.ifname)} ${spec.direction} ${filter} obj ${q(spec.object)} sec ${q(spec.section)}`,
      );
      return {
        what: `${spec.type} ${spec.section} on ${spec.ifname} ${spec.direction}`,
        detach: async () => void (await c.exec(`${tc} filter del dev ${q(spec.ifname)} ${spec.direction}`)),
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
      await c.exec(`${ip} route add ${qWords(spec.prefix)} encap bpf ${hook} obj ${q(spec.object)} section ${q(spec.section)}${headroom} dev ${q(spec.dev)}`);
      return {
        what: `${spec.type} ${spec.section} on route ${spec.prefix}`,
        detach: async () => void (await c.exec(`${ip} route del ${qWords(spec.prefix)} dev ${q(spec.dev)}`)),
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

