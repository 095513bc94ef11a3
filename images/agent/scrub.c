/* What `reset` with `scrub` removes besides the agent's own objects: every network namespace
 * under /run/netns (as `ip -all netns delete` does), the bpffs pin directories that tc and ip
 * make (tc/, ip/, xdp/), and the harness's cgroups (/sys/fs/cgroup/bh-*), so that the next test
 * finds the guest as the previous one found it, in one request instead of a shell script. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
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

int guest_scrub(void)
{
	int rc = netns_delete_all("/run/netns");
	remove_tree("/sys/fs/bpf/tc");
	remove_tree("/sys/fs/bpf/ip");
	remove_tree("/sys/fs/bpf/xdp");
	harness_cgroups_delete();
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
