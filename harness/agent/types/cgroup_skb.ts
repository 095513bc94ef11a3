// cgroup_skb (4.10): a program on a cgroup v2's inet ingress or egress (BPF_PROG_ATTACH).
import { type AgentProg, attachCgroup, programType } from './declare.js';

export type CgroupSkbSpec = { type: 'cgroup_skb'; cgroup: string; direction: 'ingress' | 'egress' } & AgentProg;

export const cgroup_skb = programType({
  name: 'cgroup_skb',
  since: '4.10',
  how: 'BPF_PROG_ATTACH to a cgroup v2 (inet ingress/egress)',
  attach: (t, spec: CgroupSkbSpec) =>
    attachCgroup(
      t,
      { obj: spec.obj.handle, prog: spec.prog, attachType: spec.direction === 'ingress' ? 'cgroup_inet_ingress' : 'cgroup_inet_egress', cgroup: spec.cgroup },
      `cgroup_skb ${spec.prog} on ${spec.cgroup}`,
    ),
});
