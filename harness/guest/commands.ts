// Shell commands in a guest: what both ways of running one have in common (the guest agent's `run`
// op, fast, for the harness's own short commands; an SSH exec channel, for streams and long or
// concurrent work), so that helpers such as VethPair, Cgroup or linkStats take either.

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: ExecResult,
  ) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-15).join('\n');
    super(`guest command failed (exit ${result.code}): ${command}${detail ? `\n${detail}` : ''}`);
    this.name = 'CommandError';
  }
}

export interface GuestCommands {
  /** Runs a command (busybox `sh -c` through the agent, root's bash over SSH); resolves with its exit code and output whatever the code. */
  run(command: string, opts?: { stdin?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Runs a command and throws a CommandError with its output when it exits non-zero. */
  exec(command: string, opts?: { stdin?: string; timeoutMs?: number }): Promise<string>;
}

/** A command's output, or a CommandError with it when the command exited non-zero. */
export function stdoutOrThrow(command: string, r: ExecResult): string {
  if (r.code !== 0) throw new CommandError(command, r);
  return r.stdout;
}
