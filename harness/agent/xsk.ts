// AF_XDP sockets made by the agent (`xsk_open`, `xsk_stats`), typed: a socket in copy mode on
// one queue of a device, put into an XSKMAP of a loaded object, that counts the frames an XDP
// program redirects into it.
import type { Agent } from './agent.js';
import type { Ops } from './protocol.js';

export type XskRequest = Ops['xsk_open']['req'];
export type XskStats = Ops['xsk_stats']['res'];

/** An AF_XDP socket of the agent; closed at the reset after the test. */
export class XskSocket {
  // Private, so that a failed assertion that prints a socket prints its handle, not the connection.
  readonly #agent: Agent;

  private constructor(
    agent: Agent,
    /** The agent's handle of the socket. */
    readonly sock: number,
  ) {
    this.#agent = agent;
  }

  /** A socket bound to `queue` (default 0) of `ifname`, at `key` (default: the queue) of the object's XSKMAP `map`. */
  static async open(agent: Agent, req: XskRequest): Promise<XskSocket> {
    const { sock } = await agent.call('xsk_open', req);
    return new XskSocket(agent, sock);
  }

  /**
   * Frames the socket's RX ring received since the last call, with their lengths: read until
   * `waitMs` (default 200) passes with nothing new, or, with `expect`, once that many are in and 20 ms more.
   */
  stats(req: Omit<Ops['xsk_stats']['req'], 'sock'> = {}): Promise<XskStats> {
    return this.#agent.call('xsk_stats', { sock: this.sock, ...req });
  }
}
