/* A stand-in for the UKL probe as /init of a classic initramfs, used by the
 * boot tests until the real probe exists. It prints the probe's marker lines
 * and powers the machine off. Build-time switches make it misbehave:
 *   -DMINI_HANG   print the start marker, then spin forever (timeout test)
 *   -DMINI_EXIT   return from main: the kernel panics ("Attempted to kill init")
 *   -DMINI_CLAIM_UKL   claim variant=ukl (wrong-variant/cpl test)
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/reboot.h>
#include <sys/syscall.h>

static int cpl(void)
{
	unsigned short cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

int main(void)
{
#ifdef MINI_CLAIM_UKL
	const char *variant = "ukl";
#else
	const char *variant = "classic";
#endif
	struct timespec a, b;
	long i, n = 20000;

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("ukl-probe: start variant=%s cpl=%d pid=%d\n", variant, cpl(), (int)getpid());
#ifdef MINI_HANG
	for (;;)
		;
#endif
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("ukl-probe: bench syscall=getppid calls=%ld ns_per_call=%.1f\n", n,
	       ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	printf("ukl-probe: done status=0\n");
#ifdef MINI_EXIT
	return 0;
#endif
	sync();
	reboot(RB_POWER_OFF);
	return 1;
}
