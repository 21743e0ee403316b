/*
 * backend_coord.c: coordbench, the benchmark driver on libcoord (common/client.h).
 * Sync operations use coord_create/coord_set/coord_get; async ones coord_submit with a callback,
 * one coord_client (one session, one I/O thread, one DEALER socket) per connection. With --key and
 * --server-key (or $COORD_KEY and $COORD_SERVER_KEY) every session uses CurveZMQ.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "client.h"
#include "err.h"
#include "log.h"

struct bconn {
	struct coord_client *c;
};

static struct bconn *b_open(const char *hosts, int session_ms, int connect_ms, int quiet)
{
	struct coord_client_opts opts;
	memset(&opts, 0, sizeof(opts));
	opts.hosts = hosts;
	opts.session_timeout_ms = session_ms;
	opts.connect_timeout_ms = connect_ms;
	struct bconn *b = calloc(1, sizeof(*b));
	char err[512];
	if (!b)
		return NULL;
	int rc = coord_client_open(&opts, &b->c, err, sizeof(err));
	if (rc) {
		if (!quiet)
			fprintf(stderr, "coordbench: cannot open a session with %s: %s\n", hosts, err);
		free(b);
		return NULL;
	}
	return b;
}

static void b_close(struct bconn *b)
{
	if (!b)
		return;
	coord_client_close(b->c);
	free(b);
}

static int map(int rc, int soft)
{
	if (rc == COORD_OK)
		return 0;
	if (rc == soft)
		return 1;
	return -1;
}

static int b_mkdir(struct bconn *b, const char *path)
{
	return map(coord_create(b->c, path, NULL, 0, COORD_CREATE_DIR, 0, NULL, NULL), COORD_ENODEEXISTS) < 0 ? -1 : 0;
}

static int b_create(struct bconn *b, const char *path, const void *d, size_t n, int eph)
{
	return map(coord_create(b->c, path, d, n, eph ? COORD_CREATE_EPHEMERAL : 0, 0, NULL, NULL), COORD_ENODEEXISTS);
}

static int b_set(struct bconn *b, const char *path, const void *d, size_t n)
{
	return map(coord_set(b->c, path, d, n, -1, NULL), COORD_ENONODE);
}

static int b_get(struct bconn *b, const char *path)
{
	void *data = NULL;
	size_t len = 0;
	int rc = coord_get(b->c, path, 0, &data, &len, NULL);
	free(data);
	return map(rc, COORD_ENONODE);
}

static int b_nchildren(struct bconn *b, const char *path, int *n)
{
	struct coord_stat st;
	int rc = coord_exists(b->c, path, 0, &st);
	if (rc == COORD_OK)
		*n = st.num_children;
	return map(rc, COORD_ENONODE);
}

static void done(void *arg, struct coord_result *res)
{
	int ok = res->err == COORD_OK;
	coord_result_free(res);
	free(res);
	bench_complete(arg, ok);
}

static int b_acreate(struct bconn *b, const char *path, const void *d, size_t n, int eph, void *tag)
{
	struct coord_req req;
	memset(&req, 0, sizeof(req));
	req.op = COORD_OP_CREATE;
	req.version = -1;
	req.path = slice_str(path);
	req.data = slice_of(d, n);
	req.flags = eph ? COORD_CREATE_EPHEMERAL : 0;
	return coord_submit(b->c, &req, done, tag) == COORD_OK ? 0 : -1;
}

static int b_aset(struct bconn *b, const char *path, const void *d, size_t n, void *tag)
{
	struct coord_req req;
	memset(&req, 0, sizeof(req));
	req.op = COORD_OP_SET;
	req.version = -1;
	req.path = slice_str(path);
	req.data = slice_of(d, n);
	return coord_submit(b->c, &req, done, tag) == COORD_OK ? 0 : -1;
}

static int b_aget(struct bconn *b, const char *path, void *tag)
{
	struct coord_req req;
	memset(&req, 0, sizeof(req));
	req.op = COORD_OP_GET;
	req.version = -1;
	req.path = slice_str(path);
	return coord_submit(b->c, &req, done, tag) == COORD_OK ? 0 : -1;
}

static const struct backend coord_backend = {
	.name = "coordbench",
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
	.set_keys = coord_client_set_keys, /* process-wide: every session of this run, forks included */
};

int main(int argc, char **argv)
{
	coord_log_init("coordbench", COORD_LOG_WARN);
	return bench_main(&coord_backend, argc, argv);
}
