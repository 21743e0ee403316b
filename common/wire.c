/*
 * wire.c: encoder and decoder of the client protocol, version 1 (the layout is in WIRE.md).
 *
 * Each op's body is a list of fields, written down once in a layout table; the encoder and the
 * decoder both walk that table, so they cannot disagree about the order of fields. Multi bodies
 * and the LIST reply's name check are the only hand-written parts.
 *
 * The decoder trusts nothing: every read goes through a cursor that checks what is left, every
 * length is compared with the protocol's limit before it is used, and the first fault stops the
 * decode with a message that names the op and the field.
 */
#include "wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define REQ_HEADER_SIZE 20
#define REPLY_HEADER_SIZE 24 /* then bytes msg */
#define MAX_WORD 64
#define MAX_WATCH_LIST (16u << 20)
#define MAX_NAMES ((uint32_t)COORD_MAX_LIST * (COORD_MAX_NAME + 1))
#define MIN_SUBOP_SIZE 9     /* u8 op, then the smallest body: bytes path (4), i32 version */
#define MIN_SUBRESULT_SIZE 5 /* u8 op, i32 err */

/* ---- names ---- */

static const char *const op_names[COORD_OP_MAX] = {
	[COORD_OP_CONNECT] = "connect",   [COORD_OP_PING] = "ping",
	[COORD_OP_CLOSE] = "close",       [COORD_OP_CREATE] = "create",
	[COORD_OP_DELETE] = "delete",     [COORD_OP_EXISTS] = "exists",
	[COORD_OP_GET] = "get",           [COORD_OP_SET] = "set",
	[COORD_OP_LIST] = "list",         [COORD_OP_APPEND] = "append",
	[COORD_OP_RENAME] = "rename",     [COORD_OP_MULTI] = "multi",
	[COORD_OP_SYNC] = "sync",         [COORD_OP_ADDWATCH] = "addwatch",
	[COORD_OP_REMOVEWATCH] = "removewatch", [COORD_OP_SETPOLICY] = "setpolicy",
	[COORD_OP_CHECK] = "check",       [COORD_OP_ADMIN] = "admin",
	[COORD_OP_SETWATCHES] = "setwatches", [COORD_OP_HISTORY] = "history",
	[COORD_OP_SETACL] = "setacl",     [COORD_OP_GETACL] = "getacl",
};

static int op_valid(int op) { return op > 0 && op < COORD_OP_MAX; }

const char *coord_op_name(int op) { return op_valid(op) ? op_names[op] : "unknown"; }

int coord_op_is_write(int op)
{
	switch (op) {
	case COORD_OP_CLOSE:
	case COORD_OP_CREATE:
	case COORD_OP_DELETE:
	case COORD_OP_SET:
	case COORD_OP_APPEND:
	case COORD_OP_RENAME:
	case COORD_OP_MULTI:
	case COORD_OP_SETPOLICY:
	case COORD_OP_SETACL:
		return 1;
	default:
		return 0;
	}
}

static int subop_valid(int op)
{
	return op == COORD_OP_CREATE || op == COORD_OP_SET || op == COORD_OP_DELETE ||
	       op == COORD_OP_CHECK;
}

/* ---- slices ---- */

struct slice slice_str(const char *s) { return slice_of(s, s ? strlen(s) : 0); }

