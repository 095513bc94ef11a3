// sk_skb stream parser / verdict programs attached to a sockmap (BPF_PROG_ATTACH with the map's
// fd). Two connected TCP pairs on the loopback of a namespace; server sockets are put into the
// sockmap from user space, so the verdict program decides what happens to the data their clients
// write: redirect it out of another socket, drop it, or let it through.
//
// Kernel history: sockmap and sk_skb arrived in 4.14, where a socket is only hooked when both a
// parser and a verdict are attached to its map. Since 5.10 ("bpf, sockmap: Allow skipping
// sk_skb parser program") a verdict alone is enough; before that, a verdict-only map adds the
// socket but never runs the program.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { atLeast, type BpfObject, hostSlowness, pollUntil, readU64s, type StreamSocket, type TcpPair, tcpPairs, u32, useCgroup, useGuest } from '../../harness/index.js';

const guest = useGuest({
  suite: 'sk_skb',
  from: import.meta.url,
  sources: ['sk_skb_redirect.bpf.c', 'sk_skb_framing.bpf.c'],
});

const NETNS = 'skskb';
beforeEach(async () => {
  await guest.exec(`ip netns add ${NETNS}`);
});
afterEach(async () => {
  await guest.exec(`ip netns del ${NETNS} 2>/dev/null; true`);
});

const STAT_PARSER = 0;
const STAT_VERDICT = 1;

async function stat(obj: BpfObject, key: number) {
  const [calls, bytes] = readU64s((await obj.map('stats').lookup(u32(key)))!);
  return { calls, bytes };
}

/** Polls until `cond` holds (10 s at most, on the reference machines; longer on a slower host). */
const until = (cond: () => Promise<boolean>) => pollUntil(cond, 10_000);

/** Reads from a TCP socket until `bytes` bytes came (or 10 s passed, times the host's slowness); returns what came. */
async function readExactly(sock: StreamSocket, bytes: number): Promise<string> {
  let data = '';
  let got = 0;
  const end = Date.now() + 10_000 * hostSlowness();
  while (got < bytes && Date.now() < end) {
    const r = await sock.read({ waitMs: 100, expect: bytes - got });
    data += r.data;
    got += r.bytes;
    if (r.eof) break;
  }
  return data;
}

// 4.17 gave sockets in a sockmap their own recvmsg (bpf_tcp_recvmsg in kernel/bpf/sockmap.c), which
// answers a non-blocking read of an empty socket with 0 instead of EAGAIN: it reads as the end of
// the stream although the connection is up (seen on 4.19.78; 4.14 has no such recvmsg, 5.10 returns
// EAGAIN).
const RECV_ZERO_WHEN_EMPTY = (v: [number, number, number]) => atLeast(v, '4.17') && !atLeast(v, '5.10');

/**
 * Nothing is (or arrives) on a socket, and its connection is still up. Every caller first waits
 * for the exact end of its traffic (the bytes arrived where they were sent, or the verdict counted
 * every byte written), after which nothing can be on its way: the window only has to let a
 * surplus show, as the agent's other settle windows do.
 */
async function expectNothing(s: StreamSocket): Promise<void> {
  const r = await s.read({ waitMs: 20 });
  expect(r, `sock ${s.sock}`).toMatchObject({ data: '', bytes: 0 });
  if (r.eof) {
    expect(RECV_ZERO_WHEN_EMPTY(guest.kernel.version), `sock ${s.sock}: a read returned 0 (end of stream) on ${guest.kernel.release}`).toBe(true);
    // The kernel's own word that the connection is not closed: TCP_ESTABLISHED.
    expect((await s.info()).tcpState, `sock ${s.sock}: TCP state`).toBe(1);
  }
}

interface Setup {
  obj: BpfObject;
  pairs: TcpPair[];
}

