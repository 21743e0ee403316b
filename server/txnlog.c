/*
 * txnlog.c: the durable transaction log (see txnlog.h for the contract, recfile.h for framing).
 *
 * Layout: dataLogDir/log.<zxid>, where the name is a lower bound of the zxids inside and every
 * record of a file is below the next file's name. Records are appended to the newest file only.
 *
 * Durability: txnlog_append frames records into one reusable buffer; txnlog_sync writes the whole
 * batch at the durable end of the newest file and fdatasyncs once (group commit). Files grow in
 * preallocated 64 MiB chunks of zeros, so an fdatasync usually has no file size to update and a
 * zero length marks the end of the records. A batch counts only once its fdatasync succeeded; on
 * any failure the batch stays buffered and the next sync rewrites all of it from the durable end,
 * because after a failed fdatasync the kernel may have dropped the dirty pages while marking them
 * clean (the 2018 "fsyncgate"), so what is in the page cache proves nothing.
 *
 * Recovery: txnlog_open checks every record (length, checksum, zxids increasing). The first
 * fault ends the log: the file is cut there and every later file is deleted, since a record after
 * a hole may depend on what the hole held. The log never replays what it could not check.
 */
#include "txnlog.h"

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

#include "buf.h"
#include "err.h"
#include "log.h"
#include "recfile.h"

#define NAME_PREFIX "log."
/* The zxid that opens each record's body; len does not count it. */
#define ZXID_BYTES 8u
/* ZooKeeper's preAllocSize: big enough that size updates are rare, small enough to be cheap. */
#define PREALLOC_CHUNK (64ull << 20)
/* File paths live in fixed buffers of 4096: room for the directory and the longest name. */
#define MAX_DIR_LEN 4000u
/* A buffer that grew past this for one huge batch is given back after the batch is durable. */
#define KEEP_BUF_BYTES (8u << 20)

struct lfile {
	uint64_t name;  /* the zxid in the file name */
	uint64_t first; /* zxid of its first record, 0 when it has none */
	uint64_t last;  /* zxid of its last record, 0 when it has none */
	uint64_t end;   /* byte offset just past its last valid (durable) record */
};

struct txnlog {
	char *dir;
	int lockfd;        /* the directory, flock'ed so two servers never share a log */
	struct lfile *f;   /* every file, oldest first; the newest is the one appended to */
	size_t nf, capf;
	int fd;            /* the newest file open for writing, or -1 (next sync creates one) */
	uint64_t alloc;    /* size of the newest file, zero padding included */
	int roll;          /* the next sync starts a new file */
	int dirty;         /* a failed sync may have left bytes past the durable end */
	int warned_prealloc;
	int appended;      /* replay is only allowed before this */
	uint64_t durable_zxid; /* last zxid known durable (or bound after truncate_after) */
	uint64_t last_zxid;    /* last zxid appended, buffered or durable */
	struct buf pend;   /* framed records not yet durable */
	size_t pend_n;
	uint64_t pend_first;
};


static void fpath(const struct txnlog *l, uint64_t name, char *out, size_t n)
{
	snprintf(out, n, "%s/" NAME_PREFIX "%016" PRIx64, l->dir, name);
}

/* Room for one more file in the list, so that adding it later cannot fail. */
static int reserve_file(struct txnlog *l)
{
	if (l->nf == l->capf) {
		size_t nc = l->capf ? l->capf * 2 : 8;
		struct lfile *nf = realloc(l->f, nc * sizeof(*nf));
		if (!nf)
			return COORD_ENOMEM;
		l->f = nf;
		l->capf = nc;
	}
	return COORD_OK;
}

static int add_file(struct txnlog *l, uint64_t name)
{
	if (reserve_file(l) != COORD_OK)
		return COORD_ENOMEM;
	l->f[l->nf++] = (struct lfile){.name = name};
	return COORD_OK;
}

static struct lfile *newest(struct txnlog *l) { return l->nf ? &l->f[l->nf - 1] : NULL; }

/* zxid of a log record's body */
static uint64_t rec_zxid(const struct rec *r) { return rec_le64(r->body); }

/* ---- open and recovery ---- */

