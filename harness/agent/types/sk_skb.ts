// sk_skb (4.14): a stream parser or verdict program on a sockmap (BPF_PROG_ATTACH).
import { type AgentProg, attachCgroup, programType } from './declare.js';

export type SkSkbSpec = { type: 'sk_skb'; map: string; kind: 'stream_verdict' | 'stream_parser' } & AgentProg;

export const sk_skb = programType({
  name: 'sk_skb',
  since: '4.14',
  how: 'BPF_PROG_ATTACH to a sockmap (stream parser/verdict)',
  attach: (t, spec: SkSkbSpec) =>
    attachCgroup(t, { obj: spec.obj.handle, prog: spec.prog, attachType: `sk_skb_${spec.kind}`, map: spec.map }, `sk_skb ${spec.kind} ${spec.prog} on ${spec.map}`),
});
