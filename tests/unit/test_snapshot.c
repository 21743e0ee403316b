/*
 * test_snapshot.c: snapshots come back exactly; a damaged or unfinished one is skipped, whole,
 * for the newest valid older one; purge keeps the newest N and clears crashed temporaries but
 * not a live one; a full disk fails the write cleanly and leaves the old snapshot in use.
 * Also prints (does not assert) write and load speed.
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
#include "snapshot.h"
#include "storage_util.h"

/* Record i of the snapshot at zxid z: tagged with both, so a stray record is caught. */
static size_t len_of(uint64_t z, uint64_t i) { return i == 7 ? 0 : 12 + (size_t)((z + i * 53) % 500); }

static void gen(uint64_t z, uint64_t i, uint8_t *out, size_t len)
{
	if (len < 12)
		return;
	rec_put64(out, z);
	rec_put32(out + 8, (uint32_t)i);
	for (size_t k = 12; k < len; k++)
		out[k] = (uint8_t)(z * 31 + i * 17 + k);
}

struct got {
	uint64_t z;   /* the snapshot the records must come from */
	uint64_t n;   /* records seen */
	int stop_at;  /* return 99 from the cb at this record (-1: never) */
};

static int collect(void *arg, const uint8_t *p, size_t len)
{
	struct got *g = arg;
	uint64_t i = g->n++;
	CHECK_EQ(len, len_of(g->z, i));
	if (len >= 12) {
		CHECK_EQ(rec_le64(p), g->z);
		CHECK_EQ(rec_le32(p + 8), (uint32_t)i);
		for (size_t k = 12; k < len; k++)
			CHECK_EQ(p[k], (uint8_t)(g->z * 31 + i * 17 + k));
	}
	return (int)i == g->stop_at ? 99 : 0;
}

static void write_snap(const char *dir, uint64_t z, uint64_t nrec)
{
	struct snap_writer *w = NULL;
	char err[512] = "";
	CHECK_EQ(snap_write_begin(dir, z, &w, err, sizeof(err)), COORD_OK);
	static uint8_t p[600];
	for (uint64_t i = 0; i < nrec; i++) {
		size_t len = len_of(z, i);
		gen(z, i, p, len);
		CHECK_EQ(snap_write_record(w, p, len), COORD_OK);
	}
	int rc = snap_write_end(w, err, sizeof(err));
	if (rc)
		fprintf(stderr, "%s\n", err);
	CHECK_EQ(rc, COORD_OK);
}

/* Load and check: the newest valid one must be `want` with `nrec` records. */
static void expect_load(const char *dir, uint64_t want, uint64_t nrec)
{
	struct got g = {.z = want, .stop_at = -1};
	uint64_t z = 777;
	char err[512] = "";
	CHECK_EQ(snap_load_newest(dir, &z, collect, &g, err, sizeof(err)), COORD_OK);
	CHECK_EQ(z, want);
	CHECK_EQ(g.n, nrec);
}

static const char *sname(uint64_t z)
{
	static char b[4][48];
	static int i;
	char *s = b[i++ % 4];
	snprintf(s, 48, "snapshot.%016" PRIx64, z);
	return s;
}

static const char *tname(uint64_t z)
{
	static char b[4][48];
	static int i;
	char *s = b[i++ % 4];
	snprintf(s, 48, "snapshot.%016" PRIx64 ".tmp", z);
	return s;
}

static void test_roundtrip(void)
{
	char *d = scratch_dir("snap");
	expect_load(d, 0, 0); /* none yet */
	write_snap(d, 0x100, 5000);
	CHECK(file_exists(d, sname(0x100)));
	CHECK(!file_exists(d, tname(0x100)));
	expect_load(d, 0x100, 5000);

	/* Records bigger than the 1 MiB write buffer, between small ones. */
	struct snap_writer *w;
	char err[512];
	CHECK_EQ(snap_write_begin(d, 0x200, &w, err, sizeof(err)), COORD_OK);
	size_t big = 3u << 20;
	uint8_t *p = malloc(big);
	for (int i = 0; i < 5; i++) {
		size_t len = i % 2 ? big - (size_t)i : 100;
		memset(p, i, len);
		CHECK_EQ(snap_write_record(w, p, len), COORD_OK);
	}
	CHECK_EQ(snap_write_end(w, err, sizeof(err)), COORD_OK);
	size_t n;
	uint8_t *whole = read_file(d, sname(0x200), &n);
	size_t expect = 0;
	for (int i = 0; i < 5; i++)
		expect += REC_HDR + (i % 2 ? big - (size_t)i : 100);
	CHECK_EQ(n, expect + 2 * REC_HDR + 20 + 16);
	free(whole);
	free(p);
	/* A cb that stops: its value comes back, no zxid claimed. */
	struct got g = {.z = 0x100, .stop_at = 3};
	uint64_t z = 777;
	rm_rf(d);
	CHECK(mkdir(d, 0755) == 0);
	write_snap(d, 0x100, 10);
	CHECK_EQ(snap_load_newest(d, &z, collect, &g, err, sizeof(err)), 99);
	CHECK_EQ(g.n, 4);
	CHECK_EQ(z, 0);
	rm_rf(d);

	/* A missing directory is simply no snapshot. */
	CHECK_EQ(snap_load_newest("/tmp/coordfs-no-such-dir/x", &z, collect, &g, err, sizeof(err)), COORD_OK);
	CHECK_EQ(z, 0);
}

