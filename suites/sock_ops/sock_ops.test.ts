// cgroup v2 sock_ops programs (BPF_CGROUP_SOCK_OPS): TCP callbacks of sockets created inside a
// cgroup. The agent's tcp_pair makes the listener, the connecting sockets and the accepted ones in
// one child process that joined the cgroup, so both ends are in it; pairs made without `cgroup`
// are made by the agent itself, outside it. Each test uses its own namespace with lo's MTU at 1500,
// so that the MSS is 1460 and a window of a few MSS is far below the default.
import { afterEach, beforeEach, expect, test } from 'vitest';
import { type BpfObject, InetSocket, kernelFacts, linkStats, readU64s, tcpPairs, u32, useCgroup, useGuest } from '../../harness/index.js';
import { describe } from 'vitest';

const guest = useGuest({ suite: 'sock_ops', from: import.meta.url, sources: ['sock_ops.bpf.c', 'sock_ops_timeout.bpf.c'] });

// enum bpf_sock_ops_cb (uapi linux/bpf.h)
const OP = { TIMEOUT_INIT: 1, RWND_INIT: 2, TCP_CONNECT_CB: 3, ACTIVE_ESTABLISHED_CB: 4, PASSIVE_ESTABLISHED_CB: 5 } as const;
const NETNS = 'bhsockops';
const TCP_ESTABLISHED = 1;
const MSS = 1500 - 40;
const TCPOLEN_TSTAMP_ALIGNED = 12;

const cg = useCgroup(guest, 'sockops');
beforeEach(async () => {
  await guest.exec(`ip netns add ${NETNS}\nip -n ${NETNS} link set lo mtu 1500 up`);
});
afterEach(async () => {
  await guest.exec(`ip netns del ${NETNS} 2>/dev/null; true`);
});

async function pairs(count: number, inCgroup: boolean) {
  const r = await tcpPairs(guest.agent, { netns: NETNS, count, cgroup: inCgroup ? cg.path : undefined });
  expect(r.pairs).toHaveLength(count);
  const out = [];
  for (const p of r.pairs) {
    const client = await p.client.info();
    const server = await p.server.info();
    expect(client).toMatchObject({ remotePort: r.port, tcpState: TCP_ESTABLISHED });
    expect(server).toMatchObject({ localPort: r.port, remotePort: client.localPort, tcpState: TCP_ESTABLISHED });
    out.push({ client, server });
  }
  return { port: r.port, pairs: out };
}

async function opCount(obj: BpfObject, op: number): Promise<bigint> {
  return readU64s((await obj.map('op_count').lookup(u32(op)))!)[0];
}

/** The conns map as sorted "op local->remote = count" lines. */
async function conns(obj: BpfObject): Promise<string[]> {
  return (await obj.map('conns').dump())
    .map((e) => {
      const k = Buffer.from(e.key, 'hex');
      return `${k.readUInt32LE(0)} ${k.readUInt32LE(4)}->${k.readUInt32LE(8)} = ${readU64s(e.value!)[0]}`;
    })
    .sort();
}

test('each connection made inside the cgroup is recorded once per callback with its ports; ones outside are not', async () => {
  const obj = await guest.load('sock_ops.bpf.c');
  const a = await guest.attach({ type: 'sock_ops', obj, prog: 'record_ops', cgroup: cg.path });

  await pairs(3, false);
  expect(await conns(obj)).toEqual([]);
  for (const op of Object.values(OP)) expect(await opCount(obj, op), `op ${op} after connections outside`).toBe(0n);

  const N = 5;
  const inside = await pairs(N, true);
  for (const op of [OP.TCP_CONNECT_CB, OP.ACTIVE_ESTABLISHED_CB, OP.PASSIVE_ESTABLISHED_CB]) {
    expect(await opCount(obj, op), `op ${op}`).toBe(BigInt(N));
  }
  const L = inside.port;
  const expected = inside.pairs.flatMap(({ client }) => [
    `${OP.TCP_CONNECT_CB} ${client.localPort}->${L} = 1`,
    `${OP.ACTIVE_ESTABLISHED_CB} ${client.localPort}->${L} = 1`,
    `${OP.PASSIVE_ESTABLISHED_CB} ${L}->${client.localPort} = 1`,
  ]);
  expect(await conns(obj)).toEqual(expected.sort());
  // Detached: new connections inside the cgroup are not recorded.
  await a.detach();
  await pairs(2, true);
  expect(await opCount(obj, OP.TCP_CONNECT_CB)).toBe(BigInt(N));
  expect(await conns(obj)).toHaveLength(3 * N);
  await obj.unload();
});

