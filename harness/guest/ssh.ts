// One SSH connection per VM (ssh2), reused for every command and file transfer.
import ssh2, { Client, type ClientChannel } from 'ssh2';
import { connect } from 'node:net';
import { create as tarCreate } from 'tar';
import { type ExecResult, type GuestCommands, stdoutOrThrow } from './commands.js';
import { inPhase } from '../base/phases.js';
import { shq } from '../base/quote.js';

/**
 * A fresh ed25519 key pair that ssh2 can use. ssh2's generator makes a key its own parser rejects
 * ("Malformed OpenSSH private key") about once in 250; such a key is made again.
 */
export function ed25519KeyPair(comment?: string): { private: string; public: string } {
  for (;;) {
    const k = ssh2.utils.generateKeyPairSync('ed25519', comment === undefined ? {} : { comment });
    if (!(ssh2.utils.parseKey(k.private) instanceof Error)) return k;
  }
}

/** Keepalives go every 5 s at most; a window shorter than 10 s checks more often. */
const KEEPALIVE_EVERY_MS = 5_000;

/** ssh2's words for a lost connection, in the harness's. */
function explainLoss(e: Error, keepaliveMs: number): string {
  return /keepalive|no response from server/i.test(e.message)
    ? `the guest stopped responding (no answer to SSH keepalives for ${keepaliveMs / 1000} s)`
    : `the SSH connection to the guest failed: ${e.message}`;
}

export interface ConnectOptions {
  port: number;
  privateKey: string;
  /** Base64 of the guest's public host key blob; the connection is refused if it differs. */
  hostKey: string;
  readyTimeoutMs?: number;
  /** How long the guest may leave keepalives unanswered before the connection counts as lost (default 30 s). */
  keepaliveMs?: number;
}

export class SshSession implements GuestCommands {
  private closed = false;
  /** Why the connection went, when it did not go by close(): said in every failing command. */
  private lost: string | null = null;
  /** How long a command may run when the caller names no timeout (the VM sets it for its accelerator). */
  commandTimeoutMs = 120_000;
  private constructor(
    private readonly client: Client,
    private readonly keepaliveMs: number,
  ) {
    client.on('close', () => {
      this.closed = true;
      this.lost ??= 'the SSH connection to the guest closed (the guest or QEMU ended)';
    });
    client.on('error', (e: Error) => {
      this.lost = explainLoss(e, keepaliveMs);
    });
  }

  /** Why the connection is gone, or null while it is up. */
  get lostBecause(): string | null {
    return this.closed || this.lost ? (this.lost ?? 'closed') : null;
  }

  /** One handshake attempt; resolves only when the guest proved its host key and accepted ours. */
  static connect(o: ConnectOptions): Promise<SshSession> {
    const keepaliveMs = o.keepaliveMs ?? 30_000;
    const every = Math.min(KEEPALIVE_EVERY_MS, Math.max(500, keepaliveMs / 2));
    return new Promise((resolve, reject) => {
      const client = new Client();
      let settled = false;
      // ssh2 may emit more than one error for one failed handshake: all after the first are moot.
      client.on('error', (e: Error) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(e);
      });
      client.once('ready', () => {
        settled = true;
        resolve(new SshSession(client, keepaliveMs));
      });
      client.connect({
        // Requests and answers are small writes that wait on each other: with Nagle's algorithm
        // on, each one waited for the guest's delayed ACK (40 ms per agent request, not 1 ms),
        // and so did each step of the handshake (a restore's connection took 0.3 s, not 0.1 s).
        sock: connect({ host: '127.0.0.1', port: o.port, noDelay: true }),
        username: 'root',
        // Straight to the key: the "none" method ssh2 tries first only costs a round trip.
        authHandler: ['publickey'],
        privateKey: o.privateKey,
        readyTimeout: o.readyTimeoutMs ?? 10_000,
        keepaliveInterval: every,
        keepaliveCountMax: Math.max(1, Math.round(keepaliveMs / every)),
        hostVerifier: (key: Buffer) => key.toString('base64') === o.hostKey,
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Opens a raw exec channel (for long-lived processes such as the agent). `listen` runs as soon as
   * the channel exists, before anything else: the guest's answer to the exec request can come in
   * one read with the command's output, exit status and close, and ssh2 emits each of them as it
   * parses it. An 'exit' listener added a tick later misses the status.
   */
  channel(command: string, listen?: (ch: ClientChannel) => void): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.lostBecause) return reject(new Error(`${this.lostBecause}; command: ${command}`));
      this.client.exec(command, (err, ch) => {
        if (err) return reject(new Error(`${this.lostBecause ?? explainLoss(err, this.keepaliveMs)}; command: ${command}`));
        listen?.(ch);
        resolve(ch);
      });
    });
  }

