// SshSession against an in-process SSH server (ssh2's), behind a proxy that holds the server's
// bytes and passes them on in one write: the guest's answer to an exec request, the command's
// output, its exit status and the channel's close then reach the client in one read, as they did
// from a loaded guest in CI (a `cat` there came back with its output and exit -1).
import { PassThrough } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, Socket, type AddressInfo, type Server as NetServer } from 'node:net';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ed25519KeyPair, SshSession } from '../../harness/guest/ssh.js';
import { interactiveShell } from '../../harness/guest/shell.js';

const { Server, utils } = ssh2;

const host = ed25519KeyPair();
const client = ed25519KeyPair();
let server: InstanceType<typeof Server>;
let proxy: NetServer;
let proxyPort = 0;
const sockets = new Set<Socket>();

/** Runs `exit N say TEXT` commands: prints TEXT (if any) and exits N, all in one tick; `no status` prints and closes without an exit status. */
function answer(command: string, ch: ssh2.ServerChannel): void {
  if (command === 'no status') {
    ch.write('half\n');
    ch.end();
    return;
  }
  if (command.startsWith('mkdir -p ')) {
    // ssh.put's unpacking: reads its input to the end, then exits 0.
    ch.on('data', () => {});
    ch.on('end', () => {
      ch.exit(0);
      ch.end();
    });
    return;
  }
  const m = /^exit (\d+)(?: say (.*))?$/.exec(command);
  if (m?.[2]) ch.write(`${m[2]}\n`);
  ch.exit(Number(m?.[1] ?? 127));
  ch.end();
}

beforeAll(async () => {
  server = new Server({ hostKeys: [host.private] }, (conn) => {
    conn.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey'])));
    conn.on('session', (accept) => {
      const session = accept();
      session.on('exec', (acc, _rej, info) => answer(info.command, acc()));
      session.on('pty', (acc) => acc?.());
      // A login shell that says goodbye and exits 5 at once.
      session.on('shell', (acc) => answer('exit 5 say bye', acc()));
    });
    conn.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const serverPort = (server.address() as AddressInfo).port;

  // Client to server at once; server to client held for 30 ms and sent as one chunk.
  proxy = createServer((down) => {
    const up = new Socket();
    sockets.add(down).add(up);
    let held: Buffer[] = [];
    let flush: NodeJS.Timeout | undefined;
    up.connect(serverPort, '127.0.0.1');
    down.on('data', (d) => up.write(d));
    up.on('data', (d) => {
      held.push(d);
      flush ??= setTimeout(() => {
        flush = undefined;
        const chunk = Buffer.concat(held);
        held = [];
        if (!down.destroyed) down.write(chunk);
      }, 30);
    });
    const end = () => {
      up.destroy();
      down.destroy();
    };
    up.on('close', end).on('error', end);
    down.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyPort = (proxy.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => proxy.close(r));
  await new Promise((r) => server.close(r));
});

const hostKeyBase64 = () => (utils.parseKey(host.public) as ssh2.ParsedKey).getPublicSSH().toString('base64');

test('a command whose output, exit status and close arrive in one read keeps its exit status', async () => {
  const ssh = await SshSession.connect({ port: proxyPort, privateKey: client.private, hostKey: hostKeyBase64() });
  try {
    expect(await ssh.run('exit 0 say left-by-the-test')).toEqual({ code: 0, stdout: 'left-by-the-test\n', stderr: '' });
    expect(await ssh.run('exit 3 say failed')).toEqual({ code: 3, stdout: 'failed\n', stderr: '' });
    expect((await ssh.run('exit 7')).code).toBe(7);
    expect(await ssh.exec('exit 0 say ok')).toBe('ok\n');
    await expect(ssh.exec('exit 2 say no')).rejects.toThrow(/exit 2/);
    // A server that closes the channel without a status gives no verdict: run() does not make one up.
    await expect(ssh.run('no status')).rejects.toThrow(/closed the channel without the command's exit status: no status\nits output:\nhalf/);
    expect(ssh.lostBecause).toBeNull();
  } finally {
    ssh.close();
  }
});

test('a copy whose input fails (a file gone, or changed while tar read it) fails with that cause, and the session goes on', async () => {
  const ssh = await SshSession.connect({ port: proxyPort, privateKey: client.private, hostKey: hostKeyBase64() });
  const dir = await mkdtemp(join(tmpdir(), 'ssh-put-'));
  try {
    await writeFile(join(dir, 'here'), 'x'.repeat(100_000));
    await ssh.put(dir, ['here'], '/dest');
    await expect(ssh.put(dir, ['here', 'gone'], '/dest')).rejects.toThrow(/^the input of a guest command failed reading .*gone: .*ENOENT.*; command: mkdir -p/);
    expect(await ssh.exec('exit 0 say still-here')).toBe('still-here\n');
  } finally {
    ssh.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a shell that exits at once, in the same read as its output, gives its exit status', async () => {
  const ssh = await SshSession.connect({ port: proxyPort, privateKey: client.private, hostKey: hostKeyBase64() });
  try {
    const stdin = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.ReadStream;
    const seen: Buffer[] = [];
    const stdout = Object.assign(new PassThrough(), { rows: 24, columns: 80 }) as unknown as NodeJS.WriteStream;
    stdout.on('data', (d: Buffer) => seen.push(d));
    expect(await interactiveShell(ssh, stdin, stdout)).toBe(5);
    expect(Buffer.concat(seen).toString()).toBe('bye\n');
  } finally {
    ssh.close();
  }
});

test('every key pair ed25519KeyPair makes is one ssh2 parses (its generator alone fails about once in 250)', () => {
  for (let i = 0; i < 1500; i++) {
    const k = ed25519KeyPair('bpf-harness');
    expect(utils.parseKey(k.private), `key ${i}`).not.toBeInstanceOf(Error);
    expect(k.public).toMatch(/^ssh-ed25519 \S+ bpf-harness$/);
  }
});
