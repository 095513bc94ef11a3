// Network topology inside the guest: a veth pair between two network namespaces, with fixed MAC
// addresses, static neighbours (no ARP frames to disturb exact packet counts) and IPv6 off (no
// router or neighbour solicitations either).
import { inPhase } from './phases.js';
import { shq } from './quote.js';
import type { GuestCommands } from './commands.js';

export interface Endpoint {
  netns: string;
  ifname: string;
  /** IPv4 address without prefix length. */
  ip: string;
  mac: string;
}

export interface VethPairOptions {
  /** Prefix of namespace and interface names; unique per pair in one guest. */
  name?: string;
  /** Third octet of the 10.200.X.0/24 subnet used by this pair. */
  subnet?: number;
}

let pairs = 0;

/** IPv6 off in a namespace (no router solicitations or DAD to disturb exact counts). */
function noIpv6(ns: string): string {
  return `ip netns exec ${shq(ns)} sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6' 2>/dev/null || true`;
}

/** `ip -batch` (one ip process for many commands), in a namespace or the guest's own. */
function ipBatch(commands: string[], netns?: string): string {
  return `ip ${netns ? `-n ${shq(netns)} ` : ''}-batch - <<'IPBATCH'\n${commands.join('\n')}\nIPBATCH`;
}

export class VethPair {
  private constructor(
    private readonly commands: GuestCommands,
    readonly a: Endpoint,
    readonly b: Endpoint,
  ) {}

  /** Creates namespaces `<name>a` and `<name>b` joined by veth `<name>a0` <-> `<name>b0`. */
  static async create(commands: GuestCommands, opts: VethPairOptions = {}): Promise<VethPair> {
    const n = ++pairs;
    const name = opts.name ?? `p${n}`;
    const subnet = opts.subnet ?? (n % 250) + 1;
    const a: Endpoint = { netns: `${name}a`, ifname: `${name}a0`, ip: `10.200.${subnet}.1`, mac: `02:00:00:00:${subnet.toString(16).padStart(2, '0')}:01` };
    const b: Endpoint = { netns: `${name}b`, ifname: `${name}b0`, ip: `10.200.${subnet}.2`, mac: `02:00:00:00:${subnet.toString(16).padStart(2, '0')}:02` };
    // Five processes in all (a guest under TCG pays tens of milliseconds for each): the namespaces
    // and the pair in one ip batch, IPv6 off in each, then each side's addresses, link and static
    // neighbour in a batch of its own.
    const side = (self: Endpoint, peer: Endpoint) =>
      ipBatch(
        [
          'link set lo up',
          `addr add ${self.ip}/24 dev ${self.ifname}`,
          `link set ${self.ifname} up`,
          `neigh replace ${peer.ip} lladdr ${peer.mac} dev ${self.ifname} nud permanent`,
        ],
        self.netns,
      );
    const lines = [
      'set -e',
      ipBatch([
        `netns add ${a.netns}`,
        `netns add ${b.netns}`,
        `link add ${a.ifname} netns ${a.netns} address ${a.mac} type veth peer name ${b.ifname} netns ${b.netns} address ${b.mac}`,
      ]),
      noIpv6(a.netns),
      noIpv6(b.netns),
      side(a, b),
      side(b, a),
    ];
    await inPhase('topology', () => commands.exec(lines.join('\n')));
    return new VethPair(commands, a, b);
  }

  /** Deletes both namespaces (and with them the veth pair and anything attached to it). */
  async destroy(): Promise<void> {
    await this.commands.exec(`ip netns del ${shq(this.a.netns)}; ip netns del ${shq(this.b.netns)}; true`);
  }
}
