// Compatibility fixes for old kernel trees on a new toolchain: each is chosen by what the tree has
// and which compiler builds it, and says why when it is applied (make variables, edits to the
// build copy, config options).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseRelease } from './types.js';

export interface TreeInfo {
  version: [number, number, number];
  /** A file of the tree by relative path, or null. */
  read(rel: string): string | null;
  /** File names in a directory of the tree (empty when missing). */
  list(rel: string): string[];
}

export interface Toolchain {
  /** gcc's major version. */
  ccMajor: number;
  /** One line naming compiler, linker and make versions (part of the cache key). */
  id: string;
}

export interface CompatFix {
  id: string;
  /** Why the fix exists; printed when it is applied. */
  why: string;
  needed(tree: TreeInfo, tc: Toolchain): boolean;
  /** Make variables, appended (space-separated) to what other fixes give the same variable. */
  make?: Record<string, string>;
  /** Edits to files of the build copy (never the user's tree): relative path -> new text. */
  edit?: Record<string, (text: string) => string>;
  /**
   * Config options set after kernels/config/bpf.config (same syntax as the fragment: "y", "n",
   * a number or a quoted string); they are checked after the merge like the fragment's own.
   */
  config?: Record<string, string>;
}

const older = (v: [number, number, number], than: string) => {
  const w = parseRelease(than);
  for (let i = 0; i < 3; i++) if (v[i] !== w[i]) return v[i] < w[i];
  return false;
};

/** Names defined without initializer at file scope ("tentative definitions") in one C file. */
export function tentativeDefinitions(c: string): string[] {
  const out: string[] = [];
  for (const m of c.matchAll(/^([A-Za-z_][\w \t*]*?)\b([A-Za-z_]\w*)[ \t]*(?:\[[^\]\n]*\])?[ \t]*;/gm)) {
    const type = m[1].trim();
    if (!type || /^(extern|static|typedef|return|goto)\b/.test(type)) continue;
    if (/^(struct|union|enum)$/.test(type)) continue; // a forward declaration
    out.push(m[2]);
  }
  return out;
}

