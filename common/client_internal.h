/*
 * client_internal.h: the pieces of client.c that can be tested without a server.
 *
 * Not part of the public API (fs/ and the tools use client.h only). They live here, rather than
 * static in client.c, so tests/unit/test_client.c can check the bookkeeping a reconnect depends
 * on: host-list parsing, the xid/ack order of unanswered requests, and the sets of watches to
 * re-arm. None of these lock; client.c calls them under its own mutex (or on its I/O thread).
 */
#ifndef COORD_CLIENT_INTERNAL_H
#define COORD_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

#define COORD_DEFAULT_PORT 2181
#define COORD_HOSTNAME_MAX 256

/* ---- host list: "host:port[,host:port...]" ---- */

struct coord_hostport {
	char host[COORD_HOSTNAME_MAX]; /* a name or a literal address, without brackets */
	int port;
};

/*
 * Parse "h1:p1,h2:p2". IPv6 literals go in brackets ("[::1]:2181"); a missing port means 2181;
 * blanks around entries are ignored. Names are kept as given, not resolved: the client resolves
 * them again at every connection attempt. Returns COORD_OK with a malloc'd array in *out (free()),
 * or COORD_EBADARG with a reason in err.
 */
int coord_hosts_parse(const char *s, struct coord_hostport **out, size_t *n, char *err, size_t errlen);

/* ---- unanswered requests, in xid order ---- */

struct coord_pending {
	struct coord_pending *next;
	uint64_t xid;
	uint8_t op;
	uint8_t watch;          /* the request's watch field, for tracking watches at reply time */
	char *wpath;            /* malloc'd copy of the path when a watch is tracked, else NULL */
	uint8_t *frame;         /* the encoded request, kept to resend it after a reconnect */
	size_t len;
	coord_done_fn done;
	void *arg;
};

struct coord_pqueue {
	struct coord_pending *head, *tail;
	struct coord_pending *unsent;   /* first request not yet sent on this connection, or NULL */
	size_t count;
	uint64_t next_xid;              /* the xid the next request gets */
};

void coord_pq_init(struct coord_pqueue *q, uint64_t first_xid);
/* The ack every outgoing message carries: the smallest xid not yet answered. */
uint64_t coord_pq_ack(const struct coord_pqueue *q);
/* Give p the next xid and append it (after the not-yet-sent ones). Returns the xid. */
uint64_t coord_pq_push(struct coord_pqueue *q, struct coord_pending *p);
/* Unlink and return the request with this xid (NULL if none). */
struct coord_pending *coord_pq_take(struct coord_pqueue *q, uint64_t xid);
/* Look up without unlinking. */
struct coord_pending *coord_pq_find(const struct coord_pqueue *q, uint64_t xid);
/* The next request to send, or NULL; coord_pq_sent marks it sent. */
struct coord_pending *coord_pq_next_unsent(const struct coord_pqueue *q);
void coord_pq_sent(struct coord_pqueue *q);
/* A new connection: every unanswered request is to be sent again, in xid order. */
void coord_pq_rewind(struct coord_pqueue *q);
/* Unlink everything (for failing them all at once); returns the old head list. */
struct coord_pending *coord_pq_take_all(struct coord_pqueue *q);
void coord_pending_free(struct coord_pending *p);

/* ---- a set of paths (the watches a reconnect must re-arm) ---- */

struct coord_wset {
	struct coord_wnode **slots;
	size_t nslots, count;
};

void coord_wset_init(struct coord_wset *s);
void coord_wset_free(struct coord_wset *s);
/* 0 added, 1 already there, -1 out of memory */
int coord_wset_add(struct coord_wset *s, const char *path);
/* 1 removed, 0 was not there */
int coord_wset_del(struct coord_wset *s, const char *path);
int coord_wset_has(const struct coord_wset *s, const char *path);
/* Call fn for every path (any order); stops early when fn returns nonzero. */
int coord_wset_each(const struct coord_wset *s, int (*fn)(void *arg, const char *path), void *arg);

#endif
