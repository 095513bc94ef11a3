/* Counters in maps of __u64, the suites' most common map. Include after <linux/bpf.h> (or
 * vmlinux.h) and <bpf/bpf_helpers.h>.
 *   COUNTS_MAP(stats, NR_STATS);          an array of NR_STATS counters (key: __u32 slot)
 *   PINNED_COUNTS_MAP(stats, NR_STATS);   the same, pinned by name (iproute2's loader pins it)
 *   count_add(&stats, SLOT, n);           slot += n (atomic); a map of __s64 works the same
 *   count_one(&stats, SLOT);              slot += 1
 *   KEY_COUNTS_MAP(hits, struct hit, 64); a hash of counters by a key of that type, for:
 *   count_key(&hash, &key);               a hash's entry += 1, made (as 1) on its first count
 * The host reads each value as a little-endian u64 (readU64s in harness/agent/protocol.ts). */
#pragma once
#include "maps.h"

/* `more`: further map attributes, e.g. its pinning (maps.h). */
#define COUNTS_MAP_WITH(name, entries, more) MAP_OF(name, BPF_MAP_TYPE_ARRAY, __u32, __u64, entries, more)
#define COUNTS_MAP(name, entries) COUNTS_MAP_WITH(name, entries, )
#define PINNED_COUNTS_MAP(name, entries) COUNTS_MAP_WITH(name, entries, PIN_BY_NAME;)
#define KEY_COUNTS_MAP(name, key_type, entries) MAP_OF(name, BPF_MAP_TYPE_HASH, key_type, __u64, entries, )

static __always_inline void count_add(void *map, __u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline void count_one(void *map, __u32 slot)
{
	count_add(map, slot, 1);
}

/* Two CPUs counting a key's first time at once: one makes it, the other's count is lost (the
 * suites' traffic comes one packet at a time). */
static __always_inline void count_key(void *map, void *key)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(map, key);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}
