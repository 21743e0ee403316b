/*
 * fuzz_wire.c: libFuzzer target for the protocol decoders (common/wire.c).
 *
 * Every input goes to coord_req_decode, to coord_reply_decode once per op value 0..COORD_OP_MAX
 * (0 also covers events), and to coord_reply_peek. Whatever decodes must survive a round trip:
 * re-encoding gives the input back (but for the reserved header bytes, which are ignored), and
 * decoding that again gives the same message (compared through its encoding). Seeds live in
 * tests/fuzz/corpus_wire/ (written by `test_wire --write-corpus DIR`).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "wire.h"

#define REQ_FLAGS_OFF 2      /* u16, reserved */
#define REPLY_RESERVED_OFF 3 /* u8, reserved */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_wire: %s\n", what);
	abort();
}

/* The encoding equals the input everywhere but the reserved bytes [skip, skip+nskip). */
static void check_same_frame(const uint8_t *in, size_t len, const struct buf *b, size_t skip,
			     size_t nskip)
{
	if (b->len != len)
		die("re-encoded frame has a different length");
	for (size_t i = 0; i < len; i++)
		if ((i < skip || i >= skip + nskip) && b->p[i] != in[i])
			die("re-encoded frame differs from the input");
}

static void check_same_buf(const struct buf *a, const struct buf *b)
{
	if (a->len != b->len || (a->len && memcmp(a->p, b->p, a->len) != 0))
		die("a decoded message does not survive a second round trip");
}

static void fuzz_req(const uint8_t *data, size_t size)
{
	struct coord_req q, q2;
	struct buf b1, b2;
	char why[256];
	int rc = coord_req_decode(data, size, &q, why, sizeof(why));
	if (rc != COORD_OK) {
		if (rc != COORD_EPROTO && rc != COORD_ENOMEM)
			die("request decoder returned an unexpected code");
		if (!why[0])
			die("request decoder failed without a reason");
		return;
	}
	buf_init(&b1);
	buf_init(&b2);
	if (coord_req_encode(&b1, &q) != COORD_OK)
		die("request encoder failed");
	check_same_frame(data, size, &b1, REQ_FLAGS_OFF, 2);
	if (coord_req_decode(b1.p, b1.len, &q2, why, sizeof(why)) != COORD_OK)
		die("re-encoded request does not decode");
	if (coord_req_encode(&b2, &q2) != COORD_OK)
		die("request encoder failed");
	check_same_buf(&b1, &b2);
	if (q.op != q2.op || q.xid != q2.xid || q.nops != q2.nops)
		die("request header changed in the round trip");
	coord_req_clear(&q2);
	coord_req_clear(&q);
	buf_free(&b1);
	buf_free(&b2);
}

static void fuzz_reply(const uint8_t *data, size_t size, uint8_t op)
{
	struct coord_reply r, r2;
	struct buf b1, b2;
	char why[256];
	int rc = coord_reply_decode(data, size, op, &r, why, sizeof(why));
	if (rc != COORD_OK) {
		if (rc != COORD_EPROTO && rc != COORD_ENOMEM)
			die("reply decoder returned an unexpected code");
		if (!why[0])
			die("reply decoder failed without a reason");
		return;
	}
	if (r.kind == COORD_MSG_REPLY && op != 0 && r.op != op)
		die("reply decoded for another op");
	buf_init(&b1);
	buf_init(&b2);
	if (coord_reply_encode(&b1, &r) != COORD_OK)
		die("reply encoder failed");
	check_same_frame(data, size, &b1, REPLY_RESERVED_OFF, 1);
	if (coord_reply_decode(b1.p, b1.len, op, &r2, why, sizeof(why)) != COORD_OK)
		die("re-encoded reply does not decode");
	if (coord_reply_encode(&b2, &r2) != COORD_OK)
		die("reply encoder failed");
	check_same_buf(&b1, &b2);
	coord_reply_clear(&r2);
	coord_reply_clear(&r);
	buf_free(&b1);
	buf_free(&b2);
}

static void fuzz_peek(const uint8_t *data, size_t size)
{
	uint8_t kind, op;
	uint64_t xid;
	struct coord_reply r;
	int peeked = coord_reply_peek(data, size, &kind, &xid, &op) == COORD_OK;
	/* whatever decodes must also peek, with the same header */
	if (coord_reply_decode(data, size, 0, &r, NULL, 0) == COORD_OK) {
		if (!peeked || kind != r.kind || xid != r.xid || op != r.op)
			die("peek disagrees with decode");
		coord_reply_clear(&r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy of exactly `size` bytes, so ASan catches any read past the end */
	uint8_t *frame = malloc(size ? size : 1);
	if (!frame)
		return 0;
	if (size)
		memcpy(frame, data, size);
	fuzz_req(frame, size);
	for (int op = 0; op <= COORD_OP_MAX; op++)
		fuzz_reply(frame, size, (uint8_t)op);
	fuzz_peek(frame, size);
	free(frame);
	return 0;
}
