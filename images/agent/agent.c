/* bpf-agent: the guest side of bpf-harness. This file: main, the request loop and the dispatch table.
 *
 * One long-lived process: reads one flat JSON request per line on stdin and writes exactly one
 * JSON response per line on stdout (see PROTOCOL.md). Works on 4.14-era kernels: no kernel BTF,
 * no BPF links required (libbpf probes features and falls back), XDP through netlink, cgroup
 * programs through BPF_PROG_ATTACH, kprobes through perf_event_open or legacy tracefs. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/libbpf.h>

pid_t g_agent_pid;
bool g_in_child;

static struct jbuf g_log;       /* libbpf output captured during the current request */
static bool g_verbose, g_debug;
/* Set by the keep op: when the host goes away, hold everything instead of cleaning up. */
static bool g_keep;

/* ---------- libbpf output capture ---------- */

static int libbpf_print_cb(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !g_debug)
		return 0;
	if (g_verbose || g_debug) {
		va_list ap2;
		va_copy(ap2, ap);
		vfprintf(stderr, fmt, ap2);
		va_end(ap2);
	}
	if (g_in_child)
		return 0;
	jb_vprintf(&g_log, fmt, ap);
	return 0;
}

const char *libbpf_log(void)
{
	return g_log.p ? g_log.p : "";
}

static int op_hello(struct req *r, struct jbuf *out)
{
	(void)r;
	struct utsname u;
	uname(&u);
	char ver[32];
	snprintf(ver, sizeof(ver), "%u.%u", libbpf_major_version(), libbpf_minor_version());
	jb_kstr(out, "agent", AGENT_VERSION);
	jb_kstr(out, "kernel", u.release);
	jb_kstr(out, "libbpf", ver);
	jb_kint(out, "ncpus", libbpf_num_possible_cpus());
	return 0;
}

/* The guest is kept for a person to look around (--keep-on-fail): when the host's connection goes,
 * the agent keeps its programs, links, maps and sockets instead of releasing them. */
static int op_keep(struct req *r, struct jbuf *out)
{
	(void)r;
	(void)out;
	g_keep = true;
	signal(SIGHUP, SIG_IGN);
	return 0;
}

/* ---------- dispatch and main loop ---------- */

static void release_all(bool detach_persistent)
{
	socks_close_all();
	inet_socks_close_all();
	xsk_close_all();
	pinned_close_all();
	links_release_obj(NULL);
	objs_release_all(detach_persistent);
}

static void cleanup(void)
{
	/* XDP and cgroup attachments stay in the kernel until detached explicitly */
	release_all(false);
}

/* Between tests: forget everything, detaching what this agent attached; with `scrub`, also what
 * tests ("test") or suite files ("guest") leave in the guest (scrub.c); then `mark`, if given,
 * goes to /dev/kmsg. */
static int op_reset(struct req *r, struct jbuf *out)
{
	(void)out;
	const char *scrub, *mark;
	if (req_str(r, "scrub", &scrub, "none") || req_str_opt(r, "mark", &mark))
		return -1;
	bool test = strcmp(scrub, "test") == 0, guest = strcmp(scrub, "guest") == 0;
	if (!test && !guest && strcmp(scrub, "none") != 0)
		return failx(EINVAL, "scrub must be \"none\", \"test\" or \"guest\", not \"%s\"", scrub);
	release_all(true);
	if ((test || guest) && guest_scrub(guest))
		return -1;
	return mark ? kmsg_mark(mark) : 0;
}