static void test_abort(void)
{
	char *d = scratch_dir("snap");
	struct snap_writer *w;
	char err[512];
	CHECK_EQ(snap_write_begin(d, 0x300, &w, err, sizeof(err)), COORD_OK);
	CHECK(file_exists(d, tname(0x300)));
	CHECK_EQ(snap_write_record(w, "abc", 3), COORD_OK);
	snap_write_abort(w);
	CHECK(!file_exists(d, tname(0x300)));
	CHECK(!file_exists(d, sname(0x300)));
	expect_load(d, 0, 0);
	rm_rf(d);
}

static int count_cb(void *arg, const uint8_t *p, size_t len)
{
	CHECK_EQ(len, 4);
	CHECK_EQ(p[3], 4);
	++*(int *)arg;
	return 0;
}

/*
 * Damage the newest snapshot in each way that matters; the older valid one is used instead and
 * never a single record of the bad one reaches the cb (collect checks every record's tag).
 */
static void test_bad_snapshot_is_skipped(void)
{
	enum { OLD = 0x100, NEW = 0x200, NREC = 300 };
	for (int how = 0; how < 8; how++) {
		char *d = scratch_dir("snap");
		write_snap(d, OLD, NREC);
		write_snap(d, NEW, NREC);
		long long size = file_size(d, sname(NEW));
		const char *what = "";
		switch (how) {
		case 0:
			what = "missing footer";
			truncate_file(d, sname(NEW), size - (long long)(REC_HDR + 16));
			break;
		case 1:
			what = "bad byte in the middle";
			flip_byte(d, sname(NEW), size / 2);
			break;
		case 2:
			what = "cut mid-record";
			truncate_file(d, sname(NEW), size / 2);
			break;
		case 3:
			what = "bad byte in the footer";
			flip_byte(d, sname(NEW), size - 3);
			break;
		case 4:
			what = "bytes after the footer";
			{
				size_t n;
				uint8_t *b = read_file(d, sname(NEW), &n);
				b = realloc(b, n + 7);
				memset(b + n, 0, 7);
				write_file(d, sname(NEW), b, n + 7);
				free(b);
			}
			break;
		case 5:
			what = "header zxid differs from the name";
			{
				size_t n;
				uint8_t *b = read_file(d, sname(NEW), &n);
				write_file(d, sname(NEW + 1), b, n);
				free(b);
			}
			break;
		case 6:
			what = "empty file";
			truncate_file(d, sname(NEW), 0);
			break;
		case 7:
			what = "bad byte in the header";
			flip_byte(d, sname(NEW), REC_HDR + 2);
			break;
		}
		fprintf(stderr, "    %s\n", what);
		expect_load(d, how == 5 ? NEW : OLD, NREC);
		rm_rf(d);
	}

	/* A footer whose count disagrees (made by hand: the writer cannot produce one). */
	char *d = scratch_dir("snap");
	write_snap(d, OLD, NREC);
	uint8_t b[256];
	size_t at = 0;
	uint8_t h[20], e[16], r[4] = {1, 2, 3, 4};
	memcpy(h, "COORDSNP", 8);
	rec_put32(h + 8, 1);
	rec_put64(h + 12, NEW);
	memcpy(e, "COORDEND", 8);
	rec_put64(e + 8, 2); /* one record follows, not two */
	const uint8_t *parts[] = {h, r, e};
	size_t lens[] = {20, 4, 16};
	for (int i = 0; i < 3; i++) {
		rec_frame(b + at, parts[i], lens[i], 0);
		memcpy(b + at + REC_HDR, parts[i], lens[i]);
		at += REC_HDR + lens[i];
	}
	write_file(d, sname(NEW), b, at);
	expect_load(d, OLD, NREC);
	/* The same by hand with the right count loads: the hand-made framing is the real one. */
	rec_put64(e + 8, 1);
	rec_frame(b + at - REC_HDR - 16, e, 16, 0);
	memcpy(b + at - 16, e, 16);
	write_file(d, sname(NEW), b, at);
	uint64_t z;
	char err[512];
	int seen = 0;
	CHECK_EQ(snap_load_newest(d, &z, count_cb, &seen, err, sizeof(err)), COORD_OK);
	CHECK_EQ(z, NEW);
	CHECK_EQ(seen, 1);

	/* Nothing valid at all: no snapshot, no error (the log alone then). */
	truncate_file(d, sname(OLD), 10);
	flip_byte(d, sname(NEW), 30);
	expect_load(d, 0, 0);
	rm_rf(d);
}

