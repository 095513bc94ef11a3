// The assertion that the verifier refused a program: the load fails with EACCES and the verifier's
// own log names the program and says why. Loads by the agent (guest.load) fail with an AgentError
// that carries the errno and the log; loads by iproute2 (guest.attach of a tc or lwt program) fail
// with a CommandError whose stderr carries libbpf's report and the log.
//   await expectVerifierRejects(guest.load('xdp_bad_access.bpf.c'), 'xdp_unchecked', /invalid access to packet/);
import { expect } from 'vitest';
import { CommandError } from './commands.js';
import { AgentError } from './protocol.js';

const EACCES = 13;
const ERRNO_NAMES: Record<number, string> = { 13: 'EACCES: the verifier said no', 22: 'EINVAL' };

/** `errno`: what the load fails with (default EACCES; EINVAL for a helper the type is not given). */
export async function expectVerifierRejects(attempt: Promise<unknown>, program: string, log: RegExp, errno = EACCES): Promise<void> {
  const err = await attempt.then(
    () => null,
    (e: unknown) => e,
  );
  if (err instanceof AgentError) {
    expect(err.op, `${program}: the request that failed`).toBe('load');
    expect(err.errno, `${program}: errno of the load (${ERRNO_NAMES[errno] ?? errno})`).toBe(errno);
    expect(err.log, `${program}: verifier log`).toMatch(log);
    expect(err.log, `${program}: the log names the program`).toContain(program);
  } else if (err instanceof CommandError) {
    const stderr = err.result.stderr;
    const text = errno === EACCES ? 'Permission denied' : errno === 22 ? 'Invalid argument' : `errno ${errno}`;
    expect(stderr, `${program}: the loader's errno (${ERRNO_NAMES[errno] ?? errno})`).toMatch(new RegExp(`${text}|-${errno}\\b|errno ${errno}\\b`));
    expect(stderr, `${program}: verifier log`).toMatch(log);
    expect(stderr, `${program}: the log names the program`).toContain(program);
  } else {
    expect.fail(`${program}: expected the verifier to reject the load, got ${err === null ? 'a successful load' : String(err)}`);
  }
}
