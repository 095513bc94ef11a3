// sk_lookup (5.9) and flow_dissector (4.20): a network namespace's socket lookup or flow
// dissector, as a bpf_link on the namespace; one attach for both.
import { type AgentProg, type Attached, type AttachTarget, attachLinked, programType } from './declare.js';

/** A network namespace's socket lookup (5.9), or its flow dissector (a link since 5.7), as a bpf_link. */
export type NetnsSpec = { type: 'sk_lookup' | 'flow_dissector'; netns: string } & AgentProg;

const attachNetns = (t: AttachTarget, spec: NetnsSpec): Promise<Attached> =>
  attachLinked(t, 'attach_prog', { obj: spec.obj.handle, prog: spec.prog, netns: spec.netns }, `${spec.type} ${spec.prog} on netns ${spec.netns}`);

/** A type attached to a network namespace: its libbpf program and attach type are its name. */
const netnsType = <const N extends NetnsSpec['type'], const S extends string, const H extends string>(name: N, since: S, how: H) =>
  programType({ name, since, how, probe: { progType: name, attachType: name }, attach: attachNetns });

export const sk_lookup = netnsType('sk_lookup', '5.9', 'bpf_link on a network namespace (BPF_LINK_CREATE, BPF_SK_LOOKUP)');

export const flow_dissector = netnsType('flow_dissector', '4.20', 'a network namespace\'s flow dissector: bpf_link (BPF_LINK_CREATE, 5.7)');
