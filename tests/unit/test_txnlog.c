/*
 * test_txnlog.c: the transaction log's contract: records come back exactly and in order, a torn
 * or corrupt tail is cut (and later files dropped), roll/purge/truncate_after touch only what they
 * must, and a failed sync (full disk, failed fdatasync) loses nothing and can be retried.
 * Also prints (does not assert) append throughput and single append+sync latency.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "log.h"
#include "recfile.h"
#include "storage_util.h"
#include "txnlog.h"

/* ---- payloads that check themselves: zxid, salt, then a pattern of both ---- */

static size_t plen_of(uint64_t z) { return 12 + (size_t)(z * 37 % 289); }
static size_t rec_size(uint64_t z) { return REC_HDR + 8 + plen_of(z); }

static void gen(uint64_t z, uint32_t salt, uint8_t *out, size_t len)
{
	rec_put64(out, z);
	rec_put32(out + 8, salt);
	for (size_t i = 12; i < len; i++)
		out[i] = (uint8_t)(z * 131 + salt * 7 + i);
}

#define MAXGOT 20000
struct got {
	size_t n;
	uint64_t z[MAXGOT];
	uint32_t salt[MAXGOT];
};

static int collect(void *arg, uint64_t zxid, const uint8_t *p, size_t len)
{
	struct got *g = arg;
	CHECK(g->n < MAXGOT);
	CHECK(len >= 12);
	CHECK_EQ(rec_le64(p), zxid);
	uint32_t salt = rec_le32(p + 8);
	for (size_t i = 12; i < len; i++)
		CHECK_EQ(p[i], (uint8_t)(zxid * 131 + salt * 7 + i));
	g->z[g->n] = zxid;
	g->salt[g->n] = salt;
	g->n++;
	return 0;
}

static void append_range(struct txnlog *l, uint64_t from, uint64_t to, uint32_t salt, int sync_every)
{
	uint8_t p[400];
	for (uint64_t z = from; z <= to; z++) {
		gen(z, salt, p, plen_of(z));
		CHECK_EQ(txnlog_append(l, z, p, plen_of(z)), COORD_OK);
		if (sync_every && (z - from + 1) % (uint64_t)sync_every == 0)
			CHECK_EQ(txnlog_sync(l), COORD_OK);
	}
	CHECK_EQ(txnlog_sync(l), COORD_OK);
}

static struct txnlog *open_log(const char *dir, uint64_t expect_last)
{
	struct txnlog *l = NULL;
	uint64_t last = 12345;
	char err[512] = "";
	int rc = txnlog_open(dir, &l, &last, err, sizeof(err));
	if (rc != COORD_OK)
		fprintf(stderr, "open %s: %s\n", dir, err);
	CHECK_EQ(rc, COORD_OK);
	CHECK(l != NULL);
	CHECK_EQ(last, expect_last);
	return l;
}

/* Replay everything after `after` and check it is exactly from..to (salt 0 unless given). */
static struct got *replay_all(struct txnlog *l, uint64_t after)
{
	static struct got g;
	g.n = 0;
	CHECK_EQ(txnlog_replay(l, after, collect, &g), COORD_OK);
	return &g;
}

static void expect_range(const struct got *g, size_t at, uint64_t from, uint64_t to, uint32_t salt)
{
	CHECK(g->n >= at + (size_t)(to - from + 1));
	for (uint64_t z = from; z <= to; z++, at++) {
		CHECK_EQ(g->z[at], z);
		CHECK_EQ(g->salt[at], salt);
	}
}

static const char *lname(uint64_t z)
{
	static char b[4][32];
	static int i;
	char *s = b[i++ % 4];
	snprintf(s, 32, "log.%016" PRIx64, z);
	return s;
}

static size_t bytes_of(uint64_t from, uint64_t to)
{
	size_t n = 0;
	for (uint64_t z = from; z <= to; z++)
		n += rec_size(z);
	return n;
}

/* ---- tests ---- */

