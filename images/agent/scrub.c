/* What `reset` with `scrub` removes besides the agent's own objects (every network namespace
 * under /run/netns, as `ip -all netns delete` does, the bpffs pin directories that tc and ip make,
 * the harness's cgroups; between suite files more), and the sysctl snapshot that is put back
 * between suite files: in one request each instead of shell scripts, which cost tens of
 * milliseconds per process under TCG. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int netns_delete_all(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : fail(errno, "open %s", dir);
	struct dirent *e;
	char path[512];
	int rc = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		umount2(path, MNT_DETACH);
		if (unlink(path) < 0 && errno != ENOENT && !rc)
			rc = fail(errno, "netns %s: unlink %s", e->d_name, path);
	}
	closedir(d);
	return rc;
}

static void harness_cgroups_delete(void)
{
	DIR *d = opendir("/sys/fs/cgroup");
	if (!d)
		return;
	struct dirent *e;
	char path[512];
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "bh-", 3) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", e->d_name);
		rmdir(path); /* a cgroup a process still lives in stays; the handover removes it later */
	}
	closedir(d);
}

static int rmdir_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	if (flag == FTW_DP && f->level > 0)
		rmdir(path); /* a cgroup a process still lives in stays */
	return 0;
}

/* Empties each tracefs kprobe_events and uprobe_events there is (probes tests made by hand). */
static void probe_events_clear(void)
{
	const char *dirs[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	const char *files[] = { "kprobe_events", "uprobe_events" };
	char path[128];
	for (int d = 0; d < 2; d++)
		for (int f = 0; f < 2; f++) {
			snprintf(path, sizeof(path), "%s/%s", dirs[d], files[f]);
			int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
			if (fd >= 0)
				close(fd);
		}
}

/* Between tests (`all` false): namespaces, the tc/ip/xdp pin directories, the harness's cgroups.
 * Between suite files (`all` true): also every pin under bpffs, every cgroup, the compiled
 * objects in /run/bpf and tracefs probe events. */
int guest_scrub(bool all)
{
	int rc = netns_delete_all("/run/netns");
	remove_tree("/sys/fs/bpf/tc");
	remove_tree("/sys/fs/bpf/ip");
	remove_tree("/sys/fs/bpf/xdp");
	harness_cgroups_delete();
	if (all) {
		DIR *d = opendir("/sys/fs/bpf");
		struct dirent *e;
		char path[512];
		while (d && (e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "/sys/fs/bpf/%s", e->d_name);
			remove_tree(path);
		}
		if (d)
			closedir(d);
		nftw("/sys/fs/cgroup", rmdir_entry, 16, FTW_DEPTH | FTW_PHYS);
		remove_tree("/run/bpf");
		probe_events_clear();
	}
	return rc;
}

/* One record with a newline: without it the console holds the line back until the next record. */
int kmsg_mark(const char *mark)
{
	char line[512];
	snprintf(line, sizeof(line), "%s\n", mark);
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, "open /dev/kmsg");
	ssize_t w = write(fd, line, strlen(line));
	int e = errno;
	close(fd);
	return w < 0 ? fail(e, "write /dev/kmsg") : 0;
}

/* ---------- sysctls: a snapshot of a fresh guest, put back between suite files ---------- */

struct sysctl_val {
	char *path;
	char *val;
	size_t len;
};

static struct sysctl_val *g_sysctls;
static size_t g_nsysctls, g_capsysctls;

/* Reads a whole (small) proc file; NULL when it cannot be read. */
static char *read_small(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char buf[8192];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return NULL;
		}
		if (r == 0 || (n += (size_t)r) == sizeof(buf))
			break;
	}
	close(fd);
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	memcpy(out, buf, n);
	out[n] = 0;
	*len = n;
	return out;
}

static int snap_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	/* only what can be both read and written back; the last pid handed out changes by itself */
	if (flag != FTW_F || (st->st_mode & 0600) != 0600 || strcmp(path, "/proc/sys/kernel/ns_last_pid") == 0)
		return 0;
	size_t len;
	char *val = read_small(path, &len);
	if (!val)
		return 0;
	if (g_nsysctls == g_capsysctls) {
		size_t cap = g_capsysctls ? 2 * g_capsysctls : 2048;
		struct sysctl_val *p = realloc(g_sysctls, cap * sizeof(*p));
		if (!p) {
			free(val);
			return 1;
		}
		g_sysctls = p;
		g_capsysctls = cap;
	}
	g_sysctls[g_nsysctls++] = (struct sysctl_val){ strdup(path), val, len };
	return 0;
}

/* Records every readable and writable sysctl under /proc/sys (the root network namespace's). */
int op_sysctl_snapshot(struct req *r, struct jbuf *out)
{
	(void)r;
	for (size_t i = 0; i < g_nsysctls; i++)
		free(g_sysctls[i].path), free(g_sysctls[i].val);
	g_nsysctls = 0;
	if (nftw("/proc/sys", snap_entry, 16, FTW_PHYS) != 0)
		return fail(errno ? errno : ENOMEM, "walk /proc/sys");
	jb_kint(out, "count", (long long)g_nsysctls);
	return 0;
}

/* Writes back every recorded sysctl whose value changed since the snapshot; `restored` names the
 * ones written back, `failed` the ones the kernel refused. */
int op_sysctl_restore(struct req *r, struct jbuf *out)
{
	(void)r;
	struct jbuf restored = { 0 }, failed = { 0 };
	jb_putc(&restored, '[');
	jb_putc(&failed, '[');
	for (size_t i = 0; i < g_nsysctls; i++) {
		struct sysctl_val *v = &g_sysctls[i];
		size_t len;
		char *now = read_small(v->path, &len);
		if (!now)
			continue;
		bool same = len == v->len && memcmp(now, v->val, len) == 0;
		free(now);
		if (same)
			continue;
		int fd = open(v->path, O_WRONLY | O_CLOEXEC);
		bool ok = fd >= 0 && write(fd, v->val, v->len) == (ssize_t)v->len;
		if (fd >= 0)
			close(fd);
		struct jbuf *list = ok ? &restored : &failed;
		if (list->len > 1)
			jb_putc(list, ',');
		jb_cstr(list, v->path + strlen("/proc/sys/"));
	}
	jb_putc(&restored, ']');
	jb_putc(&failed, ']');
	jb_key(out, "restored");
	jb_putn(out, restored.p, restored.len);
	jb_key(out, "failed");
	jb_putn(out, failed.p, failed.len);
	jb_free(&restored);
	jb_free(&failed);
	return 0;
}
