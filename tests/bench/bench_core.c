/*
 * bench_core.c: the workloads, timing and statistics shared by coordbench and zkbench.
 *
 *   DRIVER --op OP --hosts H[|H2|...] [options]
 *
 * OP (100-byte values unless --size):
 *   sync-create | sync-set | sync-get   one session, one request at a time, for --seconds
 *   create | set | get                  --conns sessions x --depth requests in flight, for --seconds
 *                                       (or until --count operations, whichever comes first)
 *   load                                create --count nodes as PREFIX/dJ/nI (--fanout per dir),
 *                                       --conns x --depth in flight, no time limit but --seconds
 *   ephemeral                           session A (hosts) creates --count ephemerals, closes; session
 *                                       B (--hosts2) polls the parent's child count until 0;
 *                                       --reps times; reports the close->gone time
 *   crash                               like ephemeral, but the creating client (a child process,
 *                                       --session-ms) is killed with SIGKILL; once, no --reps
 *   failover                            sync sets for 1 s, then kill -9 --kill-pid, then time until
 *                                       the next write is accepted
 *   wait                                retry until a session opens and --path reads; reports the
 *                                       time since --since (ns, CLOCK_REALTIME, e.g. `date +%s%N`)
 *
 * --hosts takes one connect string per connection, separated by '|': connection i uses entry
 * i % n (so the runner decides which member each session talks to, the same way for both systems).
 *
 * Output: one line `RESULT rate=OPS/S p50_us=.. p99_us=.. ops=N errors=N secs=S` on stdout
 * (for ephemeral/failover/wait, p50/p99 are the measured times and rate is 0). Exit 0 when the
 * workload ran (errors are counted, not fatal), 1 when it could not run at all, 2 for bad usage.
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_HOSTSETS 16

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ options */

static struct {
	const char *op;
	char *hostsets[MAX_HOSTSETS];
	int nhostsets;
	const char *hosts2;
	const char *prefix;
	const char *path;
	int conns, depth;
	double seconds;
	long count;
	int fanout;
	int size;
	int session_ms;
	int reps;
	pid_t kill_pid;
	uint64_t since;
	double timeout_s;
	const char *key_file, *server_key_file;
} o = {
	.prefix = "/bench",
	.conns = 1,
	.depth = 1,
	.seconds = 3.0,
	.count = 0,
	.fanout = 1000,
	.size = 100,
	.session_ms = 10000,
	.reps = 3,
	.timeout_s = 120,
};

static const struct backend *be;
static char *value;

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s --op OP --hosts HOSTS[|HOSTS...] [--prefix P] [--conns N] [--depth N]\n"
		"          [--seconds S] [--count N] [--fanout N] [--size BYTES] [--session-ms MS]\n"
		"          [--hosts2 HOSTS] [--reps N] [--kill-pid PID] [--path P] [--since NS] [--timeout S]\n"
		"          [--key FILE --server-key FILE]\n"
		"OP: sync-create sync-set sync-get create set get load ephemeral crash failover wait\n"
		"--key, --server-key (coordbench only): CurveZMQ, this client's key pair (NAME.key from\n"
		"  coordctl keygen) and the ensemble's public key, for servers with auth=curve; default\n"
		"  $COORD_KEY and $COORD_SERVER_KEY, as coordctl; neither: plaintext\n",
		prog);
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{"op", required_argument, NULL, 'o'},       {"hosts", required_argument, NULL, 'H'},
		{"hosts2", required_argument, NULL, 'B'},   {"prefix", required_argument, NULL, 'p'},
		{"conns", required_argument, NULL, 'c'},    {"depth", required_argument, NULL, 'd'},
		{"seconds", required_argument, NULL, 's'},  {"count", required_argument, NULL, 'n'},
		{"fanout", required_argument, NULL, 'f'},   {"size", required_argument, NULL, 'z'},
		{"session-ms", required_argument, NULL, 'S'}, {"reps", required_argument, NULL, 'r'},
		{"kill-pid", required_argument, NULL, 'k'}, {"path", required_argument, NULL, 'P'},
		{"since", required_argument, NULL, 'w'},    {"timeout", required_argument, NULL, 'T'},
		{"key", required_argument, NULL, 'K'},      {"server-key", required_argument, NULL, 'Y'},
		{"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	int c;
	char *hosts = NULL;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'o': o.op = optarg; break;
		case 'H': hosts = optarg; break;
		case 'B': o.hosts2 = optarg; break;
		case 'p': o.prefix = optarg; break;
		case 'c': o.conns = atoi(optarg); break;
		case 'd': o.depth = atoi(optarg); break;
		case 's': o.seconds = atof(optarg); break;
		case 'n': o.count = atol(optarg); break;
		case 'f': o.fanout = atoi(optarg); break;
		case 'z': o.size = atoi(optarg); break;
		case 'S': o.session_ms = atoi(optarg); break;
		case 'r': o.reps = atoi(optarg); break;
		case 'k': o.kill_pid = (pid_t)atol(optarg); break;
		case 'P': o.path = optarg; break;
		case 'w': o.since = strtoull(optarg, NULL, 10); break;
		case 'T': o.timeout_s = atof(optarg); break;
		case 'K': o.key_file = optarg; break;
		case 'Y': o.server_key_file = optarg; break;
		case 'h': usage(stdout, argv[0]); exit(0);
		default: return -1;
		}
	}
	if (!o.op || !hosts || optind != argc || o.conns < 1 || o.conns > MAX_CONNS || o.depth < 1 ||
	    o.size < 0 || o.fanout < 1 || o.reps < 1)
		return -1;
	for (char *save = NULL, *t = strtok_r(hosts, "|", &save); t && o.nhostsets < MAX_HOSTSETS;
	     t = strtok_r(NULL, "|", &save))
		o.hostsets[o.nhostsets++] = t;
	return o.nhostsets ? 0 : -1;
}

