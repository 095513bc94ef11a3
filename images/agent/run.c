/* The `run` op: a shell command in the guest with the agent's environment, without an SSH
 * channel's round trips. The shell is a static busybox's ash where the image has one
 * (/bin/busybox): under TCG it starts in 2 ms, where the dynamically linked dash takes 20 ms and
 * bash 36 ms (the dynamic loader and libc's pages). Busybox ash runs its own applets before the
 * programs on PATH, so the command runs after functions that send `ip` and `tc` to the image's
 * iproute2 (a function comes before an applet). Without busybox: dash, else /bin/sh. */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define RUN_OUT_MAX (8u << 20)

/* Closes every descriptor from 3 up: the command must not hold the agent's sockets and BPF
 * objects (a background job would keep a socket the test closed). close_range (5.9) where the
 * kernel has it, else what /proc/self/fd lists. */
static void close_from_3(void)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
		return;
#else
	if (syscall(436, 3u, ~0u, 0u) == 0)
		return;
#endif
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int self = dirfd(d);
	struct dirent *e;
	int fds[4096], n = 0;
	while ((e = readdir(d)) && n < 4096) {
		int fd = atoi(e->d_name);
		if (fd > 2 && fd != self)
			fds[n++] = fd;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Busybox applets that must be the image's own programs in a command. */
static const char *const SHADOWED[] = { "ip", "tc" };

/* The first `name` on PATH that is a program of its own, not a link to busybox. */
static bool program_on_path(const char *name, char *found, size_t size)
{
	const char *p = getenv("PATH");
	if (!p)
		p = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*p) {
		size_t n = strcspn(p, ":");
		char cand[PATH_MAX], real[PATH_MAX];
		if (n > 0 && (size_t)snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, p, name) < sizeof(cand) &&
		    access(cand, X_OK) == 0 && realpath(cand, real) && strcmp(strrchr(real, '/') + 1, "busybox") != 0 &&
		    strlen(cand) < size) {
			strcpy(found, cand);
			return true;
		}
		p += n + (p[n] == ':');
	}
	return false;
}

/* What comes before every command under busybox: a function for each shadowed applet that has a
 * program of its own on PATH. Built on the first command (PATH and the image stay as they are
 * while the agent runs); NULL when the image has no busybox. */
static const char *busybox_prelude(void)
{
	static struct jbuf prelude;
	static bool built;
	if (!built) {
		built = true;
		if (access("/bin/busybox", X_OK) == 0) {
			char path[PATH_MAX];
			jb_puts(&prelude, "");
			for (size_t k = 0; k < sizeof(SHADOWED) / sizeof(SHADOWED[0]); k++)
				if (program_on_path(SHADOWED[k], path, sizeof(path)))
					jb_printf(&prelude, "%s() { %s \"$@\"; }\n", SHADOWED[k], path);
		}
	}
	return prelude.p;
}

int op_run(struct req *r, struct jbuf *out)
{
	const char *cmd;
	const char *in = "";
	size_t inlen = 0;
	long long timeout_ms;
	if (req_str(r, "cmd", &cmd, NULL) || req_int(r, "timeoutMs", &timeout_ms, 60000, false, 1, 3600000))
		return -1;
	const char *given;
	if (req_str_opt(r, "stdin", &given))
		return -1;
	if (given)
		in = given, inlen = strlen(given);
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		int e = errno;
		int *all[] = { pin, pout, perr };
		for (int k = 0; k < 3; k++)
			for (int j = 0; j < 2; j++)
				if (all[k][j] >= 0)
					close(all[k][j]);
		return fail(e, "run: pipe");
	}
	/* Under busybox, the command after the prelude (put together here, not in the child). */
	struct jbuf script = { 0 };
	const char *prelude = busybox_prelude();
	if (prelude) {
		jb_puts(&script, prelude);
		jb_puts(&script, cmd);
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		jb_free(&script);
		close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]), close(perr[0]), close(perr[1]);
		return fail(e, "run: fork");
	}
	if (pid == 0) {
		/* its own process group, so that a timeout ends its background jobs too */
		setpgid(0, 0);
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		close_from_3();
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		if (script.p) {
			execl("/bin/busybox", "sh", "-c", script.p, (char *)NULL);
			_exit(127);
		}
		const char *sh = access("/bin/dash", X_OK) == 0 ? "/bin/dash" : "/bin/sh";
		execl(sh, "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pin[0]), close(pout[1]), close(perr[1]);
	jb_free(&script);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	struct jbuf o = { 0 }, e = { 0 };
	size_t inoff = 0;
	if (inlen == 0) {
		close(pin[1]);
		pin[1] = -1;
	}
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	bool timed_out = false;
	char buf[16384];
	while (pout[0] >= 0 || perr[0] >= 0) {
		struct pollfd fds[3];
		int n = 0, io = -1, ie = -1, ii = -1;
		if (pout[0] >= 0)
			io = n, fds[n++] = (struct pollfd){ .fd = pout[0], .events = POLLIN };
		if (perr[0] >= 0)
			ie = n, fds[n++] = (struct pollfd){ .fd = perr[0], .events = POLLIN };
		if (pin[1] >= 0)
			ii = n, fds[n++] = (struct pollfd){ .fd = pin[1], .events = POLLOUT };
		uint64_t now = now_ns();
		if (now >= deadline) {
			timed_out = true;
			break;
		}
		int ready = poll(fds, (nfds_t)n, (int)((deadline - now) / 1000000ull) + 1);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready <= 0)
			continue;
		if (ii >= 0 && fds[ii].revents) {
			ssize_t w = write(pin[1], in + inoff, inlen - inoff);
			if (w > 0)
				inoff += (size_t)w;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				inoff = inlen; /* the command stopped reading: give up on the rest */
			if (inoff >= inlen) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
		int *fdp[2] = { &pout[0], &perr[0] };
		struct jbuf *bufs[2] = { &o, &e };
		int idx[2] = { io, ie };
		for (int k = 0; k < 2; k++) {
			if (idx[k] < 0 || !fds[idx[k]].revents)
				continue;
			ssize_t got = read(*fdp[k], buf, sizeof(buf));
			if (got > 0) {
				if (bufs[k]->len + (size_t)got <= RUN_OUT_MAX)
					jb_putn(bufs[k], buf, (size_t)got);
			} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(*fdp[k]);
				*fdp[k] = -1;
			}
		}
	}
	if (timed_out)
		kill(-pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pin[1] >= 0)
		close(pin[1]);
	if (pout[0] >= 0)
		close(pout[0]);
	if (perr[0] >= 0)
		close(perr[0]);
	int rc = 0;
	if (timed_out) {
		rc = failx(ETIMEDOUT, "command timed out after %lld ms", timeout_ms);
	} else {
		jb_kint(out, "code", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		jb_key(out, "stdout");
		jb_str(out, o.p ? o.p : "", o.len);
		jb_key(out, "stderr");
		jb_str(out, e.p ? e.p : "", e.len);
	}
	jb_free(&o);
	jb_free(&e);
	return rc;
}
