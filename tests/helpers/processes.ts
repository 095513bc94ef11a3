// Process checks the harness's own tests share: is a pid alive, wait until it is gone, what is
// left in a process group.
import { readdirSync, readFileSync } from 'node:fs';

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, ms: number): Promise<boolean> {
  // The monotonic clock: a step of the wall clock (a host that was paused and set its time on
  // resume) must not end the wait early.
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !alive(pid);
}

/** The processes of a process group, zombies too, as "pid state command" lines. */
export function groupMembers(pgid: number): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const [state, , pg] = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(pg) === pgid) out.push(`${pid} ${state} ${comm}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}
