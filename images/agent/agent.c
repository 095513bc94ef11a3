/* bpf-agent: the guest side of bpf-harness.
 *
 * One long-lived process: reads one flat JSON request per line on stdin and writes exactly one
 * JSON response per line on stdout (see PROTOCOL.md). Works on 4.14-era kernels: no kernel BTF,
 * no BPF links required (libbpf probes features and falls back), XDP through netlink, cgroup
 * programs through BPF_PROG_ATTACH, kprobes through perf_event_open or legacy tracefs. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/perf_event.h>
#include <elf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

const char *g_op = "request";
pid_t g_agent_pid;
bool g_in_child;

/* ---------- errors ---------- */

static char g_errmsg[4096];
static int g_errno;
static struct jbuf g_log;       /* libbpf output captured during the current request */
static bool g_verbose, g_debug;
/* Set by the keep op: when the host goes away, hold everything instead of cleaning up. */
static bool g_keep;

const char *errstr(int err)
{
	static char buf[64];
	switch (err) {
	case 524: return "Operation not supported (ENOTSUPP)";
	case 512: return "Restart syscall (ERESTARTSYS)";
	case 515: return "Operation not supported (ENOIOCTLCMD)";
	default: break;
	}
	if (err > 0 && err < 4096) {
		const char *s = strerror(err);
		if (s && strncmp(s, "Unknown error", 13) != 0)
			return s;
	}
	snprintf(buf, sizeof(buf), "error %d", err);
	return buf;
}

static int vfail(int err, bool with_str, const char *fmt, va_list ap)
{
	int n = snprintf(g_errmsg, sizeof(g_errmsg), "%s: ", g_op);
	if (n < 0 || (size_t)n >= sizeof(g_errmsg))
		n = 0;
	vsnprintf(g_errmsg + n, sizeof(g_errmsg) - (size_t)n, fmt, ap);
	if (with_str) {
		size_t l = strlen(g_errmsg);
		snprintf(g_errmsg + l, sizeof(g_errmsg) - l, ": %s", errstr(err));
	}
	g_errno = err < 0 ? -err : err;
	return -1;
}

int fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err < 0)
		err = -err;
	vfail(err, true, fmt, ap);
	va_end(ap);
	return -1;
}

