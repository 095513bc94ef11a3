/*
 * bpf-agent --seed-entropy HEX: credits the host's random seed to the kernel's input pool
 * (RNDADDENTROPY), so that the guest's random pool is initialised before the SSH server asks for
 * random bytes. A 4.14 kernel under TCG has no other entropy source (no jitter entropy, often no
 * virtio-rng driver), and its getrandom() and /dev/random then block forever.
 *
 * The seed comes from the kernel command line (bpf_harness.seed=), made fresh for each boot by
 * the host; a guest is a disposable test machine, so a seed the host knows is good enough.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
	close(fd);
	if (rc) {
		fprintf(stderr, "bpf-agent: RNDADDENTROPY: %s\n", strerror(e));
		return 1;
	}
	printf("credited %d bits; the input pool holds %d\n", req.info.entropy_count, avail);
	return 0;
}