int slice_eq(struct slice a, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return a.len == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

char *slice_dup(struct slice s)
{
	char *p = malloc((size_t)s.len + 1);
	if (!p)
		return NULL;
	if (s.len)
		memcpy(p, s.p, s.len);
	p[s.len] = '\0';
	return p;
}

/* ---- stat ---- */

void coord_stat_put(struct buf *b, const struct coord_stat *st)
{
	buf_u64(b, (uint64_t)st->czxid);
	buf_u64(b, (uint64_t)st->mzxid);
	buf_u64(b, (uint64_t)st->pzxid);
	buf_u64(b, (uint64_t)st->ctime);
	buf_u64(b, (uint64_t)st->mtime);
	buf_u32(b, (uint32_t)st->version);
	buf_u32(b, (uint32_t)st->cversion);
	buf_u32(b, (uint32_t)st->aversion);
	buf_u64(b, (uint64_t)st->ephemeral_owner);
	buf_u32(b, (uint32_t)st->data_length);
	buf_u32(b, (uint32_t)st->num_children);
	buf_u64(b, st->ino);
	buf_u8(b, st->kind);
	buf_u8(b, st->policy);
}

void coord_stat_get(struct rd *r, struct coord_stat *st)
{
	st->czxid = (int64_t)rd_u64(r);
	st->mzxid = (int64_t)rd_u64(r);
	st->pzxid = (int64_t)rd_u64(r);
	st->ctime = (int64_t)rd_u64(r);
	st->mtime = (int64_t)rd_u64(r);
	st->version = (int32_t)rd_u32(r);
	st->cversion = (int32_t)rd_u32(r);
	st->aversion = (int32_t)rd_u32(r);
	st->ephemeral_owner = (int64_t)rd_u64(r);
	st->data_length = (int32_t)rd_u32(r);
	st->num_children = (int32_t)rd_u32(r);
	st->ino = rd_u64(r);
	st->kind = rd_u8(r);
	st->policy = rd_u8(r);
}

/* ---- the decoding cursor: bounds, limits and the first fault's message ---- */

struct dec {
	struct rd r;
	const char *what; /* prefix of messages (the op), or NULL */
	char whatbuf[48];
	char *err;
	size_t errlen;
	int failed;
	int code; /* what a failed decode returns: COORD_EPROTO, or COORD_ENOMEM */
};

static void dec_init(struct dec *d, const void *frame, size_t len, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	rd_init(&d->r, frame, len);
	d->err = err;
	d->errlen = errlen;
	d->code = COORD_EPROTO;
	if (err && errlen)
		err[0] = '\0';
}

__attribute__((format(printf, 2, 3))) static void dec_fail(struct dec *d, const char *fmt, ...)
{
	if (d->failed)
		return;
	d->failed = 1;
	if (!d->err || !d->errlen)
		return;
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->what)
		snprintf(d->err, d->errlen, "%s: %s", d->what, msg);
	else
		snprintf(d->err, d->errlen, "%s", msg);
}

/* 1 if n more bytes can be read for `field`, else records the fault. */
static int dec_need(struct dec *d, size_t n, const char *field)
{
	if (d->failed)
		return 0;
	if (rd_left(&d->r) < n) {
		dec_fail(d, "frame ends inside %s (%zu bytes needed, %zu left)", field, n,
			 rd_left(&d->r));
		return 0;
	}
	return 1;
}

static uint8_t dec_u8(struct dec *d, const char *field)
{
	return dec_need(d, 1, field) ? rd_u8(&d->r) : 0;
}

static uint32_t dec_u32(struct dec *d, const char *field)
{
	return dec_need(d, 4, field) ? rd_u32(&d->r) : 0;
}

static int32_t dec_i32(struct dec *d, const char *field) { return (int32_t)dec_u32(d, field); }

static uint64_t dec_u64(struct dec *d, const char *field)
{
	return dec_need(d, 8, field) ? rd_u64(&d->r) : 0;
}

static void dec_raw(struct dec *d, void *out, size_t n, const char *field)
{
	if (dec_need(d, n, field))
		rd_raw(&d->r, out, n);
}

/* u32 length then bytes; the slice points into the frame. */
static struct slice dec_bytes(struct dec *d, const char *field, uint32_t max)
{
	struct slice s = {NULL, 0};
	if (!dec_need(d, 4, field))
		return s;
	uint32_t n = rd_u32(&d->r);
	if (n > max) {
		dec_fail(d, "%s length %u exceeds %u", field, n, max);
		return s;
	}
	if (n > rd_left(&d->r)) {
		dec_fail(d, "%s length %u but only %zu bytes left", field, n, rd_left(&d->r));
		return s;
	}
	s.p = d->r.p;
	s.len = n;
	d->r.p += n;
	return s;
}

static void dec_stat(struct dec *d, struct coord_stat *st)
{
	if (dec_need(d, COORD_STAT_WIRE_SIZE, "stat"))
		coord_stat_get(&d->r, st);
}

static void dec_no_trailing(struct dec *d, int op)
{
	if (!d->failed && rd_left(&d->r) > 0) {
		d->what = NULL;
		dec_fail(d, "%zu trailing bytes after %s body", rd_left(&d->r), coord_op_name(op));
	}
}

/* ---- request bodies: one layout per op ---- */

enum req_field {
	QF_END = 0,
	QF_PATH, QF_PATH2, QF_DATA, QF_AFTER, QF_WORD,
	QF_VERSION, QF_FLAGS, QF_POLICY, QF_WATCH, QF_MAX,
	QF_SESSION, QF_PASSWD, QF_TIMEOUT, QF_LAST_ZXID,
	QF_DATA_WATCHES, QF_CHILD_WATCHES, QF_PERSISTENT, QF_RECURSIVE,
	QF_MULTI,
	QF_CREATE_ACL, /* bytes acl, present only when flags has COORD_CREATE_ACL */
	QF_ACL,
};

