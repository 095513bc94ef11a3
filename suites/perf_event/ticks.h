/* The ticks a sampling timer delivered on each CPU: how many, and the kernel's clock at the first
 * and the last. A guest whose vCPU the host did not run for a while gets one late tick for all the
 * periods it missed (the timer is forwarded past them), while the clock, and the run time the
 * scheduler charges to the task that was on the CPU, run on: (count - 1) periods over last - first
 * is the share of its ticks the CPU was given, which the test's lower bounds scale by. */
#pragma once

struct ticks {
	__u64 count; /* first: the host reads a count as the value's first u64 */
	__u64 first_ns;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ticks);
} per_cpu SEC(".maps");

static __always_inline void count_tick(void)
{
	__u32 zero = 0;
	struct ticks *t = bpf_map_lookup_elem(&per_cpu, &zero);
	__u64 now = bpf_ktime_get_ns();

	if (!t)
		return;
	if (!t->count)
		t->first_ns = now;
	t->last_ns = now;
	t->count++;
}
