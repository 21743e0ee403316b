/*
 * fsbench.c: filesystem workloads for tests/bench/run, the same system calls a shell would make,
 * timed in a loop, run against a coordfs mount and against tmpfs (the floor).
 *
 *   fsbench cat   --file F [--seconds S]          open(O_RDONLY) + read + close of a hot file
 *   fsbench echo  --dir D [--seconds S]           `echo ... > D/eN`: open(O_CREAT|O_TRUNC) + write + close
 *                                                 of a new 100-byte file each time
 *   fsbench lock  --file F [--seconds S]          `set -C; echo $$ > F` then `rm F`:
 *                                                 open(O_CREAT|O_EXCL) + write + close, then unlink
 *   fsbench ls    --dir D [--count N] [--seconds S]  readdir of D after making it hold N files
 *                                                 (default 10000); at least 3 listings
 *   fsbench watch --file F --watch W --path P [--seconds S]
 *                                                 overwrite F (same size) and time until the .watch
 *                                                 file W (opened on another mount, watching P) reads
 *                                                 a `changed P` line
 *   fsbench watch --file F --inotify [--seconds S]  the same with inotify (tmpfs floor)
 *
 * Output: `RESULT rate=OPS/S p50_us=.. p99_us=.. ops=N errors=N secs=S`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct lat {
	uint32_t *v;
	size_t n, cap;
};

static void lat_add(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint32_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return;
		l->v = v;
		l->cap = cap;
	}
	/* tenths of a microsecond: tmpfs operations take a few microseconds */
	uint64_t t = ns / 100;
	l->v[l->n++] = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void report(struct lat *l, uint64_t t0, uint64_t t1, unsigned long long errors)
{
	double p50 = 0, p99 = 0, secs = (t1 - t0) / 1e9;
	if (l->n) {
		qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
		p50 = l->v[(l->n - 1) * 50 / 100] / 10.0;
		p99 = l->v[(l->n - 1) * 99 / 100] / 10.0;
	}
	printf("RESULT rate=%.1f p50_us=%.1f p99_us=%.1f ops=%zu errors=%llu secs=%.3f\n", secs > 0 ? l->n / secs : 0,
	       p50, p99, l->n, errors, secs);
	fflush(stdout);
}

static const char *op, *file, *dir, *watchf, *wpath;
static double seconds = 3.0;
static long count = 10000;
static int use_inotify;
static char value[101];

static int write_all(int fd, const void *p, size_t n)
{
	return write(fd, p, n) == (ssize_t)n ? 0 : -1;
}

static int do_cat(void)
{
	char buf[4096];
	struct lat l = {0};
	unsigned long long errors = 0;
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t = t0;
	while (t < end) {
		uint64_t s = now_ns();
		int fd = open(file, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
		if (fd >= 0)
			close(fd);
		t = now_ns();
		if (n <= 0)
			errors++;
		else
			lat_add(&l, t - s);
	}
	report(&l, t0, t, errors);
	return 0;
}

static int do_echo(void)
{
	char path[4096];
	struct lat l = {0};
	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "fsbench: cannot create %s: %s\n", dir, strerror(errno));
		return 1;
	}
	unsigned long long errors = 0, i = 0;
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t = t0;
	while (t < end) {
		snprintf(path, sizeof(path), "%s/e%llu", dir, i++);
		uint64_t s = now_ns();
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int rc = fd >= 0 ? write_all(fd, value, 100) : -1;
		if (fd >= 0 && close(fd))
			rc = -1;
		t = now_ns();
		if (rc)
			errors++;
		else
			lat_add(&l, t - s);
	}
	report(&l, t0, t, errors);
	return 0;
}

static int do_lock(void)
{
	struct lat l = {0};
	unsigned long long errors = 0;
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t = t0;
	while (t < end) {
		uint64_t s = now_ns();
		int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
		int rc = fd >= 0 ? write_all(fd, pid, (size_t)n) : -1;
		if (fd >= 0 && close(fd))
			rc = -1;
		if (rc == 0 && unlink(file))
			rc = -1;
		t = now_ns();
		if (rc) {
			errors++;
			unlink(file);
		} else {
			lat_add(&l, t - s);
		}
	}
	report(&l, t0, t, errors);
	return 0;
}

static int do_ls(void)
{
	char path[4096];
	mkdir(dir, 0755);
	for (long i = 0; i < count; i++) {
		snprintf(path, sizeof(path), "%s/f%06ld", dir, i);
		if (access(path, F_OK) == 0)
			continue;
		int fd = open(path, O_WRONLY | O_CREAT, 0644);
		if (fd < 0 || write_all(fd, value, 100)) {
			fprintf(stderr, "fsbench: cannot create %s: %s\n", path, strerror(errno));
			return 1;
		}
		close(fd);
	}
	struct lat l = {0};
	unsigned long long errors = 0;
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t = t0;
	while (t < end || l.n + errors < 3) {
		uint64_t s = now_ns();
		DIR *d = opendir(dir);
		long n = 0;
		if (d) {
			while (readdir(d))
				n++;
			closedir(d);
		}
		t = now_ns();
		if (n < count)
			errors++;
		else
			lat_add(&l, t - s);
	}
	report(&l, t0, t, errors);
	return 0;
}

