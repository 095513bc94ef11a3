// Traffic with exact counts: the agent sends a known number of packets of one protocol from one
// namespace and counts the replies; a UDP sink counts what arrived; interface counters come from
// iproute2's JSON output.
import type { Agent, BpfMap } from './agent.js';
import type { Hex, Ops } from './protocol.js';
import { shq } from '../base/quote.js';
import type { GuestCommands } from '../guest/commands.js';
import { hostSlowness } from '../base/host-speed.js';

export type Proto = Ops['send']['req']['proto'];
export type SendOptions = Ops['send']['req'];
export type SendResult = Ops['send']['res'];

export const ETH_HLEN = 14;
const L4_HEADER: Record<Proto, number> = { icmp: 8, udp: 8, tcp: 20 };
export const IP_PROTO: Record<Proto, number> = { icmp: 1, tcp: 6, udp: 17 };

/** Length of the IPv4 packet `send` makes for a payload of `size` bytes. */
export function ipLength(proto: Proto, size: number): number {
  return 20 + L4_HEADER[proto] + size;
}

/** Length of the Ethernet frame (what XDP and tc see as the packet length). */
export function frameLength(proto: Proto, size: number): number {
  return ETH_HLEN + ipLength(proto, size);
}

/** What a packet counter holds after `count` frames of `proto` with `size`-byte payloads: packets and bytes, as u64s. */
export function frames(proto: Proto, count: number, size: number): { packets: bigint; bytes: bigint } {
  return { packets: BigInt(count), bytes: BigInt(count * frameLength(proto, size)) };
}

/**
 * A count the agent itself polls while it waits for replies: the first u64 (or u32) of `map`'s
 * value at `key`, summed over CPUs for a per-CPU map. Once it reaches `expected` the program
 * has judged every packet, and the wait for replies that must not come ends after the settle
 * window instead of the whole `waitMs`.
 */
export interface SendJudged {
  map: BpfMap;
  key: Hex;
  expected: number | bigint;
}

/** What send() takes: the agent's send request, with its exact end as a map of the program's. */
export type SendRequest = Omit<SendOptions, 'judged' | 'key' | 'obj' | 'map' | 'pin'> & { judged?: SendJudged };

/**
 * Sends `count` packets and returns the counts as the agent gave them, the sends the kernel refused
 * included (`sendErrors`, `sendErrno`: a hook that drops on the way out may fail a send with
 * EPERM, or ENOBUFS); see images/agent/PROTOCOL.md for what counts as a reply.
 */
export function sendAllowingErrors(agent: Agent, opts: SendRequest): Promise<SendResult> {
  const { judged, ...rest } = opts;
  return agent.call('send', judged ? { ...rest, ...judged.map.ref, key: judged.key, judged: Number(judged.expected) } : rest);
}

/** Sends `count` packets, every one of which must leave; see images/agent/PROTOCOL.md for what counts as a reply. */
export async function send(agent: Agent, opts: SendRequest): Promise<SendResult> {
  const r = await sendAllowingErrors(agent, opts);
  if (r.sent !== opts.count) throw new Error(`send ${opts.proto}: asked for ${opts.count} packets, the agent sent ${r.sent}`);
  return r;
}

/** How long a surplus has to show after an exact end (the agent's SETTLE_NS). */
export const SETTLE_MS = 20;

/**
 * The program under test's own count of the packets it judged (read from its map), and the count
 * that means it judged every packet the test sent.
 */
export interface Judged {
  count: () => Promise<bigint | number>;
  expected: bigint | number;
}

/**
 * Polls `j.count()` every 5 ms until it reaches `j.expected`, for at most `timeoutMs`; true once it
 * did. A program judges a packet and the kernel carries out its verdict in the same pass through
 * the stack, so once the count is in, whatever the verdicts let through is delivered within a
 * settle window.
 */
export async function untilJudged(j: Judged, timeoutMs = Math.round(1000 * hostSlowness())): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    if (BigInt(await j.count()) >= BigInt(j.expected)) return true;
    if (performance.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A UDP socket in the guest that counts the datagrams it receives. */
export class UdpSink {
  private constructor(
    private readonly agent: Agent,
    readonly sock: number,
  ) {}

  /** A socket bound to `port` (and `addr`) in `netns`; with `cgroup`, created by a process in that cgroup. */
  static async open(agent: Agent, opts: { netns?: string; addr?: string; port: number; cgroup?: string }): Promise<UdpSink> {
    const { sock } = await agent.call('udp_listen', opts);
    return new UdpSink(agent, sock);
  }

  /** A UDP socket the agent already holds (the one a socket_filter is attached to, say), read as a sink. */
  static of(agent: Agent, sock: number): UdpSink {
    return new UdpSink(agent, sock);
  }

  /**
   * Datagrams received since the last call. Reads until `waitMs` (default 200) passes with nothing
   * new; with `expect`, returns once that many arrived and nothing more came for 20 ms (a surplus
   * still shows), so that a test that knows its count does not wait out the window. With
   * `judged`, the exact end of a check that nothing (or only some) arrived: once the program has
   * judged every packet sent (see untilJudged), only the settle window; if its count never gets
   * there, the whole quiet window, as without it (and the test's check of the count fails).
   */
  async stats(opts: { expect?: number; waitMs?: number; judged?: Judged } = {}) {
    const { judged, ...rest } = opts;
    // A count that never gets there leaves the agent's own quiet window.
    if (judged && rest.waitMs === undefined && (await untilJudged(judged))) rest.waitMs = SETTLE_MS;
    return this.agent.call('sock_stats', { sock: this.sock, ...rest });
  }

  async close(): Promise<void> {
    await this.agent.call('sock_close', { sock: this.sock });
  }
}

export interface LinkStats {
  rxPackets: number;
  rxBytes: number;
  rxDropped: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
}

/** Interface counters, as `ip -s link` reports them. */
export async function linkStats(commands: GuestCommands, ifname: string, netns?: string): Promise<LinkStats> {
  const out = await commands.exec(`ip ${netns ? `-n ${shq(netns)} ` : ''}-j -s link show dev ${shq(ifname)}`);
  const [link] = JSON.parse(out) as { stats64: { rx: Record<string, number>; tx: Record<string, number> } }[];
  const { rx, tx } = link.stats64;
  return { rxPackets: rx.packets, rxBytes: rx.bytes, rxDropped: rx.dropped, txPackets: tx.packets, txBytes: tx.bytes, txDropped: tx.dropped };
}
