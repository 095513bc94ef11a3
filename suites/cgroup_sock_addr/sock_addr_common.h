/* Addresses of the cgroup_sock_addr suite (the test uses the same numbers), and the counter map:
 * one entry per (hook, protocol, rewritten) with the number of calls. */
#pragma once
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "counts.h"

#define SERVICE_IP 0x0a4d0001   /* 10.77.0.1: what the application asks for */
#define SERVICE_PORT 5000
#define BACKEND_IP 0x0a4d0002   /* 10.77.0.2: where the kernel really goes */
#define BACKEND_PORT 6000
#define BIND_ASKED 7000         /* bind4: a bind to this port ... */
#define BIND_GIVEN 7001         /* ... gets this one */

enum hook { HOOK_CONNECT4 = 0, HOOK_SENDMSG4 = 1, HOOK_BIND4 = 2, HOOK_RECVMSG4 = 3 };

struct hit {
	__u32 hook;
	__u32 protocol;
	__u32 rewritten;
};

KEY_COUNTS_MAP(hits, struct hit, 64);

static __always_inline void count(__u32 hook, __u32 protocol, __u32 rewritten)
{
	struct hit k = { .hook = hook, .protocol = protocol, .rewritten = rewritten };

	count_key(&hits, &k);
}

/* The service address becomes the backend's (connect4, sendmsg4). Returns whether it did. */
static __always_inline int to_backend(struct bpf_sock_addr *ctx)
{
	if (ctx->user_ip4 != bpf_htonl(SERVICE_IP) || ctx->user_port != bpf_htons(SERVICE_PORT))
		return 0;
	ctx->user_ip4 = bpf_htonl(BACKEND_IP);
	ctx->user_port = bpf_htons(BACKEND_PORT);
	return 1;
}
