// The guest agent's protocol, typed. The contract is images/agent/PROTOCOL.md; keep both in step.
// One request per line to the agent's stdin, one response per line from its stdout (wire.ts
// writes and reads them).

/** Lowercase hex bytes in memory order (little endian for integers). */
export type Hex = string;

export interface ProgInfo {
  name: string;
  section: string;
  type: string;
  /** The id the kernel gave the loaded program (absent for a program that did not load). */
  id?: number;
}

export interface MapInfo {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

export interface MapEntry {
  key: Hex;
  value?: Hex;
  /** Per-CPU maps: one value per possible CPU. */
  values?: Hex[];
}

export type XdpMode = 'generic' | 'native' | 'any';

/** A map of a loaded object, or a map pinned in bpffs by another loader (tc, ip). */
export type MapRef = { obj: string; map: string; pin?: undefined } | { pin: string; obj?: undefined; map?: undefined };

/** What getsockname and getpeername say ("" and 0 when not bound or not connected). */
export interface InetNames {
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  /** TCP: TCP_CONGESTION as the kernel reports it. */
  congestion?: string;
}

/** Every operation: its request fields and its result fields. */
export interface Ops {
  hello: { req: Record<string, never>; res: { agent: string; kernel: string; libbpf: string; ncpus: number } };
  load: { req: { path: string; name?: string }; res: { obj: string; programs: ProgInfo[]; maps: MapInfo[] } };
  unload: { req: { obj: string }; res: Record<string, never> };
  attach_xdp: {
    req: { obj: string; prog: string; ifname: string; netns?: string; mode: XdpMode };
    res: { mode: 'generic' | 'native' };
  };
  detach_xdp: { req: { ifname: string; netns?: string; mode: XdpMode }; res: Record<string, never> };
  map_lookup: { req: MapRef & { key: Hex }; res: { value: Hex | null; values?: Hex[] } };
  /** `netns`: make the update from inside it (a devmap resolves its ifindex values there). */
  map_update: { req: MapRef & { key: Hex; value: Hex; flags?: number; netns?: string }; res: Record<string, never> };
  map_delete: { req: MapRef & { key: Hex }; res: Record<string, never> };
  map_dump: { req: MapRef; res: { entries: MapEntry[] } };
  /** Closes every object, link, socket and pinned map, detaching what the agent attached. */
  reset: { req: { scrub?: 'none' | 'test' | 'guest'; mark?: string }; res: Record<string, never> };
  sysctl_snapshot: { req: Record<string, never>; res: { count: number } };
  sysctl_restore: { req: Record<string, never>; res: { restored: string[]; failed: string[] } };
  udp_listen: { req: { netns?: string; addr?: string; port: number; cgroup?: string }; res: { sock: number } };
  run: { req: { cmd: string; stdin?: string; timeoutMs?: number }; res: { code: number; stdout: string; stderr: string } };
  veth_pair: {
    req: { netnsA: string; ifnameA: string; ipA: string; macA: string; netnsB: string; ifnameB: string; ipB: string; macB: string; prefixLen?: number; existingA?: boolean };
    res: { ifindexA: number; ifindexB: number };
  };
  sock_stats: { req: { sock: number; waitMs?: number; expect?: number }; res: { packets: number; bytes: number; lengths: number[] } };
  sock_close: { req: { sock: number }; res: Record<string, never> };
  send: {
    req: Partial<MapRef> & {
      netns?: string;
      proto: 'icmp' | 'udp' | 'tcp';
      src?: string;
      dst: string;
      count: number;
      size?: number;
      sport?: number;
      dport?: number;
      waitMs?: number;
      intervalUs?: number;
      /** Send from a child process in this cgroup v2 directory. */
      cgroup?: string;
      /**
       * The exact end of the reply wait: once the count at `key` of the map (`obj` + `map`, or
       * `pin`) reaches this, only the settle window follows.
       */
      judged?: number;
      key?: Hex;
    };
    res: { sent: number; replies: number; replyBytes: number; sendErrors?: number; sendErrno?: number };
  };
  attach_cgroup: {
    req: {
      obj: string;
      prog: string;
      attachType:
        | 'cgroup_inet_ingress'
        | 'cgroup_inet_egress'
        | 'cgroup_inet_sock_create'
        | 'cgroup_sock_ops'
        | 'sk_skb_stream_verdict'
        | 'sk_skb_stream_parser'
        | 'sk_msg_verdict'
        | 'cgroup_inet4_bind'
        | 'cgroup_inet6_bind'
        | 'cgroup_inet4_connect'
        | 'cgroup_inet6_connect'
        | 'cgroup_udp4_sendmsg'
        | 'cgroup_udp6_sendmsg'
        | 'cgroup_udp4_recvmsg'
        | 'cgroup_udp6_recvmsg';
      /** cgroup v2 directory (absolute path); for the sk_* types give `map` instead. */
      cgroup?: string;
      /** Sockmap in the same object (sk_skb_* and sk_msg_verdict). */
      map?: string;
      flags?: number;
    };
    res: Record<string, never>;
  };
  detach_cgroup: { req: Ops['attach_cgroup']['req']; res: Record<string, never> };
  attach_kprobe: {
    req: { obj: string; prog: string; func: string; retprobe?: boolean };
    res: { link: number; legacy: boolean };
  };
  /** A uprobe/uretprobe on `func` (from the binary's symbol table) of an ELF file in the guest; pid -1 (default): every process. */
  attach_uprobe: {
    req: { obj: string; prog: string; binary: string; func: string; retprobe?: boolean; pid?: number };
    res: { link: number; legacy: boolean };
  };
  /** kprobe_multi (5.18): one link on many functions (comma-separated); the i-th gets BPF cookie i + 1. */
  attach_kprobe_multi: { req: { obj: string; prog: string; syms: string; retprobe?: boolean }; res: { link: number; functions: number } };
  attach_tracepoint: { req: { obj: string; prog: string; category: string; name: string }; res: { link: number } };
  attach_perf_event: {
    req: { obj: string; prog: string; freq: number; event: 'cpu-clock' };
    res: { link: number; cpus: number };
  };
  /**
   * A cgroup program as a bpf_link (`cgroup`, 5.7; its attach type from the section), a network
   * namespace's sk_lookup or flow dissector (`netns`, a bpf_link), a raw tracepoint by name (4.17), or, without either, what the program's section names (raw_tp/X,
   * tp_btf/X, fentry/F, fexit/F, lsm/H) through libbpf's bpf_program__attach.
   */
  attach_prog: { req: { obj: string; prog: string; rawTracepoint?: string; netns?: string; cgroup?: string }; res: { link: number } };
  /**
   * tcx (6.6): a sched_cls program on a device's hook through BPF_LINK_CREATE; `before`/`after`
   * name another program of the object, already attached there, to run before or after.
   */
  attach_tcx: {
    req: { obj: string; prog: string; ifname: string; netns?: string; direction: 'ingress' | 'egress'; before?: string; after?: string };
    res: { link: number };
  };
  detach: { req: { link: number }; res: Record<string, never> };
  /** The guest is kept (--keep-on-fail): when the host's connection goes, hold everything. */
  keep: { req: Record<string, never>; res: Record<string, never> };
  /** Makes `count` calls of a system call from the agent (pid returned, for filtering). */
  syscalls: {
    req: { name: 'getpid' | 'getppid' | 'getuid' | 'getgid' | 'gettid' | 'sched_yield'; count: number };
    res: { pid: number; tid: number; calls: number };
  };
  sock_open: {
    req: {
      netns?: string;
      kind: 'packet' | 'udp';
      /** packet: the interface to bind to. */
      ifname?: string;
      /** udp: local address (default 0.0.0.0) and port. */
      addr?: string;
      port?: number;
      /** Optional socket filter program, attached with SO_ATTACH_BPF. */
      obj?: string;
      prog?: string;
      cgroup?: string;
    };
    res: { sock: number };
  };
  tcp_pair: {
    req: { netns?: string; port?: number; count?: number; addr?: string; cgroup?: string };
    res: { port: number; pairs: { client: number; server: number }[] };
  };
  sockmap_add: { req: { obj: string; map: string; key: number; sock: number }; res: Record<string, never> };
  sock_write: { req: { sock: number; data: string }; res: { written: number } };
  sock_read: { req: { sock: number; waitMs?: number; max?: number; expect?: number }; res: { data: string; bytes: number; eof: boolean } };
  sock_create_test: {
    req: {
      cgroup?: string;
      netns?: string;
      family: 'inet' | 'inet6';
      type: 'stream' | 'dgram' | 'raw';
      protocol?: number;
    };
    res: {
      created: boolean;
      createErrno: number;
      mark: number;
      /** SO_BINDTODEVICE read back ("" if unbound). */
      boundDev: string;
      /** SO_BINDTOIFINDEX read back (0 if unbound, or if the kernel refused the option: see boundIfindexErrno). */
      boundIfindex: number;
      /** errno of getsockopt(SO_BINDTOIFINDEX): ENOPROTOOPT (92) on kernels before 5.1, else 0. */
      boundIfindexErrno: number;
      priority: number;
    };
  };
  /**
   * Whether the kernel loads a program type (libbpf's names: "cgroup_sock_addr", "tracing", "lsm")
   * and, when given, accepts an expected attach type for it (libbpf's names: "cgroup_inet4_connect").
   */
  probe: {
    req: { progType: string; attachType?: string } | { mapType: string };
    res: { progType?: boolean; progTypeErrno?: number; attachType?: boolean; attachTypeErrno?: number; mapType?: boolean; mapTypeErrno?: number };
  };
  /**
   * An AF_XDP socket (copy mode) bound to a queue of a device, put into an XSKMAP of a loaded
   * object at `key` (default: the queue).
   */
  xsk_open: { req: { netns?: string; ifname: string; queue?: number; obj: string; map: string; key?: number }; res: { sock: number } };
  /** Frames the AF_XDP socket received since the last call (RX ring descriptors), with their lengths. */
  xsk_stats: { req: { sock: number; waitMs?: number; expect?: number }; res: { frames: number; bytes: number; lengths: number[] } };
  /** Registers a struct_ops map of a loaded object (e.g. a TCP congestion control) with the kernel. */
  attach_struct_ops: { req: { obj: string; map: string }; res: { link: number } };
  /** Opens a reader on a ringbuf or perf_event_array map (a perf event array must be open before programs write to it). */
  events_open: { req: { obj: string; map: string }; res: Record<string, never> };
  /** Records since the last read (hex; `cpu` for a perf event array), and how many the perf buffer lost. */
  events_read: {
    req: { obj: string; map: string; waitMs?: number; expect?: number };
    res: { records: { data: Hex; cpu?: number }[]; lost: number };
  };
  /** A plain inet socket (in a cgroup when given), bound when addr or port is given; TCP may listen. */
  inet_socket: {
    req: { netns?: string; cgroup?: string; proto: 'udp' | 'tcp'; addr?: string; port?: number; listen?: boolean; reuseport?: boolean; congestion?: string };
    /** congestionErrno: of setsockopt(TCP_CONGESTION), when `congestion` was given. */
    res: { sock: number; bindErrno: number; congestionErrno?: number } & InetNames;
  };
  inet_connect: { req: { sock: number; dst: string; dport: number; timeoutMs?: number }; res: { connectErrno: number } & InetNames };
  /** `count` datagrams (or writes) of `data`: to dst:dport with sendto when given, else with send. */
  inet_send: {
    req: { sock: number; data: string; count?: number; dst?: string; dport?: number };
    res: { sent: number; bytes: number; sendErrno: number } & InetNames;
  };
  /** UDP: each datagram with recvfrom's source; a TCP listener: each accepted connection's peer and data. */
  inet_recv: { req: { sock: number; waitMs?: number; expect?: number }; res: { messages: { addr: string; port: number; data: string }[] } };
  inet_close: { req: { sock: number }; res: Record<string, never> };
  /** An sk_reuseport program on the inet socket's reuseport group (SO_ATTACH_REUSEPORT_EBPF). */
  inet_attach_reuseport: { req: { obj: string; prog: string; sock: number }; res: Record<string, never> };
  /** Puts an inet socket into a sockmap/sockhash (or a reuseport_sockarray) of a loaded object. */
  inet_sockmap_add: { req: { obj: string; map: string; key: number; sock: number }; res: Record<string, never> };
  /** Reads a socket's addresses, SO_MARK/SO_PRIORITY and, for TCP, TCP_INFO fields back. */
  sock_info: {
    req: { sock: number };
    res: {
      localAddr: string;
      localPort: number;
      remoteAddr: string;
      remotePort: number;
      mark: number;
      priority: number;
      tcpState?: number;
      rcvSsthresh?: number;
      rcvSpace?: number;
      advmss?: number;
      sndMss?: number;
      rcvMss?: number;
      sndCwnd?: number;
      rtoUs?: number;
      congestion?: string;
    };
  };
}

export type OpName = keyof Ops;
export type Success<K extends OpName> = { id: number; ok: true } & Ops[K]['res'];
export interface Failure {
  id: number;
  ok: false;
  error: string;
  errno: number;
  log: string;
}
export type Response<K extends OpName> = Success<K> | Failure;
