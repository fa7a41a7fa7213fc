// SPDX-License-Identifier: GPL-2.0
/*
 * Loads a module with the Nth fault-injection point of this task failing
 * (/proc/thread-self/fail-nth, as syzkaller injects faults), then disarms
 * the count at once: no allocation of a test harness can meet it.
 * Prints "<finit_module's return> <errno> <count left>".  Link with
 * -Wl,-z,now: no lazy symbol binding (which may fault pages in) while armed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char left[32] = "0";
	int ko, wr, rd, warm, err;
	ssize_t k;
	long r;

	if (argc != 4) {
		fprintf(stderr, "usage: %s MODULE.ko PARAMS N\n", argv[0]);
		return 2;
	}
	ko = open(argv[1], O_RDONLY | O_CLOEXEC);
	wr = open("/proc/thread-self/fail-nth", O_WRONLY);
	rd = open("/proc/thread-self/fail-nth", O_RDONLY);
	warm = open("/proc/thread-self/fail-nth", O_RDONLY);
	if (ko < 0 || wr < 0 || rd < 0 || warm < 0) {
		perror("open");
		return 2;
	}
	/* Every call made while armed once before, so nothing is first-time. */
	if (syscall(SYS_getpid) < 0 || read(warm, left, sizeof(left) - 1) < 0) {
		perror("warm-up");
		return 2;
	}
	if (write(wr, argv[3], strlen(argv[3])) < 0) {
		perror("fail-nth");
		return 2;
	}
	r = syscall(SYS_finit_module, ko, argv[2], 0);
	err = r ? errno : 0;
	k = read(rd, left, sizeof(left) - 1);
	/* Disarmed whatever happens: the harness unloads what loaded. */
	if (write(wr, "0", 1) < 0)
		perror("fail-nth disarm");
	if (k <= 0) {
		perror("fail-nth read");
		printf("%ld %d ?\n", r, err);
		return 1;
	}
	left[k] = 0;
	printf("%ld %d %s", r, err, left);
	return 0;
}
