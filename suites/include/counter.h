/* A packets-and-bytes counter: the value of the suites' counter maps. The host reads it as two
 * little-endian u64 (readU64s in harness/agent/protocol.ts). */
#pragma once
#include <linux/types.h>

struct counter {
	__u64 packets;
	__u64 bytes;
};

static __always_inline void counter_add(struct counter *c, __u64 len)
{
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->bytes, len);
}
