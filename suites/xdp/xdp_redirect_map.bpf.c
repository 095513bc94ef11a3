/*
 * XDP_REDIRECT through a devmap: UDP datagrams to port 6001 get the MAC addresses in
 * redirect_macs and are sent out of the interface in tx_port[0] (bpf_redirect_map). The test fills
 * both maps. Everything else passes.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "counts.h"
#include "config.h"
#include "packet.h"

#define REDIRECT_PORT 6001

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); /* ifindex; the 4-byte value every kernel since 4.14 accepts */
} tx_port SEC(".maps");

struct macs {
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
};

CONFIG_MAP(redirect_macs, struct macs, );

/* [0] redirected (bpf_redirect_map said XDP_REDIRECT), [1] passed, [2] bpf_redirect_map refused. */
COUNTS_MAP(redirect_count, 3);

SEC("xdp")
int xdp_redirect_devmap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = eth_ipv4(data, data_end);
	struct udphdr *udp;
	struct macs *m;
	int act;

	/* Not IPv4, or too short for a UDP header after it: passed, not counted. */
	if (!ip || (void *)(ip + 1) + sizeof(*udp) > data_end)
		return XDP_PASS;
	udp = ipv4_udp(ip, data_end);
	m = config_of(&redirect_macs);
	if (!m || !udp || udp->dest != bpf_htons(REDIRECT_PORT)) {
		count_one(&redirect_count, 1);
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, m->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, m->smac, ETH_ALEN);
	act = bpf_redirect_map(&tx_port, 0, 0);
	count_one(&redirect_count, act == XDP_REDIRECT ? 0 : 2);
	return act;
}

char LICENSE[] SEC("license") = "GPL";
