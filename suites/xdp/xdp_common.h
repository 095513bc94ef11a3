/* Shared by the XDP suite's programs: packet parsing and the per-protocol counters. */
#pragma once
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "counter.h"
#include "packet.h"

/* Per IP protocol number: an array and a hash with the same contents. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct counter);
} proto_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct counter);
} proto_hash SEC(".maps");

/* IPv4 protocol number of the frame, or -1 when it is not IPv4. */
static __always_inline int ipv4_proto(struct xdp_md *ctx)
{
	struct iphdr *ip = eth_ipv4((void *)(long)ctx->data, (void *)(long)ctx->data_end);

	return ip ? ip->protocol : -1;
}

static __always_inline void count_packet(struct xdp_md *ctx)
{
	int proto = ipv4_proto(ctx);
	__u64 len = ctx->data_end - ctx->data;
	__u32 key;
	struct counter *c, fresh = { 1, len };

	if (proto < 0)
		return;
	key = proto;
	c = bpf_map_lookup_elem(&proto_array, &key);
	if (c)
		counter_add(c, len);
	c = bpf_map_lookup_elem(&proto_hash, &key);
	if (c) {
		counter_add(c, len);
	} else {
		bpf_map_update_elem(&proto_hash, &key, &fresh, BPF_NOEXIST);
	}
}