int failx(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(err, false, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_raw(int err, const char *msg)
{
	snprintf(g_errmsg, sizeof(g_errmsg), "%s", msg);
	g_errno = err < 0 ? -err : err;
	return -1;
}

const char *err_msg(void) { return g_errmsg; }
int err_errno(void) { return g_errno; }

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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

/* ---------- request fields ---------- */

static const struct jfield *field(const struct req *r, const char *key)
{
	const struct jfield *f = json_get(&r->o, key);
	if (f && f->type == J_NULL)
		return NULL;
	return f;
}

int req_str(const struct req *r, const char *key, const char **out, const char *def)
{
	*out = def ? def : "";
	const struct jfield *f = field(r, key);
	if (!f) {
		if (!def)
			return failx(EINVAL, "missing field \"%s\"", key);
		*out = def;
		return 0;
	}
	if (f->type != J_STR)
		return failx(EINVAL, "field \"%s\" must be a string", key);
	if (strlen(f->s) != f->slen)
		return failx(EINVAL, "field \"%s\" must not contain NUL characters", key);
	*out = f->s;
	return 0;
}

int req_str_opt(const struct req *r, const char *key, const char **out)
{
	const struct jfield *f = field(r, key);
	*out = NULL;
	if (!f)
		return 0;
	if (f->type != J_STR)
		return failx(EINVAL, "field \"%s\" must be a string", key);
	if (strlen(f->s) != f->slen)
		return failx(EINVAL, "field \"%s\" must not contain NUL characters", key);
	*out = f->s;
	return 0;
}

int req_bytes(const struct req *r, const char *key, const char **out, size_t *len)
{
	*out = "";
	*len = 0;
	const struct jfield *f = field(r, key);
	if (!f)
		return failx(EINVAL, "missing field \"%s\"", key);
	if (f->type != J_STR)
		return failx(EINVAL, "field \"%s\" must be a string", key);
	*out = f->s;
	*len = f->slen;
	return 0;
}

int req_int(const struct req *r, const char *key, long long *out, long long def, bool required,
	    long long min, long long max)
{
	*out = def;
	const struct jfield *f = field(r, key);
	if (!f) {
		if (required)
			return failx(EINVAL, "missing field \"%s\"", key);
		*out = def;
		return 0;
	}
	long long v;
	if (f->type == J_INT) {
		v = f->i;
	} else if (f->type == J_NUM && f->d == (double)f->i) {
		v = f->i;
	} else if (f->type == J_STR && f->slen > 0) {
		/* tolerate numeric strings ("9") */
		char *end;
		errno = 0;
		v = strtoll(f->s, &end, 0);
		if (*end || errno)
			return failx(EINVAL, "field \"%s\" must be an integer", key);
	} else {
		return failx(EINVAL, "field \"%s\" must be an integer", key);
	}
	if (v < min || v > max)
		return failx(EINVAL, "field \"%s\" is %lld, must be in %lld..%lld", key, v, min, max);
	*out = v;
	return 0;
}

int req_bool(const struct req *r, const char *key, bool *out, bool def)
{
	*out = def;
	const struct jfield *f = field(r, key);
	if (!f) {
		*out = def;
		return 0;
	}
	if (f->type == J_BOOL || f->type == J_INT) {
		*out = f->i != 0;
		return 0;
	}
	return failx(EINVAL, "field \"%s\" must be a boolean", key);
}

static int req_hex(const struct req *r, const char *key, uint8_t **buf, size_t *n)
{
	*buf = NULL;
	*n = 0;
	const char *s;
	size_t len;
	if (req_bytes(r, key, &s, &len))
		return -1;
	uint8_t *b = malloc(len / 2 + 1);
	if (!b)
		return fail(ENOMEM, "field \"%s\"", key);
	long got = hex_decode(s, len, b);
	if (got < 0) {
		free(b);
		return failx(EINVAL, "field \"%s\" must be an even-length hex string", key);
	}
	*buf = b;
	*n = (size_t)got;
	return 0;
}

/* ---------- network namespaces ---------- */

static int g_orig_netns = -1;
static bool g_in_netns;

const char *ns_label(const char *name)
{
	static char buf[300];
	if (!name || !*name)
		return "own netns";
	snprintf(buf, sizeof(buf), "netns %s", name);
	return buf;
}

/* An fd of a network namespace: an absolute path, or a name under /var/run/netns (or /run/netns);
 * -1 with the error set when there is none. */
int ns_open(const char *name)
{
	char path[PATH_MAX];
	if (name[0] == '/') {
		snprintf(path, sizeof(path), "%s", name);
	} else {
		if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			return failx(EINVAL, "bad netns name \"%s\"", name);
		snprintf(path, sizeof(path), "/var/run/netns/%s", name);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && name[0] != '/') {
		/* iproute2 built with NETNS_RUN_DIR=/run/netns, on a root where /var/run is no symlink */
		char alt[PATH_MAX];
		snprintf(alt, sizeof(alt), "/run/netns/%s", name);
		fd = open(alt, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			errno = ENOENT;
	}
	if (fd < 0)
		return fail(errno, "netns %s: open %s", name, path);
	return fd;
}

int ns_enter(const char *name)
{
	if (!name || !*name)
		return 0;
	int fd = ns_open(name);
	if (fd < 0)
		return -1;
	if (setns(fd, CLONE_NEWNET) < 0) {
		int e = errno;
		close(fd);
		return fail(e, "netns %s: setns", name);
	}
	close(fd);
	g_in_netns = true;
	return 0;
}

void ns_leave(void)
{
	if (!g_in_netns)
		return;
	if (setns(g_orig_netns, CLONE_NEWNET) < 0) {
		fprintf(stderr, "bpf-agent: cannot return to the original network namespace: %s\n", strerror(errno));
		_exit(70);
	}
	g_in_netns = false;
}

/* ---------- objects, links and attachments ---------- */

struct aobj {
	char *name;
	char *path;
	struct bpf_object *obj;
	struct aobj *next;
};

struct alink {
	int id;
	struct aobj *owner;
	int n;
	struct bpf_link **l;
	int rawfd;          /* a link made with BPF_LINK_CREATE directly (tcx), or -1 */
	struct alink *next;
};

struct xdp_rec {
	struct aobj *owner;
	char *netns, *ifname;
	uint32_t flags;     /* the mode flag actually used */
	uint32_t prog_id;
	struct xdp_rec *next;
};

struct cg_rec {
	struct aobj *owner;
	int prog_fd;
	int target_fd;
	bool own_target;    /* target_fd is a cgroup dir fd we opened */
	enum bpf_attach_type type;
	struct cg_rec *next;
};

static struct aobj *g_objs;
static struct alink *g_links;
static int g_next_link = 1;
static struct xdp_rec *g_xdp;
static struct cg_rec *g_cg;

struct bpf_object *aobj_obj(struct aobj *o) { return o->obj; }
const char *aobj_name(struct aobj *o) { return o->name; }

static struct aobj *obj_find(const char *name)
{
	for (struct aobj *o = g_objs; o; o = o->next)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

int req_obj(const struct req *r, struct aobj **out)
{
	*out = NULL;
	const char *name;
	if (req_str(r, "obj", &name, NULL))
		return -1;
	struct aobj *o = obj_find(name);
	if (!o)
		return failx(ENOENT, "unknown obj \"%s\" (not loaded)", name);
	*out = o;
	return 0;
}

int req_prog(const struct req *r, struct aobj *o, struct bpf_program **out, int *fd)
{
	*out = NULL;
	if (fd)
		*fd = -1;
	const char *name;
	if (req_str(r, "prog", &name, NULL))
		return -1;
	struct bpf_program *p = bpf_object__find_program_by_name(o->obj, name);
	if (!p)
		return failx(ENOENT, "obj %s has no program \"%s\"", o->name, name);
	int pfd = bpf_program__fd(p);
	if (pfd < 0)
		return failx(EBADF, "obj %s: program %s is not loaded", o->name, name);
	*out = p;
	if (fd)
		*fd = pfd;
	return 0;
}

static int req_map(const struct req *r, struct aobj *o, const char *key, struct bpf_map **out)
{
	*out = NULL;
	const char *name;
	if (req_str(r, key, &name, NULL))
		return -1;
	struct bpf_map *m = bpf_object__find_map_by_name(o->obj, name);
	if (!m)
		return failx(ENOENT, "obj %s has no map \"%s\"", o->name, name);
	if (bpf_map__fd(m) < 0)
		return failx(EBADF, "obj %s: map %s was not created", o->name, name);
	*out = m;
	return 0;
}

static void link_free(struct alink *l)
{
	for (int i = 0; i < l->n; i++)
		bpf_link__destroy(l->l[i]);
	if (l->rawfd >= 0)
		close(l->rawfd);
	free(l->l);
	free(l);
}

static void xdp_rec_free(struct xdp_rec *x)
{
	free(x->netns);
	free(x->ifname);
	free(x);
}

static void cg_rec_free(struct cg_rec *c)
{
	if (c->own_target)
		close(c->target_fd);
	free(c);
}

/* Detaches what the agent attached from this object (XDP only if still ours), then closes it. */
static void obj_release(struct aobj *o, bool detach_persistent)
{
	events_release_obj(o);
	for (struct alink **pl = &g_links; *pl;) {
		struct alink *l = *pl;
		if (l->owner == o) {
			*pl = l->next;
			link_free(l);
		} else {
			pl = &l->next;
		}
	}
	for (struct cg_rec **pc = &g_cg; *pc;) {
		struct cg_rec *c = *pc;
		if (c->owner == o) {
			if (detach_persistent)
				bpf_prog_detach2(c->prog_fd, c->target_fd, c->type);
			*pc = c->next;
			cg_rec_free(c);
		} else {
			pc = &c->next;
		}
	}
	for (struct xdp_rec **px = &g_xdp; *px;) {
		struct xdp_rec *x = *px;
		if (x->owner == o) {
			if (detach_persistent && ns_enter(x->netns) == 0) {
				unsigned int ifindex = if_nametoindex(x->ifname);
				LIBBPF_OPTS(bpf_xdp_query_opts, q);
				if (ifindex && bpf_xdp_query((int)ifindex, 0, &q) == 0 &&
				    (q.prog_id == x->prog_id || q.drv_prog_id == x->prog_id || q.skb_prog_id == x->prog_id))
					bpf_xdp_detach((int)ifindex, x->flags, NULL);
				ns_leave();
			}
			*px = x->next;
			xdp_rec_free(x);
		} else {
			px = &x->next;
		}
	}
	bpf_object__close(o->obj);
	free(o->name);
	free(o->path);
	free(o);
}

/* ---------- hello ---------- */

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

/* ---------- load / unload ---------- */

/* From libbpf's log after a failed load, pick "prog 'x'" and the verifier's last real message. */
static void summarize_load_failure(const char *log, char *prog, size_t plen, char *msg, size_t mlen)
{
	prog[0] = msg[0] = '\0';
	const char *end = strstr(log, "-- END PROG LOAD LOG --");
	const char *begin = NULL;
	if (end) {
		/* find the matching BEGIN before END */
		const char *p = log, *q;
		while ((q = strstr(p, "-- BEGIN PROG LOAD LOG --")) && q < end) {
			begin = q;
			p = q + 1;
		}
	}
	if (begin) {
		/* "libbpf: prog 'name': -- BEGIN ..." */
		const char *ls = begin;
		while (ls > log && ls[-1] != '\n')
			ls--;
		const char *pq = strstr(ls, "prog '");
		if (pq && pq < begin) {
			pq += 6;
			const char *pe = strchr(pq, '\'');
			if (pe && pe < begin) {
				size_t n = (size_t)(pe - pq) < plen - 1 ? (size_t)(pe - pq) : plen - 1;
				memcpy(prog, pq, n);
				prog[n] = '\0';
			}
		}
		/* walk lines backwards from END, skipping statistics lines; keep up to two message
		 * lines (e.g. "invalid access to packet, ..." followed by a hint), stopping at an
		 * instruction ("12: (61) ...") or source (";") line */
		const char *body = strchr(begin, '\n');
		const char *e = end;
		const char *lines[2];
		size_t lens[2];
		int nl = 0;
		while (body && e > body && nl < 2) {
			const char *le = e;
			while (le > body && (le[-1] == '\n' || le[-1] == ' '))
				le--;
			const char *lb = le;
			while (lb > body && lb[-1] != '\n')
				lb--;
			size_t n = (size_t)(le - lb);
			if (n == 0)
				break;
			e = lb;
			if (strncmp(lb, "processed ", 10) == 0 || strncmp(lb, "verification time", 17) == 0 ||
			    strncmp(lb, "stack depth", 11) == 0 || strncmp(lb, "max_states_per_insn", 19) == 0 ||
			    strncmp(lb, "peak_states", 11) == 0 || strncmp(lb, "mark_read", 9) == 0)
				continue;
			const char *d = lb;
			while (d < le && *d >= '0' && *d <= '9')
				d++;
			bool insn = (d > lb && d < le && *d == ':') || lb[0] == ';';
			if (insn && nl > 0)
				break;
			lines[nl] = lb;
			lens[nl] = n;
			nl++;
			if (insn)
				break;
		}
		size_t off = 0;
		for (int i = nl - 1; i >= 0; i--) {
			int w = snprintf(msg + off, mlen - off, "%s%.*s", off ? "; " : "", (int)lens[i], lines[i]);
			if (w < 0 || (size_t)w >= mlen - off) {
				msg[mlen - 1] = '\0';
				break;
			}
			off += (size_t)w;
		}
	}
}

/* LINUX_VERSION_CODE of the running kernel, from the vDSO's "Linux" ELF note (0 if unknown).
 * Kernels before 5.0 refuse kprobe programs whose kern_version differs from it, and uname's
 * release string does not always give it (distribution ABI numbers, sublevels above 255). */
static uint32_t vdso_linux_version(void)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)getauxval(AT_SYSINFO_EHDR);
	if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return 0;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_NOTE)
			continue;
		const char *p = (const char *)eh + ph[i].p_offset, *end = p + ph[i].p_filesz;
		while (p + sizeof(Elf64_Nhdr) <= end) {
			const Elf64_Nhdr *nh = (const Elf64_Nhdr *)p;
			const char *name = p + sizeof(*nh);
			const char *desc = name + ((nh->n_namesz + 3) & ~3u);
			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_namesz == 6 && memcmp(name, "Linux", 6) == 0 && nh->n_type == 0 && nh->n_descsz == 4) {
				uint32_t v;
				memcpy(&v, desc, 4);
				return v;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 0;
}

static int op_load(struct req *r, struct jbuf *out)
{
	const char *path, *name;
	if (req_str(r, "path", &path, NULL) || req_str_opt(r, "name", &name))
		return -1;
	char handle[256];
	if (name && *name) {
		if (obj_find(name))
			return failx(EEXIST, "obj handle \"%s\" is already in use (unload it first)", name);
		snprintf(handle, sizeof(handle), "%s", name);
	} else {
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		snprintf(handle, sizeof(handle), "%s", base);
		for (int i = 2; obj_find(handle); i++)
			snprintf(handle, sizeof(handle), "%s#%d", base, i);
	}
	if (access(path, R_OK) < 0)
		return fail(errno, "%s", path);

	/* No custom kernel log buffer: libbpf then loads with log_level 0, retries a failed load
	 * with its own (growing) buffer at log_level 1 and prints the verifier log through the
	 * print callback, which captures it for the response. */
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct bpf_object *obj = bpf_object__open_file(path, &oo);
	if (!obj)
		return fail(errno, "%s: open", path);
	static uint32_t kver;
	if (!kver)
		kver = vdso_linux_version();
	if (kver)
		bpf_object__set_kversion(obj, kver);
	int err = bpf_object__load(obj);
	if (err) {
		err = -err;
		char prog[128], vmsg[512];
		summarize_load_failure(g_log.p ? g_log.p : "", prog, sizeof(prog), vmsg, sizeof(vmsg));
		bpf_object__close(obj);
		if (prog[0] && vmsg[0])
			return failx(err, "%s: program %s rejected: %s: %s", path, prog, errstr(err), vmsg);
		if (prog[0])
			return fail(err, "%s: program %s failed to load", path, prog);
		return fail(err, "%s: load failed (see log)", path);
	}
	struct aobj *o = calloc(1, sizeof(*o));
	if (!o) {
		bpf_object__close(obj);
		return fail(ENOMEM, "%s", path);
	}
	o->name = strdup(handle);
	o->path = strdup(path);
	o->obj = obj;
	/* keep load order for listing */
	struct aobj **pp = &g_objs;
	while (*pp)
		pp = &(*pp)->next;
	*pp = o;

	jb_kstr(out, "obj", o->name);
	jb_key(out, "programs");
	jb_putc(out, '[');
	struct bpf_program *p;
	bool first = true;
	bpf_object__for_each_program(p, obj) {
		const char *t = libbpf_bpf_prog_type_str(bpf_program__type(p));
		jb_puts(out, first ? "{" : ",{");
		first = false;
		jb_puts(out, "\"name\":");
		jb_cstr(out, bpf_program__name(p));
		jb_puts(out, ",\"section\":");
		jb_cstr(out, bpf_program__section_name(p));
		jb_puts(out, ",\"type\":");
		jb_cstr(out, t ? t : "unknown");
		/* the id the kernel gave the loaded program (bpftool and netlink report it) */
		struct bpf_prog_info info;
		uint32_t ilen = sizeof(info);
		memset(&info, 0, sizeof(info));
		if (bpf_program__fd(p) >= 0 && bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &ilen) == 0)
			jb_printf(out, ",\"id\":%u", info.id);
		jb_putc(out, '}');
	}
	jb_putc(out, ']');
	jb_key(out, "maps");
	jb_putc(out, '[');
	struct bpf_map *m;
	first = true;
	bpf_object__for_each_map(m, obj) {
		const char *t = libbpf_bpf_map_type_str(bpf_map__type(m));
		jb_puts(out, first ? "{" : ",{");
		first = false;
		jb_puts(out, "\"name\":");
		jb_cstr(out, bpf_map__name(m));
		jb_puts(out, ",\"type\":");
		jb_cstr(out, t ? t : "unknown");
		jb_printf(out, ",\"keySize\":%u,\"valueSize\":%u,\"maxEntries\":%u}", bpf_map__key_size(m),
			  bpf_map__value_size(m), bpf_map__max_entries(m));
	}
	jb_putc(out, ']');
	return 0;
}

static int op_unload(struct req *r, struct jbuf *out)
{
	(void)out;
	struct aobj *o;
	if (req_obj(r, &o))
		return -1;
	for (struct aobj **pp = &g_objs; *pp; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	}
	obj_release(o, true);
	return 0;
}

/* ---------- XDP ---------- */

static int xdp_mode_flags(const char *mode, uint32_t *flags)
{
	if (strcmp(mode, "generic") == 0 || strcmp(mode, "skb") == 0)
		*flags = XDP_FLAGS_SKB_MODE;
	else if (strcmp(mode, "native") == 0 || strcmp(mode, "drv") == 0)
		*flags = XDP_FLAGS_DRV_MODE;
	else if (strcmp(mode, "any") == 0)
		*flags = 0;
	else
		return failx(EINVAL, "bad mode \"%s\" (generic, native or any)", mode);
	return 0;
}

static uint32_t prog_id_of(int fd)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

static int op_attach_xdp(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_program *p;
	int pfd;
	const char *ifname, *netns, *mode;
	uint32_t flags;
	if (req_obj(r, &o) || req_prog(r, o, &p, &pfd) || req_str(r, "ifname", &ifname, NULL) ||
	    req_str(r, "netns", &netns, "") || req_str(r, "mode", &mode, "any") || xdp_mode_flags(mode, &flags))
		return -1;
	const char *pname = bpf_program__name(p);
	if (ns_enter(netns))
		return -1;
	int rc = -1;
	unsigned int ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		fail(errno ? errno : ENODEV, "prog %s: ifindex for %s in %s", pname, ifname, ns_label(netns));
		goto out;
	}
	uint32_t used;
	if (flags) {
		int err = bpf_xdp_attach((int)ifindex, pfd, flags, NULL);
		if (err) {
			fail(-err, "prog %s: attach to %s in %s (%s mode)", pname, ifname, ns_label(netns),
			     flags == XDP_FLAGS_SKB_MODE ? "generic" : "native");
			goto out;
		}
		used = flags;
	} else {
		int err = bpf_xdp_attach((int)ifindex, pfd, XDP_FLAGS_DRV_MODE, NULL);
		used = XDP_FLAGS_DRV_MODE;
		if (err) {
			int err2 = bpf_xdp_attach((int)ifindex, pfd, XDP_FLAGS_SKB_MODE, NULL);
			used = XDP_FLAGS_SKB_MODE;
			if (err2) {
				fail(-err2, "prog %s: attach to %s in %s (native: %s; generic)", pname, ifname,
				     ns_label(netns), errstr(-err));
				goto out;
			}
		}
	}
	/* replace an older record for the same device */
	for (struct xdp_rec **px = &g_xdp; *px;) {
		struct xdp_rec *x = *px;
		if (strcmp(x->ifname, ifname) == 0 && strcmp(x->netns, netns) == 0) {
			*px = x->next;
			xdp_rec_free(x);
		} else {
			px = &x->next;
		}
	}
	struct xdp_rec *x = calloc(1, sizeof(*x));
	if (x) {
		x->owner = o;
		x->netns = strdup(netns);
		x->ifname = strdup(ifname);
		x->flags = used;
		x->prog_id = prog_id_of(pfd);
		x->next = g_xdp;
		g_xdp = x;
	}
	jb_kstr(out, "mode", used == XDP_FLAGS_SKB_MODE ? "generic" : "native");
	rc = 0;
out:
	ns_leave();
	return rc;
}

