/*
 * test_wire.c: the client protocol codec (common/wire.c) against WIRE.md.
 *
 * Every op's request and reply survives a round trip; the bytes on the wire are the documented
 * ones; every malformed frame (cut short anywhere, trailing bytes, wrong version or op, lengths
 * over the limits) is refused with COORD_EPROTO and a reason, and leaves the struct cleared.
 *
 * `test_wire --write-corpus DIR` writes the sample frames as seeds for tests/fuzz/fuzz_wire.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "wire.h"

/* ---- sample messages ---- */

static const struct coord_stat sample_stat = {
	.czxid = 0x0102030405060708, .mzxid = -2, .pzxid = INT64_MAX,
	.ctime = 1700000000123, .mtime = INT64_MIN,
	.version = -1, .cversion = 7, .aversion = INT32_MAX,
	.ephemeral_owner = 0x7766554433221100, .data_length = 11, .num_children = 3,
	.ino = UINT64_MAX, .kind = COORD_KIND_DIR, .policy = COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL,
};

static struct coord_subop sample_subops[4];

static void sample_subops_init(void)
{
	memset(sample_subops, 0, sizeof(sample_subops));
	sample_subops[0] = (struct coord_subop){.op = COORD_OP_CREATE, .path = slice_str("/m/a"),
		.data = slice_str("alpha"), .flags = COORD_CREATE_DIR, .policy = COORD_POLICY_SEQUENTIAL};
	sample_subops[1] = (struct coord_subop){.op = COORD_OP_SET, .path = slice_str("/m/b"),
		.data = slice_str("beta"), .version = 4};
	sample_subops[2] = (struct coord_subop){.op = COORD_OP_DELETE, .path = slice_str("/m/c"),
		.version = -1};
	sample_subops[3] = (struct coord_subop){.op = COORD_OP_CHECK, .path = slice_str("/m"),
		.version = 12};
}

/* A request of `op` with every field its body carries set to something distinctive. */
static void sample_req(int op, struct coord_req *q)
{
	static const char watches[] = "/a\0/b/c\0";
	memset(q, 0, sizeof(*q));
	q->op = (uint8_t)op;
	q->xid = 0x1122334455667788ull + (uint64_t)op;
	q->ack = 0x99;
	switch (op) {
	case COORD_OP_CONNECT:
		q->session_id = 0xdeadbeefcafef00dull;
		memcpy(q->passwd, "0123456789abcdef", COORD_PASSWD_LEN);
		q->timeout_ms = 30000;
		q->last_zxid = 0x100000042ull;
		break;
	case COORD_OP_CREATE:
		q->path = slice_str("/app/config");
		q->data = slice_of("x\0y", 3);
		q->flags = COORD_CREATE_EPHEMERAL | COORD_CREATE_SEQUENTIAL;
		q->policy = COORD_POLICY_EPHEMERAL;
		break;
	case COORD_OP_DELETE:
	case COORD_OP_CHECK:
	case COORD_OP_HISTORY:
		q->path = slice_str("/app/old");
		q->version = 5;
		break;
	case COORD_OP_EXISTS:
	case COORD_OP_GET:
	case COORD_OP_ADDWATCH:
	case COORD_OP_REMOVEWATCH:
		q->path = slice_str("/app");
		q->watch = COORD_WATCH_PERSISTENT_RECURSIVE;
		break;
	case COORD_OP_SET:
	case COORD_OP_APPEND:
		q->path = slice_str("/app/log");
		q->data = slice_str("line\n");
		q->version = -1;
		break;
	case COORD_OP_LIST:
		q->path = slice_str("/app");
		q->watch = COORD_WATCH_ONESHOT;
		q->after = slice_str("member0000000007");
		q->max = COORD_MAX_LIST;
		break;
	case COORD_OP_RENAME:
		q->path = slice_str("/app/f.tmp");
		q->path2 = slice_str("/app/f");
		q->version = 3;
		q->flags = COORD_RENAME_NOREPLACE;
		break;
	case COORD_OP_MULTI:
		sample_subops_init();
		q->nops = 4;
		q->ops = sample_subops;
		break;
	case COORD_OP_SYNC:
		q->path = slice_str("/");
		break;
	case COORD_OP_SETPOLICY:
		q->path = slice_str("/locks");
		q->policy = COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL;
		break;
	case COORD_OP_ADMIN:
		q->word = slice_str("mntr");
		break;
	case COORD_OP_SETACL:
		q->path = slice_str("/app");
		q->acl = slice_str("world:anyone:r,key:web:rwcd");
		q->version = 2;
		break;
	case COORD_OP_GETACL:
		q->path = slice_str("/app");
		break;
	case COORD_OP_SETWATCHES:
		q->last_zxid = 77;
		q->data_watches = slice_of(watches, sizeof(watches) - 1);
		q->child_watches = slice_of(watches, 3);
		q->persistent = slice_str("");
		q->recursive = slice_of(watches + 3, 5);
		break;
	}
}

static struct coord_subresult sample_results[4];

/* A successful reply to `op` with every field its body carries set. */
static void sample_reply(int op, struct coord_reply *r)
{
	static const char names[] = "a\0bb\0ccc\0";
	memset(r, 0, sizeof(*r));
	r->kind = COORD_MSG_REPLY;
	r->op = (uint8_t)op;
	r->xid = 1000 + (uint64_t)op;
	r->zxid = 0x300000001ull;
	r->msg = slice_str(op % 2 ? "" : "detail");
	r->stat = sample_stat;
	switch (op) {
	case COORD_OP_CONNECT:
		r->session_id = 42;
		memcpy(r->passwd, "fedcba9876543210", COORD_PASSWD_LEN);
		r->timeout_ms = 10000;
		r->server_id = 3;
		r->max_data = 1u << 20;
		r->watches_kept = 1;
		r->principal = slice_str("web");
		break;
	case COORD_OP_CREATE:
		r->path = slice_str("/q/job0000000042");
		break;
	case COORD_OP_GET:
		r->data = slice_of("bin\0ary", 7);
		break;
	case COORD_OP_LIST:
		r->count = 3;
		r->names = slice_of(names, sizeof(names) - 1);
		r->more = 1;
		break;
	case COORD_OP_SYNC:
		r->path = slice_str("/app");
		break;
	case COORD_OP_ADMIN:
		r->data = slice_str("imok\n");
		break;
	case COORD_OP_GETACL:
		r->acl = slice_str("world:anyone:r,key:web:rwcda");
		r->perms = 0x1f;
		break;
	case COORD_OP_HISTORY: {
		static struct buf recs;
		buf_free(&recs);
		struct coord_hist h1 = {4, 0x40, 1700000000000, 5}, h2 = {5, 0x51, 1700000000500, 7};
		coord_hist_put(&recs, &h1);
		coord_hist_put(&recs, &h2);
		r->nhist = 2;
		r->hist = slice_of(recs.p, recs.len);
		r->data = slice_str("version");
		break;
	}
	case COORD_OP_MULTI:
		memset(sample_results, 0, sizeof(sample_results));
		sample_results[0] = (struct coord_subresult){.op = COORD_OP_CREATE,
			.path = slice_str("/m/a0000000001"), .stat = sample_stat};
		sample_results[1] = (struct coord_subresult){.op = COORD_OP_SET, .stat = sample_stat};
		sample_results[1].stat.version = 5;
		sample_results[2] = (struct coord_subresult){.op = COORD_OP_DELETE};
		sample_results[3] = (struct coord_subresult){.op = COORD_OP_CHECK};
		r->fail_index = -1;
		r->nops = 4;
		r->ops = sample_results;
		break;
	}
	/* ops without a stat in their reply must decode to a zero stat */
	switch (op) {
	case COORD_OP_CREATE: case COORD_OP_EXISTS: case COORD_OP_SET: case COORD_OP_APPEND:
	case COORD_OP_RENAME: case COORD_OP_GET: case COORD_OP_LIST: case COORD_OP_SETACL: case COORD_OP_GETACL:
		break;
	default:
		memset(&r->stat, 0, sizeof(r->stat));
	}
}

