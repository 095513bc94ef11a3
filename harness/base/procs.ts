// What /proc says about processes and the host boot: one place for the identity checks of cache
// locks, the accelerator probe's per-boot cache, the launch-chain watch and kept guests.
import { readFileSync } from 'node:fs';

/** This host boot's id (the kernel's random boot_id), or "unknown". */
export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** A process's parent and start time (clock ticks since boot), or null when it is gone. */
export function procStat(pid: number): { ppid: number; start: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(rest[1]), start: rest[19] };
  } catch {
    return null;
  }
}

/** True while a pid names a process (one owned by another user counts too). */
export function pidAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
