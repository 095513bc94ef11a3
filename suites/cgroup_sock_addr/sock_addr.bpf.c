// cgroup sock_addr hooks of 4.17 (BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_UDP4_SENDMSG,
// BPF_CGROUP_INET4_BIND), as a socket load balancer uses them: connect() and sendto() to the
// service address go to the backend instead; bind() to one port gets another. Every call is
// counted per hook, protocol and whether the address was rewritten.
#include "sock_addr_common.h"

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	count(HOOK_CONNECT4, ctx->protocol, to_backend(ctx));
	return 1;
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	count(HOOK_SENDMSG4, ctx->protocol, to_backend(ctx));
	return 1;
}

SEC("cgroup/bind4")
int bind4(struct bpf_sock_addr *ctx)
{
	int rewrite = ctx->user_port == bpf_htons(BIND_ASKED);

	if (rewrite)
		ctx->user_port = bpf_htons(BIND_GIVEN);
	count(HOOK_BIND4, ctx->protocol, rewrite);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
