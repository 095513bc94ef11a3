/* bpf-agent: what every op uses: its request's fields, its error, and the network namespace it runs in. */
#define _GNU_SOURCE
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *g_op = "request";

/* ---------- errors ---------- */

static char g_errmsg[4096];
static int g_errno;

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

void err_reset(void)
{
	g_errmsg[0] = '\0';
	g_errno = 0;
}

/* ---------- request fields ---------- */

static const struct jfield *field(const struct req *r, const char *key)
{
	const struct jfield *f = json_get(&r->o, key);
	if (f && f->type == J_NULL)
		return NULL;
	return f;
}

/* The string field `key` in *f (NULL if absent); fails if it is not a string or, unless nul_ok,
 * holds a NUL character. */
static int str_field(const struct req *r, const char *key, bool nul_ok, const struct jfield **f)
{
	*f = field(r, key);
	if (!*f)
		return 0;
	if ((*f)->type != J_STR)
		return failx(EINVAL, "field \"%s\" must be a string", key);
	if (!nul_ok && strlen((*f)->s) != (*f)->slen)
		return failx(EINVAL, "field \"%s\" must not contain NUL characters", key);
	return 0;
}

int req_str(const struct req *r, const char *key, const char **out, const char *def)
{
	const struct jfield *f;
	*out = def ? def : "";
	if (str_field(r, key, false, &f))
		return -1;
	if (f)
		*out = f->s;
	else if (!def)
		return failx(EINVAL, "missing field \"%s\"", key);
	return 0;
}

int req_str_opt(const struct req *r, const char *key, const char **out)
{
	const struct jfield *f;
	*out = NULL;
	if (str_field(r, key, false, &f))
		return -1;
	*out = f ? f->s : NULL;
	return 0;
}

int req_bytes(const struct req *r, const char *key, const char **out, size_t *len)
{
	const struct jfield *f;
	*out = "";
	*len = 0;
	if (str_field(r, key, true, &f))
		return -1;
	if (!f)
		return failx(EINVAL, "missing field \"%s\"", key);
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

int req_hex(const struct req *r, const char *key, uint8_t **buf, size_t *n)
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

int str_pick(const char *s, const char *const *names, const int *values, int *out)
{
	for (int i = 0; names[i]; i++) {
		if (strcmp(names[i], s) == 0) {
			*out = values[i];
			return 0;
		}
	}
	return -1;
}

int parse_ip4(const char *field, const char *s, struct in_addr *a)
{
	if (inet_pton(AF_INET, s, a) != 1)
		return failx(EINVAL, "field \"%s\": \"%s\" is not an IPv4 address", field, s);
	return 0;
}

int req_ip4(const struct req *r, const char *key, struct in_addr *a, const char *def)
{
	const char *s;
	if (req_str(r, key, &s, def))
		return -1;
	return parse_ip4(key, s, a);
}

/* ---------- network namespaces ---------- */

static int g_orig_netns = -1;
static bool g_in_netns;

int ns_init(void)
{
	g_orig_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	return g_orig_netns < 0 ? -1 : 0;
}

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

int ifindex_of(const char *ifname, const char *netns, const char *prog, unsigned int *out)
{
	*out = if_nametoindex(ifname);
	if (*out)
		return 0;
	int e = errno ? errno : ENODEV;
	if (prog)
		return fail(e, "prog %s: ifindex for %s in %s", prog, ifname, ns_label(netns));
	return fail(e, "ifindex for %s in %s", ifname, ns_label(netns));
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
