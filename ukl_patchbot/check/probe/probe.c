/*
 * ukl-probe: one unmodified C program that proves a kernel variant works.
 *
 * Built once against stock glibc (classic: /init in an initramfs, user
 * mode) and once against the UKL glibc (linked into vmlinux, kernel mode).
 * It prints a marker with the privilege level read from %cs, checks TLS,
 * malloc (brk and mmap sized) and write(2), times N getppid() calls and
 * restarts the machine (QEMU runs with -no-reboot, so it exits).  The
 * "done" line is printed only if every check passed; on a failed check it
 * exits non-zero, which a kernel makes loud
 * (PID 1 exiting panics the classic kernel; UKL panics on a non-zero exit).
 *
 * Lines (parsed by ukl_patchbot.console):
 *   ukl-probe: start variant=<classic|ukl> cpl=<0-3> pid=<n> up=<seconds>
 *   ukl-probe: bench syscall=getppid calls=<N> ns_per_call=<float>
 *   ukl-probe: done status=0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

#ifndef PROBE_VARIANT
#define PROBE_VARIANT "classic"
#endif
#ifndef PROBE_CALLS
/*
 * Enough calls for ~0.1-0.2 s under TCG: a tinyconfig guest may fall back
 * to the jiffies clocksource (4 ms steps), which must stay a small error.
 */
#define PROBE_CALLS 1000000
#endif

static __thread int tls_initialised = 42;	/* .tdata */
static __thread char tls_zeroed[64];		/* .tbss */

static unsigned int current_cpl(void)
{
	unsigned short cs;

	__asm__ volatile ("mov %%cs, %0" : "=r" (cs));
	return cs & 3;
}

static long long now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return -1;
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int fail(const char *what)
{
	printf("ukl-probe: error %s\n", what);
	fflush(stdout);
	return 1;
}

int main(void)
{
	static const char msg[] = "ukl-probe: write ok\n";
	long long t0, t1;
	char *small, *large;
	int i;

	/*
	 * up= is CLOCK_MONOTONIC (time since the kernel's clock started) when
	 * main() runs: it splits boot time into before the kernel and in it.
	 */
	setvbuf(stdout, NULL, _IOLBF, 0);
	t0 = now_ns();
	if (t0 < 0)
		t0 = 0;	/* checked with the benchmark's clock below */
	printf("ukl-probe: start variant=%s cpl=%u pid=%d up=%lld.%03lld\n",
	       PROBE_VARIANT, current_cpl(), (int)getpid(),
	       t0 / 1000000000LL, t0 / 1000000LL % 1000);

#ifdef PROBE_CRASH
	/* Failure must be loud: a test builds the probe to fault here. */
	*(volatile int *)16 = 1;
#endif
	if (tls_initialised != 42 || tls_zeroed[0] != 0)
		return fail("tls initial image wrong");
	tls_initialised++;
	strcpy(tls_zeroed, "tls");
	if (tls_initialised != 43 || strcmp(tls_zeroed, "tls") != 0)
		return fail("tls write lost");

	small = malloc(100);		/* from brk */
	large = malloc(1 << 20);	/* above the mmap threshold */
	if (!small || !large)
		return fail("malloc returned NULL");
	memset(large, 0xa5, 1 << 20);
	strcpy(small, "heap");
	if (large[(1 << 20) - 1] != (char)0xa5 || strcmp(small, "heap") != 0)
		return fail("heap contents lost");
	free(large);
	free(small);

	if (write(1, msg, sizeof(msg) - 1) != (ssize_t)(sizeof(msg) - 1))
		return fail("write(2) short");

	t0 = now_ns();
	for (i = 0; i < PROBE_CALLS; i++)
		getppid();
	t1 = now_ns();
	if (t0 < 0 || t1 <= t0)
		return fail("clock_gettime");
	printf("ukl-probe: bench syscall=getppid calls=%d ns_per_call=%.1f\n",
	       PROBE_CALLS, (double)(t1 - t0) / PROBE_CALLS);

	printf("ukl-probe: done status=0\n");
	fflush(stdout);
	/*
	 * As init there is nobody to return to: restart in order (device
	 * shutdown, then reset), which QEMU's -no-reboot makes an exit.
	 */
	if (getpid() == 1)
		reboot(RB_AUTOBOOT);
	return 0;
}
