// flow_dissector (4.20): a BPF flow dissector for namespace B replaces the kernel's own wherever
// the kernel dissects B's packets. Its result is seen through tc flower, which classifies by the
// dissected keys: a flower filter on B's ingress drops UDP to port 6000. The dissector reports
// UDP port 5000 as 6000, so while it is attached, traffic to 5000 is dropped by that filter (the
// filter's own counter and the sink on 5000 say so), and traffic to other ports is not.
import { expect, test } from 'vitest';
import { type BpfObject, iproute2, readU64s, requireFeature, send, u32, UdpSink, useGuest, useVethPair } from '../../harness/index.js';

const guest = useGuest({ suite: 'flow_dissector', from: import.meta.url, sources: ['flow_dissector_ports.bpf.c'] });
const net = useVethPair(guest);

/** Packets the flower filter on B's ingress matched (and dropped). */
async function flowerMatched(): Promise<number> {
  const out = await guest.ssh.exec(`${iproute2('tc', net.b.netns)} -s -j filter show dev ${net.b.ifname} ingress`);
  const filters = JSON.parse(out) as { kind?: string; options?: { actions?: { stats?: { packets?: number } }[] } }[];
  const flower = filters.find((f) => f.kind === 'flower' && f.options?.actions);
  if (!flower) throw new Error(`no flower filter with actions on ${net.b.ifname}: ${out}`);
  return flower.options!.actions![0].stats?.packets ?? 0;
}
const dissected = async (obj: BpfObject, port: number) => {
  const v = await obj.map('dissected').lookup(u32(port));
  return v ? readU64s(v)[0] : 0n;
};

test('while the dissector reports UDP port 5000 as 6000, tc flower drops traffic to 5000 as if it went to 6000; detached, it passes again', async (ctx) => {
  await requireFeature(ctx, guest, { feature: 'tc flower, which shows what the dissector reported', since: '4.20', config: ['CONFIG_NET_CLS_FLOWER'] });
  await requireFeature(ctx, guest, { feature: 'a flow dissector as a netns bpf_link', since: '5.7' });
  const tc = iproute2('tc', net.b.netns);
  await guest.ssh.exec(`${tc} qdisc add dev ${net.b.ifname} clsact && ${tc} filter add dev ${net.b.ifname} ingress protocol ip flower ip_proto udp dst_port 6000 action drop`);
  const s5000 = await UdpSink.open(guest.agent, { netns: net.b.netns, addr: net.b.ip, port: 5000 });
  const s5001 = await UdpSink.open(guest.agent, { netns: net.b.netns, addr: net.b.ip, port: 5001 });
  const udp = (dport: number, count: number) => send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport, count });

  // The kernel's own dissector: port 5000 is port 5000.
  await udp(5000, 8);
  expect((await s5000.stats({ expect: 8, waitMs: 500 })).packets, 'sink 5000, kernel dissector').toBe(8);
  expect(await flowerMatched(), 'flower matches, kernel dissector').toBe(0);

  const obj = await guest.load('flow_dissector_ports.bpf.c');
  const link = await guest.attach({ type: 'flow_dissector', obj, prog: 'dissect', netns: net.b.netns });
  await udp(5000, 8);
  await udp(5001, 5);
  // Judged: flower's own match counter took all 8.
  expect((await s5000.stats({ judged: { count: flowerMatched, expected: 8 } })).packets, 'sink 5000, BPF dissector').toBe(0);
  expect((await s5001.stats({ expect: 5, waitMs: 500 })).packets, 'sink 5001, BPF dissector').toBe(5);
  expect(await flowerMatched(), 'flower matches, BPF dissector').toBe(8);
  // The kernel asked the program about every one of those packets (at least once each).
  expect(await dissected(obj, 5000), 'dissections of port 5000').toBeGreaterThanOrEqual(8n);
  expect(await dissected(obj, 5001), 'dissections of port 5001').toBeGreaterThanOrEqual(5n);

  await link.detach();
  const before = await dissected(obj, 5000);
  await udp(5000, 8);
  expect((await s5000.stats({ expect: 8, waitMs: 500 })).packets, 'sink 5000, detached').toBe(8);
  expect(await flowerMatched(), 'flower matches, detached').toBe(8);
  expect(await dissected(obj, 5000), 'dissections after detach').toBe(before);
});

test('the dissector belongs to one namespace: A\'s traffic to its own flower filter is dissected by the kernel', async (ctx) => {
  await requireFeature(ctx, guest, { feature: 'tc flower, which shows what the dissector reported', since: '4.20', config: ['CONFIG_NET_CLS_FLOWER'] });
  await requireFeature(ctx, guest, { feature: 'a flow dissector as a netns bpf_link', since: '5.7' });
  // The same filter on A's ingress; the dissector on B only. Traffic from B to A's port 5000 passes.
  const tcA = iproute2('tc', net.a.netns);
  await guest.ssh.exec(`${tcA} qdisc add dev ${net.a.ifname} clsact && ${tcA} filter add dev ${net.a.ifname} ingress protocol ip flower ip_proto udp dst_port 6000 action drop`);
  const obj = await guest.load('flow_dissector_ports.bpf.c');
  await guest.attach({ type: 'flow_dissector', obj, prog: 'dissect', netns: net.b.netns });
  const sinkA = await UdpSink.open(guest.agent, { netns: net.a.netns, addr: net.a.ip, port: 5000 });
  await send(guest.agent, { netns: net.b.netns, proto: 'udp', dst: net.a.ip, dport: 5000, count: 6 });
  expect((await sinkA.stats({ expect: 6, waitMs: 500 })).packets, 'sink 5000 in A').toBe(6);
  const out = JSON.parse(await guest.ssh.exec(`${tcA} -s -j filter show dev ${net.a.ifname} ingress`)) as { kind?: string; options?: { actions?: { stats?: { packets?: number } }[] } }[];
  expect(out.find((f) => f.kind === 'flower' && f.options?.actions)?.options?.actions?.[0].stats?.packets ?? 0, 'flower matches in A').toBe(0);
  expect(await dissected(obj, 5000), 'A\'s packets seen by B\'s dissector').toBe(0n);
});
