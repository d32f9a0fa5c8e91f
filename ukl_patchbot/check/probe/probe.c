/*
 * ukl-probe: one unmodified C program that proves a kernel variant works.
 *
 * Built once against stock glibc (classic: /init in an initramfs, user
 * mode) and once against the UKL glibc (linked into vmlinux, kernel mode).
 * It prints a marker with the privilege level read from %cs, checks TLS,
 * malloc (brk and mmap sized) and write(2), runs the ABI checks below,
 * times N getppid() calls and restarts the machine (QEMU runs with
 * -no-reboot, so it exits).  The "done" line is printed only if every check
 * passed; otherwise it exits non-zero, which a kernel makes loud (PID 1
 * exiting panics the classic kernel; UKL panics on a non-zero exit).
 *
 * The ABI checks, one line each, and the calls they exercise (all through
 * glibc's wrappers: this file holds no syscall instruction of its own):
 *   files   open, read, fstat, lseek, pread64, close, openat+getdents64
 *           (opendir/readdir), O_CREAT|O_EXCL, write, unlink, stat
 *   fds     close then open reuses the number; close of a pipe's write end
 *           really releases it (deferred fput on syscall exit): EOF on read
 *   pipe    pipe2, write, read, fcntl(O_NONBLOCK) -> EAGAIN
 *   memory  mmap (anonymous, MAP_FIXED_NOREPLACE, MAP_PRIVATE of a file),
 *           munmap, mincore -> ENOMEM, mprotect -> read() into it EFAULT
 *   time    time, gettimeofday, clock_gettime(CLOCK_REALTIME)
 *   tcp     ioctl SIOCGIFFLAGS/SIOCSIFFLAGS (lo up), socket, bind, listen,
 *           getsockname, connect (EINPROGRESS), epoll_create1, epoll_ctl,
 *           epoll_wait, accept4, getsockopt(SO_ERROR), send, recv, close
 *   fpu     ldmxcsr/fldcw (upward rounding), AF_ALG skcipher ecb(serpent):
 *           socket, bind, setsockopt(ALG_SET_KEY), accept, sendmsg, read;
 *           xmm8-15, MXCSR and the x87 control word checked after each call
 *   signals rt_sigaction, kill (handler ran before kill returned),
 *           setitimer(ITIMER_REAL) interrupting a blocking read: restarted
 *           with SA_RESTART, EINTR without
 *
 * Data files: the pipeline puts DATA_NAME into the data directory (/probe,
 * or $UKL_PROBE_DATA when not PID 1) with byte i = data_byte(i), for
 * DATA_SIZE bytes (ukl_patchbot/check/uklapp.py: probe_data_files).
 *
 * Lines (parsed by ukl_patchbot.console):
 *   ukl-probe: start variant=<classic|ukl> cpl=<0-3> pid=<n> up=<seconds>
 *   ukl-probe: abi <check> ok | ukl-probe: abi <check> FAIL <reason>
 *   ukl-probe: bench syscall=getppid calls=<N> ns_per_call=<float>
 *   ukl-probe: bench loop=<file_read|tcp_rr> calls=<N> ns_per_op=<float>
 *   ukl-probe: done status=0
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_alg.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

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
#ifndef SOL_ALG
#define SOL_ALG 279
#endif

#define DATA_DIR "/probe"
#define DATA_NAME "data.bin"
#define DATA_SIZE 12411		/* three pages and a partial one */
#define PAGE 4096

static __thread int tls_initialised = 42;	/* .tdata */
static __thread char tls_zeroed[64];		/* .tbss */

static char data_dir[256] = DATA_DIR;
static char reason[200];	/* why the current check failed */

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

/* A check failed on a call: record what and errno; returns -1. */
static int failed(const char *what)
{
	int e = errno;

	snprintf(reason, sizeof(reason), "%s: errno=%d (%s)", what, e, strerror(e));
	return -1;
}

/* A check failed on a value; returns -1. */
static int wrong(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return -1;
}

/* The data file's content, generated the same way by the pipeline. */
static unsigned char data_byte(unsigned int i)
{
	return (unsigned char)((i * 131u) ^ (i >> 8));
}

static int data_matches(const unsigned char *buf, unsigned int off, unsigned int len)
{
	unsigned int i;

	for (i = 0; i < len; i++)
		if (buf[i] != data_byte(off + i))
			return 0;
	return 1;
}

