// The assertion that the verifier refused a program: the load fails with EACCES and the verifier's
// own log names the program and says why. Loads by the agent (guest.load) fail with an AgentError
// that carries the errno and the log; loads by iproute2 (guest.attach of a tc or lwt program) fail
// with a CommandError whose stderr carries libbpf's report and the log.
//   await expectVerifierRejects(guest.load('xdp_bad_access.bpf.c'), 'xdp_unchecked', /invalid access to packet/);
import { expect } from 'vitest';
import { CommandError } from '../guest/commands.js';
import { AgentError } from './wire.js';

const EACCES = 13;
/** Each errno a refused load can carry: how the assertion names it, and how a loader (strerror) prints it. */
const ERRNOS: Record<number, { name: string; text: string }> = {
  13: { name: 'EACCES: the verifier said no', text: 'Permission denied' },
  22: { name: 'EINVAL', text: 'Invalid argument' },
};

/** `errno`: what the load fails with (default EACCES; EINVAL for a helper the type is not given). */
export async function expectVerifierRejects(attempt: Promise<unknown>, program: string, log: RegExp, errno = EACCES): Promise<void> {
  const { name, text } = ERRNOS[errno] ?? { name: String(errno), text: `errno ${errno}` };
  const err = await attempt.then(
    () => null,
    (e: unknown) => e,
  );
  if (err instanceof AgentError) {
    expect(err.op, `${program}: the request that failed`).toBe('load');
    expect(err.errno, `${program}: errno of the load (${name})`).toBe(errno);
    expect(err.log, `${program}: verifier log`).toMatch(log);
    expect(err.log, `${program}: the log names the program`).toContain(program);
  } else if (err instanceof CommandError) {
    const stderr = err.result.stderr;
    expect(stderr, `${program}: the loader's errno (${name})`).toMatch(new RegExp(`${text}|-${errno}\\b|errno ${errno}\\b`));
    expect(stderr, `${program}: verifier log`).toMatch(log);
    expect(stderr, `${program}: the log names the program`).toContain(program);
  } else {
    expect.fail(`${program}: expected the verifier to reject the load, got ${err === null ? 'a successful load' : String(err)}`);
  }
}
