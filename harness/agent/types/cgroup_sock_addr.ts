// cgroup_sock_addr (4.17): a program on one of a cgroup v2's socket address hooks (bind, connect,
// sendmsg, recvmsg), through BPF_PROG_ATTACH or as a bpf_link (5.7).
import { type AgentProg, attachCgroup, attachLinked, programType } from './declare.js';

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

/** `link: true`: a bpf_link (5.7) instead of BPF_PROG_ATTACH; the hook then comes from the program's section. */
export type CgroupSockAddrSpec = { type: 'cgroup_sock_addr'; cgroup: string; hook: SockAddrHook; link?: boolean } & AgentProg;

export const cgroup_sock_addr = programType({
  name: 'cgroup_sock_addr',
  since: '4.17',
  how: 'BPF_PROG_ATTACH to a cgroup v2 (inet4 bind/connect, udp4 sendmsg/recvmsg)',
  probe: { progType: 'cgroup_sock_addr', attachType: 'cgroup_inet4_connect', config: ['CONFIG_CGROUP_BPF'] },
  attach: async (t, spec: CgroupSockAddrSpec) => {
    if (spec.link) {
      return attachLinked(t, 'attach_prog', { obj: spec.obj.handle, prog: spec.prog, cgroup: spec.cgroup }, `cgroup_sock_addr ${spec.hook} ${spec.prog} on ${spec.cgroup} (bpf_link)`);
    }
    const req = { obj: spec.obj.handle, prog: spec.prog, attachType: SOCK_ADDR_HOOKS[spec.hook], cgroup: spec.cgroup };
    return attachCgroup(t, req, `cgroup_sock_addr ${spec.hook} ${spec.prog} on ${spec.cgroup}`);
  },
});