/* The multi reply of a failed transaction: op 1 failed, the others were not applied. */
static void sample_failed_multi(struct coord_reply *r)
{
	memset(r, 0, sizeof(*r));
	memset(sample_results, 0, sizeof(sample_results));
	r->kind = COORD_MSG_REPLY;
	r->op = COORD_OP_MULTI;
	r->err = COORD_EBADVERSION;
	r->xid = 9;
	r->zxid = 8;
	r->msg = slice_str("multi op 1 (set /m/b): version mismatch");
	r->fail_index = 1;
	r->nops = 3;
	r->ops = sample_results;
	sample_results[0] = (struct coord_subresult){.op = COORD_OP_CREATE, .err = COORD_OK,
		.path = slice_str("/m/a"), .stat = sample_stat};
	sample_results[1] = (struct coord_subresult){.op = COORD_OP_SET, .err = COORD_EBADVERSION};
	sample_results[2] = (struct coord_subresult){.op = COORD_OP_DELETE, .err = COORD_ECLOSING};
}

static void sample_event(struct coord_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = COORD_MSG_EVENT;
	r->zxid = 0x500000003ull;
	r->ev_type = COORD_EV_CHILDREN;
	r->ev_path = slice_str("/app/members");
}

/* ---- comparisons ---- */

static int slice_same(struct slice a, struct slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static int stat_same(const struct coord_stat *a, const struct coord_stat *b)
{
	return a->czxid == b->czxid && a->mzxid == b->mzxid && a->pzxid == b->pzxid &&
	       a->ctime == b->ctime && a->mtime == b->mtime && a->version == b->version &&
	       a->cversion == b->cversion && a->aversion == b->aversion &&
	       a->ephemeral_owner == b->ephemeral_owner && a->data_length == b->data_length &&
	       a->num_children == b->num_children && a->ino == b->ino && a->kind == b->kind &&
	       a->policy == b->policy;
}

static void check_req_same(const struct coord_req *a, const struct coord_req *b)
{
	CHECK_EQ(a->op, b->op);
	CHECK_EQ(a->xid, b->xid);
	CHECK_EQ(a->ack, b->ack);
	CHECK(slice_same(a->path, b->path));
	CHECK(slice_same(a->path2, b->path2));
	CHECK(slice_same(a->data, b->data));
	CHECK(slice_same(a->after, b->after));
	CHECK(slice_same(a->word, b->word));
	CHECK_EQ(a->version, b->version);
	CHECK_EQ(a->flags, b->flags);
	CHECK_EQ(a->policy, b->policy);
	CHECK_EQ(a->watch, b->watch);
	CHECK_EQ(a->max, b->max);
	CHECK_EQ(a->session_id, b->session_id);
	CHECK(memcmp(a->passwd, b->passwd, COORD_PASSWD_LEN) == 0);
	CHECK_EQ(a->timeout_ms, b->timeout_ms);
	CHECK_EQ(a->last_zxid, b->last_zxid);
	CHECK(slice_same(a->data_watches, b->data_watches));
	CHECK(slice_same(a->child_watches, b->child_watches));
	CHECK(slice_same(a->persistent, b->persistent));
	CHECK(slice_same(a->recursive, b->recursive));
	CHECK(slice_same(a->acl, b->acl));
	CHECK_EQ(a->nops, b->nops);
	for (uint32_t i = 0; i < a->nops; i++) {
		const struct coord_subop *x = &a->ops[i], *y = &b->ops[i];
		CHECK_EQ(x->op, y->op);
		CHECK(slice_same(x->path, y->path));
		CHECK(slice_same(x->data, y->data));
		CHECK_EQ(x->version, y->version);
		CHECK_EQ(x->flags, y->flags);
		CHECK_EQ(x->policy, y->policy);
	}
}

static void check_reply_same(const struct coord_reply *a, const struct coord_reply *b)
{
	CHECK_EQ(a->kind, b->kind);
	CHECK_EQ(a->op, b->op);
	CHECK_EQ(a->err, b->err);
	CHECK_EQ(a->xid, b->xid);
	CHECK_EQ(a->zxid, b->zxid);
	CHECK(slice_same(a->msg, b->msg));
	CHECK(stat_same(&a->stat, &b->stat));
	CHECK(slice_same(a->data, b->data));
	CHECK(slice_same(a->path, b->path));
	CHECK(slice_same(a->names, b->names));
	CHECK_EQ(a->count, b->count);
	CHECK_EQ(a->more, b->more);
	CHECK_EQ(a->session_id, b->session_id);
	CHECK(memcmp(a->passwd, b->passwd, COORD_PASSWD_LEN) == 0);
	CHECK_EQ(a->timeout_ms, b->timeout_ms);
	CHECK_EQ(a->server_id, b->server_id);
	CHECK_EQ(a->max_data, b->max_data);
	CHECK_EQ(a->watches_kept, b->watches_kept);
	CHECK(slice_same(a->principal, b->principal));
	CHECK(slice_same(a->acl, b->acl));
	CHECK_EQ(a->perms, b->perms);
	CHECK_EQ(a->fail_index, b->fail_index);
	CHECK_EQ(a->nops, b->nops);
	for (uint32_t i = 0; i < a->nops; i++) {
		const struct coord_subresult *x = &a->ops[i], *y = &b->ops[i];
		CHECK_EQ(x->op, y->op);
		CHECK_EQ(x->err, y->err);
		CHECK(slice_same(x->path, y->path));
		CHECK(stat_same(&x->stat, &y->stat));
	}
	CHECK_EQ(a->ev_type, b->ev_type);
	CHECK(slice_same(a->ev_path, b->ev_path));
}

static int req_is_clear(const struct coord_req *q)
{
	static const struct coord_req zero;
	return memcmp(q, &zero, sizeof(zero)) == 0;
}

static int reply_is_clear(const struct coord_reply *r)
{
	static const struct coord_reply zero;
	return memcmp(r, &zero, sizeof(zero)) == 0;
}

/* ---- helpers that encode a sample and decode it back ---- */

static void encode_req(struct buf *b, const struct coord_req *q)
{
	buf_init(b);
	CHECK_EQ(coord_req_encode(b, q), COORD_OK);
}

static void encode_reply(struct buf *b, const struct coord_reply *r)
{
	buf_init(b);
	CHECK_EQ(coord_reply_encode(b, r), COORD_OK);
}

/* Decoding must fail with EPROTO, leave the struct cleared and say why; returns the reason. */
static const char *req_refused(const void *p, size_t len)
{
	static char why[256];
	struct coord_req q;
	memset(&q, 0xa5, sizeof(q));
	why[0] = '\0';
	CHECK_EQ(coord_req_decode(p, len, &q, why, sizeof(why)), COORD_EPROTO);
	CHECK(req_is_clear(&q));
	CHECK(why[0] != '\0');
	return why;
}

static const char *reply_refused(const void *p, size_t len, uint8_t op)
{
	static char why[256];
	struct coord_reply r;
	memset(&r, 0xa5, sizeof(r));
	why[0] = '\0';
	CHECK_EQ(coord_reply_decode(p, len, op, &r, why, sizeof(why)), COORD_EPROTO);
	CHECK(reply_is_clear(&r));
	CHECK(why[0] != '\0');
	return why;
}

#define CHECK_HAS(hay, needle)                                                                \
	do {                                                                                  \
		const char *_h = (hay);                                                       \
		if (!strstr(_h, (needle))) {                                                  \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,  \
				__LINE__, _h, (needle));                                      \
			exit(1);                                                              \
		}                                                                             \
	} while (0)

