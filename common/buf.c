/*
 * buf.c: the byte writer and reader every codec in coordfs is built on.
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b) { memset(b, 0, sizeof(*b)); }

void buf_free(struct buf *b)
{
	free(b->p);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->oom = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
	if (b->oom)
		return -1;
	if (b->len + extra <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void buf_put(struct buf *b, const void *p, size_t n)
{
	if (n == 0 || buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void buf_u8(struct buf *b, uint8_t v) { buf_put(b, &v, 1); }

void buf_u16(struct buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	buf_put(b, x, 2);
}

void buf_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4];
	for (int i = 0; i < 4; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	buf_put(b, x, 4);
}

void buf_u64(struct buf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	buf_put(b, x, 8);
}

void buf_bytes(struct buf *b, const void *p, size_t n)
{
	buf_u32(b, (uint32_t)n);
	buf_put(b, p, n);
}

void buf_str(struct buf *b, const char *s) { buf_bytes(b, s, s ? strlen(s) : 0); }

uint8_t *buf_take(struct buf *b, size_t *len)
{
	uint8_t *p = b->p;
	if (len)
		*len = b->len;
	buf_init(b);
	return p;
}

void rd_init(struct rd *r, const void *p, size_t n)
{
	r->p = p;
	r->end = r->p + n;
	r->bad = 0;
}

static const uint8_t *take(struct rd *r, size_t n)
{
	if (r->bad || rd_left(r) < n) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	return p;
}

uint8_t rd_u8(struct rd *r)
{
	const uint8_t *p = take(r, 1);
	return p ? p[0] : 0;
}

uint16_t rd_u16(struct rd *r)
{
	const uint8_t *p = take(r, 2);
	return p ? (uint16_t)(p[0] | (p[1] << 8)) : 0;
}

uint32_t rd_u32(struct rd *r)
{
	const uint8_t *p = take(r, 4);
	if (!p)
		return 0;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t rd_u64(struct rd *r)
{
	const uint8_t *p = take(r, 8);
	if (!p)
		return 0;
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void rd_raw(struct rd *r, void *out, size_t n)
{
	const uint8_t *p = take(r, n);
	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

struct slice rd_bytes(struct rd *r, uint32_t max)
{
	struct slice s = {NULL, 0};
	uint32_t n = rd_u32(r);
	if (r->bad)
		return s;
	if (n > max) {
		r->bad = 1;
		return s;
	}
	const uint8_t *p = take(r, n);
	if (p) {
		s.p = p;
		s.len = n;
	}
	return s;
}
