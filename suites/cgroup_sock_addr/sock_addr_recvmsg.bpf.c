// BPF_CGROUP_UDP4_RECVMSG (5.2): the reverse of sendmsg4. A datagram from the backend is
// reported to the application (recvfrom's source address) as coming from the service address it
// sent to, so that it accepts the reply. Every call is counted, as in sock_addr.bpf.c.
#include "sock_addr_common.h"

SEC("cgroup/recvmsg4")
int recvmsg4(struct bpf_sock_addr *ctx)
{
	int restore = ctx->user_ip4 == bpf_htonl(BACKEND_IP) && ctx->user_port == bpf_htons(BACKEND_PORT);

	if (restore) {
		ctx->user_ip4 = bpf_htonl(SERVICE_IP);
		ctx->user_port = bpf_htons(SERVICE_PORT);
	}
	count(HOOK_RECVMSG4, ctx->protocol, restore);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
