// BPF_CGROUP_INET_SOCK_CREATE writing bpf_sock.mark and .priority (4.14): stream sockets get one
// mark and priority, datagram sockets another; the values seen before writing are recorded.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SOCK_STREAM 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} seen_before SEC(".maps");  // [0] = sockets seen, [1] = sum of mark + priority found on them

SEC("cgroup/sock")
int set_mark_priority(struct bpf_sock *sk)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *n = bpf_map_lookup_elem(&seen_before, &k0);
	__u64 *sum = bpf_map_lookup_elem(&seen_before, &k1);
	if (n)
		__sync_fetch_and_add(n, 1);
	if (sum)
		__sync_fetch_and_add(sum, sk->mark + sk->priority);
	if (sk->type == SOCK_STREAM) {
		sk->mark = 0xb1f;
		sk->priority = 6;
	} else {
		sk->mark = 0xd06;
		sk->priority = 2;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