/* ------------------------------------------------------------------ statistics */

struct lat {
	uint32_t *v; /* microseconds */
	uint32_t *at; /* with BENCH_TIMELINE: completion time, microseconds since the phase start */
	size_t n, cap;
};

static uint64_t phase_start;
static const char *timeline; /* BENCH_TIMELINE=FILE: write "done_us latency_us" per request */

static void lat_add(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint32_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return;
		l->v = v;
		if (timeline) {
			uint32_t *at = realloc(l->at, cap * sizeof(*at));
			if (!at)
				return;
			l->at = at;
		}
		l->cap = cap;
	}
	uint64_t us = ns / 1000;
	if (timeline) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		l->at[l->n] = (uint32_t)((t - phase_start) / 1000);
	}
	l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* Append l's samples to the timeline file (before lat_pct sorts them). */
static void timeline_dump(const struct lat *l)
{
	if (!timeline || !l->at)
		return;
	FILE *f = fopen(timeline, "a");
	if (!f)
		return;
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "%u %u\n", l->at[i], l->v[i]);
	fclose(f);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void lat_pct(struct lat *l, double *p50, double *p99)
{
	*p50 = *p99 = 0;
	if (!l->n)
		return;
	qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
	*p50 = l->v[(l->n - 1) * 50 / 100];
	*p99 = l->v[(l->n - 1) * 99 / 100];
}

static void report(double rate, double p50, double p99, unsigned long long ops, unsigned long long errors,
		   double secs)
{
	printf("RESULT rate=%.1f p50_us=%.1f p99_us=%.1f ops=%llu errors=%llu secs=%.3f\n", rate, p50, p99, ops,
	       errors, secs);
	fflush(stdout);
}

/* ------------------------------------------------------------------ helpers */

static struct bconn *open_conn(int i, int session_ms)
{
	return be->open(o.hostsets[i % o.nhostsets], session_ms, 15000, 0);
}

/* mkdir -p of the prefix. */
static int mkdirs(struct bconn *c, const char *path)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p;
			*p = '\0';
			if (be->mkdir(c, buf) < 0) {
				fprintf(stderr, "%s: cannot create %s\n", be->name, buf);
				return -1;
			}
			*p = save;
			if (!save)
				break;
		}
	}
	return 0;
}

#define NKEYS 100

