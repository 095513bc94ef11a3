/* XDP_ABORTED and the xdp:xdp_exception tracepoint. `xdp_abort_udp` (on B's veth) aborts UDP to
 * ABORT_PORT, drops UDP to DROP_PORT and passes everything else; `on_xdp_exception`, on the
 * tracepoint, counts the events the kernel emits per action, with the device and program they
 * name. An abort must reach the tracepoint, a drop must not. */
#include "xdp_common.h"

#define ABORT_PORT 6000
#define DROP_PORT 6002

/* Destination port of a UDP/IPv4 frame (IPv4 header without options), or 0. */
static __always_inline __u16 udp_dport(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return 0;
	return bpf_ntohs(udp->dest);
}

SEC("xdp")
int xdp_abort_udp(struct xdp_md *ctx)
{
	__u16 port = udp_dport(ctx);

	if (port == ABORT_PORT)
		return XDP_ABORTED;
	if (port == DROP_PORT)
		return XDP_DROP;
	return XDP_PASS;
}

/* events/xdp/xdp_exception/format (the same from 4.14 to today). */
struct xdp_exception_rec {
	__u64 common;
	__s32 prog_id; /* offset 8 */
	__u32 act;     /* offset 12 */
	__s32 ifindex; /* offset 16 */
};

struct exception_stat {
	__u64 events;
	__u64 prog_id; /* of the last event */
	__u64 ifindex; /* of the last event */
};

/* Per XDP action (0 ABORTED ... 4 REDIRECT; 7 for anything else). */
MAP_OF(exceptions, BPF_MAP_TYPE_ARRAY, __u32, struct exception_stat, 8, );

SEC("tracepoint/xdp/xdp_exception")
int on_xdp_exception(struct xdp_exception_rec *ctx)
{
	__u32 key = ctx->act < 7 ? ctx->act : 7;
	struct exception_stat *s = bpf_map_lookup_elem(&exceptions, &key);

	if (s) {
		__sync_fetch_and_add(&s->events, 1);
		s->prog_id = ctx->prog_id;
		s->ifindex = ctx->ifindex;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
