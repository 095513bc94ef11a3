/*
 * XDP_REDIRECT through a devmap: UDP datagrams to port 6001 get the MAC addresses in
 * redirect_macs and are sent out of the interface in tx_port[0] (bpf_redirect_map). The test fills
 * both maps. Everything else passes.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct macs);
} redirect_macs SEC(".maps");

/* [0] redirected (bpf_redirect_map said XDP_REDIRECT), [1] passed, [2] bpf_redirect_map refused. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} redirect_count SEC(".maps");

static __always_inline void bump(__u32 key)
{
	__u64 *n = bpf_map_lookup_elem(&redirect_count, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("xdp")
int xdp_redirect_devmap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	struct macs *m;
	__u32 key = 0;
	int act;

	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	m = bpf_map_lookup_elem(&redirect_macs, &key);
	if (!m || ip->ihl != 5 || ip->protocol != IPPROTO_UDP || udp->dest != bpf_htons(REDIRECT_PORT)) {
		bump(1);
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, m->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, m->smac, ETH_ALEN);
	act = bpf_redirect_map(&tx_port, 0, 0);
	bump(act == XDP_REDIRECT ? 0 : 2);
	return act;
}

char LICENSE[] SEC("license") = "GPL";