static void data_path(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", data_dir, name);
}

/* ---------------------------------------------------------------- files */

static int check_data_file(const char *path)
{
	static unsigned char buf[DATA_SIZE + 16];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return failed("open data file");
	if (fstat(fd, &st) != 0)
		return failed("fstat");
	if (!S_ISREG(st.st_mode) || st.st_size != DATA_SIZE)
		return wrong("fstat: size %lld, expected %d", (long long)st.st_size, DATA_SIZE);
	n = read(fd, buf, sizeof(buf));
	if (n != DATA_SIZE)
		return n < 0 ? failed("read") : wrong("read %zd bytes, expected %d", n, DATA_SIZE);
	if (!data_matches(buf, 0, DATA_SIZE))
		return wrong("read: content differs from the generated data");
	if (read(fd, buf, 1) != 0)
		return wrong("read at end of file did not return 0");
	if (lseek(fd, 5000, SEEK_SET) != 5000)
		return failed("lseek SEEK_SET");
	if (read(fd, buf, 100) != 100 || !data_matches(buf, 5000, 100))
		return wrong("read after lseek: wrong bytes");
	if (pread(fd, buf, 300, 8000) != 300 || !data_matches(buf, 8000, 300))
		return wrong("pread: wrong bytes");
	if (lseek(fd, 0, SEEK_CUR) != 5100)
		return wrong("pread moved the file offset");
	if (lseek(fd, 0, SEEK_END) != DATA_SIZE)
		return failed("lseek SEEK_END");
	return close(fd) == 0 ? 0 : failed("close");
}

static int dir_has(const char *name)
{
	DIR *d = opendir(data_dir);
	struct dirent *e;
	int found = 0;

	if (d == NULL)
		return failed("opendir");
	errno = 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, name) == 0)
			found = 1;
	if (errno != 0)
		return failed("readdir");
	closedir(d);
	return found ? 0 : wrong("readdir: %s not listed in %s", name, data_dir);
}

static int check_new_file(void)
{
	static const char text[] = "written by ukl-probe\n";
	char path[300], back[64];
	struct stat st;
	int fd;

	data_path(path, sizeof(path), "scratch.txt");
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return failed("create scratch file");
	if (write(fd, text, sizeof(text)) != (ssize_t)sizeof(text))
		return failed("write scratch file");
	if (lseek(fd, 0, SEEK_SET) != 0)
		return failed("lseek scratch file");
	if (read(fd, back, sizeof(back)) != (ssize_t)sizeof(text) || memcmp(back, text, sizeof(text)))
		return wrong("scratch file read back differs");
	if (close(fd) != 0)
		return failed("close scratch file");
	if (dir_has("scratch.txt") != 0)
		return -1;
	if (unlink(path) != 0)
		return failed("unlink");
	if (stat(path, &st) == 0 || errno != ENOENT)
		return wrong("scratch file still there after unlink");
	return 0;
}

static int check_files(void)
{
	char path[300];

	data_path(path, sizeof(path), DATA_NAME);
	if (check_data_file(path) != 0 || dir_has(DATA_NAME) != 0)
		return -1;
	return check_new_file();
}

/* ---------------------------------------------------------------- fds */

static int check_fds(void)
{
	char path[300], c;
	int fd, again, p[2];
	ssize_t n;

	data_path(path, sizeof(path), DATA_NAME);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return failed("open");
	if (close(fd) != 0)
		return failed("close");
	again = open(path, O_RDONLY);
	if (again < 0)
		return failed("open again");
	close(again);
	if (again != fd)
		return wrong("closed fd %d not reused (got %d)", fd, again);
	/*
	 * The write end's file is released by the final fput, which the
	 * kernel defers to the exit of the close() call: if that never runs,
	 * the pipe still has a writer and the read says EAGAIN, not EOF.
	 */
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
		return failed("pipe2");
	if (close(p[1]) != 0)
		return failed("close write end");
	n = read(p[0], &c, 1);
	close(p[0]);
	if (n < 0)
		return failed("read after closing the write end (close deferred forever?)");
	return n == 0 ? 0 : wrong("read after closing the write end returned %zd", n);
}

/* ---------------------------------------------------------------- pipe */

