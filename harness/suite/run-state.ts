// What one test run's suite files share across their worker processes: a kernel whose guest did
// not come up. The first suite file that meets it records the cause; every later file on that
// kernel fails at once with the same cause instead of waiting out its own boot.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileSafe } from '../base/paths.js';

export interface BootFailureRecord {
  kernel: string;
  /** The suite file whose guest failed first. */
  suite: string;
  cause: string;
  message: string;
}

export class RunState {
  constructor(readonly dir: string) {}

  private path(kernel: string): string {
    return join(this.dir, `boot-failed-${fileSafe(kernel)}.json`);
  }

  recordBootFailure(r: BootFailureRecord): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.path(r.kernel), JSON.stringify(r));
  }

  /**
   * Claims the one guest a run keeps (--keep-on-fail: the first failing test's). True for the
   * first caller only, across the run's worker processes (an exclusive create).
   */
  claimKeep(): boolean {
    mkdirSync(this.dir, { recursive: true });
    try {
      writeFileSync(join(this.dir, 'kept'), String(process.pid), { flag: 'wx' });
      return true;
    } catch {
      return false;
    }
  }

  bootFailure(kernel: string): BootFailureRecord | null {
    try {
      return JSON.parse(readFileSync(this.path(kernel), 'utf8')) as BootFailureRecord;
    } catch {
      return null;
    }
  }
}
