/*
 * snapshot.c: writing, choosing and loading snapshot files (contract in snapshot.h, framing in
 * recfile.h).
 *
 * File: header record ("COORDSNP", u32 format version, u64 zxid), the caller's records, footer
 * record ("COORDEND", u64 number of caller records), and nothing after it.
 *
 * Writing goes through a 1 MiB buffer into snapshot.<zxid>.tmp, which the writer holds an flock on
 * so snap_purge can tell a live temporary from one a crash left behind. Only a complete, fsynced
 * file is renamed to its final name, and the directory fsynced, so a final name always means
 * "was complete once"; loading still checks everything, since disks rot and people copy files.
 *
 * Loading validates a candidate completely before its first record reaches the caller, so a bad
 * snapshot never feeds half its records; then it walks the mapped file again to deliver them.
 */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "recfile.h"

#define NAME_PREFIX "snapshot."
#define TMP_SUFFIX ".tmp"
#define HDR_MAGIC "COORDSNP"
#define END_MAGIC "COORDEND"
#define FORMAT_VERSION 1u
#define HDR_LEN (8 + 4 + 8)
#define END_LEN (8 + 8)
#define WBUF_BYTES (1u << 20)
/* File paths live in fixed buffers of 4096: room for the directory and the longest name. */
#define MAX_DIR_LEN 4000u

struct snap_writer {
	char *dir;
	char final[4096], tmp[4096 + sizeof(TMP_SUFFIX)];
	int fd;
	uint64_t zxid;
	uint8_t *buf;
	size_t len;
	uint64_t count; /* caller records */
	int err;        /* sticky: the first failure, COORD_OK until then */
	int eno;
	const char *what;
};


/* ---- writing ---- */

static int fail_w(struct snap_writer *w, const char *what)
{
	if (w->err)
		return w->err;
	w->eno = errno;
	w->what = what;
	w->err = rec_io_code(w->eno);
	LOG_ERROR("%s: snapshot %s failed: %s; %s (the previous snapshot stays in use)", w->tmp, what,
		  strerror(w->eno), rec_io_advice(w->eno));
	return w->err;
}

static int flush_w(struct snap_writer *w)
{
	if (w->len && recfile_write_all(w->fd, w->buf, w->len) < 0)
		return fail_w(w, "write");
	w->len = 0;
	return COORD_OK;
}

static int put_record(struct snap_writer *w, const void *payload, size_t len)
{
	if (w->err)
		return w->err;
	if (len > REC_MAX_PAYLOAD) {
		LOG_ERROR("%s: snapshot record of %zu bytes is over the limit of %u", w->tmp, len, REC_MAX_PAYLOAD);
		return COORD_EBADARG;
	}
	uint8_t hdr[REC_HDR];
	rec_frame(hdr, payload, len, 0);
	if (w->len + REC_HDR + len > WBUF_BYTES && flush_w(w) != COORD_OK)
		return w->err;
	if (REC_HDR + len > WBUF_BYTES) {
		/* Bigger than the buffer: straight to the file, no copy. */
		if (recfile_write_all(w->fd, hdr, REC_HDR) < 0 || recfile_write_all(w->fd, payload, len) < 0)
			return fail_w(w, "write");
		return COORD_OK;
	}
	memcpy(w->buf + w->len, hdr, REC_HDR);
	memcpy(w->buf + w->len + REC_HDR, payload, len);
	w->len += REC_HDR + len;
	return COORD_OK;
}

static void free_w(struct snap_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	free(w->dir);
	free(w);
}

