// useGuest: the hooks of a suite file's guest. It is taken over from the previous file of this
// worker or booted before the first test (bring-up.ts), checked and reset after every test
// (hygiene.ts; a test that left the kernel faulted gets the next test a fresh guest), kept for a
// shell when a test fails under --keep-on-fail (keep.ts), and handed to the next file or torn down
// after the last (guest-pool.ts). Its tests skip, with the reason, where the kernel lacks the
// suite's program type (skips.ts).
import { rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { afterAll, beforeAll, beforeEach, type TestContext } from 'vitest';
import type { Agent, BpfMap, BpfObject } from '../agent/agent.js';
import { attach, type AttachResult, type AttachSpec } from '../agent/attach.js';
import type { SetupTimes } from '../base/phases.js';
import type { GuestCommands } from '../guest/commands.js';
import { type ProgramOptions, type ProgramResult, runProgram } from '../guest/program.js';
import type { SshSession } from '../guest/ssh.js';
import type { Vm } from '../guest/vm.js';
import type { Kernel } from '../kernels/catalog.js';
import { bringUp } from './bring-up.js';
import { GUEST_OBJECT_DIR } from './compile.js';
import { handBack } from './guest-pool.js';
import { setupTimeoutMs } from './config.js';
import { type GuestOptions, GuestSlot } from './guest-slot.js';
import { finishTest, FreshGuestNeeded, marksNow } from './hygiene.js';
import { PROGRAM_TYPES, type ProgramTypeName } from './progtypes.js';
import { typeSkipReason, versionSkipReason } from './skips.js';

export type { GuestOptions };

/** A suite's guest; its `run` and `exec` go through the agent (see harness/guest/commands.ts). */
export interface Guest extends GuestCommands {
  readonly vm: Vm;
  readonly ssh: SshSession;
  readonly agent: Agent;
  readonly kernel: Kernel;
  /** Path in the guest of a compiled source, e.g. objectPath('xdp_drop.bpf.c'). */
  objectPath(source: string): string;
  /** Loads a compiled source's object through the agent. */
  load(source: string): Promise<BpfObject>;
  /** Attaches a program the way users do (see harness/agent/attach.ts); the result is typed by spec.type. */
  attach<S extends AttachSpec>(spec: S): Promise<AttachResult<S>>;
  /** A map pinned in bpffs by another loader, e.g. pinnedMap(`${TC_PIN_DIR}/cls_drop`) for a map tc pinned. */
  pinnedMap(path: string): BpfMap;
  /**
   * A program of the project's own (a C test program, a Go or Rust test binary, a script) run in the
   * guest as root, as `bpf-harness run` runs one: copied in with the shared libraries it needs,
   * o.copy and its working directory (o.cwd, default the suite's folder); its output and exit code.
   * A kernel fault while it runs fails the test, as any other.
   */
  runProgram(program: string, args?: string[], o?: ProgramOptions): Promise<ProgramResult>;
  /** Skips the running test, with the reason, when the guest's kernel is older than `version`. */
  requireKernel(ctx: TestContext, version: string, feature: string): void;
}

export { GUEST_OBJECT_DIR };

/** Declares the guest of a suite file. Call at the top level of the test file. */
export function useGuest(opts: GuestOptions): Guest {
  const slot = new GuestSlot(opts);
  // Booting may include a first kernel download and image build.
  const setupMs = setupTimeoutMs();
  /** The running test's finishTest has not run yet (it does not when the test skips itself). */
  let unfinished = false;
  /** The last test's guest crashed and was torn down: the next test boots a fresh one. */
  let freshGuestFor: string | undefined;
  const type = opts.type ?? (opts.suite in PROGRAM_TYPES ? (opts.suite as ProgramTypeName) : undefined);

  // vitest wants the first argument destructured; the second is the file.
  beforeAll(async ({}, file) => {
    const setup: SetupTimes = {};
    Object.assign(file.meta, { setup });
    await bringUp(slot, setup);
  }, setupMs);

  beforeEach(async (ctx) => {
    // A test that skipped itself (ctx.skip) gets no onTestFinished: what it set up goes now.
    if (unfinished && slot.live) await slot.agent!.call('reset', { scrub: 'test' });
    unfinished = false;
    // A guest that died without its test's clean-up noticing is torn down here.
    if (slot.vm && !slot.live) {
      freshGuestFor ??= 'an earlier test';
      await slot.tearDown();
    }
    // The guest of an earlier test crashed (and was torn down): this test gets a fresh one.
    // One that does not come up fails this test with its cause, and the next attempt or test tries
    // again (or, when the kernel did not come up at all, fails at once with the cause: RunState).
    if (!slot.vm && freshGuestFor) {
      console.log(`[harness] ${opts.suite}: booting a fresh guest for "${ctx.task.name}": the guest of "${freshGuestFor}" faulted`);
      await bringUp(slot);
      freshGuestFor = undefined;
    }
    if (type && slot.vm) {
      const reason = await typeSkipReason(type, slot.vm, slot.agent);
      if (reason) ctx.skip(reason);
    }
    const marks = marksNow(slot);
    // After the suite's own afterEach hooks, and even when one of them throws (one that talks to a
    // guest that crashed does): the reset, the fault check and the fresh guest for the next test.
    unfinished = true;
    ctx.onTestFinished(async () => {
      unfinished = false;
      try {
        freshGuestFor = (await finishTest(slot, ctx, marks)) ?? freshGuestFor;
      } catch (e) {
        if (e instanceof FreshGuestNeeded) freshGuestFor = e.testName;
        throw e;
      }
    }, setupMs);
  }, setupMs);

  afterAll(async () => {
    if (slot.staging) await rm(slot.staging.dir, { recursive: true, force: true });
    await handBack(slot);
  }, 60_000);

  const objectPath = (source: string) => `${GUEST_OBJECT_DIR}/${basename(source).replace(/\.c$/, '.o')}`;
  const vm = () => slot.need(slot.vm, 'the VM');
  const agent = () => slot.need(slot.agent, 'the agent');
  return {
    get vm() {
      return vm();
    },
    get ssh() {
      return vm().ssh;
    },
    get agent() {
      return agent();
    },
    get kernel() {
      return vm().kernel;
    },
    objectPath,
    load: (source) => agent().load(objectPath(source)),
    attach: (spec) => attach({ agent: agent() }, spec),
    pinnedMap: (path) => agent().pinnedMap(path),
    runProgram: (program, args = [], o = {}) => runProgram(vm(), program, args, { ...o, cwd: o.cwd ?? slot.suiteDir }),
    run: (command, o) => agent().run(command, o),
    exec: (command, o) => agent().exec(command, o),
    requireKernel(ctx, version, feature) {
      const reason = versionSkipReason(vm().kernel, version, feature);
      if (reason) ctx.skip(reason);
    },
  };
}
