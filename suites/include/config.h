/* Maps the test writes a program's settings into. Include after <linux/bpf.h> (or vmlinux.h) and
 * <bpf/bpf_helpers.h>.
 *   CONFIG_MAP(cfg, struct my_cfg, more);  one value of that type, at key 0 (`more`: maps.h)
 *   config_of(&cfg)                        that value (0 only where the lookup fails)
 *   SETTINGS_MAP(cfg, n);                  n __u32 settings, by slot (0: not set)
 *   setting(&cfg, i)                       slot i, 0 where there is none
 *   take_setting(&cfg)                     of SETTINGS_MAP(cfg, 2): slot 0, counting in slot 1 each
 *                                          time it is taken (set, not 0) */
#pragma once
#include "maps.h"

#define CONFIG_MAP(name, value_type, more) MAP_OF(name, BPF_MAP_TYPE_ARRAY, __u32, value_type, 1, more)
#define SETTINGS_MAP(name, entries) MAP_OF(name, BPF_MAP_TYPE_ARRAY, __u32, __u32, entries, )

static __always_inline void *config_of(void *map)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(map, &zero);
}

static __always_inline __u32 setting(void *map, __u32 i)
{
	__u32 *v = bpf_map_lookup_elem(map, &i);

	return v ? *v : 0;
}

static __always_inline __u32 take_setting(void *map)
{
	__u32 one = 1, v = setting(map, 0), *n;

	if (v) {
		n = bpf_map_lookup_elem(map, &one);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	return v;
}