static int op_detach_xdp(struct req *r, struct jbuf *out)
{
	(void)out;
	const char *ifname, *netns, *mode;
	uint32_t flags;
	if (req_str(r, "ifname", &ifname, NULL) || req_str(r, "netns", &netns, "") ||
	    req_str(r, "mode", &mode, "any") || xdp_mode_flags(mode, &flags))
		return -1;
	if (ns_enter(netns))
		return -1;
	int rc = -1;
	unsigned int ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		fail(errno ? errno : ENODEV, "ifindex for %s in %s", ifname, ns_label(netns));
		goto out;
	}
	if (flags) {
		int err = bpf_xdp_detach((int)ifindex, flags, NULL);
		if (err) {
			fail(-err, "detach from %s in %s", ifname, ns_label(netns));
			goto out;
		}
	} else {
		/* "any": detach whatever mode is attached */
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		int err = bpf_xdp_query((int)ifindex, 0, &q);
		if (err) {
			fail(-err, "query XDP on %s in %s", ifname, ns_label(netns));
			goto out;
		}
		uint32_t modes[2] = { 0, 0 };
		int nm = 0;
		switch (q.attach_mode) {
		case XDP_ATTACHED_DRV: modes[nm++] = XDP_FLAGS_DRV_MODE; break;
		case XDP_ATTACHED_SKB: modes[nm++] = XDP_FLAGS_SKB_MODE; break;
		case XDP_ATTACHED_HW: modes[nm++] = XDP_FLAGS_HW_MODE; break;
		case XDP_ATTACHED_MULTI:
			if (q.drv_prog_id)
				modes[nm++] = XDP_FLAGS_DRV_MODE;
			if (q.skb_prog_id)
				modes[nm++] = XDP_FLAGS_SKB_MODE;
			break;
		default: break;
		}
		for (int i = 0; i < nm; i++) {
			err = bpf_xdp_detach((int)ifindex, modes[i], NULL);
			if (err) {
				fail(-err, "detach from %s in %s", ifname, ns_label(netns));
				goto out;
			}
		}
	}
	for (struct xdp_rec **px = &g_xdp; *px;) {
		struct xdp_rec *x = *px;
		if (strcmp(x->ifname, ifname) == 0 && strcmp(x->netns, netns) == 0 && (!flags || flags == x->flags)) {
			*px = x->next;
			xdp_rec_free(x);
		} else {
			px = &x->next;
		}
	}
	rc = 0;
