// tcx (6.6): a sched_cls program as a link on a device's ingress or egress hook.
import { type AgentProg, attachLinked, programType } from './declare.js';

/** tcx (6.6): a link on a device's hook; `before`/`after` another program of the object there. */
export type TcxSpec = { type: 'tcx'; ifname: string; netns?: string; direction: 'ingress' | 'egress'; before?: string; after?: string } & AgentProg;

export const tcx = programType({
  name: 'tcx',
  since: '6.6',
  how: 'BPF_LINK_CREATE with BPF_TCX_INGRESS/EGRESS on a device (next to legacy tc)',
  probe: { progType: 'sched_cls', attachType: 'tcx_ingress' },
  attach: (t, spec: TcxSpec) =>
    attachLinked(
      t,
      'attach_tcx',
      { obj: spec.obj.handle, prog: spec.prog, ifname: spec.ifname, netns: spec.netns, direction: spec.direction, before: spec.before, after: spec.after },
      `tcx ${spec.prog} on ${spec.ifname} ${spec.direction}`,
    ),
});
