// Network topology inside the guest: a veth pair between two network namespaces, with fixed MAC
// addresses, static neighbours (no ARP frames to disturb exact packet counts) and IPv6 off (no
// router or neighbour solicitations either).
import type { Agent } from './agent.js';
import { shq } from '../base/quote.js';

export interface Endpoint {
  netns: string;
  ifname: string;
  /** IPv4 address without prefix length. */
  ip: string;
  mac: string;
  /** The interface's index in its namespace. */
  ifindex: number;
}

export interface VethPairOptions {
  /** Prefix of namespace and interface names; unique per pair in one guest. */
  name?: string;
  /** Third octet of the 10.200.X.0/24 subnet used by this pair. */
  subnet?: number;
  /**
   * End A goes into this existing namespace (e.g. B of another pair, to put a third namespace
   * behind it) instead of a new `<name>a`.
   */
  aNetns?: string;
}

let pairs = 0;

export class VethPair {
  private constructor(
    private readonly agent: Agent,
    readonly a: Endpoint,
    readonly b: Endpoint,
    private readonly ownsA: boolean,
  ) {}

  /**
   * Creates namespaces `<name>a` and `<name>b` joined by veth `<name>a0` <-> `<name>b0`, in one
   * agent request over rtnetlink (images/agent/topology.c): each end's address, link up, lo up,
   * the peer's MAC as a permanent neighbour, IPv6 off.
   */
  static async create(agent: Agent, opts: VethPairOptions = {}): Promise<VethPair> {
    const n = ++pairs;
    const name = opts.name ?? `p${n}`;
    const subnet = opts.subnet ?? (n % 250) + 1;
    const a: Endpoint = { netns: opts.aNetns ?? `${name}a`, ifname: `${name}a0`, ip: `10.200.${subnet}.1`, mac: `02:00:00:00:${subnet.toString(16).padStart(2, '0')}:01`, ifindex: 0 };
    const b: Endpoint = { netns: `${name}b`, ifname: `${name}b0`, ip: `10.200.${subnet}.2`, mac: `02:00:00:00:${subnet.toString(16).padStart(2, '0')}:02`, ifindex: 0 };
    const r = await agent.call('veth_pair', {
      netnsA: a.netns,
      ifnameA: a.ifname,
      ipA: a.ip,
      macA: a.mac,
      netnsB: b.netns,
      ifnameB: b.ifname,
      ipB: b.ip,
      macB: b.mac,
      prefixLen: 24,
      existingA: opts.aNetns !== undefined,
    });
    a.ifindex = r.ifindexA;
    b.ifindex = r.ifindexB;
    return new VethPair(agent, a, b, opts.aNetns === undefined);
  }

  /** Deletes the namespaces it made (and with them the veth pair and anything attached to it). */
  async destroy(): Promise<void> {
    await this.agent.exec(`${this.ownsA ? `ip netns del ${shq(this.a.netns)}; ` : ''}ip netns del ${shq(this.b.netns)}; true`);
  }
}
