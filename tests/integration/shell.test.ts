// `npm run shell` on a real pseudo-terminal (Python's pty module drives it like a user would):
// the guest's terminal has the window's size and follows a resize, Ctrl-C interrupts the guest's
// foreground command (not the harness), bpftool and iproute2 are there, and `exit` ends the guest.
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { alive } from '../helpers/processes.js';
import { CLI } from '../helpers/cli.js';
import { hostSlowness } from '../../harness/base/host-speed.js';
import { hostMs } from '../helpers/timeouts.js';

const DRIVER = String.raw`
import os, pty, sys, time, fcntl, termios, struct, select, re
# The waits of the reference machines, times this host's slowness (hostSlowness(), passed in).
K = float(os.environ.get('BH_WAIT_SCALE', '1'))
def winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
winsize(fd, 30, 100)
out = b''
def read_until(pattern, timeout):
    global out
    end = time.time() + timeout * K
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return None
            if not chunk:
                return None
            out += chunk
            sys.stdout.buffer.write(chunk); sys.stdout.flush()
            m = re.search(pattern, out)
            if m:
                out = out[m.end():]
                return m
    raise SystemExit('timed out waiting for ' + repr(pattern))
def send(s):
    os.write(fd, s.encode())
read_until(rb'exit \(or Ctrl-D\) ends the guest', 300)
send('PS1=PROMPT-; stty size\r')
read_until(rb'[\r\n]30 100[\r\n]', 30)
winsize(fd, 40, 120)
time.sleep(0.5 * K)
send('stty size\r')
read_until(rb'[\r\n]40 120[\r\n]', 30)
# Ctrl-C once the shell runs the line (the computed STARTED-2 is its output, not the echo of
# what was typed); a Ctrl-C before that would throw the typed line away instead.
send('echo STARTED-$((1+1)); sleep 60; echo DONE-$((6*7))\r')
read_until(rb'STARTED-2', 30)
time.sleep(0.3 * K)
send('\x03')
send('echo rc=$?\r')
read_until(rb'rc=130', 20)
send('bpftool version | head -1; ip -V\r')
read_until(rb'bpftool v[0-9][^\n]*\n[^\n]*iproute2', 30)
send('exit\r')
end = time.time() + 60 * K
while time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print('\nSHELL-EXIT', os.waitstatus_to_exitcode(status))
        break
    try:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r: sys.stdout.buffer.write(os.read(fd, 65536))
    except OSError:
        pass
`;

/** Runs a Python pty driver around the CLI with these arguments; waits scaled by the host's slowness. */
function drive(driver: string, ...args: string[]) {
  return execa('python3', ['-c', driver, process.execPath, CLI, ...args], {
    cwd: REPO_ROOT,
    reject: false,
    all: true,
    timeout: hostMs(400_000),
    env: { ...process.env, BH_WAIT_SCALE: String(hostSlowness()) },
  });
}

test('npm run shell: a real terminal in the guest, with its size, Ctrl-C, bpftool; exit ends the guest', async () => {
  const r = await drive(DRIVER, 'shell');
  const out = r.all ?? '';
  expect(r.exitCode, out).toBe(0);
  expect(out).toMatch(/SHELL-EXIT 0/);
  // Ctrl-C reached the guest's sleep, not the harness: the command after it ran in the same shell.
  expect(out).not.toMatch(/DONE-42/);
  const pid = Number(/QEMU pid (\d+)/.exec(out)?.[1]);
  expect(pid).toBeGreaterThan(0);
  expect(() => process.kill(pid, 0), 'QEMU is gone').toThrow();
  // The line to get in from another terminal names the key and a known_hosts file.
  expect(out).toMatch(/from another terminal: ssh -i \S+id_ed25519 -o UserKnownHostsFile=\S+known_hosts -o StrictHostKeyChecking=yes -p \d+ root@127\.0\.0\.1/);
}, hostMs(420_000));

