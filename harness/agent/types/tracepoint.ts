// tracepoint (4.7): a program on a tracepoint, by its category and name.
import { type AgentProg, linked, programType } from './declare.js';

export type TracepointSpec = { type: 'tracepoint'; category: string; name: string } & AgentProg;

export const tracepoint = programType({
  name: 'tracepoint',
  since: '4.7',
  how: 'perf_event_open on a tracepoint id',
  attach: async (t, spec: TracepointSpec) => {
    const { link } = await t.agent.call('attach_tracepoint', { obj: spec.obj.handle, prog: spec.prog, category: spec.category, name: spec.name });
    return linked(t, link, `tracepoint ${spec.prog} on ${spec.category}/${spec.name}`);
  },
});
