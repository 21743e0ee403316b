/*
 * server.h: one coordd member: recovery at start, and the loop that serves the client port.
 *
 * The loop drains every request waiting on the ZeroMQ ROUTER socket into a batch, writes the
 * batch's txns to the log with one fdatasync (group commit), then, in arrival order, applies each
 * txn, delivers the watch events it triggered and answers; reads queue behind their own session's
 * writes so a client reads its own writes. It also expires silent sessions (monotonic clock) and
 * takes snapshots in a forked child every snapCount txns, so serving never stops for them.
 */
#ifndef COORD_SERVER_H
#define COORD_SERVER_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "clients.h"
#include "config.h"
#include "prep.h"
#include "state.h"
#include "txnlog.h"
#include "watch.h"

struct pending;

struct server_stats {
	uint64_t received, sent;
	uint64_t fsyncs, txns_logged;
	uint64_t lat_n, lat_sum_us, lat_min_us, lat_max_us;
	uint64_t snapshots;
	int64_t started_ms;
};

struct server {
	struct coord_config cfg;
	struct prep_limits lim;
	void *zctx, *sock;
	int lock_fd;
	struct state st;
	struct txnlog *log;
	struct watch_mgr *wm;
	struct clients cl;
	uint64_t next_zxid;           /* last zxid handed out to a txn */
	uint64_t durable_zxid;        /* last zxid known to be on disk */
	struct pending *batch;
	size_t nbatch, cbatch;
	int batch_logged;             /* the batch holds txns that need the fsync */
	int disk_error;               /* the last sync failed: said once in the log */
	pid_t snap_pid;
	uint64_t snap_zxid;
	long txns_since_snap, snap_threshold;
	struct server_stats stats;
	volatile sig_atomic_t stop;
};

/* Recover from dataDir/dataLogDir and bind the client port. COORD_OK or an error with a message. */
int server_open(const struct coord_config *cfg, struct server **out, char *err, size_t errlen);
/* Serve until server_stop; returns COORD_OK or the error that stopped it. */
int server_run(struct server *s);
/* Ask the loop to finish its batch and return (async-signal-safe). */
void server_stop(struct server *s);
void server_close(struct server *s);

/* The text of a four-letter word (admin.c). COORD_OK, or COORD_EBADARG for an unknown word. */
int admin_answer(const struct server *s, const char *word, struct buf *out);

#endif
