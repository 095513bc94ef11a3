/*
 * A flow dissector (4.20) for a network namespace: the kernel runs it, instead of its own, wherever
 * it dissects a packet of that namespace (tc flower's matching, the flow hash). IPv4 and UDP only
 * (anything else fails dissection); it reports addresses and ports as they are, except that UDP
 * destination port 5000 is reported as 6000, so that the test can see its result take effect.
 * Dissections of UDP are counted per real destination port.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "counts.h"

#define REAL_PORT 5000
#define REPORTED_PORT 6000

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} dissected SEC(".maps");

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;
	struct iphdr ip;
	struct udphdr udp;
	__u32 port;

	if (keys->n_proto != bpf_htons(ETH_P_IP))
		return BPF_DROP;
	if (bpf_skb_load_bytes(skb, keys->nhoff, &ip, sizeof(ip)) || ip.ihl < 5)
		return BPF_DROP;
	keys->addr_proto = ETH_P_IP;
	keys->ipv4_src = ip.saddr;
	keys->ipv4_dst = ip.daddr;
	keys->ip_proto = ip.protocol;
	keys->thoff = keys->nhoff + ip.ihl * 4;
	if (ip.protocol != IPPROTO_UDP)
		return BPF_OK;
	if (bpf_skb_load_bytes(skb, keys->thoff, &udp, sizeof(udp)))
		return BPF_DROP;
	port = bpf_ntohs(udp.dest);
	keys->sport = udp.source;
	keys->dport = port == REAL_PORT ? bpf_htons(REPORTED_PORT) : udp.dest;
	count_key(&dissected, &port);
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
