/*
 * state.h: the replicated state machine: the znode tree, the session table and each session's
 * reply cache, advanced only by state_apply(zxid, txn).
 *
 * Deterministic: no clocks, randomness or I/O; time comes stamped in the txn. Members that apply
 * the same txns in the same order hold equal state, return equal replies and emit equal events.
 * Out of memory inside apply would make members diverge, so it aborts the process instead.
 * Exactly-once: a session's write requests carry increasing xids; the state keeps the reply of
 * every write the client has not yet acknowledged, so a resent request gets its first reply and
 * is not applied again.
 */
#ifndef COORD_STATE_H
#define COORD_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "acls.h"
#include "buf.h"
#include "sessions.h"
#include "tree.h"
#include "txn.h"

struct state {
	struct tree tree;
	struct sessions sessions;
	uint64_t last_zxid;           /* zxid of the last applied txn */
	uint64_t last_term;           /* the log term of that txn (given by the log, kept in snapshots) */
	uint32_t max_data;            /* maxDataBytes: appends may not grow data past it */
	int hist_depth;               /* historyDepth: versions listed per node, the current one included */
	uint32_t hist_keep;           /* earlier versions kept per node: historyDepth - 1 */
	uint64_t hist_bytes;          /* historyBytes: bytes of earlier versions kept per node */
	int loaded_header;            /* state_load_record saw the closing record */
	struct acls acls;             /* interned ACLs; each znode holds an id */
	char super_user[COORD_PRINCIPAL_MAX + 1]; /* superUser: passes every ACL check ("" = none) */
};

/* One watch-triggering change, in apply order. */
struct state_event {
	uint8_t type;                 /* enum coord_event_type */
	char *path;
};

struct apply_out {
	uint8_t *reply;               /* TXN_REQUEST: the reply frame to send (malloc'd), else NULL */
	size_t reply_len;
	int err;                      /* the reply's error code */
	int dup;                      /* the reply came from the session's cache: nothing was applied */
	uint64_t created_session;     /* TXN_CREATE_SESSION: the new session, 0 if refused */
	uint64_t closed_session;      /* a session that ended with this txn */
	struct state_event *ev;
	size_t nev, cev;
};

int state_init(struct state *s, uint32_t max_data);
void state_free(struct state *s);
/* Versioned reads: historyDepth versions listed per node (the current one included; 0 = off),
 * earlier ones bounded by historyBytes. Every member must use the same values. */
void state_set_history(struct state *s, int depth, uint64_t bytes);
/* superUser: a principal that passes every ACL check (NULL or "" = none). Every member must use
 * the same value. */
void state_set_super_user(struct state *s, const char *principal);
/* Digest of the tree and the ACL table: equal on members that applied the same log. */
uint64_t state_digest(const struct state *s);
/* Apply one txn. out must be zeroed or reset before; free its contents with apply_out_reset. */
void state_apply(struct state *s, uint64_t zxid, const struct txn *t, struct apply_out *out);
void apply_out_reset(struct apply_out *out);


/*
 * Answer a read-only request (GET, EXISTS, LIST, SYNC, HISTORY, GETACL) from the current state: append its reply
 * frame, with header zxid = last_zxid, to out. Returns the reply's error code. state_read_as checks
 * the node's ACL for principal ("" = anonymous); state_read reads as an anonymous session.
 */
int state_read(const struct state *s, const struct coord_req *req, struct buf *out);
int state_read_as(const struct state *s, const struct coord_req *req, const char *principal, struct buf *out);
/* COORD_OK if principal may do perm (COORD_PERM_*) on n, else COORD_ENOAUTH with a message in msg. */
int state_acl_check(const struct state *s, const struct znode *n, const char *path, size_t plen,
		    const char *principal, unsigned perm, char *msg, size_t msglen);

/* Encode an error reply frame. msg may be NULL (then the code's text is used). */
void state_error_frame(struct buf *out, const struct coord_req *req, uint64_t zxid, int err, const char *msg);

/* Snapshots: every record of the state, in an order state_load_record can rebuild from. */
int state_save(const struct state *s, int (*put)(void *arg, const void *p, size_t n), void *arg);
/* Feed records of a snapshot in order into a freshly initialised state; then state_load_done. */
int state_load_record(struct state *s, const uint8_t *p, size_t n);
int state_load_done(struct state *s);

#endif
