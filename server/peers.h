/*
 * peers.h: the member's links to the other members over ZeroMQ on the peer port.
 *
 * Each member binds one ROUTER on its peerPort and connects one DEALER to every other member,
 * named "m<id>", so every frame arrives tagged with its sender. A socket monitor on each DEALER
 * reports a dropped connection at once (a killed leader's TCP connection closes), which the
 * member turns into raft_peer_lost instead of waiting out an election timeout. Sends never
 * block: a message to an unreachable member is dropped (Raft retries what matters).
 * Also carries snapshots, in chunks, into dataDir/snapshot.<index>.rx.
 */
#ifndef COORD_PEERS_H
#define COORD_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "zap.h"

#define PEERS_MAX COORD_MAX_MEMBERS

struct peer {
	int id;
	void *sock;       /* DEALER to the member */
	void *mon;        /* PAIR receiving the DEALER's monitor events */
	int up;           /* connected as far as the monitor knows */
	char endpoint[COORD_HOST_MAX + 32];
};

struct peers {
	void *zctx;
	void *router;     /* our peerPort */
	int self;
	int n;
	struct peer p[PEERS_MAX];
	/* a snapshot being received */
	int rx_fd;
	uint64_t rx_index, rx_term, rx_total, rx_got;
	char rx_path[COORD_DIR_MAX + 64];
	char dir[COORD_DIR_MAX];
	int curve;        /* auth=curve: a message's sender must be the member its key says */
	unsigned forged_logged;
};

/* Bind our peer port and connect to the others. COORD_OK or COORD_EIO with a message. */
/* With zap->curve the peer port and every link use CURVE with the members' keys. */
int peers_open(struct peers *ps, void *zctx, const struct coord_config *cfg, struct zap *zap, char *err,
	       size_t errlen);
void peers_close(struct peers *ps);
/* Send one frame to member id (dropped if unreachable). */
void peers_send(struct peers *ps, int id, const void *frame, size_t len);
/* Take the next frame from any member into msg (a zmq_msg_t): 1 with *from set, 0 if none, -1 if dropped. */
int peers_recv(struct peers *ps, int *from, void *msg);
/* Drain monitor events; calls lost(arg, id) for each member whose connection dropped. */
void peers_poll_monitors(struct peers *ps, void (*lost)(void *arg, int id), void *arg);
/* Stream the snapshot file of `index` to member id in chunks (then the caller sends the raft message). */
int peers_send_snapshot(struct peers *ps, int id, const char *data_dir, uint64_t index, uint64_t term);
/* Store one received chunk; returns 1 when the snapshot (index, term) is complete on disk. */
int peers_recv_chunk(struct peers *ps, uint64_t index, uint64_t term, uint64_t offset, uint64_t total,
		     const void *chunk, size_t len);
/* Make the received snapshot durable as dataDir/snapshot.<index>. COORD_OK or COORD_EIO. */
int peers_keep_snapshot(struct peers *ps);
/* 1 if a complete snapshot (index, term) has been received. */
int peers_have_snapshot(const struct peers *ps, uint64_t index, uint64_t term);

#endif