static const uint8_t req_layout[COORD_OP_MAX][6] = {
	[COORD_OP_CONNECT] = {QF_SESSION, QF_PASSWD, QF_TIMEOUT, QF_LAST_ZXID},
	[COORD_OP_PING] = {QF_END},
	[COORD_OP_CLOSE] = {QF_END},
	[COORD_OP_CREATE] = {QF_PATH, QF_DATA, QF_FLAGS, QF_POLICY, QF_CREATE_ACL},
	[COORD_OP_DELETE] = {QF_PATH, QF_VERSION},
	[COORD_OP_EXISTS] = {QF_PATH, QF_WATCH},
	[COORD_OP_GET] = {QF_PATH, QF_WATCH},
	[COORD_OP_SET] = {QF_PATH, QF_DATA, QF_VERSION},
	[COORD_OP_LIST] = {QF_PATH, QF_WATCH, QF_AFTER, QF_MAX},
	[COORD_OP_APPEND] = {QF_PATH, QF_DATA, QF_VERSION},
	[COORD_OP_RENAME] = {QF_PATH, QF_PATH2, QF_VERSION, QF_FLAGS},
	[COORD_OP_MULTI] = {QF_MULTI},
	[COORD_OP_SYNC] = {QF_PATH},
	[COORD_OP_ADDWATCH] = {QF_PATH, QF_WATCH},
	[COORD_OP_REMOVEWATCH] = {QF_PATH, QF_WATCH},
	[COORD_OP_SETPOLICY] = {QF_PATH, QF_POLICY},
	[COORD_OP_CHECK] = {QF_PATH, QF_VERSION},
	[COORD_OP_ADMIN] = {QF_WORD},
	[COORD_OP_SETWATCHES] = {QF_LAST_ZXID, QF_DATA_WATCHES, QF_CHILD_WATCHES, QF_PERSISTENT,
				 QF_RECURSIVE},
	[COORD_OP_HISTORY] = {QF_PATH, QF_VERSION},
	[COORD_OP_SETACL] = {QF_PATH, QF_ACL, QF_VERSION},
	[COORD_OP_GETACL] = {QF_PATH},
};

static void subop_put(struct buf *b, const struct coord_subop *s);

static void req_field_put(struct buf *b, int f, const struct coord_req *q)
{
	switch (f) {
	case QF_PATH: buf_bytes(b, q->path.p, q->path.len); break;
	case QF_PATH2: buf_bytes(b, q->path2.p, q->path2.len); break;
	case QF_DATA: buf_bytes(b, q->data.p, q->data.len); break;
	case QF_AFTER: buf_bytes(b, q->after.p, q->after.len); break;
	case QF_WORD: buf_bytes(b, q->word.p, q->word.len); break;
	case QF_VERSION: buf_u32(b, (uint32_t)q->version); break;
	case QF_FLAGS: buf_u32(b, q->flags); break;
	case QF_POLICY: buf_u8(b, q->policy); break;
	case QF_WATCH: buf_u8(b, q->watch); break;
	case QF_MAX: buf_u32(b, q->max); break;
	case QF_SESSION: buf_u64(b, q->session_id); break;
	case QF_PASSWD: buf_put(b, q->passwd, COORD_PASSWD_LEN); break;
	case QF_TIMEOUT: buf_u32(b, q->timeout_ms); break;
	case QF_LAST_ZXID: buf_u64(b, q->last_zxid); break;
	case QF_DATA_WATCHES: buf_bytes(b, q->data_watches.p, q->data_watches.len); break;
	case QF_CHILD_WATCHES: buf_bytes(b, q->child_watches.p, q->child_watches.len); break;
	case QF_PERSISTENT: buf_bytes(b, q->persistent.p, q->persistent.len); break;
	case QF_RECURSIVE: buf_bytes(b, q->recursive.p, q->recursive.len); break;
	case QF_CREATE_ACL:
		if (q->flags & COORD_CREATE_ACL)
			buf_bytes(b, q->acl.p, q->acl.len);
		break;
	case QF_ACL: buf_bytes(b, q->acl.p, q->acl.len); break;
	case QF_MULTI:
		buf_u32(b, q->nops);
		for (uint32_t i = 0; i < q->nops && q->ops; i++)
			subop_put(b, &q->ops[i]);
		break;
	}
}

