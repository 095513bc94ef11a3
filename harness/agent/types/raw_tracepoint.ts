// raw_tracepoint (4.17): a program on a tracepoint by name, without the perf event (tp_btf, its
// BTF-typed kind, is a `tracing` spec: see tracing.ts).
import { type AgentProg, attachLinked, programType } from './declare.js';

export type RawTracepointSpec = { type: 'raw_tracepoint'; name: string } & AgentProg;

export const raw_tracepoint = programType({
  name: 'raw_tracepoint',
  since: '4.17',
  how: 'BPF_RAW_TRACEPOINT_OPEN by tracepoint name; tp_btf (5.5) through the BTF target',
  probe: { progType: 'raw_tracepoint' },
  attach: (t, spec: RawTracepointSpec) => attachLinked(t, 'attach_prog', { obj: spec.obj.handle, prog: spec.prog, rawTracepoint: spec.name }, `raw_tracepoint ${spec.prog} on ${spec.name}`),
});