static void test_roundtrip(void)
{
	char *d = scratch_dir("txnlog");
	struct txnlog *l = open_log(d, 0);
	CHECK_EQ(txnlog_first_zxid(l), 0);
	append_range(l, 1, 500, 0, 50);
	/* A record far bigger than the others, to cross any buffer boundary. */
	size_t big = 3u << 20;
	uint8_t *bp = malloc(big);
	gen(501, 0, bp, big);
	CHECK_EQ(txnlog_append(l, 501, bp, big), COORD_OK);
	CHECK_EQ(txnlog_sync(l), COORD_OK);
	CHECK_EQ(txnlog_first_zxid(l), 1);
	txnlog_close(l);
	/* Preallocated: the file is a whole chunk, the records a small part of it. */
	CHECK_EQ(file_size(d, lname(1)), 64ll << 20);

	l = open_log(d, 501);
	CHECK_EQ(txnlog_first_zxid(l), 1);
	struct got *g = replay_all(l, 0);
	CHECK_EQ(g->n, 501);
	expect_range(g, 0, 1, 501, 0);
	g = replay_all(l, 250);
	CHECK_EQ(g->n, 251);
	expect_range(g, 0, 251, 501, 0);
	g = replay_all(l, 501);
	CHECK_EQ(g->n, 0);

	/* Appends continue the same file after a reopen. */
	append_range(l, 502, 600, 0, 7);
	CHECK_EQ(txnlog_replay(l, 0, collect, g), COORD_EBADARG); /* only before appending */
	txnlog_close(l);
	l = open_log(d, 600);
	g = replay_all(l, 0);
	CHECK_EQ(g->n, 600);
	expect_range(g, 0, 1, 600, 0);
	CHECK(!file_exists(d, lname(502)));

	/* Misuse is refused, and refusing leaves the log usable. */
	uint8_t p[16] = {0};
	CHECK_EQ(txnlog_append(l, 600, p, sizeof(p)), COORD_EBADARG);
	CHECK_EQ(txnlog_append(l, 601, p, 0), COORD_EBADARG);
	CHECK_EQ(txnlog_append(l, 601, bp, (size_t)REC_MAX_PAYLOAD + 1), COORD_EBADARG);
	append_range(l, 601, 601, 0, 0);
	txnlog_close(l);
	l = open_log(d, 601);
	txnlog_close(l);
	free(bp);
	rm_rf(d);
}

static int stop_at_3(void *arg, uint64_t z, const uint8_t *p, size_t len)
{
	int *n = arg;
	(void)p;
	(void)len;
	++*n;
	return z == 3 ? 42 : 0;
}

static void test_cb_stops_replay(void)
{
	char *d = scratch_dir("txnlog");
	struct txnlog *l = open_log(d, 0);
	append_range(l, 1, 10, 0, 0);
	txnlog_close(l);
	l = open_log(d, 10);
	int n = 0;
	CHECK_EQ(txnlog_replay(l, 0, stop_at_3, &n), 42);
	CHECK_EQ(n, 3);
	txnlog_close(l);
	rm_rf(d);
}

static void test_second_open_refused(void)
{
	char *d = scratch_dir("txnlog");
	struct txnlog *l = open_log(d, 0), *l2 = NULL;
	uint64_t last;
	char err[512] = "";
	CHECK_EQ(txnlog_open(d, &l2, &last, err, sizeof(err)), COORD_EIO);
	CHECK(l2 == NULL);
	CHECK(strstr(err, "in use") != NULL);
	CHECK(strstr(err, d) != NULL);
	txnlog_close(l);
	l = open_log(d, 0);
	txnlog_close(l);
	rm_rf(d);
}

/*
 * Cut the file at every byte of its last record, as a crash mid-write would: the file either
 * ends there, or (preallocated) goes on with zeros. Either way the record is gone, everything
 * before it is intact, and the log takes new appends.
 */
