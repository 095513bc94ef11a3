// sk_msg (4.17): a msg verdict program on a sockmap (BPF_PROG_ATTACH).
import { type AgentProg, attachCgroup, programType } from './declare.js';

export type SkMsgSpec = { type: 'sk_msg'; map: string } & AgentProg;

export const sk_msg = programType({
  name: 'sk_msg',
  since: '4.17',
  how: 'BPF_PROG_ATTACH to a sockmap (msg verdict)',
  probe: { progType: 'sk_msg', attachType: 'sk_msg_verdict' },
  attach: (t, spec: SkMsgSpec) => attachCgroup(t, { obj: spec.obj.handle, prog: spec.prog, attachType: 'sk_msg_verdict', map: spec.map }, `sk_msg ${spec.prog} on ${spec.map}`),
});
