// raw_tracepoint (4.17): a program on a tracepoint by name, without the perf event (tp_btf, its
// BTF-typed kind, is a `tracing` spec: see tracing.ts).
import { type AgentProg, linked, programType } from './declare.js';

export type RawTracepointSpec = { type: 'raw_tracepoint'; name: string } & AgentProg;

export const raw_tracepoint = programType({
  name: 'raw_tracepoint',
  since: '4.17',
  how: 'BPF_RAW_TRACEPOINT_OPEN by tracepoint name; tp_btf (5.5) through the BTF target',
  probe: { progType: 'raw_tracepoint' },
  attach: async (t, spec: RawTracepointSpec) => {
    const { link } = await t.agent.call('attach_prog', { obj: spec.obj.handle, prog: spec.prog, rawTracepoint: spec.name });
    return linked(t, link, `raw_tracepoint ${spec.prog} on ${spec.name}`);
  },
});