static const struct {
	const char *name;
	op_fn *fn;
} g_ops[] = {
	{ "hello", op_hello },
	{ "load", op_load },
	{ "unload", op_unload },
	{ "attach_xdp", op_attach_xdp },
	{ "detach_xdp", op_detach_xdp },
	{ "map_lookup", op_map_lookup },
	{ "map_update", op_map_update },
	{ "map_delete", op_map_delete },
	{ "map_dump", op_map_dump },
	{ "udp_listen", op_udp_listen },
	{ "sock_stats", op_sock_stats },
	{ "sock_close", op_sock_close },
	{ "send", op_send },
	{ "attach_cgroup", op_attach_cgroup },
	{ "detach_cgroup", op_detach_cgroup },
	{ "attach_kprobe", op_attach_kprobe },
	{ "attach_tracepoint", op_attach_tracepoint },
	{ "attach_perf_event", op_attach_perf_event },
	{ "detach", op_detach },
	{ "sock_open", op_sock_open },
	{ "tcp_pair", op_tcp_pair },
	{ "sockmap_add", op_sockmap_add },
	{ "sock_write", op_sock_write },
	{ "sock_read", op_sock_read },
	{ "sock_create_test", op_sock_create_test },
	{ "sock_info", op_sock_info },
	{ "reset", op_reset },
	{ "syscalls", op_syscalls },
	{ "keep", op_keep },
	{ "run", op_run },
	{ "veth_pair", op_veth_pair },
	{ "sysctl_snapshot", op_sysctl_snapshot },
	{ "sysctl_restore", op_sysctl_restore },
	{ "probe", op_probe },
	{ "attach_prog", op_attach_prog },
	{ "attach_tcx", op_attach_tcx },
	{ "attach_uprobe", op_attach_uprobe },
	{ "attach_kprobe_multi", op_attach_kprobe_multi },
	{ "attach_struct_ops", op_attach_struct_ops },
	{ "xsk_open", op_xsk_open },
	{ "xsk_stats", op_xsk_stats },
	{ "events_open", op_events_open },
	{ "events_read", op_events_read },
	{ "inet_socket", op_inet_socket },
	{ "inet_connect", op_inet_connect },
	{ "inet_send", op_inet_send },
	{ "inet_recv", op_inet_recv },
	{ "inet_close", op_inet_close },
	{ "inet_sockmap_add", op_inet_sockmap_add },
	{ "inet_attach_reuseport", op_inet_attach_reuseport },
};

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			/* the host went away */
			_exit(errno == EPIPE ? 0 : 74);
		}
		p += w;
		n -= (size_t)w;
	}
}

#define LOG_MAX (1u << 20)
#define LOG_HEAD (64u << 10)

static void put_log(struct jbuf *out)
{
	jb_key(out, "log");
	if (!g_log.p || g_log.len == 0) {
		jb_puts(out, "\"\"");
		return;
	}
	if (g_log.len <= LOG_MAX) {
		jb_str(out, g_log.p, g_log.len);
		return;
	}
	/* keep the head and the tail (the verifier's verdict is at the end) */
	struct jbuf t = { 0 };
	jb_putn(&t, g_log.p, LOG_HEAD);
	jb_printf(&t, "\n... [%zu bytes of log omitted] ...\n", g_log.len - LOG_MAX);
	jb_putn(&t, g_log.p + g_log.len - (LOG_MAX - LOG_HEAD), LOG_MAX - LOG_HEAD);
	jb_str(out, t.p, t.len);
	jb_free(&t);
}

/* Best-effort id from a line that is not valid JSON. */
static long long guess_id(const char *line)
{
	const char *p = strstr(line, "\"id\"");
	if (!p)
		return 0;
	p += 4;
	while (*p == ' ' || *p == '\t' || *p == ':')
		p++;
	return strtoll(p, NULL, 10);
}

static void handle_line(char *line, size_t len)
{
	static struct jbuf out;
	struct req r;
	char perr[256];
	int rc;

	jb_reset(&out);
	jb_reset(&g_log);
	err_reset();
	g_op = "request";
	memset(&r, 0, sizeof(r));

	if (json_parse_flat(line, len, &r.o, perr, sizeof(perr))) {
		r.id = guess_id(line);
		failx(EINVAL, "%s", perr);
		rc = -1;
		goto respond;
	}
	const struct jfield *fid = json_get(&r.o, "id");
	if (fid && (fid->type == J_INT || fid->type == J_NUM))
		r.id = fid->i;
	const struct jfield *fop = json_get(&r.o, "op");
	if (!fop || fop->type != J_STR) {
		rc = failx(EINVAL, "missing string field \"op\"");
		goto respond;
	}
	r.op = fop->s;
	size_t i;
	for (i = 0; i < sizeof(g_ops) / sizeof(g_ops[0]); i++)
		if (strcmp(g_ops[i].name, r.op) == 0)
			break;
	if (i == sizeof(g_ops) / sizeof(g_ops[0])) {
		g_op = "request";
		rc = failx(EINVAL, "unknown op \"%s\"", r.op);
		goto respond;
	}
	g_op = g_ops[i].name;
	jb_printf(&out, "{\"id\":%lld,\"ok\":true", r.id);
	rc = g_ops[i].fn(&r, &out);
	ns_leave(); /* in case an op forgot */

respond:
	if (rc) {
		jb_reset(&out);
		jb_printf(&out, "{\"id\":%lld,\"ok\":false", r.id);
		jb_kstr(&out, "error", err_msg()[0] ? err_msg() : "failed");
		jb_kint(&out, "errno", err_errno());
		put_log(&out);
	}
	jb_puts(&out, "}\n");
	write_all(1, out.p, out.len);
	json_free(&r.o);
	if (out.cap > (8u << 20))
		jb_free(&out);
	if (g_log.cap > (8u << 20))
		jb_free(&g_log);
}


