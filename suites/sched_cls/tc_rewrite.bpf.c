/*
 * Rewrites UDP datagrams and TCP segments to port 5001: the destination port becomes 5002 and the
 * IP TOS byte 0x28, through bpf_skb_store_bytes with the checksums fixed by bpf_l4_csum_replace
 * (UDP or TCP checksum; for UDP, BPF_F_MARK_MANGLED_0 keeps a zero "no checksum" as it is) and
 * bpf_l3_csum_replace (IP header checksum, which the receiver always verifies). Everything else is
 * left alone.
 */
#include <stddef.h>
#include <linux/tcp.h>
#include "tc_common.h"

#define FROM_PORT 5001
#define TO_PORT 5002
#define NEW_TOS 0x28

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define L4_OFF (IP_OFF + sizeof(struct iphdr))
/* UDP and TCP headers both start with the source and destination ports. */
#define DPORT_OFF (L4_OFF + offsetof(struct udphdr, dest))
#define UDP_CSUM_OFF (L4_OFF + offsetof(struct udphdr, check))
#define TCP_CSUM_OFF (L4_OFF + offsetof(struct tcphdr, check))

enum { RW_UDP, RW_TCP, RW_FAILED, RW_MAX };

/* Rewritten UDP datagrams, rewritten TCP segments, rewrites that failed. */
PINNED_COUNTS_MAP(rw_count, RW_MAX);

SEC("tc")
int cls_rewrite(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_header(skb);
	void *data_end = (void *)(long)skb->data_end;
	struct udphdr *ports;
	__be16 old_port, new_port = bpf_htons(TO_PORT);
	__be16 old_word, new_word;
	__u8 *w = (__u8 *)&new_word;
	__u32 csum_off, csum_flags, kind;

	if (!ip || ip->ihl != 5)
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_UDP) {
		csum_off = UDP_CSUM_OFF;
		csum_flags = BPF_F_MARK_MANGLED_0;
		kind = RW_UDP;
	} else if (ip->protocol == IPPROTO_TCP) {
		csum_off = TCP_CSUM_OFF;
		csum_flags = 0;
		kind = RW_TCP;
	} else {
		return TC_ACT_OK;
	}
	ports = (void *)(ip + 1);
	if ((void *)(ports + 1) > data_end || ports->dest != bpf_htons(FROM_PORT))
		return TC_ACT_OK;

	old_port = ports->dest;
	/* The first 16-bit word of the IP header: version/IHL, then TOS. */
	old_word = *(__be16 *)ip;
	new_word = old_word;
	w[1] = NEW_TOS;

	/* Packet pointers are invalid after the first helper call that may change the packet. */
	if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, csum_flags | sizeof(new_port)) ||
	    bpf_skb_store_bytes(skb, DPORT_OFF, &new_port, sizeof(new_port), 0) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_word, new_word, sizeof(new_word)) ||
	    bpf_skb_store_bytes(skb, IP_OFF, &new_word, sizeof(new_word), 0)) {
		count_one(&rw_count, RW_FAILED);
		return TC_ACT_SHOT;
	}
	count_one(&rw_count, kind);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
