// One SSH connection per VM (ssh2), reused for every command and file transfer.
import { Client, type ClientChannel } from 'ssh2';
import { create as tarCreate } from 'tar';
import { shq } from './quote.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: ExecResult,
  ) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-15).join('\n');
    super(`guest command failed (exit ${result.code}): ${command}${detail ? `\n${detail}` : ''}`);
    this.name = 'CommandError';
  }
}

export interface ConnectOptions {
  port: number;
  privateKey: string;
  /** Base64 of the guest's public host key blob; the connection is refused if it differs. */
  hostKey: string;
  readyTimeoutMs?: number;
}

export class SshSession {
  private closed = false;
  private constructor(private readonly client: Client) {
    client.on('close', () => (this.closed = true));
  }

  /** One handshake attempt; resolves only when the guest proved its host key and accepted ours. */
  static connect(o: ConnectOptions): Promise<SshSession> {
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
        resolve(new SshSession(client));
      });
      client.connect({
        host: '127.0.0.1',
        port: o.port,
        username: 'root',
        privateKey: o.privateKey,
        readyTimeout: o.readyTimeoutMs ?? 10_000,
        keepaliveInterval: 5_000,
        keepaliveCountMax: 6,
        hostVerifier: (key: Buffer) => key.toString('base64') === o.hostKey,
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Opens a raw exec channel (for long-lived processes such as the agent). */
  channel(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('SSH connection to the guest is closed'));
      this.client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch)));
    });
  }

  /** Opens an interactive login shell on a pseudo-terminal of the given size. */
  shell(window: { rows: number; cols: number; term: string }): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('SSH connection to the guest is closed'));
      this.client.shell({ rows: window.rows, cols: window.cols, term: window.term }, (err, ch) => (err ? reject(err) : resolve(ch)));
    });
  }

  /** Runs a command; resolves with its exit code and output whatever the code. */
  async run(command: string, opts: { stdin?: NodeJS.ReadableStream | string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const ch = await this.channel(command);
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let code = -1;
      const timer = opts.timeoutMs
        ? setTimeout(() => {
            ch.close();
            reject(new Error(`guest command timed out after ${opts.timeoutMs} ms: ${command}`));
          }, opts.timeoutMs)
        : undefined;
      ch.on('data', (d: Buffer) => out.push(d));
      ch.stderr.on('data', (d: Buffer) => err.push(d));
      ch.on('exit', (c: number | null, signal?: string) => {
        code = c ?? (signal ? 128 : -1);
      });
      ch.on('close', () => {
        clearTimeout(timer);
        resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
      });
      if (typeof opts.stdin === 'string') ch.end(opts.stdin);
      else if (opts.stdin) opts.stdin.pipe(ch);
      else ch.end();
    });
  }

  /** Runs a command and throws a CommandError with its output when it exits non-zero. */
  async exec(command: string, opts: { stdin?: NodeJS.ReadableStream | string; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.run(command, opts);
    if (r.code !== 0) throw new CommandError(command, r);
    return r.stdout;
  }

  /** Copies files (paths relative to `cwd`) into `destDir` in the guest as one tar stream. */
  async put(cwd: string, files: string[], destDir: string): Promise<void> {
    const stream = tarCreate({ cwd, portable: true, noPax: true }, files);
    await this.exec(`mkdir -p ${shq(destDir)} && tar -x -f - -C ${shq(destDir)}`, { stdin: stream as unknown as NodeJS.ReadableStream });
  }

  close(): void {
    this.client.end();
  }
}
