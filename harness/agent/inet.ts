// Plain UDP and TCP sockets of the agent's inet table (`inet_socket` and the other `inet_*` ops),
// typed: each op answers with the socket's addresses as the kernel then has them (getsockname,
// getpeername), so that a test sees what a sock_addr, sk_lookup or LSM program made of its bind,
// connect or sendto. One class, InetSocket; each method is one request of the agent.
//
//   const listener = await InetSocket.open(guest.agent, { netns, proto: 'tcp', addr: LO, port: 7000, listen: true });
//   const client = await InetSocket.open(guest.agent, { netns, proto: 'tcp' });
//   const c = await client.connect({ dst: LO, dport: 7000 }); // { connectErrno: 0, localPort: ..., remotePort: 7000, ... }
//   await client.send({ data: 'hello' });
//   await client.close();
//   expect(await listener.recv({ expect: 1 })).toEqual([{ addr: LO, port: c.localPort, data: 'hello' }]);
import type { Agent, BpfObject } from './agent.js';
import type { Ops } from './protocol.js';

/** What InetSocket.open takes: the agent's inet_socket request. */
export type InetSocketRequest = Ops['inet_socket']['req'];
/** What the agent said when it made the socket: its handle, bindErrno and its addresses. */
export type InetSocketOpened = Ops['inet_socket']['res'];
/** A datagram (UDP, with recvfrom's source), an accepted connection (a TCP listener: its peer and what it wrote), or what arrived (connected TCP). */
export type InetMessage = Ops['inet_recv']['res']['messages'][number];

/** The request of an op on one socket, without the socket. */
type On<K extends 'inet_connect' | 'inet_send' | 'inet_recv'> = Omit<Ops[K]['req'], 'sock'>;

// The open result's fields (sock, bindErrno, localAddr, localPort, ...) are the socket's own.
export interface InetSocket extends Readonly<InetSocketOpened> {}

/**
 * A socket of the agent's inet table: what inet_socket answered (`sock`, `bindErrno`, the
 * addresses after the bind: a refused bind is a result, not an error), and the ops on it. The
 * agent closes it at the reset after the test, if the test did not.
 */
export class InetSocket {
  // Private, so that a failed toMatchObject on a socket prints its fields, not the connection.
  readonly #agent: Agent;

  private constructor(agent: Agent, opened: InetSocketOpened) {
    this.#agent = agent;
    const { id: _id, ok: _ok, ...fields } = opened as InetSocketOpened & { id?: number; ok?: boolean };
    Object.assign(this, fields);
  }

  /** A new socket in `netns` (made by a child in `cgroup` when given), bound when `addr` or `port` is given; TCP may listen. */
  static async open(agent: Agent, req: InetSocketRequest): Promise<InetSocket> {
    return new InetSocket(agent, await agent.call('inet_socket', req));
  }

  /** connect() to `dst`:`dport`; a refusal is a result (`connectErrno`), with the addresses the kernel then has. */
  connect(req: On<'inet_connect'>): Promise<Ops['inet_connect']['res']> {
    return this.#agent.call('inet_connect', { sock: this.sock, ...req });
  }

  /** `count` datagrams (or writes) of `data`: to `dst`:`dport` with sendto when given, else with send. */
  send(req: On<'inet_send'>): Promise<Ops['inet_send']['res']> {
    return this.#agent.call('inet_send', { sock: this.sock, ...req });
  }

  /**
   * What arrived since the last call (inet_recv's `messages`): read until `waitMs` (default 200)
   * passes with nothing new, or, with `expect`, once that many are in and 20 ms more.
   */
  async recv(req: On<'inet_recv'> = {}): Promise<InetMessage[]> {
    return (await this.#agent.call('inet_recv', { sock: this.sock, ...req })).messages;
  }

  async close(): Promise<void> {
    await this.#agent.call('inet_close', { sock: this.sock });
  }

  /** Puts the socket into a sockmap, sockhash or reuseport_sockarray of `obj`, at `key`. */
  async sockmapAdd(obj: BpfObject, map: string, key: number): Promise<void> {
    await this.#agent.call('inet_sockmap_add', { obj: obj.handle, map, key, sock: this.sock });
  }

  /** Attaches an sk_reuseport program of `obj` to the socket's reuseport group (SO_ATTACH_REUSEPORT_EBPF). */
  async attachReuseport(obj: BpfObject, prog: string): Promise<void> {
    await this.#agent.call('inet_attach_reuseport', { obj: obj.handle, prog, sock: this.sock });
  }
}
