// Host side of the guest agent: one long-lived `bpf-agent` per VM over an SSH exec channel,
// typed requests in, typed responses out (see harness/agent/protocol.ts).
import { createWriteStream, type WriteStream } from 'node:fs';
import type { ClientChannel } from 'ssh2';
import type { Hex, MapEntry, MapInfo, MapRef, OpName, Ops, ProgInfo, XdpMode } from './protocol.js';
import { AgentError, decodeResponse, encodeRequest } from './wire.js';
import { type ExecResult, type GuestCommands, stdoutOrThrow } from '../guest/commands.js';
import { inPhase } from '../base/phases.js';
import { agentOpPhase } from './op-phase.js';
import type { SshSession } from '../guest/ssh.js';
import { hostSlowness } from '../base/host-speed.js';

interface Pending {
  op: string;
  sent: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A wait that ends when `expect` items have arrived has `waitMs` only as its cap: it ends as soon
 * as they are there, so the cap grows with this host's measured slowness (harness/base/host-speed.ts)
 * at no cost to a test that passes. A wait without `expect` is a quiet window and stays as asked.
 */
function scaleWaitCap<T>(fields: T): T {
  const f = fields as { expect?: unknown; waitMs?: unknown };
  if (f && typeof f === 'object' && f.expect !== undefined && typeof f.waitMs === 'number') return { ...fields, waitMs: Math.round(f.waitMs * hostSlowness()) };
  return fields;
}

export class Agent implements GuestCommands {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private buf = '';
  private stderrTail: string[] = [];
  private closedWith: Error | null = null;

  private constructor(
    private readonly ch: ClientChannel,
    private readonly log: WriteStream,
    private readonly timeoutMs: number,
  ) {
    ch.on('data', (d: Buffer) => this.onData(d));
    ch.stderr.on('data', (d: Buffer) => {
      log.write(d);
      this.stderrTail.push(...d.toString().split('\n').filter(Boolean));
      this.stderrTail.splice(0, Math.max(0, this.stderrTail.length - 20));
    });
    ch.on('close', () => this.fail(new Error(`the guest agent exited${this.stderrTail.length ? `; its last words:\n${this.stderrTail.join('\n')}` : ''}`)));
  }

  /** Starts the agent in the guest; `logPath` receives its stderr and every request/response. */
  static async start(ssh: SshSession, logPath: string, timeoutMs = 60_000): Promise<Agent> {
    const ch = await ssh.channel('exec /usr/bin/bpf-agent');
    const agent = new Agent(ch, createWriteStream(logPath, { flags: 'a' }), timeoutMs);
    await agent.call('hello', {});
    return agent;
  }

