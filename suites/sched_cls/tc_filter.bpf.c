/*
 * Drop or pass by IP protocol. Every IPv4 packet is counted per protocol (packets, bytes = skb->len,
 * the whole frame) and per TOS byte; a protocol whose entry in cls_drop is non-zero is dropped
 * (TC_ACT_SHOT), everything else goes on (TC_ACT_OK). The maps are pinned so that the test can
 * read the counters and set cls_drop after tc has loaded the object.
 */
#include "tc_common.h"

COUNTER_MAP(cls_proto_count, BPF_MAP_TYPE_ARRAY, 256, PIN_BY_NAME;);
COUNTER_MAP(cls_tos_count, BPF_MAP_TYPE_ARRAY, 256, PIN_BY_NAME;);

/* Per IP protocol: non-zero = drop. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
	PIN_BY_NAME;
} cls_drop SEC(".maps");

/* [0] packets passed, [1] packets dropped. */
PINNED_COUNTS_MAP(cls_verdicts, 2);

SEC("tc")
int cls_proto_filter(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_header(skb);
	__u32 proto, verdict_key = 0;
	__u32 *drop;

	if (!ip)
		return TC_ACT_OK;
	proto = ip->protocol;
	counter_bump(&cls_proto_count, proto, skb->len);
	counter_bump(&cls_tos_count, ip->tos, skb->len);
	drop = bpf_map_lookup_elem(&cls_drop, &proto);
	if (drop && *drop)
		verdict_key = 1;
	count_one(&cls_verdicts, verdict_key);
	return verdict_key ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
