/*
 * bench.h: the benchmark driver's core (bench_core.c) and the backend interface it drives.
 *
 * One driver binary per system, same command line and same output, so the runner (tests/bench/run)
 * treats them alike:
 *   coordbench = bench_core.c + backend_coord.c   (libcoord: coord_submit / coord_call)
 *   zkbench    = bench_core.c + backend_zk.c      (ZooKeeper's C client, zookeeper_mt)
 *
 * A backend connection ("conn") is one session. Async operations complete on the backend's own
 * thread (libcoord's I/O thread, ZooKeeper's completion thread) by calling bench_complete(tag, ok);
 * the core never submits from that thread (libcoord's contract forbids it), so both sides run the
 * same shape: one submitter thread per connection holding at most DEPTH requests in flight.
 */
#ifndef COORD_BENCH_H
#define COORD_BENCH_H

#include <stddef.h>
#include <stdint.h>

struct bconn; /* backend-defined */

struct backend {
	const char *name;
	/* Open a session with hosts; wait up to connect_ms for it to be usable. NULL on failure
	 * (a message on stderr unless quiet). */
	struct bconn *(*open)(const char *hosts, int session_ms, int connect_ms, int quiet);
	void (*close)(struct bconn *c);       /* clean close: ephemerals go at once */
	/* Sync operations: return 0 on success, 1 when the node exists (mkdir/create) or does not
	 * exist (get/set/stat), -1 on any other failure. */
	int (*mkdir)(struct bconn *c, const char *path);      /* a node that will have children */
	int (*create)(struct bconn *c, const char *path, const void *d, size_t n, int ephemeral);
	int (*set)(struct bconn *c, const char *path, const void *d, size_t n);
	int (*get)(struct bconn *c, const char *path);
	int (*nchildren)(struct bconn *c, const char *path, int *n);
	/* Async operations: tag goes back to bench_complete. Return 0 if submitted. */
	int (*acreate)(struct bconn *c, const char *path, const void *d, size_t n, int ephemeral, void *tag);
	int (*aset)(struct bconn *c, const char *path, const void *d, size_t n, void *tag);
	int (*aget)(struct bconn *c, const char *path, void *tag);
	/* CurveZMQ keys for every session this process opens (--key/--server-key); NULL when the
	 * backend has none (zkbench): giving keys is then a usage error. 0 or -1 with err set. */
	int (*set_keys)(const char *key_file, const char *server_key_file, char *err, size_t errlen);
};

/* Called by a backend on its completion thread; ok = the operation succeeded. */
void bench_complete(void *tag, int ok);

int bench_main(const struct backend *be, int argc, char **argv);

#endif
