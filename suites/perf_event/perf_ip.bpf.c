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
#include "counts.h"
#include "ticks.h"

struct ip_key {
	__u64 ip;
	__u32 tgid;
	__u32 pad;
};

KEY_COUNTS_MAP(ip_samples, struct ip_key, 16384);

SEC("perf_event")
int on_sample_ip(struct bpf_perf_event_data *ctx)
{
	struct ip_key k = {
		.ip = ctx->regs.rip, /* x86_64 user-space struct pt_regs */
		.tgid = (__u32)(bpf_get_current_pid_tgid() >> 32),
	};

	count_tick();
	count_key(&ip_samples, &k);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