/* ---- round trips ---- */

static void test_every_request_op_round_trips(void)
{
	for (int op = 1; op < COORD_OP_MAX; op++) {
		struct coord_req q, back;
		struct buf b;
		char why[128];
		sample_req(op, &q);
		encode_req(&b, &q);
		CHECK_EQ(b.p[0], COORD_WIRE_VERSION);
		CHECK_EQ(b.p[1], op);
		CHECK_EQ(coord_req_decode(b.p, b.len, &back, why, sizeof(why)), COORD_OK);
		check_req_same(&q, &back);
		coord_req_clear(&back);
		CHECK(req_is_clear(&back));
		buf_free(&b);
	}
}

static void test_every_reply_op_round_trips(void)
{
	for (int op = 1; op < COORD_OP_MAX; op++) {
		struct coord_reply r, back;
		struct buf b;
		char why[128];
		sample_reply(op, &r);
		encode_reply(&b, &r);
		CHECK_EQ(coord_reply_decode(b.p, b.len, (uint8_t)op, &back, why, sizeof(why)), COORD_OK);
		check_reply_same(&r, &back);
		coord_reply_clear(&back);
		/* op 0 takes the header's op */
		CHECK_EQ(coord_reply_decode(b.p, b.len, 0, &back, why, sizeof(why)), COORD_OK);
		check_reply_same(&r, &back);
		coord_reply_clear(&back);
		buf_free(&b);
	}
}

static void test_error_reply_has_no_body(void)
{
	for (int op = 1; op < COORD_OP_MAX; op++) {
		if (op == COORD_OP_MULTI)
			continue;
		struct coord_reply r, back;
		struct buf b;
		memset(&r, 0, sizeof(r));
		r.kind = COORD_MSG_REPLY;
		r.op = (uint8_t)op;
		r.err = COORD_ENONODE;
		r.xid = 5;
		r.msg = slice_str("no node /x");
		encode_reply(&b, &r);
		CHECK_EQ(b.len, 24 + 4 + 10); /* header, msg */
		CHECK_EQ(coord_reply_decode(b.p, b.len, (uint8_t)op, &back, NULL, 0), COORD_OK);
		check_reply_same(&r, &back);
		CHECK_EQ(back.err, COORD_ENONODE);
		CHECK(slice_eq(back.msg, "no node /x"));
		buf_free(&b);
	}
}

static void test_failed_multi_reply_carries_every_result(void)
{
	struct coord_reply r, back;
	struct buf b;
	sample_failed_multi(&r);
	encode_reply(&b, &r);
	CHECK_EQ(coord_reply_decode(b.p, b.len, COORD_OP_MULTI, &back, NULL, 0), COORD_OK);
	check_reply_same(&r, &back);
	CHECK_EQ(back.err, COORD_EBADVERSION);
	CHECK_EQ(back.fail_index, 1);
	CHECK_EQ(back.ops[0].err, COORD_OK);
	CHECK(slice_eq(back.ops[0].path, "/m/a"));
	CHECK_EQ(back.ops[1].err, COORD_EBADVERSION);
	coord_reply_clear(&back);
	buf_free(&b);
}

static void test_empty_multi_round_trips(void)
{
	struct coord_req q, back;
	struct buf b;
	memset(&q, 0, sizeof(q));
	q.op = COORD_OP_MULTI;
	q.xid = 3;
	encode_req(&b, &q);
	CHECK_EQ(b.len, 24);
	CHECK_EQ(coord_req_decode(b.p, b.len, &back, NULL, 0), COORD_OK);
	CHECK_EQ(back.nops, 0);
	CHECK(back.ops == NULL);
	buf_free(&b);
}

static void test_event_round_trips(void)
{
	struct coord_reply r, back;
	struct buf b;
	uint8_t kind = 0, op = 9;
	uint64_t xid = 9;
	sample_event(&r);
	r.op = COORD_OP_GET; /* ignored: an event is sent with op, err and xid 0 */
	r.err = COORD_EIO;
	r.xid = 77;
	encode_reply(&b, &r);
	CHECK_EQ(coord_reply_decode(b.p, b.len, 0, &back, NULL, 0), COORD_OK);
	sample_event(&r);
	check_reply_same(&r, &back);
	CHECK_EQ(coord_reply_peek(b.p, b.len, &kind, &xid, &op), COORD_OK);
	CHECK_EQ(kind, COORD_MSG_EVENT);
	CHECK_EQ(xid, 0);
	CHECK_EQ(op, 0);
	buf_free(&b);
}

