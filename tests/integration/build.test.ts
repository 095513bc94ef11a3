// Kernel source builds (harness/kernels/build.ts and the modules it uses): the pure parts, and the whole pipeline against a fake
// kernel tree whose Makefile imitates kbuild in a few lines (a real build is the opt-in
// tests/integration/build-real.test.ts).
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { BuildProgress, compilerErrors, parseKbuildLine } from '../../harness/kernels/build-log.js';
import { overrideSettings } from '../../harness/base/config.js';
import { buildKernel, buildKey, ccacheCompiler, FRAGMENT_PATH } from '../../harness/kernels/build.js';
import { which } from '../../harness/base/tools.js';
import {
  COMPAT_FIXES,
  duplicateTentatives,
  fixConfigText,
  fixMakeVars,
  makefileVersion,
  selectFixes,
  tentativeDefinitions,
  type Toolchain,
  type TreeInfo,
} from '../../harness/kernels/compat.js';
import { checkConfig, kconfigDepends, kconfigSymbols, parseConfig } from '../../harness/kernels/kconfig.js';
import { hostMs } from '../helpers/timeouts.js';
import { treeDigest } from '../../harness/kernels/source.js';
import { loadCatalog, lookupKernel } from '../../harness/kernels/catalog.js';

const gcc = (major: number): Toolchain => ({ ccMajor: major, id: `gcc ${major}.2.0; GNU ld 2.40; GNU Make 4.3` });

/** A TreeInfo over files held in memory. */
function fakeTree(version: string, files: Record<string, string>): TreeInfo {
  const [a, b, c] = version.split('.').map(Number);
  return {
    version: [a, b, c ?? 0],
    read: (rel) => files[rel] ?? null,
    list: (rel) => Object.keys(files).filter((f) => f.startsWith(`${rel}/`) && !f.slice(rel.length + 1).includes('/')).map((f) => f.slice(rel.length + 1)),
  };
}

// --- fragment parsing -----------------------------------------------------------------------

test('config text: values, "is not set", comments; the last assignment wins', () => {
  const c = parseConfig('# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="str"\n\nCONFIG_D=m\nCONFIG_A=n\n');
  expect([...c]).toEqual([
    ['CONFIG_A', 'n'],
    ['CONFIG_B', 'n'],
    ['CONFIG_C', '"str"'],
    ['CONFIG_D', 'm'],
  ]);
});

test('a fragment in strict mode rejects junk lines and duplicates, with the line number', () => {
  expect(() => parseConfig('CONFIG_A=y\nBPF=y\n', { strict: true, origin: 'f' })).toThrow('f:2: not a config line: "BPF=y"');
  expect(() => parseConfig('CONFIG_A=y\n# CONFIG_A is not set\n', { strict: true, origin: 'f' })).toThrow('f:2: CONFIG_A is set twice');
});

test("the harness's fragment parses and asks for what the suites need, built in", async () => {
  const f = parseConfig(await readFile(FRAGMENT_PATH, 'utf8'), { strict: true });
  for (const o of ['BPF_SYSCALL', 'BPF_JIT', 'CGROUP_BPF', 'BPF_EVENTS', 'KPROBE_EVENTS', 'NET_CLS_BPF', 'NET_ACT_BPF', 'NET_SCH_INGRESS', 'VETH', 'LWTUNNEL_BPF', 'BPF_STREAM_PARSER', 'VIRTIO_NET', 'SERIAL_8250_CONSOLE', 'DEVTMPFS']) {
    expect(f.get(`CONFIG_${o}`), o).toBe('y');
  }
  for (const o of ['FUNCTION_TRACER', 'SECURITY_SELINUX', 'DEBUG_INFO_BTF']) expect(f.get(`CONFIG_${o}`), o).toBe('n');
  expect([...f.values()].filter((v) => v === 'm')).toEqual([]); // no modules
});

// --- Kconfig and the config check -------------------------------------------------------------

const KCONFIG = `
menuconfig NET
\tbool "Networking support"

config VETH
\ttristate "Virtual ethernet pair device"
\tdepends on NET
\tdepends on INET && NETDEVICES
\thelp
\t  depends on nothing here: help text

config BPF_JIT_ALWAYS_ON
\tbool "Permanently enable BPF JIT"
`;

