// struct_ops (5.6): a struct_ops map of an object (e.g. a TCP congestion control) registered with
// the kernel.
import type { BpfObject } from '../agent.js';
import { attachLinked, programType } from './declare.js';

/** struct_ops (5.6): registers a struct_ops map of the object (e.g. a TCP congestion control) with the kernel. */
export type StructOpsSpec = { type: 'struct_ops'; obj: BpfObject; map: string };

export const struct_ops = programType({
  name: 'struct_ops',
  since: '5.6',
  how: 'a struct_ops map registered with the kernel (a BPF TCP congestion control), chosen with TCP_CONGESTION',
  probe: { progType: 'struct_ops', btf: true, config: ['CONFIG_DEBUG_INFO_BTF'] },
  attach: (t, spec: StructOpsSpec) => attachLinked(t, 'attach_struct_ops', { obj: spec.obj.handle, map: spec.map }, `struct_ops ${spec.map}`),
});