static void test_stat_is_78_bytes_and_round_trips(void)
{
	struct buf b;
	struct rd r;
	struct coord_stat st;
	buf_init(&b);
	coord_stat_put(&b, &sample_stat);
	CHECK_EQ(b.len, COORD_STAT_WIRE_SIZE);
	/* czxid first, little-endian */
	CHECK_EQ(b.p[0], 0x08);
	CHECK_EQ(b.p[7], 0x01);
	/* kind and policy last */
	CHECK_EQ(b.p[76], COORD_KIND_DIR);
	CHECK_EQ(b.p[77], COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL);
	rd_init(&r, b.p, b.len);
	coord_stat_get(&r, &st);
	CHECK(!r.bad);
	CHECK_EQ(rd_left(&r), 0);
	CHECK(stat_same(&st, &sample_stat));
	/* a short stat marks the reader bad */
	rd_init(&r, b.p, b.len - 1);
	coord_stat_get(&r, &st);
	CHECK(r.bad);
	buf_free(&b);
}

/* The exact bytes of a delete request, as WIRE.md draws them. */
static void test_request_bytes_match_the_document(void)
{
	static const uint8_t want[] = {
		1, COORD_OP_DELETE, 0, 0,                 /* version, op, flags */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* xid */
		0x02, 0, 0, 0, 0, 0, 0, 0,                /* ack */
		2, 0, 0, 0, '/', 'a',                     /* path */
		0xff, 0xff, 0xff, 0xff,                   /* version -1 */
	};
	struct coord_req q;
	struct buf b;
	memset(&q, 0, sizeof(q));
	q.op = COORD_OP_DELETE;
	q.xid = 0x0102030405060708ull;
	q.ack = 2;
	q.path = slice_str("/a");
	q.version = -1;
	encode_req(&b, &q);
	CHECK_EQ(b.len, sizeof(want));
	CHECK(memcmp(b.p, want, sizeof(want)) == 0);
	buf_free(&b);
}

static void test_reply_bytes_match_the_document(void)
{
	static const uint8_t want[] = {
		1, COORD_MSG_REPLY, COORD_OP_SYNC, 0,     /* version, kind, op, reserved */
		COORD_OK, 0, 0, 0,                        /* err */
		7, 0, 0, 0, 0, 0, 0, 0,                   /* xid */
		0x10, 0, 0, 0, 1, 0, 0, 0,                /* zxid */
		0, 0, 0, 0,                               /* msg */
		2, 0, 0, 0, '/', 'x',                     /* path */
	};
	struct coord_reply r;
	struct buf b;
	memset(&r, 0, sizeof(r));
	r.kind = COORD_MSG_REPLY;
	r.op = COORD_OP_SYNC;
	r.xid = 7;
	r.zxid = 0x100000010ull;
	r.path = slice_str("/x");
	encode_reply(&b, &r);
	CHECK_EQ(b.len, sizeof(want));
	CHECK(memcmp(b.p, want, sizeof(want)) == 0);
	buf_free(&b);
}

/* ---- the layout written out by hand from the specification, op by op ---- */

static void put_slice(struct buf *b, struct slice s) { buf_bytes(b, s.p, s.len); }

static void spec_req_body(struct buf *b, int op, const struct coord_req *q)
{
	switch (op) {
	case COORD_OP_CONNECT:
		buf_u64(b, q->session_id);
		buf_put(b, q->passwd, COORD_PASSWD_LEN);
		buf_u32(b, q->timeout_ms);
		buf_u64(b, q->last_zxid);
		break;
	case COORD_OP_CREATE:
		put_slice(b, q->path), put_slice(b, q->data), buf_u32(b, q->flags), buf_u8(b, q->policy);
		if (q->flags & COORD_CREATE_ACL)
			put_slice(b, q->acl);
		break;
	case COORD_OP_DELETE:
	case COORD_OP_CHECK:
	case COORD_OP_HISTORY:
		put_slice(b, q->path), buf_u32(b, (uint32_t)q->version);
		break;
	case COORD_OP_EXISTS:
	case COORD_OP_GET:
	case COORD_OP_ADDWATCH:
	case COORD_OP_REMOVEWATCH:
		put_slice(b, q->path), buf_u8(b, q->watch);
		break;
	case COORD_OP_SET:
	case COORD_OP_APPEND:
		put_slice(b, q->path), put_slice(b, q->data), buf_u32(b, (uint32_t)q->version);
		break;
	case COORD_OP_LIST:
		put_slice(b, q->path), buf_u8(b, q->watch), put_slice(b, q->after), buf_u32(b, q->max);
		break;
	case COORD_OP_RENAME:
		put_slice(b, q->path), put_slice(b, q->path2);
		buf_u32(b, (uint32_t)q->version), buf_u32(b, q->flags);
		break;
	case COORD_OP_MULTI:
		buf_u32(b, q->nops);
		for (uint32_t i = 0; i < q->nops; i++) {
			const struct coord_subop *o = &q->ops[i];
			buf_u8(b, o->op);
			put_slice(b, o->path);
			if (o->op == COORD_OP_CREATE || o->op == COORD_OP_SET)
				put_slice(b, o->data);
			if (o->op == COORD_OP_CREATE)
				buf_u32(b, o->flags), buf_u8(b, o->policy);
			if (o->op == COORD_OP_CREATE && (o->flags & COORD_CREATE_ACL))
				put_slice(b, o->acl);
			else if (o->op != COORD_OP_CREATE)
				buf_u32(b, (uint32_t)o->version);
		}
		break;
	case COORD_OP_SYNC:
		put_slice(b, q->path);
		break;
	case COORD_OP_SETPOLICY:
		put_slice(b, q->path), buf_u8(b, q->policy);
		break;
	case COORD_OP_ADMIN:
		put_slice(b, q->word);
		break;
	case COORD_OP_SETACL:
		put_slice(b, q->path), put_slice(b, q->acl), buf_u32(b, (uint32_t)q->version);
		break;
	case COORD_OP_GETACL:
		put_slice(b, q->path);
		break;
	case COORD_OP_SETWATCHES:
		buf_u64(b, q->last_zxid);
		put_slice(b, q->data_watches), put_slice(b, q->child_watches);
		put_slice(b, q->persistent), put_slice(b, q->recursive);
		break;
	}
}

