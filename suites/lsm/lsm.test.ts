// BPF LSM programs (5.7): a hook refuses an operation, and the caller sees EPERM, only for the
// target: a bind to one port from one cgroup (lsm/socket_bind), an open of one file from one
// cgroup (lsm/file_open). The same operations elsewhere succeed, and the programs count what they
// saw and refused. The kernel runs BPF LSM programs only when "bpf" is an active LSM: the suite
// boots its guest with `lsm=…,bpf` (BPF_HARNESS_LSM_APPEND overrides it; empty asks for nothing),
// and where bpf is still not active every test skips with "boot parameter missing".
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { type BpfObject, InetSocket, loadCore, readU64s, settings, u32, useCgroup, useGuest } from '../../harness/index.js';

/** The command line the suite asks for: Debian's own LSMs, and bpf. */
const LSM_APPEND = settings().lsmAppend;
const guest = useGuest({ suite: 'lsm', from: import.meta.url, append: LSM_APPEND || undefined });
const source = join(fileURLToPath(new URL('.', import.meta.url)), 'lsm_deny.bpf.c');

const EPERM = 1;
const NETNS = 'bh-lsm';
const PORT = 7999;
const DIR = '/run/bh-lsm';
// Slots of bh_counts (lsm_deny.bpf.c).
const C = { bindPortSeen: 0, bindDenied: 1, openSeen: 2, openDenied: 3 } as const;

const cg = useCgroup(guest, 'lsm');
let cgroupId: bigint;
beforeEach(async () => {
  // A cgroup v2 id (bpf_get_current_cgroup_id) is its directory's inode number.
  cgroupId = BigInt((await guest.ssh.exec(`stat -c %i ${cg.path}`)).trim());
});
afterEach(async () => {
  await guest.ssh.exec(`rm -rf ${DIR}`).catch(() => undefined);
});

function config(c: { cgroupId: bigint; inode?: bigint; dev?: number; port?: number }): string {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(c.cgroupId, 0);
  b.writeBigUInt64LE(c.inode ?? 0n, 8);
  b.writeUInt32LE(c.dev ?? 0, 16);
  b.writeUInt16LE(c.port ?? 0, 20);
  return b.toString('hex');
}

async function counts(obj: BpfObject): Promise<Record<keyof typeof C, bigint>> {
  const out = {} as Record<keyof typeof C, bigint>;
  for (const [k, slot] of Object.entries(C)) out[k as keyof typeof C] = readU64s((await obj.map('bh_counts').lookup(u32(slot)))!)[0];
  return out;
}

test('lsm/socket_bind refuses a bind to port 7999 from the cgroup with EPERM; other ports and other cgroups bind', async () => {
  if (LSM_APPEND) expect(await guest.ssh.exec('cat /proc/cmdline'), 'the guest\'s command line').toContain(LSM_APPEND);
  const obj = await loadCore(guest, source);
  expect(obj.program('deny_bind')).toMatchObject({ type: 'lsm', section: 'lsm/socket_bind' });
  await obj.map('bh_config').update(u32(0), config({ cgroupId, port: PORT }));
  const link = await guest.attach({ type: 'lsm', obj, prog: 'deny_bind' });
  await guest.ssh.exec(`ip netns add ${NETNS} && ip -n ${NETNS} link set lo up`);
  const bind = (proto: 'udp' | 'tcp', port: number, inCgroup: boolean) =>
    InetSocket.open(guest.agent, { netns: NETNS, proto, addr: '127.0.0.1', port, cgroup: inCgroup ? cg.path : undefined });

  expect(await bind('udp', PORT, true), 'UDP bind to 7999 in the cgroup').toMatchObject({ bindErrno: EPERM, localPort: 0 });
  expect(await bind('tcp', PORT, true), 'TCP bind to 7999 in the cgroup').toMatchObject({ bindErrno: EPERM, localPort: 0 });
  expect(await bind('udp', PORT - 1, true), 'UDP bind to 7998 in the cgroup').toMatchObject({ bindErrno: 0, localPort: PORT - 1 });
  const outside = await bind('udp', PORT, false);
  expect(outside, 'UDP bind to 7999 outside the cgroup').toMatchObject({ bindErrno: 0, localPort: PORT });
  await outside.close();
  expect(await counts(obj)).toMatchObject({ bindPortSeen: 3n, bindDenied: 2n });

  // Detached: the cgroup binds the port again, and the program sees nothing more.
  await link.detach();
  expect(await bind('udp', PORT, true), 'UDP bind to 7999 in the cgroup, detached').toMatchObject({ bindErrno: 0, localPort: PORT });
  expect(await counts(obj)).toMatchObject({ bindPortSeen: 3n, bindDenied: 2n });
});

test('lsm/file_open refuses opening one file from the cgroup with EPERM; the file opens outside it, and other files open inside it', async () => {
  await guest.ssh.exec(`mkdir -p ${DIR} && echo secret > ${DIR}/secret && echo other > ${DIR}/other`);
  // The kernel's dev_t (major << 20 | minor) from stat's st_dev (major << 8 | minor for small numbers).
  const [inode, stDev] = (await guest.ssh.exec(`stat -c '%i %d' ${DIR}/secret`)).trim().split(' ').map(Number);
  const dev = (((stDev >> 8) & 0xfff) << 20) | (stDev & 0xff) | ((stDev >> 12) & 0xfff00);
  const obj = await loadCore(guest, source);
  await obj.map('bh_config').update(u32(0), config({ cgroupId, inode: BigInt(inode), dev }));
  await guest.attach({ type: 'lsm', obj, prog: 'deny_open' });

  // cat, from a shell that first joins the cgroup (or not); what it printed and its exit status.
  const cat = (file: string, inCgroup: boolean) =>
    guest.ssh.exec(`sh -c '${inCgroup ? `echo $$ > ${cg.path}/cgroup.procs && ` : ''}cat ${DIR}/${file} 2>&1; echo "rc=$?"'`);
  expect(await cat('secret', true), 'cat secret in the cgroup').toMatch(/Operation not permitted\nrc=1\n$/);
  expect(await cat('other', true), 'cat other in the cgroup').toBe('other\nrc=0\n');
  expect(await cat('secret', false), 'cat secret outside the cgroup').toBe('secret\nrc=0\n');
  expect(await counts(obj)).toMatchObject({ openSeen: 2n, openDenied: 1n });
});