test('Kconfig symbols and the dependencies of one symbol', () => {
  expect(kconfigSymbols(KCONFIG)).toEqual(['NET', 'VETH', 'BPF_JIT_ALWAYS_ON']);
  expect(kconfigDepends(KCONFIG, 'VETH')).toEqual(['NET', 'INET && NETDEVICES']);
  expect(kconfigDepends(KCONFIG, 'NOPE')).toEqual([]);
});

test('the check reports options the tree knows that ended up otherwise, and options it does not know', () => {
  const fragment = parseConfig('CONFIG_VETH=y\nCONFIG_NET=y\n# CONFIG_FUNCTION_TRACER is not set\nCONFIG_XDP_SOCKETS=y\nCONFIG_BPF_JIT_ALWAYS_ON=y\n');
  const final = parseConfig('CONFIG_VETH=m\nCONFIG_NET=y\nCONFIG_FUNCTION_TRACER=y\n');
  const known = new Set(['VETH', 'NET', 'FUNCTION_TRACER', 'BPF_JIT_ALWAYS_ON']);
  expect(checkConfig(fragment, final, known)).toEqual({
    mismatched: [
      { option: 'CONFIG_VETH', want: 'y', got: 'm' },
      { option: 'CONFIG_FUNCTION_TRACER', want: 'n', got: 'y' },
      { option: 'CONFIG_BPF_JIT_ALWAYS_ON', want: 'y', got: 'n' }, // known but absent: its dependencies are off
    ],
    unknown: ['CONFIG_XDP_SOCKETS'],
  });
  expect(checkConfig(fragment, parseConfig('CONFIG_VETH=y\nCONFIG_NET=y\nCONFIG_BPF_JIT_ALWAYS_ON=y\n'), known).mismatched).toEqual([]);
});

// --- compatibility fixes ------------------------------------------------------------------------

const tree414 = () =>
  fakeTree('4.14.67', {
    Makefile: 'VERSION = 4\nPATCHLEVEL = 14\nSUBLEVEL = 67\nKBUILD_CFLAGS += -fno-common\n',
    'arch/x86/Makefile': 'KBUILD_CFLAGS += -mindirect-branch=thunk-extern\n',
    'arch/x86/boot/compressed/Makefile': 'KBUILD_CFLAGS := -m64 -O2 -fno-strict-aliasing\n',
    'arch/x86/boot/compressed/kaslr_64.c': '/* Used by pgtable.h asm code to force instruction serialization. */\nunsigned long __force_order;\n',
    'arch/x86/boot/compressed/pgtable_64.c': '#include "misc.h"\nunsigned long __force_order;\nstatic int local_only;\nextern int elsewhere;\n',
    'arch/x86/boot/compressed/misc.c': 'struct boot_params;\nstruct boot_params *boot_params;\nint main(void);\nint f(void)\n{\n\tint x;\n\treturn x;\n}\n',
    'tools/objtool/Makefile': 'CFLAGS += -Wall -Werror $(WARNINGS) -Werror=implicit\n',
    'tools/lib/subcmd/Makefile': 'CFLAGS += -Werror -Wall\n',
    // Before 4.16 (and its backport): R_X86_64_PLT32, which binutils 2.31+ emit, is unknown.
    'arch/x86/tools/relocs.c': '\t\tREL_TYPE(R_X86_64_PLT32),\n\tswitch (r_type) {\n\tcase R_X86_64_NONE:\n\t\tbreak;\n\n\tcase R_X86_64_PC32:\n\t\t/* PC relative */\n\t\tbreak;\n',
    // 4.14's and 4.19's objtool (read_symbols) gives up on an object without .symtab.
    'tools/objtool/elf.c': '\tsymtab = find_section_by_name(elf, ".symtab");\n\tif (!symtab) {\n\t\tWARN("missing symbol table");\n\t\treturn -1;\n\t}\n',
  });

const tree510 = () =>
  fakeTree('5.10.223', {
    Makefile: 'VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 223\nKBUILD_CFLAGS += $(call cc-option,-fcf-protection=none)\n',
    'arch/x86/boot/compressed/Makefile': 'KBUILD_CFLAGS := -m64 -O2\n',
    'arch/x86/boot/compressed/misc.c': 'struct boot_params *boot_params;\n',
    'arch/x86/boot/compressed/acpi.c': 'int immovable_mem;\n',
    'tools/objtool/Makefile': 'CFLAGS := -Werror $(WARNINGS)\n',
    // 5.10's objtool accepts it.
    'tools/objtool/elf.c':
      '\tsymtab = find_section_by_name(elf, ".symtab");\n\tif (!symtab) {\n\t\t/*\n\t\t * A missing symbol table is actually possible if it\'s an empty .o\n\t\t * file.  This can happen for thunk_64.o.\n\t\t */\n\t\treturn 0;\n\t}\n',
  });

