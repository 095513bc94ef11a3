// BPF_CGROUP_INET_SOCK_CREATE writing bpf_sock.bound_dev_if: every inet socket created in the
// cgroup starts bound to the device whose ifindex (in the socket's namespace) is in bind_dev[0],
// so that its traffic leaves through that device whatever the routing table prefers.
// bind_dev[1] counts the sockets it bound.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} bind_dev SEC(".maps");

SEC("cgroup/sock")
int bind_to_dev(struct bpf_sock *sk)
{
	__u32 key = 0;
	__u32 *ifindex = bpf_map_lookup_elem(&bind_dev, &key);
	__u32 *bound;

	if (!ifindex || !*ifindex)
		return 1;
	sk->bound_dev_if = *ifindex;
	key = 1;
	bound = bpf_map_lookup_elem(&bind_dev, &key);
	if (bound)
		__sync_fetch_and_add(bound, 1);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