  private onData(d: Buffer): void {
    this.buf += d.toString();
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (!line.trim()) continue;
      let msg;
      try {
        msg = decodeResponse(line);
      } catch (e) {
        this.log.write(`< ${line}\n`);
        this.fail(e as Error);
        return;
      }
      const p = this.pending.get(msg.id);
      // Each answer with the time it took (under TCG a slow request shows up here first).
      this.log.write(`< ${p ? `[${(performance.now() - p.sent).toFixed(1)} ms] ` : ''}${line}\n`);
      if (!p) continue;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg);
      else p.reject(new AgentError(p.op, msg.error, msg.errno, msg.log));
    }
  }

  /** Why the agent is gone (it exited, or its connection closed), or null while it serves. */
  get exited(): Error | null {
    return this.closedWith;
  }

  private fail(e: Error): void {
    this.closedWith ??= e;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(id);
    }
  }

  /** One request; rejects with AgentError (errno, verifier log) when the agent refuses it. */
  call<K extends OpName>(op: K, fields: Ops[K]['req'], timeoutMs = this.timeoutMs): Promise<Ops[K]['res']> {
    return inPhase(agentOpPhase(op), () => this.request(op, fields, timeoutMs));
  }

  private request<K extends OpName>(op: K, fields: Ops[K]['req'], timeoutMs: number): Promise<Ops[K]['res']> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    const line = encodeRequest(id, op, scaleWaitCap(fields));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the guest agent did not answer ${op} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, { op, sent: performance.now(), resolve: resolve as (v: unknown) => void, reject, timer });
      this.log.write(`> ${line}`);
      this.ch.write(line);
    });
  }

  /**
   * A shell command run by the agent with busybox's sh, `ip` and `tc` being iproute2's (fork and exec, no SSH round trips):
   * the quick way for short commands. While it runs the agent answers nothing else; for long or
   * concurrent work, or bash, use SSH.
   */
  async run(command: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const r = await this.call('run', { cmd: command, stdin: opts.stdin, timeoutMs }, timeoutMs + 5_000);
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  async exec(command: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
    return stdoutOrThrow(command, await this.run(command, opts));
  }

  /** Loads an object file that is already in the guest. */
  async load(path: string, name?: string): Promise<BpfObject> {
    const r = await this.call('load', name ? { path, name } : { path });
    return new BpfObject(this, r.obj, r.programs, r.maps);
  }

  /**
   * A map pinned in bpffs by another loader (iproute2's tc and ip pin maps that ask for it in
   * TC_PIN_DIR / IP_PIN_DIR): the agent opens the pin on first use and holds it until the reset.
   */
  pinnedMap(path: string): BpfMap {
    return new BpfMap(this, { pin: path }, path);
  }

  close(): void {
    this.ch.end();
    this.log.end();
  }
}

/** A loaded object in the guest: its programs and maps. */
export class BpfObject {
  constructor(
    readonly agent: Agent,
    readonly handle: string,
    readonly programs: ProgInfo[],
    readonly maps: MapInfo[],
  ) {}

  map(name: string): BpfMap {
    const info = this.maps.find((m) => m.name === name);
    if (!info) throw new Error(`object ${this.handle} has no map "${name}" (it has: ${this.maps.map((m) => m.name).join(', ') || 'none'})`);
    return new BpfMap(this.agent, { obj: this.handle, map: info.name }, info.name, info);
  }

  program(name: string): ProgInfo {
    const p = this.programs.find((q) => q.name === name);
    if (!p) throw new Error(`object ${this.handle} has no program "${name}" (it has: ${this.programs.map((q) => q.name).join(', ') || 'none'})`);
    return p;
  }

  async attachXdp(prog: string, ifname: string, opts: { netns?: string; mode?: XdpMode } = {}): Promise<'generic' | 'native'> {
    this.program(prog);
    const r = await this.agent.call('attach_xdp', { obj: this.handle, prog, ifname, netns: opts.netns, mode: opts.mode ?? 'generic' });
    return r.mode;
  }

  unload(): Promise<unknown> {
    return this.agent.call('unload', { obj: this.handle });
  }
}

/** A map of a loaded object (BpfObject.map) or one pinned by another loader (Agent.pinnedMap). */
export class BpfMap {
  constructor(
    readonly agent: Agent,
    readonly ref: MapRef,
    /** The map's name, or its pin's path. */
    readonly name: string,
    /** What the loader said of it (an object's maps only). */
    readonly info?: MapInfo,
  ) {}

  async lookup(key: Hex): Promise<Hex | null> {
    const r = await this.agent.call('map_lookup', { ...this.ref, key });
    return r.value;
  }

  /** Per-CPU maps: one value per possible CPU. */
  async lookupPerCpu(key: Hex): Promise<Hex[] | null> {
    const r = await this.agent.call('map_lookup', { ...this.ref, key });
    return r.values ?? null;
  }

  /** `netns`: updated from inside that namespace (a devmap resolves its ifindex values there). */
  async update(key: Hex, value: Hex, opts: { flags?: number; netns?: string } = {}): Promise<void> {
    await this.agent.call('map_update', { ...this.ref, key, value, ...opts });
  }

  async delete(key: Hex): Promise<void> {
    await this.agent.call('map_delete', { ...this.ref, key });
  }

  async dump(): Promise<MapEntry[]> {
    return (await this.agent.call('map_dump', this.ref)).entries;
  }
}