static void req_body_put(struct buf *b, int op, const struct coord_req *q)
{
	if (!op_valid(op))
		return;
	for (int i = 0; i < 6 && req_layout[op][i] != QF_END; i++)
		req_field_put(b, req_layout[op][i], q);
}

/* A sub-op travels as its op byte and the body of the top-level op of the same name. */
static void subop_put(struct buf *b, const struct coord_subop *s)
{
	struct coord_req q;
	memset(&q, 0, sizeof(q));
	q.path = s->path;
	q.data = s->data;
	q.version = s->version;
	q.flags = s->flags;
	q.policy = s->policy;
	q.acl = s->acl;
	buf_u8(b, s->op);
	if (subop_valid(s->op))
		req_body_put(b, s->op, &q);
}

/* A NUL-separated path list must end in NUL, so the server can walk it without running off. */
static struct slice dec_watch_list(struct dec *d, const char *field)
{
	struct slice s = dec_bytes(d, field, MAX_WATCH_LIST);
	if (!d->failed && s.len > 0 && s.p[s.len - 1] != '\0')
		dec_fail(d, "%s: the last path is not NUL-terminated", field);
	return s;
}

static void dec_multi(struct dec *d, struct coord_req *q);

static void req_field_get(struct dec *d, int f, struct coord_req *q)
{
	switch (f) {
	case QF_PATH: q->path = dec_bytes(d, "path", COORD_MAX_PATH); break;
	case QF_PATH2: q->path2 = dec_bytes(d, "new path", COORD_MAX_PATH); break;
	case QF_DATA: q->data = dec_bytes(d, "data", COORD_MAX_DATA); break;
	case QF_AFTER: q->after = dec_bytes(d, "after", COORD_MAX_PATH); break;
	case QF_WORD: q->word = dec_bytes(d, "word", MAX_WORD); break;
	case QF_VERSION: q->version = dec_i32(d, "version"); break;
	case QF_FLAGS: q->flags = dec_u32(d, "flags"); break;
	case QF_POLICY: q->policy = dec_u8(d, "policy"); break;
	case QF_WATCH: q->watch = dec_u8(d, "watch"); break;
	case QF_MAX:
		q->max = dec_u32(d, "max");
		if (!d->failed && q->max > COORD_MAX_LIST)
			dec_fail(d, "max %u exceeds %u", q->max, COORD_MAX_LIST);
		break;
	case QF_SESSION: q->session_id = dec_u64(d, "session id"); break;
	case QF_PASSWD: dec_raw(d, q->passwd, COORD_PASSWD_LEN, "passwd"); break;
	case QF_TIMEOUT: q->timeout_ms = dec_u32(d, "timeout"); break;
	case QF_LAST_ZXID: q->last_zxid = dec_u64(d, "last zxid"); break;
	case QF_DATA_WATCHES: q->data_watches = dec_watch_list(d, "data watches"); break;
	case QF_CHILD_WATCHES: q->child_watches = dec_watch_list(d, "child watches"); break;
	case QF_PERSISTENT: q->persistent = dec_watch_list(d, "persistent watches"); break;
	case QF_RECURSIVE: q->recursive = dec_watch_list(d, "recursive watches"); break;
	case QF_CREATE_ACL:
		if (q->flags & COORD_CREATE_ACL)
			q->acl = dec_bytes(d, "acl", COORD_MAX_ACL_TEXT);
		break;
	case QF_ACL: q->acl = dec_bytes(d, "acl", COORD_MAX_ACL_TEXT); break;
	case QF_MULTI: dec_multi(d, q); break;
	}
}

static void req_body_get(struct dec *d, int op, struct coord_req *q)
{
	for (int i = 0; i < 6 && req_layout[op][i] != QF_END && !d->failed; i++)
		req_field_get(d, req_layout[op][i], q);
}

static void subop_get(struct dec *d, uint32_t i, struct coord_subop *s)
{
	snprintf(d->whatbuf, sizeof(d->whatbuf), "multi op %u", i);
	d->what = d->whatbuf;
	s->op = dec_u8(d, "sub-op");
	if (d->failed)
		return;
	if (!subop_valid(s->op)) {
		dec_fail(d, "sub-op %u (%s) is not allowed in a multi (create, set, delete, check only)",
			 s->op, coord_op_name(s->op));
		return;
	}
	snprintf(d->whatbuf, sizeof(d->whatbuf), "multi op %u (%s)", i, coord_op_name(s->op));
	struct coord_req q;
	memset(&q, 0, sizeof(q));
	req_body_get(d, s->op, &q);
	s->path = q.path;
	s->data = q.data;
	s->version = q.version;
	s->flags = q.flags;
	s->policy = q.policy;
	s->acl = q.acl;
}

