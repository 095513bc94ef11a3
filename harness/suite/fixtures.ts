// Per-test resources a suite file declares once at its top level (or in a describe block), in
// the style of useGuest: made before each test, and gone after it whatever the test did.
//   const net = useVethPair(guest);          // net.a.netns, net.b.ip ...
//   const cg = useCgroup(guest, 'skb');      // cg.path
import { beforeEach, type TestContext } from 'vitest';
import { Cgroup } from '../agent/cgroup.js';
import type { Guest } from './testing.js';
import { VethPair, type VethPairOptions } from '../agent/topology.js';
import { settings } from '../base/config.js';

/** An object that stands for the value made for the running test; outside a test it throws. */
function perTest<T extends object>(what: string, current: () => T | undefined): T {
  return new Proxy({} as T, {
    get(_, key) {
      const v = current();
      if (!v) throw new Error(`${what} exists only while a test runs`);
      const field = Reflect.get(v, key, v) as unknown;
      return typeof field === 'function' ? field.bind(v) : field;
    },
  });
}

/**
 * A fresh veth pair between two namespaces for each test (see VethPair.create). Options may be a
 * function, read when the pair is made: `useVethPair(guest, () => ({ aNetns: net.b.netns }))` puts
 * a second pair behind the first one's B (pairs are made in the order they were declared).
 * Not destroyed by this helper: useGuest's reset after each test deletes every namespace (one
 * round trip less), and a guest kept by --keep-on-fail keeps the pair as the test left it.
 */
export function useVethPair(guest: Guest, opts?: VethPairOptions | (() => VethPairOptions)): VethPair {
  let pair: VethPair | undefined;
  beforeEach(async (ctx) => {
    pair = await VethPair.create(guest.agent, typeof opts === 'function' ? opts() : opts);
    ctx.onTestFinished(() => {
      pair = undefined;
    });
  });
  return perTest('the veth pair', () => pair);
}

function alive(guest: Guest): boolean {
  try {
    return guest.vm.running && !guest.agent.exited;
  } catch {
    return false; // torn down already
  }
}

/**
 * A cgroup v2 directory (/sys/fs/cgroup/bh-NAME) for each test, removed after it: after the
 * test's own clean-up and before the guest's reset. A removal that fails (a process the test left
 * in it) fails the test. A failed test's guest kept by --keep-on-fail keeps its cgroup.
 */
export function useCgroup(guest: Guest, name: string): Cgroup {
  let cg: Cgroup | undefined;
  beforeEach(async (ctx: TestContext) => {
    const made = await Cgroup.create(guest, name);
    cg = made;
    // onTestFinished hooks run in reverse order: this one before useGuest's reset.
    ctx.onTestFinished(async () => {
      cg = undefined;
      if (settings().keepOnFail && ctx.task.result?.state === 'fail') return;
      if (!alive(guest)) return; // a dead guest takes its cgroups with it
      await made.remove();
    });
  });
  return perTest('the cgroup', () => cg);
}
