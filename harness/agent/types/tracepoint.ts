// tracepoint (4.7): a program on a tracepoint, by its category and name.
import { type AgentProg, attachLinked, programType } from './declare.js';

export type TracepointSpec = { type: 'tracepoint'; category: string; name: string } & AgentProg;

export const tracepoint = programType({
  name: 'tracepoint',
  since: '4.7',
  how: 'perf_event_open on a tracepoint id',
  attach: (t, spec: TracepointSpec) => attachLinked(t, 'attach_tracepoint', { obj: spec.obj.handle, prog: spec.prog, category: spec.category, name: spec.name }, `tracepoint ${spec.prog} on ${spec.category}/${spec.name}`),
});
