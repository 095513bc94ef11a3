/*
 * Socket filters for a UDP socket. On a UDP socket the filter runs in udp_queue_rcv_skb after the
 * IP header has been pulled: skb->data points at the UDP header and skb->len = 8 + payload. The
 * network header is still reachable with load_* at SKF_NET_OFF. The return value trims the
 * datagram (never below the 8-byte UDP header); 0 drops it.
 *
 * Both programs record, for every datagram they see, what they found at offset 0 (the 16-bit
 * word there) and at SKF_NET_OFF + 9 (the IP protocol byte), so the test can tell where
 * skb->data points.
 */
#include "sockfilter_common.h"

#ifndef SKF_NET_OFF
#define SKF_NET_OFF (-0x100000)
#endif

/* Kept bytes of payload for udp_head4. */
#define KEEP_PAYLOAD 4

struct seen {
	__u64 packets;
	__u64 bytes;    /* sum of skb->len */
	__u64 word0;    /* load_half(skb, 0) of the last datagram, host order */
	__u64 net_proto; /* load_byte(skb, SKF_NET_OFF + 9) of the last datagram */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct seen);
} udp_seen SEC(".maps");

static __always_inline void record(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct seen *s = bpf_map_lookup_elem(&udp_seen, &key);
	__u64 w0 = load_half(skb, 0);
	__u64 np = load_byte(skb, SKF_NET_OFF + offsetof(struct iphdr, protocol));

	if (s) {
		__sync_fetch_and_add(&s->packets, 1);
		__sync_fetch_and_add(&s->bytes, skb->len);
		s->word0 = w0;
		s->net_proto = np;
	}
	count_proto(np, skb->len);
}

/* Keeps the UDP header and the first KEEP_PAYLOAD bytes of payload. */
SEC("socket")
int udp_head4(struct __sk_buff *skb)
{
	record(skb);
	return sizeof(struct udphdr) + KEEP_PAYLOAD;
}

/* Drops every datagram (after counting it). */
SEC("socket")
int udp_drop_all(struct __sk_buff *skb)
{
	record(skb);
	return 0;
}

/* Not a socket filter: SO_ATTACH_BPF must refuse it. */
SEC("xdp")
int not_a_filter(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