out:
	ns_leave();
	return rc;
}

/* ---------- maps ---------- */

static bool map_is_percpu(enum bpf_map_type t)
{
	return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       t == BPF_MAP_TYPE_LRU_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

struct mapctx {
	struct aobj *o;
	struct bpf_map *m;
	const char *name;
	int fd;
	uint32_t ks, vs;
	bool percpu;
	int ncpus;
	size_t vbuf;        /* size of a value buffer for lookup */
};

/*
 * Maps pinned in bpffs by another loader (tc, ip) are opened by path and kept open until
 * `reset`: a request names them with "pin" instead of "obj" + "map".
 */
#define MAX_PINNED 64
static struct pinned {
	char path[256];
	int fd;
	struct bpf_map_info info;
} g_pinned[MAX_PINNED];
static int g_npinned;

static struct pinned *pinned_open(const char *path)
{
	for (int i = 0; i < g_npinned; i++)
		if (strcmp(g_pinned[i].path, path) == 0)
			return &g_pinned[i];
	if (g_npinned == MAX_PINNED) {
		failx(EMFILE, "more than %d pinned maps open; send reset", MAX_PINNED);
		return NULL;
	}
	if (strlen(path) >= sizeof(g_pinned[0].path)) {
		failx(ENAMETOOLONG, "pin %s: path too long", path);
		return NULL;
	}
	struct pinned *p = &g_pinned[g_npinned];
	memset(p, 0, sizeof(*p));
	p->fd = bpf_obj_get(path);
	if (p->fd < 0) {
		fail(errno, "pin %s: bpf_obj_get", path);
		return NULL;
	}
	uint32_t len = sizeof(p->info);
	if (bpf_obj_get_info_by_fd(p->fd, &p->info, &len)) {
		fail(errno, "pin %s: not a map, or no map info", path);
		close(p->fd);
		return NULL;
	}
	snprintf(p->path, sizeof(p->path), "%s", path);
	g_npinned++;
	return p;
}

static void pinned_close_all(void)
{
	for (int i = 0; i < g_npinned; i++)
		close(g_pinned[i].fd);
	g_npinned = 0;
}

static int req_mapctx(const struct req *r, struct mapctx *c)
{
	const char *pin = NULL;
	memset(c, 0, sizeof(*c));
	if (req_str_opt(r, "pin", &pin))
		return -1;
	if (pin) {
		struct pinned *p = pinned_open(pin);
		if (!p)
			return -1;
		c->name = p->path;
		c->fd = p->fd;
		c->ks = p->info.key_size;
		c->vs = p->info.value_size;
		c->percpu = map_is_percpu(p->info.type);
	} else {
		if (req_obj(r, &c->o) || req_map(r, c->o, "map", &c->m))
			return -1;
		c->name = bpf_map__name(c->m);
		c->fd = bpf_map__fd(c->m);
		c->ks = bpf_map__key_size(c->m);
		c->vs = bpf_map__value_size(c->m);
		c->percpu = map_is_percpu(bpf_map__type(c->m));
	}
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus < 1)
		c->ncpus = 1;
	c->vbuf = c->percpu ? (size_t)c->ncpus * ((c->vs + 7) / 8 * 8) : c->vs;
	if (c->vbuf == 0)
		c->vbuf = 1;
	return 0;
}

