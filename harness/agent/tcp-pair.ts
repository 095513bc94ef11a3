// Connected TCP pairs made by the agent (`tcp_pair`), typed: each end is a StreamSocket of the
// agent's socket table (the one udp_listen and sock_open fill, not the inet table of
// harness/agent/inet.ts), which a test writes to, reads from, asks for its TCP state or puts into
// a sockmap, as the sk_skb, sk_msg and sock_ops suites do.
//
//   const { pairs } = await tcpPairs(guest.agent, { netns, count: 2 });
//   await pairs[0].client.write('hello');
//   expect((await pairs[0].server.read({ expect: 5 })).data).toBe('hello');
import type { Agent, BpfObject } from './agent.js';
import type { Ops } from './protocol.js';

export type TcpPairRequest = Ops['tcp_pair']['req'];
export type StreamRead = Ops['sock_read']['res'];
export type SockInfo = Ops['sock_info']['res'];

/** One end of a connected TCP pair: a handle of the agent's socket table and the ops on it. */
export class StreamSocket {
  // Private, so that a failed assertion that prints a socket prints its handle, not the connection.
  readonly #agent: Agent;

  constructor(
    agent: Agent,
    /** The agent's handle of the socket. */
    readonly sock: number,
  ) {
    this.#agent = agent;
  }

  /** Writes `data` as its UTF-8 bytes; `written` is what the kernel took. */
  write(data: Ops['sock_write']['req']['data']): Promise<Ops['sock_write']['res']> {
    return this.#agent.call('sock_write', { sock: this.sock, data });
  }

  /**
   * What arrived: read until `waitMs` (default 200) passes with nothing new, or, with `expect`
   * (bytes), once that many are in and 20 ms more; `eof` when a read returned 0.
   */
  read(req: Omit<Ops['sock_read']['req'], 'sock'> = {}): Promise<StreamRead> {
    return this.#agent.call('sock_read', { sock: this.sock, ...req });
  }

  /** The socket's addresses, SO_MARK and SO_PRIORITY, and its TCP_INFO fields (tcpState, rcvSsthresh, ...). */
  info(): Promise<SockInfo> {
    return this.#agent.call('sock_info', { sock: this.sock });
  }

  /** Puts the socket into a sockmap or sockhash of `obj`, at `key`. */
  async sockmapAdd(obj: BpfObject, map: string, key: number): Promise<void> {
    await this.#agent.call('sockmap_add', { obj: obj.handle, map, key, sock: this.sock });
  }

  async close(): Promise<void> {
    await this.#agent.call('sock_close', { sock: this.sock });
  }
}

/** A connected pair: the connecting socket and the one the listener accepted. */
export interface TcpPair {
  client: StreamSocket;
  server: StreamSocket;
}

/**
 * `count` (default 1) connected pairs on `addr` (default 127.0.0.1) of `netns`, all to one
 * listener's `port` (the listener is closed once they are accepted); with `cgroup`, every socket
 * is made by a child in that cgroup, so that its hooks (sock_ops, sk_skb through sock_ops) see them.
 */
export async function tcpPairs(agent: Agent, req: TcpPairRequest): Promise<{ port: number; pairs: TcpPair[] }> {
  const r = await agent.call('tcp_pair', req);
  return { port: r.port, pairs: r.pairs.map((p) => ({ client: new StreamSocket(agent, p.client), server: new StreamSocket(agent, p.server) })) };
}
