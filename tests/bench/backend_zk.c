/*
 * backend_zk.c: zkbench, the benchmark driver on Apache ZooKeeper's C client (zookeeper_mt,
 * Debian's libzookeeper-mt-dev). Sync operations use zoo_create/zoo_set/zoo_get; async ones
 * zoo_acreate/zoo_aset/zoo_aget with completions (run on the handle's completion thread), one
 * zhandle_t (one session, one TCP connection) per connection.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zookeeper/zookeeper.h>

#include "bench.h"

struct bconn {
	zhandle_t *zh;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;
};

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)path;
	struct bconn *b = ctx;
	if (type != ZOO_SESSION_EVENT || !b)
		return;
	pthread_mutex_lock(&b->mu);
	b->state = state;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static struct bconn *b_open(const char *hosts, int session_ms, int connect_ms, int quiet)
{
	struct bconn *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	b->zh = zookeeper_init(hosts, watcher, session_ms, NULL, b, 0);
	if (!b->zh) {
		if (!quiet)
			fprintf(stderr, "zkbench: zookeeper_init(%s) failed\n", hosts);
		free(b);
		return NULL;
	}
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += connect_ms / 1000;
	dl.tv_nsec += (long)(connect_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->mu);
	while (b->state != ZOO_CONNECTED_STATE) {
		if (pthread_cond_timedwait(&b->cv, &b->mu, &dl))
			break;
	}
	int st = b->state;
	pthread_mutex_unlock(&b->mu);
	if (st != ZOO_CONNECTED_STATE) {
		if (!quiet)
			fprintf(stderr, "zkbench: no session with %s within %d ms\n", hosts, connect_ms);
		zookeeper_close(b->zh);
		free(b);
		return NULL;
	}
	return b;
}

static void b_close(struct bconn *b)
{
	if (!b)
		return;
	zookeeper_close(b->zh);
	free(b);
}

static int map(int rc, int soft)
{
	if (rc == ZOK)
		return 0;
	if (rc == soft)
		return 1;
	return -1;
}

static int b_mkdir(struct bconn *b, const char *path)
{
	int rc = zoo_create(b->zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	return map(rc, ZNODEEXISTS) < 0 ? -1 : 0;
}

static int b_create(struct bconn *b, const char *path, const void *d, size_t n, int eph)
{
	int rc = zoo_create(b->zh, path, d, (int)n, &ZOO_OPEN_ACL_UNSAFE, eph ? ZOO_EPHEMERAL : ZOO_PERSISTENT, NULL, 0);
	return map(rc, ZNODEEXISTS);
}

static int b_set(struct bconn *b, const char *path, const void *d, size_t n)
{
	return map(zoo_set(b->zh, path, d, (int)n, -1), ZNONODE);
}

static int b_get(struct bconn *b, const char *path)
{
	char buf[4096];
	int len = (int)sizeof(buf);
	struct Stat st;
	return map(zoo_get(b->zh, path, 0, buf, &len, &st), ZNONODE);
}

static int b_nchildren(struct bconn *b, const char *path, int *n)
{
	struct Stat st;
	int rc = zoo_exists(b->zh, path, 0, &st);
	if (rc == ZOK)
		*n = st.numChildren;
	return map(rc, ZNONODE);
}

static void string_done(int rc, const char *value, const void *data)
{
	(void)value;
	bench_complete((void *)data, rc == ZOK);
}

static void stat_done(int rc, const struct Stat *st, const void *data)
{
	(void)st;
	bench_complete((void *)data, rc == ZOK);
}

static void data_done(int rc, const char *value, int len, const struct Stat *st, const void *data)
{
	(void)value;
	(void)len;
	(void)st;
	bench_complete((void *)data, rc == ZOK);
}

static int b_acreate(struct bconn *b, const char *path, const void *d, size_t n, int eph, void *tag)
{
	return zoo_acreate(b->zh, path, d, (int)n, &ZOO_OPEN_ACL_UNSAFE, eph ? ZOO_EPHEMERAL : ZOO_PERSISTENT,
			   string_done, tag) == ZOK
		       ? 0
		       : -1;
}

static int b_aset(struct bconn *b, const char *path, const void *d, size_t n, void *tag)
{
	return zoo_aset(b->zh, path, d, (int)n, -1, stat_done, tag) == ZOK ? 0 : -1;
}

static int b_aget(struct bconn *b, const char *path, void *tag)
{
	return zoo_aget(b->zh, path, 0, data_done, tag) == ZOK ? 0 : -1;
}

static const struct backend zk_backend = {
	.name = "zkbench",
	.open = b_open,
	.close = b_close,
	.mkdir = b_mkdir,
	.create = b_create,
	.set = b_set,
	.get = b_get,
	.nchildren = b_nchildren,
	.acreate = b_acreate,
	.aset = b_aset,
	.aget = b_aget,
};

int main(int argc, char **argv)
{
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	return bench_main(&zk_backend, argc, argv);
}
