// BPF_CGROUP_INET_SOCK_CREATE writing bpf_sock.bound_dev_if: every inet socket created in the
// cgroup starts bound to the device whose ifindex (in the socket's namespace) is in bind_dev[0],
// so that its traffic leaves through that device whatever the routing table prefers.
// bind_dev[1] counts the sockets it bound.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "config.h"

SETTINGS_MAP(bind_dev, 2);

SEC("cgroup/sock")
int bind_to_dev(struct bpf_sock *sk)
{
	__u32 ifindex = take_setting(&bind_dev);

	if (ifindex)
		sk->bound_dev_if = ifindex;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