static void spec_reply_body(struct buf *b, int op, const struct coord_reply *r)
{
	switch (op) {
	case COORD_OP_CONNECT:
		buf_u64(b, r->session_id);
		buf_put(b, r->passwd, COORD_PASSWD_LEN);
		buf_u32(b, r->timeout_ms), buf_u32(b, r->server_id), buf_u32(b, r->max_data);
		buf_u8(b, r->watches_kept);
		if (r->principal.len)
			put_slice(b, r->principal);
		break;
	case COORD_OP_CREATE:
		put_slice(b, r->path), coord_stat_put(b, &r->stat);
		break;
	case COORD_OP_EXISTS:
	case COORD_OP_SET:
	case COORD_OP_APPEND:
	case COORD_OP_RENAME:
	case COORD_OP_SETACL:
		coord_stat_put(b, &r->stat);
		break;
	case COORD_OP_GETACL:
		coord_stat_put(b, &r->stat), put_slice(b, r->acl), buf_u8(b, r->perms);
		break;
	case COORD_OP_GET:
		coord_stat_put(b, &r->stat), put_slice(b, r->data);
		break;
	case COORD_OP_LIST:
		coord_stat_put(b, &r->stat), buf_u32(b, r->count), put_slice(b, r->names);
		buf_u8(b, r->more);
		break;
	case COORD_OP_HISTORY:
		coord_stat_put(b, &r->stat), buf_u32(b, r->nhist), put_slice(b, r->hist), put_slice(b, r->data);
		break;
	case COORD_OP_SYNC:
		put_slice(b, r->path);
		break;
	case COORD_OP_ADMIN:
		put_slice(b, r->data);
		break;
	case COORD_OP_MULTI:
		buf_u32(b, (uint32_t)r->fail_index), buf_u32(b, r->nops);
		for (uint32_t i = 0; i < r->nops; i++) {
			const struct coord_subresult *o = &r->ops[i];
			buf_u8(b, o->op), buf_u32(b, (uint32_t)o->err);
			if (o->err == 0 && o->op == COORD_OP_CREATE)
				put_slice(b, o->path);
			if (o->err == 0 && (o->op == COORD_OP_CREATE || o->op == COORD_OP_SET))
				coord_stat_put(b, &o->stat);
		}
		break;
	}
}

static void test_every_op_has_the_specified_layout(void)
{
	for (int op = 1; op < COORD_OP_MAX; op++) {
		struct coord_req q;
		struct coord_reply r;
		struct buf got, want;
		sample_req(op, &q);
		encode_req(&got, &q);
		buf_init(&want);
		buf_u8(&want, 1), buf_u8(&want, (uint8_t)op), buf_u16(&want, 0);
		buf_u64(&want, q.xid), buf_u64(&want, q.ack);
		spec_req_body(&want, op, &q);
		CHECK_EQ(got.len, want.len);
		CHECK(memcmp(got.p, want.p, got.len) == 0);
		buf_free(&got);
		buf_free(&want);

		sample_reply(op, &r);
		encode_reply(&got, &r);
		buf_init(&want);
		buf_u8(&want, 1), buf_u8(&want, COORD_MSG_REPLY), buf_u8(&want, (uint8_t)op);
		buf_u8(&want, 0), buf_u32(&want, 0), buf_u64(&want, r.xid), buf_u64(&want, r.zxid);
		put_slice(&want, r.msg);
		spec_reply_body(&want, op, &r);
		CHECK_EQ(got.len, want.len);
		CHECK(memcmp(got.p, want.p, got.len) == 0);
		buf_free(&got);
		buf_free(&want);
	}
	struct coord_reply r;
	struct buf got, want;
	sample_failed_multi(&r);
	encode_reply(&got, &r);
	buf_init(&want);
	buf_u8(&want, 1), buf_u8(&want, COORD_MSG_REPLY), buf_u8(&want, COORD_OP_MULTI);
	buf_u8(&want, 0), buf_u32(&want, (uint32_t)r.err), buf_u64(&want, r.xid), buf_u64(&want, r.zxid);
	put_slice(&want, r.msg);
	spec_reply_body(&want, COORD_OP_MULTI, &r);
	CHECK_EQ(got.len, want.len);
	CHECK(memcmp(got.p, want.p, got.len) == 0);
	buf_free(&got);
	buf_free(&want);
	/* event: version, kind, op 0, reserved, err 0, xid 0, zxid, msg, ev_type, path */
	sample_event(&r);
	encode_reply(&got, &r);
	buf_init(&want);
	buf_u8(&want, 1), buf_u8(&want, COORD_MSG_EVENT), buf_u8(&want, 0), buf_u8(&want, 0);
	buf_u32(&want, 0), buf_u64(&want, 0), buf_u64(&want, r.zxid), buf_u32(&want, 0);
	buf_u8(&want, r.ev_type), put_slice(&want, r.ev_path);
	CHECK_EQ(got.len, want.len);
	CHECK(memcmp(got.p, want.p, got.len) == 0);
	buf_free(&got);
	buf_free(&want);
}

static void test_request_flags_are_ignored(void)
{
	struct coord_req q, back;
	struct buf b;
	sample_req(COORD_OP_GET, &q);
	encode_req(&b, &q);
	b.p[2] = 0xff;
	b.p[3] = 0x01;
	CHECK_EQ(coord_req_decode(b.p, b.len, &back, NULL, 0), COORD_OK);
	check_req_same(&q, &back);
	buf_free(&b);
}

/* ---- malformed frames ---- */

static void test_truncated_requests_are_refused_at_every_length(void)
{
	for (int op = 1; op < COORD_OP_MAX; op++) {
		struct coord_req q;
		struct buf b;
		sample_req(op, &q);
		encode_req(&b, &q);
		for (size_t n = 0; n < b.len; n++) {
			/* a copy of exactly n bytes, so ASan sees any read past the end */
			uint8_t *cut = malloc(n ? n : 1);
			CHECK(cut != NULL);
			memcpy(cut, b.p, n);
			req_refused(cut, n);
			free(cut);
		}
		buf_free(&b);
	}
}

static void check_reply_truncations(const struct coord_reply *r, uint8_t op)
{
	struct buf b;
	encode_reply(&b, r);
	/* The connect reply's principal is optional: cut exactly before it, the reply is whole. */
	size_t optional_at = r->kind == COORD_MSG_REPLY && r->op == COORD_OP_CONNECT && r->principal.len
				     ? b.len - 4 - r->principal.len : (size_t)-1;
	for (size_t n = 0; n < b.len; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		CHECK(cut != NULL);
		memcpy(cut, b.p, n);
		if (n == optional_at) {
			struct coord_reply back;
			CHECK_EQ(coord_reply_decode(cut, n, op, &back, NULL, 0), COORD_OK);
			CHECK_EQ(back.principal.len, 0);
			CHECK_EQ(back.session_id, r->session_id);
			coord_reply_clear(&back);
		} else {
			reply_refused(cut, n, op);
		}
		free(cut);
	}
	buf_free(&b);
}

static void test_truncated_replies_are_refused_at_every_length(void)
{
	struct coord_reply r;
	for (int op = 1; op < COORD_OP_MAX; op++) {
		sample_reply(op, &r);
		check_reply_truncations(&r, (uint8_t)op);
	}
	sample_failed_multi(&r);
	check_reply_truncations(&r, COORD_OP_MULTI);
	sample_event(&r);
	check_reply_truncations(&r, 0);
}

