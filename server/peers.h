/*
 * peers.h: the member's links to the other members: TCP on the peer port, owned by the server's
 * loop (no thread of its own).
 *
 * A member sends to member N on the one connection it opens to N's peer port (an "out" link), and
 * receives on the connections the others open to its own (an "in" link), so every message of a
 * link comes from one member, in the order sent. A frame is u32 length (little-endian) + message;
 * a connection starts with the listener's greeting and the connector's hello (peerlink.h), which
 * name both members and, with auth=curve, set up the link's encryption. A send frames the message
 * into the link's queue; peers_flush writes every queue from the caller's thread (no hand-off to
 * an I/O thread), so the server flushes before each fdatasync (the append a leader sends before
 * its own is on the wire while it syncs) and once per round, and many messages of a busy round
 * cost one system call per link. What the kernel will not take waits in the queue for POLLOUT.
 * Sends never block: a message to a member whose link is not up, or whose queue would pass
 * PEERS_QUEUE_MAX bytes with it, is dropped (Raft retries what matters); a message alone in the
 * queue always goes, whatever its size (a 64 MiB znode too). A dropped out link is
 * reported at once (a killed leader's connection closes), which the member turns into
 * raft_peer_lost instead of waiting out an election timeout, and it is tried again after 50 ms,
 * backing off to 500 ms; so is a link whose data stays unacknowledged for syncLimit ticks
 * (TCP_USER_TIMEOUT: a cut network). Host names are resolved again at every attempt, without blocking.
 * Snapshots travel in 1 MiB chunks read from the file as the link drains, into
 * dataDir/snapshot.<index>.rx.
 */
#ifndef COORD_PEERS_H
#define COORD_PEERS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "peerlink.h"

#define PEERS_MAX COORD_MAX_MEMBERS
#define PEERS_IN_MAX (4 * PEERS_MAX)    /* in links at once (members, and strangers mid-handshake) */
#define PEERS_QUEUE_MAX (64u << 20)     /* bytes waiting on one out link before sends are dropped */
#define PEERS_POLL_MAX (1 + PEERS_MAX + PEERS_IN_MAX)

struct addrinfo;

struct peer_out {
	int id;
	char host[COORD_HOST_MAX];
	int port;
	int fd;                  /* -1 when not connected */
	int state;               /* PO_* in peers.c */
	int64_t retry_ns;        /* PO_IDLE: when to try again */
	int backoff_ms;
	int64_t deadline_ns;     /* PO_CONNECTING / PO_GREETING: give up then */
	void *gai;               /* a name being resolved (struct gaicb *), or NULL */
	struct addrinfo *ai, *ai_cur; /* PO_CONNECTING: the addresses of the name, the next to try */
	int lost;                /* dropped after it was up: to report at the next peers_io */
	int said;                /* a failure was logged: quiet until the link stays up (peers.c) */
	int64_t up_ns;           /* when it last linked */
	struct buf q;            /* framed bytes to write; q.p[qoff..] not yet written */
	size_t qoff;
	struct buf after;        /* messages sent while a snapshot streams: u32 len + message each */
	int snap_fd;             /* a snapshot file streaming in chunks, or -1 */
	uint64_t snap_index, snap_term, snap_off, snap_total;
	uint8_t rx[PEERLINK_GREETING_MAX];
	size_t rxlen;
	struct peerlink_tx tx;   /* sealing state, once up */
};

struct peer_in {
	int fd;                  /* -1: a free slot */
	int id;                  /* the member, once its hello was taken (0 before) */
	int64_t deadline_ns;     /* the hello must come by then */
	char ip[64];
	uint8_t *rx;             /* bytes read, not yet taken */
	size_t rxlen, rxcap, rxoff;
	struct peerlink_rx crypt;
	struct peerlink_greeting greet; /* what we said (our ephemeral secret, with auth=curve) */
};

struct peers {
	int opened;              /* peers_open got far enough for peers_close to have work */
	int listen_fd;
	int self;
	unsigned user_timeout_ms; /* out links: unacknowledged data this long closes the link (syncLimit) */
	int n;
	struct peer_out p[PEERS_MAX];
	struct peer_in in[PEERS_IN_MAX];
	int next_in;             /* where peers_recv looks first (fairness between members) */
	struct peerlink_keys keys; /* auth=curve: ours and the members'; keys.curve = 0 for plaintext */
	int pmap[PEERS_POLL_MAX];  /* what each pollfd of the last peers_pollfds was: -1 the listener,
				    * i < PEERS_MAX out link i, PEERS_MAX + i in link i */
	uint8_t *chunk;            /* a snapshot chunk being framed */
	uint8_t *plain;            /* an opened frame (auth=curve) */
	size_t plain_cap;
	/* a snapshot being received */
	int rx_fd;
	uint64_t rx_index, rx_term, rx_total, rx_got;
	char rx_path[COORD_DIR_MAX + 64];
	char dir[COORD_DIR_MAX];
	struct peers_ratelog {   /* refusals of each kind, logged at most once per interval */
		int64_t last_ns;
		uint64_t unlogged;
	} refusals[3];           /* REFUSED_* in peers.c */
	uint64_t refused;        /* connections refused (mntr) */
};

/*
 * Listen on our peer port and start connecting to the others. keys: NULL for plaintext
 * (auth=none), else this member's key pair and every member's public key. COORD_OK, or an error
 * with a message.
 */
int peers_open(struct peers *ps, const struct coord_config *cfg, const struct peerlink_keys *keys, char *err,
	       size_t errlen);
void peers_close(struct peers *ps);
/* Queue one message to member id (dropped if its link is not up or its queue is full). */
void peers_send(struct peers *ps, int id, const void *msg, size_t len);
/* Write what the links' queues hold, as far as the kernel takes it now. */
void peers_flush(struct peers *ps);
/*
 * The descriptors to poll, into pf (room for PEERS_POLL_MAX); returns how many. *timeout_ms is
 * lowered to when the next timer (a reconnect, a handshake deadline) is due.
 */
int peers_pollfds(struct peers *ps, struct pollfd *pf, long *timeout_ms);
/*
 * After poll: accept, connect, read and write what pf's revents allow (pf, n as peers_pollfds
 * filled them, or n = 0 for timers only), and run the timers. Calls lost(arg, id) for each member
 * whose out link dropped after it was up.
 */
void peers_io(struct peers *ps, const struct pollfd *pf, int n, void (*lost)(void *arg, int id), void *arg);
/*
 * The next whole message received from any member: 1 with *from, *msg, *len set (valid until the
 * next call), 0 if none is complete.
 */
int peers_recv(struct peers *ps, int *from, const uint8_t **msg, size_t *len);
/* Stream the snapshot file of `index` to member id in chunks (the caller then sends the raft
 * message, which leaves after the last chunk). COORD_OK, or an error (logged) if unreadable. */
int peers_send_snapshot(struct peers *ps, int id, const char *data_dir, uint64_t index, uint64_t term);
/* Store one received chunk; returns 1 when the snapshot (index, term) is complete on disk. */
int peers_recv_chunk(struct peers *ps, uint64_t index, uint64_t term, uint64_t offset, uint64_t total,
		     const void *chunk, size_t len);
/* Make the received snapshot durable as dataDir/snapshot.<index>. COORD_OK or COORD_EIO. */
int peers_keep_snapshot(struct peers *ps);
/* 1 if a complete snapshot (index, term) has been received. */
int peers_have_snapshot(const struct peers *ps, uint64_t index, uint64_t term);
/* 1 if the out link to member id is up. */
int peers_up(const struct peers *ps, int id);

#endif
