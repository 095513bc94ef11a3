/* bpf-agent: tracing attachments (kprobes, uprobes, tracepoints, perf events) and the syscalls they count. */
#define _GNU_SOURCE
#include "attach.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <bpf/libbpf.h>

static void ensure_tracefs(void)
{
	if (access("/sys/kernel/debug/tracing/events", F_OK) == 0)
		return;
	if (access("/sys/kernel/tracing/events", F_OK) == 0)
		return;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		return;
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
}

static bool kallsyms_has(const char *func)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	if (!f)
		return true; /* cannot tell */
	char line[512];
	bool found = false;
	size_t fl = strlen(func);
	while (fgets(line, sizeof(line), f)) {
		char *sp = strchr(line, ' ');
		if (!sp || !(sp = strchr(sp + 1, ' ')))
			continue;
		char *name = sp + 1;
		if (strncmp(name, func, fl) == 0 && (name[fl] == '\n' || name[fl] == '\t' || name[fl] == '\0')) {
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

int op_attach_kprobe(struct req *r, struct jbuf *out)
{
	struct attach a;
	const char *func;
	bool retprobe;
	if (req_attach(r, &a) || req_str(r, "func", &func, NULL) || req_bool(r, "retprobe", &retprobe, false))
		return -1;
	const char *kind = retprobe ? "kretprobe" : "kprobe";
	bool legacy = access("/sys/bus/event_source/devices/kprobe/type", R_OK) != 0;
	if (legacy) {
		ensure_tracefs();
		if (access("/sys/kernel/debug/tracing/kprobe_events", F_OK) != 0 &&
		    access("/sys/kernel/tracing/kprobe_events", F_OK) != 0)
			return failx(EOPNOTSUPP, "prog %s: %s on %s: kernel has no kprobe support (no kprobe PMU in "
				     "/sys/bus/event_source/devices and no kprobe_events in tracefs)%s",
				     a.prog, kind, func, kallsyms_has(func) ? "" : "; the function is not in /proc/kallsyms either");
	}
	LIBBPF_OPTS(bpf_kprobe_opts, ko, .retprobe = retprobe);
	struct bpf_link *bl = bpf_program__attach_kprobe_opts(a.p, func, &ko);
	if (!bl) {
		int e = errno;
		/* the kernel's own errno, with what /proc/kallsyms says about the function */
		if (!kallsyms_has(func))
			return failx(e, "prog %s: %s on %s: no such function in /proc/kallsyms (%s)", a.prog, kind, func,
				     errstr(e));
		return fail(e, "prog %s: %s on %s%s", a.prog, kind, func, legacy ? " (legacy tracefs kprobe_events)" : "");
	}
	if (attach_keep(&a, bl, out))
		return -1;
	jb_kbool(out, "legacy", legacy);
	return 0;
}

/*
 * uprobes and uretprobes on a function of an ELF binary in the guest (symbol from its symbol
 * table, resolved by libbpf), in every process (pid -1) or one: through the uprobe PMU (4.17), or
 * tracefs uprobe_events where the kernel has none.
 */
int op_attach_uprobe(struct req *r, struct jbuf *out)
{
	struct attach a;
	const char *binary, *func;
	bool retprobe;
	long long pid;
	if (req_attach(r, &a) || req_str(r, "binary", &binary, NULL) || req_str(r, "func", &func, NULL) ||
	    req_bool(r, "retprobe", &retprobe, false) || req_int(r, "pid", &pid, -1, false, -1, INT_MAX))
		return -1;
	bool legacy = access("/sys/bus/event_source/devices/uprobe/type", R_OK) != 0;
	if (legacy)
		ensure_tracefs();
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = func, .retprobe = retprobe);
	struct bpf_link *bl = bpf_program__attach_uprobe_opts(a.p, (pid_t)pid, binary, 0, &uo);
	if (!bl)
		return fail(errno, "prog %s: %s on %s:%s%s", a.prog, retprobe ? "uretprobe" : "uprobe", binary, func,
			    legacy ? " (legacy tracefs uprobe_events)" : "");
	if (attach_keep(&a, bl, out))
		return -1;
	jb_kbool(out, "legacy", legacy);
	return 0;
}

/*
 * kprobe_multi (5.18): one link on many kernel functions (fprobe). `syms` is a comma-separated
 * list; the i-th function gets BPF cookie i + 1, which the program reads with
 * bpf_get_attach_cookie to tell the functions apart.
 */
#define MAX_MULTI 64
int op_attach_kprobe_multi(struct req *r, struct jbuf *out)
{
	struct attach a;
	const char *list;
	bool retprobe;
	if (req_attach(r, &a) || req_str(r, "syms", &list, NULL) || req_bool(r, "retprobe", &retprobe, false))
		return -1;
	char *copy = strdup(list);
	if (!copy)
		return fail(ENOMEM, "syms");
	const char *syms[MAX_MULTI];
	__u64 cookies[MAX_MULTI];
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n == MAX_MULTI) {
			free(copy);
			return failx(E2BIG, "more than %d functions", MAX_MULTI);
		}
		syms[n] = t;
		cookies[n] = n + 1;
		n++;
	}
	if (!n) {
		free(copy);
		return failx(EINVAL, "syms: no function named");
	}
	LIBBPF_OPTS(bpf_kprobe_multi_opts, ko, .syms = syms, .cookies = cookies, .cnt = n, .retprobe = retprobe);
	struct bpf_link *bl = bpf_program__attach_kprobe_multi_opts(a.p, NULL, &ko);
	int e = errno;
	free(copy);
	if (!bl)
		return fail(e, "prog %s: %s on %zu functions (%s)", a.prog, retprobe ? "kretprobe.multi" : "kprobe.multi", n,
			    list);
	if (attach_keep(&a, bl, out))
		return -1;
	jb_kint(out, "functions", (long long)n);
	return 0;
}