struct scan_result {
	int fault;          /* 0: clean end */
	const char *why;
	uint64_t off;       /* where the valid records end */
	uint64_t size;      /* file size */
	uint64_t first, last;
};

/* Check every record of one file. Returns 0, or -1/errno when the file cannot be read at all. */
static int scan_file(const char *path, uint64_t name, uint64_t prev, struct scan_result *res)
{
	const uint8_t *p;
	size_t n;
	int fd;
	memset(res, 0, sizeof(*res));
	if (recfile_map(path, &p, &n, &fd) < 0)
		return -1;
	res->size = n;
	struct rec_scan s;
	struct rec r;
	rec_scan_init(&s, p, n, ZXID_BYTES, 1);
	s.fd = fd;
	while (rec_scan_next(&s, &r)) {
		uint64_t z = rec_zxid(&r);
		/* A record that checks but breaks the order is as untrustworthy as a bad checksum. */
		if (z <= prev || z < name) {
			res->fault = 1;
			res->why = z <= prev ? "zxid not above the previous record's" : "zxid below the file's name";
			res->off = r.off;
			recfile_unmap(p, n);
			close(fd);
			return 0;
		}
		if (!res->first)
			res->first = z;
		res->last = prev = z;
	}
	res->off = s.off;
	if (s.status != REC_END) {
		res->fault = 1;
		res->why = rec_status_text(s.status);
	}
	recfile_unmap(p, n);
	close(fd);
	return 0;
}

/* Remove files[from..] from disk and from the list, newest first, so a crash midway still leaves
 * the log a prefix of itself. */
static int remove_files_from(struct txnlog *l, size_t from, int level, const char *why_fmt, uint64_t arg)
{
	char path[4096];
	while (l->nf > from) {
		struct lfile *x = &l->f[l->nf - 1];
		if (l->fd >= 0) {
			/* The open file is always the newest, the first to go. */
			close(l->fd);
			l->fd = -1;
			l->dirty = 0;
			l->roll = 0;
		}
		fpath(l, x->name, path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT) {
			LOG_ERROR("%s: cannot remove it: %s; remove it by hand before starting coordd again", path,
				  strerror(errno));
			return COORD_EIO;
		}
		coord_log(level, why_fmt, path, arg);
		l->nf--;
	}
	if (recfile_fsync_dir(l->dir) < 0) {
		LOG_ERROR("%s: fsync of the directory failed: %s; %s", l->dir, strerror(errno), rec_io_advice(errno));
		return COORD_EIO;
	}
	return COORD_OK;
}

static int cut_file(const char *path, uint64_t off)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)off) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

