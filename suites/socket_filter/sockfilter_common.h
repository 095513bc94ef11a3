/* Shared by the socket_filter suite's programs: headers, a {packets, bytes} counter per IP protocol. */
#ifndef SOCKFILTER_COMMON_H
#define SOCKFILTER_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "counter.h"

/* Classic-BPF style absolute loads (BPF_LD | BPF_ABS): they read the packet relative to skb->data,
 * or, with a negative offset based at SKF_NET_OFF / SKF_LL_OFF, relative to the network / link
 * header. Results are in host byte order. */
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

/* Indexed by IP protocol number. */
COUNTER_MAP(proto_bytes, BPF_MAP_TYPE_ARRAY, 256, );

static __always_inline void count_proto(__u32 proto, __u32 len)
{
	counter_bump(&proto_bytes, proto, len);
}

#endif
