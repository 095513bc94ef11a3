/*
 * sk_skb programs on a sockmap. The sockets in sock_map have their received TCP stream run through
 * the stream parser (when attached) and the stream verdict:
 *   parser          returns skb->len: every chunk of received data is one message.
 *   redirect_to_1   sends each message out of the socket at key 1 (egress redirect).
 *   drop_all        SK_DROP: the message is discarded, the socket's reader never sees it.
 *   pass_all        SK_PASS: the message goes to the socket's own receive queue as usual.
 * add_established (sock_ops, on a cgroup) puts every TCP socket of the cgroup into sock_map as it
 * becomes established: the server end (passive) at key 0, the client end (active) at key 1.
 * Every call is counted in stats[] (key STAT_PARSER / STAT_VERDICT): {calls, bytes of skb->len}.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define STAT_PARSER 0
#define STAT_VERDICT 1
#define REDIRECT_KEY 1

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} sock_map SEC(".maps");

struct stat {
	__u64 calls;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct stat);
} stats SEC(".maps");

static __always_inline void count(__u32 key, __u32 len)
{
	struct stat *s = bpf_map_lookup_elem(&stats, &key);

	if (s) {
		__sync_fetch_and_add(&s->calls, 1);
		__sync_fetch_and_add(&s->bytes, len);
	}
}

SEC("sk_skb/stream_parser")
int parser(struct __sk_buff *skb)
{
	count(STAT_PARSER, skb->len);
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int redirect_to_1(struct __sk_buff *skb)
{
	count(STAT_VERDICT, skb->len);
	return bpf_sk_redirect_map(skb, &sock_map, REDIRECT_KEY, 0);
}

SEC("sk_skb/stream_verdict")
int drop_all(struct __sk_buff *skb)
{
	count(STAT_VERDICT, skb->len);
	return SK_DROP;
}

SEC("sk_skb/stream_verdict")
int pass_all(struct __sk_buff *skb)
{
	count(STAT_VERDICT, skb->len);
	return SK_PASS;
}

SEC("sockops")
int add_established(struct bpf_sock_ops *skops)
{
	__u32 key;

	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		key = 0;
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		key = 1;
		break;
	default:
		return 1;
	}
	bpf_sock_map_update(skops, &sock_map, &key, BPF_ANY);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