static void test_torn_tail_every_offset(void)
{
	char *src = scratch_dir("txnlog");
	char *d = scratch_dir("txnlog");
	struct txnlog *l = open_log(src, 0);
	append_range(l, 1, 20, 0, 5);
	txnlog_close(l);
	size_t n;
	uint8_t *whole = read_file(src, lname(1), &n);
	size_t start = bytes_of(1, 19), end = start + rec_size(20);
	CHECK(n >= end + 4096);
	uint8_t *cut = calloc(1, end + 4096);
	coord_log_init("test_txnlog", COORD_LOG_ERROR); /* hundreds of expected warnings */
	for (int zero_tail = 0; zero_tail <= 1; zero_tail++) {
		for (size_t c = start; c < end; c++) {
			rm_rf(d);
			CHECK(mkdir(d, 0755) == 0);
			if (zero_tail) {
				memcpy(cut, whole, c);
				write_file(d, lname(1), cut, end + 4096);
			} else {
				write_file(d, lname(1), whole, c);
			}
			l = open_log(d, 19);
			if (!zero_tail)
				CHECK_EQ(file_size(d, lname(1)), (long long)start);
			struct got *g = replay_all(l, 0);
			CHECK_EQ(g->n, 19);
			expect_range(g, 0, 1, 19, 0);
			append_range(l, 20, 20, 1, 0);
			txnlog_close(l);
			l = open_log(d, 20);
			g = replay_all(l, 0);
			CHECK_EQ(g->n, 20);
			expect_range(g, 0, 1, 19, 0);
			expect_range(g, 19, 20, 20, 1);
			txnlog_close(l);
		}
	}
	coord_log_init("test_txnlog", COORD_LOG_INFO);
	free(cut);
	free(whole);
	rm_rf(src);
	rm_rf(d);
}

/* Three files: 1..30, 31..60, 61..90. */
static void three_files(const char *d)
{
	struct txnlog *l = open_log(d, 0);
	append_range(l, 1, 30, 0, 10);
	CHECK_EQ(txnlog_roll(l), COORD_OK);
	append_range(l, 31, 60, 0, 10);
	CHECK_EQ(txnlog_roll(l), COORD_OK);
	append_range(l, 61, 90, 0, 10);
	txnlog_close(l);
	CHECK(file_exists(d, lname(1)) && file_exists(d, lname(31)) && file_exists(d, lname(61)));
}

/* A damaged byte anywhere in record 45 (in the middle file) ends the log at 44. */
static void test_corrupt_middle_cuts_and_drops_later_files(void)
{
	/* length (its high byte: too big), checksum, zxid, payload */
	const size_t where[] = {3, 5, 12 + 2, 12 + 8 + 5};
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		char *d = scratch_dir("txnlog");
		three_files(d);
		size_t off = bytes_of(31, 44);
		long long size_a = file_size(d, lname(1));
		flip_byte(d, lname(31), (long long)(off + where[i]));
		struct txnlog *l = open_log(d, 44);
		CHECK_EQ(file_size(d, lname(31)), (long long)off);
		CHECK_EQ(file_size(d, lname(1)), size_a);
		CHECK(!file_exists(d, lname(61)));
		struct got *g = replay_all(l, 0);
		CHECK_EQ(g->n, 44);
		expect_range(g, 0, 1, 44, 0);
		/* The log goes on from there. */
		append_range(l, 45, 50, 2, 0);
		txnlog_close(l);
		l = open_log(d, 50);
		g = replay_all(l, 0);
		CHECK_EQ(g->n, 50);
		expect_range(g, 44, 45, 50, 2);
		txnlog_close(l);
		rm_rf(d);
	}
}

/* Write raw records (valid framing, any zxids) to make files the log would never write itself. */
static void raw_file(const char *d, const char *name, const uint64_t *zs, size_t nz, size_t zeros, const char *junk)
{
	uint8_t *b = calloc(1, 1 << 16);
	size_t at = 0;
	for (size_t i = 0; i < nz; i++) {
		size_t len = plen_of(zs[i]);
		rec_put64(b + at + REC_HDR, zs[i]);
		gen(zs[i], 0, b + at + REC_HDR + 8, len);
		rec_frame(b + at, b + at + REC_HDR, 8 + len, 8);
		at += REC_HDR + 8 + len;
	}
	at += zeros;
	if (junk) {
		memcpy(b + at, junk, strlen(junk));
		at += strlen(junk);
	}
	write_file(d, name, b, at);
	free(b);
}