int txnlog_open(const char *dir, struct txnlog **out, uint64_t *last_zxid, char *err, size_t errlen)
{
	*out = NULL;
	*last_zxid = 0;
	if (strlen(dir) > MAX_DIR_LEN) {
		coord_seterr(err, errlen, "the log directory name %s is too long: use a shorter dataLogDir", dir);
		return COORD_EBADARG;
	}
	if (recfile_mkdirs(dir) < 0) {
		coord_seterr(err, errlen, "cannot create the log directory %s: %s; check dataLogDir and its permissions",
		       dir, strerror(errno));
		return COORD_EIO;
	}
	struct txnlog *l = calloc(1, sizeof(*l));
	if (!l || !(l->dir = strdup(dir))) {
		free(l);
		coord_seterr(err, errlen, "out of memory opening the log in %s", dir);
		return COORD_ENOMEM;
	}
	l->fd = -1;
	l->lockfd = -1;
	buf_init(&l->pend);
	uint64_t *names = NULL;
	size_t nn = 0;
	char path[4096];
	int rc = COORD_EIO;

	l->lockfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->lockfd < 0) {
		coord_seterr(err, errlen, "cannot open the log directory %s: %s; check its permissions", dir, strerror(errno));
		goto fail;
	}
	if (flock(l->lockfd, LOCK_EX | LOCK_NB) < 0) {
		coord_seterr(err, errlen,
		       "the log directory %s is in use by another process (another coordd?): stop it, or give each "
		       "server its own dataLogDir",
		       dir);
		goto fail;
	}
	if (recfile_list(dir, NAME_PREFIX, "", &names, &nn) < 0) {
		coord_seterr(err, errlen, "cannot list the log directory %s: %s; check its permissions", dir, strerror(errno));
		goto fail;
	}

	uint64_t prev = 0;
	for (size_t i = 0; i < nn; i++) {
		if (add_file(l, names[i]) != COORD_OK) {
			coord_seterr(err, errlen, "out of memory opening the log in %s", dir);
			rc = COORD_ENOMEM;
			goto fail;
		}
		fpath(l, names[i], path, sizeof(path));
		struct scan_result sr;
		if (scan_file(path, names[i], prev, &sr) < 0) {
			/* Unreadable is not corrupt: cutting would destroy what may be fine on a good day. */
			coord_seterr(err, errlen, "cannot read the log file %s: %s; %s, then start coordd again", path,
			       strerror(errno), rec_io_advice(errno));
			goto fail;
		}
		struct lfile *x = newest(l);
		x->first = sr.first;
		x->last = sr.last;
		x->end = sr.off;
		if (sr.last)
			prev = sr.last;
		if (!sr.fault && !sr.first && i + 1 < nn) {
			/* Only the newest file can lack records (a crash right after creating it). */
			sr.fault = 1;
			sr.why = "no records in a file that is not the newest";
		}
		if (!sr.fault)
			continue;
		LOG_WARN("%s: %s at byte %" PRIu64 ": cutting the %" PRIu64 " bytes from there to the end of the file; "
			 "the last good zxid is 0x%" PRIx64,
			 path, sr.why, sr.off, sr.size - sr.off, prev);
		if (cut_file(path, sr.off) < 0) {
			coord_seterr(err, errlen, "cannot cut the damaged tail of the log file %s at byte %" PRIu64 ": %s; %s",
			       path, sr.off, strerror(errno), rec_io_advice(errno));
			goto fail;
		}
		/* Records after a hole may depend on what the hole held: they go too. */
		for (size_t j = i + 1; j < nn; j++)
			if (add_file(l, names[j]) != COORD_OK) {
				coord_seterr(err, errlen, "out of memory opening the log in %s", dir);
				rc = COORD_ENOMEM;
				goto fail;
			}
		if (remove_files_from(l, i + 1, COORD_LOG_WARN, "%s: removed: it comes after damaged records (last good zxid 0x%" PRIx64
						") and records after a hole cannot be trusted",
				      prev) != COORD_OK) {
			coord_seterr(err, errlen, "cannot remove the log files after the damaged one in %s; see the log above", dir);
			rc = COORD_EIO;
			goto fail;
		}
		break;
	}
	free(names);
	names = NULL;

	struct lfile *x = newest(l);
	if (x && !x->first) {
		/* Created, then a crash before its first batch was durable: nothing to keep. */
		if (remove_files_from(l, l->nf - 1, COORD_LOG_INFO, "%s: removed: it holds no records (last zxid 0x%" PRIx64 ")", prev) !=
		    COORD_OK) {
			coord_seterr(err, errlen, "cannot remove the empty log file in %s; see the log above", dir);
			goto fail;
		}
		x = newest(l);
	}
	if (x) {
		fpath(l, x->name, path, sizeof(path));
		l->fd = open(path, O_RDWR | O_CLOEXEC);
		struct stat st;
		if (l->fd < 0 || fstat(l->fd, &st) < 0) {
			coord_seterr(err, errlen, "cannot open the log file %s for writing: %s; %s", path, strerror(errno),
			       rec_io_advice(errno));
			goto fail;
		}
		l->alloc = (uint64_t)st.st_size;
	}
	l->durable_zxid = l->last_zxid = prev;
	*last_zxid = prev;
	LOG_INFO("%s: transaction log opened: %zu file(s), zxid 0x%" PRIx64 " to 0x%" PRIx64, dir, l->nf,
		 txnlog_first_zxid(l), prev);
	*out = l;
	return COORD_OK;
fail:
	free(names);
	txnlog_close(l);
	return rc;
}

/* ---- replay ---- */

