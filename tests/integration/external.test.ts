// A BPF project outside this checkout uses the harness as a dependency: it installs the package's
// tarball (npm pack), imports it from plain Node, keeps its suites in a folder of its own, imports
// the testing API from the package, and runs `npx bpf-harness suite --dir ./bpf-tests NAME`.
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../../harness/base/paths.js';
import { hostMs } from '../helpers/timeouts.js';

const BPF = String.raw`// Counts the UDP datagrams that reach the interface, and drops them.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} udp_seen SEC(".maps");

SEC("xdp")
int drop_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 zero = 0;
	__u64 *n;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	n = bpf_map_lookup_elem(&udp_seen, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
`;

const TEST = String.raw`import { expect, test } from 'vitest';
import { readU64s, send, u32, UdpSink, useGuest, useVethPair } from 'bpf-harness';

const guest = useGuest({ suite: 'udp_counter', from: import.meta.url, sources: ['udp_counter.bpf.c'], type: 'xdp' });
const net = useVethPair(guest);

test('my XDP program drops and counts every UDP datagram', async () => {
  const obj = await guest.load('udp_counter.bpf.c');
  await guest.attach({ type: 'xdp', obj, prog: 'drop_udp', ifname: net.b.ifname, netns: net.b.netns });
  const sink = await UdpSink.open(guest.agent, { netns: net.b.netns, port: 7001 });
  await send(guest.agent, { netns: net.a.netns, proto: 'udp', dst: net.b.ip, dport: 7001, count: 12 });
  expect((await sink.stats()).packets).toBe(0);
  expect(readU64s((await obj.map('udp_seen').lookup(u32(0)))!)[0]).toBe(12n);
});
`;

test('a scratch project runs its own suite with the harness as a dependency', async () => {
  // A space in the path: file URLs of suite files must be turned into paths properly.
  const project = await mkdtemp(join(tmpdir(), 'bpf project-'));
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'my-bpf-project', private: true, type: 'module' }, null, 2));
  const suite = join(project, 'bpf-tests', 'udp_counter');
  await mkdir(suite, { recursive: true });
  await writeFile(join(suite, 'udp_counter.bpf.c'), BPF);
  await writeFile(join(suite, 'udp_counter.test.ts'), TEST);

  // The package as the registry would serve it: the tarball npm pack makes (its prepare step
  // brings the build up to date), installed into the project.
  const pack = await execa('npm', ['pack', '--json', '--pack-destination', project], { cwd: REPO_ROOT, reject: false });
  expect(pack.exitCode, pack.stderr).toBe(0);
  const tarball = join(project, (JSON.parse(pack.stdout) as { filename: string }[])[0].filename);
  // --prefer-offline: the dependencies come from npm's cache when it has their versions (the
  // checkout's own install put them there), without asking the registry about each again: what
  // this tests is the package, not the registry (24 s -> 15 s here).
  const install = await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--save-dev', tarball], { cwd: project, reject: false, all: true });
  expect(install.exitCode, install.all).toBe(0);

  // Plain Node imports it: JavaScript with its types beside it, no TypeScript loader.
  const imported = await execa(process.execPath, ['--input-type=module', '-e', "const h = await import('bpf-harness'); console.log(typeof h.useGuest, typeof h.Vm, typeof h.readU64s)"], { cwd: project, reject: false, all: true });
  expect(imported.all).toBe('function function function');
  const pkg = join(project, 'node_modules', 'bpf-harness');
  expect(existsSync(join(pkg, 'dist', 'index.d.ts')), 'the type declarations').toBe(true);
  expect(existsSync(join(pkg, 'node_modules', 'tsx')) || existsSync(join(project, 'node_modules', 'tsx')), 'tsx is not installed with it').toBe(false);

  const run = await execa('npx', ['bpf-harness', 'suite', '--dir', './bpf-tests', 'udp_counter'], {
    cwd: project,
    reject: false,
    all: true,
    env: { FORCE_COLOR: '0' },
  });
  const out = (run.all ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  expect(run.exitCode, out).toBe(0);
  expect(out).toMatch(/✓ .*my XDP program drops and counts every UDP datagram/);
  expect(out).toMatch(/^summary: 1 passed, 0 failed, 0 skipped$/m);
  // The report is the project's, in its own results folder.
  expect(out).toMatch(new RegExp(`report: ${project}/results/run-[^/]+/report\\.md`));
}, hostMs(900_000));
