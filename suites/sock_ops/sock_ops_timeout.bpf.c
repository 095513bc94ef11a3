// BPF_SOCK_OPS_TIMEOUT_INIT: the reply is the initial retransmission timeout, in jiffies, of the
// cgroup's TCP sockets (the SYN's, for a connect). The value comes from timeout_cfg[0], which the
// test fills (it knows the kernel's HZ); timeout_cfg[1] counts the TIMEOUT_INIT calls answered.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} timeout_cfg SEC(".maps");

SEC("sockops")
int set_timeout_init(struct bpf_sock_ops *skops)
{
	__u32 key = 0;
	__u32 *jiffies, *answered;

	if (skops->op != BPF_SOCK_OPS_TIMEOUT_INIT)
		return 1;
	jiffies = bpf_map_lookup_elem(&timeout_cfg, &key);
	if (!jiffies || !*jiffies)
		return 1;
	skops->reply = *jiffies;
	key = 1;
	answered = bpf_map_lookup_elem(&timeout_cfg, &key);
	if (answered)
		__sync_fetch_and_add(answered, 1);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