int txnlog_replay(struct txnlog *l, uint64_t after,
		  int (*cb)(void *arg, uint64_t zxid, const uint8_t *payload, size_t len), void *arg)
{
	if (l->appended) {
		LOG_ERROR("%s: txnlog_replay called after an append; replay must come first", l->dir);
		return COORD_EBADARG;
	}
	char path[4096];
	for (size_t i = 0; i < l->nf; i++) {
		const struct lfile *x = &l->f[i];
		if (!x->last || x->last <= after)
			continue;
		fpath(l, x->name, path, sizeof(path));
		const uint8_t *p;
		size_t n;
		if (recfile_map(path, &p, &n, NULL) < 0) {
			LOG_ERROR("%s: cannot read the log file: %s; %s", path, strerror(errno), rec_io_advice(errno));
			return COORD_EIO;
		}
		if (n < x->end) {
			LOG_ERROR("%s: shorter (%zu bytes) than when it was checked (%" PRIu64 "): was it changed by "
				  "something else? Restart coordd to check it again",
				  path, n, x->end);
			recfile_unmap(p, n);
			return COORD_EIO;
		}
		/* The records were checked at open; checking again costs little and catches bit rot since. */
		struct rec_scan s;
		struct rec r;
		rec_scan_init(&s, p, (size_t)x->end, ZXID_BYTES, 1);
		while (rec_scan_next(&s, &r)) {
			uint64_t z = rec_zxid(&r);
			if (z <= after)
				continue;
			int rc = cb(arg, z, r.payload, r.len);
			if (rc) {
				recfile_unmap(p, n);
				return rc;
			}
		}
		recfile_unmap(p, n);
		if (s.status != REC_END) {
			LOG_ERROR("%s: %s at byte %zu, which checked fine at open: the disk may be failing; restart coordd "
				  "to cut the log there",
				  path, rec_status_text(s.status), s.off);
			return COORD_EIO;
		}
	}
	return COORD_OK;
}

/* ---- append and sync ---- */

int txnlog_append(struct txnlog *l, uint64_t zxid, const void *payload, size_t len)
{
	/* A zero length would read back as the end of the log; a txn always has a body. */
	if (len == 0 || len > REC_MAX_PAYLOAD || zxid <= l->last_zxid) {
		LOG_ERROR("%s: bad append: zxid 0x%" PRIx64 " after 0x%" PRIx64 ", %zu bytes (1 to %u allowed)", l->dir,
			  zxid, l->last_zxid, len, REC_MAX_PAYLOAD);
		return COORD_EBADARG;
	}
	size_t size = REC_HDR + ZXID_BYTES + len;
	if (buf_reserve(&l->pend, size)) {
		l->pend.oom = 0; /* the batch so far is intact; let the caller sync it or retry */
		return COORD_ENOMEM;
	}
	uint8_t *h = l->pend.p + l->pend.len;
	rec_put64(h + REC_HDR, zxid);
	memcpy(h + REC_HDR + ZXID_BYTES, payload, len);
	rec_frame(h, h + REC_HDR, ZXID_BYTES + len, ZXID_BYTES);
	l->pend.len += size;
	if (!l->pend_n++)
		l->pend_first = zxid;
	l->last_zxid = zxid;
	l->appended = 1;
	return COORD_OK;
}