test('npm run shell inside tmux: the pane\'s size, a resize, Ctrl-C to the guest, exit ends the guest', async () => {
  const session = `bh-shell-${process.pid}`;
  const tmux = (...args: string[]) => execa('tmux', args, { reject: false });
  const pane = async () => (await tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', session)).stdout;
  const waitFor = async (re: RegExp, ms: number) => {
    const end = Date.now() + ms;
    for (;;) {
      const text = await pane();
      if (re.test(text)) return text;
      if (Date.now() > end) throw new Error(`tmux pane never showed ${re}:\n${text}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const cmd = `cd ${REPO_ROOT} && npm run shell; echo SHELL-EXIT=$?; sleep 600`;
  expect((await tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', cmd)).exitCode).toBe(0);
  try {
    const up = await waitFor(/exit \(or Ctrl-D\) ends the guest/, hostMs(300_000));
    const pid = Number(/QEMU pid (\d+)/.exec(up)?.[1]);
    await tmux('send-keys', '-t', session, 'PS1=P- ; clear; stty size', 'Enter');
    await waitFor(/^30 100$/m, hostMs(30_000));
    await tmux('resize-window', '-t', session, '-x', '120', '-y', '40');
    await tmux('send-keys', '-t', session, 'clear; stty size', 'Enter');
    await waitFor(/^40 120$/m, hostMs(30_000));
    // Ctrl-C once the shell runs the line (STARTED-2 is its output, not the echo of what was typed).
    await tmux('send-keys', '-t', session, 'echo STARTED-$((1+1)); sleep 60; echo DONE-$((6*7))', 'Enter');
    await waitFor(/^STARTED-2$/m, hostMs(30_000));
    await new Promise((r) => setTimeout(r, hostMs(300)));
    await tmux('send-keys', '-t', session, 'C-c');
    await tmux('send-keys', '-t', session, 'echo rc=$?', 'Enter');
    expect(await waitFor(/^rc=130$/m, hostMs(20_000))).not.toMatch(/^DONE-42$/m);
    await tmux('send-keys', '-t', session, 'exit', 'Enter');
    await waitFor(/^SHELL-EXIT=0$/m, hostMs(60_000));
    expect(alive(pid), 'QEMU is gone').toBe(false);
  } finally {
    await tmux('kill-session', '-t', session);
  }
}, hostMs(420_000));

test('npm run shell --suite: the suite\'s objects are in /run/bpf and its veth pair is up', async () => {
  const driver = String.raw`
import os, pty, sys, time, select
K = float(os.environ.get('BH_WAIT_SCALE', '1'))
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b''
def pump(t, until):
    global out
    end = time.time() + t * K
    while time.time() < end and until not in out:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try: c = os.read(fd, 65536)
            except OSError: return
            if not c: return
            out += c
pump(300, b'ends the guest')
os.write(fd, b'ls /run/bpf; ip -br -n p1a addr show p1a0; echo LISTED; exit\r')
pump(60, b'logout')
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors='replace'))
`;
  const r = await drive(driver, 'shell', '--suite', 'xdp');
  const out = r.all ?? '';
  const listing = out.slice(out.lastIndexOf('ls /run/bpf'));
  for (const o of ['xdp_verdicts.bpf.o', 'xdp_tx.bpf.o', 'xdp_bad_access.bpf.o', 'xdp_redirect_map.bpf.o']) expect(listing, out).toContain(o);
  expect(listing).toMatch(/p1a0@\S+\s+UP\s+10\.200\.\d+\.1\/24/);
  expect(out).toMatch(/veth pair: p1a0 10\.200\.\d+\.1 \(netns p1a\) <-> p1b0 10\.200\.\d+\.2 \(netns p1b\)/);
  const pid = Number(/QEMU pid (\d+)/.exec(out)?.[1]);
  expect(alive(pid), 'QEMU is gone after exit').toBe(false);
}, hostMs(420_000));