/** Loads the object, attaches the verdict (and parser), makes two TCP pairs, puts servers into sock_map. */
async function setup(verdict: string, withParser: boolean, inMap: { key: number; pair: number }[]): Promise<Setup> {
  const obj = await guest.load('sk_skb_redirect.bpf.c');
  if (withParser) await guest.attach({ type: 'sk_skb', obj, prog: 'parser', map: 'sock_map', kind: 'stream_parser' });
  await guest.attach({ type: 'sk_skb', obj, prog: verdict, map: 'sock_map', kind: 'stream_verdict' });
  // Programs first, then sockets: a socket is hooked with the programs its map has when it is added.
  const { pairs } = await tcpPairs(guest.agent, { netns: NETNS, count: 2 });
  for (const { key, pair } of inMap) {
    await pairs[pair].server.sockmapAdd(obj, 'sock_map', key);
  }
  return { obj, pairs };
}

const MSG1 = 'first message through the sockmap: 0123456789\n';
const MSG2 = 'second one, with UTF-8 bytes: \u00e9\u00e8 \u2713\n';
const len = (s: string) => Buffer.byteLength(s, 'utf8');

async function redirectTest(withParser: boolean) {
  // Server 0 at key 0 (its received stream is judged), server 1 at key 1 (the redirect target).
  const { obj, pairs } = await setup('redirect_to_1', withParser, [
    { key: 0, pair: 0 },
    { key: 1, pair: 1 },
  ]);
  const [p0, p1] = pairs;
  // One write per message, each redirected and read at the far end before the next is written:
  // two writes that were still in flight together could reach the parser as one segment or two,
  // one at a time they are one message each, and the programs run exactly once per message.
  // The bytes client 0 wrote leave through server 1 and arrive, unchanged and in order, at client 1.
  for (const m of [MSG1, MSG2]) {
    expect((await p0.client.write(m)).written).toBe(len(m));
    expect(await readExactly(p1.client, len(m))).toBe(m);
  }
  const total = len(MSG1) + len(MSG2);
  // Their own peer (server 0) never sees them; nothing else moved either.
  for (const s of [p0.server, p0.client, p1.server, p1.client]) await expectNothing(s);

  const v = await stat(obj, STAT_VERDICT);
  expect(v).toEqual({ calls: 2n, bytes: BigInt(total) });
  const p = await stat(obj, STAT_PARSER);
  expect(p).toEqual(withParser ? v : { calls: 0n, bytes: 0n });
}

test('stream parser + verdict: bpf_sk_redirect_map sends a client\'s bytes out of another pair\'s socket', async () => {
  await redirectTest(true);
});

test('verdict without a parser redirects too (parser optional since 5.10)', async (ctx) => {
  guest.requireKernel(ctx, '5.10', 'sk_skb stream verdict without a stream parser');
  await redirectTest(false);
});

test('SK_DROP discards the stream: the peer reads nothing while the verdict counts every byte', async () => {
  const { obj, pairs } = await setup('drop_all', true, [{ key: 0, pair: 0 }]);
  const [p0, p1] = pairs;
  const w1 = await p0.client.write(MSG1);
  const w2 = await p0.client.write(MSG2);
  expect(w1.written + w2.written).toBe(len(MSG1) + len(MSG2));

  // Wait until the verdict has judged every byte written; after that nothing can be on its way.
  const total = BigInt(len(MSG1) + len(MSG2));
  expect(await until(async () => (await stat(obj, STAT_VERDICT)).bytes >= total)).toBe(true);
  expect((await stat(obj, STAT_VERDICT)).bytes).toBe(total);
  await expectNothing(p0.server);
  // The other pair, not in the map, is untouched: data flows normally there.
  await p1.client.write(MSG1);
  expect(await readExactly(p1.server, len(MSG1))).toBe(MSG1);

  // Out of the map, server 0 is an ordinary socket again: new data reaches it, the verdict is not run.
  await obj.map('sock_map').delete(u32(0));
  await p0.client.write(MSG2);
  expect(await readExactly(p0.server, len(MSG2))).toBe(MSG2);
  expect((await stat(obj, STAT_VERDICT)).bytes).toBe(total);
});

// Debian's 5.10 (5.10.223) deadlocks the CPU on SK_PASS under a stream parser: sk_psock_strp_data_ready
// holds sk_callback_lock for writing around strp_data_ready, and sk_psock_skb_ingress_enqueue
// (reached through sk_psock_verdict_apply -> sk_psock_skb_ingress_self) takes it for reading:
// soft lockup in queued_read_lock_slowpath, the guest never recovers. Without a parser the
// verdict runs from sk_psock_verdict_data_ready, which does not hold the lock, and works.
const STRP_PASS_DEADLOCK = (v: [number, number, number]) => v[0] === 5 && v[1] === 10;