static int create_file(struct txnlog *l)
{
	char path[4096];
	if (reserve_file(l) != COORD_OK)
		return COORD_ENOMEM;
	struct lfile *x = newest(l);
	if (x && !x->first) {
		/*
		 * The newest file is still empty (its first batch failed and was discarded): reuse it if
		 * its name fits, else replace it, so that a name stays a lower bound of the file's zxids.
		 */
		if (l->fd >= 0 && x->name == l->pend_first) {
			l->roll = 0;
			return COORD_OK;
		}
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		l->dirty = 0;
		fpath(l, x->name, path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT) {
			int e = errno;
			LOG_ERROR("%s: cannot remove this empty log file: %s; %s", path, strerror(e), rec_io_advice(e));
			return rec_io_code(e);
		}
		l->nf--;
		x = newest(l);
	}
	if (l->fd >= 0 && l->dirty) {
		/*
		 * A failed batch may have left records past the old file's durable end. They must be gone
		 * for good before the batch is written to the new file: at recovery they would come first,
		 * and the new file, repeating their zxids, would look out of order and be thrown away.
		 */
		fpath(l, x->name, path, sizeof(path));
		if (recfile_ftruncate(l->fd, (off_t)x->end) < 0 || recfile_fdatasync(l->fd) < 0) {
			int e = errno;
			LOG_ERROR("%s: cannot cut the failed batch back to byte %" PRIu64 ": %s; %s", path, x->end,
				  strerror(e), rec_io_advice(e));
			return rec_io_code(e);
		}
		l->alloc = x->end;
		l->dirty = 0;
	}
	fpath(l, l->pend_first, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		LOG_ERROR("%s: cannot create the log file: %s; %s", path, strerror(e),
			  e == EEXIST ? "a file of that name should not be there: move it away" : rec_io_advice(e));
		return rec_io_code(e);
	}
	/* Without this the name may vanish in a crash, taking records fdatasync'ed into it along. */
	if (recfile_fsync_dir(l->dir) < 0) {
		int e = errno;
		LOG_ERROR("%s: fsync of the directory after creating %s failed: %s; %s", l->dir, path, strerror(e),
			  rec_io_advice(e));
		close(fd);
		unlink(path);
		return rec_io_code(e);
	}
	if (l->fd >= 0) {
		/*
		 * The old file is done with: give back its unused zero padding. Best effort: if the trim is
		 * lost in a crash the zeros still read back as the end of its records.
		 */
		if (x->end < l->alloc)
			(void)!ftruncate(l->fd, (off_t)x->end);
		close(l->fd);
	}
	add_file(l, l->pend_first); /* cannot fail: reserved above */
	l->fd = fd;
	l->alloc = 0;
	l->roll = 0;
	l->dirty = 0;
	l->warned_prealloc = 0;
	return COORD_OK;
}

/* Grow the newest file in zeroed chunks so that fdatasync seldom has a size to update. */
static void preallocate(struct txnlog *l, uint64_t need)
{
	uint64_t target = (need + PREALLOC_CHUNK - 1) / PREALLOC_CHUNK * PREALLOC_CHUNK;
	if (fallocate(l->fd, 0, (off_t)l->alloc, (off_t)(target - l->alloc)) == 0) {
		l->alloc = target;
		return;
	}
	int e = errno;
	if (e != ENOSPC && e != EDQUOT) {
		/* A file system without fallocate: write the zeros ourselves. */
		static const uint8_t zeros[64 << 10];
		uint64_t at = l->alloc;
		while (at < target) {
			size_t n = target - at < sizeof(zeros) ? (size_t)(target - at) : sizeof(zeros);
			if (recfile_pwrite_all(l->fd, zeros, n, at) < 0)
				break;
			at += n;
		}
		if (at == target) {
			l->alloc = target;
			return;
		}
		e = errno;
		(void)!ftruncate(l->fd, (off_t)l->alloc);
	}
	/*
	 * No room for a whole chunk is no reason to refuse a small batch: write it without padding
	 * (its fdatasync then also updates the size) and let the write say whether it fits.
	 */
	if (!l->warned_prealloc) {
		char path[4096];
		fpath(l, newest(l)->name, path, sizeof(path));
		LOG_WARN("%s: cannot preallocate %" PRIu64 " MiB: %s; writing without it (slower syncs)%s", path,
			 (uint64_t)(PREALLOC_CHUNK >> 20), strerror(e), e == ENOSPC || e == EDQUOT ? ": free space on that disk" : "");
		l->warned_prealloc = 1;
	}
}

