/* Shared by the sched_cls programs: IPv4 parsing on a __sk_buff and a packets/bytes counter. */
#pragma once
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "counter.h"
#include "packet.h"

/* iproute2's libbpf loader pins these in /sys/fs/bpf/tc/globals/<name>. */
#define PIN_BY_NAME __uint(pinning, LIBBPF_PIN_BY_NAME)

static __always_inline void count(void *map, __u32 key, __u64 len)
{
	struct counter *c = bpf_map_lookup_elem(map, &key);

	if (c)
		counter_add(c, len);
}

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
