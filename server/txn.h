/*
 * txn.h: a transaction, the unit of the replicated log.
 *
 * The leader-side step (prep.c) turns a client request into a txn by stamping what must not be
 * computed on each member (wall-clock time, new session ids and passwords); every member then
 * applies the same txn bytes with state_apply. A client request travels inside the txn as its
 * original wire frame, so the request codec is the only codec of operations.
 *
 * Encoding: u8 type | u64 term | i64 time_ms | u64 session_id | body by type:
 *   TXN_NOOP: empty               TXN_REQUEST: bytes request frame
 *   TXN_CREATE_SESSION: 16 bytes passwd | u32 timeout_ms [| bytes principal] (absent = anonymous)
 *   TXN_CLOSE_SESSION: u8 reason (TXN_CLOSE_EXPIRED)
 */
#ifndef COORD_TXN_H
#define COORD_TXN_H

#include <stdint.h>

#include "buf.h"
#include "wire.h"

enum txn_type {
	TXN_NOOP = 0,            /* a new leader's first entry; changes nothing */
	TXN_CREATE_SESSION = 1,
	TXN_CLOSE_SESSION = 2,   /* expiry decided by the leader */
	TXN_REQUEST = 3,         /* a client's write request */
};

#define TXN_CLOSE_EXPIRED 1

struct txn {
	uint8_t type;
	uint64_t term;
	int64_t time_ms;
	uint64_t session_id;
	uint8_t passwd[COORD_PASSWD_LEN];
	uint32_t timeout_ms;
	char principal[COORD_PRINCIPAL_MAX + 1]; /* TXN_CREATE_SESSION: "" when anonymous */
	uint8_t reason;
	struct slice req;        /* TXN_REQUEST: the request frame (points into the encoded txn) */
};

int txn_encode(struct buf *b, const struct txn *t);
/* COORD_OK or COORD_EPROTO; t->req points into p. */
int txn_decode(const void *p, size_t len, struct txn *t);

#endif
