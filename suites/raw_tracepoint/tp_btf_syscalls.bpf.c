/*
 * BTF-enabled raw tracepoints (tp_btf, 5.5), compiled CO-RE against the guest kernel's vmlinux.h:
 * the arguments arrive typed (struct pt_regs *regs, long id / long ret), and the program
 * dereferences regs directly, which the verifier allows because it knows the type from BTF.
 * For the tgid and the system call number in `bh_config`, counts entries and exits, checks on each
 * entry that regs->orig_ax equals id, and keeps the sum and the last of the return values.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "counts.h"
#include "config.h"

struct bh_config {
	__u32 tgid;
	__u32 nr;
};

CONFIG_MAP(bh_config, struct bh_config, );

/* vmlinux.h has every kernel enum: the slots carry a prefix */
enum { BH_ENTRIES, BH_ORIG_AX_MATCHES, BH_EXITS, BH_RET_SUM, BH_LAST_RET, BH_NR_STATS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BH_NR_STATS);
	__type(key, __u32);
	__type(value, __s64);
} stats SEC(".maps");

static __always_inline struct bh_config *target(void)
{
	struct bh_config *c = config_of(&bh_config);

	if (!c || !c->tgid || (__u32)(bpf_get_current_pid_tgid() >> 32) != c->tgid)
		return NULL;
	return c;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(typed_enter, struct pt_regs *regs, long id)
{
	struct bh_config *c = target();

	if (!c || id != c->nr)
		return 0;
	count_one(&stats, BH_ENTRIES);
	if (regs->orig_ax == id)
		count_one(&stats, BH_ORIG_AX_MATCHES);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(typed_exit, struct pt_regs *regs, long ret)
{
	struct bh_config *c = target();
	__u32 last = BH_LAST_RET;
	__s64 *p;

	if (!c || regs->orig_ax != c->nr)
		return 0;
	count_one(&stats, BH_EXITS);
	count_add(&stats, BH_RET_SUM, ret);
	p = bpf_map_lookup_elem(&stats, &last);
	if (p)
		*p = ret;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
