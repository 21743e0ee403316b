/*
 * ops.h: the write operations on the tree. Each checks its preconditions (returning an error
 * code and a message naming the path, with nothing changed), then applies, stamps the Stat with
 * the txn's zxid and time, and records the watch events it triggers in the apply_out.
 *
 * Inside a multi every change is logged so op_rollback can put the tree, the session table and
 * the event list back exactly as they were at op_begin; op_commit frees what was replaced.
 * Part of the deterministic state machine: no clocks, randomness or I/O. Out of memory aborts.
 */
#ifndef COORD_OPS_H
#define COORD_OPS_H

#include "state.h"

struct undo;

struct op_ctx {
	struct state *s;
	uint64_t zxid;
	int64_t time;
	uint64_t session;
	struct apply_out *out;
	size_t ev_mark;               /* out->nev at op_begin */
	struct undo *undo;
	size_t nundo, cundo;
	int multi;
	const char *principal;        /* the session's principal for ACL checks; NULL = none (expiry, close) */
	char msg[512];                /* error detail for a person */
	char path[COORD_MAX_PATH + 16]; /* CREATE: the path created */
	size_t path_len;
	struct coord_stat stat;       /* CREATE, SET, APPEND, RENAME: the node's Stat after */
};

void op_begin(struct op_ctx *c, struct state *s, uint64_t zxid, int64_t time, uint64_t session,
	      struct apply_out *out, int multi);
/* acl: the ACL's text form when flags has COORD_CREATE_ACL, else the parent's ACL is inherited. */
int op_create(struct op_ctx *c, struct slice path, struct slice data, uint32_t flags, uint8_t policy,
	      struct slice acl);
int op_delete(struct op_ctx *c, struct slice path, int32_t version);
int op_set(struct op_ctx *c, struct slice path, struct slice data, int32_t version);
int op_append(struct op_ctx *c, struct slice path, struct slice data, int32_t version);
int op_check(struct op_ctx *c, struct slice path, int32_t version);
int op_rename(struct op_ctx *c, struct slice from, struct slice to, int32_t version, uint32_t flags);
int op_setpolicy(struct op_ctx *c, struct slice path, uint8_t policy);
/* Replace a node's ACL if its aversion is `aversion` (-1 = any); bumps the aversion. */
int op_setacl(struct op_ctx *c, struct slice path, struct slice acl, int32_t aversion);
/* Delete the session's ephemeral nodes (creation order) and the session. */
void op_close_session(struct op_ctx *c, struct session *se);
void op_commit(struct op_ctx *c);
void op_rollback(struct op_ctx *c);

/* Record a watch event in out (the path is copied). */
void ops_emit(struct apply_out *out, uint8_t type, const char *path, size_t len);
/* Abort the process: out of memory inside apply would let members diverge. */
void ops_oom(void) __attribute__((noreturn));

#endif