static int map_key(const struct req *r, struct mapctx *c, uint8_t **key)
{
	size_t n = 0;
	if (req_hex(r, "key", key, &n))
		return -1;
	if (n != c->ks) {
		free(*key);
		*key = NULL;
		return failx(EINVAL, "map %s: key is %zu bytes, key_size is %u", c->name, n, c->ks);
	}
	return 0;
}

static void put_value(struct jbuf *out, struct mapctx *c, const uint8_t *val, bool found)
{
	if (!c->percpu) {
		jb_key(out, "value");
		if (found)
			jb_hex(out, val, c->vs);
		else
			jb_puts(out, "null");
		return;
	}
	jb_kstr(out, "value", NULL);
	if (!found)
		return;
	size_t stride = (c->vs + 7) / 8 * 8;
	jb_key(out, "values");
	jb_putc(out, '[');
	for (int i = 0; i < c->ncpus; i++) {
		if (i)
			jb_putc(out, ',');
		jb_hex(out, val + (size_t)i * stride, c->vs);
	}
	jb_putc(out, ']');
}

static int op_map_lookup(struct req *r, struct jbuf *out)
{
	struct mapctx c;
	uint8_t *key = NULL;
	if (req_mapctx(r, &c) || map_key(r, &c, &key))
		return -1;
	uint8_t *val = calloc(1, c.vbuf);
	int rc = 0;
	if (!val) {
		free(key);
		return fail(ENOMEM, "map %s", c.name);
	}
	if (bpf_map_lookup_elem(c.fd, key, val) == 0) {
		put_value(out, &c, val, true);
	} else if (errno == ENOENT) {
		put_value(out, &c, val, false);
	} else {
		rc = fail(errno, "map %s: lookup", c.name);
	}
	free(key);
	free(val);
	return rc;
}

static int op_map_update(struct req *r, struct jbuf *out)
{
	(void)out;
	struct mapctx c;
	uint8_t *key = NULL, *val = NULL, *buf = NULL;
	size_t vn;
	long long flags;
	const char *netns;
	if (req_mapctx(r, &c) || req_int(r, "flags", &flags, BPF_ANY, false, 0, 0xffffffffll) ||
	    req_str(r, "netns", &netns, "") || map_key(r, &c, &key))
		return -1;
	if (req_hex(r, "value", &val, &vn)) {
		free(key);
		return -1;
	}
	int rc = 0;
	const void *v = val;
	if (c.percpu) {
		size_t stride = (c.vs + 7) / 8 * 8;
		buf = calloc(1, c.vbuf);
		if (!buf) {
			rc = fail(ENOMEM, "map %s", c.name);
			goto out;
		}
		if (vn == c.vs) {
			for (int i = 0; i < c.ncpus; i++)
				memcpy(buf + (size_t)i * stride, val, c.vs);
		} else if (vn == (size_t)c.ncpus * c.vs) {
			for (int i = 0; i < c.ncpus; i++)
				memcpy(buf + (size_t)i * stride, val + (size_t)i * c.vs, c.vs);
		} else if (vn == c.vbuf) {
			memcpy(buf, val, vn);
		} else {
			rc = failx(EINVAL, "map %s: per-CPU value is %zu bytes; give value_size %u (same on every CPU) or %d x %u bytes",
				   c.name, vn, c.vs, c.ncpus, c.vs);
			goto out;
		}
		v = buf;
	} else if (vn != c.vs) {
		rc = failx(EINVAL, "map %s: value is %zu bytes, value_size is %u", c.name, vn, c.vs);
		goto out;
	}
	/* A devmap (and the like) resolves the ifindex in the updater's network namespace. */
	if (ns_enter(netns)) {
		rc = -1;
		goto out;
	}
	if (bpf_map_update_elem(c.fd, key, v, (uint64_t)flags))
		rc = fail(errno, "map %s: update in %s", c.name, ns_label(netns));
	ns_leave();
out:
	free(key);
	free(val);
	free(buf);
	return rc;
}

static int op_map_delete(struct req *r, struct jbuf *out)
{
	(void)out;
	struct mapctx c;
	uint8_t *key = NULL;
	if (req_mapctx(r, &c) || map_key(r, &c, &key))
		return -1;
	int rc = 0;
	if (bpf_map_delete_elem(c.fd, key))
		rc = fail(errno, "map %s: delete", c.name);
	free(key);
	return rc;
}

static int op_map_dump(struct req *r, struct jbuf *out)
{
	struct mapctx c;
	if (req_mapctx(r, &c))
		return -1;
	size_t kmax = c.ks ? c.ks : 1;
	uint8_t *key = calloc(1, kmax), *next = calloc(1, kmax), *val = calloc(1, c.vbuf);
	int rc = 0;
	if (!key || !next || !val) {
		rc = fail(ENOMEM, "map %s", c.name);
		goto out;
	}
	size_t start = out->len;
	jb_key(out, "entries");
	jb_putc(out, '[');
	bool first = true, have = false;
	long guard = 0;
	for (;;) {
		if (bpf_map_get_next_key(c.fd, have ? key : NULL, next)) {
			if (errno == ENOENT)
				break;
			out->len = start;
			rc = fail(errno, "map %s: get_next_key", c.name);
			goto out;
		}
		memcpy(key, next, c.ks);
		have = true;
		if (++guard > 100000000)
			break;
		if (bpf_map_lookup_elem(c.fd, key, val)) {
			if (errno == ENOENT)
				continue;
			out->len = start;
			rc = fail(errno, "map %s: lookup", c.name);
			goto out;
		}
		jb_puts(out, first ? "{\"key\":" : ",{\"key\":");
		first = false;
		jb_hex(out, key, c.ks);
		if (c.percpu) {
			size_t stride = (c.vs + 7) / 8 * 8;
			jb_puts(out, ",\"values\":[");
			for (int i = 0; i < c.ncpus; i++) {
				if (i)
					jb_putc(out, ',');
				jb_hex(out, val + (size_t)i * stride, c.vs);
			}
			jb_puts(out, "]}");
		} else {
			jb_puts(out, ",\"value\":");
			jb_hex(out, val, c.vs);
			jb_putc(out, '}');
		}
	}
	jb_putc(out, ']');
out:
	if (out->p)
		out->p[out->len] = '\0';
	free(key);
	free(next);
	free(val);
	return rc;
}

/* ---------- cgroup / sockmap attachments (BPF_PROG_ATTACH) ---------- */

