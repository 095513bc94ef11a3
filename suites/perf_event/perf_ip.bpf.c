/*
 * A perf_event program that reads the sampled instruction pointer from the interrupted
 * registers (bpf_perf_event_data's regs, rip on x86_64): counts samples per (tgid, ip), so that
 * the test can check where each process was when it was sampled against its memory map and the
 * kernel's text.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>
#include "ticks.h"

struct ip_key {
	__u64 ip;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ip_key);
	__type(value, __u64);
} ip_samples SEC(".maps");

SEC("perf_event")
int on_sample_ip(struct bpf_perf_event_data *ctx)
{
	struct ip_key k = {
		.ip = ctx->regs.rip, /* x86_64 user-space struct pt_regs */
		.tgid = (__u32)(bpf_get_current_pid_tgid() >> 32),
	};
	__u64 one = 1, *v;

	count_tick();

	v = bpf_map_lookup_elem(&ip_samples, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&ip_samples, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