static int check_pipe(void)
{
	char out[1000], in[1000];
	int p[2];
	ssize_t n;
	size_t i;

	for (i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7);
	if (pipe(p) != 0)
		return failed("pipe");
	if (write(p[1], out, sizeof(out)) != (ssize_t)sizeof(out))
		return failed("write");
	n = read(p[0], in, sizeof(in));
	if (n != (ssize_t)sizeof(in) || memcmp(in, out, sizeof(in)) != 0)
		return wrong("read %zd bytes back, expected the %zu written", n, sizeof(out));
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) != 0)
		return failed("fcntl O_NONBLOCK");
	n = read(p[0], in, 1);
	if (n >= 0 || errno != EAGAIN)
		return n >= 0 ? wrong("read on an empty O_NONBLOCK pipe returned %zd", n)
			      : failed("read on an empty O_NONBLOCK pipe (expected EAGAIN)");
	close(p[0]);
	close(p[1]);
	return 0;
}

/* ---------------------------------------------------------------- memory */

static int check_unmap(void)
{
	unsigned char vec[4];
	char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *q;

	if (p == MAP_FAILED)
		return failed("mmap anonymous");
	memset(p, 0x5a, 4 * PAGE);
	if (munmap(p, 4 * PAGE) != 0)
		return failed("munmap");
	if (mincore(p, 4 * PAGE, vec) == 0 || errno != ENOMEM)
		return mincore(p, 4 * PAGE, vec) == 0 ? wrong("mincore: still mapped after munmap")
						     : failed("mincore after munmap (expected ENOMEM)");
	q = mmap(p, 4 * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (q == MAP_FAILED)
		return failed("mmap MAP_FIXED_NOREPLACE at the freed address");
	if (q != p || q[0] != 0)
		return wrong("remap at %p gave %p, first byte %d", (void *)p, (void *)q, q[0]);
	return munmap(q, 4 * PAGE) == 0 ? 0 : failed("munmap again");
}

static int check_mprotect(const char *path)
{
	char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (p == MAP_FAILED || fd < 0)
		return failed(fd < 0 ? "open" : "mmap");
	p[0] = 1;
	if (mprotect(p, PAGE, PROT_READ) != 0)
		return failed("mprotect PROT_READ");
	n = read(fd, p, 100);	/* the kernel's copy must see the protection */
	if (n >= 0 || errno != EFAULT)
		return n >= 0 ? wrong("read into a PROT_READ page returned %zd", n)
			      : failed("read into a PROT_READ page (expected EFAULT)");
	if (p[0] != 1)
		return wrong("read into a PROT_READ page changed it");
	if (mprotect(p, PAGE, PROT_READ | PROT_WRITE) != 0)
		return failed("mprotect back to PROT_READ|PROT_WRITE");
	if (pread(fd, p, 100, 0) != 100 || !data_matches((unsigned char *)p, 0, 100))
		return wrong("read into the page made writable again failed");
	close(fd);
	return munmap(p, PAGE) == 0 ? 0 : failed("munmap");
}

static int check_file_mapping(const char *path)
{
	unsigned char *m, first;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return failed("open");
	m = mmap(NULL, DATA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return failed("mmap MAP_PRIVATE of the data file");
	if (!data_matches(m, 0, DATA_SIZE))
		return wrong("file mapping: content differs from the file");
	m[0] ^= 0xff;
	m[DATA_SIZE - 1] ^= 0xff;
	if (pread(fd, &first, 1, 0) != 1)
		return failed("pread");
	if (first != data_byte(0) || m[0] != (unsigned char)(data_byte(0) ^ 0xff))
		return wrong("a write to a private mapping reached the file");
	close(fd);
	return munmap(m, DATA_SIZE) == 0 ? 0 : failed("munmap file mapping");
}

static int check_memory(void)
{
	char path[300];

	data_path(path, sizeof(path), DATA_NAME);
	if (check_unmap() != 0 || check_mprotect(path) != 0)
		return -1;
	return check_file_mapping(path);
}

/* ---------------------------------------------------------------- time */

static int check_time(void)
{
	const time_t y2020 = 1577836800;	/* 2020-01-01T00:00:00Z */
	struct timespec ts;
	struct timeval tv;
	time_t t;

	t = time(NULL);
	if (t == (time_t)-1)
		return failed("time");
	if (gettimeofday(&tv, NULL) != 0)
		return failed("gettimeofday");
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return failed("clock_gettime CLOCK_REALTIME");
	if (t < y2020 || tv.tv_sec < y2020)
		return wrong("time %lld / gettimeofday %lld before 2020", (long long)t,
			     (long long)tv.tv_sec);
	if (llabs((long long)(t - ts.tv_sec)) > 2 || llabs((long long)(tv.tv_sec - ts.tv_sec)) > 2)
		return wrong("time %lld, gettimeofday %lld, CLOCK_REALTIME %lld disagree",
			     (long long)t, (long long)tv.tv_sec, (long long)ts.tv_sec);
	return 0;
}

/* ---------------------------------------------------------------- tcp */

/* As PID 1 nobody brought lo up; harmless if it is up already. */
static int loopback_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return failed("socket AF_INET");
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
		return failed("ioctl SIOCGIFFLAGS lo");
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
			return failed("ioctl SIOCSIFFLAGS lo up");
	}
	close(s);
	return 0;
}