int txnlog_sync(struct txnlog *l)
{
	if (!l->pend.len)
		return COORD_OK;
	int rc;
	if (l->fd < 0 || l->roll || !newest(l)->first) {
		if ((rc = create_file(l)) != COORD_OK)
			return rc;
	}
	struct lfile *x = newest(l);
	char path[4096];
	const char *what;
	if (l->dirty) {
		/*
		 * A failed batch may have left records past the durable end, some perhaps already on disk:
		 * cut them before writing anything after them, and rewrite the whole batch, since the page
		 * cache may hold a copy the kernel silently failed to write.
		 */
		if (recfile_ftruncate(l->fd, (off_t)x->end) < 0) {
			what = "cutting back to the durable end";
			goto fail;
		}
		l->alloc = x->end;
	}
	if (x->end + l->pend.len > l->alloc)
		preallocate(l, x->end + l->pend.len);
	if (recfile_pwrite_all(l->fd, l->pend.p, l->pend.len, x->end) < 0) {
		what = "write";
		goto fail;
	}
	if (x->end + l->pend.len > l->alloc)
		l->alloc = x->end + l->pend.len;
	if (recfile_fdatasync(l->fd) < 0) {
		what = "fdatasync";
		goto fail;
	}
	x->end += l->pend.len;
	if (!x->first)
		x->first = l->pend_first;
	x->last = l->last_zxid;
	l->durable_zxid = l->last_zxid;
	l->dirty = 0;
	l->pend_n = 0;
	if (l->pend.cap > KEEP_BUF_BYTES)
		buf_free(&l->pend);
	else
		buf_reset(&l->pend);
	return COORD_OK;
fail:;
	int e = errno;
	fpath(l, x->name, path, sizeof(path));
	LOG_ERROR("%s: %s failed at byte %" PRIu64 ": %s; %zu records (zxid 0x%" PRIx64 " to 0x%" PRIx64
		  ") are not durable and stay buffered for a retry; %s",
		  path, what, x->end, strerror(e), l->pend_n, l->pend_first, l->last_zxid, rec_io_advice(e));
	l->dirty = 1;
	/* Best effort now; the next sync cuts again before writing, and fails if it cannot. */
	if (recfile_ftruncate(l->fd, (off_t)x->end) == 0)
		l->alloc = x->end;
	return rec_io_code(e);
}

void txnlog_discard(struct txnlog *l)
{
	buf_reset(&l->pend);
	l->pend_n = 0;
	l->last_zxid = l->durable_zxid;
	/* l->dirty stays: the next sync still cuts whatever the failed batch left behind. */
}

int txnlog_roll(struct txnlog *l)
{
	/* An empty newest file is as good as a new one. */
	if (l->fd >= 0 && newest(l)->first)
		l->roll = 1;
	return COORD_OK;
}

/* ---- truncate and purge ---- */

/* Offset of the first record with zxid > z in the file (its valid part), and the zxid before it. */
static int find_cut(const struct txnlog *l, const struct lfile *x, uint64_t z, uint64_t *off, uint64_t *last)
{
	char path[4096];
	fpath(l, x->name, path, sizeof(path));
	const uint8_t *p;
	size_t n;
	if (recfile_map(path, &p, &n, NULL) < 0) {
		LOG_ERROR("%s: cannot read the log file to truncate it: %s; %s", path, strerror(errno), rec_io_advice(errno));
		return COORD_EIO;
	}
	if (n < x->end) {
		LOG_ERROR("%s: shorter than its checked records: was it changed by something else? Restart coordd", path);
		recfile_unmap(p, n);
		return COORD_EIO;
	}
	struct rec_scan s;
	struct rec r;
	rec_scan_init(&s, p, (size_t)x->end, ZXID_BYTES, 1);
	*off = 0;
	*last = 0;
	while (rec_scan_next(&s, &r)) {
		if (rec_zxid(&r) > z)
			break;
		*off = s.off;
		*last = rec_zxid(&r);
	}
	int bad = s.status != REC_OK && s.status != REC_END;
	recfile_unmap(p, n);
	if (bad) {
		LOG_ERROR("%s: %s at byte %zu, which checked fine at open: the disk may be failing; restart coordd", path,
			  rec_status_text(s.status), s.off);
		return COORD_EIO;
	}
	return COORD_OK;
}

