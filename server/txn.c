/*
 * txn.c: encoding of transactions for the log and the replication stream.
 */
#include "txn.h"

#include <string.h>

#include "err.h"

int txn_encode(struct buf *b, const struct txn *t)
{
	buf_u8(b, t->type);
	buf_u64(b, t->term);
	buf_u64(b, (uint64_t)t->time_ms);
	buf_u64(b, t->session_id);
	switch (t->type) {
	case TXN_CREATE_SESSION:
		buf_put(b, t->passwd, COORD_PASSWD_LEN);
		buf_u32(b, t->timeout_ms);
		if (t->principal[0])
			buf_bytes(b, t->principal, strlen(t->principal));
		break;
	case TXN_CLOSE_SESSION:
		buf_u8(b, t->reason);
		break;
	case TXN_REQUEST:
		buf_bytes(b, t->req.p, t->req.len);
		break;
	default:
		break;
	}
	return b->oom ? COORD_ENOMEM : COORD_OK;
}

int txn_decode(const void *p, size_t len, struct txn *t)
{
	struct rd r;
	rd_init(&r, p, len);
	memset(t, 0, sizeof(*t));
	t->type = rd_u8(&r);
	t->term = rd_u64(&r);
	t->time_ms = (int64_t)rd_u64(&r);
	t->session_id = rd_u64(&r);
	switch (t->type) {
	case TXN_NOOP:
		break;
	case TXN_CREATE_SESSION:
		rd_raw(&r, t->passwd, COORD_PASSWD_LEN);
		t->timeout_ms = rd_u32(&r);
		if (rd_left(&r)) {
			struct slice pr = rd_bytes(&r, COORD_PRINCIPAL_MAX);
			if (r.bad || pr.len == 0 || memchr(pr.p, 0, pr.len))
				return COORD_EPROTO;
			memcpy(t->principal, pr.p, pr.len);
		}
		break;
	case TXN_CLOSE_SESSION:
		t->reason = rd_u8(&r);
		break;
	case TXN_REQUEST:
		t->req = rd_bytes(&r, COORD_MAX_DATA + (1u << 20));
		break;
	default:
		return COORD_EPROTO;
	}
	if (r.bad || rd_left(&r))
		return COORD_EPROTO;
	return COORD_OK;
}
