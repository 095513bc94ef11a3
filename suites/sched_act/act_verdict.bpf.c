/*
 * A tc action (act_bpf) whose return value is the packet's verdict, chosen per IP protocol from
 * act_cfg (default 0 = TC_ACT_OK; the test writes TC_ACT_SHOT, TC_ACT_UNSPEC, ...). Each IPv4 packet
 * is counted per protocol (packets, bytes = skb->len, the whole frame) and per returned verdict.
 * The maps are pinned by iproute2 in /sys/fs/bpf/tc/globals.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "counter.h"
#include "counts.h"
#include "packet.h"

/* Per IP protocol: the verdict to return. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __s32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} act_cfg SEC(".maps");

COUNTER_MAP(act_proto_count, BPF_MAP_TYPE_ARRAY, 256, PIN_BY_NAME;);

/* Returned verdict (as u32) -> packets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} act_verdict_count SEC(".maps");

SEC("action")
int act_verdict(struct __sk_buff *skb)
{
	struct iphdr *ip = eth_ipv4((void *)(long)skb->data, (void *)(long)skb->data_end);
	__u32 proto, key;
	__s32 *cfg, verdict = TC_ACT_OK;
	__u64 *n, one = 1;

	if (!ip)
		return TC_ACT_OK;
	proto = ip->protocol;
	counter_bump(&act_proto_count, proto, skb->len);
	cfg = bpf_map_lookup_elem(&act_cfg, &proto);
	if (cfg)
		verdict = *cfg;
	key = verdict;
	n = bpf_map_lookup_elem(&act_verdict_count, &key);
	if (!n && bpf_map_update_elem(&act_verdict_count, &key, &one, BPF_NOEXIST) == 0)
		return verdict;
	/* Present, or another CPU created it first. */
	count_one(&act_verdict_count, key);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
