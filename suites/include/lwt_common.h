/* Shared by the lightweight-tunnel suites (lwt_in, lwt_out, lwt_xmit): per-protocol counters in a map that
 * iproute2 pins (ip loads these objects, so the test reads the map through its bpffs pin), and
 * IPv4 parsing. An lwt program's packet starts at the IPv4 header: there is no link-layer header.
 */
#pragma once
#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "counter.h"
#include "packet.h"

/* Per IP protocol number: packets and bytes (IPv4 length) the program saw. */
COUNTER_MAP(LWT_STATS_MAP, BPF_MAP_TYPE_ARRAY, 256, PIN_BY_NAME;);

/* IPv4 protocol number of the packet, or -1 when it is not an IPv4 packet. Goes by the header's
 * version, not skb->protocol: on 5.10, packets from raw IP_HDRINCL sockets reach lwt_out with
 * skb->protocol still 0 (set later, in ip_output). */
static __always_inline int ipv4_proto(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_at((void *)(long)skb->data, (void *)(long)skb->data_end);

	if (!ip || ip->version != 4)
		return -1;
	return ip->protocol;
}

/* Counts the packet under its protocol; returns the protocol (or -1). */
static __always_inline int count_packet(struct __sk_buff *skb)
{
	int proto = ipv4_proto(skb);

	if (proto >= 0)
		counter_bump(&LWT_STATS_MAP, proto, skb->len);
	return proto;
}

/* The lwt suites' *_drop_udp programs: count the packet, drop UDP (BPF_DROP), pass the rest. */
static __always_inline int drop_udp(struct __sk_buff *skb)
{
	if (count_packet(skb) == IPPROTO_UDP)
		return BPF_DROP;
	return BPF_OK;
}