for (const withParser of [true, false]) {
  test(`SK_PASS leaves the stream with its own socket, byte for byte (${withParser ? 'parser + verdict' : 'verdict only'})`, async (ctx) => {
    if (withParser) {
      // On 4.14-4.19 SK_PASS without a redirect drops the data (the test below shows it); delivery
      // to the socket itself came with "bpf: skb_verdict, support SK_PASS on RX BPF path" (4.20).
      guest.requireKernel(ctx, '4.20', 'sk_skb SK_PASS delivering to the socket itself (before it, SK_PASS drops: see the next test)');
      if (STRP_PASS_DEADLOCK(guest.kernel.version)) {
        ctx.skip(`kernel bug, ${guest.kernel.pinned}: SK_PASS under a stream parser deadlocks on sk_callback_lock (soft lockup)`);
      }
    } else {
      guest.requireKernel(ctx, '5.10', 'sk_skb stream verdict without a stream parser');
    }
    const { obj, pairs } = await setup('pass_all', withParser, [{ key: 0, pair: 0 }]);
    const [p0, p1] = pairs;
    await p0.client.write(MSG1);
    await p0.client.write(MSG2);
    const total = len(MSG1) + len(MSG2);
    expect(await readExactly(p0.server, total)).toBe(MSG1 + MSG2);
    for (const s of [p0.client, p1.server, p1.client]) await expectNothing(s);
    expect((await stat(obj, STAT_VERDICT)).bytes).toBe(BigInt(total));
    expect((await stat(obj, STAT_PARSER)).bytes).toBe(withParser ? BigInt(total) : 0n);
  });
}

test('before 4.20, SK_PASS under a stream parser drops the stream: the verdict judges every byte, the socket reads none', async (ctx) => {
  // 4.14-4.19's smap_verdict_func turns SK_PASS without a redirect target into SK_DROP.
  if (atLeast(guest.kernel.version, '4.20')) ctx.skip(`kernel ${guest.kernel.release} delivers SK_PASS to the socket itself (4.20+): the test above covers it`);
  const { obj, pairs } = await setup('pass_all', true, [{ key: 0, pair: 0 }]);
  const [p0, p1] = pairs;
  await p0.client.write(MSG1);
  await p0.client.write(MSG2);
  const total = BigInt(len(MSG1) + len(MSG2));
  expect(await until(async () => (await stat(obj, STAT_VERDICT)).bytes >= total), 'the verdict saw every byte').toBe(true);
  expect((await stat(obj, STAT_VERDICT)).bytes).toBe(total);
  expect((await stat(obj, STAT_PARSER)).bytes).toBe(total);
  for (const s of [p0.server, p0.client, p1.server, p1.client]) await expectNothing(s);
});

describe('sockets added by a sock_ops program', () => {
  const cg = useCgroup(guest, 'skskb');

  test('SK_DROP swallows both directions of the connection', async () => {
    const obj = await guest.load('sk_skb_redirect.bpf.c');
    await guest.attach({ type: 'sk_skb', obj, prog: 'parser', map: 'sock_map', kind: 'stream_parser' });
    await guest.attach({ type: 'sk_skb', obj, prog: 'drop_all', map: 'sock_map', kind: 'stream_verdict' });
    await guest.attach({ type: 'sock_ops', obj, prog: 'add_established', cgroup: cg.path });
    // Made inside the cgroup: as they become established, sock_ops puts the server at key 0 and
    // the client at key 1. User space adds nothing to the map.
    const { pairs } = await tcpPairs(guest.agent, { netns: NETNS, count: 1, cgroup: cg.path });
    const [p] = pairs;
    await p.client.write(MSG1);
    await p.server.write(MSG2);

    const total = BigInt(len(MSG1) + len(MSG2));
    expect(await until(async () => (await stat(obj, STAT_VERDICT)).bytes >= total)).toBe(true);
    expect((await stat(obj, STAT_VERDICT)).bytes).toBe(total);
    expect((await stat(obj, STAT_PARSER)).bytes).toBe(total);
    await expectNothing(p.server);
    await expectNothing(p.client);
  });
});

