// An interactive shell in a guest on the user's terminal: raw mode, so that Ctrl-C and every other
// key go to the guest; the guest's terminal follows the window's size. Also how to get in from
// another terminal with OpenSSH (the key and a known_hosts line are written next to the logs).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { system } from '../base/config.js';
import type { SshSession } from './ssh.js';

/** Runs the shell until it exits; resolves with its exit status. */
export async function interactiveShell(ssh: SshSession, stdin: NodeJS.ReadStream = process.stdin, stdout: NodeJS.WriteStream = process.stdout): Promise<number> {
  const size = () => ({ rows: stdout.rows || 24, cols: stdout.columns || 80 });
  let status = 0;
  let closed!: Promise<void>;
  const ch = await ssh.shell({ ...size(), term: system.term() }, (c) => {
    c.on('exit', (code: number | null) => (status = code ?? 0));
    closed = new Promise((resolve) => c.on('close', resolve));
  });
  const resize = () => ch.setWindow(size().rows, size().cols, 0, 0);
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  stdout.on('resize', resize);
  stdin.pipe(ch);
  ch.pipe(stdout, { end: false });
  ch.stderr.pipe(process.stderr, { end: false });
  try {
    await closed;
    return status;
  } finally {
    stdin.unpipe(ch);
    stdout.off('resize', resize);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  }
}

/**
 * Writes the client key and a known_hosts line for the guest into `dir`; returns their paths and
 * an OpenSSH command line that gets in (with the guest's host key checked).
 */
export async function sshAccess(dir: string, port: number, clientKey: string, hostKey: string): Promise<{ keyPath: string; knownHosts: string; command: string }> {
  const keyPath = join(dir, 'id_ed25519');
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(keyPath, clientKey, { mode: 0o600 });
  await writeFile(knownHosts, `[127.0.0.1]:${port} ssh-ed25519 ${hostKey}\n`);
  return { keyPath, knownHosts, command: `ssh -i ${keyPath} -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -p ${port} root@127.0.0.1` };
}
