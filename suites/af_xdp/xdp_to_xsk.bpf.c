/*
 * AF_XDP (4.18): an XDP program redirects UDP to port 9000 into the AF_XDP socket of the
 * receiving queue (an XSKMAP keyed by queue index); everything else goes on to the kernel's
 * stack. Redirected frames are counted.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "counts.h"
#include "packet.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

COUNTS_MAP(redirected, 1);

SEC("xdp")
int to_xsk(struct xdp_md *ctx)
{
	struct udphdr *udp = eth_ipv4_udp((void *)(long)ctx->data, (void *)(long)ctx->data_end);

	if (!udp || udp->dest != bpf_htons(9000))
		return XDP_PASS;
	count_one(&redirected, 0);
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, 0);
}

char LICENSE[] SEC("license") = "GPL";
