// Guest image: a small initramfs built without root from the host's Debian packages (busybox,
// dropbear, iproute2 and their libraries), the harness's guest agent, and fresh SSH keys; the
// kernel's modules go in a second archive appended per kernel.
import { chmod, copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync, realpathSync, createWriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { ed25519KeyPair } from './ssh.js';
import { cached, contentKey, inputSha256, sha256, sha256File, statStamp } from '../base/cache.js';
import { settings } from '../base/config.js';
import { type Kernel, REPO_ROOT, loadOrder, readModuleIndex } from '../kernels/catalog.js';
import { FILES, requireFiles, requireTools, type Tool, which } from '../base/tools.js';

export const IMAGES_DIR = join(REPO_ROOT, 'images');
const AGENT_DIR = join(IMAGES_DIR, 'agent');

export interface Recipe {
  programs: Record<string, string>;
  busybox: string;
  modules: string[];
}

export interface Image {
  /** The initramfs to boot (base + modules). */
  initramfs: string;
  /** OpenSSH-format private key for root. */
  clientKey: string;
  /** Raw public host key blob (base64), to check the guest's identity. */
  hostKey: string;
  /** Module names the kernel has neither built in nor as a module. */
  missingModules: string[];
}

export function readRecipe(): Recipe {
  return JSON.parse(readFileSync(join(IMAGES_DIR, 'recipe.json'), 'utf8')) as Recipe;
}

const closures = new Map<string, { stamp: string; libs: string[] }>();

/**
 * libraryClosure, asked once per process and again when the program or one of its libraries
 * changed (their stat stamps): every guest start plans its image from these.
 */
async function knownClosure(program: string): Promise<string[]> {
  const stampOf = async (libs: string[]) => (await Promise.all([program, ...libs].map((f) => statStamp(f).catch(() => 'gone')))).join('|');
  const known = closures.get(program);
  if (known && known.stamp === (await stampOf(known.libs))) return known.libs;
  const libs = await libraryClosure(program);
  closures.set(program, { stamp: await stampOf(libs), libs });
  return libs;
}

/** Shared libraries a dynamic program needs, as absolute paths (including the loader). */
export async function libraryClosure(program: string): Promise<string[]> {
  const { stdout, exitCode } = await execa(which('ldd'), [program], { reject: false });
  if (exitCode !== 0 || /not a dynamic executable/.test(stdout)) return [];
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
    else if (/not found/.test(line)) throw new Error(`${program}: ${line.trim()}`);
  }
  return libs;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === 'build' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else out.push(p);
  }
  return out.sort();
}

/** How a compressed module is unpacked, by its file name's ending. */
const DECOMPRESS: Record<string, { tool: Tool; args: string[] }> = { xz: { tool: 'xz', args: ['-dc'] }, zst: { tool: 'zstd', args: ['-dcq'] }, gz: { tool: 'gzip', args: ['-dc'] } };

async function copyWithParents(src: string, root: string, dest: string): Promise<void> {
  const target = join(root, dest);
  await mkdir(dirname(target), { recursive: true });
  await copyFile(realpathSync(src), target);
  await chmod(target, 0o755);
}

/** Writes a newc cpio of a directory, every file owned by root. */
async function cpio(dir: string, out: string): Promise<void> {
  const { stdout } = await execa(which('find'), ['.', '-mindepth', '1'], { cwd: dir });
  const list = stdout.split('\n').filter(Boolean).sort().join('\n') + '\n';
  const sink = createWriteStream(out);
  const p = execa(which('cpio'), ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], { cwd: dir, input: list, stdout: 'pipe' });
  p.stdout!.pipe(sink);
  await p;
  await new Promise<void>((res, rej) => (sink.closed ? res() : (sink.on('close', res), sink.on('error', rej))));
}

function agentBuild(out: string) {
  return execa(which('make'), ['-s', '-C', AGENT_DIR, `OUT=${out}`], { all: true, reject: false });
}