/* The op count is checked against the bytes left before the array is allocated, so a short
 * frame cannot make the decoder allocate much. */
static void dec_multi(struct dec *d, struct coord_req *q)
{
	uint32_t n = dec_u32(d, "op count");
	if (d->failed)
		return;
	if (n > COORD_MAX_MULTI) {
		dec_fail(d, "%u ops exceed the limit of %u", n, COORD_MAX_MULTI);
		return;
	}
	if ((size_t)n * MIN_SUBOP_SIZE > rd_left(&d->r)) {
		dec_fail(d, "%u ops cannot fit in the %zu bytes left", n, rd_left(&d->r));
		return;
	}
	if (n == 0)
		return;
	q->ops = calloc(n, sizeof(*q->ops));
	if (!q->ops) {
		dec_fail(d, "cannot allocate %u ops", n);
		d->code = COORD_ENOMEM;
		return;
	}
	q->nops = n;
	for (uint32_t i = 0; i < n && !d->failed; i++)
		subop_get(d, i, &q->ops[i]);
	d->what = "multi";
}

/* ---- requests ---- */

int coord_req_encode(struct buf *b, const struct coord_req *req)
{
	buf_u8(b, COORD_WIRE_VERSION);
	buf_u8(b, req->op);
	buf_u16(b, 0);
	buf_u64(b, req->xid);
	buf_u64(b, req->ack);
	req_body_put(b, req->op, req);
	return b->oom ? COORD_ENOMEM : COORD_OK;
}

static void req_header_get(struct dec *d, size_t len, struct coord_req *req)
{
	if (len < REQ_HEADER_SIZE) {
		dec_fail(d, "frame too short: %zu bytes, header needs %d", len, REQ_HEADER_SIZE);
		return;
	}
	uint8_t version = rd_u8(&d->r);
	req->op = rd_u8(&d->r);
	(void)rd_u16(&d->r); /* flags: reserved, ignored */
	req->xid = rd_u64(&d->r);
	req->ack = rd_u64(&d->r);
	if (version != COORD_WIRE_VERSION)
		dec_fail(d, "unsupported wire version %u (this side speaks %d)", version,
			 COORD_WIRE_VERSION);
	else if (!op_valid(req->op))
		dec_fail(d, "unknown op %u", req->op);
}

int coord_req_decode(const void *frame, size_t len, struct coord_req *req, char *errbuf,
		     size_t errlen)
{
	struct dec d;
	memset(req, 0, sizeof(*req));
	dec_init(&d, frame, len, errbuf, errlen);
	req_header_get(&d, len, req);
	if (!d.failed) {
		d.what = coord_op_name(req->op);
		req_body_get(&d, req->op, req);
		dec_no_trailing(&d, req->op);
	}
	if (d.failed) {
		coord_req_clear(req);
		return d.code;
	}
	return COORD_OK;
}

void coord_req_clear(struct coord_req *req)
{
	free(req->ops);
	memset(req, 0, sizeof(*req));
}

/* ---- reply bodies ---- */

enum reply_field {
	RF_END = 0,
	RF_STAT, RF_PATH, RF_DATA, RF_TEXT, RF_COUNT, RF_NAMES, RF_MORE,
	RF_SESSION, RF_PASSWD, RF_TIMEOUT, RF_SERVER, RF_MAX_DATA, RF_KEPT, RF_HIST,
	RF_PRINCIPAL, /* optional trailing bytes: present only when not empty */
	RF_ACL, RF_PERMS,
};

static const uint8_t reply_layout[COORD_OP_MAX][7] = {
	[COORD_OP_CONNECT] = {RF_SESSION, RF_PASSWD, RF_TIMEOUT, RF_SERVER, RF_MAX_DATA, RF_KEPT, RF_PRINCIPAL},
	[COORD_OP_CREATE] = {RF_PATH, RF_STAT},
	[COORD_OP_EXISTS] = {RF_STAT},
	[COORD_OP_SET] = {RF_STAT},
	[COORD_OP_APPEND] = {RF_STAT},
	[COORD_OP_RENAME] = {RF_STAT},
	[COORD_OP_GET] = {RF_STAT, RF_DATA},
	[COORD_OP_LIST] = {RF_STAT, RF_COUNT, RF_NAMES, RF_MORE},
	[COORD_OP_SYNC] = {RF_PATH},
	[COORD_OP_ADMIN] = {RF_TEXT},
	[COORD_OP_HISTORY] = {RF_STAT, RF_HIST, RF_DATA},
	[COORD_OP_SETACL] = {RF_STAT},
	[COORD_OP_GETACL] = {RF_STAT, RF_ACL, RF_PERMS},
};

