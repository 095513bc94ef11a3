/* XDP_PASS and XDP_DROP, each counting every IPv4 packet per protocol first. */
#include "xdp_common.h"

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	count_packet(ctx);
	return XDP_PASS;
}

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	count_packet(ctx);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
