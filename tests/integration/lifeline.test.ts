// A run ends, with its guests, when whatever started it goes away: npm (SIGTERM or SIGKILL) or the
// shell below it that npm runs the script with. Each case starts a real `npm run suite` of two suite files, waits for
// their guests (one per worker, as many as the guest budget allows, up to two), kills one process
// of the launch chain, and checks that every process of the run is gone soon after.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { ancestors } from '../../harness/guest/lifeline.js';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { guestBudget } from '../../harness/suite/config.js';
import { alive } from '../helpers/processes.js';
import { hostMs } from '../helpers/timeouts.js';

const ppidOf = (pid: number) => {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(t.slice(t.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
};
const commOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
};
/** Every descendant of pid, now. */
function descendants(pid: number): number[] {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  const out: number[] = [];
  let frontier = [pid];
  while (frontier.length) {
    const next = all.filter((p) => frontier.includes(ppidOf(p)));
    out.push(...next);
    frontier = next;
  }
  return out;
}

test('the launch chain is this process\'s Node.js, npm and sh ancestors, and stops at anything else', () => {
  for (const a of ancestors()) expect(a.comm).toMatch(/^(node|npm|npx|tsx|sh|dash)\b/);
});

for (const [victim, signal] of [
  ['npm', 'SIGTERM'],
  ['npm', 'SIGKILL'],
  ['sh', 'SIGKILL'],
] as const) {
  test(`${signal} to ${victim} ends the run and its guests`, async () => {
    const guests = Math.min(2, guestBudget());
    const npm = spawn('npm', ['run', 'suite', 'cgroup_sock', 'sk_lookup'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${guests} guests did not come up:\n${out}`)), hostMs(300_000));
      const on = (d: Buffer) => {
        out += d.toString();
        if ((out.match(/SSH ready after/g) ?? []).length >= guests) {
          clearTimeout(t);
          resolve();
        }
      };
      npm.stdout!.on('data', on);
      npm.stderr!.on('data', on);
    });
    const tree = descendants(npm.pid!);
    const qemu = tree.filter((p) => /qemu-system/.test(commOf(p)));
    expect(qemu.length, 'a QEMU per guest is running').toBe(guests);
    const target = victim === 'npm' ? npm.pid! : tree.find((p) => /^sh -c /.test(commOf(p)))!;
    expect(target, 'the process to kill').toBeTruthy();
    process.kill(target, signal);
    const end = Date.now() + hostMs(15_000);
    while (Date.now() < end && [...tree, npm.pid!].some(alive)) await new Promise((r) => setTimeout(r, 200));
    const left = [...tree, npm.pid!].filter(alive).map((p) => `${p} ${commOf(p).slice(0, 120)}`);
    expect(left, 'processes of the run still alive 15 s (on the reference machines) after the kill').toEqual([]);
  }, hostMs(400_000));
}