// Issue 11: the stream parser decides where messages end. A parser that returns a fixed length
// makes the verdict see messages of exactly that length (two out of one write), and a parser
// that returns 0 holds the data back, verdict not run, until the rest of the message arrives.
// The verdict redirects each message out of the other pair's server, so what it passed on is read
// at that pair's client, on every kernel (SK_PASS to the socket itself needs 4.20, and soft-locks
// Debian's 5.10 under a parser).
describe('stream parser framing', () => {
  const MSG_LEN = 16;

  /** Messages the verdict was given. */
  const verdictCalls = async (obj: BpfObject) => Number(readU64s((await obj.map('verdict_calls').lookup(u32(0)))!)[0]);
  /** [parser calls, of them answered 0]. */
  const parserCalls = async (obj: BpfObject) =>
    Promise.all([0, 1].map(async (k) => Number(readU64s((await obj.map('parser_calls').lookup(u32(k)))!)[0])));

  async function framingSetup() {
    const obj = await guest.load('sk_skb_framing.bpf.c');
    await guest.attach({ type: 'sk_skb', obj, prog: 'parse_fixed', map: 'framing_map', kind: 'stream_parser' });
    await guest.attach({ type: 'sk_skb', obj, prog: 'verdict_count', map: 'framing_map', kind: 'stream_verdict' });
    const { pairs } = await tcpPairs(guest.agent, { netns: NETNS, count: 2 });
    for (const key of [0, 1]) await pairs[key].server.sockmapAdd(obj, 'framing_map', key);
    return { obj, judged: pairs[0], out: pairs[1] };
  }

  // What a redirected message carries. 6.1 sends exactly the message's bytes. 4.14.67 and Debian's
  // 5.10.223 (measured) send, for each message, the whole skb the message starts in (their
  // redirect ignores the parser's offset and length): one 40-byte write cut into two messages
  // goes out twice, whole. The parser's framing itself, the verdict run once per message, is the
  // same on all of them.
  const redirectsWholeSkb = () => !atLeast(guest.kernel.version, '6.1');

  test('a parser returning a fixed length frames the stream in 16-byte messages: one 40-byte write gives the verdict two, and the last 8 bytes wait for the rest of theirs', async () => {
    const { obj, judged, out } = await framingSetup();
    const two = 'ABCDEFGHIJKLMNOP' + 'abcdefghijklmnop';
    const write = `${two}01234567`;
    expect((await judged.client.write(write)).written).toBe(40);

    // The two whole messages are passed on (what each carries: see above), each through its own
    // verdict call, and nothing of the third.
    const first = redirectsWholeSkb() ? write + write : two;
    expect(await readExactly(out.client, Buffer.byteLength(first))).toBe(first);
    expect(await verdictCalls(obj)).toBe(2);
    await expectNothing(out.client);
    // The third message completes with 8 more bytes, and only then goes on.
    await judged.client.write('89abcdef');
    const third = redirectsWholeSkb() ? `${write}89abcdef` : '0123456789abcdef';
    expect(await readExactly(out.client, Buffer.byteLength(third))).toBe(third);
    expect(await verdictCalls(obj)).toBe(3);
    for (const s of [judged.server, judged.client, out.server, out.client]) await expectNothing(s);
  });

  test('a parser returning 0 holds a short message back: the verdict runs only once the rest has arrived', async () => {
    const { obj, judged, out } = await framingSetup();
    await judged.client.write('first ten!');
    // The parser has seen the 10 bytes and asked for more; the verdict has not run.
    expect(await until(async () => (await parserCalls(obj))[1] >= 1), 'the parser was asked').toBe(true);
    await expectNothing(out.client);
    expect(await verdictCalls(obj)).toBe(0);

    await judged.client.write('six!!!');
    expect(await readExactly(out.client, MSG_LEN)).toBe('first ten!six!!!');
    expect(await verdictCalls(obj)).toBe(1);
    // Asked twice: once with the 10 bytes (0: more), once with all 16.
    expect(await parserCalls(obj)).toEqual([2, 1]);
    for (const s of [judged.server, out.server]) await expectNothing(s);
  });
});
