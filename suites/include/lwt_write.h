/* Packet writes that the verifier allows in lwt_xmit programs and refuses in lwt_in and lwt_out
 * (dst_input() and dst_output() cannot take a changed packet): a direct store into the packet,
 * and bpf_skb_store_bytes, a helper lwt_in and lwt_out are not given. The suites load each from
 * an object of its own, under each section, and check what the verifier says. */
#pragma once
#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include "packet.h"

/* Sets the IPv4 header's TOS byte by a direct, bounds-checked store. */
static __always_inline int write_direct(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_at((void *)(long)skb->data, (void *)(long)skb->data_end);

	if (!ip)
		return BPF_OK;
	ip->tos = 0x10;
	return BPF_OK;
}

/* The same byte through bpf_skb_store_bytes. */
static __always_inline int write_helper(struct __sk_buff *skb)
{
	__u8 tos = 0x10;

	bpf_skb_store_bytes(skb, 1, &tos, sizeof(tos), 0);
	return BPF_OK;
}

/* The control, lwt_<hook>_writes_as_xmit.bpf.c in both suites: the same writes in lwt_xmit
 * programs, which may write. Both load. */
#define XMIT_WRITE_PROGRAMS                                 \
	SEC("lwt_xmit")                                     \
	int xmit_write_direct(struct __sk_buff *skb)        \
	{                                                   \
		return write_direct(skb);                   \
	}                                                   \
                                                            \
	SEC("lwt_xmit")                                     \
	int xmit_write_helper(struct __sk_buff *skb)        \
	{                                                   \
		return write_helper(skb);                   \
	}
