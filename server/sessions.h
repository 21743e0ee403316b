/*
 * sessions.h: the replicated session table: each session's password, timeout, ephemeral nodes
 * and cache of replies to writes the client has not acknowledged yet (exactly-once).
 *
 * Part of the deterministic state (no clocks: when a session expires is decided outside, by the
 * leader, and arrives as a txn). Liveness bookkeeping lives in the server (server/liveness.c).
 * The table owns its sessions and their cached frames; it does not own the nodes it points to.
 */
#ifndef COORD_SESSIONS_H
#define COORD_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "tree.h"

#define SESSION_MAX_CACHED_REPLIES 4096 /* more unacknowledged writes than this drop the oldest */

struct cached_reply {
	uint64_t xid;
	uint8_t *frame;
	uint32_t len;
};

struct session {
	uint64_t id;
	uint8_t passwd[COORD_PASSWD_LEN];
	uint32_t timeout_ms;
	char principal[COORD_PRINCIPAL_MAX + 1]; /* authenticated name; "" when anonymous */
	struct znode **eph;           /* this session's ephemeral nodes, creation order */
	uint32_t neph, ceph;
	uint64_t last_xid;            /* highest xid applied */
	struct cached_reply *cache;   /* replies to writes not yet acknowledged, xid order */
	uint32_t ncache, ccache;
	struct session *next;         /* hash chain */
};

struct sessions {
	struct session **buckets;
	size_t nbuckets, count;
};

int sessions_init(struct sessions *t);
void sessions_free(struct sessions *t);
struct session *sessions_find(const struct sessions *t, uint64_t id);
/* A new session (id must be unused) of principal (NULL or "" = anonymous; longer than
 * COORD_PRINCIPAL_MAX is cut); NULL on ENOMEM. */
struct session *sessions_add(struct sessions *t, uint64_t id, const uint8_t *passwd, uint32_t timeout_ms,
			     const char *principal);
/* Unlink and free (its ephemeral nodes must be gone already). */
void sessions_remove(struct sessions *t, struct session *se);
void sessions_each(const struct sessions *t, void (*cb)(void *arg, struct session *se), void *arg);

/* Add an ephemeral node, keeping the list in creation (inode) order; O(1) for a new node. */
int session_eph_add(struct session *se, struct znode *n);
void session_eph_del(struct session *se, const struct znode *n);
void session_eph_replace(struct session *se, const struct znode *old, struct znode *n);

/* Drop cached replies with xid < ack. */
void session_cache_prune(struct session *se, uint64_t ack);
/* Keep a copy of a reply frame; COORD_OK or COORD_ENOMEM. */
int session_cache_put(struct session *se, uint64_t xid, const void *frame, size_t len);
const struct cached_reply *session_cache_find(const struct session *se, uint64_t xid);

#endif