int snap_write_begin(const char *dir, uint64_t zxid, struct snap_writer **out, char *err, size_t errlen)
{
	*out = NULL;
	if (recfile_mkdirs(dir) < 0) {
		coord_seterr(err, errlen, "cannot create the snapshot directory %s: %s; check dataDir and its permissions", dir,
		       strerror(errno));
		return COORD_EIO;
	}
	struct snap_writer *w = calloc(1, sizeof(*w));
	if (!w)
		goto oom;
	w->fd = -1;
	if (!(w->dir = strdup(dir)) || !(w->buf = malloc(WBUF_BYTES)))
		goto oom;
	w->zxid = zxid;
	if (snprintf(w->final, sizeof(w->final), "%s/" NAME_PREFIX "%016" PRIx64, dir, zxid) >= (int)sizeof(w->final)) {
		coord_seterr(err, errlen, "the snapshot directory name %s is too long: use a shorter dataDir", dir);
		free_w(w);
		return COORD_EBADARG;
	}
	snprintf(w->tmp, sizeof(w->tmp), "%s" TMP_SUFFIX, w->final);
	/*
	 * O_TRUNC: a temporary of the same name can only be a crashed attempt at this very snapshot.
	 * A purge may have judged the file stale and unlinked it between our open and our lock: then
	 * the name no longer leads to our file, so start again (twice is plenty: purges are rare).
	 */
	int e = 0;
	for (int tries = 0; tries < 3; tries++) {
		struct stat a, b;
		w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (w->fd < 0 || flock(w->fd, LOCK_EX) < 0 || fstat(w->fd, &a) < 0) {
			e = errno;
			break;
		}
		if (stat(w->tmp, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			e = 0;
			break;
		}
		e = EAGAIN;
		close(w->fd);
		w->fd = -1;
	}
	if (e) {
		coord_seterr(err, errlen, "cannot create the snapshot file %s: %s; %s", w->tmp, strerror(e), rec_io_advice(e));
		if (w->fd >= 0)
			unlink(w->tmp);
		free_w(w);
		return rec_io_code(e);
	}
	uint8_t h[HDR_LEN];
	memcpy(h, HDR_MAGIC, 8);
	rec_put32(h + 8, FORMAT_VERSION);
	rec_put64(h + 12, zxid);
	put_record(w, h, sizeof(h)); /* into the empty buffer: cannot fail */
	*out = w;
	return COORD_OK;
oom:
	if (w)
		free_w(w);
	coord_seterr(err, errlen, "out of memory starting a snapshot in %s", dir);
	return COORD_ENOMEM;
}

int snap_write_record(struct snap_writer *w, const void *payload, size_t len)
{
	int rc = put_record(w, payload, len);
	if (rc == COORD_OK)
		w->count++;
	return rc;
}

int snap_write_end(struct snap_writer *w, char *err, size_t errlen)
{
	uint8_t f[END_LEN];
	memcpy(f, END_MAGIC, 8);
	rec_put64(f + 8, w->count);
	int rc = put_record(w, f, sizeof(f));
	if (rc == COORD_OK)
		rc = flush_w(w);
	/* fsync, not fdatasync: the size must be durable before the name points at the file. */
	if (rc == COORD_OK && fsync(w->fd) < 0)
		rc = fail_w(w, "fsync");
	if (rc == COORD_OK && close(w->fd) < 0)
		rc = fail_w(w, "close");
	if (rc == COORD_OK)
		w->fd = -1;
	if (rc == COORD_OK && rename(w->tmp, w->final) < 0)
		rc = fail_w(w, "rename");
	if (rc == COORD_OK && recfile_fsync_dir(w->dir) < 0) {
		/* The file is complete; only its name may not survive a crash. Say so, keep it. */
		rc = fail_w(w, "directory fsync");
		coord_seterr(err, errlen, "snapshot %s written, but the fsync of %s failed: %s; %s", w->final, w->dir,
		       strerror(w->eno), rec_io_advice(w->eno));
		free_w(w);
		return rc;
	}
	if (rc != COORD_OK) {
		if (w->what)
			coord_seterr(err, errlen, "snapshot %s not written: %s failed: %s; %s (the previous snapshot stays in use)",
			       w->final, w->what, strerror(w->eno), rec_io_advice(w->eno));
		else
			coord_seterr(err, errlen, "snapshot %s not written: %s", w->final, coord_strerror(rc));
		unlink(w->tmp);
		free_w(w);
		return rc;
	}
	LOG_INFO("%s: snapshot written (%" PRIu64 " records)", w->final, w->count);
	free_w(w);
	return COORD_OK;
}

void snap_write_abort(struct snap_writer *w)
{
	if (!w)
		return;
	unlink(w->tmp);
	free_w(w);
}

/* ---- reading ---- */

/*
 * Check a whole mapped snapshot. Returns 1 when valid (and *count = caller records), else 0 with
 * a description of the fault in why.
 */
static int validate(const uint8_t *p, size_t n, uint64_t name_zxid, uint64_t *count, char *why, size_t whylen)
{
	struct rec_scan s;
	struct rec r, last = {0};
	uint64_t nrec = 0;
	rec_scan_init(&s, p, n, 0, 0);
	while (rec_scan_next(&s, &r)) {
		if (nrec == 0) {
			if (r.len != HDR_LEN || memcmp(r.payload, HDR_MAGIC, 8) != 0) {
				snprintf(why, whylen, "no snapshot header at byte 0 (not a coordfs snapshot)");
				return 0;
			}
			uint32_t ver = rec_le32(r.payload + 8);
			if (ver != FORMAT_VERSION) {
				snprintf(why, whylen, "format version %u, this coordd reads version %u", ver, FORMAT_VERSION);
				return 0;
			}
			uint64_t z = rec_le64(r.payload + 12);
			if (z != name_zxid) {
				snprintf(why, whylen, "the header says zxid 0x%" PRIx64 ", the file name another", z);
				return 0;
			}
		}
		last = r;
		nrec++;
	}
	if (s.status != REC_END) {
		snprintf(why, whylen, "%s at byte %zu", rec_status_text(s.status), s.off);
		return 0;
	}
	if (nrec == 0) {
		snprintf(why, whylen, "empty file");
		return 0;
	}
	if (nrec < 2 || last.len != END_LEN || memcmp(last.payload, END_MAGIC, 8) != 0) {
		snprintf(why, whylen, "no footer (an unfinished or cut copy?)");
		return 0;
	}
	uint64_t c = rec_le64(last.payload + 8);
	if (c != nrec - 2) {
		snprintf(why, whylen, "the footer counts %" PRIu64 " records, the file holds %" PRIu64, c, nrec - 2);
		return 0;
	}
	*count = c;
	return 1;
}

int snap_load_newest(const char *dir, uint64_t *zxid, int (*cb)(void *arg, const uint8_t *payload, size_t len),
		     void *arg, char *err, size_t errlen)
{
	*zxid = 0;
	uint64_t *names;
	size_t nn;
	if (strlen(dir) > MAX_DIR_LEN) {
		coord_seterr(err, errlen, "the snapshot directory name %s is too long: use a shorter dataDir", dir);
		return COORD_EBADARG;
	}
	if (recfile_list(dir, NAME_PREFIX, "", &names, &nn) < 0) {
		if (errno == ENOENT)
			return COORD_OK; /* a first start: no dataDir yet, no snapshot */
		coord_seterr(err, errlen, "cannot list the snapshot directory %s: %s; check dataDir and its permissions", dir,
		       strerror(errno));
		return COORD_EIO;
	}
	int skipped = 0;
	char path[4096], why[256];
	for (size_t i = nn; i-- > 0;) {
		snprintf(path, sizeof(path), "%s/" NAME_PREFIX "%016" PRIx64, dir, names[i]);
		const uint8_t *p;
		size_t n;
		uint64_t count;
		if (recfile_map(path, &p, &n, NULL) < 0) {
			LOG_WARN("%s: skipped: cannot read it: %s; trying an older snapshot (%s)", path, strerror(errno),
				 rec_io_advice(errno));
			skipped++;
			continue;
		}
		if (!validate(p, n, names[i], &count, why, sizeof(why))) {
			LOG_WARN("%s: skipped: %s; trying an older snapshot (move this one away to silence this)", path,
				 why);
			recfile_unmap(p, n);
			skipped++;
			continue;
		}
		/* Second pass: header, then exactly count caller records, then the footer. */
		struct rec_scan s;
		struct rec r;
		rec_scan_init(&s, p, n, 0, 0);
		rec_scan_next(&s, &r);
		int rc = COORD_OK;
		for (uint64_t k = 0; k < count && rec_scan_next(&s, &r); k++)
			if ((rc = cb(arg, r.payload, r.len)) != 0)
				break;
		recfile_unmap(p, n);
		if (!rc) {
			*zxid = names[i];
			LOG_INFO("%s: snapshot loaded (%" PRIu64 " records)", path, count);
		}
		free(names);
		if (skipped)
			LOG_WARN("%s: loaded %s after skipping %d newer invalid snapshot(s)", dir, path, skipped);
		return rc;
	}
	free(names);
	if (skipped)
		LOG_WARN("%s: no valid snapshot (%d skipped): starting from the transaction log alone", dir, skipped);
	return COORD_OK;
}

/* ---- purging ---- */

/*
 * A cheap check for purge: the header and the footer frame and read right. It cannot see a bad
 * byte in the middle (that needs reading everything), but it catches cut and foreign files.
 * Returns 1 valid, 0 invalid, -1 unreadable (errno).
 */
static int quick_check(const char *path, uint64_t name_zxid)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	uint8_t h[REC_HDR + HDR_LEN], f[REC_HDR + END_LEN];
	int ok = -1;
	if (fstat(fd, &st) < 0)
		goto out;
	ok = 0;
	if ((size_t)st.st_size < sizeof(h) + sizeof(f))
		goto out;
	ok = -1;
	if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    pread(fd, f, sizeof(f), st.st_size - (off_t)sizeof(f)) != (ssize_t)sizeof(f))
		goto out;
	struct rec_scan s;
	struct rec r;
	rec_scan_init(&s, h, sizeof(h), 0, 0);
	ok = rec_scan_next(&s, &r) && r.len == HDR_LEN && memcmp(r.payload, HDR_MAGIC, 8) == 0 &&
	     rec_le64(r.payload + 12) == name_zxid;
	rec_scan_init(&s, f, sizeof(f), 0, 0);
	ok = ok && rec_scan_next(&s, &r) && r.len == END_LEN && memcmp(r.payload, END_MAGIC, 8) == 0;
