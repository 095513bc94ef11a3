/* Negative case: reads the IP header without a bounds check; every verifier must reject it. */
#include "xdp_common.h"

SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	return ip->protocol == IPPROTO_UDP ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
