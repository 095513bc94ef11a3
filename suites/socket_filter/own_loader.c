/* A project's own test program, as a suite runs one (guest.runProgram): it loads a socket filter
 * that drops everything with the raw bpf(2) syscall, and checks what a UDP socket receives before,
 * while and after the filter is attached (SO_ATTACH_BPF, SO_DETACH_BPF). TAP on stdout; exits 0
 * when every check holds. Built static for the guest by compileProgram. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif
#ifndef SO_DETACH_BPF
#define SO_DETACH_BPF 27
#endif

static int failures;

static void tap(int n, int ok, const char *what)
{
	printf("%s %d - %s\n", ok ? "ok" : "not ok", n, what);
	failures += !ok;
}

/* Sends one datagram from `tx` to `rx` and says whether `rx` got it within 300 ms. */
static int delivered(int tx, int rx, const struct sockaddr_in *to)
{
	char buf[64];
	struct pollfd p = { .fd = rx, .events = POLLIN };
	if (sendto(tx, "ping", 4, 0, (const struct sockaddr *)to, sizeof(*to)) != 4)
		return -1;
	if (poll(&p, 1, 300) != 1)
		return 0;
	return recv(rx, buf, sizeof(buf), MSG_DONTWAIT) == 4;
}

int main(void)
{
	/* Before 5.11 a program's and a map's memory count against RLIMIT_MEMLOCK, per user: with
	 * the agent's objects loaded too, root's 64 KiB default runs out (EPERM), as every loader of
	 * that era raises it first. */
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	setrlimit(RLIMIT_MEMLOCK, &unlimited);
	struct bpf_insn drop_all[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	attr.insns = (unsigned long)drop_all;
	attr.insn_cnt = 2;
	attr.license = (unsigned long)"GPL";
	int prog = syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (prog < 0)
		printf("# BPF_PROG_LOAD: %s\n", strerror(errno));

	int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (rx < 0 || tx < 0 || bind(rx, (struct sockaddr *)&a, sizeof(a)) || getsockname(rx, (struct sockaddr *)&a, &len)) {
		printf("Bail out! UDP sockets on 127.0.0.1: %s\n", strerror(errno));
		return 2;
	}
	printf("1..4\n");
	tap(1, prog >= 0, "BPF_PROG_LOAD of a socket filter that drops everything gives a program fd");
	tap(2, delivered(tx, rx, &a) == 1, "without a filter, the UDP socket receives the datagram");
	int attached = setsockopt(rx, SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof(prog)) == 0;
	tap(3, attached && delivered(tx, rx, &a) == 0, "with the filter attached (SO_ATTACH_BPF), it receives nothing");
	int zero = 0;
	int detached = setsockopt(rx, SOL_SOCKET, SO_DETACH_BPF, &zero, sizeof(zero)) == 0;
	tap(4, detached && delivered(tx, rx, &a) == 1, "detached again (SO_DETACH_BPF), it receives the next one");
	return failures ? 1 : 0;
}
