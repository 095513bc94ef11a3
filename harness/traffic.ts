// Traffic with exact counts: the agent sends a known number of packets of one protocol from one
// namespace and counts the replies; a UDP sink counts what arrived; interface counters come from
// iproute2's JSON output.
import type { Agent } from './agent.js';
import type { Ops } from './protocol.js';
import { shq } from './quote.js';
import type { GuestCommands } from './commands.js';

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

/** Sends `count` packets; see images/agent/PROTOCOL.md for what counts as a reply. */
export async function send(agent: Agent, opts: SendOptions): Promise<SendResult> {
  const r = await agent.call('send', opts);
  if (r.sent !== opts.count) throw new Error(`send ${opts.proto}: asked for ${opts.count} packets, the agent sent ${r.sent}`);
  return r;
}

/** A UDP socket in the guest that counts the datagrams it receives. */
export class UdpSink {
  private constructor(
    private readonly agent: Agent,
    readonly sock: number,
  ) {}

  static async open(agent: Agent, opts: { netns?: string; addr?: string; port: number }): Promise<UdpSink> {
    const { sock } = await agent.call('udp_listen', opts);
    return new UdpSink(agent, sock);
  }

  /**
   * Datagrams received since the last call. Reads until `waitMs` (default 200) passes with nothing
   * new; with `expect`, returns once that many arrived and nothing more came for 20 ms (a surplus
   * still shows), so that a test that knows its count does not wait out the window.
   */
  stats(opts: { expect?: number; waitMs?: number } = {}) {
    return this.agent.call('sock_stats', { sock: this.sock, ...opts });
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