static void reply_field_put(struct buf *b, int f, const struct coord_reply *r)
{
	switch (f) {
	case RF_STAT: coord_stat_put(b, &r->stat); break;
	case RF_PATH: buf_bytes(b, r->path.p, r->path.len); break;
	case RF_DATA:
	case RF_TEXT: buf_bytes(b, r->data.p, r->data.len); break;
	case RF_COUNT: buf_u32(b, r->count); break;
	case RF_NAMES: buf_bytes(b, r->names.p, r->names.len); break;
	case RF_MORE: buf_u8(b, r->more); break;
	case RF_SESSION: buf_u64(b, r->session_id); break;
	case RF_PASSWD: buf_put(b, r->passwd, COORD_PASSWD_LEN); break;
	case RF_TIMEOUT: buf_u32(b, r->timeout_ms); break;
	case RF_SERVER: buf_u32(b, r->server_id); break;
	case RF_MAX_DATA: buf_u32(b, r->max_data); break;
	case RF_KEPT: buf_u8(b, r->watches_kept); break;
	case RF_HIST:
		buf_u32(b, r->nhist);
		buf_bytes(b, r->hist.p, r->hist.len);
		break;
	case RF_PRINCIPAL:
		/* Absent for an anonymous session, so clients that predate it decode the reply. */
		if (r->principal.len)
			buf_bytes(b, r->principal.p, r->principal.len);
		break;
	case RF_ACL: buf_bytes(b, r->acl.p, r->acl.len); break;
	case RF_PERMS: buf_u8(b, r->perms); break;
	}
}

/* LIST: exactly `count` names, each NUL-terminated, so a reader can walk them with strlen. */
static void check_names(struct dec *d, const struct coord_reply *r)
{
	uint32_t nuls = 0;
	for (uint32_t i = 0; i < r->names.len; i++)
		nuls += r->names.p[i] == '\0';
	if (nuls != r->count)
		dec_fail(d, "count says %u names but names holds %u NUL terminators", r->count, nuls);
	else if (r->names.len > 0 && r->names.p[r->names.len - 1] != '\0')
		dec_fail(d, "the last name is not NUL-terminated");
}

static void reply_field_get(struct dec *d, int f, struct coord_reply *r)
{
	switch (f) {
	case RF_STAT: dec_stat(d, &r->stat); break;
	case RF_PATH: r->path = dec_bytes(d, "path", COORD_MAX_PATH); break;
	case RF_DATA: r->data = dec_bytes(d, "data", COORD_MAX_DATA); break;
	case RF_TEXT: r->data = dec_bytes(d, "text", COORD_MAX_DATA); break;
	case RF_COUNT:
		r->count = dec_u32(d, "count");
		if (!d->failed && r->count > COORD_MAX_LIST)
			dec_fail(d, "count %u exceeds %u", r->count, COORD_MAX_LIST);
		break;
	case RF_NAMES:
		r->names = dec_bytes(d, "names", MAX_NAMES);
		if (!d->failed)
			check_names(d, r);
		break;
	case RF_MORE: r->more = dec_u8(d, "more"); break;
	case RF_SESSION: r->session_id = dec_u64(d, "session id"); break;
	case RF_PASSWD: dec_raw(d, r->passwd, COORD_PASSWD_LEN, "passwd"); break;
	case RF_TIMEOUT: r->timeout_ms = dec_u32(d, "timeout"); break;
	case RF_SERVER: r->server_id = dec_u32(d, "server id"); break;
	case RF_MAX_DATA: r->max_data = dec_u32(d, "max data"); break;
	case RF_KEPT: r->watches_kept = dec_u8(d, "watches kept"); break;
	case RF_HIST:
		r->nhist = dec_u32(d, "history count");
		r->hist = dec_bytes(d, "history", 1u << 20);
		if (!d->failed && (uint64_t)r->nhist * COORD_HIST_WIRE_SIZE != r->hist.len)
			dec_fail(d, "history count %u does not match %u bytes of records", r->nhist, r->hist.len);
		break;
	case RF_PRINCIPAL:
		if (!d->failed && rd_left(&d->r) > 0) {
			r->principal = dec_bytes(d, "principal", COORD_PRINCIPAL_MAX);
			if (!d->failed && r->principal.len == 0)
				dec_fail(d, "principal is present but empty");
		}
		break;
	case RF_ACL: r->acl = dec_bytes(d, "acl", COORD_MAX_ACL_TEXT); break;
	case RF_PERMS: r->perms = dec_u8(d, "perms"); break;
	}
}

