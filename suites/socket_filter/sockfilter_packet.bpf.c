/*
 * Socket filter for an AF_PACKET SOCK_RAW socket: the program sees the whole Ethernet frame
 * (skb->data at the MAC header, skb->len = frame length). Every IPv4 frame is counted per IP
 * protocol; TCP and UDP are kept but trimmed to their headers (Ethernet + IP + TCP/UDP header,
 * the return value is the number of bytes to keep); everything else (ICMP, ...) is dropped (0).
 * Packet data is read with bpf_skb_load_bytes: direct packet access is not allowed here.
 */
#include "sockfilter_common.h"

SEC("socket")
int keep_l4_headers(struct __sk_buff *skb)
{
	__u16 eth_proto;
	__u8 vihl, proto, doff;
	__u32 ihl;

	if (bpf_skb_load_bytes(skb, 12, &eth_proto, sizeof(eth_proto)) < 0)
		return 0;
	if (eth_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &vihl, 1) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, protocol), &proto, 1) < 0)
		return 0;
	count_proto(proto, skb->len);

	ihl = (vihl & 0xf) * 4;
	if (ihl < sizeof(struct iphdr))
		return 0;
	if (proto == IPPROTO_UDP)
		return ETH_HLEN + ihl + sizeof(struct udphdr);
	if (proto == IPPROTO_TCP) {
		/* data offset: high nibble of byte 12 of the TCP header, in 32-bit words */
		if (bpf_skb_load_bytes(skb, ETH_HLEN + ihl + 12, &doff, 1) < 0)
			return 0;
		return ETH_HLEN + ihl + (doff >> 4) * 4;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
