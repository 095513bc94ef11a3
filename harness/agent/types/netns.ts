// sk_lookup (5.9) and flow_dissector (4.20): a network namespace's socket lookup or flow
// dissector, as a bpf_link on the namespace; one attach for both.
import { type AgentProg, type Attached, type AttachTarget, linked, programType } from './declare.js';

/** A network namespace's socket lookup (5.9), or its flow dissector (a link since 5.7), as a bpf_link. */
export type NetnsSpec = { type: 'sk_lookup' | 'flow_dissector'; netns: string } & AgentProg;

async function attachNetns(t: AttachTarget, spec: NetnsSpec): Promise<Attached> {
  const { link } = await t.agent.call('attach_prog', { obj: spec.obj.handle, prog: spec.prog, netns: spec.netns });
  return linked(t, link, `${spec.type} ${spec.prog} on netns ${spec.netns}`);
}

export const sk_lookup = programType({
  name: 'sk_lookup',
  since: '5.9',
  how: 'bpf_link on a network namespace (BPF_LINK_CREATE, BPF_SK_LOOKUP)',
  probe: { progType: 'sk_lookup', attachType: 'sk_lookup' },
  attach: attachNetns,
});

export const flow_dissector = programType({
  name: 'flow_dissector',
  since: '4.20',
  how: 'a network namespace\'s flow dissector: bpf_link (BPF_LINK_CREATE, 5.7)',
  probe: { progType: 'flow_dissector', attachType: 'flow_dissector' },
  attach: attachNetns,
});