static void test_odd_files(void)
{
	/* A valid record whose zxid goes backwards: the log ends before it. */
	char *d = scratch_dir("txnlog");
	uint64_t zs[] = {1, 2, 3, 3, 4};
	raw_file(d, lname(1), zs, 5, 0, NULL);
	struct txnlog *l = open_log(d, 3);
	CHECK_EQ(file_size(d, lname(1)), (long long)bytes_of(1, 3));
	txnlog_close(l);
	rm_rf(d);

	/* Bytes after the zeros that end the records: a torn batch, cut. */
	d = scratch_dir("txnlog");
	raw_file(d, lname(1), zs, 3, 100, "\xff\x01junk");
	l = open_log(d, 3);
	CHECK_EQ(file_size(d, lname(1)), (long long)bytes_of(1, 3));
	txnlog_close(l);
	rm_rf(d);

	/*
	 * The same deep inside the preallocated padding, past unwritten extents that the check
	 * skips without reading: a stray block there is still found.
	 */
	d = scratch_dir("txnlog");
	l = open_log(d, 0);
	append_range(l, 1, 3, 0, 0);
	txnlog_close(l);
	{
		char path[8200];
		snprintf(path, sizeof(path), "%s/%s", d, lname(1));
		int fd = open(path, O_WRONLY);
		CHECK(fd >= 0);
		CHECK(pwrite(fd, "x", 1, 40 << 20) == 1);
		close(fd);
	}
	l = open_log(d, 3);
	CHECK_EQ(file_size(d, lname(1)), (long long)bytes_of(1, 3));
	txnlog_close(l);
	rm_rf(d);

	/* A newest file with no records (crash right after creating it) is removed, quietly. */
	d = scratch_dir("txnlog");
	raw_file(d, lname(1), zs, 3, 0, NULL);
	raw_file(d, lname(4), NULL, 0, 4096, NULL);
	l = open_log(d, 3);
	CHECK(!file_exists(d, lname(4)));
	append_range(l, 4, 6, 0, 0);
	txnlog_close(l);
	l = open_log(d, 6);
	CHECK_EQ(replay_all(l, 0)->n, 6);
	txnlog_close(l);
	rm_rf(d);

	/* An empty file between others is a hole: it and everything after it go. */
	d = scratch_dir("txnlog");
	uint64_t z2[] = {20, 21};
	raw_file(d, lname(1), zs, 3, 0, NULL);
	raw_file(d, lname(4), NULL, 0, 4096, NULL);
	raw_file(d, lname(20), z2, 2, 0, NULL);
	l = open_log(d, 3);
	CHECK(!file_exists(d, lname(4)));
	CHECK(!file_exists(d, lname(20)));
	txnlog_close(l);
	rm_rf(d);

	/* A file whose name is above its records' zxids is corrupt from byte 0. */
	d = scratch_dir("txnlog");
	uint64_t z3[] = {5, 6};
	raw_file(d, lname(1), zs, 3, 0, NULL);
	raw_file(d, lname(7), z3, 2, 0, NULL);
	l = open_log(d, 3);
	CHECK(!file_exists(d, lname(7)));
	txnlog_close(l);
	rm_rf(d);

	/* Files that are not the log's are left alone. */
	d = scratch_dir("txnlog");
	raw_file(d, lname(1), zs, 3, 0, NULL);
	write_file(d, "log.00000000000000zz", "x", 1);
	write_file(d, "log.0000000000000009.bak", "x", 1);
	write_file(d, "README", "x", 1);
	l = open_log(d, 3);
	CHECK_EQ(txnlog_purge(l, 100), COORD_OK);
	txnlog_close(l);
	CHECK(file_exists(d, "log.00000000000000zz"));
	CHECK(file_exists(d, "log.0000000000000009.bak"));
	CHECK(file_exists(d, "README"));
	rm_rf(d);
}

