/*
 * peerwire.c: encoding and defensive decoding of peer-port messages.
 */
#include "peerwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "wire.h"

static void header(struct buf *b, uint8_t kind)
{
	buf_u8(b, PEER_WIRE_VERSION);
	buf_u8(b, kind);
}

static int done(struct buf *b) { return b->oom ? COORD_ENOMEM : COORD_OK; }

int peer_encode_raft(struct buf *b, const struct raft_msg *m)
{
	header(b, PEER_RAFT);
	buf_u8(b, m->type);
	buf_u32(b, (uint32_t)m->from);
	buf_u32(b, (uint32_t)m->to);
	buf_u64(b, m->term);
	buf_u64(b, m->index);
	buf_u64(b, m->log_term);
	buf_u64(b, m->commit);
	buf_u64(b, m->ctx);
	buf_u64(b, m->durable);
	buf_u8(b, m->reject);
	buf_u32(b, m->nentries);
	for (uint32_t i = 0; i < m->nentries; i++) {
		buf_u64(b, m->entries[i].term);
		buf_u8(b, m->entries[i].type);
		buf_bytes(b, m->entries[i].data, m->entries[i].len);
	}
	return done(b);
}

int peer_encode_forward(struct buf *b, uint8_t kind, uint64_t session, const void *frame, size_t len)
{
	header(b, kind);
	buf_u64(b, session);
	buf_bytes(b, frame, len);
	return done(b);
}

int peer_encode_new_session(struct buf *b, uint64_t session, const uint8_t passwd[16], uint32_t timeout_ms,
			    const char *principal)
{
	header(b, PEER_NEW_SESSION);
	buf_u64(b, session);
	buf_put(b, passwd, 16);
	buf_u32(b, timeout_ms);
	if (principal && principal[0])
		buf_bytes(b, principal, strlen(principal));
	return done(b);
}

int peer_encode_touch(struct buf *b, const uint64_t *sessions, uint32_t n)
{
	header(b, PEER_TOUCH);
	buf_u32(b, n);
	for (uint32_t i = 0; i < n; i++)
		buf_u64(b, sessions[i]);
	return done(b);
}

int peer_encode_chunk(struct buf *b, uint64_t index, uint64_t term, uint64_t offset, uint64_t total,
		      const void *chunk, size_t len)
{
	header(b, PEER_SNAP_CHUNK);
	buf_u64(b, index);
	buf_u64(b, term);
	buf_u64(b, offset);
	buf_u64(b, total);
	buf_bytes(b, chunk, len);
	return done(b);
}

static int bad(struct peer_msg *m, char *err, size_t errlen, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "peer message: %s", why);
	peer_msg_clear(m);
	return COORD_EPROTO;
}

int peer_decode(const void *frame, size_t len, struct peer_msg *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	struct rd r;
	rd_init(&r, frame, len);
	if (rd_u8(&r) != PEER_WIRE_VERSION)
		return bad(m, err, errlen, "unknown version");
	m->kind = rd_u8(&r);
	switch (m->kind) {
	case PEER_RAFT: {
		struct raft_msg *x = &m->raft;
		x->type = rd_u8(&r);
		x->from = (int)rd_u32(&r);
		x->to = (int)rd_u32(&r);
		x->term = rd_u64(&r);
		x->index = rd_u64(&r);
		x->log_term = rd_u64(&r);
		x->commit = rd_u64(&r);
		x->ctx = rd_u64(&r);
		x->durable = rd_u64(&r);
		x->reject = rd_u8(&r);
		x->nentries = rd_u32(&r);
		if (r.bad)
			return bad(m, err, errlen, "truncated raft header");
		/* each entry takes at least 13 bytes: refuse counts the frame cannot hold */
		if (x->nentries > PEER_MAX_ENTRIES || x->nentries > rd_left(&r) / 13)
			return bad(m, err, errlen, "entry count exceeds the frame");
		if (x->nentries) {
			m->ents = calloc(x->nentries, sizeof(*m->ents));
			if (!m->ents)
				return bad(m, err, errlen, "out of memory");
		}
		for (uint32_t i = 0; i < x->nentries; i++) {
			m->ents[i].term = rd_u64(&r);
			m->ents[i].type = rd_u8(&r);
			struct slice d = rd_bytes(&r, COORD_MAX_DATA + (2u << 20));
			m->ents[i].len = d.len;
			m->ents[i].data = (uint8_t *)d.p;
		}
		x->entries = m->ents;
		break;
	}
	case PEER_FORWARD:
	case PEER_REFUSED:
		m->session = rd_u64(&r);
		m->frame = rd_bytes(&r, COORD_MAX_DATA + (1u << 20));
		break;
	case PEER_NEW_SESSION:
		m->session = rd_u64(&r);
		rd_raw(&r, m->passwd, 16);
		m->timeout_ms = rd_u32(&r);
		if (rd_left(&r)) {
			struct slice pr = rd_bytes(&r, COORD_PRINCIPAL_MAX);
			if (r.bad || pr.len == 0 || memchr(pr.p, 0, pr.len))
				return bad(m, err, errlen, "bad principal in a new session");
			memcpy(m->principal, pr.p, pr.len);
		}
		break;
	case PEER_TOUCH:
		m->ntouch = rd_u32(&r);
		if (m->ntouch > PEER_MAX_TOUCH || (size_t)m->ntouch * 8 != rd_left(&r))
			return bad(m, err, errlen, "touch count does not match the frame");
		m->touch = r.p;
		r.p += (size_t)m->ntouch * 8;
		break;
	case PEER_SNAP_CHUNK:
		m->index = rd_u64(&r);
		m->term = rd_u64(&r);
		m->offset = rd_u64(&r);
		m->total = rd_u64(&r);
		m->chunk = rd_bytes(&r, 64u << 20);
		if (!r.bad && (m->offset > m->total || m->chunk.len > m->total - m->offset))
			return bad(m, err, errlen, "chunk outside the snapshot");
		break;
	default:
		return bad(m, err, errlen, "unknown kind");
	}
	if (r.bad)
		return bad(m, err, errlen, "truncated");
	if (rd_left(&r))
		return bad(m, err, errlen, "trailing bytes");
	return COORD_OK;
}

void peer_msg_clear(struct peer_msg *m)
{
	free(m->ents);
	m->ents = NULL;
	m->raft.entries = NULL;
	m->raft.nentries = 0;
}

uint64_t peer_touch_at(const struct peer_msg *m, uint32_t i)
{
	struct rd r;
	rd_init(&r, m->touch + (size_t)i * 8, 8);
	return rd_u64(&r);
}
