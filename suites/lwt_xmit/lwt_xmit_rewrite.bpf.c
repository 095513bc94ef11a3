/* lwt_xmit: rewrites the destination port of UDP datagrams to FROM_PORT into TO_PORT (with the
 * checksum helpers keeping the UDP checksum right) and lets every packet go on. */
#define LWT_STATS_MAP lwt_xmit_stats
#include "lwt_common.h"
#include <stddef.h>

#define FROM_PORT 5001
#define TO_PORT 5002

/* [0]: datagrams rewritten. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lwt_xmit_rewrites SEC(".maps");

SEC("lwt_xmit")
int xmit_rewrite_port(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;
	struct udphdr udp;
	__be16 to = bpf_htons(TO_PORT);
	__u32 off, key = 0;
	__u64 *n;

	if (count_packet(skb) != IPPROTO_UDP)
		return BPF_OK;
	if ((void *)(ip + 1) > data_end)
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
	n = bpf_map_lookup_elem(&lwt_xmit_rewrites, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
