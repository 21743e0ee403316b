/*
 * zap.h: who may connect to the client port: the ZAP handler (ZeroMQ's authentication protocol,
 * RFC 27), the per-address connection count behind maxClientCnxns, and rate-limited refusal logs.
 * (The peer port is not ZeroMQ's: peers.c and peerlink.c check members.)
 *
 * The handler runs on a thread of its own (handshakes do not wait for the server's loop, and the
 * loop's poll set stays the server's), which alone touches the ZAP socket, the port monitors and
 * the connection table once zap_start ran; the list of client keys is shared with the server's
 * thread (principal checks, SIGHUP reload) under a mutex. With auth=curve the
 * client port admits keys of authorizedKeysFile (the principal is the connection's User-Id). With
 * auth=none the client port still asks the handler (ZMQ_ZAP_DOMAIN is set), for maxClientCnxns,
 * and every connection is anonymous. A connection is counted from its accept (socket monitor,
 * getpeername) to its disconnect, so refused and half-open ones count too while they last.
 */
#ifndef COORD_ZAP_H
#define COORD_ZAP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "curve.h"

#define ZAP_DOMAIN_CLIENT "client"
#define ZAP_IP_MAX 64

/* Log a refusal of one kind at most once per interval, and say how many were not logged. */
struct ratelog {
	int64_t last_ns;
	uint64_t suppressed;
};
/* 1 if this occurrence should be logged now (*suppressed gets the count since the last one). */
int ratelog_ok(struct ratelog *r, int64_t now_ns, uint64_t *suppressed);

struct zap_conn {
	int fd;
	char ip[ZAP_IP_MAX];
};

struct zap {
	int curve;
	void *sock;                     /* REP on inproc://zeromq.zap.01 */
	void *mon;                      /* PAIR: the client port's monitor events */
	struct coord_authkeys clients;
	char clients_file[COORD_DIR_MAX];
	struct coord_keypair client_kp; /* the client port's secret key */
	int max_cnxns;                  /* 0 = unlimited */
	struct zap_conn *conns;
	size_t nconns, cconns;
	struct ratelog log_key, log_nokey, log_cnxns;
	uint64_t refused_keys, refused_cnxns, refused_plain;
	int failed_handshake;           /* the next disconnect is (most likely) that connection's */
	pthread_mutex_t mu;             /* guards clients (reload and principal checks vs the handler) */
	int mu_init;
	pthread_t thread;
	int started;
	int wake[2];                    /* pipe: zap_close wakes the thread at once (else a stop waits for its poll) */
	volatile int stopping;
};

/*
 * Load the keys the config names and bind the handler (before any socket binds: a CURVE socket
 * without a handler would admit any key). COORD_OK or an error with a message.
 */
int zap_open(struct zap *z, void *zctx, const struct coord_config *cfg, char *err, size_t errlen);
void zap_close(struct zap *z);
/* Make the client port use CURVE (when on) and ask the handler. */
int zap_server_socket(struct zap *z, void *sock);
/* Watch the client port's connections (for maxClientCnxns and refusal logs). */
int zap_monitor(struct zap *z, void *zctx, void *client_sock);
/* Start the handler's thread, once every socket it watches exists (the end of server_open). */
int zap_start(struct zap *z, char *err, size_t errlen);
/* SIGHUP (on the server's thread): read authorizedKeysFile again; on a bad file keep the old list
 * (and say why). */
void zap_reload(struct zap *z);
/* 1 if a session of this principal may go on (always with auth=none). */
int zap_principal_ok(struct zap *z, const char *principal);
/* Connections currently counted from ip (the handler's thread). */
int zap_conns_from(const struct zap *z, const char *ip);

#endif
