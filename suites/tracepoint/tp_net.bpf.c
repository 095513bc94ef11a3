/*
 * net/net_dev_xmit and net/netif_receive_skb: for the interface named in `config`, counts packets
 * per skb length (from the record's `len` field) and sums the lengths.
 * Record layouts from events/net/<name>/format (the test checks the offsets on the running kernel).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define IFNAMSIZ 16

struct net_dev_xmit_rec {
	__u64 common;      /* common_type, common_flags, common_preempt_count, common_pid */
	__u64 skbaddr;     /* offset 8 */
	__u32 len;         /* offset 16 */
	__s32 rc;          /* offset 20 */
	__u32 name_loc;    /* offset 24: __data_loc char[] name (offset | length << 16) */
};

struct netif_receive_skb_rec {
	__u64 common;
	__u64 skbaddr;     /* offset 8 */
	__u32 len;         /* offset 16 */
	__u32 name_loc;    /* offset 20 */
};

enum { XMIT = 0, RECV = 1 };

/* config[XMIT], config[RECV]: interface name each tracepoint counts (NUL-padded). */
struct ifname {
	char name[IFNAMSIZ];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct ifname);
} config SEC(".maps");

struct len_key {
	__u32 dir; /* XMIT or RECV */
	__u32 len;
};

struct stat {
	__u64 packets;
	__u64 bytes;
	__s64 rc_sum; /* xmit: sum of the rc field (0 = NETDEV_TX_OK) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct len_key);
	__type(value, struct stat);
} by_len SEC(".maps");

static __always_inline int name_matches(void *ctx, __u32 loc, __u32 dir)
{
	struct ifname *want = bpf_map_lookup_elem(&config, &dir);
	char have[IFNAMSIZ] = {};

	if (!want || !want->name[0])
		return 0;
	/* The name lies in the record at a variable offset: ctx cannot be read there directly. */
	bpf_probe_read(have, sizeof(have), (char *)ctx + (loc & 0xffff));
#pragma unroll
	for (int i = 0; i < IFNAMSIZ; i++) {
		if (have[i] != want->name[i])
			return 0;
		if (!have[i])
			return 1;
	}
	return 1;
}

static __always_inline void record(__u32 dir, __u32 len, __s32 rc)
{
	struct len_key k = { .dir = dir, .len = len };
	struct stat *s = bpf_map_lookup_elem(&by_len, &k);

	if (!s) {
		struct stat init = {};

		bpf_map_update_elem(&by_len, &k, &init, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&by_len, &k);
		if (!s)
			return;
	}
	__sync_fetch_and_add(&s->packets, 1);
	__sync_fetch_and_add(&s->bytes, len);
	/* Only when nonzero: clang turns an atomic add of 0 into an atomic OR, which needs 5.12. */
	if (rc)
		__sync_fetch_and_add(&s->rc_sum, rc);
}

SEC("tracepoint/net/net_dev_xmit")
int on_xmit(struct net_dev_xmit_rec *ctx)
{
	if (name_matches(ctx, ctx->name_loc, XMIT))
		record(XMIT, ctx->len, ctx->rc);
	return 0;
}

SEC("tracepoint/net/netif_receive_skb")
int on_receive(struct netif_receive_skb_rec *ctx)
{
	if (name_matches(ctx, ctx->name_loc, RECV))
		record(RECV, ctx->len, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
