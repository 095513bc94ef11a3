/* lwt_xmit: rewrites the destination port of UDP datagrams to FROM_PORT into TO_PORT (with the
 * checksum helpers keeping the UDP checksum right) and lets every packet go on. */
#define LWT_STATS_MAP lwt_xmit_stats
#include "lwt_common.h"
#include "counts.h"
#include <stddef.h>

#define FROM_PORT 5001
#define TO_PORT 5002

/* [0]: datagrams rewritten. */
PINNED_COUNTS_MAP(lwt_xmit_rewrites, 1);

SEC("lwt_xmit")
int xmit_rewrite_port(struct __sk_buff *skb)
{
	struct iphdr *ip;
	struct udphdr udp;
	__be16 to = bpf_htons(TO_PORT);
	__u32 off;

	if (count_packet(skb) != IPPROTO_UDP)
		return BPF_OK;
	ip = ipv4_at((void *)(long)skb->data, (void *)(long)skb->data_end);
	if (!ip)
		return BPF_OK;
	off = ip->ihl * 4;
	if (bpf_skb_load_bytes(skb, off, &udp, sizeof(udp)) < 0)
		return BPF_OK;
	if (udp.dest != bpf_htons(FROM_PORT))
		return BPF_OK;
	if (bpf_l4_csum_replace(skb, off + offsetof(struct udphdr, check), udp.dest, to,
				BPF_F_MARK_MANGLED_0 | sizeof(to)) < 0)
		return BPF_DROP;
	if (bpf_skb_store_bytes(skb, off + offsetof(struct udphdr, dest), &to, sizeof(to), 0) < 0)
		return BPF_DROP;
	count_one(&lwt_xmit_rewrites, 0);
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
