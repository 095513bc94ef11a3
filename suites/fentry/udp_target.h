/* The one socket the fentry suite's programs watch: the test writes a process's tgid and the
 * local port of its UDP socket into bh_target (tgid 0: nothing is watched), and ours(sk) says
 * whether a udp_sendmsg call is that process's, on that socket. CO-RE: include after vmlinux.h
 * and <bpf/bpf_helpers.h>. */
#pragma once
#include "config.h"

struct bh_target {
	__u32 tgid;
	__u32 port;
};

CONFIG_MAP(bh_target, struct bh_target, );

static __always_inline int ours(struct sock *sk)
{
	struct bh_target *t = config_of(&bh_target);

	if (!t || !t->tgid || (__u32)(bpf_get_current_pid_tgid() >> 32) != t->tgid)
		return 0;
	return sk->__sk_common.skc_num == t->port;
}