/* Wait (up to 5 s) until epoll reports ``events`` on ``fd``. */
static int wait_for(int ep, int fd, unsigned int events, const char *what)
{
	struct epoll_event ev[4];
	long long deadline = now_ns() + 5000000000LL;
	int n, i;

	while (now_ns() < deadline) {
		n = epoll_wait(ep, ev, 4, 1000);
		if (n < 0 && errno != EINTR)
			return failed("epoll_wait");
		for (i = 0; i < n; i++)
			if (ev[i].data.fd == fd && (ev[i].events & events))
				return 0;
	}
	return wrong("epoll_wait: no event for %s within 5 s", what);
}

static int watch(int ep, int op, int fd, unsigned int events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	return epoll_ctl(ep, op, fd, &ev) == 0 ? 0 : failed("epoll_ctl");
}

/* Send ``msg`` on ``from``, receive exactly it on ``to`` once epoll says so. */
static int exchange(int ep, int from, int to, const char *msg)
{
	char buf[64];
	size_t len = strlen(msg);
	ssize_t n;

	if (send(from, msg, len, 0) != (ssize_t)len)
		return failed("send");
	if (wait_for(ep, to, EPOLLIN, "data") != 0)
		return -1;
	n = recv(to, buf, sizeof(buf), 0);
	if (n < 0)
		return failed("recv");
	if ((size_t)n != len || memcmp(buf, msg, len) != 0)
		return wrong("recv got %zd bytes, expected \"%s\"", n, msg);
	return 0;
}

