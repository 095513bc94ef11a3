// sk_reuseport (4.19): four UDP sockets share 127.0.0.1:6000 (SO_REUSEPORT); the program,
// attached to the group, picks the socket for each datagram from a REUSEPORT_SOCKARRAY by the
// datagram's length. Each socket receives exactly the datagrams the program chose for it; the
// ones it drops reach nobody; where the array has no socket the kernel's own pick applies.
import { beforeEach, expect, test } from 'vitest';
import { type BpfObject, InetSocket, readU64s, useGuest } from '../../harness/index.js';

const guest = useGuest({ suite: 'sk_reuseport', from: import.meta.url, sources: ['reuseport_select.bpf.c'] });

const NETNS = 'bh-reuseport';
const LO = '127.0.0.1';
const PORT = 6000;
const OUTCOME = ['selected', 'no socket', 'dropped'];

beforeEach(async () => {
  await guest.ssh.exec(`ip netns add ${NETNS} && ip -n ${NETNS} link set lo up`);
});

async function decisions(obj: BpfObject): Promise<Record<string, bigint>> {
  const out: Record<string, bigint> = {};
  for (const e of await obj.map('decisions').dump()) {
    const k = Buffer.from(e.key, 'hex');
    out[`${k.readUInt32LE(0)} ${OUTCOME[k.readUInt32LE(4)]}`] = readU64s(e.value!)[0];
  }
  return out;
}

/** Four sockets on one port, in the array at 0..3, with the program on the group. */
async function group(obj: BpfObject): Promise<InetSocket[]> {
  const socks: InetSocket[] = [];
  for (let i = 0; i < 4; i++) {
    const s = await InetSocket.open(guest.agent, { netns: NETNS, proto: 'udp', addr: LO, port: PORT, reuseport: true });
    expect(s, `socket ${i} of the group`).toMatchObject({ bindErrno: 0, localPort: PORT });
    await s.sockmapAdd(obj, 'group', i);
    socks.push(s);
  }
  await socks[0].attachReuseport(obj, 'select_by_length');
  return socks;
}

test('each socket of the group receives exactly the datagrams the program picked for it', async () => {
  const obj = await guest.load('reuseport_select.bpf.c');
  const socks = await group(obj);
  const sender = await InetSocket.open(guest.agent, { netns: NETNS, proto: 'udp', addr: LO, port: 40000 });
  const plan = [3, 5, 2, 4]; // datagrams for sockets 0..3, of 100, 200, 300, 400 bytes
  for (const [i, n] of plan.entries()) {
    await sender.send({ data: String(i).repeat(100 * (i + 1)), count: n, dst: LO, dport: PORT });
  }
  for (const [i, n] of plan.entries()) {
    const got = await socks[i].recv({ expect: n, waitMs: 300 });
    expect(got.map((m) => `${m.port} ${m.data.length} ${m.data[0]}`), `socket ${i}`).toEqual(Array(n).fill(`40000 ${100 * (i + 1)} ${i}`));
  }
  expect(await decisions(obj)).toEqual({ '0 selected': 3n, '1 selected': 5n, '2 selected': 2n, '3 selected': 4n });
});

test('dropped datagrams reach no socket; where the array has no socket, the kernel still delivers to one of the group', async () => {
  const obj = await guest.load('reuseport_select.bpf.c');
  const socks = await group(obj);
  const sender = await InetSocket.open(guest.agent, { netns: NETNS, proto: 'udp', addr: LO, port: 40001 });
  await sender.send({ data: 'd'.repeat(650), count: 6, dst: LO, dport: PORT }); // dropped
  await sender.send({ data: 'n'.repeat(500), count: 5, dst: LO, dport: PORT }); // index 4: empty
  const got = await Promise.all(socks.map((s) => s.recv({ waitMs: 150 })));
  const all = got.flat();
  expect(all.filter((m) => m.data[0] === 'd'), 'dropped datagrams received').toHaveLength(0);
  // The five datagrams for the empty slot all arrived, each at one socket of the group.
  expect(all.filter((m) => m.data[0] === 'n'), 'fallback datagrams received').toHaveLength(5);
  expect(await decisions(obj)).toEqual({ '5 dropped': 6n, '4 no socket': 5n });
});
