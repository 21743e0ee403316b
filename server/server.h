/*
 * server.h: one coordd member: recovery at start, and the loop that serves clients and peers.
 *
 * Every member, a standalone server included (an ensemble of one), runs the same loop around the
 * Raft core: client writes become txns (prep.c) that the leader proposes and followers forward
 * to it; whatever the core says is durable goes to the log with one fdatasync per round (group
 * commit), then committed entries are applied to the state in log order, their watch events go
 * out, and the member the client is connected to answers. Each session's replies leave in the
 * order its requests came, so a client reads its own writes. The leader expires silent sessions
 * (monotonic clock; followers report whom they heard from). Snapshots are written by a forked
 * child, so serving never stops for them.
 */
#ifndef COORD_SERVER_H
#define COORD_SERVER_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "clients.h"
#include "config.h"
#include "peers.h"
#include "prep.h"
#include "raft.h"
#include "raftstate.h"
#include "state.h"
#include "txnlog.h"
#include "watch.h"
#include "zap.h"

struct server_stats {
	uint64_t received, sent;
	uint64_t fsyncs, txns_logged;
	uint64_t lat_n, lat_sum_us, lat_min_us, lat_max_us;
	uint64_t snapshots, elections_won;
	int64_t started_ms;
};

/* A CONNECT for a new session, waiting for its session to be applied here. */
struct pending_connect {
	uint64_t session;
	uint8_t passwd[COORD_PASSWD_LEN];
	uint32_t timeout_ms;
	char principal[COORD_PRINCIPAL_MAX + 1]; /* the connection's authenticated name, "" if none */
	uint64_t xid;
	uint8_t route[CLIENT_ROUTE_MAX];
	uint8_t route_len;
	int sent_to;
	uint64_t sent_term;
	int64_t recv_ns;
};

/* A write the leader holds back while it hands leadership over. */
struct held_write {
	uint64_t session;
	int from;                     /* the member that handed it to us (ourselves included) */
	uint8_t *frame;
	size_t len;
};

struct server {
	struct coord_config cfg;
	struct prep_limits lim;
	int standalone;               /* no server.N lines */
	void *zctx, *sock;            /* the client port */
	struct peers peers;
	int lock_fd;
	struct state st;
	struct txnlog *log;
	struct raftstate *rs;
	struct raft *raft;
	struct watch_mgr *wm;
	struct clients cl;
	struct pending_connect *connects;
	size_t nconnects, cconnects;
	struct held_write *held;      /* leader: writes held during a leadership transfer, in order */
	size_t nheld, cheld;
	int leader_seen;              /* the leader as of the last round */
	uint64_t term_seen;
	int64_t tick_ns, next_tick_ns;
	uint64_t next_ctx;            /* read-index request ids */
	int disk_error;               /* the log cannot be written: said once, writes refused */
	pid_t snap_pid;
	uint64_t snap_zxid, snap_term;
	uint64_t prev_snap_zxid, prev_snap_term; /* the log is compacted up to here */
	long txns_since_snap, snap_threshold;
	struct server_stats stats;
	struct zap zap;               /* who may connect (auth, maxClientCnxns) */
	volatile sig_atomic_t reload; /* SIGHUP: read authorizedKeysFile again (at the next tick) */
	struct ratelog log_ops, log_watches; /* per-session limits hit */
	volatile sig_atomic_t stop;
	int sock_sent;                /* sent on the client port since it was last drained (server_run) */
};

/* Recover from dataDir/dataLogDir and bind the ports. COORD_OK or an error with a message. */
int server_open(const struct coord_config *cfg, struct server **out, char *err, size_t errlen);
/* Serve until server_stop; returns COORD_OK or the error that stopped it. */
int server_run(struct server *s);
/* Ask the loop to finish its round and return (async-signal-safe). */
void server_stop(struct server *s);
/* Ask the loop to read authorizedKeysFile again (async-signal-safe). */
void server_reload(struct server *s);
void server_close(struct server *s);

/* The text of a four-letter word (admin.c). COORD_OK, or COORD_EBADARG for an unknown word. */
int admin_answer(const struct server *s, const char *word, struct buf *out);
/* "standalone", "leader", "follower" or "observer", as ZooKeeper's srvr says Mode. */
const char *server_mode(const struct server *s);

#endif