static void subresult_put(struct buf *b, const struct coord_subresult *s)
{
	buf_u8(b, s->op);
	buf_u32(b, (uint32_t)s->err);
	if (s->err != 0)
		return;
	if (s->op == COORD_OP_CREATE)
		buf_bytes(b, s->path.p, s->path.len);
	if (s->op == COORD_OP_CREATE || s->op == COORD_OP_SET)
		coord_stat_put(b, &s->stat);
}

static void subresult_get(struct dec *d, uint32_t i, struct coord_subresult *s)
{
	snprintf(d->whatbuf, sizeof(d->whatbuf), "multi result %u", i);
	d->what = d->whatbuf;
	s->op = dec_u8(d, "sub-op");
	s->err = dec_i32(d, "err");
	if (d->failed)
		return;
	if (!subop_valid(s->op)) {
		dec_fail(d, "sub-op %u (%s) is not allowed in a multi (create, set, delete, check only)",
			 s->op, coord_op_name(s->op));
		return;
	}
	if (s->err != 0)
		return;
	if (s->op == COORD_OP_CREATE)
		s->path = dec_bytes(d, "path", COORD_MAX_PATH);
	if (s->op == COORD_OP_CREATE || s->op == COORD_OP_SET)
		dec_stat(d, &s->stat);
}

static void multi_reply_get(struct dec *d, struct coord_reply *r)
{
	r->fail_index = dec_i32(d, "fail index");
	uint32_t n = dec_u32(d, "op count");
	if (d->failed)
		return;
	if (n > COORD_MAX_MULTI) {
		dec_fail(d, "%u results exceed the limit of %u", n, COORD_MAX_MULTI);
		return;
	}
	if ((size_t)n * MIN_SUBRESULT_SIZE > rd_left(&d->r)) {
		dec_fail(d, "%u results cannot fit in the %zu bytes left", n, rd_left(&d->r));
		return;
	}
	if (n == 0)
		return;
	r->ops = calloc(n, sizeof(*r->ops));
	if (!r->ops) {
		dec_fail(d, "cannot allocate %u results", n);
		d->code = COORD_ENOMEM;
		return;
	}
	r->nops = n;
	for (uint32_t i = 0; i < n && !d->failed; i++)
		subresult_get(d, i, &r->ops[i]);
	d->what = "multi";
}

/* ---- replies and events ---- */

int coord_reply_encode(struct buf *b, const struct coord_reply *rep)
{
	int event = rep->kind == COORD_MSG_EVENT;
	buf_u8(b, COORD_WIRE_VERSION);
	buf_u8(b, rep->kind);
	buf_u8(b, event ? 0 : rep->op);
	buf_u8(b, 0);
	buf_u32(b, event ? 0 : (uint32_t)rep->err);
	buf_u64(b, event ? 0 : rep->xid);
	buf_u64(b, rep->zxid);
	buf_bytes(b, rep->msg.p, rep->msg.len);
	if (event) {
		buf_u8(b, rep->ev_type);
		buf_bytes(b, rep->ev_path.p, rep->ev_path.len);
	} else if (rep->kind == COORD_MSG_REPLY && rep->op == COORD_OP_MULTI) {
		buf_u32(b, (uint32_t)rep->fail_index);
		buf_u32(b, rep->nops);
		for (uint32_t i = 0; i < rep->nops && rep->ops; i++)
			subresult_put(b, &rep->ops[i]);
	} else if (rep->kind == COORD_MSG_REPLY && rep->err == 0 && op_valid(rep->op)) {
		for (int i = 0; i < 7 && reply_layout[rep->op][i] != RF_END; i++)
			reply_field_put(b, reply_layout[rep->op][i], rep);
	}
	return b->oom ? COORD_ENOMEM : COORD_OK;
}