/** The guest agent built on its own (for a quick check of the C code without an image). */
export async function buildAgent(out: string): Promise<string> {
  const r = await agentBuild(out);
  if (r.exitCode !== 0) throw new Error(`building the guest agent failed:\n${r.all}`);
  return join(out, 'bpf-agent');
}

/** The guest agent of the image (built with it, or BPF_HARNESS_AGENT_BIN), as a host file. */
export async function imageAgent(onProgress?: (m: string) => void): Promise<string> {
  return join((await buildBase(onProgress)).dir, 'bpf-agent');
}

interface BaseMeta {
  hostKey: string;
}

/** The kernel-independent part of the image. */
export async function buildBase(onProgress?: (m: string) => void): Promise<{ dir: string; meta: BaseMeta }> {
  const recipe = readRecipe();
  requireFiles(FILES);
  requireTools('make', 'cc', 'ldd', 'dropbearkey', 'find', 'cpio');
  const programs = Object.entries(recipe.programs).map(([dest, src]) => {
    if (!existsSync(src)) throw new Error(`${src} not found: run scripts/setup.sh (it installs the guest's programs)`);
    return [dest, src] as const;
  });
  // At once: every run of the harness starts here, and ldd and the sums each wait on the disk.
  const libs = new Set((await Promise.all(programs.map(([, src]) => knownClosure(src)))).flat());
  const inputs = [recipe.busybox, ...programs.map(([, s]) => s), ...libs].sort();
  const parts: string[] = [await readFile(join(IMAGES_DIR, 'recipe.json'), 'utf8'), await readFile(join(IMAGES_DIR, 'init'), 'utf8')];
  for (const f of await sourceFiles(AGENT_DIR)) parts.push(f.slice(AGENT_DIR.length), await readFile(f, 'utf8'));
  const sums = await Promise.all(inputs.map((f) => inputSha256(f)));
  inputs.forEach((f, i) => parts.push(f, sums[i]));
  const prebuilt = settings().agentBin;
  if (prebuilt) parts.push('agent-bin', await sha256File(prebuilt));
  const key = contentKey('image-base-v2', ...parts);
  return cached<BaseMeta>({
    area: 'images',
    key,
    onProgress,
    build: async (tmp) => {
      // BPF_HARNESS_AGENT_BIN: a prebuilt agent, for working on the agent itself.
      onProgress?.(prebuilt ? `image: using the agent at ${prebuilt}` : 'image: building the guest agent');
      const agent = prebuilt ?? (await buildAgent(join(tmp, 'agent-build')));
      const root = join(tmp, 'root');
      for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/dropbear', 'root/.ssh', 'proc', 'sys', 'dev', 'run', 'tmp', 'var', 'lib/modules', 'lib64']) {
        await mkdir(join(root, d), { recursive: true });
      }
      await copyWithParents(recipe.busybox, root, 'bin/busybox');
      for (const [dest, src] of programs) await copyWithParents(src, root, dest);
      for (const l of libs) await copyWithParents(l, root, l);
      await copyWithParents(agent, root, 'usr/bin/bpf-agent');
      // Kept beside the initramfs too: the agent's host smoke test runs the image's own build.
      await copyFile(agent, join(tmp, 'bpf-agent'));
      await copyFile(join(IMAGES_DIR, 'init'), join(root, 'init'));
      await chmod(join(root, 'init'), 0o755);
      await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
      await writeFile(join(root, 'etc/group'), 'root:x:0:\n');
      await writeFile(join(root, 'etc/shells'), '/bin/sh\n/bin/bash\n');
      // Keys are made fresh for each image build: no fixed passwords or keys anywhere.
      onProgress?.('image: generating SSH keys');
      const client = ed25519KeyPair('bpf-harness');
      await writeFile(join(tmp, 'client_key'), client.private, { mode: 0o600 });
      await writeFile(join(root, 'root/.ssh/authorized_keys'), client.public + '\n', { mode: 0o600 });
      await chmod(join(root, 'root/.ssh'), 0o700);
      await chmod(join(root, 'root'), 0o700);
      await execa(which('dropbearkey'), ['-t', 'ed25519', '-f', join(root, 'etc/dropbear/host_key')]);
      const { stdout } = await execa(which('dropbearkey'), ['-y', '-f', join(root, 'etc/dropbear/host_key')]);
      const hostKey = /^ssh-ed25519 (\S+)/m.exec(stdout)?.[1];
      if (!hostKey) throw new Error(`dropbearkey -y printed no public key:\n${stdout}`);
      onProgress?.('image: packing the base initramfs');
      await cpio(root, join(tmp, 'base.cpio'));
      for (const d of [root, join(tmp, 'agent-build')]) await rm(d, { recursive: true, force: true });
      return { hostKey };
    },
  });
}