static int check_tcp(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	int ls, cs, ss, ep, err = -1;
	char c;

	if (loopback_up() != 0)
		return -1;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cs = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ls < 0 || cs < 0)
		return failed("socket AF_INET SOCK_STREAM");
	if (ep < 0)
		return failed("epoll_create1");
	if (bind(ls, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		return failed("bind 127.0.0.1:0");
	if (listen(ls, 4) != 0)
		return failed("listen");
	if (getsockname(ls, (struct sockaddr *)&addr, &alen) != 0 || addr.sin_port == 0)
		return failed("getsockname");
	if (watch(ep, EPOLL_CTL_ADD, ls, EPOLLIN) != 0)
		return -1;
	if (connect(cs, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS)
		return failed("non-blocking connect (expected EINPROGRESS)");
	if (wait_for(ep, ls, EPOLLIN, "the listener") != 0)
		return -1;
	ss = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (ss < 0)
		return failed("accept4");
	if (watch(ep, EPOLL_CTL_ADD, cs, EPOLLOUT) != 0 ||
	    wait_for(ep, cs, EPOLLOUT, "the connect") != 0)
		return -1;
	alen = sizeof(err);
	if (getsockopt(cs, SOL_SOCKET, SO_ERROR, &err, &alen) != 0)
		return failed("getsockopt SO_ERROR");
	if (err != 0)
		return wrong("connect completed with SO_ERROR=%d", err);
	if (watch(ep, EPOLL_CTL_MOD, cs, EPOLLIN) != 0 || watch(ep, EPOLL_CTL_ADD, ss, EPOLLIN) != 0)
		return -1;
	if (exchange(ep, cs, ss, "GET /probe") != 0 || exchange(ep, ss, cs, "200 probe ok") != 0)
		return -1;
	if (close(cs) != 0)
		return failed("close client");
	if (wait_for(ep, ss, EPOLLIN | EPOLLRDHUP, "the client's close") != 0)
		return -1;
	if (recv(ss, &c, 1, 0) != 0)
		return wrong("recv after the client closed did not return 0");
	close(ss);
	close(ls);
	close(ep);
	return 0;
}

/* ---------------------------------------------------------------- fpu */

/*
 * Registers the caller of a function may not rely on (xmm8-15) are loaded
 * right before a call into glibc's system-call wrapper and stored right
 * after it, in one asm block: the compiler cannot save them around the call
 * for us. glibc's wrappers do not touch them; the kernel must not either,
 * even when it runs SSE code of its own (kernel_fpu_begin/end).
 */
struct kept_call {
	const void *fn;			/* called with a, b, c as its three arguments */
	long a, b, c, ret;
	uint64_t in[16], out[16];	/* xmm8..xmm15, two quadwords each */
};

static void call_keeping_xmm(struct kept_call *k)
{
#define LOAD(n) "movdqu %c[in]+16*(" #n "-8)(%%rbx), %%xmm" #n "\n\t"
#define STORE(n) "movdqu %%xmm" #n ", %c[out]+16*(" #n "-8)(%%rbx)\n\t"
	__asm__ volatile (
		"mov %%rsp, %%r12\n\t"
		"sub $128, %%rsp\n\t"		/* step over the red zone */
		"and $-16, %%rsp\n\t"		/* the ABI's alignment at a call */
		LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12) LOAD(13) LOAD(14) LOAD(15)
		"mov %c[a](%%rbx), %%rdi\n\t"
		"mov %c[b](%%rbx), %%rsi\n\t"
		"mov %c[c](%%rbx), %%rdx\n\t"
		"call *%c[fn](%%rbx)\n\t"
		"mov %%rax, %c[ret](%%rbx)\n\t"
		STORE(8) STORE(9) STORE(10) STORE(11) STORE(12) STORE(13) STORE(14) STORE(15)
		"mov %%r12, %%rsp\n\t"
		:
		: "b" (k), [in] "i" (offsetof(struct kept_call, in)),
		  [out] "i" (offsetof(struct kept_call, out)),
		  [a] "i" (offsetof(struct kept_call, a)), [b] "i" (offsetof(struct kept_call, b)),
		  [c] "i" (offsetof(struct kept_call, c)), [fn] "i" (offsetof(struct kept_call, fn)),
		  [ret] "i" (offsetof(struct kept_call, ret))
		: "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
		  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
		  "memory", "cc");
#undef LOAD
#undef STORE
}

#define MXCSR_DEFAULT 0x1f80
#define MXCSR_UP 0x5f80		/* RC = 10b: round toward +infinity */
#define MXCSR_FLAGS 0x3f	/* exception flags our own arithmetic sets */
#define X87CW_DEFAULT 0x037f
#define X87CW_UP 0x0b7f

static void set_fp_control(unsigned int mxcsr, unsigned short cw)
{
	/*
	 * What fesetround(FE_UPWARD) does on x86-64; fesetround lives in libm,
	 * which the UKL application link does not include.
	 */
	__asm__ volatile ("ldmxcsr %0\n\tfldcw %1" : : "m" (mxcsr), "m" (cw));
}

static void get_fp_control(unsigned int *mxcsr, unsigned short *cw)
{
	__asm__ volatile ("stmxcsr %0\n\tfnstcw %1" : "=m" (*mxcsr), "=m" (*cw));
}

/* Both units round upward: the tiny addend survives, and 1/3 rounds up. */
static int rounds_upward(int i)
{
	volatile double one = 1.0, tiny = 0x1p-60, three = 3.0 + i % 2;
	volatile long double lone = 1.0L, ltiny = 0x1p-70L;
	double third = one / three;

	return one + tiny > one && lone + ltiny > lone && third * three >= one;
}

/* Serpent, 128-bit key 00..0f, plaintext 00..0f (the kernel's testmgr vectors). */
static const unsigned char serpent_key[16] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
};
static const unsigned char serpent_ct[16] = {
	0x4c, 0x7d, 0x8a, 0x32, 0x80, 0x72, 0xa2, 0x2c,
	0x82, 0x3e, 0x4a, 0x1f, 0x3a, 0xcd, 0xa1, 0x6d,
};
#define CIPHER_BYTES 512	/* 32 blocks: the SSE2 code does 8 at a time */