test('the RWND_INIT reply sets the initial receive window and bpf_setsockopt sets SO_PRIORITY, inside the cgroup only', async () => {
  const obj = await guest.load('sock_ops.bpf.c');
  const RWND_MSS = 3;
  await obj.map('config').update(u32(0), u32(RWND_MSS));
  await obj.map('config').update(u32(1), u32(5));
  await obj.map('config').update(u32(2), u32(3));
  await guest.attach({ type: 'sock_ops', obj, prog: 'record_ops', cgroup: cg.path });

  const inside = await pairs(2, true);
  const outside = await pairs(2, false);
  // RWND_INIT is asked once per connection on each side (connect, and the SYN's request socket).
  expect(await opCount(obj, OP.RWND_INIT)).toBe(4n);
  // The window offered in the SYN is RWND_MSS segments of the MSS the side used then: 1460 on the
  // connecting side (MTU 1500), 1448 on the accepting side, which already knows timestamps are on.
  // With no data exchanged, tcpi_rcv_ssthresh still holds it.
  for (const { client, server } of inside.pairs) {
    expect(client.rcvSsthresh).toBe(RWND_MSS * MSS);
    expect(server.rcvSsthresh).toBe(RWND_MSS * (MSS - TCPOLEN_TSTAMP_ALIGNED));
    expect(server.advmss).toBe(MSS - TCPOLEN_TSTAMP_ALIGNED);
    expect([client.priority, server.priority]).toEqual([5, 3]);
  }
  // Outside the cgroup: the kernel's default window (far larger) and no priority.
  for (const { client, server } of outside.pairs) {
    expect(client.rcvSsthresh).toBeGreaterThan(10 * MSS);
    expect(server.rcvSsthresh).toBeGreaterThan(10 * MSS);
    expect([client.priority, server.priority]).toEqual([0, 0]);
  }
  await obj.unload();
});