/* Read event lines from fd until one is "changed <wpath> ...": 0, or -1 after 5 s. */
static int await_changed(int fd, char *buf, size_t cap, size_t *have)
{
	size_t plen = strlen(wpath);
	uint64_t dl = now_ns() + 5000000000ull;
	for (;;) {
		char *nl;
		while ((nl = memchr(buf, '\n', *have)) != NULL) {
			size_t len = (size_t)(nl - buf) + 1;
			int hit = len > 8 + plen && !memcmp(buf, "changed ", 8) && !memcmp(buf + 8, wpath, plen) &&
				  (buf[8 + plen] == ' ' || buf[8 + plen] == '\n');
			memmove(buf, buf + len, *have - len);
			*have -= len;
			if (hit)
				return 0;
		}
		uint64_t t = now_ns();
		if (t >= dl)
			return -1;
		struct pollfd p = {fd, POLLIN, 0};
		poll(&p, 1, (int)((dl - t) / 1000000) + 1);
		ssize_t n = read(fd, buf + *have, cap - *have - 1);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n > 0)
			*have += (size_t)n;
		if (*have >= cap - 1)
			*have = 0; /* a line longer than the buffer: drop it */
	}
}

static int do_watch(void)
{
	int wfd;
	if (use_inotify) {
		wfd = inotify_init1(IN_NONBLOCK);
		if (wfd < 0 || inotify_add_watch(wfd, file, IN_CLOSE_WRITE) < 0) {
			perror("fsbench: inotify");
			return 1;
		}
	} else {
		wfd = open(watchf, O_RDWR | O_NONBLOCK);
		char line[4200];
		int n = snprintf(line, sizeof(line), "%s\n", wpath);
		if (wfd < 0 || write_all(wfd, line, (size_t)n)) {
			fprintf(stderr, "fsbench: cannot watch %s through %s: %s\n", wpath, watchf, strerror(errno));
			return 1;
		}
	}
	static char buf[65536];
	size_t have = 0;
	struct lat l = {0};
	unsigned long long errors = 0, i = 0;
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t = t0;
	while (t < end) {
		/* drop whatever earlier writes still produce */
		usleep(2000);
		while (read(wfd, buf, sizeof(buf)) > 0)
			;
		have = 0;
		char v[101];
		snprintf(v, sizeof(v), "%099llu", i++);
		v[99] = '\n';
		uint64_t s = now_ns();
		int fd = open(file, O_WRONLY);
		int rc = fd >= 0 ? (pwrite(fd, v, 100, 0) == 100 ? 0 : -1) : -1;
		if (fd >= 0 && close(fd))
			rc = -1;
		if (rc == 0) {
			if (use_inotify) {
				struct pollfd p = {wfd, POLLIN, 0};
				rc = poll(&p, 1, 5000) == 1 && read(wfd, buf, sizeof(buf)) > 0 ? 0 : -1;
			} else {
				rc = await_changed(wfd, buf, sizeof(buf), &have);
			}
		}
		t = now_ns();
		if (rc)
			errors++;
		else
			lat_add(&l, t - s);
	}
	report(&l, t0, t, errors);
	close(wfd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"file", required_argument, NULL, 'f'},  {"dir", required_argument, NULL, 'd'},
		{"watch", required_argument, NULL, 'w'}, {"path", required_argument, NULL, 'p'},
		{"seconds", required_argument, NULL, 's'}, {"count", required_argument, NULL, 'n'},
		{"inotify", no_argument, NULL, 'i'},     {NULL, 0, NULL, 0},
	};
	if (argc < 2) {
		fprintf(stderr, "usage: fsbench cat|echo|lock|ls|watch [options] (see fsbench.c)\n");
		return 2;
	}
	op = argv[1];
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'f': file = optarg; break;
		case 'd': dir = optarg; break;
		case 'w': watchf = optarg; break;
		case 'p': wpath = optarg; break;
		case 's': seconds = atof(optarg); break;
		case 'n': count = atol(optarg); break;
		case 'i': use_inotify = 1; break;
		default: return 2;
		}
	}
	for (int i = 0; i < 99; i++)
		value[i] = (char)('a' + i % 26);
	value[99] = '\n';
	if (!strcmp(op, "cat") && file)
		return do_cat();
	if (!strcmp(op, "echo") && dir)
		return do_echo();
	if (!strcmp(op, "lock") && file)
		return do_lock();
	if (!strcmp(op, "ls") && dir)
		return do_ls();
	if (!strcmp(op, "watch") && file && (use_inotify || (watchf && wpath)))
		return do_watch();
	fprintf(stderr, "fsbench: bad arguments for '%s' (see tests/bench/fsbench.c)\n", op);
	return 2;
}