static const struct {
	const char *name;
	enum bpf_attach_type type;
	bool map_target;
} g_attach_types[] = {
	{ "cgroup_inet_ingress", BPF_CGROUP_INET_INGRESS, false },
	{ "cgroup_inet_egress", BPF_CGROUP_INET_EGRESS, false },
	{ "cgroup_inet_sock_create", BPF_CGROUP_INET_SOCK_CREATE, false },
	{ "cgroup_sock_ops", BPF_CGROUP_SOCK_OPS, false },
	{ "sk_skb_stream_verdict", BPF_SK_SKB_STREAM_VERDICT, true },
	{ "sk_skb_stream_parser", BPF_SK_SKB_STREAM_PARSER, true },
	{ "sk_msg_verdict", BPF_SK_MSG_VERDICT, true },
	/* cgroup sock_addr hooks (4.17; recvmsg 5.2) */
	{ "cgroup_inet4_bind", BPF_CGROUP_INET4_BIND, false },
	{ "cgroup_inet6_bind", BPF_CGROUP_INET6_BIND, false },
	{ "cgroup_inet4_connect", BPF_CGROUP_INET4_CONNECT, false },
	{ "cgroup_inet6_connect", BPF_CGROUP_INET6_CONNECT, false },
	{ "cgroup_udp4_sendmsg", BPF_CGROUP_UDP4_SENDMSG, false },
	{ "cgroup_udp6_sendmsg", BPF_CGROUP_UDP6_SENDMSG, false },
	{ "cgroup_udp4_recvmsg", BPF_CGROUP_UDP4_RECVMSG, false },
	{ "cgroup_udp6_recvmsg", BPF_CGROUP_UDP6_RECVMSG, false },
};

struct cgctx {
	struct aobj *o;
	struct bpf_program *p;
	int prog_fd;
	enum bpf_attach_type type;
	bool map_target;
	const char *target;   /* cgroup path or map name */
	int target_fd;
	bool own_fd;
	long long flags;
};

static int req_cgctx(const struct req *r, struct cgctx *c)
{
	memset(c, 0, sizeof(*c));
	c->target_fd = -1;
	const char *at;
	if (req_obj(r, &c->o) || req_prog(r, c->o, &c->p, &c->prog_fd) || req_str(r, "attachType", &at, NULL) ||
	    req_int(r, "flags", &c->flags, 0, false, 0, 0xffffffffll))
		return -1;
	size_t i;
	for (i = 0; i < sizeof(g_attach_types) / sizeof(g_attach_types[0]); i++)
		if (strcmp(g_attach_types[i].name, at) == 0)
			break;
	if (i == sizeof(g_attach_types) / sizeof(g_attach_types[0]))
		return failx(EINVAL, "unknown attachType \"%s\"", at);
	c->type = g_attach_types[i].type;
	c->map_target = g_attach_types[i].map_target;
	if (c->map_target) {
		struct bpf_map *m;
		if (req_map(r, c->o, "map", &m))
			return -1;
		c->target = bpf_map__name(m);
		c->target_fd = bpf_map__fd(m);
	} else {
		if (req_str(r, "cgroup", &c->target, NULL))
			return -1;
		c->target_fd = open(c->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->target_fd < 0)
			return fail(errno, "prog %s: open cgroup %s", bpf_program__name(c->p), c->target);
		c->own_fd = true;
	}
	return 0;
}

static int op_attach_cgroup(struct req *r, struct jbuf *out)
{
	(void)out;
	struct cgctx c;
	if (req_cgctx(r, &c))
		return -1;
	if (bpf_prog_attach(c.prog_fd, c.target_fd, c.type, (unsigned int)c.flags)) {
		int e = errno;
		if (c.own_fd)
			close(c.target_fd);
		return fail(e, "prog %s: attach to %s %s", bpf_program__name(c.p), c.map_target ? "map" : "cgroup", c.target);
	}
	struct cg_rec *rec = calloc(1, sizeof(*rec));
	if (!rec) {
		if (c.own_fd)
			close(c.target_fd);
		return 0;
	}
	rec->owner = c.o;
	rec->prog_fd = c.prog_fd;
	rec->target_fd = c.target_fd;
	rec->own_target = c.own_fd;
	rec->type = c.type;
	rec->next = g_cg;
	g_cg = rec;
	return 0;
}

static int op_detach_cgroup(struct req *r, struct jbuf *out)
{
	(void)out;
	struct cgctx c;
	if (req_cgctx(r, &c))
		return -1;
	int rc = 0;
	if (bpf_prog_detach2(c.prog_fd, c.target_fd, c.type))
		rc = fail(errno, "prog %s: detach from %s %s", bpf_program__name(c.p), c.map_target ? "map" : "cgroup",
			  c.target);
	/* forget the matching record (same prog, same type, same target) */
	struct stat st1, st2;
	bool have_st = fstat(c.target_fd, &st1) == 0;
	for (struct cg_rec **pc = &g_cg; *pc;) {
		struct cg_rec *x = *pc;
		bool same_target = x->target_fd == c.target_fd ||
				   (have_st && fstat(x->target_fd, &st2) == 0 && st1.st_dev == st2.st_dev && st1.st_ino == st2.st_ino);
		if (x->prog_fd == c.prog_fd && x->type == c.type && same_target) {
			*pc = x->next;
			cg_rec_free(x);
		} else {
			pc = &x->next;
		}
	}
	if (c.own_fd)
		close(c.target_fd);
	return rc;
}

/* ---------- kprobes, tracepoints, perf events ---------- */

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

static struct alink *link_new(struct aobj *o, int n)
{
	struct alink *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->l = calloc((size_t)(n > 0 ? n : 1), sizeof(*l->l));
	if (!l->l) {
		free(l);
		return NULL;
	}
	l->owner = o;
	l->rawfd = -1;
	return l;
}

static void link_register(struct alink *l)
{
	l->id = g_next_link++;
	l->next = g_links;
	g_links = l;
}

static int op_attach_kprobe(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_program *p;
	const char *func;
	bool retprobe;
	if (req_obj(r, &o) || req_prog(r, o, &p, NULL) || req_str(r, "func", &func, NULL) ||
	    req_bool(r, "retprobe", &retprobe, false))
		return -1;
	bool legacy = access("/sys/bus/event_source/devices/kprobe/type", R_OK) != 0;
	if (legacy) {
		ensure_tracefs();
		if (access("/sys/kernel/debug/tracing/kprobe_events", F_OK) != 0 &&
		    access("/sys/kernel/tracing/kprobe_events", F_OK) != 0)
			return failx(EOPNOTSUPP, "prog %s: %s on %s: kernel has no kprobe support (no kprobe PMU in "
				     "/sys/bus/event_source/devices and no kprobe_events in tracefs)%s",
				     bpf_program__name(p), retprobe ? "kretprobe" : "kprobe", func,
				     kallsyms_has(func) ? "" : "; the function is not in /proc/kallsyms either");
	}
	struct alink *l = link_new(o, 1);
	if (!l)
		return fail(ENOMEM, "prog %s", bpf_program__name(p));
	LIBBPF_OPTS(bpf_kprobe_opts, ko, .retprobe = retprobe);
	struct bpf_link *bl = bpf_program__attach_kprobe_opts(p, func, &ko);
	if (!bl) {
		int e = errno;
		link_free(l);
		/* the kernel's own errno, with what /proc/kallsyms says about the function */
		if (!kallsyms_has(func))
			return failx(e, "prog %s: %s on %s: no such function in /proc/kallsyms (%s)",
				     bpf_program__name(p), retprobe ? "kretprobe" : "kprobe", func, errstr(e));
		return fail(e, "prog %s: %s on %s%s", bpf_program__name(p), retprobe ? "kretprobe" : "kprobe", func,
			    legacy ? " (legacy tracefs kprobe_events)" : "");
	}
	l->l[0] = bl;
	l->n = 1;
	link_register(l);
	jb_kint(out, "link", l->id);
	jb_kbool(out, "legacy", legacy);
	return 0;
}

