/* A packets-and-bytes counter: the value of the suites' counter maps. The host reads it as two
 * little-endian u64 (readU64s in harness/agent/protocol.ts). The maps and their helpers want
 * <linux/bpf.h> and <bpf/bpf_helpers.h> included first:
 *   COUNTER_MAP(proto_array, BPF_MAP_TYPE_ARRAY, 256, );   counters by a __u32 key (`more`: maps.h)
 *   counter_bump(&map, key, len);       the key's counter += {1, len}, where its entry exists
 *   counter_bump_key(&hash, key, len);  the same in a hash, the entry made ({1, len}) on its first packet */
#pragma once
#include <linux/types.h>
#include "maps.h"

struct counter {
	__u64 packets;
	__u64 bytes;
};

#define COUNTER_MAP(name, map_type, entries, more) MAP_OF(name, map_type, __u32, struct counter, entries, more)

static __always_inline void counter_add(struct counter *c, __u64 len)
{
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->bytes, len);
}

static __always_inline void counter_bump(void *map, __u32 key, __u64 len)
{
	struct counter *c = bpf_map_lookup_elem(map, &key);

	if (c)
		counter_add(c, len);
}

/* Two CPUs counting a key's first packet at once: one makes the entry, the other's packet is not
 * counted (the suites' traffic comes one packet at a time). */
static __always_inline void counter_bump_key(void *map, __u32 key, __u64 len)
{
	struct counter *c = bpf_map_lookup_elem(map, &key), fresh = { 1, len };

	if (c)
		counter_add(c, len);
	else
		bpf_map_update_elem(map, &key, &fresh, BPF_NOEXIST);
}
