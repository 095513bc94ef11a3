/*
 * XDP_TX: UDP datagrams to port 7 are turned around (MACs, IPs and ports swapped) and sent back
 * out of the interface they came in on. Swapping leaves both checksums valid, so the sender's
 * UDP socket receives them. Everything else passes.
 */
#include "xdp_common.h"
#include "counts.h"

#define ECHO_PORT 7

COUNTS_MAP(tx_count, 1);

SEC("xdp")
int xdp_udp_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = eth_ipv4_udp(data, data_end);
	unsigned char mac[ETH_ALEN];
	__u32 addr;
	__u16 port;

	if (!udp || udp->dest != bpf_htons(ECHO_PORT))
		return XDP_PASS;

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;

	count_one(&tx_count, 0);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
