// A small client of QEMU's machine protocol (QMP) over a unix socket: one JSON object a line,
// commands answered in order, events in between. The harness uses it to save a running guest to
// a file (harness/guest/snapshot-save.ts) and to resume a guest loaded from one
// (harness/guest/snapshot-restore.ts).
import { createConnection, type Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: unknown;
}

export class QmpError extends Error {
  constructor(readonly command: string, readonly qmpClass: string, desc: string) {
    super(`QMP ${command}: ${desc} (${qmpClass})`);
    this.name = 'QmpError';
  }
}

export class Qmp {
  private buf = '';
  private waiting: { command: string; resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private closedBecause: string | null = null;
  readonly events: QmpEvent[] = [];

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    const fail = (why: string) => {
      this.closedBecause ??= why;
      for (const w of this.waiting.splice(0)) w.reject(new Error(`QMP ${w.command}: ${this.closedBecause}`));
    };
    sock.on('error', (e) => fail(`the QMP socket failed: ${e.message}`));
    sock.on('close', () => fail('QEMU closed its QMP socket (it exited)'));
  }

  /**
   * Connects to QEMU's QMP socket, retrying until `deadlineMs` while QEMU creates it, and leaves
   * capability negotiation done. Fails early when `gone()` says QEMU has exited.
   */
  static async connect(path: string, deadlineMs: number, gone: () => string | null = () => null): Promise<Qmp> {
    const until = performance.now() + deadlineMs;
    for (;;) {
      const sock = await new Promise<Socket | Error>((resolve) => {
        const s = createConnection(path);
        s.once('connect', () => resolve(s));
        s.once('error', (e) => resolve(e));
      });
      if (!(sock instanceof Error)) {
        const q = new Qmp(sock);
        // The greeting counts as the answer to a command nobody sent.
        await new Promise<unknown>((resolve, reject) => q.waiting.push({ command: 'greeting', resolve, reject }));
        await q.execute('qmp_capabilities');
        return q;
      }
      const why = gone();
      if (why) throw new Error(`QEMU's QMP socket ${path} never answered: ${why}`);
      if (performance.now() > until) throw new Error(`QEMU's QMP socket ${path} did not answer within ${deadlineMs} ms: ${sock.message}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private onData(d: string): void {
    this.buf += d;
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as { event?: string; data?: unknown; return?: unknown; QMP?: unknown; error?: { class: string; desc: string } };
      if (msg.event) {
        this.events.push({ event: msg.event, data: msg.data });
        continue;
      }
      const w = this.waiting.shift();
      if (!w) continue;
      if (msg.error) w.reject(new QmpError(w.command, msg.error.class, msg.error.desc));
      else w.resolve(msg.return ?? msg.QMP);
    }
  }

  /** Runs one command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedBecause) return Promise.reject(new Error(`QMP ${command}: ${this.closedBecause}`));
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ command, resolve: resolve as (v: unknown) => void, reject });
      this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
  }

  close(): void {
    this.closedBecause ??= 'closed by the harness';
    this.sock.destroy();
  }
}