static void test_short_frames_say_what_the_header_needs(void)
{
	uint8_t zeros[24] = {1};
	CHECK_STR(req_refused(zeros, 12), "frame too short: 12 bytes, header needs 20");
	CHECK_STR(reply_refused(zeros, 23, 0), "frame too short: 23 bytes, header needs 24");
	CHECK_STR(req_refused(NULL, 0), "frame too short: 0 bytes, header needs 20");
}

static void test_trailing_bytes_are_refused(void)
{
	for (int op = 1; op < COORD_OP_MAX; op++) {
		struct coord_req q;
		struct coord_reply r;
		struct buf b;
		char want[64];
		snprintf(want, sizeof(want), "3 trailing bytes after %s body", coord_op_name(op));
		sample_req(op, &q);
		encode_req(&b, &q);
		buf_put(&b, "xyz", 3);
		CHECK_STR(req_refused(b.p, b.len), want);
		buf_free(&b);
		sample_reply(op, &r);
		encode_reply(&b, &r);
		buf_put(&b, "xyz", 3);
		CHECK_STR(reply_refused(b.p, b.len, (uint8_t)op), want);
		buf_free(&b);
	}
	struct coord_reply ev;
	struct buf b;
	sample_event(&ev);
	encode_reply(&b, &ev);
	buf_u8(&b, 0);
	CHECK_STR(reply_refused(b.p, b.len, 0), "1 trailing bytes after event body");
	buf_free(&b);
}

static void test_bad_version_and_unknown_ops_are_refused(void)
{
	struct coord_req q;
	struct coord_reply r;
	struct buf b;
	sample_req(COORD_OP_PING, &q);
	encode_req(&b, &q);
	b.p[0] = 2;
	CHECK_STR(req_refused(b.p, b.len), "unsupported wire version 2 (this side speaks 1)");
	b.p[0] = 1;
	b.p[1] = 77;
	CHECK_STR(req_refused(b.p, b.len), "unknown op 77");
	b.p[1] = 0;
	CHECK_STR(req_refused(b.p, b.len), "unknown op 0");
	b.p[1] = COORD_OP_MAX;
	req_refused(b.p, b.len);
	buf_free(&b);

	sample_reply(COORD_OP_PING, &r);
	encode_reply(&b, &r);
	b.p[0] = 0;
	CHECK_STR(reply_refused(b.p, b.len, 0), "unsupported wire version 0 (this side speaks 1)");
	b.p[0] = 1;
	b.p[1] = 3;
	CHECK_STR(reply_refused(b.p, b.len, 0), "unknown message kind 3");
	b.p[1] = COORD_MSG_REPLY;
	b.p[2] = 200;
	CHECK_STR(reply_refused(b.p, b.len, 0), "unknown op 200");
	buf_free(&b);
}

static void test_reply_for_another_op_is_refused(void)
{
	struct coord_reply r;
	struct buf b;
	sample_reply(COORD_OP_EXISTS, &r);
	encode_reply(&b, &r);
	CHECK_HAS(reply_refused(b.p, b.len, COORD_OP_GET), "but the request was get");
	buf_free(&b);
}

static void test_event_with_nonzero_header_fields_is_refused(void)
{
	struct coord_reply r;
	struct buf b;
	sample_event(&r);
	encode_reply(&b, &r);
	b.p[2] = COORD_OP_GET;
	CHECK_HAS(reply_refused(b.p, b.len, 0), "event: header has op 7");
	b.p[2] = 0;
	b.p[8] = 1; /* xid */
	CHECK_HAS(reply_refused(b.p, b.len, 0), "xid 1 (all must be 0)");
	buf_free(&b);
}

/* A frame with the header of `op` and a hand-written body. */
static void req_frame(struct buf *b, int op)
{
	buf_init(b);
	buf_u8(b, 1);
	buf_u8(b, (uint8_t)op);
	buf_u16(b, 0);
	buf_u64(b, 1);
	buf_u64(b, 0);
}

static void test_oversize_lengths_are_refused_before_reading(void)
{
	struct buf b;
	/* path: only the length is there, the limit is checked before the bytes are looked for */
	req_frame(&b, COORD_OP_CREATE);
	buf_u32(&b, 5000);
	CHECK_STR(req_refused(b.p, b.len), "create: path length 5000 exceeds 4096");
	buf_free(&b);

	req_frame(&b, COORD_OP_SET);
	buf_str(&b, "/a");
	buf_u32(&b, COORD_MAX_DATA + 1);
	CHECK_STR(req_refused(b.p, b.len), "set: data length 67108865 exceeds 67108864");
	buf_free(&b);

	req_frame(&b, COORD_OP_RENAME);
	buf_str(&b, "/a");
	buf_u32(&b, COORD_MAX_PATH + 1);
	CHECK_STR(req_refused(b.p, b.len), "rename: new path length 4097 exceeds 4096");
	buf_free(&b);

	req_frame(&b, COORD_OP_LIST);
	buf_str(&b, "/a");
	buf_u8(&b, 0);
	buf_u32(&b, COORD_MAX_PATH + 1);
	CHECK_STR(req_refused(b.p, b.len), "list: after length 4097 exceeds 4096");
	buf_free(&b);

	req_frame(&b, COORD_OP_LIST);
	buf_str(&b, "/a");
	buf_u8(&b, 0);
	buf_str(&b, "");
	buf_u32(&b, COORD_MAX_LIST + 1);
	CHECK_STR(req_refused(b.p, b.len), "list: max 10001 exceeds 10000");
	buf_free(&b);

	req_frame(&b, COORD_OP_ADMIN);
	buf_u32(&b, 65);
	CHECK_STR(req_refused(b.p, b.len), "admin: word length 65 exceeds 64");
	buf_free(&b);

	req_frame(&b, COORD_OP_SETWATCHES);
	buf_u64(&b, 1);
	buf_str(&b, "");
	buf_u32(&b, (16u << 20) + 1);
	CHECK_STR(req_refused(b.p, b.len), "setwatches: child watches length 16777217 exceeds 16777216");
	buf_free(&b);

	req_frame(&b, COORD_OP_MULTI);
	buf_u32(&b, COORD_MAX_MULTI + 1);
	CHECK_STR(req_refused(b.p, b.len), "multi: 1025 ops exceed the limit of 1024");
	buf_free(&b);
}

static void test_limits_themselves_are_accepted(void)
{
	static char path[COORD_MAX_PATH];
	struct coord_req q, back;
	struct buf b;
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	sample_req(COORD_OP_RENAME, &q);
	q.path = slice_of(path, COORD_MAX_PATH);
	q.path2 = slice_of(path, COORD_MAX_PATH);
	encode_req(&b, &q);
	CHECK_EQ(coord_req_decode(b.p, b.len, &back, NULL, 0), COORD_OK);
	CHECK_EQ(back.path.len, COORD_MAX_PATH);
	buf_free(&b);
}

