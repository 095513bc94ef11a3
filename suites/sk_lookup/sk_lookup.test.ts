// sk_lookup (5.9): a program attached to a network namespace picks the socket for new TCP
// connections and UDP datagrams to ports 8000-8009, which nothing is bound to: a TCP listener on
// port 7777 accepts the connections (with their data), a UDP socket on port 7778 receives the
// datagrams, and the clients see the port they dialled. UDP to port 8010 is dropped although a
// socket is bound there. Another namespace, and this one once the link is gone, work as usual.
import { beforeEach, expect, test } from 'vitest';
import { type BpfObject, InetSocket, type InetSocketRequest, readU64s, UdpSink, useGuest } from '../../harness/index.js';

const guest = useGuest({ suite: 'sk_lookup', from: import.meta.url, sources: ['sk_lookup_steer.bpf.c'] });

const NETNS = 'bh-sklookup';
const OTHER = 'bh-sklookup-other';
const LO = '127.0.0.1';
const [TCP, UDP] = [6, 17];
const OUTCOME = ['passed', 'assigned', 'dropped', 'no target'];
const ECONNREFUSED = 111;

beforeEach(async () => {
  await guest.ssh.exec(`for n in ${NETNS} ${OTHER}; do ip netns add $n && ip -n $n link set lo up || exit 1; done`);
});

const inet = (req: InetSocketRequest) => InetSocket.open(guest.agent, { netns: NETNS, ...req });

/** The program's decisions on ports 8000-8010: "tcp 8003 assigned" → count. */
async function decisions(obj: BpfObject): Promise<Record<string, bigint>> {
  const out: Record<string, bigint> = {};
  for (const e of await obj.map('decisions').dump()) {
    const k = Buffer.from(e.key, 'hex');
    out[`${k.readUInt32LE(0) === TCP ? 'tcp' : k.readUInt32LE(0) === UDP ? 'udp' : k.readUInt32LE(0)} ${k.readUInt32LE(4)} ${OUTCOME[k.readUInt32LE(8)]}`] = readU64s(e.value!)[0];
  }
  return out;
}

test('TCP connections to ports 8000-8009 are accepted by the listener on port 7777, with their data; other ports and other namespaces are untouched', async () => {
  const obj = await guest.load('sk_lookup_steer.bpf.c');
  const listener = await inet({ proto: 'tcp', addr: LO, port: 7777, listen: true });
  await listener.sockmapAdd(obj, 'targets', 0);
  const link = await guest.attach({ type: 'sk_lookup', obj, prog: 'steer', netns: NETNS });

  const clients: { port: number; localPort: number }[] = [];
  for (const port of [8003, 8009]) {
    const c = await inet({ proto: 'tcp' });
    const r = await c.connect({ dst: LO, dport: port });
    // The client is connected to the port it dialled; the kernel gave the connection to 7777's listener.
    expect(r, `connect to ${port}`).toMatchObject({ connectErrno: 0, remoteAddr: LO, remotePort: port });
    await c.send({ data: `to ${port}` });
    await c.close();
    clients.push({ port, localPort: r.localPort });
  }
  expect(await listener.recv({ expect: 2 }), 'accepted by the listener on 7777').toEqual(
    clients.map((c) => ({ addr: LO, port: c.localPort, data: `to ${c.port}` })),
  );

  // Port 7999 is outside the range and nothing listens there; in the other namespace, 8003 is
  // just a closed port.
  const outside = await inet({ proto: 'tcp' });
  expect(await outside.connect({ dst: LO, dport: 7999 }), 'connect to 7999').toMatchObject({ connectErrno: ECONNREFUSED });
  const other = await InetSocket.open(guest.agent, { netns: OTHER, proto: 'tcp' });
  expect(await other.connect({ dst: LO, dport: 8003 }), 'connect to 8003 in the other namespace').toMatchObject({ connectErrno: ECONNREFUSED });
  expect(await decisions(obj)).toEqual({ 'tcp 8003 assigned': 1n, 'tcp 8009 assigned': 1n });

  // Without the link the namespace looks sockets up as usual again.
  await link.detach();
  const after = await inet({ proto: 'tcp' });
  expect(await after.connect({ dst: LO, dport: 8003 }), 'connect to 8003, detached').toMatchObject({ connectErrno: ECONNREFUSED });
  expect(await listener.recv({ waitMs: 100 }), 'accepted after detach').toEqual([]);
  expect(await decisions(obj)).toEqual({ 'tcp 8003 assigned': 1n, 'tcp 8009 assigned': 1n });
});

test('UDP datagrams to ports 8000-8009 reach the socket on port 7778; those to port 8010 are dropped although a socket is bound there', async () => {
  const obj = await guest.load('sk_lookup_steer.bpf.c');
  const target = await inet({ proto: 'udp', addr: LO, port: 7778 });
  await target.sockmapAdd(obj, 'targets', 1);
  const bound8010 = await UdpSink.open(guest.agent, { netns: NETNS, addr: LO, port: 8010 });
  const link = await guest.attach({ type: 'sk_lookup', obj, prog: 'steer', netns: NETNS });

  const sender = await inet({ proto: 'udp', addr: LO, port: 40000 });
  await sender.send({ data: 'to 8000', count: 3, dst: LO, dport: 8000 });
  await sender.send({ data: 'to 8005', count: 2, dst: LO, dport: 8005 });
  await sender.send({ data: 'to 8010', count: 4, dst: LO, dport: 8010 });
  expect(await target.recv({ expect: 5 }), 'at the socket on 7778').toEqual([
    ...Array(3).fill({ addr: LO, port: 40000, data: 'to 8000' }),
    ...Array(2).fill({ addr: LO, port: 40000, data: 'to 8005' }),
  ]);
  // Judged: the program dropped all 4.
  const dropped8010 = async () => (await decisions(obj))['udp 8010 dropped'] ?? 0n;
  expect(await bound8010.stats({ judged: { count: dropped8010, expected: 4 } }), 'at the socket bound to 8010').toMatchObject({ packets: 0 });
  expect(await decisions(obj)).toEqual({ 'udp 8000 assigned': 3n, 'udp 8005 assigned': 2n, 'udp 8010 dropped': 4n });

  // Detached: 8010's own socket gets its datagrams, and nothing reaches 7778 through 8000.
  await link.detach();
  await sender.send({ data: 'to 8010', count: 4, dst: LO, dport: 8010 });
  await sender.send({ data: 'to 8000', count: 1, dst: LO, dport: 8000 });
  expect(await bound8010.stats({ expect: 4, waitMs: 500 }), 'at 8010, detached').toMatchObject({ packets: 4 });
  expect(await target.recv({ waitMs: 100 }), 'at 7778, detached').toEqual([]);
});
