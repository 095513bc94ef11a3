// AF_XDP (4.18): an AF_XDP socket bound to queue 0 of namespace B's veth, in an XSKMAP; an XDP
// program (generic mode) redirects UDP to port 9000 into it. The socket's RX ring receives exactly
// those frames, at their exact length, and the kernel's UDP socket on port 9000 gets none; other
// ports go on to the stack. Without the XDP program, port 9000 reaches the kernel's socket again.
import { expect, test } from 'vitest';
import { frameLength, readU64s, send, SETTLE_MS, u32, UdpSink, useGuest, useVethPair, XskSocket } from '../../harness/index.js';

const guest = useGuest({ suite: 'af_xdp', from: import.meta.url, sources: ['xdp_to_xsk.bpf.c'] });
const net = useVethPair(guest);
const SIZE = 40;

async function setup() {
  const obj = await guest.load('xdp_to_xsk.bpf.c');
  const xdp = await guest.attach({ type: 'xdp', obj, prog: 'to_xsk', ifname: net.b.ifname, netns: net.b.netns, mode: 'generic' });
  const xsk = await XskSocket.open(guest.agent, { netns: net.b.netns, ifname: net.b.ifname, queue: 0, obj: obj.handle, map: 'xsks' });
  const sink9000 = await UdpSink.open(guest.agent, { netns: net.b.netns, addr: net.b.ip, port: 9000 });
  const sink9001 = await UdpSink.open(guest.agent, { netns: net.b.netns, addr: net.b.ip, port: 9001 });
  const udp = (dport: number, count: number) => send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport, count, size: SIZE });
  return { obj, xdp, xsk, sink9000, sink9001, udp };
}

test('the AF_XDP socket receives exactly the frames the XDP program redirects, at their length; the kernel\'s socket gets none of them', async () => {
  const { obj, xsk, sink9000, sink9001, udp } = await setup();
  await udp(9000, 10);
  await udp(9001, 5);
  expect(await xsk.stats({ expect: 10, waitMs: 500 }), 'AF_XDP socket').toMatchObject({
    frames: 10,
    bytes: 10 * frameLength('udp', SIZE),
    lengths: Array(10).fill(frameLength('udp', SIZE)),
  });
  const redirected = async () => readU64s((await obj.map('redirected').lookup(u32(0)))!)[0];
  expect((await sink9000.stats({ judged: { count: redirected, expected: 10 } })).packets, 'kernel socket on 9000').toBe(0);
  expect((await sink9001.stats({ expect: 5, waitMs: 500 })).packets, 'kernel socket on 9001').toBe(5);
  expect(readU64s((await obj.map('redirected').lookup(u32(0)))!)[0], 'redirected by the program').toBe(10n);
  // The rings keep going: the agent hands each buffer back, so three batches of 100 (more than
  // the 256 buffers of the UMEM) all arrive. (A burst larger than the RX ring while nobody reads
  // would not: the kernel drops what does not fit.)
  for (let batch = 1; batch <= 3; batch++) {
    await udp(9000, 100);
    expect((await xsk.stats({ expect: 100, waitMs: 1000 })).frames, `batch ${batch} of 100`).toBe(100);
  }
});

test('without the XDP program, port 9000 reaches the kernel\'s socket and the AF_XDP socket receives nothing', async () => {
  const { xdp, xsk, sink9000, udp } = await setup();
  await xdp.detach();
  await udp(9000, 7);
  expect((await sink9000.stats({ expect: 7, waitMs: 500 })).packets, 'kernel socket on 9000').toBe(7);
  // All 7 reached the kernel's socket: none is left for the AF_XDP socket but a surplus.
  expect((await xsk.stats({ waitMs: SETTLE_MS })).frames, 'AF_XDP socket').toBe(0);
});