static int alg_open(void)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG };
	int tfm, op;

	strcpy((char *)sa.salg_type, "skcipher");
	strcpy((char *)sa.salg_name, "ecb(serpent)");
	tfm = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (tfm < 0)
		return failed("socket AF_ALG");
	if (bind(tfm, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return failed("bind AF_ALG skcipher ecb(serpent)");
	if (setsockopt(tfm, SOL_ALG, ALG_SET_KEY, serpent_key, sizeof(serpent_key)) != 0)
		return failed("setsockopt ALG_SET_KEY");
	op = accept(tfm, NULL, NULL);
	if (op < 0)
		return failed("accept AF_ALG");
	close(tfm);
	return op;
}

struct cipher_msg {
	struct msghdr msg;
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(uint32_t))];
		struct cmsghdr align;
	} ctl;
};

static void cipher_msg_init(struct cipher_msg *m, unsigned char *plain)
{
	struct cmsghdr *c;

	memset(m, 0, sizeof(*m));
	m->iov.iov_base = plain;
	m->iov.iov_len = CIPHER_BYTES;
	m->msg.msg_iov = &m->iov;
	m->msg.msg_iovlen = 1;
	m->msg.msg_control = m->ctl.buf;
	m->msg.msg_controllen = sizeof(m->ctl.buf);
	c = CMSG_FIRSTHDR(&m->msg);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_OP;
	c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
	*(uint32_t *)CMSG_DATA(c) = ALG_OP_ENCRYPT;
}

#ifdef PROBE_CLOBBER_XMM
/* Self-test of the check: "wrappers" that lose xmm11 must be caught. */
static ssize_t clobbering_write(int fd, const void *buf, size_t len)
{
	__asm__ volatile ("pxor %%xmm11, %%xmm11" : : : "xmm11");
	return write(fd, buf, len);
}

static ssize_t clobbering_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	__asm__ volatile ("pxor %%xmm11, %%xmm11" : : : "xmm11");
	return sendmsg(fd, msg, flags);
}
#define PIPE_WRITE clobbering_write
#define ALG_SENDMSG clobbering_sendmsg
#else
#define PIPE_WRITE write
#define ALG_SENDMSG sendmsg
#endif

/* One call kept by call_keeping_xmm; checks registers, control words, result. */
static int kept_io(const void *fn, long a, long b, long c, long want, int i, const char *what)
{
	struct kept_call k = { .fn = fn, .a = a, .b = b, .c = c };
	unsigned int mxcsr, j;
	unsigned short cw;

	for (j = 0; j < 16; j++)
		k.in[j] = 0x0123456789abcdefULL * (j + 1) + (uint64_t)i;
	call_keeping_xmm(&k);
	get_fp_control(&mxcsr, &cw);
	if ((mxcsr & ~MXCSR_FLAGS) != MXCSR_UP || cw != X87CW_UP)
		return wrong("after %s #%d: MXCSR %#x x87 CW %#x, expected %#x %#x", what, i,
			     mxcsr, cw, MXCSR_UP, X87CW_UP);
	for (j = 0; j < 16; j++)
		if (k.out[j] != k.in[j])
			return wrong("after %s #%d: xmm%u changed", what, i, 8 + j / 2);
	if (k.ret == want)
		return 0;
	return k.ret < 0 ? failed(what) : wrong("%s #%d returned %ld, expected %ld", what, i,
						 k.ret, want);
}

/* sendmsg + read on the AF_ALG socket; the read runs the cipher in the kernel. */
static int encrypt_once(int op, struct cipher_msg *m, unsigned char *cipher, int i)
{
	int b;

	if (kept_io((const void *)ALG_SENDMSG, op, (long)&m->msg, 0, CIPHER_BYTES, i,
		    "sendmsg AF_ALG") != 0 ||
	    kept_io((const void *)read, op, (long)cipher, CIPHER_BYTES, CIPHER_BYTES, i,
		    "read AF_ALG") != 0)
		return -1;
	for (b = 0; b < CIPHER_BYTES; b += 16)
		if (memcmp(cipher + b, serpent_ct, 16) != 0)
			return wrong("ciphertext block %d differs from the known answer", b / 16);
	return 0;
}