int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("%s\n", AGENT_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--seed-entropy") == 0)
			return i + 1 < argc ? seed_entropy(argv[i + 1]) : 2;
		if (strcmp(argv[i], "--after-restore") == 0)
			return i + 1 < argc ? after_restore(argv[i + 1]) : 2;
		if (strcmp(argv[i], "-v") == 0)
			g_verbose = true;
		else if (strcmp(argv[i], "-d") == 0)
			g_debug = true;
	}
	if (getenv("BPF_AGENT_VERBOSE"))
		g_verbose = true;
	if (getenv("BPF_AGENT_DEBUG"))
		g_debug = true;

	g_agent_pid = getpid();
	signal(SIGPIPE, SIG_IGN);
	/* The guest's init loads the kernel's modules while the SSH server already answers: no request
	 * is served before they are all in (veth, cls_bpf, ...). At most a minute; init says on the
	 * console what failed to load. */
	for (int i = 0; i < 60000 && access("/run/bpf-harness.modules-loading", F_OK) == 0; i++)
		usleep(1000);
	/* old kernels charge map and program memory to RLIMIT_MEMLOCK */
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	if (setrlimit(RLIMIT_MEMLOCK, &rl) && getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		int e = errno;
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MEMLOCK, &rl);
		if (g_verbose)
			fprintf(stderr, "bpf-agent: RLIMIT_MEMLOCK stays at %llu: %s\n", (unsigned long long)rl.rlim_max, strerror(e));
	}
	libbpf_set_print(libbpf_print_cb);

	if (ns_init()) {
		fprintf(stderr, "bpf-agent: open /proc/self/ns/net: %s\n", strerror(errno));
		return 1;
	}

	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return 1;
	bool eof = false;
	while (!eof) {
		/* serve every complete line in the buffer */
		size_t start = 0;
		for (;;) {
			char *nl = memchr(buf + start, '\n', len - start);
			if (!nl)
				break;
			size_t l = (size_t)(nl - (buf + start));
			*nl = '\0';
			if (l && buf[start + l - 1] == '\r')
				buf[start + --l] = '\0';
			bool blank = true;
			for (size_t k = 0; k < l; k++)
				if (buf[start + k] != ' ' && buf[start + k] != '\t')
					blank = false;
			if (!blank)
				handle_line(buf + start, l);
			start += (size_t)(nl - (buf + start)) + 1;
		}
		if (start) {
			memmove(buf, buf + start, len - start);
			len -= start;
		}
		if (len + 65536 > cap) {
			if (cap >= (256u << 20)) {
				fprintf(stderr, "bpf-agent: request line too long\n");
				return 1;
			}
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb)
				return 1;
			buf = nb;
		}
		/* wait for input while counting packets on statistics sockets */
		if (!pump(0, -1))
			continue;
		ssize_t n = read(0, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "bpf-agent: read stdin: %s\n", strerror(errno));
			break;
		}
		if (n == 0) {
			eof = true;
			if (len) {
				buf[len] = '\0';
				handle_line(buf, len);
			}
			break;
		}
		len += (size_t)n;
	}
	free(buf);
	if (g_keep) {
		/* keep holding every attachment until the guest ends */
		for (;;)
			pause();
	}
	cleanup();
	return 0;
}
