/*
 * XDP_TX: UDP datagrams to port 7 are turned around (MACs, IPs and ports swapped) and sent back
 * out of the interface they came in on. Swapping leaves both checksums valid, so the sender's
 * UDP socket receives them. Everything else passes.
 */
#include "xdp_common.h"

#define ECHO_PORT 7

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tx_count SEC(".maps");

SEC("xdp")
int xdp_udp_echo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	unsigned char mac[ETH_ALEN];
	__u32 key = 0, addr;
	__u16 port;
	__u64 *n;

	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (udp->dest != bpf_htons(ECHO_PORT))
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

	n = bpf_map_lookup_elem(&tx_count, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