static void test_roll_and_purge(void)
{
	char *d = scratch_dir("txnlog");
	struct txnlog *l = open_log(d, 0);
	append_range(l, 1, 10, 0, 0);
	/* Rolling an empty-handed log twice makes one new file, not two. */
	CHECK_EQ(txnlog_roll(l), COORD_OK);
	CHECK_EQ(txnlog_roll(l), COORD_OK);
	append_range(l, 11, 20, 0, 0);
	CHECK_EQ(txnlog_roll(l), COORD_OK);
	append_range(l, 21, 30, 0, 0);
	CHECK(file_exists(d, lname(1)) && file_exists(d, lname(11)) && file_exists(d, lname(21)));
	/* A rolled-away file gives back its unused preallocation. */
	CHECK_EQ(file_size(d, lname(1)), (long long)bytes_of(1, 10));

	CHECK_EQ(txnlog_purge(l, 15), COORD_OK); /* the second file still holds 16..20 */
	CHECK(!file_exists(d, lname(1)) && file_exists(d, lname(11)) && file_exists(d, lname(21)));
	CHECK_EQ(txnlog_first_zxid(l), 11);
	CHECK_EQ(txnlog_purge(l, 20), COORD_OK);
	CHECK(!file_exists(d, lname(11)) && file_exists(d, lname(21)));
	CHECK_EQ(txnlog_purge(l, 30), COORD_OK); /* the file being appended to stays */
	CHECK(file_exists(d, lname(21)));
	CHECK_EQ(txnlog_first_zxid(l), 21);
	txnlog_close(l);

	l = open_log(d, 30);
	struct got *g = replay_all(l, 0);
	CHECK_EQ(g->n, 10);
	expect_range(g, 0, 21, 30, 0);
	/* After a roll, the old newest file is no longer appended to and can go. */
	CHECK_EQ(txnlog_roll(l), COORD_OK);
	CHECK_EQ(txnlog_purge(l, 30), COORD_OK);
	CHECK(!file_exists(d, lname(21)));
	CHECK_EQ(txnlog_first_zxid(l), 0);
	append_range(l, 31, 35, 0, 0);
	CHECK(file_exists(d, lname(31)));
	txnlog_close(l);
	l = open_log(d, 35);
	g = replay_all(l, 0);
	CHECK_EQ(g->n, 5);
	expect_range(g, 0, 31, 35, 0);
	txnlog_close(l);
	rm_rf(d);
}

static void test_truncate_after(void)
{
	/* Across a file boundary: 61..90 goes, 31..60 is cut after 45. */
	char *d = scratch_dir("txnlog");
	three_files(d);
	struct txnlog *l = open_log(d, 90);
	CHECK_EQ(txnlog_truncate_after(l, 45), COORD_OK);
	CHECK(!file_exists(d, lname(61)));
	CHECK_EQ(file_size(d, lname(31)), (long long)bytes_of(31, 45));
	/* The replica's new suffix takes the zxids again, with other contents. */
	append_range(l, 46, 70, 3, 10);
	/* Buffered records past the cut are dropped too, buffered ones below it stay. */
	uint8_t p[400];
	for (uint64_t z = 71; z <= 74; z++) {
		gen(z, 3, p, plen_of(z));
		CHECK_EQ(txnlog_append(l, z, p, plen_of(z)), COORD_OK);
	}
	CHECK_EQ(txnlog_truncate_after(l, 72), COORD_OK);
	CHECK_EQ(txnlog_sync(l), COORD_OK);
	txnlog_close(l);
	l = open_log(d, 72);
	struct got *g = replay_all(l, 0);
	CHECK_EQ(g->n, 72);
	expect_range(g, 0, 1, 45, 0);
	expect_range(g, 45, 46, 72, 3);
	txnlog_close(l);
	rm_rf(d);

	/* Exactly at a file boundary, and below everything. */
	d = scratch_dir("txnlog");
	three_files(d);
	l = open_log(d, 90);
	CHECK_EQ(txnlog_truncate_after(l, 30), COORD_OK);
	CHECK(file_exists(d, lname(1)) && !file_exists(d, lname(31)) && !file_exists(d, lname(61)));
	CHECK_EQ(file_size(d, lname(1)), (long long)bytes_of(1, 30));
	txnlog_close(l);
	l = open_log(d, 30);
	CHECK_EQ(txnlog_truncate_after(l, 0), COORD_OK);
	CHECK(!file_exists(d, lname(1)));
	CHECK_EQ(txnlog_first_zxid(l), 0);
	append_range(l, 1, 5, 4, 0);
	txnlog_close(l);
	l = open_log(d, 5);
	g = replay_all(l, 0);
	CHECK_EQ(g->n, 5);
	expect_range(g, 0, 1, 5, 4);
	txnlog_close(l);
	rm_rf(d);
}

/* ---- failures: fdatasync (injected) and a full disk (a real one, on a tiny tmpfs) ---- */

static int fdatasync_calls;
static int failing_fdatasync(int fd)
{
	(void)fd;
	fdatasync_calls++;
	errno = EIO;
	return -1;
}

