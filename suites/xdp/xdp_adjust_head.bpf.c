/* bpf_xdp_adjust_head: for UDP/IPv4 to POP_PORT, takes POP_BYTES off the front of the payload.
 * The Ethernet, IPv4 and UDP headers are saved, the frame's start moves POP_BYTES forward, and
 * the headers are written back there with the IPv4 total length, its checksum and the UDP length
 * made POP_BYTES shorter (UDP checksum 0: none, allowed for IPv4). The receiver gets datagrams
 * POP_BYTES shorter, without the first POP_BYTES bytes. Other frames pass untouched. A growing
 * adjustment is not used: generic XDP on 4.14 gives a veth frame almost no headroom. */
#include "xdp_common.h"

#define POP_PORT 6001
#define POP_BYTES 8

struct hdrs {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
} __attribute__((packed));

/* [0]: frames shortened; [1]: bytes taken off; [2]: adjust_head failures. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} pops SEC(".maps");

static __always_inline void bump(__u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&pops, &key);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;

	ip->check = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int xdp_pop_payload(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdrs *h = data;
	struct hdrs saved;

	if ((void *)(h + 1) + POP_BYTES > data_end)
		return XDP_PASS;
	if (h->eth.h_proto != bpf_htons(ETH_P_IP) || h->ip.protocol != IPPROTO_UDP || h->ip.ihl != 5 ||
	    h->udp.dest != bpf_htons(POP_PORT))
		return XDP_PASS;
	__builtin_memcpy(&saved, h, sizeof(saved));
	if (bpf_xdp_adjust_head(ctx, POP_BYTES)) {
		bump(2, 1);
		return XDP_PASS;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	h = data;
	if ((void *)(h + 1) > data_end)
		return XDP_ABORTED;
	saved.ip.tot_len = bpf_htons(bpf_ntohs(saved.ip.tot_len) - POP_BYTES);
	saved.ip.check = ip_checksum(&saved.ip);
	saved.udp.len = bpf_htons(bpf_ntohs(saved.udp.len) - POP_BYTES);
	saved.udp.check = 0;
	__builtin_memcpy(h, &saved, sizeof(saved));
	bump(0, 1);
	bump(1, POP_BYTES);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
