/* bpf-agent: helper children that act from inside a cgroup and hand back results and descriptors. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int send_fds(int sock, const struct child_res *res, const int *fds, int nfds)
{
	struct iovec iov = { .iov_base = (void *)res, .iov_len = sizeof(*res) };
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	char *cbuf = NULL;
	if (nfds > 0) {
		size_t clen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cbuf = calloc(1, clen);
		if (!cbuf)
			return -1;
		mh.msg_control = cbuf;
		mh.msg_controllen = clen;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	ssize_t w = sendmsg(sock, &mh, 0);
	free(cbuf);
	return w < 0 ? -1 : 0;
}

int run_in_cgroup(const char *cgroup, child_fn fn, void *arg, struct child_res *res, int *fds, int maxfds,
		  int64_t timeout_ns)
{
	int sp[2];
	memset(res, 0, sizeof(*res));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return fail(errno, "socketpair");
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sp[0]);
		close(sp[1]);
		return fail(e, "fork");
	}
	if (pid == 0) {
		close(sp[0]);
		g_in_child = true;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct child_res cr;
		memset(&cr, 0, sizeof(cr));
		int cfds[2 * MAX_PAIRS + 2];
		int cmax = maxfds < (int)(sizeof(cfds) / sizeof(cfds[0])) ? maxfds : (int)(sizeof(cfds) / sizeof(cfds[0]));
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
		int cfd = open(path, O_WRONLY | O_CLOEXEC);
		int rc = 0;
		if (cfd < 0) {
			rc = fail(errno, "cgroup %s: open %s", cgroup, path);
		} else {
			char pidbuf[32];
			int l = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
			if (write(cfd, pidbuf, (size_t)l) != l)
				rc = fail(errno, "cgroup %s: join (write %s)", cgroup, path);
			close(cfd);
		}
		if (rc == 0)
			rc = fn(arg, &cr, cfds, cmax);
		if (rc) {
			cr.err = err_errno() ? err_errno() : EIO;
			snprintf(cr.msg, sizeof(cr.msg), "%s", err_msg());
			cr.nfds = 0;
		}
		if (cr.nfds > cmax)
			cr.nfds = cmax;
		if (send_fds(sp[1], &cr, cfds, cr.nfds) < 0)
			_exit(3);
		_exit(0);
	}
	close(sp[1]);
	int rc = -1;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ns;
	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline) {
			kill(pid, SIGKILL);
			fail(ETIMEDOUT, "helper child in cgroup %s did not finish", cgroup);
			goto out;
		}
		if (pump(sp[0], (int64_t)(deadline - now)))
			break;
	}
	struct iovec iov = { .iov_base = res, .iov_len = sizeof(*res) };
	size_t clen = CMSG_SPACE(sizeof(int) * (size_t)(maxfds > 0 ? maxfds : 1));
	char *cbuf = calloc(1, clen);
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = cbuf ? clen : 0;
	ssize_t n = recvmsg(sp[0], &mh, MSG_CMSG_CLOEXEC);
	if (n != (ssize_t)sizeof(*res)) {
		free(cbuf);
		int status = 0;
		waitpid(pid, &status, 0);
		pid = -1;
		fail(EIO, "helper child in cgroup %s exited without a result (status 0x%x)", cgroup, status);
		goto out;
	}
	int got = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			int *p = (int *)CMSG_DATA(cm);
			for (int i = 0; i < k; i++) {
				if (got < maxfds)
					fds[got++] = p[i];
				else
					close(p[i]);
			}
		}
	}
	free(cbuf);
	res->nfds = got;
	if (res->err) {
		for (int i = 0; i < got; i++)
			close(fds[i]);
		res->nfds = 0;
		fail_raw(res->err, res->msg);
		goto out;
	}
	rc = 0;
out:
	close(sp[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return rc;
}