const tree61 = () =>
  fakeTree('6.1.0', {
    Makefile: 'VERSION = 6\nPATCHLEVEL = 1\nKBUILD_CFLAGS += -fcf-protection=none\n',
    'arch/x86/boot/compressed/Makefile': 'KBUILD_CFLAGS := -m64 -O2\n',
    'tools/objtool/Makefile': 'CFLAGS := -Werror $(WARNINGS)\n',
  });

const ids = (t: TreeInfo, tc: Toolchain) => selectFixes(t, tc).map((f) => f.id);

test('tentative definitions: file-scope, uninitialized, not extern/static/prototypes/forward declarations/locals', () => {
  expect(tentativeDefinitions('unsigned long __force_order;\nstatic int a;\nextern int b;\nint c = 1;\nint f(void);\nstruct s;\nstruct s *p;\nchar buf[64];\n\tint local;\n')).toEqual([
    '__force_order',
    'p',
    'buf',
  ]);
  expect(duplicateTentatives(tree414(), 'arch/x86/boot/compressed')).toEqual(['__force_order']);
  expect(duplicateTentatives(tree510(), 'arch/x86/boot/compressed')).toEqual([]);
});

test('compatibility fixes are chosen by what the tree has and which compiler builds it', () => {
  // 4.14 on gcc 12 (Debian 12): all five.
  expect(ids(tree414(), gcc(12))).toEqual(['cf-protection-none', 'boot-compressed-fcommon', 'host-tools-no-werror', 'relocs-plt32', 'objtool-symtab-frame-pointer']);
  // 5.10 sets -fcf-protection=none itself and has no duplicate definitions; gcc 12 is newer than it.
  expect(ids(tree510(), gcc(12))).toEqual(['host-tools-no-werror']);
  // 5.10 on gcc 10: released after gcc 10, nothing to do.
  expect(ids(tree510(), gcc(10))).toEqual([]);
  // 6.1 on gcc 12: nothing.
  expect(ids(tree61(), gcc(12))).toEqual([]);
  // gcc 7 knows no -fcf-protection; an old tree still gets -fcommon where it defines twice, and
  // the frame-pointer unwinder for its objtool (the symbol table depends on binutils, not gcc).
  expect(ids(tree414(), gcc(7))).toEqual(['boot-compressed-fcommon', 'relocs-plt32', 'objtool-symtab-frame-pointer']);
});

test('the fixes edit the build copy as intended and add make variables', () => {
  const t = tree414();
  const fixes = selectFixes(t, gcc(12));
  expect(fixMakeVars(fixes)).toEqual(['KCFLAGS=-fcf-protection=none']);
  const edited: Record<string, string> = {};
  for (const f of fixes) {
    for (const [rel, edit] of Object.entries(f.edit ?? {})) {
      const text = edited[rel] ?? t.read(rel);
      if (text !== null) edited[rel] = edit(text); // as the build does: files the tree lacks are left alone
    }
  }
  expect(edited['arch/x86/boot/compressed/Makefile']).toMatch(/^KBUILD_CFLAGS := -m64 -O2 -fno-strict-aliasing\n[\s\S]*\nKBUILD_CFLAGS \+= -fcommon\n$/);
  expect(edited['tools/objtool/Makefile']).toBe('CFLAGS += -Wall -Wno-error $(WARNINGS) -Werror=implicit\n');
  expect(edited['tools/lib/subcmd/Makefile']).toBe('CFLAGS += -Wno-error -Wall\n');
  expect(edited['arch/x86/tools/relocs.c']).toBe(
    '\t\tREL_TYPE(R_X86_64_PLT32),\n\tswitch (r_type) {\n\tcase R_X86_64_NONE:\n\t\tbreak;\n\n\tcase R_X86_64_PC32:\n\tcase R_X86_64_PLT32: /* bpf-harness: as 4.16 does */\n\t\t/* PC relative */\n\t\tbreak;\n',
  );
  // Once fixed, the compressed Makefile no longer needs the fix.
  const after = fakeTree('4.14.67', { ...Object.fromEntries(['arch/x86/boot/compressed/kaslr_64.c', 'arch/x86/boot/compressed/pgtable_64.c'].map((f) => [f, t.read(f)!])), 'arch/x86/boot/compressed/Makefile': edited['arch/x86/boot/compressed/Makefile'] });
  expect(COMPAT_FIXES.find((f) => f.id === 'boot-compressed-fcommon')!.needed(after, gcc(12))).toBe(false);
});

