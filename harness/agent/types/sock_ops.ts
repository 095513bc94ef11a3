// sock_ops (4.13): a program on a cgroup v2's TCP socket events (BPF_PROG_ATTACH).
import { type AgentProg, attachCgroup, programType } from './declare.js';

export type SockOpsSpec = { type: 'sock_ops'; cgroup: string } & AgentProg;

export const sock_ops = programType({
  name: 'sock_ops',
  since: '4.13',
  how: 'BPF_PROG_ATTACH to a cgroup v2 (sock_ops)',
  attach: (t, spec: SockOpsSpec) =>
    attachCgroup(t, { obj: spec.obj.handle, prog: spec.prog, attachType: 'cgroup_sock_ops', cgroup: spec.cgroup }, `sock_ops ${spec.prog} on ${spec.cgroup}`),
});