static void test_length_beyond_the_frame_is_refused(void)
{
	struct buf b;
	req_frame(&b, COORD_OP_SYNC);
	buf_u32(&b, 10);
	buf_put(&b, "/abc", 4);
	CHECK_STR(req_refused(b.p, b.len), "sync: path length 10 but only 4 bytes left");
	buf_free(&b);
}

static void test_multi_refuses_other_subops(void)
{
	static const int bad[] = {COORD_OP_PING, COORD_OP_MULTI, COORD_OP_GET, 0, 99};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf b;
		req_frame(&b, COORD_OP_MULTI);
		buf_u32(&b, 2);
		buf_u8(&b, COORD_OP_DELETE);
		buf_str(&b, "/a");
		buf_u32(&b, 0);
		buf_u8(&b, (uint8_t)bad[i]);
		buf_str(&b, "/b");
		buf_u32(&b, 0);
		CHECK_HAS(req_refused(b.p, b.len), "multi op 1: sub-op");
		buf_free(&b);
	}
}

static void test_multi_subop_faults_name_the_subop(void)
{
	struct buf b;
	req_frame(&b, COORD_OP_MULTI);
	buf_u32(&b, 2);
	buf_u8(&b, COORD_OP_CHECK);
	buf_str(&b, "/a");
	buf_u32(&b, 0);
	buf_u8(&b, COORD_OP_CREATE);
	buf_u32(&b, 5000);
	buf_put(&b, "padding!", 8);
	CHECK_STR(req_refused(b.p, b.len), "multi op 1 (create): path length 5000 exceeds 4096");
	buf_free(&b);
}

static void test_multi_count_larger_than_the_frame_is_refused(void)
{
	struct buf b;
	req_frame(&b, COORD_OP_MULTI);
	buf_u32(&b, 1000);
	buf_u8(&b, COORD_OP_DELETE);
	buf_str(&b, "/a");
	buf_u32(&b, 0);
	CHECK_HAS(req_refused(b.p, b.len), "multi: 1000 ops cannot fit");
	buf_free(&b);
}

static void test_multi_reply_refuses_other_subops(void)
{
	struct coord_reply r;
	struct buf b;
	sample_failed_multi(&r);
	sample_results[2].op = COORD_OP_GET;
	encode_reply(&b, &r);
	CHECK_HAS(reply_refused(b.p, b.len, COORD_OP_MULTI), "multi result 2: sub-op 7 (get)");
	buf_free(&b);
}

static void test_watch_lists_must_end_in_nul(void)
{
	struct coord_req q;
	struct buf b;
	sample_req(COORD_OP_SETWATCHES, &q);
	q.persistent = slice_str("/a");
	encode_req(&b, &q);
	CHECK_STR(req_refused(b.p, b.len),
		  "setwatches: persistent watches: the last path is not NUL-terminated");
	buf_free(&b);
}

static void list_reply_refused(uint32_t count, const char *names, size_t n, const char *want)
{
	struct coord_reply r;
	struct buf b;
	sample_reply(COORD_OP_LIST, &r);
	r.count = count;
	r.names = slice_of(names, n);
	encode_reply(&b, &r);
	CHECK_HAS(reply_refused(b.p, b.len, COORD_OP_LIST), want);
	buf_free(&b);
}

static void test_list_reply_names_must_match_the_count(void)
{
	list_reply_refused(2, "a\0b\0c\0", 6, "count says 2 names but names holds 3");
	list_reply_refused(3, "a\0b\0", 4, "count says 3 names but names holds 2");
	list_reply_refused(2, "a\0b\0c", 5, "the last name is not NUL-terminated");
	list_reply_refused(0, "abc", 3, "the last name is not NUL-terminated");
	list_reply_refused(COORD_MAX_LIST + 1, "", 0, "count 10001 exceeds 10000");
	/* and an empty page is fine */
	struct coord_reply r, back;
	struct buf b;
	sample_reply(COORD_OP_LIST, &r);
	r.count = 0;
	r.names = slice_str("");
	r.more = 0;
	encode_reply(&b, &r);
	CHECK_EQ(coord_reply_decode(b.p, b.len, COORD_OP_LIST, &back, NULL, 0), COORD_OK);
	check_reply_same(&r, &back);
	buf_free(&b);
}

static void test_decoders_accept_a_null_errbuf(void)
{
	uint8_t junk[3] = {1, 2, 3};
	struct coord_req q;
	struct coord_reply r;
	CHECK_EQ(coord_req_decode(junk, sizeof(junk), &q, NULL, 0), COORD_EPROTO);
	CHECK_EQ(coord_reply_decode(junk, sizeof(junk), 0, &r, NULL, 0), COORD_EPROTO);
	char tiny[8];
	CHECK_EQ(coord_req_decode(junk, sizeof(junk), &q, tiny, sizeof(tiny)), COORD_EPROTO);
	CHECK_EQ(strlen(tiny), sizeof(tiny) - 1); /* cut, still terminated */
}

/* ---- peek, names, slices ---- */

static void test_peek_reads_only_the_header(void)
{
	struct coord_reply r;
	struct buf b;
	uint8_t kind = 0, op = 0;
	uint64_t xid = 0;
	sample_reply(COORD_OP_GET, &r);
	encode_reply(&b, &r);
	/* the body is cut short: decode refuses it, peek does not look at it */
	CHECK_EQ(coord_reply_peek(b.p, 24, &kind, &xid, &op), COORD_OK);
	CHECK_EQ(kind, COORD_MSG_REPLY);
	CHECK_EQ(xid, 1000 + COORD_OP_GET);
	CHECK_EQ(op, COORD_OP_GET);
	CHECK_EQ(coord_reply_peek(b.p, 23, &kind, &xid, &op), COORD_EPROTO);
	b.p[0] = 9;
	CHECK_EQ(coord_reply_peek(b.p, b.len, &kind, &xid, &op), COORD_EPROTO);
	b.p[0] = 1;
	b.p[1] = 0;
	CHECK_EQ(coord_reply_peek(b.p, b.len, NULL, NULL, NULL), COORD_EPROTO);
	buf_free(&b);
}