static void test_purge(void)
{
	char *d = scratch_dir("snap");
	CHECK_EQ(snap_purge(d, 3), 0);
	for (uint64_t z = 1; z <= 5; z++)
		write_snap(d, z * 0x10, 20);
	/* A temporary a crash left behind, a live one, and files that are not ours. */
	write_file(d, tname(0x45), "junk", 4);
	struct snap_writer *w;
	char err[512];
	CHECK_EQ(snap_write_begin(d, 0x60, &w, err, sizeof(err)), COORD_OK);
	write_file(d, "snapshot.README", "x", 1);
	write_file(d, "snapshot.0000000000000010.bak", "x", 1);

	CHECK_EQ(snap_purge(d, 2), 0x40);
	CHECK(!file_exists(d, sname(0x10)) && !file_exists(d, sname(0x20)) && !file_exists(d, sname(0x30)));
	CHECK(file_exists(d, sname(0x40)) && file_exists(d, sname(0x50)));
	CHECK(!file_exists(d, tname(0x45)));
	CHECK(file_exists(d, tname(0x60)));
	CHECK(file_exists(d, "snapshot.README") && file_exists(d, "snapshot.0000000000000010.bak"));
	/* The live writer was not disturbed. */
	CHECK_EQ(snap_write_record(w, "x", 1), COORD_OK);
	CHECK_EQ(snap_write_end(w, err, sizeof(err)), COORD_OK);
	CHECK(file_exists(d, sname(0x60)));

	/* A snapshot whose footer is gone does not count toward the kept ones (and is removed). */
	truncate_file(d, sname(0x60), file_size(d, sname(0x60)) - 5);
	CHECK_EQ(snap_purge(d, 2), 0x40);
	CHECK(!file_exists(d, sname(0x60)));
	CHECK(file_exists(d, sname(0x40)) && file_exists(d, sname(0x50)));
	expect_load(d, 0x50, 20);
	/* keep < 1 still keeps the newest. */
	CHECK_EQ(snap_purge(d, 0), 0x50);
	CHECK(!file_exists(d, sname(0x40)));
	expect_load(d, 0x50, 20);
	rm_rf(d);
}

static void enospc_body(const char *mnt)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/data", mnt);
	write_snap(dir, 0x10, 100);
	struct snap_writer *w;
	char err[512] = "";
	CHECK_EQ(snap_write_begin(dir, 0x20, &w, err, sizeof(err)), COORD_OK);
	static uint8_t p[64 << 10];
	memset(p, 3, sizeof(p));
	int rc = COORD_OK;
	for (int i = 0; i < 64 && rc == COORD_OK; i++) /* 4 MiB into a 1 MiB disk */
		rc = snap_write_record(w, p, sizeof(p));
	CHECK_EQ(rc, COORD_ENOSPC);
	CHECK_EQ(snap_write_record(w, p, 10), COORD_ENOSPC); /* sticky */
	CHECK_EQ(snap_write_end(w, err, sizeof(err)), COORD_ENOSPC);
	fprintf(stderr, "    error: %s\n", err);
	CHECK(strstr(err, "snapshot.0000000000000020") != NULL);
	CHECK(strstr(err, "free space") != NULL);
	CHECK(!file_exists(dir, tname(0x20)));
	CHECK(!file_exists(dir, sname(0x20)));
	expect_load(dir, 0x10, 100);
	/* A snapshot that fits still goes through afterwards. */
	write_snap(dir, 0x30, 100);
	expect_load(dir, 0x30, 100);
}

static void test_disk_full(void) { on_small_tmpfs("snap-enospc", 1 << 20, enospc_body); }

static int nop_cb(void *arg, const uint8_t *p, size_t len)
{
	(void)p;
	*(uint64_t *)arg += len;
	return 0;
}

static void test_speed(void)
{
	char *d = scratch_dir("snap");
	struct snap_writer *w;
	char err[512];
	uint8_t p[100];
	memset(p, 9, sizeof(p));
	double t0 = now_s();
	CHECK_EQ(snap_write_begin(d, 1, &w, err, sizeof(err)), COORD_OK);
	for (int i = 0; i < 1000000; i++)
		CHECK_EQ(snap_write_record(w, p, sizeof(p)), COORD_OK);
	CHECK_EQ(snap_write_end(w, err, sizeof(err)), COORD_OK);
	double t1 = now_s();
	uint64_t z, bytes = 0;
	CHECK_EQ(snap_load_newest(d, &z, nop_cb, &bytes, err, sizeof(err)), COORD_OK);
	double t2 = now_s();
	CHECK_EQ(bytes, 100000000);
	fprintf(stderr, "    1,000,000 x 100 B records: write+fsync %.0f ms, validate+load %.0f ms (%.0f MB file)\n",
		(t1 - t0) * 1e3, (t2 - t1) * 1e3, (double)file_size(d, sname(1)) / 1e6);
	rm_rf(d);
}

int main(void)
{
	coord_log_init("test_snapshot", COORD_LOG_INFO);
	RUN(test_roundtrip);
	RUN(test_abort);
	RUN(test_bad_snapshot_is_skipped);
	RUN(test_purge);
	RUN(test_disk_full);
	RUN(test_speed);
	return 0;
}