// Issue 11: BPF_SOCK_OPS_TIMEOUT_INIT sets the initial RTO, and the kernel uses it. Connections go
// to an address behind a dummy device, which drops every packet it transmits (and counts it), so
// the SYN is never answered. The agent's connect gives up waiting after its timeoutMs (SO_SNDTIMEO:
// EINPROGRESS) and leaves the socket in SYN_SENT, where /proc/net/tcp shows the kernel's RTO and
// retransmission count for it. With a 10 s initial RTO from the program, the RTO is 10 s and the
// SYN went out once; without the program's answer (outside the cgroup), the 1 s default has fired:
// retransmitted, the RTO backed off.
describe('TIMEOUT_INIT', () => {
  const TCP_SYN_SENT = 2;
  const EINPROGRESS = 115;
  const RTO_SECONDS = 10;
  const USER_HZ = 100; // /proc/net/tcp's unit of the RTO (clock_t)
  const DEST = '10.201.0.2';

  /** The /proc/net/tcp line of the socket from `localPort` to DEST:80: state, retransmissions, RTO in seconds. */
  async function procNetTcp(localPort: number) {
    const hexDest = Buffer.from(DEST.split('.').map(Number)).readUInt32LE(0).toString(16).toUpperCase().padStart(8, '0');
    const hexPort = localPort.toString(16).toUpperCase().padStart(4, '0');
    const lines = (await guest.exec(`ip netns exec ${NETNS} cat /proc/net/tcp`)).split('\n').map((l) => l.trim().split(/\s+/));
    const mine = lines.filter((f) => f[2] === `${hexDest}:0050` && f[1]?.endsWith(`:${hexPort}`));
    expect(mine, `/proc/net/tcp lines from port ${localPort} to ${DEST}:80`).toHaveLength(1);
    const f = mine[0];
    return { state: parseInt(f[3], 16), retransmits: parseInt(f[6], 16), rtoSeconds: Number(f[12]) / USER_HZ };
  }

  test('the reply becomes the SYN\'s retransmission timeout: 10 s as the kernel reports it, and no retransmission while the default 1 s retransmits', async () => {
    const hz = Number((await kernelFacts(guest)).config?.get('CONFIG_HZ'));
    expect(hz, 'CONFIG_HZ from the kernel config').toBeGreaterThan(0);
    // IPv6 off on it first: its router solicitations and MLD reports would count as sent packets.
    await guest.exec(
      [
        `ip -n ${NETNS} link add bh0 type dummy`,
        `ip netns exec ${NETNS} sh -c 'echo 1 > /proc/sys/net/ipv6/conf/bh0/disable_ipv6' 2>/dev/null || true`,
        `ip -n ${NETNS} addr add 10.201.0.1/24 dev bh0`,
        `ip -n ${NETNS} link set bh0 up`,
      ].join('\n'),
    );
    const obj = await guest.load('sock_ops_timeout.bpf.c');
    await obj.map('timeout_cfg').update(u32(0), u32(RTO_SECONDS * hz));
    await guest.attach({ type: 'sock_ops', obj, prog: 'set_timeout_init', cgroup: cg.path });

    // Two SYNs into the dummy (which drops them): one from a socket made inside the cgroup, whose
    // connect returns at once, and one from outside, whose connect waits 2 s, past the default
    // 1 s RTO. Then the kernel's view of both.
    const start = await linkStats(guest, 'bh0', NETNS);
    const inside = await InetSocket.open(guest.agent, { netns: NETNS, proto: 'tcp', cgroup: cg.path });
    const insideConnect = await inside.connect({ dst: DEST, dport: 80, timeoutMs: 50 });
    const afterInside = await linkStats(guest, 'bh0', NETNS);
    const outside = await InetSocket.open(guest.agent, { netns: NETNS, proto: 'tcp' });
    const outsideConnect = await outside.connect({ dst: DEST, dport: 80, timeoutMs: 2000 });
    const inTcp = await procNetTcp(insideConnect.localPort);
    // The outside socket goes on retransmitting: its retransmission count and the device's packet
    // count are read as one state, the count read on both sides of the counter until the two agree
    // (a retransmission between the two readings would make them differ by one).
    let end = await linkStats(guest, 'bh0', NETNS);
    let outTcp = await procNetTcp(outsideConnect.localPort);
    for (let tries = 0; tries < 5; tries++) {
      const before = outTcp;
      end = await linkStats(guest, 'bh0', NETNS);
      outTcp = await procNetTcp(outsideConnect.localPort);
      if (outTcp.retransmits === before.retransmits) break;
    }
    for (const s of [inside, outside]) await s.close();

    const insideSeen = { connectErrno: insideConnect.connectErrno, ...inTcp, synsAtConnect: afterInside.txPackets - start.txPackets };
    expect(insideSeen, JSON.stringify(insideSeen)).toEqual({ connectErrno: EINPROGRESS, state: TCP_SYN_SENT, retransmits: 0, rtoSeconds: RTO_SECONDS, synsAtConnect: 1 });
    expect(Buffer.from((await obj.map('timeout_cfg').lookup(u32(1)))!, 'hex').readUInt32LE(0)).toBe(1);

    const seen = JSON.stringify({ connectErrno: outsideConnect.connectErrno, ...outTcp });
    expect(outsideConnect.connectErrno, seen).toBe(EINPROGRESS);
    expect(outTcp.state, seen).toBe(TCP_SYN_SENT);
    // Retransmitted at 1 s, one more SYN each time; the inside socket, 2 s old by then, sent no
    // second SYN (every SYN after its first is the outside socket's). The RTO doubled each time,
    // except for the first tcp_syn_linear_timeouts retransmissions of a SYN (6.6 on; default 4),
    // which keep the initial RTO.
    const linear = Number((await guest.exec(`ip netns exec ${NETNS} cat /proc/sys/net/ipv4/tcp_syn_linear_timeouts 2>/dev/null || echo 0`)).trim());
    expect(outTcp.retransmits, seen).toBeGreaterThanOrEqual(1);
    expect(outTcp.rtoSeconds, `${seen}, tcp_syn_linear_timeouts ${linear}`).toBe(outTcp.retransmits <= linear ? 1 : 2 ** (outTcp.retransmits - linear));
    expect(end.txPackets - afterInside.txPackets, seen).toBe(1 + outTcp.retransmits);
  });
});