test('the version comes from the top Makefile', () => {
  expect(makefileVersion('# SPDX\nVERSION = 4\nPATCHLEVEL = 19\nSUBLEVEL = 325\nEXTRAVERSION =\n')).toEqual([4, 19, 325]);
  expect(() => makefileVersion('all:\n')).toThrow(/not a kernel source tree/);
});

// --- progress and errors --------------------------------------------------------------------

test('kbuild lines are parsed; the progress counts compiled files and notes linking', () => {
  expect(parseKbuildLine('  CC      kernel/fork.o')).toEqual({ step: 'CC', target: 'kernel/fork.o' });
  expect(parseKbuildLine('  CC [M]  drivers/net/veth.o')).toEqual({ step: 'CC', target: 'drivers/net/veth.o' });
  expect(parseKbuildLine('  HOSTCC  scripts/basic/fixdep')).toEqual({ step: 'HOSTCC', target: 'scripts/basic/fixdep' });
  expect(parseKbuildLine('kernel/fork.c:12:1: warning: unused')).toBeNull();
  expect(parseKbuildLine('make[1]: Entering directory')).toBeNull();
  const p = new BuildProgress();
  for (const l of ['  HOSTCC  scripts/a', '  CC      a.o', '  CC      b.o', 'a.c: warning: x', '  AR      lib.a', '  LD      vmlinux']) p.add(l);
  expect(p.compiled).toBe(2);
  expect(p.takeMilestone()).toBe('LD vmlinux');
  expect(p.takeMilestone()).toBeNull();
  expect(p.summary(125_000)).toBe('2 files compiled, 2m05s so far; last: LD vmlinux');
});

test("a failed build is summed up by the compiler's own message and make's last line", () => {
  const log = [
    '  CC      kernel/fork.o',
    '  CC      arch/x86/boot/compressed/pgtable_64.o',
    'kernel/fork.c:10:5: warning: unused variable',
    '  LD      arch/x86/boot/compressed/vmlinux',
    "ld: arch/x86/boot/compressed/pgtable_64.o:(.bss+0x0): multiple definition of `__force_order'; arch/x86/boot/compressed/kaslr_64.o:(.bss+0x0): first defined here",
    'make[2]: *** [arch/x86/boot/compressed/Makefile:118: arch/x86/boot/compressed/vmlinux] Error 1',
    'make[1]: *** [arch/x86/boot/Makefile:112: arch/x86/boot/compressed/vmlinux] Error 2',
    'make: *** [arch/x86/Makefile:284: bzImage] Error 2',
  ].join('\n');
  expect(compilerErrors(log)).toEqual([
    "ld: arch/x86/boot/compressed/pgtable_64.o:(.bss+0x0): multiple definition of `__force_order'; arch/x86/boot/compressed/kaslr_64.o:(.bss+0x0): first defined here",
    'make: *** [arch/x86/Makefile:284: bzImage] Error 2',
  ]);
  const cc = compilerErrors('  CC      a.o\nsecurity/selinux/genheaders.c:19:2: error: #error New address family defined\nmake: *** [x] Error 1\n');
  expect(cc[0]).toMatch(/genheaders.c:19:2: error: #error New address family/);
  expect(compilerErrors('one\ntwo\nthree\n', 2)).toEqual(['two', 'three']);
});

// --- the cache key ------------------------------------------------------------------------------

test('the objtool fix sets the frame-pointer unwinder and turns retpoline and stack validation off, in both spellings, as config lines', () => {
  const fix = selectFixes(tree414(), gcc(12)).filter((f) => f.id === 'objtool-symtab-frame-pointer');
  const lines = parseConfig(fixConfigText(fix));
  expect(Object.fromEntries(lines)).toEqual({
    CONFIG_UNWINDER_ORC: 'n',
    CONFIG_UNWINDER_FRAME_POINTER: 'y',
    CONFIG_ORC_UNWINDER: 'n',
    CONFIG_FRAME_POINTER_UNWINDER: 'y',
    CONFIG_FRAME_POINTER: 'y',
    CONFIG_RETPOLINE: 'n',
    CONFIG_STACK_VALIDATION: 'n',
  });
  expect(fixConfigText(selectFixes(tree510(), gcc(12)))).toBe('');
});

test('the cache key changes with the source, the fragment and the toolchain, and only with them', () => {
  const k = buildKey('tarball:abc', 'CONFIG_BPF=y\n', gcc(12));
  expect(buildKey('tarball:abc', 'CONFIG_BPF=y\n', gcc(12))).toBe(k);
  expect(buildKey('tarball:abd', 'CONFIG_BPF=y\n', gcc(12))).not.toBe(k);
  expect(buildKey('tarball:abc', 'CONFIG_BPF=y\nCONFIG_VETH=y\n', gcc(12))).not.toBe(k);
  expect(buildKey('tarball:abc', 'CONFIG_BPF=y\n', gcc(13))).not.toBe(k);
});

// --- the catalog and lookups ----------------------------------------------------------------------

test('source kernels in the catalog: Debian source packages and pinned upstream tarballs', () => {
  const c = loadCatalog();
  expect(lookupKernel('5.10-src', c)).toMatchObject({ source: 'debian-source', suite: 'bullseye', package: 'linux-source-5.10' });
  for (const [name, file] of [['4.14', 'linux-4.14.336.tar.xz'], ['4.19', 'linux-4.19.325.tar.xz']]) {
    const k = lookupKernel(name, c);
    expect(k.source).toBe('tarball');
    if (k.source !== 'tarball') continue;
    expect(k.url.endsWith(`/${file}`)).toBe(true);
    expect(k.sha256).toMatch(/^[0-9a-f]{64}$/);
  }
});

test('a URL, a tarball path or a directory is kernel source; any other path is a bzImage', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'src-'));
  expect(lookupKernel('https://example.org/linux-6.6.tar.xz')).toEqual({ source: 'tarball', url: 'https://example.org/linux-6.6.tar.xz' });
  expect(lookupKernel('/x/linux-4.14.336.tar.xz')).toEqual({ source: 'tree', path: '/x/linux-4.14.336.tar.xz' });
  expect(lookupKernel(dir)).toEqual({ source: 'tree', path: dir });
  expect(lookupKernel('/boot/vmlinuz-x')).toMatchObject({ source: 'local' });
});

