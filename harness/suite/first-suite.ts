// A first suite for a project that uses the harness as a dependency (`npx bpf-harness init`,
// harness/cli/init.ts), ready to run: one BPF C file and one test in a folder of the project's
// suites (default bpf-tests/), named as `suite --dir` finds them. It never overwrites: a suite
// folder that exists is an error.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** The first suite's name: its folder, its BPF source and its test file are named after it. */
export const INIT_SUITE = 'udp_counter';

/** The first suite's BPF program: XDP that counts the UDP datagrams reaching an interface and drops them. */
export const INIT_BPF = String.raw`// Counts the UDP datagrams that reach the interface, and drops them.
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

/** Its test: the program on one end of a veth pair, UDP sent from the other, the count and the drops checked. */
export const INIT_TEST = String.raw`import { expect, test } from 'vitest';
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

/** Writes the first suite under `dir` (relative to `cwd`); returns the files written. */
export async function initSuite(dir = 'bpf-tests', cwd = process.cwd()): Promise<string[]> {
  const folder = resolve(cwd, dir, INIT_SUITE);
  if (existsSync(folder)) throw new Error(`init: ${folder} exists already; not overwriting it (name another folder with --dir)`);
  await mkdir(folder, { recursive: true });
  const files = [join(folder, `${INIT_SUITE}.bpf.c`), join(folder, `${INIT_SUITE}.test.ts`)];
  await writeFile(files[0], INIT_BPF);
  await writeFile(files[1], INIT_TEST);
  return files;
}

