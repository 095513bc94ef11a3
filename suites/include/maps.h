/* The BTF-style map definition the suites' map macros are made of (counts.h, counter.h,
 * config.h): one array or hash, its key and value types, and `more`, further attributes such as
 * PIN_BY_NAME;. Include after <linux/bpf.h> (or vmlinux.h) and <bpf/bpf_helpers.h>. */
#pragma once

/* Pinned by name: iproute2's libbpf loader (tc, lwt) pins such a map in its bpffs folder. */
#define PIN_BY_NAME __uint(pinning, LIBBPF_PIN_BY_NAME)

#define MAP_OF(name, map_type, key_type, value_type, entries, more) \
	struct {                                                    \
		__uint(type, map_type);                             \
		__uint(max_entries, entries);                       \
		__type(key, key_type);                              \
		__type(value, value_type);                          \
		more                                                \
	} name SEC(".maps")