// --- the pipeline on a fake tree ---------------------------------------------------------------

let cache: string;
let restore = () => {};
beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), 'build-cache-'));
  restore = overrideSettings({ cache });
});
afterEach(() => restore());

/**
 * A fake kernel tree: a new directory with `makefile` for its Makefile (a recipe line's two
 * leading spaces become make's tab), the version lines first.
 */
async function treeWithMakefile(prefix: string, version: [number, number, number], makefile: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const [v, p, sub] = version;
  await writeFile(join(dir, 'Makefile'), `VERSION = ${v}\nPATCHLEVEL = ${p}\nSUBLEVEL = ${sub}\n${makefile.replace(/^ {2}/gm, '\t')}`);
  return dir;
}

/** A "kernel tree" whose Makefile imitates kbuild's targets in a few lines. */
async function fakeKernelTree(opts: { bzImage?: string; olddefconfig?: string } = {}): Promise<string> {
  const dir = await treeWithMakefile(
    'fake-linux-',
    [9, 9, 1],
    `x86_64_defconfig:
  printf 'CONFIG_NET=y\\n# CONFIG_VETH is not set\\n' > .config
olddefconfig:
  ${opts.olddefconfig ?? 'true'}
bzImage:
${opts.bzImage ?? "  @echo '  CC      kernel/fork.o'\n  @echo '  CC      net/core/dev.o'\n  @echo '  LD      vmlinux'\n  mkdir -p include/config arch/x86/boot\n  echo 9.9.1-fake > include/config/kernel.release\n  echo fake-bzImage > arch/x86/boot/bzImage\n  echo map > System.map"}
`,
  );
  await writeFile(join(dir, 'Kconfig'), 'config NET\n\tbool "net"\n\nconfig VETH\n\ttristate "veth"\n\tdepends on NETDEVICES\n');
  await mkdir(join(dir, 'scripts'));
  await writeFile(join(dir, 'scripts', 'tool.sh'), '#!/bin/sh\n');
  await chmod(join(dir, 'scripts', 'tool.sh'), 0o755);
  return dir;
}