/** Symbols with a tentative definition in more than one .c file of a directory. */
export function duplicateTentatives(tree: TreeInfo, dir: string): string[] {
  const seen = new Map<string, number>();
  for (const f of tree.list(dir).filter((n) => n.endsWith('.c'))) {
    for (const s of new Set(tentativeDefinitions(tree.read(`${dir}/${f}`) ?? ''))) seen.set(s, (seen.get(s) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([s]) => s).sort();
}

/** Roughly the first kernel release that built warning-free with each gcc major version. */
const FIRST_KERNEL_FOR_GCC: Record<number, string> = { 10: '5.7', 11: '5.13', 12: '6.0', 13: '6.3', 14: '6.9', 15: '6.15' };

export const COMPAT_FIXES: CompatFix[] = [
  {
    id: 'cf-protection-none',
    why: 'a compiler that instruments for CET by default (-fcf-protection) rejects retpoline\'s -mindirect-branch on trees older than the kernel\'s own -fcf-protection=none',
    needed: (tree, tc) => tc.ccMajor >= 8 && !/fcf-protection/.test((tree.read('Makefile') ?? '') + (tree.read('arch/x86/Makefile') ?? '')),
    make: { KCFLAGS: '-fcf-protection=none' },
  },
  {
    id: 'boot-compressed-fcommon',
    why: 'gcc 10+ defaults to -fno-common, and the compressed boot wrapper of old trees defines the same variable in two files (e.g. __force_order); that directory sets its own flags and ignores KCFLAGS, so -fcommon goes into its Makefile',
    needed: (tree) =>
      !/-fcommon/.test(tree.read('arch/x86/boot/compressed/Makefile') ?? '-fcommon') && duplicateTentatives(tree, 'arch/x86/boot/compressed').length > 0,
    edit: {
      'arch/x86/boot/compressed/Makefile': (t) =>
        `${t.replace(/\n*$/, '\n')}\n# bpf-harness: duplicate tentative definitions link only with -fcommon (gcc 10+ default to -fno-common).\nKBUILD_CFLAGS += -fcommon\n`,
    },
  },
  {
    id: 'host-tools-no-werror',
    why: 'objtool and libsubcmd are host tools built with -Werror; a compiler newer than the tree warns about code it accepted before (gcc 12: -Wuse-after-free in libsubcmd\'s xrealloc), so their warnings stay warnings',
    needed: (tree, tc) => {
      const first = FIRST_KERNEL_FOR_GCC[Math.min(tc.ccMajor, 15)];
      if (!first || !older(tree.version, first)) return false;
      return ['tools/objtool/Makefile', 'tools/lib/subcmd/Makefile'].some((f) => /(^|\s)-Werror(?=\s|$)/m.test(tree.read(f) ?? ''));
    },
    edit: Object.fromEntries(
      ['tools/objtool/Makefile', 'tools/lib/subcmd/Makefile'].map((f) => [f, (t: string) => t.replace(/(^|[ \t])-Werror(?=[ \t]|$)/gm, '$1-Wno-error')]),
    ),
  },
  {
    id: 'relocs-plt32',
    why: 'binutils 2.31+ emit R_X86_64_PLT32 for calls, which this tree\'s relocs tool (and module loader) reject ("Unsupported relocation type: R_X86_64_PLT32"); they are treated as R_X86_64_PC32, as 4.16 does',
    needed: (tree) => {
      const relocs = tree.read('arch/x86/tools/relocs.c') ?? '';
      // The tree may name the type (REL_TYPE(R_X86_64_PLT32)) without handling it.
      return /case R_X86_64_PC32:/.test(relocs) && !/case R_X86_64_PLT32:/.test(relocs);
    },
    edit: Object.fromEntries(
      ['arch/x86/tools/relocs.c', 'arch/x86/kernel/module.c', 'arch/x86/kernel/machine_kexec_64.c'].map((f) => [
        f,
        (t: string) => t.replace(/^([ \t]*)case R_X86_64_PC32:\n/m, (line, indent: string) => `${line}${indent}case R_X86_64_PLT32: /* bpf-harness: as 4.16 does */\n`),
      ]),
    ),
  },
  {
    id: 'objtool-symtab-frame-pointer',
    why: 'this tree\'s objtool gives up on an object without a symbol table ("missing symbol table"), which new binutils write for arch/x86/entry/thunk_64.o; objtool runs only for stack validation, which the ORC unwinder and retpoline select, so the frame-pointer unwinder is chosen and retpoline and stack validation are off (a test guest needs no Spectre v2 mitigation)',
    needed: (tree) => {
      const elf = tree.read('tools/objtool/elf.c') ?? '';
      // Newer objtool accepts a missing .symtab ("A missing symbol table is actually possible ...").
      return /WARN\("missing symbol table"\);\s*return -1;/.test(elf);
    },
    // 4.14.0-4.14.x spell the choice ORC_UNWINDER/FRAME_POINTER_UNWINDER (renamed in 4.15 and in later 4.14.y).
    config: {
      CONFIG_UNWINDER_ORC: 'n',
      CONFIG_UNWINDER_FRAME_POINTER: 'y',
      CONFIG_ORC_UNWINDER: 'n',
      CONFIG_FRAME_POINTER_UNWINDER: 'y',
      CONFIG_FRAME_POINTER: 'y',
      // 4.14.y and 4.19.y: "config RETPOLINE ... select STACK_VALIDATION if HAVE_STACK_VALIDATION".
      CONFIG_RETPOLINE: 'n',
      CONFIG_STACK_VALIDATION: 'n',
    },
  },
];

/** The config lines the chosen fixes add after the fragment, as text in .config syntax. */
export function fixConfigText(fixes: CompatFix[]): string {
  const lines = fixes.flatMap((f) =>
    Object.entries(f.config ?? {}).map(([k, v]) => (v === 'n' ? `# ${k} is not set` : `${k}=${v}`)),
  );
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function selectFixes(tree: TreeInfo, tc: Toolchain, fixes = COMPAT_FIXES): CompatFix[] {
  return fixes.filter((f) => f.needed(tree, tc));
}

/** The make variables the chosen fixes add, as `NAME=value` arguments. */
export function fixMakeVars(fixes: CompatFix[]): string[] {
  const vars = new Map<string, string[]>();
  for (const f of fixes) for (const [k, v] of Object.entries(f.make ?? {})) vars.set(k, [...(vars.get(k) ?? []), v]);
  return [...vars].map(([k, v]) => `${k}=${v.join(' ')}`);
}

/** Reads VERSION, PATCHLEVEL and SUBLEVEL from a tree's top Makefile. */
export function makefileVersion(makefile: string): [number, number, number] {
  const get = (k: string) => new RegExp(`^${k}\\s*=\\s*(\\d+)`, 'm').exec(makefile)?.[1];
  const v = get('VERSION');
  const p = get('PATCHLEVEL');
  if (!v || !p) throw new Error('the top Makefile has no VERSION/PATCHLEVEL: not a kernel source tree');
  return [Number(v), Number(p), Number(get('SUBLEVEL') ?? 0)];
}

export function treeInfo(root: string): TreeInfo {
  const read = (rel: string) => {
    try {
      return readFileSync(join(root, rel), 'utf8');
    } catch {
      return null;
    }
  };
  const list = (rel: string) => {
    try {
      return readdirSync(join(root, rel));
    } catch {
      return [];
    }
  };
  return { version: makefileVersion(read('Makefile') ?? ''), read, list };
}
