/*
 * clients.h: this member's view of the sessions it serves: which ZeroMQ peer (routing id) a
 * session is attached to, when it was last heard from (monotonic clock), how many of its
 * requests wait in the current batch, and its recent watch events, kept so a client that
 * reconnects gets the events its old connection lost.
 *
 * Not replicated: it is the server's bookkeeping around the state machine. Owns its entries.
 */
#ifndef COORD_CLIENTS_H
#define COORD_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#define CLIENT_ROUTE_MAX 255
#define CLIENT_RING_EVENTS 1024   /* recent events kept per session for replay after a reconnect */

struct client_event {
	uint64_t zxid;
	int64_t at_ns;
	uint8_t *frame;
	uint32_t len;
};

/* A request of this session waiting for its turn: replies leave in the order requests came. */
enum client_op_kind {
	CLIENT_OP_WRITE = 1,   /* waits until its txn is applied here */
	CLIENT_OP_READ = 2,    /* answered when it reaches the head */
	CLIENT_OP_SYNC = 3,    /* answered once this member applied the leader's commit point */
	CLIENT_OP_FRAME = 4,   /* a reply ready to go in its turn */
};

struct client_op {
	struct client_op *next;
	uint8_t kind;
	uint8_t done;          /* WRITE: reply holds its answer; SYNC: index is known */
	uint64_t xid;
	uint64_t index;        /* SYNC: the commit point to reach */
	uint64_t ctx;          /* SYNC: the read-index request id */
	int sent_to;           /* WRITE: the leader it was last handed to (0: not yet) */
	uint64_t sent_term;
	int64_t recv_ns;
	uint8_t *req;          /* the request frame */
	size_t req_len;
	uint8_t *reply;        /* the answer (WRITE done, FRAME) */
	size_t reply_len;
};

struct client {
	uint64_t session;
	uint8_t route[CLIENT_ROUTE_MAX];
	uint8_t route_len;            /* 0: no connection attached */
	int64_t last_heard_ns;        /* CLOCK_MONOTONIC */
	uint32_t timeout_ms;
	struct client_op *head, *tail; /* this session's requests not yet answered, in order */
	uint32_t nops;
	int touched;                  /* heard from since the last report to the leader */
	int expiring;                 /* a close txn is on its way */
	int watches_lost;             /* set when the member restarted: the client must re-arm watches */
	struct client_event *ring;    /* circular, oldest first from ring_head */
	uint32_t ring_head, ring_n;
	uint64_t ring_dropped_zxid;   /* newest zxid of an event pushed out of the ring */
	struct client *next_id, *next_route;
};

struct clients {
	struct client **by_id, **by_route;
	size_t nbuckets, count;
};

int clients_init(struct clients *cs);
void clients_free(struct clients *cs);
struct client *clients_get(const struct clients *cs, uint64_t session);
/* The entry for a session, made if missing. NULL on ENOMEM. */
struct client *clients_add(struct clients *cs, uint64_t session, uint32_t timeout_ms, int64_t now_ns);
void clients_remove(struct clients *cs, uint64_t session);
/* The session attached to a routing id, or NULL. */
struct client *clients_by_route(const struct clients *cs, const void *route, size_t len);
/* Attach a connection to a session (detaching whatever connection it had). */
void clients_attach(struct clients *cs, struct client *c, const void *route, size_t len);
/* Forget the session's connection (its requests then get "send CONNECT first"). */
void clients_detach(struct clients *cs, struct client *c);
/* Keep a copy of an event frame for replay; events older than twice the session timeout go
 * (a client away that long has lost its session anyway). */
void client_ring_push(struct client *c, uint64_t zxid, const void *frame, size_t len, int64_t now_ns);
/* Queue a request (the frame is copied). NULL on ENOMEM. */
struct client_op *client_op_push(struct client *c, uint8_t kind, uint64_t xid, const void *req, size_t len,
				 int64_t now_ns);
/* Remove the head op and free it. */
void client_op_pop(struct client *c);
/* Visit every client. cb may not remove entries. */
void clients_each(const struct clients *cs, void (*cb)(void *arg, struct client *c), void *arg);

#endif