test('a tree builds once into the cache; the second build is a cache hit', async () => {
  const tree = await fakeKernelTree();
  const logDir = await mkdtemp(join(tmpdir(), 'build-log-'));
  const msgs: string[] = [];
  const first = await buildKernel('fake', { source: 'tree', path: tree }, { onProgress: (m) => msgs.push(m), logDir });
  expect(first).toMatchObject({ name: 'fake', release: '9.9.1-fake', version: [9, 9, 1], modulesDir: null, built: true });
  expect(await readFile(first.bzImage, 'utf8')).toBe('fake-bzImage\n');
  expect(msgs.join('\n')).toMatch(/options this tree does not know \(skipped\): CONFIG_BPF /);
  expect(await readFile(join(logDir, 'build.log'), 'utf8')).toMatch(/CC {6}net\/core\/dev\.o/);
  expect(existsSync(join(tree, '.config'))).toBe(false); // the user's tree is left alone
  const t = Date.now();
  const second = await buildKernel('fake', { source: 'tree', path: tree }, { logDir });
  expect(second.built).toBe(false);
  expect(second.bzImage).toBe(first.bzImage);
  expect(Date.now() - t).toBeLessThan(hostMs(5000));
  // A changed tree is a different build.
  await writeFile(join(tree, 'scripts', 'tool.sh'), '#!/bin/sh\necho changed\n');
  expect((await buildKernel('fake', { source: 'tree', path: tree }, { logDir })).built).toBe(true);
});

test("a failed build fails with the compiler's message and keeps the full log", async () => {
  const tree = await fakeKernelTree({
    bzImage: "  @echo '  CC      net/core/dev.o'\n  @echo 'net/core/dev.c:42:7: error: expected ; before }' >&2\n  @echo 'lots of noise'\n  @exit 2",
  });
  const logDir = await mkdtemp(join(tmpdir(), 'build-log-'));
  const err = await buildKernel('fake', { source: 'tree', path: tree }, { logDir }).catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).message).toMatch(/make bzImage failed \(make exited 2\):\n {2}net\/core\/dev\.c:42:7: error: expected ; before \}/);
  expect((err as Error).message).toContain(join(logDir, 'build.log'));
  expect(await readFile(join(logDir, 'build.log'), 'utf8')).toMatch(/lots of noise/);
});

test('an option of the fragment that does not end up as asked stops the build, naming its dependencies', async () => {
  // The fake olddefconfig turns VETH off again, as kconfig does when a dependency is missing.
  const tree = await fakeKernelTree({ olddefconfig: "echo '# CONFIG_VETH is not set' >> .config" });
  const err = await buildKernel('fake', { source: 'tree', path: tree }, { logDir: await mkdtemp(join(tmpdir(), 'build-log-')) }).catch((e: Error) => e);
  expect((err as Error).message).toMatch(/CONFIG_VETH: wanted y, got n \(depends on NETDEVICES; Kconfig\)/);
});

test('a tarball without a pinned or given sha256 is refused before anything is downloaded', async () => {
  await expect(buildKernel('x', { source: 'tarball', url: 'https://example.invalid/linux-9.9.tar.xz' })).rejects.toThrow(/no sha256 .*--sha256 HEX .*--source PATH/);
  const file = join(await mkdtemp(join(tmpdir(), 'tb-')), 'linux-9.9.tar.xz');
  await writeFile(file, 'not the release');
  await expect(
    buildKernel('x', { source: 'tarball', url: 'https://example.invalid/linux-9.9.tar.xz', sha256: 'a'.repeat(64) }, { sourcePath: file }),
  ).rejects.toThrow(/has sha256 [0-9a-f]{64}, expected a{64}/);
});

test('the CLI refuses to build a kernel that is not source, and needs something to build', async () => {
  const { cli: run } = await import('../helpers/cli.js');
  const cli = (...args: string[]) => run(args);
  const r = await cli('kernels', 'build', '6.1');
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(/6\.1 is a debian kernel, not kernel source/);
  expect((await cli('kernels', 'build')).stderr).toMatch(/name a catalog kernel, a source tree or tarball, or a tarball URL/);
  const list = await cli('kernels', 'list');
  expect(list.stdout).toMatch(/^ {2}5\.10-src +built from Debian bullseye linux-source-5\.10/m);
  expect(list.stdout).toMatch(/^ {2}4\.14 +built from linux-4\.14\.336\.tar\.xz/m);
});