static void test_failed_fdatasync_is_retried(void)
{
	char *d = scratch_dir("txnlog");
	struct txnlog *l = open_log(d, 0);
	append_range(l, 1, 10, 0, 0);

	/* A failed sync: error, the file cut back to its durable end, the batch kept for a retry. */
	uint8_t p[400];
	for (uint64_t z = 11; z <= 20; z++) {
		gen(z, 0, p, plen_of(z));
		CHECK_EQ(txnlog_append(l, z, p, plen_of(z)), COORD_OK);
	}
	recfile_fdatasync = failing_fdatasync;
	CHECK_EQ(txnlog_sync(l), COORD_EIO);
	CHECK_EQ(txnlog_sync(l), COORD_EIO);
	CHECK_EQ(fdatasync_calls, 2);
	CHECK_EQ(file_size(d, lname(1)), (long long)bytes_of(1, 10));
	recfile_fdatasync = fdatasync;
	CHECK_EQ(txnlog_sync(l), COORD_OK);
	/* Given up: the zxids go to other contents. */
	for (uint64_t z = 21; z <= 25; z++) {
		gen(z, 0, p, plen_of(z));
		CHECK_EQ(txnlog_append(l, z, p, plen_of(z)), COORD_OK);
	}
	recfile_fdatasync = failing_fdatasync;
	CHECK_EQ(txnlog_sync(l), COORD_EIO);
	txnlog_discard(l);
	recfile_fdatasync = fdatasync;
	append_range(l, 21, 23, 7, 0);
	/* A failure, then a roll: the batch goes to the new file, the old one is cut back. */
	for (uint64_t z = 24; z <= 30; z++) {
		gen(z, 0, p, plen_of(z));
		CHECK_EQ(txnlog_append(l, z, p, plen_of(z)), COORD_OK);
	}
	recfile_fdatasync = failing_fdatasync;
	CHECK_EQ(txnlog_sync(l), COORD_EIO);
	recfile_fdatasync = fdatasync;
	CHECK_EQ(txnlog_roll(l), COORD_OK);
	CHECK_EQ(txnlog_sync(l), COORD_OK);
	CHECK(file_exists(d, lname(24)));
	CHECK_EQ(file_size(d, lname(1)), (long long)bytes_of(1, 23));
	txnlog_close(l);

	l = open_log(d, 30);
	struct got *g = replay_all(l, 0);
	CHECK_EQ(g->n, 30);
	expect_range(g, 0, 1, 20, 0);
	expect_range(g, 20, 21, 23, 7);
	expect_range(g, 23, 24, 30, 0);
	txnlog_close(l);
	rm_rf(d);
}

static int ftruncate_calls;
static int failing_ftruncate(int fd, off_t len)
{
	(void)fd;
	(void)len;
	ftruncate_calls++;
	errno = EIO;
	return -1;
}

/*
 * When even the cut after a failed sync fails, the failed batch's records sit past the durable
 * end with good checksums. A smaller batch written after a discard must not leave them there to
 * be replayed as if they had been acknowledged.
 */
static void test_failed_cut_leaves_no_stale_records(void)
{
	char *d = scratch_dir("txnlog");
	struct txnlog *l = open_log(d, 0);
	append_range(l, 1, 10, 0, 0);
	uint8_t p[400];
	for (uint64_t z = 11; z <= 20; z++) {
		gen(z, 0, p, plen_of(z));
		CHECK_EQ(txnlog_append(l, z, p, plen_of(z)), COORD_OK);
	}
	recfile_fdatasync = failing_fdatasync;
	recfile_ftruncate = failing_ftruncate;
	CHECK_EQ(txnlog_sync(l), COORD_EIO);
	CHECK(ftruncate_calls > 0);
	recfile_fdatasync = fdatasync;
	recfile_ftruncate = ftruncate;
	txnlog_discard(l);
	append_range(l, 11, 12, 9, 0);
	txnlog_close(l);
	l = open_log(d, 12);
	struct got *g = replay_all(l, 0);
	CHECK_EQ(g->n, 12);
	expect_range(g, 0, 1, 10, 0);
	expect_range(g, 10, 11, 12, 9);
	txnlog_close(l);
	rm_rf(d);
}

