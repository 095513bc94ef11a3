// kprobe_multi (5.18): one link (fprobe) on many kernel functions, entry or return.
import { type AgentProg, attachLinked, programType } from './declare.js';

export type KprobeMultiSpec = { type: 'kprobe_multi'; syms: string[]; retprobe?: boolean } & AgentProg;

export const kprobe_multi = programType({
  name: 'kprobe_multi',
  since: '5.18',
  how: 'one BPF_LINK_CREATE (BPF_TRACE_KPROBE_MULTI, fprobe) on many kernel functions',
  probe: { progType: 'kprobe', attachType: 'trace_kprobe_multi', config: ['CONFIG_FPROBE'] },
  attach: (t, spec: KprobeMultiSpec) =>
    attachLinked(t, 'attach_kprobe_multi', { obj: spec.obj.handle, prog: spec.prog, syms: spec.syms.join(','), retprobe: spec.retprobe }, `${spec.retprobe ? 'kretprobe' : 'kprobe'}.multi ${spec.prog} on ${spec.syms.length} functions`),
});
