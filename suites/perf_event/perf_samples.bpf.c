/*
 * A perf_event program on cpu-clock sampling events (one per CPU): counts samples per
 * (tgid, cpu) of the interrupted task and per CPU (with the first and last sample's time), and records the event's sample period.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>
#include "counts.h"

struct sample_key {
	__u32 tgid;
	__u32 cpu;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sample_key);
	__type(value, __u64);
} samples SEC(".maps");

/* Every sample, whatever task it interrupted, counted on the CPU it was taken on (per_cpu). */
#include "ticks.h"

/* [0]: sample_period of the last sample (ns for cpu-clock). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} info SEC(".maps");

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	struct sample_key k = {
		.tgid = (__u32)(bpf_get_current_pid_tgid() >> 32),
		.cpu = bpf_get_smp_processor_id(),
	};
	__u32 zero = 0;
	__u64 *v;

	count_key(&samples, &k);
	count_tick();
	v = bpf_map_lookup_elem(&info, &zero);
	if (v)
		*v = ctx->sample_period;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