/* An ACL travels after a create's policy only with COORD_CREATE_ACL, top level and in a multi. */
static void test_create_with_acl_round_trips(void)
{
	struct coord_req q, back;
	struct buf b;
	sample_req(COORD_OP_CREATE, &q);
	encode_req(&b, &q);
	size_t plain = b.len;
	buf_free(&b);
	q.flags |= COORD_CREATE_ACL;
	q.acl = slice_str("world:anyone:r,key:web:rwcd");
	encode_req(&b, &q);
	CHECK_EQ(b.len, plain + 4 + q.acl.len);
	CHECK_EQ(coord_req_decode(b.p, b.len, &back, NULL, 0), COORD_OK);
	CHECK(slice_eq(back.acl, "world:anyone:r,key:web:rwcd"));
	coord_req_clear(&back);
	buf_free(&b);

	struct coord_subop ops[2] = {
		{.op = COORD_OP_CREATE, .path = slice_str("/a"), .flags = COORD_CREATE_ACL, .acl = slice_str("world:anyone:rw")},
		{.op = COORD_OP_CREATE, .path = slice_str("/b"), .flags = COORD_CREATE_DIR},
	};
	memset(&q, 0, sizeof(q));
	q.op = COORD_OP_MULTI;
	q.xid = 5;
	q.nops = 2;
	q.ops = ops;
	encode_req(&b, &q);
	CHECK_EQ(coord_req_decode(b.p, b.len, &back, NULL, 0), COORD_OK);
	CHECK_EQ(back.nops, 2);
	CHECK(slice_eq(back.ops[0].acl, "world:anyone:rw"));
	CHECK_EQ(back.ops[1].acl.len, 0);
	CHECK(slice_eq(back.ops[1].path, "/b"));
	coord_req_clear(&back);
	buf_free(&b);

	/* an ACL text over the limit is malformed */
	char big[COORD_MAX_ACL_TEXT + 2];
	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	sample_req(COORD_OP_SETACL, &q);
	q.acl = slice_str(big);
	encode_req(&b, &q);
	CHECK_HAS(req_refused(b.p, b.len), "acl length 1025 exceeds 1024");
	buf_free(&b);
}

static void test_op_names_and_write_ops(void)
{
	CHECK_STR(coord_op_name(COORD_OP_CREATE), "create");
	CHECK_STR(coord_op_name(COORD_OP_SETWATCHES), "setwatches");
	CHECK_STR(coord_op_name(COORD_OP_REMOVEWATCH), "removewatch");
	CHECK_STR(coord_op_name(0), "unknown");
	CHECK_STR(coord_op_name(COORD_OP_MAX), "unknown");
	CHECK_STR(coord_op_name(-1), "unknown");
	for (int op = 1; op < COORD_OP_MAX; op++)
		CHECK(strcmp(coord_op_name(op), "unknown") != 0);
	static const int writes[] = {COORD_OP_CLOSE, COORD_OP_CREATE, COORD_OP_DELETE, COORD_OP_SET,
				     COORD_OP_APPEND, COORD_OP_RENAME, COORD_OP_MULTI, COORD_OP_SETPOLICY,
				     COORD_OP_SETACL};
	int nwrites = 0;
	for (int op = 0; op <= COORD_OP_MAX; op++)
		nwrites += coord_op_is_write(op);
	CHECK_EQ(nwrites, (int)(sizeof(writes) / sizeof(writes[0])));
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
		CHECK(coord_op_is_write(writes[i]));
	CHECK(!coord_op_is_write(COORD_OP_CONNECT));
	CHECK(!coord_op_is_write(COORD_OP_GET));
	CHECK(!coord_op_is_write(COORD_OP_SYNC));
}

static void test_slice_helpers(void)
{
	struct slice s = slice_str("/app");
	CHECK_EQ(s.len, 4);
	CHECK(slice_eq(s, "/app"));
	CHECK(!slice_eq(s, "/ap"));
	CHECK(!slice_eq(s, "/apps"));
	CHECK(slice_eq(slice_str(NULL), ""));
	CHECK(slice_eq(slice_of(NULL, 0), NULL));
	char *d = slice_dup(slice_of("ab\0cd", 2));
	CHECK_STR(d, "ab");
	free(d);
	d = slice_dup(slice_of(NULL, 0));
	CHECK_STR(d, "");
	free(d);
}

/* ---- fuzz seeds ---- */

static void write_seed(const char *dir, const char *name, const struct buf *b)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK_EQ(fwrite(b->p, 1, b->len, f), b->len);
	CHECK_EQ(fclose(f), 0);
}

static void write_corpus(const char *dir)
{
	char name[64];
	struct buf b;
	for (int op = 1; op < COORD_OP_MAX; op++) {
		struct coord_req q;
		struct coord_reply r;
		sample_req(op, &q);
		encode_req(&b, &q);
		snprintf(name, sizeof(name), "req_%s", coord_op_name(op));
		write_seed(dir, name, &b);
		buf_free(&b);
		sample_reply(op, &r);
		encode_reply(&b, &r);
		snprintf(name, sizeof(name), "reply_%s", coord_op_name(op));
		write_seed(dir, name, &b);
		buf_free(&b);
	}
	struct coord_reply r;
	sample_failed_multi(&r);
	encode_reply(&b, &r);
	write_seed(dir, "reply_multi_failed", &b);
	buf_free(&b);
	sample_event(&r);
	encode_reply(&b, &r);
	write_seed(dir, "event_children", &b);
	buf_free(&b);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0) {
		write_corpus(argv[2]);
		return 0;
	}
	RUN(test_every_request_op_round_trips);
	RUN(test_create_with_acl_round_trips);
	RUN(test_every_reply_op_round_trips);
	RUN(test_error_reply_has_no_body);
	RUN(test_failed_multi_reply_carries_every_result);
	RUN(test_empty_multi_round_trips);
	RUN(test_event_round_trips);
	RUN(test_stat_is_78_bytes_and_round_trips);
	RUN(test_request_bytes_match_the_document);
	RUN(test_reply_bytes_match_the_document);
	RUN(test_every_op_has_the_specified_layout);
	RUN(test_request_flags_are_ignored);
	RUN(test_truncated_requests_are_refused_at_every_length);
	RUN(test_truncated_replies_are_refused_at_every_length);
	RUN(test_short_frames_say_what_the_header_needs);
	RUN(test_trailing_bytes_are_refused);
	RUN(test_bad_version_and_unknown_ops_are_refused);
	RUN(test_reply_for_another_op_is_refused);
	RUN(test_event_with_nonzero_header_fields_is_refused);
	RUN(test_oversize_lengths_are_refused_before_reading);
	RUN(test_limits_themselves_are_accepted);
	RUN(test_length_beyond_the_frame_is_refused);
	RUN(test_multi_refuses_other_subops);
	RUN(test_multi_subop_faults_name_the_subop);
	RUN(test_multi_count_larger_than_the_frame_is_refused);
	RUN(test_multi_reply_refuses_other_subops);
	RUN(test_watch_lists_must_end_in_nul);
	RUN(test_list_reply_names_must_match_the_count);
	RUN(test_decoders_accept_a_null_errbuf);
	RUN(test_peek_reads_only_the_header);
	RUN(test_op_names_and_write_ops);
	RUN(test_slice_helpers);
	fprintf(stderr, "test_wire: all passed\n");
	return 0;
}