static void enospc_body(const char *mnt)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/log", mnt);
	/* Something to delete later, as an operator freeing space would. */
	static uint8_t filler[256 << 10];
	memset(filler, 1, sizeof(filler));
	write_file(mnt, "filler", filler, sizeof(filler));

	struct txnlog *l = open_log(dir, 0);
	uint8_t p[4096];
	uint64_t z = 0, durable = 0;
	int rc = COORD_OK;
	while (rc == COORD_OK) {
		CHECK(z < 10000);
		for (int i = 0; i < 8; i++) {
			z++;
			gen(z, 0, p, sizeof(p));
			CHECK_EQ(txnlog_append(l, z, p, sizeof(p)), COORD_OK);
		}
		rc = txnlog_sync(l);
		if (rc == COORD_OK)
			durable = z;
	}
	CHECK_EQ(rc, COORD_ENOSPC);
	CHECK(durable > 0);
	fprintf(stderr, "    disk full after %" PRIu64 " durable records\n", durable);
	/* Cut back: the file holds exactly the durable records. */
	size_t rsz = REC_HDR + 8 + sizeof(p);
	CHECK_EQ(file_size(dir, lname(1)), (long long)(durable * rsz));
	CHECK_EQ(txnlog_sync(l), COORD_ENOSPC); /* still full */
	CHECK_EQ(file_size(dir, lname(1)), (long long)(durable * rsz));
	/* Space freed: the same batch goes through. */
	char fp[4096];
	snprintf(fp, sizeof(fp), "%s/filler", mnt);
	CHECK(unlink(fp) == 0);
	CHECK_EQ(txnlog_sync(l), COORD_OK);
	txnlog_close(l);
	l = open_log(dir, z);
	struct got *g = replay_all(l, 0);
	CHECK_EQ(g->n, z);
	expect_range(g, 0, 1, z, 0);
	txnlog_close(l);
}

static void test_disk_full(void) { on_small_tmpfs("txnlog-enospc", 1 << 20, enospc_body); }

/* ---- speed (printed, not asserted) ---- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void test_speed(void)
{
	char *d = scratch_dir("txnlog");
	struct txnlog *l = open_log(d, 0);
	uint8_t p[200];
	memset(p, 7, sizeof(p));
	/* Warm up: the first sync of a file also preallocates it. */
	CHECK_EQ(txnlog_append(l, 1, p, sizeof(p)), COORD_OK);
	CHECK_EQ(txnlog_sync(l), COORD_OK);
	uint64_t z = 1;
	double t0 = now_s();
	for (int i = 0; i < 10000; i++) {
		CHECK_EQ(txnlog_append(l, ++z, p, sizeof(p)), COORD_OK);
		if (i % 100 == 99)
			CHECK_EQ(txnlog_sync(l), COORD_OK);
	}
	double dt = now_s() - t0;
	fprintf(stderr, "    10,000 x 200 B appends, sync every 100: %.1f ms, %.0f records/s\n", dt * 1e3, 10000 / dt);

	enum { N = 1000 };
	static double lat[N];
	for (int i = 0; i < N; i++) {
		double t = now_s();
		CHECK_EQ(txnlog_append(l, ++z, p, sizeof(p)), COORD_OK);
		CHECK_EQ(txnlog_sync(l), COORD_OK);
		lat[i] = now_s() - t;
	}
	qsort(lat, N, sizeof(lat[0]), cmp_d);
	fprintf(stderr, "    single 200 B append+sync: p50 %.0f us, p99 %.0f us (%.0f syncs/s at p50)\n",
		lat[N / 2] * 1e6, lat[N * 99 / 100] * 1e6, 1 / lat[N / 2]);
	txnlog_close(l);
	rm_rf(d);
}

int main(void)
{
	coord_log_init("test_txnlog", COORD_LOG_INFO);
	RUN(test_roundtrip);
	RUN(test_cb_stops_replay);
	RUN(test_second_open_refused);
	RUN(test_torn_tail_every_offset);
	RUN(test_corrupt_middle_cuts_and_drops_later_files);
	RUN(test_odd_files);
	RUN(test_roll_and_purge);
	RUN(test_truncate_after);
	RUN(test_failed_fdatasync_is_retried);
	RUN(test_failed_cut_leaves_no_stale_records);
	RUN(test_disk_full);
	RUN(test_speed);
	return 0;
}