/* Without AF_ALG: a pipe round trip, so the register checks still run. */
static int pipe_once(const int *p, unsigned char *plain, unsigned char *back, int i)
{
	if (kept_io((const void *)PIPE_WRITE, p[1], (long)plain, CIPHER_BYTES, CIPHER_BYTES, i,
		    "write pipe") != 0 ||
	    kept_io((const void *)read, p[0], (long)back, CIPHER_BYTES, CIPHER_BYTES, i,
		    "read pipe") != 0)
		return -1;
	return memcmp(plain, back, CIPHER_BYTES) == 0 ? 0 : wrong("pipe #%d: bytes differ", i);
}

/*
 * ~0.3 s of FP arithmetic and system calls; op < 0: no AF_ALG, use pipe ``p``.
 * The buffers come from malloc: AF_ALG pins the pages it reads into
 * (get_user_pages), which works on an address space's memory, not on a
 * UKL application's image or stack (kernel memory; patchsets/README.md).
 */
static int fpu_loop(int op, const int *p)
{
	unsigned char *plain = malloc(CIPHER_BYTES), *out = malloc(CIPHER_BYTES);
	struct cipher_msg m;
	long long end = now_ns() + 300000000LL;
	int i, b, rc = 0;

	if (!plain || !out)
		return wrong("malloc of %d bytes failed", CIPHER_BYTES);
	for (b = 0; b < CIPHER_BYTES; b++)
		plain[b] = (unsigned char)(b % 16);	/* every block is 00..0f */
	cipher_msg_init(&m, plain);
	for (i = 0; rc == 0 && (i < 20 || now_ns() < end); i++) {
		if (!rounds_upward(i))
			rc = wrong("arithmetic #%d no longer rounds upward", i);
		else if ((op >= 0 ? encrypt_once(op, &m, out, i) : pipe_once(p, plain, out, i)) != 0)
			rc = -1;
	}
	free(plain);
	free(out);
	return rc;
}

static int check_fpu(void)
{
	char alg_reason[sizeof(reason)];
	int op, rc, p[2] = { -1, -1 };

	set_fp_control(MXCSR_UP, X87CW_UP);
	op = alg_open();
	snprintf(alg_reason, sizeof(alg_reason), "%s", reason);
	if (op < 0 && pipe2(p, O_CLOEXEC) != 0)
		rc = failed("pipe2");
	else
		rc = fpu_loop(op, p);
	set_fp_control(MXCSR_DEFAULT, X87CW_DEFAULT);
	if (op >= 0)
		close(op);
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	if (rc == 0 && op < 0) {	/* the registers held; AF_ALG itself is missing */
		snprintf(reason, sizeof(reason), "%s", alg_reason);
		rc = -1;
	}
	return rc;
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t usr1_seen, alarms_seen;
static int alarm_pipe = -1;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen = 1;
}

static void on_alarm(int sig)
{
	(void)sig;
	alarms_seen++;
	if (alarm_pipe >= 0)
		write(alarm_pipe, "A", 1);
}

static int handle(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL) == 0 ? 0 : failed("sigaction");
}

static int arm_timer_ms(int ms)
{
	struct itimerval it = { .it_value = { .tv_sec = 0, .tv_usec = ms * 1000 } };

	return setitimer(ITIMER_REAL, &it, NULL) == 0 ? 0 : failed("setitimer ITIMER_REAL");
}

/* Block in read() on an empty pipe until the timer's handler interrupts it. */
static int interrupted_read(int restart, ssize_t *n, char *c)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		return failed("pipe2");
	alarm_pipe = restart ? p[1] : -1;
	alarms_seen = 0;
	if (handle(SIGALRM, on_alarm, restart ? SA_RESTART : 0) != 0 || arm_timer_ms(50) != 0)
		return -1;
	*n = read(p[0], c, 1);
	if (*n < 0)
		failed("read");
	alarm_pipe = -1;
	close(p[0]);
	close(p[1]);
	return 0;
}

static int check_signals(void)
{
	ssize_t n;
	char c = 0;

	if (handle(SIGUSR1, on_usr1, 0) != 0)
		return -1;
	if (kill(getpid(), SIGUSR1) != 0)
		return failed("kill SIGUSR1");
	if (!usr1_seen)
		return wrong("SIGUSR1 handler had not run when kill returned");
	if (interrupted_read(1, &n, &c) != 0)
		return -1;
	if (n != 1 || c != 'A' || alarms_seen != 1)
		return n < 0 ? -1 : wrong("SA_RESTART read returned %zd, handler ran %d times", n,
					  (int)alarms_seen);
	if (interrupted_read(0, &n, &c) != 0)
		return -1;
	if (n >= 0 || errno != EINTR || alarms_seen != 1)
		return n >= 0 ? wrong("read without SA_RESTART returned %zd", n)
			      : failed("read without SA_RESTART (expected EINTR)");
	signal(SIGALRM, SIG_DFL);
	return 0;
}

