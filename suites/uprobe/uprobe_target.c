/* The uprobe suite's target, a user-space program (built on the host, static, with its symbol
 * table): `uprobe_target N STEP` calls bh_target(i * STEP) for i = 0..N-1, then prints the sum
 * of what it returned. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int bh_target(int x)
{
	__asm__ volatile("" ::: "memory");
	return 2 * x + 1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0, step = argc > 2 ? atoi(argv[2]) : 1;
	long sum = 0;

	for (int i = 0; i < n; i++)
		sum += bh_target(i * step);
	printf("%ld\n", sum);
	return 0;
}