/*
 * uprobes and uretprobes on a function of an ELF binary in the guest (symbol from its symbol
 * table, resolved by libbpf), in every process (pid -1) or one: through the uprobe PMU (4.17), or
 * tracefs uprobe_events where the kernel has none.
 */
static int op_attach_uprobe(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_program *p;
	const char *binary, *func;
	bool retprobe;
	long long pid;
	if (req_obj(r, &o) || req_prog(r, o, &p, NULL) || req_str(r, "binary", &binary, NULL) ||
	    req_str(r, "func", &func, NULL) || req_bool(r, "retprobe", &retprobe, false) ||
	    req_int(r, "pid", &pid, -1, false, -1, INT_MAX))
		return -1;
	bool legacy = access("/sys/bus/event_source/devices/uprobe/type", R_OK) != 0;
	if (legacy)
		ensure_tracefs();
	struct alink *l = link_new(o, 1);
	if (!l)
		return fail(ENOMEM, "prog %s", bpf_program__name(p));
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = func, .retprobe = retprobe);
	struct bpf_link *bl = bpf_program__attach_uprobe_opts(p, (pid_t)pid, binary, 0, &uo);
	if (!bl) {
		int e = errno;
		link_free(l);
		return fail(e, "prog %s: %s on %s:%s%s", bpf_program__name(p), retprobe ? "uretprobe" : "uprobe", binary, func,
			    legacy ? " (legacy tracefs uprobe_events)" : "");
	}
	l->l[0] = bl;
	l->n = 1;
	link_register(l);
	jb_kint(out, "link", l->id);
	jb_kbool(out, "legacy", legacy);
	return 0;
}

/*
 * kprobe_multi (5.18): one link on many kernel functions (fprobe). `syms` is a comma-separated
 * list; the i-th function gets BPF cookie i + 1, which the program reads with
 * bpf_get_attach_cookie to tell the functions apart.
 */
#define MAX_MULTI 64
static int op_attach_kprobe_multi(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_program *p;
	const char *list;
	bool retprobe;
	if (req_obj(r, &o) || req_prog(r, o, &p, NULL) || req_str(r, "syms", &list, NULL) ||
	    req_bool(r, "retprobe", &retprobe, false))
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
	struct alink *l = link_new(o, 1);
	if (!l) {
		free(copy);
		return fail(ENOMEM, "prog %s", bpf_program__name(p));
	}
	LIBBPF_OPTS(bpf_kprobe_multi_opts, ko, .syms = syms, .cookies = cookies, .cnt = n, .retprobe = retprobe);
	struct bpf_link *bl = bpf_program__attach_kprobe_multi_opts(p, NULL, &ko);
	int e = errno;
	free(copy);
	if (!bl) {
		link_free(l);
		return fail(e, "prog %s: %s on %zu functions (%s)", bpf_program__name(p),
			    retprobe ? "kretprobe.multi" : "kprobe.multi", n, list);
	}
	l->l[0] = bl;
	l->n = 1;
	link_register(l);
	jb_kint(out, "link", l->id);
	jb_kint(out, "functions", (long long)n);
	return 0;
}

static int op_attach_tracepoint(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_program *p;
	const char *cat, *name;
	if (req_obj(r, &o) || req_prog(r, o, &p, NULL) || req_str(r, "category", &cat, NULL) ||
	    req_str(r, "name", &name, NULL))
		return -1;
	ensure_tracefs();
	struct alink *l = link_new(o, 1);
	if (!l)
		return fail(ENOMEM, "prog %s", bpf_program__name(p));
	struct bpf_link *bl = bpf_program__attach_tracepoint(p, cat, name);
	if (!bl) {
		int e = errno;
		link_free(l);
		return fail(e, "prog %s: tracepoint %s/%s", bpf_program__name(p), cat, name);
	}
	l->l[0] = bl;
	l->n = 1;
	link_register(l);
	jb_kint(out, "link", l->id);
	return 0;
}

/*
 * Raw tracepoints (4.17, BPF_RAW_TRACEPOINT_OPEN: no tracefs, no perf event) by name, or, without
 * a name, the attachment the program's section names, through libbpf's bpf_program__attach:
 * raw_tp/NAME, and the BTF-typed kinds (tp_btf/NAME, fentry/FUNC, fexit/FUNC, lsm/HOOK), whose
 * target libbpf resolved in the kernel's BTF when the object was loaded. Objects without such
 * programs never touch BTF, so the agent works on kernels without it.
 */
static int op_attach_prog(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_program *p;
	const char *raw, *netns, *cgroup;
	if (req_obj(r, &o) || req_prog(r, o, &p, NULL) || req_str_opt(r, "rawTracepoint", &raw) ||
	    req_str_opt(r, "netns", &netns) || req_str_opt(r, "cgroup", &cgroup))
		return -1;
	if (cgroup && *cgroup) {
		/* a cgroup program as a bpf_link (BPF_LINK_CREATE, 5.7) instead of BPF_PROG_ATTACH */
		int cgfd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgfd < 0)
			return fail(errno, "prog %s: open cgroup %s", bpf_program__name(p), cgroup);
		struct alink *l = link_new(o, 1);
		struct bpf_link *bl = l ? bpf_program__attach_cgroup(p, cgfd) : NULL;
		int e = l ? errno : ENOMEM;
		close(cgfd);
		if (!bl) {
			if (l)
				link_free(l);
			return fail(e, "prog %s: link to cgroup %s", bpf_program__name(p), cgroup);
		}
		l->l[0] = bl;
		l->n = 1;
		link_register(l);
		jb_kint(out, "link", l->id);
		return 0;
	}
	int nsfd = -1;
	if (netns && *netns) {
		/* sk_lookup (5.9): a bpf_link on a network namespace */
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "/var/run/netns/%s", netns);
		if (strchr(netns, '/') || (nsfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return fail(errno ? errno : EINVAL, "prog %s: netns %s", bpf_program__name(p), netns);
	}
	struct alink *l = link_new(o, 1);
	if (!l) {
		if (nsfd >= 0)
			close(nsfd);
		return fail(ENOMEM, "prog %s", bpf_program__name(p));
	}
	struct bpf_link *bl = nsfd >= 0 ? bpf_program__attach_netns(p, nsfd)
			      : raw && *raw ? bpf_program__attach_raw_tracepoint(p, raw) : bpf_program__attach(p);
	int e = errno;
	if (nsfd >= 0)
		close(nsfd);
	if (!bl) {
		link_free(l);
		if (netns && *netns)
			return fail(e, "prog %s: attach to netns %s", bpf_program__name(p), netns);
		if (raw && *raw)
			return fail(e, "prog %s: raw tracepoint %s", bpf_program__name(p), raw);
		return fail(e, "prog %s: attach (section %s)", bpf_program__name(p), bpf_program__section_name(p));
	}
	l->l[0] = bl;
	l->n = 1;
	link_register(l);
	jb_kint(out, "link", l->id);
	return 0;
}

