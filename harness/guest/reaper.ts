// Every running guest of this process, and the hooks that end them with it: on exit (QEMU killed
// at once), on SIGINT, SIGTERM and SIGHUP (killed and reaped before the signal ends the process),
// and when the process is orphaned. QEMU also runs under setpriv --pdeathsig SIGKILL, so even a
// process killed outright takes its guests with it.

/** What the hooks need of a guest. */
export interface LiveGuest {
  kill(): void;
  dropBootMemory(): void;
  waitExit(ms: number): Promise<boolean>;
}

/** This process's guests that are running (a kept guest is not: its keeper owns it). */
export const live = new Set<LiveGuest>();
let hooksInstalled = false;
/** The signals that end the process with its guests. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Installs the hooks once per process: on exit, on SIGINT/SIGTERM/SIGHUP, and when orphaned. */
export function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const vm of live) {
      vm.kill();
      vm.dropBootMemory();
    }
  });
  // Orphaned (the process that started us died without telling us, e.g. SIGKILL to a wrapper
  // such as npm or tsx): take our guests down with us.
  // Whether or not a guest is up right now: an orphaned process must not boot the next one.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      for (const vm of live) vm.kill();
      process.exit(1);
    }
  }, 500).unref();
  // The signal ends the process once its guests are gone (a second or two at most): vitest ends
  // its workers with SIGTERM, and a worker that died at once left its idle guests' QEMUs still
  // exiting after the run had ended.
  // The same signal again while they go (vitest sends its SIGTERM twice) is not let through: it
  // would end the process before it reaped them. The wait is bounded.
  let ending = false;
  for (const sig of SIGNALS) {
    const onSignal = () => {
      if (ending) return;
      ending = true;
      const guests = [...live];
      for (const vm of guests) vm.kill();
      void Promise.all(guests.map((vm) => vm.waitExit(2_000))).finally(() => {
        for (const s of SIGNALS) process.removeAllListeners(s);
        process.kill(process.pid, sig);
      });
    };
    process.on(sig, onSignal);
  }
}
