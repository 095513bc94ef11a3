// BPF_CGROUP_INET_SOCK_CREATE: counts every inet socket a process in the cgroup creates, per
// (family, type, protocol), and refuses some: all of AF_INET6, and raw ICMP sockets.
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "counts.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_RAW 3

struct sock_kind {
	__u32 family;
	__u32 type;
	__u32 protocol;
	__u32 allowed;
};

KEY_COUNTS_MAP(created, struct sock_kind, 64);

SEC("cgroup/sock")
int deny_inet6_raw_icmp(struct bpf_sock *sk)
{
	__u32 family = sk->family, type = sk->type, protocol = sk->protocol;
	int refuse = family == AF_INET6 || (type == SOCK_RAW && protocol == IPPROTO_ICMP);
	struct sock_kind k = {
		.family = family,
		.type = type,
		.protocol = protocol,
		.allowed = !refuse,
	};
	count_key(&created, &k);
	if (refuse)
		return 0;  // socket() fails with EPERM
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
