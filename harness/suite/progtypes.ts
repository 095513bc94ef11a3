// The program types the harness attaches, each with the oldest kernel that has it and how the
// harness attaches it. Suites and the report read this table; a test on an older kernel is
// skipped with the reason.

export interface ProgramType {
  /** Oldest kernel with this program type and the attach point the harness uses. */
  since: string;
  /** How users attach it, as the harness does. */
  attach: string;
  /**
   * How harness/suite/probe.ts asks the kernel for the type (libbpf's program type name, config
   * symbols, BTF, an active LSM): a suite of a type with a probe skips with what the kernel lacks
   * instead of by version alone.
   */
  probe?: { progType?: string; attachType?: string; mapType?: string; config?: string[]; btf?: boolean; lsm?: string };
}

export const PROGRAM_TYPES = {
  socket_filter: { since: '3.19', attach: 'SO_ATTACH_BPF on a packet or UDP socket' },
  kprobe: { since: '4.1', attach: 'perf_event_open kprobe PMU, or tracefs kprobe_events' },
  sched_cls: { since: '4.1', attach: 'tc filter ... bpf da on a clsact qdisc' },
  sched_act: { since: '4.1', attach: 'tc ... action bpf under a classifier' },
  tracepoint: { since: '4.7', attach: 'perf_event_open on a tracepoint id' },
  xdp: { since: '4.8', attach: 'netlink (generic or native XDP)' },
  perf_event: { since: '4.9', attach: 'perf_event_open software cpu-clock, PERF_EVENT_IOC_SET_BPF' },
  cgroup_skb: { since: '4.10', attach: 'BPF_PROG_ATTACH to a cgroup v2 (inet ingress/egress)' },
  cgroup_sock: { since: '4.10', attach: 'BPF_PROG_ATTACH to a cgroup v2 (inet sock create)' },
  lwt_in: { since: '4.10', attach: 'ip route ... encap bpf in' },
  lwt_out: { since: '4.10', attach: 'ip route ... encap bpf out' },
  lwt_xmit: { since: '4.10', attach: 'ip route ... encap bpf xmit' },
  sock_ops: { since: '4.13', attach: 'BPF_PROG_ATTACH to a cgroup v2 (sock_ops)' },
  sk_skb: { since: '4.14', attach: 'BPF_PROG_ATTACH to a sockmap (stream parser/verdict)' },
  cgroup_sock_addr: {
    since: '4.17',
    attach: 'BPF_PROG_ATTACH to a cgroup v2 (inet4 bind/connect, udp4 sendmsg/recvmsg)',
    probe: { progType: 'cgroup_sock_addr', attachType: 'cgroup_inet4_connect', config: ['CONFIG_CGROUP_BPF'] },
  },
  raw_tracepoint: {
    since: '4.17',
    attach: 'BPF_RAW_TRACEPOINT_OPEN by tracepoint name; tp_btf (5.5) through the BTF target',
    probe: { progType: 'raw_tracepoint' },
  },
  fentry: {
    since: '5.5',
    attach: 'fentry/fexit through a BPF trampoline (libbpf bpf_program__attach), CO-RE against the kernel\'s BTF',
    probe: { progType: 'tracing', btf: true, config: ['CONFIG_DEBUG_INFO_BTF', 'CONFIG_BPF_JIT'] },
  },
  lsm: {
    since: '5.7',
    attach: 'BPF LSM hook through a BPF trampoline (libbpf bpf_program__attach); needs bpf among the active LSMs',
    probe: { progType: 'lsm', btf: true, config: ['CONFIG_BPF_LSM', 'CONFIG_DEBUG_INFO_BTF'], lsm: 'bpf' },
  },
  sk_lookup: {
    since: '5.9',
    attach: 'bpf_link on a network namespace (BPF_LINK_CREATE, BPF_SK_LOOKUP)',
    probe: { progType: 'sk_lookup', attachType: 'sk_lookup' },
  },
  tcx: {
    since: '6.6',
    attach: 'BPF_LINK_CREATE with BPF_TCX_INGRESS/EGRESS on a device (next to legacy tc)',
    probe: { progType: 'sched_cls', attachType: 'tcx_ingress' },
  },
  uprobe: {
    since: '4.3',
    attach: 'perf_event_open uprobe PMU (4.17), or tracefs uprobe_events',
    probe: { progType: 'kprobe', config: ['CONFIG_UPROBE_EVENTS'] },
  },
  kprobe_multi: {
    since: '5.18',
    attach: 'one BPF_LINK_CREATE (BPF_TRACE_KPROBE_MULTI, fprobe) on many kernel functions',
    probe: { progType: 'kprobe', attachType: 'trace_kprobe_multi', config: ['CONFIG_FPROBE'] },
  },
  sk_reuseport: {
    since: '4.19',
    attach: 'SO_ATTACH_REUSEPORT_EBPF on a socket of an SO_REUSEPORT group, with a REUSEPORT_SOCKARRAY',
    probe: { progType: 'sk_reuseport' },
  },
  sk_msg: {
    since: '4.17',
    attach: 'BPF_PROG_ATTACH to a sockmap (msg verdict)',
    probe: { progType: 'sk_msg', attachType: 'sk_msg_verdict' },
  },
  flow_dissector: {
    since: '4.20',
    attach: 'a network namespace\'s flow dissector: bpf_link (BPF_LINK_CREATE, 5.7)',
    probe: { progType: 'flow_dissector', attachType: 'flow_dissector' },
  },
  struct_ops: {
    since: '5.6',
    attach: 'a struct_ops map registered with the kernel (a BPF TCP congestion control), chosen with TCP_CONGESTION',
    probe: { progType: 'struct_ops', btf: true, config: ['CONFIG_DEBUG_INFO_BTF'] },
  },
  af_xdp: {
    since: '4.18',
    attach: 'an AF_XDP socket in an XSKMAP, which an XDP program (netlink, generic mode) redirects to',
    probe: { progType: 'xdp', mapType: 'xskmap' },
  },
} as const satisfies Record<string, ProgramType>;

export type ProgramTypeName = keyof typeof PROGRAM_TYPES;
