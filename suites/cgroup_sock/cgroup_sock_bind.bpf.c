// BPF_CGROUP_INET_SOCK_CREATE writing bpf_sock.bound_dev_if (4.10): every inet socket created in the
// cgroup starts bound to the loopback device (ifindex 1 in every namespace).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup/sock")
int bind_to_lo(struct bpf_sock *sk)
{
	sk->bound_dev_if = 1;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
