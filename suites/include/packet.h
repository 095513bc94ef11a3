/* Parsing an Ethernet frame the way the verifier wants it, once for the suites' XDP and tc
 * programs: each header is returned only when it lies wholly inside [data, data_end).
 *   struct iphdr *ip = ipv4_at(data, data_end);         an IPv4 header at data (lwt: no L2 header), or 0
 *   struct iphdr *ip = eth_ipv4(data, data_end);        IPv4 frame, or 0
 *   struct udphdr *udp = ipv4_udp(ip, data_end);         UDP after an option-less IPv4 header, or 0
 *   struct udphdr *udp = eth_ipv4_udp(data, data_end);  both at once */
#pragma once
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

/* The IPv4 header at data, where an lwt program's packet starts (it has no link-layer header), or
 * 0 when the packet is too short for it. Its version is not checked. */
static __always_inline struct iphdr *ipv4_at(void *data, void *data_end)
{
	struct iphdr *ip = data;

	if ((void *)(ip + 1) > data_end)
		return 0;
	return ip;
}

/* The IPv4 header of the frame, or 0 when it is not IPv4 or too short for the header. */
static __always_inline struct iphdr *eth_ipv4(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	return ip;
}

/* The UDP header after an IPv4 header without options, or 0 when the packet is not UDP, has
 * options, or is too short for the header. */
static __always_inline struct udphdr *ipv4_udp(struct iphdr *ip, void *data_end)
{
	struct udphdr *udp = (void *)(ip + 1);

	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP || (void *)(udp + 1) > data_end)
		return 0;
	return udp;
}

static __always_inline struct udphdr *eth_ipv4_udp(void *data, void *data_end)
{
	struct iphdr *ip = eth_ipv4(data, data_end);

	return ip ? ipv4_udp(ip, data_end) : 0;
}
