// The program types the harness attaches, each with the oldest kernel that has it and how the
// harness attaches it. Suites and the report read this table; a test on an older kernel is
// skipped with the reason. Each entry is its type's declaration's (harness/agent/types/, listed
// by types/registry.ts), in the registry's order.
import type { ProgramTypeDeclaration } from '../agent/types/declare.js';
import { REGISTRY, type Declaration } from '../agent/types/registry.js';

export interface ProgramType {
  /** Oldest kernel with this program type and the attach point the harness uses. */
  since: string;
  /** How users attach it, as the harness does. */
  attach: string;
  /** How harness/suite/probe.ts asks the kernel for the type (ProgramTypeDeclaration's `probe`). */
  probe?: ProgramTypeDeclaration['probe'];
}

/** A declaration's entry: its `since`, its `how` as `attach`, and its `probe` where it has one. */
type Entry<D extends Declaration> = { readonly since: D['since']; readonly attach: D['how'] } & Pick<D, Extract<'probe', keyof D>>;

export const PROGRAM_TYPES = Object.fromEntries(
  REGISTRY.map((d) => [d.name, { since: d.since, attach: d.how, ...('probe' in d ? { probe: d.probe } : {}) } satisfies ProgramType]),
) as { readonly [D in Declaration as D['name']]: Entry<D> };

export type ProgramTypeName = keyof typeof PROGRAM_TYPES;