/* The fixed part of the header; kind, xid and op are checked by the caller as it needs. */
static int reply_header_get(struct dec *d, size_t len, struct coord_reply *r)
{
	if (len < REPLY_HEADER_SIZE) {
		dec_fail(d, "frame too short: %zu bytes, header needs %d", len, REPLY_HEADER_SIZE);
		return -1;
	}
	uint8_t version = rd_u8(&d->r);
	r->kind = rd_u8(&d->r);
	r->op = rd_u8(&d->r);
	(void)rd_u8(&d->r); /* reserved, ignored */
	r->err = (int32_t)rd_u32(&d->r);
	r->xid = rd_u64(&d->r);
	r->zxid = rd_u64(&d->r);
	if (version != COORD_WIRE_VERSION) {
		dec_fail(d, "unsupported wire version %u (this side speaks %d)", version,
			 COORD_WIRE_VERSION);
		return -1;
	}
	if (r->kind != COORD_MSG_REPLY && r->kind != COORD_MSG_EVENT) {
		dec_fail(d, "unknown message kind %u", r->kind);
		return -1;
	}
	return 0;
}

int coord_reply_peek(const void *frame, size_t len, uint8_t *kind, uint64_t *xid, uint8_t *op)
{
	struct dec d;
	struct coord_reply r;
	memset(&r, 0, sizeof(r));
	dec_init(&d, frame, len, NULL, 0);
	if (reply_header_get(&d, len, &r))
		return COORD_EPROTO;
	if (kind)
		*kind = r.kind;
	if (xid)
		*xid = r.xid;
	if (op)
		*op = r.op;
	return COORD_OK;
}

static void event_get(struct dec *d, struct coord_reply *r)
{
	d->what = "event";
	if (r->op != 0 || r->err != 0 || r->xid != 0) {
		dec_fail(d, "header has op %u, err %d, xid %llu (all must be 0)", r->op, r->err,
			 (unsigned long long)r->xid);
		return;
	}
	r->ev_type = dec_u8(d, "event type");
	r->ev_path = dec_bytes(d, "path", COORD_MAX_PATH);
	if (!d->failed && rd_left(&d->r) > 0) {
		d->what = NULL;
		dec_fail(d, "%zu trailing bytes after event body", rd_left(&d->r));
	}
}

/* op: the op the client sent for this xid, or 0 to take the header's word for it. */
static void reply_body_get(struct dec *d, uint8_t op, struct coord_reply *r)
{
	if (op != 0 && r->op != op) {
		dec_fail(d, "reply to xid %llu is for op %u (%s), but the request was %s",
			 (unsigned long long)r->xid, r->op, coord_op_name(r->op), coord_op_name(op));
		return;
	}
	if (!op_valid(r->op)) {
		dec_fail(d, "unknown op %u", r->op);
		return;
	}
	d->what = coord_op_name(r->op);
	if (r->op == COORD_OP_MULTI)
		multi_reply_get(d, r);
	else if (r->err == 0)
		for (int i = 0; i < 7 && reply_layout[r->op][i] != RF_END && !d->failed; i++)
			reply_field_get(d, reply_layout[r->op][i], r);
	dec_no_trailing(d, r->op);
}

int coord_reply_decode(const void *frame, size_t len, uint8_t op, struct coord_reply *rep,
		       char *errbuf, size_t errlen)
{
	struct dec d;
	memset(rep, 0, sizeof(*rep));
	dec_init(&d, frame, len, errbuf, errlen);
	if (reply_header_get(&d, len, rep) == 0) {
		rep->msg = dec_bytes(&d, "msg", UINT32_MAX);
		if (!d.failed && rep->kind == COORD_MSG_EVENT)
			event_get(&d, rep);
		else if (!d.failed)
			reply_body_get(&d, op, rep);
	}
	if (d.failed) {
		coord_reply_clear(rep);
		return d.code;
	}
	return COORD_OK;
}

void coord_reply_clear(struct coord_reply *rep)
{
	free(rep->ops);
	memset(rep, 0, sizeof(*rep));
}

void coord_hist_put(struct buf *b, const struct coord_hist *h)
{
	buf_u32(b, (uint32_t)h->version);
	buf_u64(b, (uint64_t)h->mzxid);
	buf_u64(b, (uint64_t)h->mtime);
	buf_u32(b, h->size);
}

int coord_hist_at(const struct coord_reply *rep, uint32_t i, struct coord_hist *h)
{
	if (i >= rep->nhist || (size_t)(i + 1) * COORD_HIST_WIRE_SIZE > rep->hist.len)
		return COORD_EBADARG;
	struct rd r;
	rd_init(&r, rep->hist.p + (size_t)i * COORD_HIST_WIRE_SIZE, COORD_HIST_WIRE_SIZE);
	h->version = (int32_t)rd_u32(&r);
	h->mzxid = (int64_t)rd_u64(&r);
	h->mtime = (int64_t)rd_u64(&r);
	h->size = rd_u32(&r);
	return COORD_OK;
}