  /** Opens an interactive login shell on a pseudo-terminal of the given size; `listen` as for channel(). */
  shell(window: { rows: number; cols: number; term: string }, listen?: (ch: ClientChannel) => void): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('SSH connection to the guest is closed'));
      this.client.shell({ rows: window.rows, cols: window.cols, term: window.term }, (err, ch) => {
        if (err) return reject(err);
        listen?.(ch);
        resolve(ch);
      });
    });
  }

  /** Runs a command; resolves with its exit code and output whatever the code. */
  run(command: string, opts: { stdin?: NodeJS.ReadableStream | string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return inPhase('guest-exec', () => this.runNow(command, opts));
  }

  private runNow(command: string, opts: { stdin?: NodeJS.ReadableStream | string; timeoutMs?: number }): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let code = -1;
      let exited = false;
      let timer: NodeJS.Timeout | undefined;
      // A stream that fails (a file gone, or one that changed size while tar read it), before the
      // channel opens or after, ends the command with its cause, not as an unhandled 'error'.
      let channel: ClientChannel | undefined;
      let inputFailed = false;
      if (opts.stdin && typeof opts.stdin !== 'string') {
        opts.stdin.on('error', (e: NodeJS.ErrnoException) => {
          if (inputFailed) return;
          inputFailed = true;
          clearTimeout(timer);
          channel?.close();
          reject(new Error(`the input of a guest command failed${e.path ? ` reading ${e.path}` : ''}: ${e.message}; command: ${command}`));
        });
      }
      const listen = (ch: ClientChannel) => {
        channel = ch;
        if (inputFailed) return void ch.close();
        timer = setTimeout(() => {
          ch.close();
          reject(new Error(`guest command timed out after ${timeoutMs / 1000} s: ${command}`));
        }, timeoutMs);
        ch.on('data', (d: Buffer) => out.push(d));
        ch.stderr.on('data', (d: Buffer) => err.push(d));
        ch.on('exit', (c: number | null, signal?: string) => {
          exited = true;
          code = c ?? (signal ? 128 : -1);
        });
        ch.on('close', () => {
          clearTimeout(timer);
          const stdout = Buffer.concat(out).toString();
          const stderr = Buffer.concat(err).toString();
          if (exited) return resolve({ code, stdout, stderr });
          // The channel closed without the command exiting: the connection went under it, or the
          // server never said how the command ended (then its output is no verdict either way).
          if (this.lostBecause) return reject(new Error(`${this.lostBecause}; command: ${command}`));
          const said = `${stdout}${stderr}`.trim();
          reject(new Error(`the guest's SSH server closed the channel without the command's exit status: ${command}${said ? `\nits output:\n${said.slice(-2000)}` : ''}`));
        });
        if (typeof opts.stdin === 'string') ch.end(opts.stdin);
        else if (opts.stdin) opts.stdin.pipe(ch);
        else ch.end();
      };
      this.channel(command, listen).catch(reject);
    });
  }

  /** Runs a command and throws a CommandError with its output when it exits non-zero. */
  async exec(command: string, opts: { stdin?: NodeJS.ReadableStream | string; timeoutMs?: number } = {}): Promise<string> {
    return stdoutOrThrow(command, await this.run(command, opts));
  }

  /**
   * Copies files (paths relative to `cwd`) into `destDir` in the guest as one tar stream. A file
   * that changes while it is read fails the copy, naming it.
   */
  async put(cwd: string, files: string[], destDir: string): Promise<void> {
    const stream = tarCreate({ cwd, portable: true, noPax: true }, files);
    await this.exec(`mkdir -p ${shq(destDir)} && tar -x -f - -C ${shq(destDir)}`, { stdin: stream as unknown as NodeJS.ReadableStream });
  }

  close(): void {
    this.client.end();
  }
}