/*
 * tcx (6.6): a sched_cls program on a device's ingress or egress through BPF_LINK_CREATE with
 * BPF_TCX_INGRESS/BPF_TCX_EGRESS. Debian 12's libbpf (1.1) and headers predate tcx, so the
 * attach types, the mprog flags and the link_create.tcx layout are spelled out here. `before` or
 * `after` name another program of the same object, already attached there, to place this one
 * relative to it (BPF_F_BEFORE/BPF_F_AFTER with its program fd); without either it goes last.
 */
#define AGENT_BPF_TCX_INGRESS 46
#define AGENT_BPF_TCX_EGRESS 47
#define AGENT_BPF_F_BEFORE (1U << 3)
#define AGENT_BPF_F_AFTER (1U << 4)

static int op_attach_tcx(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_program *p;
	int pfd;
	const char *ifname, *netns, *dir, *before, *after;
	if (req_obj(r, &o) || req_prog(r, o, &p, &pfd) || req_str(r, "ifname", &ifname, NULL) ||
	    req_str(r, "netns", &netns, "") || req_str(r, "direction", &dir, NULL) || req_str_opt(r, "before", &before) ||
	    req_str_opt(r, "after", &after))
		return -1;
	uint32_t at;
	if (strcmp(dir, "ingress") == 0)
		at = AGENT_BPF_TCX_INGRESS;
	else if (strcmp(dir, "egress") == 0)
		at = AGENT_BPF_TCX_EGRESS;
	else
		return failx(EINVAL, "direction \"%s\": ingress or egress", dir);
	if (before && after)
		return failx(EINVAL, "give before or after, not both");
	uint32_t flags = 0, relative_fd = 0;
	const char *rel = before ? before : after;
	if (rel) {
		struct bpf_program *rp = bpf_object__find_program_by_name(o->obj, rel);
		if (!rp || bpf_program__fd(rp) < 0)
			return failx(ENOENT, "obj %s has no loaded program \"%s\"", o->name, rel);
		relative_fd = (uint32_t)bpf_program__fd(rp);
		flags = before ? AGENT_BPF_F_BEFORE : AGENT_BPF_F_AFTER;
	}
	if (ns_enter(netns))
		return -1;
	int rc = -1;
	unsigned int ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		fail(errno ? errno : ENODEV, "prog %s: ifindex for %s in %s", bpf_program__name(p), ifname, ns_label(netns));
		goto out;
	}
	/* union bpf_attr's link_create: prog_fd @0, target_ifindex @4, attach_type @8, flags @12,
	 * tcx.relative_fd @16, tcx.expected_revision @24 */
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	uint8_t *a = (uint8_t *)&attr;
	uint32_t u = (uint32_t)pfd;
	memcpy(a + 0, &u, 4);
	memcpy(a + 4, &ifindex, 4);
	memcpy(a + 8, &at, 4);
	memcpy(a + 12, &flags, 4);
	memcpy(a + 16, &relative_fd, 4);
	int lfd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	if (lfd < 0) {
		fail(errno, "prog %s: tcx %s link on %s in %s", bpf_program__name(p), dir, ifname, ns_label(netns));
		goto out;
	}
	struct alink *l = link_new(o, 1);
	if (!l) {
		close(lfd);
		fail(ENOMEM, "prog %s", bpf_program__name(p));
		goto out;
	}
	l->rawfd = lfd;
	link_register(l);
	jb_kint(out, "link", l->id);
	rc = 0;
out:
	ns_leave();
	return rc;
}

/* A struct_ops map of a loaded object (5.6; a TCP congestion control, …) registered with the
 * kernel through libbpf's bpf_map__attach_struct_ops; detaching unregisters it. */
static int op_attach_struct_ops(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_map *m;
	if (req_obj(r, &o) || req_map(r, o, "map", &m))
		return -1;
	struct alink *l = link_new(o, 1);
	if (!l)
		return fail(ENOMEM, "map %s", bpf_map__name(m));
	struct bpf_link *bl = bpf_map__attach_struct_ops(m);
	if (!bl) {
		int e = errno;
		link_free(l);
		return fail(e, "map %s: register struct_ops", bpf_map__name(m));
	}
	l->l[0] = bl;
	l->n = 1;
	link_register(l);
	jb_kint(out, "link", l->id);
	return 0;
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

static int op_attach_perf_event(struct req *r, struct jbuf *out)
{
	struct aobj *o;
	struct bpf_program *p;
	long long freq;
	const char *event;
	if (req_obj(r, &o) || req_prog(r, o, &p, NULL) || req_int(r, "freq", &freq, 0, true, 1, 100000000) ||
	    req_str(r, "event", &event, "cpu-clock"))
		return -1;
	uint64_t config;
	if (strcmp(event, "cpu-clock") == 0)
		config = PERF_COUNT_SW_CPU_CLOCK;
	else if (strcmp(event, "task-clock") == 0)
		config = PERF_COUNT_SW_TASK_CLOCK;
	else
		return failx(EINVAL, "unsupported event \"%s\" (cpu-clock)", event);
	int cpus[1024];
	int n = online_cpus(cpus, 1024);
	if (n <= 0)
		return fail(errno ? errno : EINVAL, "read /sys/devices/system/cpu/online");
	struct alink *l = link_new(o, n);
	if (!l)
		return fail(ENOMEM, "prog %s", bpf_program__name(p));
	for (int i = 0; i < n; i++) {
		struct perf_event_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.size = sizeof(attr);
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = config;
		attr.freq = 1;
		attr.sample_freq = (uint64_t)freq;
		int pfd = (int)syscall(__NR_perf_event_open, &attr, -1, cpus[i], -1, PERF_FLAG_FD_CLOEXEC);
		if (pfd < 0) {
			int e = errno;
			link_free(l);
			return fail(e, "prog %s: perf_event_open %s freq %lld on cpu %d", bpf_program__name(p), event, freq,
				    cpus[i]);
		}
		struct bpf_link *bl = bpf_program__attach_perf_event(p, pfd);
		if (!bl) {
			int e = errno;
			close(pfd);
			link_free(l);
			return fail(e, "prog %s: attach to %s perf event on cpu %d", bpf_program__name(p), event, cpus[i]);
		}
		l->l[l->n++] = bl;
	}
	link_register(l);
	jb_kint(out, "link", l->id);
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

static int op_syscalls(struct req *r, struct jbuf *out)
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

static int op_detach(struct req *r, struct jbuf *out)
{
	(void)out;
	long long id;
	if (req_int(r, "link", &id, 0, true, 0, INT_MAX))
		return -1;
	for (struct alink **pl = &g_links; *pl; pl = &(*pl)->next) {
		if ((*pl)->id == id) {
			struct alink *l = *pl;
			*pl = l->next;
			link_free(l);
			return 0;
		}
	}
	return failx(ENOENT, "unknown link %lld", id);
}

/* ---------- dispatch and main loop ---------- */

static void release_all(bool detach_persistent)
{
	socks_close_all();
	inet_socks_close_all();
	xsk_close_all();
	pinned_close_all();
	while (g_links) {
		struct alink *l = g_links;
		g_links = l->next;
		link_free(l);
	}
	while (g_objs) {
		struct aobj *o = g_objs;
		g_objs = o->next;
		obj_release(o, detach_persistent);
	}
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
	int (*fn)(struct req *, struct jbuf *);
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
	g_errmsg[0] = '\0';
	g_errno = 0;
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
		jb_kstr(&out, "error", g_errmsg[0] ? g_errmsg : "failed");
		jb_kint(&out, "errno", g_errno);
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

	g_orig_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (g_orig_netns < 0) {
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
