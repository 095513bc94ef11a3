/* Shared by the XDP suite's programs: packet parsing and the per-protocol counters. */
#pragma once
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "counter.h"
#include "packet.h"

/* Per IP protocol number: an array and a hash with the same contents. */
COUNTER_MAP(proto_array, BPF_MAP_TYPE_ARRAY, 256, );
COUNTER_MAP(proto_hash, BPF_MAP_TYPE_HASH, 256, );

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

	if (proto < 0)
		return;
	counter_bump(&proto_array, proto, len);
	counter_bump_key(&proto_hash, proto, len);
}
