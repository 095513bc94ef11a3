// A run ends when whatever started it goes away, whichever process of the launch chain that is:
// npm, the shell npm runs scripts with, the tsx wrapper. The process records those ancestors (pid
// and start time, from /proc) and checks them twice a second; when one is gone, the run is ended
// with its guests. The chain stops below the first ancestor that is not Node.js, npm or npm's
// script shell: the user's own shell may go away (nohup npm run suite ... &) without ending it.
import { readFileSync } from 'node:fs';

interface Proc {
  pid: number;
  start: string;
  comm: string;
}

const LAUNCHER = /^(node|npm|npx|tsx|sh|dash)\b/;

/** ppid and start time of a process, from /proc/PID/stat (null when it is gone). */
function stat(pid: number): { ppid: number; start: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(rest[1]), start: rest[19] };
  } catch {
    return null;
  }
}

const comm = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};

/** This process's launch chain: its ancestors, parent first, while they are Node.js, npm or sh. */
export function ancestors(pid = process.pid): Proc[] {
  const out: Proc[] = [];
  let p = stat(pid)?.ppid ?? 0;
  while (p > 1 && out.length < 16) {
    const s = stat(p);
    const c = comm(p);
    if (!s || !LAUNCHER.test(c)) break;
    out.push({ pid: p, start: s.start, comm: c });
    p = s.ppid;
  }
  return out;
}

/** Calls `onGone` once, with the ancestor that went away, when any of them does. */
export function watchAncestors(onGone: (gone: Proc) => void, everyMs = 500): () => void {
  const chain = ancestors();
  let done = false;
  const timer = setInterval(() => {
    if (done) return;
    const gone = chain.find((a) => stat(a.pid)?.start !== a.start);
    if (gone) {
      done = true;
      clearInterval(timer);
      onGone(gone);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