/* ---------------------------------------------------------------- main */

static const struct {
	const char *name;
	int (*run)(void);
} checks[] = {
	{ "files", check_files },
	{ "fds", check_fds },
	{ "pipe", check_pipe },
	{ "memory", check_memory },
	{ "time", check_time },
	{ "tcp", check_tcp },
	{ "fpu", check_fpu },
	{ "signals", check_signals },
};

/* Every check runs; returns how many failed. */
static int run_abi_checks(void)
{
	const char *dir = getenv("UKL_PROBE_DATA");
	unsigned int i;
	int failures = 0;

	if (getpid() != 1 && dir != NULL && *dir != '\0')
		snprintf(data_dir, sizeof(data_dir), "%s", dir);
	for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		reason[0] = '\0';
		if (checks[i].run() == 0) {
			printf("ukl-probe: abi %s ok\n", checks[i].name);
		} else {
			printf("ukl-probe: abi %s FAIL %s\n", checks[i].name,
			       reason[0] ? reason : "(no reason recorded)");
			failures++;
		}
	}
	return failures;
}

/* -------------------------------------------------------------- bench */

/*
 * Two loops beside the getppid one, for tests/bench/bench_syscall.py: a
 * file read (pread of 4 KiB from the data file: the VFS and page cache)
 * and a loopback request/response (1 byte each way over TCP on
 * 127.0.0.1, both ends here: the network stack and a wake-up per
 * message). Blocking sockets, so every recv() is a real wait.
 */
#define BENCH_READS 20000
#define BENCH_ROUND_TRIPS 2000

static void bench_line(const char *name, int n, long long t0)
{
	long long t1 = now_ns();

	if (t0 > 0 && t1 > t0)
		printf("ukl-probe: bench loop=%s calls=%d ns_per_op=%.1f\n",
		       name, n, (double)(t1 - t0) / n);
}

static void bench_file_read(void)
{
	char path[300], buf[4096];
	long long t0;
	int fd, i;

	data_path(path, sizeof(path), DATA_NAME);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	t0 = now_ns();
	for (i = 0; i < BENCH_READS; i++)
		if (pread(fd, buf, sizeof(buf), 0) != sizeof(buf))
			break;
	if (i == BENCH_READS)
		bench_line("file_read", i, t0);
	close(fd);
}

static void bench_tcp_rr(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	int ls, cs, ss = -1, i = 0, one = 1;
	long long t0;
	char c = 'x';

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	cs = socket(AF_INET, SOCK_STREAM, 0);
	if (ls >= 0 && cs >= 0 && bind(ls, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	    listen(ls, 1) == 0 && getsockname(ls, (struct sockaddr *)&addr, &alen) == 0 &&
	    connect(cs, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		ss = accept(ls, NULL, NULL);
	if (ss >= 0) {
		setsockopt(cs, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(ss, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		t0 = now_ns();
		for (i = 0; i < BENCH_ROUND_TRIPS; i++)
			if (send(cs, &c, 1, 0) != 1 || recv(ss, &c, 1, 0) != 1 ||
			    send(ss, &c, 1, 0) != 1 || recv(cs, &c, 1, 0) != 1)
				break;
		if (i == BENCH_ROUND_TRIPS)
			bench_line("tcp_rr", i, t0);
		close(ss);
	}
	close(cs);
	close(ls);
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

	if (run_abi_checks() != 0)
		return fail("abi checks failed");

	t0 = now_ns();
	for (i = 0; i < PROBE_CALLS; i++)
		getppid();
	t1 = now_ns();
	if (t0 < 0 || t1 <= t0)
		return fail("clock_gettime");
	printf("ukl-probe: bench syscall=getppid calls=%d ns_per_call=%.1f\n",
	       PROBE_CALLS, (double)(t1 - t0) / PROBE_CALLS);
	bench_file_read();
	bench_tcp_rr();

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
