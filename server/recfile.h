/*
 * recfile.h: the record framing shared by the transaction log and snapshots, and the few file
 * system chores both need (names with a zxid, whole writes, directory fsync, mapping a file).
 *
 * A record on disk is
 *     u32 len | u64 xxh64(body) | body
 * where body = prefix[plen] . payload[len]. The prefix is a fixed-size part the reader knows
 * about and len does not count: 8 bytes (the zxid) for the log, none for snapshots. Keeping the
 * checksummed bytes contiguous lets both writer and reader hash in one XXH64 call, with no copy.
 * Integers are little-endian, as everywhere in coordfs.
 *
 * The scanner walks a buffer (a mapped file, usually) and stops at the first record that does not
 * check, saying where and why, so callers can cut a torn tail exactly there.
 */
#ifndef COORD_RECFILE_H
#define COORD_RECFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* u32 len + u64 checksum */
#define REC_HDR 12u
/*
 * The largest payload either file accepts. Bigger than any legal txn or snapshot record (data is
 * capped far below), small enough that a corrupt len is caught as corruption instead of being
 * trusted into a huge allocation or a jump past real records.
 */
#define REC_MAX_PAYLOAD ((64u << 20) + (1u << 20))

enum rec_status {
	REC_OK = 0,   /* a record was returned */
	REC_END,      /* clean end: no bytes left, or (zero_ends) a zero len followed by zeros only */
	REC_TORN,     /* the header or body runs past the end of the data */
	REC_TOOBIG,   /* len over REC_MAX_PAYLOAD */
	REC_BADSUM,   /* the checksum does not match the body */
	REC_GARBAGE,  /* (zero_ends) non-zero bytes after the zero len that marks the end */
};

struct rec {
	size_t off;          /* offset of the record's first byte */
	size_t size;         /* REC_HDR + plen + len */
	const uint8_t *body; /* prefix then payload */
	const uint8_t *payload;
	size_t len;          /* payload bytes */
};

struct rec_scan {
	const uint8_t *p;
	size_t n;
	size_t plen;
	int zero_ends;
	size_t off;   /* where the next record starts; once stopped, the end of the valid records */
	int status;   /* REC_OK while records come; why the scan stopped afterwards */
	/*
	 * -1, or the fd of the file mapped at p: then checking that the tail is zeros reads only the
	 * file's data regions (holes and fallocated extents are zeros without reading), so a
	 * preallocated 64 MiB file opens in microseconds instead of tens of milliseconds.
	 */
	int fd;
};

/*
 * zero_ends: a zero len marks the end (the log, whose files are preallocated with zeros);
 * otherwise a zero len is an empty record and only the end of the buffer ends the scan.
 */
void rec_scan_init(struct rec_scan *s, const void *p, size_t n, size_t plen, int zero_ends);
/* 1 with *r filled when the next record checks; 0 when the scan stops (see s->status, s->off). */
int rec_scan_next(struct rec_scan *s, struct rec *r);
/* A phrase for a log line: "checksum mismatch", "record runs past the end of the file", ... */
const char *rec_status_text(int status);

/* Fill the 12-byte header for a body of body_len bytes whose first plen bytes are the prefix. */
void rec_frame(uint8_t hdr[REC_HDR], const void *body, size_t body_len, size_t plen);

static inline uint32_t rec_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rec_le64(const uint8_t *p) { return rec_le32(p) | (uint64_t)rec_le32(p + 4) << 32; }
static inline void rec_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void rec_put64(uint8_t *p, uint64_t v)
{
	rec_put32(p, (uint32_t)v);
	rec_put32(p + 4, (uint32_t)(v >> 32));
}

/*
 * "<prefix><16 lower-case hex digits><suffix>" exactly, e.g. ("log.", "") or ("snapshot.", ".tmp").
 * Returns 1 and the zxid when name matches, 0 otherwise (unrelated files are ignored, not errors).
 */
int recfile_parse_name(const char *name, const char *prefix, const char *suffix, uint64_t *zxid);
/*
 * Every zxid named "<prefix><hex><suffix>" in dir, sorted ascending, in a malloc'd array.
 * Returns 0, or -1 with errno set (opendir failed or out of memory).
 */
int recfile_list(const char *dir, const char *prefix, const char *suffix, uint64_t **out, size_t *n);

/* pwrite/write all of p or fail with errno set (a short write is retried; its error is kept). */
int recfile_pwrite_all(int fd, const void *p, size_t n, uint64_t off);
int recfile_write_all(int fd, const void *p, size_t n);
/* fsync a directory, so a create, rename or unlink in it survives a crash. 0 or -1/errno. */
int recfile_fsync_dir(const char *dir);
/* mkdir -p; 0 or -1/errno */
int recfile_mkdirs(const char *dir);

/*
 * Map a whole file read-only (sequential access hint). An empty file gives *p = NULL, *n = 0.
 * With fd non-NULL the file stays open and *fd is its descriptor (the caller closes it); else it
 * is closed. Returns 0, or -1 with errno set. recfile_unmap accepts what recfile_map gave, NULL included.
 */
int recfile_map(const char *path, const uint8_t **p, size_t *n, int *fd);
void recfile_unmap(const uint8_t *p, size_t n);

/*
 * The fdatasync the log uses. A seam for tests only: they point it at a function that fails, to
 * exercise the paths that the kernel's rare EIO takes (which a healthy disk never shows).
 */
extern int (*recfile_fdatasync)(int fd);
/* Likewise the ftruncate the log cuts a failed batch with (whose own failure leaves it behind). */
extern int (*recfile_ftruncate)(int fd, off_t len);

/* The coordfs code for a failed write's errno: COORD_ENOSPC for a full disk, else COORD_EIO. */
int rec_io_code(int e);
/* What a person can do about that errno. */
const char *rec_io_advice(int e);

#endif
