/*
 * bpf-agent --seed-entropy HEX: credits the host's random seed to the kernel's input pool
 * (RNDADDENTROPY), so that the guest's random pool is initialised before the SSH server asks for
 * random bytes. A 4.14 kernel under TCG has no other entropy source (no jitter entropy, often no
 * virtio-rng driver), and its getrandom() and /dev/random then block forever.
 *
 * The seed comes from the kernel command line (bpf_harness.seed=), made fresh for each boot by
 * the host; a guest is a disposable test machine, so a seed the host knows is good enough.
 *
 * After crediting, the kernel is asked to reseed its CRNG from the input pool at once
 * (RNDRESEEDCRNG, 4.17+): a guest restored from a snapshot (harness/guest/snapshot.ts) starts
 * with the very CRNG state of every other guest restored from it, and a credit alone reaches the
 * CRNG only at its next scheduled reseed (minutes away). Init's line says whether the kernel can;
 * the harness saves snapshots only of kernels that can.
 *
 * bpf-agent --after-restore HEX: what a restored guest redoes, first thing: credits HEX and
 * reseeds, then asks for the host's time ("time?" on stdout; nanoseconds since 1970 on stdin)
 * and steps the clock (CLOCK_REALTIME) to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "json.h"

int seed_entropy(const char *hex)
{
	size_t n = strlen(hex);
	enum { MIN_BYTES = 32, MAX_BYTES = 512 };
	if (n % 2 || n / 2 < MIN_BYTES || n / 2 > MAX_BYTES) {
		fprintf(stderr, "bpf-agent: --seed-entropy wants %d to %d bytes as hex, got %zu characters\n", MIN_BYTES, MAX_BYTES, n);
		return 2;
	}
	struct {
		struct rand_pool_info info;
		unsigned char buf[MAX_BYTES];
	} req;
	memset(&req, 0, sizeof(req));
	if (hex_decode(hex, n, req.buf) < 0) {
		fprintf(stderr, "bpf-agent: --seed-entropy: not hex\n");
		return 2;
	}
	req.info.buf_size = (int)(n / 2);
	req.info.entropy_count = (int)(n / 2 * 8);
	int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "bpf-agent: open /dev/urandom: %s\n", strerror(errno));
		return 1;
	}
	int rc = ioctl(fd, RNDADDENTROPY, &req.info);
	int e = errno;
	int avail = -1;
	ioctl(fd, RNDGETENTCNT, &avail);
	if (rc) {
		close(fd);
		fprintf(stderr, "bpf-agent: RNDADDENTROPY: %s\n", strerror(e));
		return 1;
	}
#ifndef RNDRESEEDCRNG
#define RNDRESEEDCRNG _IO('R', 0x07)
#endif
	int reseeded = ioctl(fd, RNDRESEEDCRNG) == 0;
	int re = errno;
	close(fd);
	/* The harness reads "reseeded" (or its absence) from init's console line. */
	if (reseeded)
		printf("credited %d bits; the input pool holds %d; reseeded the CRNG\n", req.info.entropy_count, avail);
	else
		printf("credited %d bits; the input pool holds %d; cannot reseed the CRNG on demand (RNDRESEEDCRNG: %s)\n",
		       req.info.entropy_count, avail, strerror(re));
	return 0;
}

int after_restore(const char *hex)
{
	int rc = seed_entropy(hex);
	if (rc)
		return rc;
	/* The host's time is asked for now, not sent with the command: the host answers at once,
	 * so the clock is off by one trip over SSH, not by the command's start. */
	printf("time?\n");
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof(line), stdin)) {
		fprintf(stderr, "bpf-agent: --after-restore: no time on stdin\n");
		return 2;
	}
	char *end;
	errno = 0;
	unsigned long long ns = strtoull(line, &end, 10);
	if (errno || end == line || (*end && *end != '\n')) {
		fprintf(stderr, "bpf-agent: --after-restore wants the host's time in nanoseconds since 1970, got \"%s\"\n", line);
		return 2;
	}
	struct timespec was, to = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };
	clock_gettime(CLOCK_REALTIME, &was);
	if (clock_settime(CLOCK_REALTIME, &to)) {
		fprintf(stderr, "bpf-agent: clock_settime: %s\n", strerror(errno));
		return 1;
	}
	double stepped = (double)(to.tv_sec - was.tv_sec) + (double)(to.tv_nsec - was.tv_nsec) / 1e9;
	printf("stepped the clock by %.3f s\n", stepped);
	return 0;
}
