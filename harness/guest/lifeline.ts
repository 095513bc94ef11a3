// A run ends when whatever started it goes away, whichever process of the launch chain that is:
// npm, the shell npm runs scripts with, the tsx wrapper. The process records those ancestors (pid
// and start time, from /proc) and checks them twice a second; when one is gone, the run is ended
// with its guests. The chain stops below the first ancestor that is not Node.js, npm or npm's
// script shell: the user's own shell may go away (nohup npm run suite ... &) without ending it.
import { readFileSync } from 'node:fs';
import { procStat } from '../base/procs.js';

interface Proc {
  pid: number;
  start: string;
  comm: string;
}

const LAUNCHER = /^(node|npm|npx|tsx|sh|dash)\b/;


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
  let p = procStat(pid)?.ppid ?? 0;
  while (p > 1 && out.length < 16) {
    const s = procStat(p);
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
    const gone = chain.find((a) => procStat(a.pid)?.start !== a.start);
    if (gone) {
      done = true;
      clearInterval(timer);
      onGone(gone);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