int txnlog_truncate_after(struct txnlog *l, uint64_t zxid)
{
	/* Buffered records first: keep the ones at or below zxid, in order. */
	{
		size_t off = 0, n = 0;
		uint64_t last = 0;
		while (off < l->pend.len) {
			const uint8_t *h = l->pend.p + off;
			uint64_t z = rec_le64(h + REC_HDR);
			if (z > zxid)
				break;
			last = z;
			off += REC_HDR + ZXID_BYTES + rec_le32(h);
			n++;
		}
		l->pend.len = off;
		l->pend_n = n;
		if (l->durable_zxid > zxid)
			l->durable_zxid = zxid;
		l->last_zxid = n ? last : l->durable_zxid;
	}
	/* Whole files after zxid go, newest first, so a crash midway leaves a prefix of the log. */
	size_t keep = l->nf;
	while (keep > 0 && (l->f[keep - 1].name > zxid || l->f[keep - 1].first > zxid))
		keep--;
	if (keep < l->nf) {
		int rc = remove_files_from(l, keep, COORD_LOG_INFO, "%s: removed: every record in it is after zxid 0x%" PRIx64, zxid);
		if (rc != COORD_OK)
			return rc;
	}
	/* Then the tail of the file that holds zxid: only after the later files are gone. */
	struct lfile *x = newest(l);
	if (x && x->last > zxid) {
		uint64_t off, last;
		int rc = find_cut(l, x, zxid, &off, &last);
		if (rc != COORD_OK)
			return rc;
		char path[4096];
		fpath(l, x->name, path, sizeof(path));
		if (l->fd >= 0 ? ftruncate(l->fd, (off_t)off) < 0 || fsync(l->fd) < 0 : cut_file(path, off) < 0) {
			int e = errno;
			LOG_ERROR("%s: cannot cut the log after zxid 0x%" PRIx64 " at byte %" PRIu64 ": %s; %s", path, zxid,
				  off, strerror(e), rec_io_advice(e));
			return rec_io_code(e);
		}
		LOG_INFO("%s: cut after zxid 0x%" PRIx64 " at byte %" PRIu64, path, zxid, off);
		x->end = off;
		x->last = last;
		if (l->fd >= 0) {
			l->alloc = off;
			l->dirty = 0;
		}
	}
	return COORD_OK;
}

int txnlog_purge(struct txnlog *l, uint64_t upto)
{
	char path[4096];
	size_t k = 0;
	int rc = COORD_OK;
	while (k < l->nf) {
		const struct lfile *x = &l->f[k];
		/* The file being appended to stays, covered or not; after a roll it is fair game. */
		if ((k == l->nf - 1 && l->fd >= 0 && !l->roll) || !x->last || x->last > upto)
			break;
		fpath(l, x->name, path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT) {
			LOG_WARN("%s: cannot purge it: %s; it will be tried again at the next purge", path, strerror(errno));
			rc = COORD_EIO;
			break;
		}
		LOG_INFO("%s: purged: a snapshot covers its records (up to zxid 0x%" PRIx64 ")", path, x->last);
		if (k == l->nf - 1 && l->fd >= 0) {
			close(l->fd);
			l->fd = -1;
			l->roll = 0;
			l->dirty = 0;
		}
		k++;
	}
	if (k) {
		memmove(l->f, l->f + k, (l->nf - k) * sizeof(*l->f));
		l->nf -= k;
		/* Not vital (a purged file that comes back is purged again), but keeps the directory honest. */
		if (recfile_fsync_dir(l->dir) < 0)
			LOG_WARN("%s: fsync of the directory after purging failed: %s", l->dir, strerror(errno));
	}
	return rc;
}

uint64_t txnlog_first_zxid(const struct txnlog *l)
{
	for (size_t i = 0; i < l->nf; i++)
		if (l->f[i].first)
			return l->f[i].first;
	return 0;
}

void txnlog_close(struct txnlog *l)
{
	if (!l)
		return;
	if (l->fd >= 0) {
		/* Leave no half-written failed batch behind, if we can (reopen would cut it anyway). */
		if (l->dirty && l->nf)
			(void)!ftruncate(l->fd, (off_t)newest(l)->end);
		close(l->fd);
	}
	if (l->lockfd >= 0)
		close(l->lockfd); /* drops the flock */
	buf_free(&l->pend);
	free(l->f);
	free(l->dir);
	free(l);
}