/** The image for one kernel: the base plus that kernel's modules, concatenated. */
export async function buildImage(kernel: Kernel, onProgress?: (m: string) => void): Promise<Image> {
  const base = await buildBase(onProgress);
  const recipe = readRecipe();
  let order: string[] = [];
  let missing: string[] = [];
  if (kernel.modulesDir) {
    ({ order, missing } = loadOrder(await readModuleIndex(kernel.modulesDir), recipe.modules));
  }
  const modDigest = kernel.modulesDir ? sha256(await readFile(join(kernel.modulesDir, 'modules.dep'))) : 'none';
  // The bytes of each module the image takes: an image made from a damaged module is never reused.
  const [baseSum, ...moduleSums] = await Promise.all([inputSha256(join(base.dir, 'base.cpio')), ...order.map((rel) => inputSha256(join(kernel.modulesDir!, rel)))]);
  const key = contentKey('image-kernel-v1', base.dir, kernel.release, modDigest, order.join(','), moduleSums.join(','), baseSum);
  const { dir } = await cached({
    area: 'initramfs',
    key,
    onProgress,
    build: async (tmp) => {
      onProgress?.(`image: adding ${order.length} modules for ${kernel.release}`);
      const root = join(tmp, 'root');
      const modRoot = join(root, 'lib/modules', kernel.release);
      const loadList: string[] = [];
      for (const rel of order) {
        // Compressed modules are unpacked here: busybox's insmod takes plain .ko files only.
        const plain = rel.replace(/\.(xz|zst|gz)$/, '');
        await mkdir(dirname(join(modRoot, plain)), { recursive: true });
        const decompress = DECOMPRESS[rel.split('.').pop() ?? ''];
        if (decompress) {
          await execa(which(decompress.tool), [...decompress.args, join(kernel.modulesDir!, rel)], { stdout: { file: join(modRoot, plain) } });
        } else {
          await copyFile(join(kernel.modulesDir!, rel), join(modRoot, plain));
        }
        loadList.push(plain);
      }
      await mkdir(join(root, 'lib/modules'), { recursive: true });
      await writeFile(join(root, 'lib/modules/load.list'), loadList.map((o) => o + '\n').join(''));
      await cpio(root, join(tmp, 'modules.cpio'));
      // The kernel unpacks concatenated cpio archives in order; one file keeps QEMU's -initrd simple.
      const out = createWriteStream(join(tmp, 'initramfs.cpio'));
      for (const f of [join(base.dir, 'base.cpio'), join(tmp, 'modules.cpio')]) {
        await new Promise<void>((res, rej) => {
          out.write(readFileSync(f), (e) => (e ? rej(e) : res()));
        });
      }
      await new Promise<void>((res) => out.end(res));
      for (const d of [root, join(tmp, 'modules.cpio')]) await rm(d, { recursive: true, force: true });
      return {};
    },
  });
  return {
    initramfs: join(dir, 'initramfs.cpio'),
    clientKey: await readFile(join(base.dir, 'client_key'), 'utf8'),
    hostKey: base.meta.hostKey,
    missingModules: missing,
  };
}
