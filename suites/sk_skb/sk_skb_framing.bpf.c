/*
 * Stream parser framing: `parse_fixed` cuts the received stream into messages of MSG_LEN bytes,
 * and returns 0 ("need more data") while fewer than MSG_LEN bytes are in, so that the verdict is
 * not run until the rest arrives. `verdict_count` counts the messages it is given and redirects
 * each out of the socket at key 1 (so that its bytes can be read at that socket's peer, on every
 * kernel; SK_PASS to the socket itself needs 4.20). The parser's calls are counted too. (The
 * verdict's skb->len is not the message's length: it is the length of the skb the message starts
 * in, which holds both messages of one write; the kernel passes on only the message's bytes.)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MSG_LEN 16
#define REDIRECT_KEY 1

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} framing_map SEC(".maps");

/* [0]: verdict calls (messages). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} verdict_calls SEC(".maps");

/* [0]: parser calls; [1]: of them, answered 0 (wait for more). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} parser_calls SEC(".maps");

static __always_inline void bump(void *map, __u32 key)
{
	__u64 *n = bpf_map_lookup_elem(map, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("sk_skb/stream_parser")
int parse_fixed(struct __sk_buff *skb)
{
	bump(&parser_calls, 0);
	if (skb->len < MSG_LEN) {
		bump(&parser_calls, 1);
		return 0;
	}
	return MSG_LEN;
}

SEC("sk_skb/stream_verdict")
int verdict_count(struct __sk_buff *skb)
{
	bump(&verdict_calls, 0);
	return bpf_sk_redirect_map(skb, &framing_map, REDIRECT_KEY, 0);
}

char LICENSE[] SEC("license") = "GPL";
