/* Shared by the sched_cls programs: IPv4 parsing on a __sk_buff, and the counters' headers. */
#pragma once
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "counter.h"
#include "counts.h"
#include "packet.h"

/* The maps are pinned by name (PIN_BY_NAME, maps.h): iproute2's libbpf loader pins them in
 * /sys/fs/bpf/tc/globals/<name>. */

/* The IPv4 header of an Ethernet frame (tc sees the frame from its MAC header on both hooks), or NULL. */
static __always_inline struct iphdr *ipv4_header(struct __sk_buff *skb)
{
	return eth_ipv4((void *)(long)skb->data, (void *)(long)skb->data_end);
}

/* The UDP destination port of an Ethernet frame with IPv4 (no options) and UDP, or -1. */
static __always_inline int udp_dport(struct __sk_buff *skb)
{
	struct udphdr *udp = eth_ipv4_udp((void *)(long)skb->data, (void *)(long)skb->data_end);

	return udp ? bpf_ntohs(udp->dest) : -1;
}