out:;
	int e = errno;
	close(fd);
	errno = e;
	return ok;
}

uint64_t snap_purge(const char *dir, int keep)
{
	/* Never zero: the newest snapshot is what the log is purged against. */
	if (keep < 1)
		keep = 1;
	if (strlen(dir) > MAX_DIR_LEN)
		return 0;
	uint64_t *names;
	size_t nn;
	char path[4096];
	int removed = 0, kept = 0;
	uint64_t oldest = 0;
	if (recfile_list(dir, NAME_PREFIX, "", &names, &nn) < 0) {
		if (errno != ENOENT)
			LOG_WARN("%s: cannot list snapshots to purge them: %s", dir, strerror(errno));
		return 0;
	}
	for (size_t i = nn; i-- > 0;) {
		snprintf(path, sizeof(path), "%s/" NAME_PREFIX "%016" PRIx64, dir, names[i]);
		int q = kept < keep ? quick_check(path, names[i]) : 1;
		if (q < 0) {
			/* Unreadable now is not proof of damage: neither count it nor delete it. */
			LOG_WARN("%s: cannot check it: %s; left alone", path, strerror(errno));
			continue;
		}
		if (q && kept < keep) {
			kept++;
			oldest = names[i];
			continue;
		}
		if (unlink(path) < 0) {
			LOG_WARN("%s: cannot remove it: %s", path, strerror(errno));
			continue;
		}
		removed++;
		if (q)
			LOG_INFO("%s: purged (keeping the newest %d snapshots)", path, keep);
		else
			LOG_WARN("%s: removed: its header or footer is damaged, so it could never be loaded", path);
	}
	free(names);

	/* A temporary nobody holds a lock on was left by a crash mid-write. */
	if (recfile_list(dir, NAME_PREFIX, TMP_SUFFIX, &names, &nn) == 0) {
		for (size_t i = 0; i < nn; i++) {
			snprintf(path, sizeof(path), "%s/" NAME_PREFIX "%016" PRIx64 TMP_SUFFIX, dir, names[i]);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			if (flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(path) == 0) {
				LOG_INFO("%s: removed a temporary left by an unfinished snapshot", path);
				removed++;
			}
			close(fd);
		}
		free(names);
	}
	if (removed && recfile_fsync_dir(dir) < 0)
		LOG_WARN("%s: fsync of the directory after purging failed: %s", dir, strerror(errno));
	return oldest;
}
