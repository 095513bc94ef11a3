// sched_cls and sched_act (4.1): tc programs on a device's clsact qdisc, loaded and attached by
// iproute2's tc in the guest, exactly as a user types it; one attach for both.
import { shq } from '../../base/quote.js';
import { type Attached, type AttachTarget, commandsOf, type FileProg, iproute2, programType } from './declare.js';

type TcSpec<T extends 'sched_cls' | 'sched_act'> = { type: T; ifname: string; netns?: string; direction: 'ingress' | 'egress' } & FileProg;
export type SchedClsSpec = TcSpec<'sched_cls'>;
export type SchedActSpec = TcSpec<'sched_act'>;

async function attachTc(t: AttachTarget, spec: SchedClsSpec | SchedActSpec): Promise<Attached> {
  const c = commandsOf(t);
  const tc = iproute2('tc', spec.netns);
  // sched_cls: the program is the classifier, in direct-action mode. sched_act: a classifier
  // that matches every packet, with the program as its action.
  const filter = spec.type === 'sched_cls' ? 'bpf direct-action' : 'matchall action bpf';
  await c.exec(
    `${tc} qdisc add dev ${shq(spec.ifname)} clsact 2>/dev/null || ${tc} qdisc show dev ${shq(spec.ifname)} | grep -q clsact\n` +
      `${tc} filter add dev ${shq(spec.ifname)} ${spec.direction} ${filter} obj ${shq(spec.object)} sec ${shq(spec.section)}`,
  );
  return {
    what: `${spec.type} ${spec.section} on ${spec.ifname} ${spec.direction}`,
    detach: async () => void (await c.exec(`${tc} filter del dev ${shq(spec.ifname)} ${spec.direction}`)),
  };
}

export const sched_cls = programType({
  name: 'sched_cls',
  since: '4.1',
  how: 'tc filter ... bpf da on a clsact qdisc',
  attach: (t, spec: SchedClsSpec) => attachTc(t, spec),
});

export const sched_act = programType({
  name: 'sched_act',
  since: '4.1',
  how: 'tc ... action bpf under a classifier',
  attach: (t, spec: SchedActSpec) => attachTc(t, spec),
});