test('a git tree is digested by what git tracks or would track: ignored build output does not count', async () => {
  const { execa } = await import('execa');
  const dir = await fakeKernelTree();
  await writeFile(join(dir, '.gitignore'), '*.o\n');
  const git = (...a: string[]) => execa('git', ['-C', dir, '-c', 'user.email=t@t', '-c', 'user.name=t', ...a]);
  await git('init', '-q');
  await git('add', '-A');
  await git('commit', '-qm', 'x');
  const d0 = await treeDigest(dir);
  await writeFile(join(dir, 'fork.o'), 'object');
  expect(await treeDigest(dir)).toBe(d0);
  await writeFile(join(dir, 'new.c'), 'int x;\n'); // untracked, not ignored: part of the source
  const d1 = await treeDigest(dir);
  expect(d1).not.toBe(d0);
  await chmod(join(dir, 'new.c'), 0o755); // the mode counts too
  expect(await treeDigest(dir)).not.toBe(d1);
});

test('a tarball comes from a path, or over HTTP checked against its sha256 before use', async () => {
  const { execa } = await import('execa');
  const { createServer } = await import('node:http');
  const { sha256File } = await import('../../harness/base/cache.js');
  const tree = await fakeKernelTree();
  const dir = await mkdtemp(join(tmpdir(), 'tarballs-'));
  const tgz = join(dir, 'linux-9.9.1.tar.gz');
  await execa('tar', ['-czf', tgz, '-C', join(tree, '..'), tree.split('/').pop()!]);
  const logDir = await mkdtemp(join(tmpdir(), 'build-log-'));
  const fromPath = await buildKernel(tgz, { source: 'tree', path: tgz }, { logDir });
  expect(fromPath).toMatchObject({ release: '9.9.1-fake', built: true });
  expect(fromPath.pinned).toMatch(/^linux-9\.9\.1\.tar\.gz \(sha256 [0-9a-f]{12}\)/);

  const body = await readFile(tgz);
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/linux-9.9.1.tar.gz`;
  try {
    const bad = await buildKernel('t', { source: 'tarball', url, sha256: 'b'.repeat(64) }, { logDir }).catch((e: Error) => e);
    expect((bad as Error).message).toMatch(/sha256 is [0-9a-f]{64}, expected b{64}; the download was discarded/);
    const good = await buildKernel('t', { source: 'tarball', url, sha256: await sha256File(tgz) }, { logDir });
    // Same bytes as the local tarball: the same cache entry, nothing built again.
    expect(good).toMatchObject({ built: false, bzImage: fromPath.bzImage });
    expect(requests).toBe(1);
  } finally {
    server.close();
  }
});

test('a build directory left by a killed build is removed; one whose builder lives is kept', async () => {
  const area = join(cache, 'kernels');
  const dead = join(area, `0123.tmp-${2 ** 22 + 1}-deadbeef`); // above any pid_max: no such process
  const alive = join(area, `4567.tmp-${process.pid}-cafe`);
  await mkdir(dead, { recursive: true });
  await mkdir(alive, { recursive: true });
  const msgs: string[] = [];
  await buildKernel('fake', { source: 'tree', path: await fakeKernelTree() }, { logDir: await mkdtemp(join(tmpdir(), 'build-log-')), onProgress: (m) => msgs.push(m) });
  expect(existsSync(dead)).toBe(false);
  expect(existsSync(alive)).toBe(true);
  expect(msgs.join('\n')).toMatch(/removing \S*0123\.tmp-\d+-deadbeef, left by a run that was killed/);
});

test('a full disk while copying the source is one message with the place and the space, not a line per file', async (ctx) => {
  // A 2 MiB filesystem for the cache (root may mount a tmpfs; elsewhere the test says why it cannot run).
  const small = await mkdtemp(join(tmpdir(), 'small-cache-'));
  const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small], { reject: false });
  if (mounted.exitCode !== 0) ctx.skip(`needs a small tmpfs to fill, and mount refused: ${mounted.stderr.trim()}`);
  const own = overrideSettings({ cache: small });
  try {
    const tree = await fakeKernelTree();
    for (let i = 0; i < 40; i++) await writeFile(join(tree, `blob${i}.bin`), Buffer.alloc(100 * 1024, i));
    const err = await buildKernel('fake', { source: 'tree', path: tree }, { logDir: await mkdtemp(join(tmpdir(), 'build-log-')) }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toMatch(/copying \S+: no space left on the device of \S+ \(\d+ MiB free; the source needs about \d+ MiB/);
    expect(msg.match(/No space left/gi) ?? []).toHaveLength(1);
  } finally {
    own();
    await execa('umount', [small], { reject: false });
  }
});

/** A tree for incremental builds: its Makefile writes into O= as kbuild does, and says what it found there from the last build. */
async function fakeIncrementalTree(): Promise<string> {
  const dir = await treeWithMakefile(
    'fake-linux-inc-',
    [4, 14, 67],
    `x86_64_defconfig:
  printf 'CONFIG_NET=y\\n' > $(O)/.config
olddefconfig:
  true
bzImage:
  @if test -f $(O)/vmlinux.o; then echo '  reused vmlinux.o'; else echo '  CC      kernel/fork.o'; echo obj > $(O)/vmlinux.o; fi
  @echo 'CC=$(CC) HOSTCC=$(HOSTCC) CCACHE_DIR='"$$CCACHE_DIR" >> $(O)/compilers
  cp arch/x86/boot/compressed/Makefile $(O)/compressed-Makefile-seen
  mkdir -p $(O)/include/config $(O)/arch/x86/boot
  echo 4.14.67-fake > $(O)/include/config/kernel.release
  cat scripts/tool.sh > $(O)/arch/x86/boot/bzImage
`,
  );
  await writeFile(join(dir, 'Kconfig'), 'config NET\n\tbool "net"\n');
  // Two tentative definitions of one variable: the boot-compressed-fcommon fix edits this Makefile.
  await mkdir(join(dir, 'arch/x86/boot/compressed'), { recursive: true });
  await writeFile(join(dir, 'arch/x86/boot/compressed/Makefile'), 'KBUILD_CFLAGS := -m64 -O2\n');
  await writeFile(join(dir, 'arch/x86/boot/compressed/kaslr_64.c'), 'unsigned long __force_order;\n');
  await writeFile(join(dir, 'arch/x86/boot/compressed/pgtable_64.c'), 'unsigned long __force_order;\n');
  await mkdir(join(dir, 'scripts'));
  await writeFile(join(dir, 'scripts', 'tool.sh'), '#!/bin/sh\n');
  return dir;
}

test('incremental builds (a bisect\'s steps) build the tree where it is into one O= directory, through ccache, and leave the tree as it was', async () => {
  const tree = await fakeIncrementalTree();
  const inc = { outDir: await mkdtemp(join(tmpdir(), 'inc-out-')), ccacheDir: join(cache, 'ccache') };
  const logDir = await mkdtemp(join(tmpdir(), 'build-log-'));
  const before = await treeDigest(tree);
  const msgs: string[] = [];
  const first = await buildKernel('step1', { source: 'tree', path: tree }, { incremental: inc, logDir, onProgress: (m) => msgs.push(m) });
  expect(first).toMatchObject({ built: true, release: '4.14.67-fake' });
  expect(await readFile(join(logDir, 'build.log'), 'utf8')).toMatch(/CC {6}kernel\/fork\.o/);
  // The fix was in the tree while make ran, and is gone after; make wrote nothing into the tree.
  expect(await readFile(join(inc.outDir, 'compressed-Makefile-seen'), 'utf8')).toMatch(/KBUILD_CFLAGS \+= -fcommon/);
  expect(await treeDigest(tree)).toBe(before);
  expect(existsSync(join(tree, '.config'))).toBe(false);
  expect(existsSync(join(inc.outDir, '.config'))).toBe(true);

  // The next step: a changed tree builds again, and finds the last build's objects.
  await writeFile(join(tree, 'scripts', 'tool.sh'), '#!/bin/sh\necho step 2\n');
  const logDir2 = await mkdtemp(join(tmpdir(), 'build-log-'));
  const second = await buildKernel('step2', { source: 'tree', path: tree }, { incremental: inc, logDir: logDir2 });
  expect(second.built).toBe(true);
  expect(await readFile(join(logDir2, 'build.log'), 'utf8')).toMatch(/reused vmlinux\.o/);
  expect(await readFile(second.bzImage, 'utf8')).toBe('#!/bin/sh\necho step 2\n');
  const compilers = (await readFile(join(inc.outDir, 'compilers'), 'utf8')).trim().split('\n');
  expect(compilers).toHaveLength(2);
  if (ccacheCompiler(inc.ccacheDir)) {
    for (const l of compilers) expect(l).toBe(`CC=${which('ccache')} gcc HOSTCC=${which('ccache')} gcc CCACHE_DIR=${inc.ccacheDir}`);
    expect(msgs).toContain(`build: through ccache (${inc.ccacheDir})`);
  } else {
    expect(msgs.join('\n')).toMatch(/ccache is not installed/);
  }
});
