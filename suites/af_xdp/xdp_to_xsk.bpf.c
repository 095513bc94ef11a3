/*
 * AF_XDP (4.18): an XDP program redirects UDP to port 9000 into the AF_XDP socket of the
 * receiving queue (an XSKMAP keyed by queue index); everything else goes on to the kernel's
 * stack. Redirected frames are counted.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} redirected SEC(".maps");

SEC("xdp")
int to_xsk(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 zero = 0;
	__u64 *n;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP || udp->dest != bpf_htons(9000))
		return XDP_PASS;
	n = bpf_map_lookup_elem(&redirected, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, 0);
}

char LICENSE[] SEC("license") = "GPL";