int op_attach_tracepoint(struct req *r, struct jbuf *out)
{
	struct attach a;
	const char *cat, *name;
	if (req_attach(r, &a) || req_str(r, "category", &cat, NULL) || req_str(r, "name", &name, NULL))
		return -1;
	ensure_tracefs();
	struct bpf_link *bl = bpf_program__attach_tracepoint(a.p, cat, name);
	if (!bl)
		return fail(errno, "prog %s: tracepoint %s/%s", a.prog, cat, name);
	return attach_keep(&a, bl, out);
}

/* Parses /sys/devices/system/cpu/online ("0-3,5") into cpus[]; returns the count or -1. */
static int online_cpus(int *cpus, int max)
{
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");
	if (!f)
		return -1;
	char buf[1024];
	int n = 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	char *s = buf;
	while (*s && *s != '\n') {
		char *end;
		long a = strtol(s, &end, 10), b = a;
		if (end == s)
			return -1;
		s = end;
		if (*s == '-') {
			b = strtol(s + 1, &end, 10);
			s = end;
		}
		for (long c = a; c <= b && n < max; c++)
			cpus[n++] = (int)c;
		if (*s == ',')
			s++;
	}
	return n;
}

int op_attach_perf_event(struct req *r, struct jbuf *out)
{
	struct attach a;
	long long freq;
	const char *event;
	if (req_attach(r, &a) || req_int(r, "freq", &freq, 0, true, 1, 100000000) ||
	    req_str(r, "event", &event, "cpu-clock"))
		return -1;
	static const char *const events[] = { "cpu-clock", "task-clock", NULL };
	static const int configs[] = { PERF_COUNT_SW_CPU_CLOCK, PERF_COUNT_SW_TASK_CLOCK };
	int config;
	if (str_pick(event, events, configs, &config))
		return failx(EINVAL, "unsupported event \"%s\" (cpu-clock)", event);
	int cpus[1024];
	struct bpf_link *bls[1024];
	int n = online_cpus(cpus, 1024), i;
	if (n <= 0)
		return fail(errno ? errno : EINVAL, "read /sys/devices/system/cpu/online");
	for (i = 0; i < n; i++) {
		struct perf_event_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.size = sizeof(attr);
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = (uint64_t)config;
		attr.freq = 1;
		attr.sample_freq = (uint64_t)freq;
		int pfd = (int)syscall(__NR_perf_event_open, &attr, -1, cpus[i], -1, PERF_FLAG_FD_CLOEXEC);
		if (pfd < 0) {
			fail(errno, "prog %s: perf_event_open %s freq %lld on cpu %d", a.prog, event, freq, cpus[i]);
			break;
		}
		bls[i] = bpf_program__attach_perf_event(a.p, pfd);
		if (!bls[i]) {
			int e = errno;
			close(pfd);
			fail(e, "prog %s: attach to %s perf event on cpu %d", a.prog, event, cpus[i]);
			break;
		}
	}
	if (i < n) {
		while (i--)
			bpf_link__destroy(bls[i]);
		return -1;
	}
	if (link_keep(a.o, bls, n, -1, out))
		return fail(ENOMEM, "prog %s", a.prog);
	jb_kint(out, "cpus", n);
	return 0;
}

/* ---------- events to trace ---------- */

/*
 * Makes a known number of system calls from the agent itself, so that kprobe, tracepoint and
 * syscall-tracepoint tests know exactly how many events to expect (filter on the returned pid).
 */
static const struct {
	const char *name;
	long nr;
} g_syscalls[] = {
	{ "getpid", SYS_getpid },
	{ "getppid", SYS_getppid },
	{ "getuid", SYS_getuid },
	{ "getgid", SYS_getgid },
	{ "gettid", SYS_gettid },
	{ "sched_yield", SYS_sched_yield },
};

int op_syscalls(struct req *r, struct jbuf *out)
{
	const char *name;
	long long count;
	long nr = -1;
	if (req_str(r, "name", &name, NULL) || req_int(r, "count", &count, 1, false, 0, 10000000))
		return -1;
	for (size_t i = 0; i < sizeof(g_syscalls) / sizeof(g_syscalls[0]); i++)
		if (strcmp(g_syscalls[i].name, name) == 0)
			nr = g_syscalls[i].nr;
	if (nr < 0)
		return failx(EINVAL, "\"%s\" is not one of getpid, getppid, getuid, getgid, gettid, sched_yield", name);
	/* No getpid/gettid of our own here: a probe on them must see exactly `count` calls. The agent
	 * is single-threaded and runs this op in its main thread, so tid = pid. */
	for (long long i = 0; i < count; i++)
		syscall(nr);
	jb_kint(out, "pid", g_agent_pid);
	jb_kint(out, "tid", g_agent_pid);
	jb_kint(out, "calls", count);
	return 0;
}