/* PREFIX and PREFIX/k0..k99 with data, for set and get. */
static int make_keys(struct bconn *c)
{
	if (mkdirs(c, o.prefix))
		return -1;
	char path[1024];
	for (int k = 0; k < NKEYS; k++) {
		snprintf(path, sizeof(path), "%s/k%d", o.prefix, k);
		if (be->create(c, path, value, (size_t)o.size, 0) < 0) {
			fprintf(stderr, "%s: cannot create %s\n", be->name, path);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ sync workloads */

static int run_sync(int kind)
{
	struct bconn *c = open_conn(0, o.session_ms);
	if (!c)
		return 1;
	if (kind == 'c' ? mkdirs(c, o.prefix) : make_keys(c)) {
		be->close(c);
		return 1;
	}
	struct lat l = {0};
	unsigned long long errors = 0, i = 0;
	char path[1024];
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(o.seconds * 1e9), t = t0;
	phase_start = t0;
	while (t < end && (o.count <= 0 || (long)i < o.count)) {
		if (kind == 'c')
			snprintf(path, sizeof(path), "%s/n%llu", o.prefix, i);
		else
			snprintf(path, sizeof(path), "%s/k%llu", o.prefix, i % NKEYS);
		uint64_t s = now_ns();
		int rc = kind == 'c' ? be->create(c, path, value, (size_t)o.size, 0)
			 : kind == 's' ? be->set(c, path, value, (size_t)o.size)
				       : be->get(c, path);
		t = now_ns();
		if (rc)
			errors++;
		else
			lat_add(&l, t - s);
		i++;
	}
	double secs = (t - t0) / 1e9, p50, p99;
	timeline_dump(&l);
	lat_pct(&l, &p50, &p99);
	report(l.n / secs, p50, p99, l.n, errors, secs);
	be->close(c);
	return 0;
}

/* ------------------------------------------------------------------ async workloads */

struct worker {
	int idx;
	struct bconn *c;
	sem_t slots;
	pthread_t th;
	struct lat l;             /* written by the completion thread only */
	unsigned long long errors; /* completion thread */
	unsigned long long submit_errors;
	uint64_t last_done;
};

struct op {
	struct worker *w;
	uint64_t t0;
};

static struct worker workers[MAX_CONNS];
static int kind_async; /* 'c' create, 's' set, 'g' get, 'l' load */
static uint64_t phase_end;
static atomic_long next_seq;

void bench_complete(void *tag, int ok)
{
	struct op *op = tag;
	struct worker *w = op->w;
	uint64_t t = now_ns();
	if (ok)
		lat_add(&w->l, t - op->t0);
	else
		w->errors++;
	w->last_done = t;
	free(op);
	sem_post(&w->slots);
}

static void *submitter(void *arg)
{
	struct worker *w = arg;
	char path[1024];
	unsigned long long i = 0;
	for (;;) {
		while (sem_wait(&w->slots) < 0 && errno == EINTR)
			;
		if (now_ns() >= phase_end) {
			sem_post(&w->slots);
			break;
		}
		long seq = 0;
		if (kind_async == 'c' || kind_async == 'l') {
			seq = atomic_fetch_add(&next_seq, 1);
			if (o.count > 0 && seq >= o.count) {
				sem_post(&w->slots);
				break;
			}
		}
		if (kind_async == 'l')
			snprintf(path, sizeof(path), "%s/d%ld/n%ld", o.prefix, seq / o.fanout, seq % o.fanout);
		else if (kind_async == 'c')
			snprintf(path, sizeof(path), "%s/n%ld", o.prefix, seq);
		else
			snprintf(path, sizeof(path), "%s/k%llu", o.prefix, (i * 7 + (unsigned)w->idx) % NKEYS);
		i++;
		struct op *op = malloc(sizeof(*op));
		if (!op)
			abort();
		op->w = w;
		op->t0 = now_ns();
		int rc = kind_async == 's'   ? be->aset(w->c, path, value, (size_t)o.size, op)
			 : kind_async == 'g' ? be->aget(w->c, path, op)
					     : be->acreate(w->c, path, value, (size_t)o.size, 0, op);
		if (rc) {
			free(op);
			w->submit_errors++;
			sem_post(&w->slots);
			sleep_us(1000);
		}
	}
	/* Drain: every slot back means nothing is in flight. */
	for (int k = 0; k < o.depth; k++)
		while (sem_wait(&w->slots) < 0 && errno == EINTR)
			;
	return NULL;
}

static int run_async(int kind)
{
	kind_async = kind;
	int rc = 1;
	int opened = 0;
	for (int i = 0; i < o.conns; i++, opened++) {
		workers[i].idx = i;
		workers[i].c = open_conn(i, o.session_ms);
		if (!workers[i].c)
			goto out;
		sem_init(&workers[i].slots, 0, (unsigned)o.depth);
	}
	if (kind == 's' || kind == 'g') {
		if (make_keys(workers[0].c))
			goto out;
	} else if (mkdirs(workers[0].c, o.prefix)) {
		goto out;
	}
	if (kind == 'l') {
		char path[1024];
		long ndirs = (o.count + o.fanout - 1) / o.fanout;
		for (long j = 0; j < ndirs; j++) {
			snprintf(path, sizeof(path), "%s/d%ld", o.prefix, j);
			if (be->mkdir(workers[0].c, path) < 0) {
				fprintf(stderr, "%s: cannot create %s\n", be->name, path);
				goto out;
			}
		}
	}
	phase_start = now_ns();
	phase_end = phase_start + (uint64_t)(o.seconds * 1e9);
	for (int i = 0; i < o.conns; i++)
		pthread_create(&workers[i].th, NULL, submitter, &workers[i]);
	for (int i = 0; i < o.conns; i++)
		pthread_join(workers[i].th, NULL);
	struct lat all = {0};
	unsigned long long errors = 0;
	uint64_t last = phase_start;
	for (int i = 0; i < o.conns; i++) {
		struct worker *w = &workers[i];
		timeline_dump(&w->l);
		errors += w->errors + w->submit_errors;
		if (w->last_done > last)
			last = w->last_done;
		for (size_t k = 0; k < w->l.n; k++) {
			if (all.n == all.cap) {
				all.cap = all.cap ? all.cap * 2 : 1 << 16;
				all.v = realloc(all.v, all.cap * sizeof(*all.v));
				if (!all.v)
					abort();
			}
			all.v[all.n++] = w->l.v[k];
		}
	}
	double secs = (last - phase_start) / 1e9, p50, p99;
	lat_pct(&all, &p50, &p99);
	report(secs > 0 ? all.n / secs : 0, p50, p99, all.n, errors, secs);
	rc = 0;
out:
	for (int i = 0; i < opened; i++)
		if (workers[i].c)
			be->close(workers[i].c);
	return rc;
}

/* ------------------------------------------------------------------ ephemerals */

static int run_ephemeral(void)
{
	const char *hosts2 = o.hosts2 ? o.hosts2 : o.hostsets[0];
	struct bconn *b = be->open(hosts2, o.session_ms, 15000, 0);
	if (!b)
		return 1;
	if (mkdirs(b, o.prefix)) {
		be->close(b);
		return 1;
	}
	struct lat l = {0};
	unsigned long long errors = 0;
	char path[1024];
	for (int r = 0; r < o.reps; r++) {
		char parent[900];
		snprintf(parent, sizeof(parent), "%s/e%d", o.prefix, r);
		if (be->mkdir(b, parent) < 0)
			goto fail;
		struct worker *w = &workers[0];
		memset(w, 0, sizeof(*w));
		w->c = open_conn(0, o.session_ms);
		if (!w->c)
			goto fail;
		int depth = o.depth;
		sem_init(&w->slots, 0, (unsigned)depth);
		long n = o.count > 0 ? o.count : 1000;
		for (long i = 0; i < n; i++) {
			while (sem_wait(&w->slots) < 0 && errno == EINTR)
				;
			snprintf(path, sizeof(path), "%s/x%ld", parent, i);
			struct op *op = malloc(sizeof(*op));
			op->w = w;
			op->t0 = now_ns();
			if (be->acreate(w->c, path, value, (size_t)o.size, 1, op)) {
				free(op);
				w->submit_errors++;
				sem_post(&w->slots);
			}
		}
		for (int k = 0; k < depth; k++)
			while (sem_wait(&w->slots) < 0 && errno == EINTR)
				;
		errors += w->errors + w->submit_errors;
		/* B must see all of them before the close, so the clock starts from a known state. */
		int nc = -1;
		uint64_t dl = now_ns() + 10000000000ull;
		while ((be->nchildren(b, parent, &nc) || nc != n) && now_ns() < dl)
			sleep_us(200);
		if (nc != n)
			fprintf(stderr, "%s: B sees %d of %ld ephemerals before the close\n", be->name, nc, n);
		uint64_t t0 = now_ns();
		be->close(w->c);
		w->c = NULL;
		dl = now_ns() + 30000000000ull;
		for (;;) {
			if (!be->nchildren(b, parent, &nc) && nc == 0)
				break;
			if (now_ns() > dl) {
				fprintf(stderr, "%s: ephemerals still there 30 s after the close\n", be->name);
				errors++;
				break;
			}
			sleep_us(200);
		}
		lat_add(&l, now_ns() - t0);
		free(w->l.v);
		w->l.v = NULL;
		sem_destroy(&w->slots);
	}
	double p50 = 0, p99 = 0;
	if (l.n) {
		qsort(l.v, l.n, sizeof(*l.v), cmp_u32);
		p50 = l.v[(l.n - 1) / 2];
		p99 = l.v[l.n - 1];
	}
	report(0, p50, p99, l.n, errors, 0);
	be->close(b);
	return 0;
fail:
	be->close(b);
	return 1;
}

/* ------------------------------------------------------------------ crashed client */

/* A child process opens a session (--session-ms), creates --count ephemerals and is killed with
 * SIGKILL; session B (--hosts2) polls the parent until they are gone. Forked before any session
 * exists in this process, so the child starts with no client threads. Reports kill -> gone. */
static int run_crash(void)
{
	char parent[900];
	snprintf(parent, sizeof(parent), "%s/crash", o.prefix);
	long n = o.count > 0 ? o.count : 1000;
	int p[2];
	if (pipe(p))
		return 1;
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(p[0]);
		struct bconn *a = open_conn(0, o.session_ms);
		if (!a || mkdirs(a, parent))
			_exit(1);
		struct worker *w = &workers[0];
		w->c = a;
		sem_init(&w->slots, 0, (unsigned)o.depth);
		char path[1024];
		for (long i = 0; i < n; i++) {
			while (sem_wait(&w->slots) < 0 && errno == EINTR)
				;
			snprintf(path, sizeof(path), "%s/x%ld", parent, i);
			struct op *op = malloc(sizeof(*op));
			op->w = w;
			op->t0 = now_ns();
			if (be->acreate(a, path, value, (size_t)o.size, 1, op)) {
				free(op);
				sem_post(&w->slots);
			}
		}
		for (int k = 0; k < o.depth; k++)
			while (sem_wait(&w->slots) < 0 && errno == EINTR)
				;
		char ok = w->errors ? 'E' : 'R';
		if (write(p[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	char ready = 0;
	ssize_t got = read(p[0], &ready, 1);
	close(p[0]);
	int rc = 1;
	unsigned long long errors = 0;
	struct bconn *b = NULL;
	if (got != 1) {
		fprintf(stderr, "%s: the crashing client did not get ready\n", be->name);
		goto out;
	}
	if (ready != 'R')
		errors++;
	const char *hosts2 = o.hosts2 ? o.hosts2 : o.hostsets[0];
	b = be->open(hosts2, 10000, 15000, 0);
	if (!b)
		goto out;
	int nc = -1;
	uint64_t dl = now_ns() + 10000000000ull;
	while ((be->nchildren(b, parent, &nc) || nc != n) && now_ns() < dl)
		sleep_us(200);
	if (nc != n)
		fprintf(stderr, "%s: B sees %d of %ld ephemerals before the kill\n", be->name, nc, n);
	kill(pid, SIGKILL);
	uint64_t t0 = now_ns();
	waitpid(pid, NULL, 0);
	pid = 0;
	dl = t0 + (uint64_t)(o.timeout_s * 1e9);
	for (;;) {
		if (!be->nchildren(b, parent, &nc) && nc == 0)
			break;
		if (now_ns() > dl) {
			fprintf(stderr, "%s: ephemerals still there %.0f s after the kill\n", be->name, o.timeout_s);
			goto out;
		}
		sleep_us(1000);
	}
	double us = (now_ns() - t0) / 1e3;
	report(0, us, us, (unsigned long long)n, errors, us / 1e6);
	rc = 0;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (b)
		be->close(b);
	return rc;
}

/* ------------------------------------------------------------------ failover */

static int run_failover(void)
{
	if (o.kill_pid <= 1) {
		fprintf(stderr, "failover needs --kill-pid\n");
		return 2;
	}
	struct bconn *c = open_conn(0, o.session_ms);
	if (!c)
		return 1;
	if (make_keys(c)) {
		be->close(c);
		return 1;
	}
	char path[1024];
	snprintf(path, sizeof(path), "%s/k0", o.prefix);
	uint64_t warm = now_ns() + 1000000000ull;
	unsigned long long errors = 0, ops = 0;
	while (now_ns() < warm) {
		if (be->set(c, path, value, (size_t)o.size))
			errors++;
		ops++;
	}
	if (kill(o.kill_pid, SIGKILL)) {
		perror("kill");
		be->close(c);
		return 1;
	}
	uint64_t t0 = now_ns(), dl = t0 + (uint64_t)(o.timeout_s * 1e9);
	uint64_t t1 = 0;
	while (now_ns() < dl) {
		if (be->set(c, path, value, (size_t)o.size) == 0) {
			t1 = now_ns();
			break;
		}
		errors++;
		sleep_us(1000);
	}
	if (!t1) {
		fprintf(stderr, "%s: no write accepted within %.0f s of the kill\n", be->name, o.timeout_s);
		report(0, 0, 0, ops, errors, 0);
		be->close(c);
		return 1;
	}
	double us = (t1 - t0) / 1e3;
	report(0, us, us, ops, errors, (t1 - t0) / 1e9);
	be->close(c);
	return 0;
}

/* ------------------------------------------------------------------ restart to serving */

static int run_wait(void)
{
	if (!o.path) {
		fprintf(stderr, "wait needs --path\n");
		return 2;
	}
	uint64_t start = o.since ? o.since : wall_ns();
	uint64_t dl = now_ns() + (uint64_t)(o.timeout_s * 1e9);
	int attempt = 0;
	while (now_ns() < dl) {
		int connect_ms = 50 + attempt * 5;
		if (connect_ms > 1000)
			connect_ms = 1000;
		attempt++;
		struct bconn *c = be->open(o.hostsets[0], o.session_ms, connect_ms, 1);
		if (!c) {
			sleep_us(2000);
			continue;
		}
		int rc = be->get(c, o.path);
		be->close(c);
		if (rc == 0) {
			double us = (wall_ns() - start) / 1e3;
			report(0, us, us, (unsigned long long)attempt, 0, us / 1e6);
			return 0;
		}
		sleep_us(2000);
	}
	fprintf(stderr, "%s: %s not readable within %.0f s\n", be->name, o.path, o.timeout_s);
	return 1;
}

/* ------------------------------------------------------------------ main */

/* --key/--server-key, else $COORD_KEY/$COORD_SERVER_KEY (as coordctl; "" = unset) for a backend
 * with keys; keys given to one without (zkbench) are a usage error, the variables are ignored. */
static int setup_keys(void)
{
	const char *key = o.key_file, *server_key = o.server_key_file;
	if (!be->set_keys) {
		if (key || server_key) {
			fprintf(stderr, "%s: --key/--server-key are for coordbench only\n", be->name);
			return -1;
		}
		return 0;
	}
	if (!key)
		key = getenv("COORD_KEY");
	if (!server_key)
		server_key = getenv("COORD_SERVER_KEY");
	if (key && !*key)
		key = NULL;
	if (server_key && !*server_key)
		server_key = NULL;
	if (!key && !server_key)
		return 0;
	char err[600];
	if (be->set_keys(key, server_key, err, sizeof(err))) {
		fprintf(stderr, "%s: %s (--key/--server-key, $COORD_KEY/$COORD_SERVER_KEY)\n", be->name, err);
		return -1;
	}
	return 0;
}

int bench_main(const struct backend *backend, int argc, char **argv)
{
	be = backend;
	timeline = getenv("BENCH_TIMELINE");
	if (parse_args(argc, argv)) {
		usage(stderr, argv[0]);
		return 2;
	}
	if (setup_keys())
		return 2;
	signal(SIGPIPE, SIG_IGN);
	value = malloc((size_t)o.size + 1);
	for (int i = 0; i < o.size; i++)
		value[i] = (char)('a' + i % 26);
	if (!strcmp(o.op, "sync-create"))
		return run_sync('c');
	if (!strcmp(o.op, "sync-set"))
		return run_sync('s');
	if (!strcmp(o.op, "sync-get"))
		return run_sync('g');
	if (!strcmp(o.op, "create"))
		return run_async('c');
	if (!strcmp(o.op, "set"))
		return run_async('s');
	if (!strcmp(o.op, "get"))
		return run_async('g');
	if (!strcmp(o.op, "load")) {
		if (o.count <= 0) {
			fprintf(stderr, "load needs --count\n");
			return 2;
		}
		return run_async('l');
	}
	if (!strcmp(o.op, "ephemeral"))
		return run_ephemeral();
	if (!strcmp(o.op, "crash"))
		return run_crash();
	if (!strcmp(o.op, "failover"))
		return run_failover();
	if (!strcmp(o.op, "wait"))
		return run_wait();
	usage(stderr, argv[0]);
	return 2;
}
