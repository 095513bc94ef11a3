// cgroup_sock (4.10): a program on a cgroup v2's inet socket creation (BPF_PROG_ATTACH).
import { type AgentProg, attachCgroup, programType } from './declare.js';

export type CgroupSockSpec = { type: 'cgroup_sock'; cgroup: string } & AgentProg;

export const cgroup_sock = programType({
  name: 'cgroup_sock',
  since: '4.10',
  how: 'BPF_PROG_ATTACH to a cgroup v2 (inet sock create)',
  attach: (t, spec: CgroupSockSpec) =>
    attachCgroup(t, { obj: spec.obj.handle, prog: spec.prog, attachType: 'cgroup_inet_sock_create', cgroup: spec.cgroup }, `cgroup_sock ${spec.prog} on ${spec.cgroup}`),
});
