/*
 * buf.h: growable byte buffer (writer) and bounds-checked cursor (reader), little-endian.
 *
 * The writer owns its heap memory (buf_free). An allocation failure sticks: every later put is a
 * no-op and buf->oom stays set, so encoders check once at the end. The reader never reads past
 * its end: a short read sets rd->bad, returns zero/empty, and every later get fails too.
 */
#ifndef COORD_BUF_H
#define COORD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;
	size_t len, cap;
	int oom;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);          /* len = 0, keeps memory */
int buf_reserve(struct buf *b, size_t extra);
void buf_put(struct buf *b, const void *p, size_t n);
void buf_u8(struct buf *b, uint8_t v);
void buf_u16(struct buf *b, uint16_t v);
void buf_u32(struct buf *b, uint32_t v);
void buf_u64(struct buf *b, uint64_t v);
/* u32 length, then the bytes */
void buf_bytes(struct buf *b, const void *p, size_t n);
void buf_str(struct buf *b, const char *s);
/* Hand the bytes to the caller (who frees them); the buf is left empty. */
uint8_t *buf_take(struct buf *b, size_t *len);

/* A byte range that points into someone else's memory (not NUL-terminated). */
struct slice {
	const uint8_t *p;
	uint32_t len;
};

struct rd {
	const uint8_t *p, *end;
	int bad;
};

void rd_init(struct rd *r, const void *p, size_t n);
uint8_t rd_u8(struct rd *r);
uint16_t rd_u16(struct rd *r);
uint32_t rd_u32(struct rd *r);
uint64_t rd_u64(struct rd *r);
void rd_raw(struct rd *r, void *out, size_t n);
/* u32 length then bytes; fails (bad) when the length exceeds what is left or max. */
struct slice rd_bytes(struct rd *r, uint32_t max);
static inline size_t rd_left(const struct rd *r) { return (size_t)(r->end - r->p); }

#endif
