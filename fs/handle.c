/*
 * handle.c: open files, their buffers and their commits (see handle.h).
 */
#include "handle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "cache.h"
#include "err.h"
#include "inode.h"
#include "inval.h"
#include "log.h"
#include "loop.h"
#include "pollfile.h"
#include "ops.h"
#include "session.h"

struct handle *handle_new(int kind, uint64_t ino)
{
	struct handle *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->kind = kind;
	h->ino = ino;
	pthread_mutex_init(&h->mu, NULL);
	return h;
}

void handle_free(struct coordfs *fs, struct handle *h)
{
	if (!h)
		return;
	if (h->kind == H_FILE) {
		pthread_mutex_lock(&fs->mu);
		struct inode *in = inode_get(fs->it, h->ino);
		if (in) {
			if (h->pc && in->pc_handles && --in->pc_handles == 0 && in->kern_deferred) {
				/* The last open of the old version is gone: now the kernel may forget it. */
				in->kern_deferred = 0;
				struct notice *nv = malloc(sizeof(*nv));
				if (nv) {
					nv[0] = (struct notice){NOTE_INODE, in->ino, NULL};
					in->kern_queued = inval_queue(fs, nv, 1, 0, NULL, 0, NULL);
				} else {
					inval_queue_flush(fs, NULL);
				}
			}
			if (h->counted && in->nopen)
				in->nopen--;
			inode_maybe_drop(fs->it, in);
		}
		pthread_mutex_unlock(&fs->mu);
	}
	blob_unref(h->blob);
	names_unref(h->kids);
	free(h->buf);
	free(h->text);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* The path of ino; -ENOENT when the table has no such inode, -ESTALE when it lost its name. */
static int path_of(struct coordfs *fs, uint64_t ino, char *buf, size_t size)
{
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, ino);
	int n = in ? inode_path(fs->it, in, buf, size) : -ENOENT;
	if (in && n == -ESTALE && in->deleted)
		n = -ENOENT;
	pthread_mutex_unlock(&fs->mu);
	return n;
}

/* The data of ino as the daemon's cache has it, or from the server (and then cached if it may be). */
static int fetch_blob(struct coordfs *fs, uint64_t ino, struct blob **out, struct coord_stat *st)
{
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, ino);
	if (in)
		handle_wait_commits(fs, in);
	in = inode_get(fs->it, ino);
	if (!in) {
		pthread_mutex_unlock(&fs->mu);
		return -ENOENT;
	}
	struct blob *b = cache_blob(fs, in);
	if (b) {
		*st = in->st;
		pthread_mutex_unlock(&fs->mu);
		*out = b;
		return 0;
	}
	pthread_mutex_unlock(&fs->mu);

	char path[COORD_MAX_PATH + 1];
	int n = path_of(fs, ino, path, sizeof(path));
	if (n < 0)
		return n;
	struct snap s;
	void *data = NULL;
	size_t len = 0;
	int rc = remote_get(fs, path, &data, &len, st, &s);
	if (rc)
		return -coord_errno(rc);
	if (st->ino != ino) {
		free(data);
		return -ESTALE;
	}
	b = blob_new(data, len, st->version, (uint64_t)st->mzxid);
	free(data);
	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(&fs->mu);
	in = inode_get(fs->it, ino);
	if (in)
		cache_fill_blob(fs, in, st, b, &s);
	pthread_mutex_unlock(&fs->mu);
	*out = b;
	return 0;
}

/*
 * A write the node's ACL forbids fails at open rather than at close, where `echo x > f` would
 * ignore it: one GETACL gives the permissions this mount's session holds (the server's view,
 * superUser included). A node whose ACL this session may not even read (neither r nor a) is
 * left to the commit to refuse.
 */
static int may_write(struct coordfs *fs, uint64_t ino)
{
	char path[COORD_MAX_PATH + 2];
	int n = ops_path(fs, ino, path, sizeof(path));
	if (n < 0)
		return n;
	unsigned perms = 0;
	int rc = remote_getacl(fs, path, NULL, &perms);
	if (rc == COORD_ENOAUTH)
		return 0;
	if (rc)
		return -coord_errno(rc);
	return (perms & COORD_PERM_WRITE) ? 0 : -EACCES;
}

int handle_open(struct coordfs *fs, uint64_t ino, int flags, int created, const struct coord_stat *st,
		struct handle **out)
{
	struct handle *h = handle_new(H_FILE, ino);
	if (!h)
		return -ENOMEM;
	int acc = flags & O_ACCMODE;
	h->readable = acc != O_WRONLY;
	h->writable = acc != O_RDONLY;
	if (h->writable)
		h->max = session_max_data(fs);
	int rc = h->writable && !created ? may_write(fs, ino) : 0;
	if (rc) {
		/* refused before anything was read or buffered */
	} else if (!h->writable) {
		rc = fetch_blob(fs, ino, &h->blob, &h->st);
	} else if (created || (flags & O_TRUNC)) {
		/* Nothing to read: the open starts from an empty file and sets it whole. */
		h->mode = (flags & O_APPEND) ? W_APPEND : W_SET;
		h->dirty = !created && (flags & O_TRUNC);
		if (created)
			h->st = *st;
	} else if ((flags & O_APPEND) && !h->readable) {
		h->mode = W_APPEND;
	} else {
		struct blob *b = NULL;
		rc = fetch_blob(fs, ino, &b, &h->st);
		if (rc == 0) {
			h->mode = (flags & O_APPEND) ? W_APPEND : W_CHECKED;
			h->version = h->st.version;
			if (h->mode == W_CHECKED && b->len) {
				h->buf = malloc(b->len);
				if (!h->buf)
					rc = -ENOMEM;
				else
					memcpy(h->buf, b->data, b->len);
				h->len = h->cap = b->len;
			} else if (h->mode == W_APPEND) {
				h->blob = blob_ref(b); /* what O_RDWR|O_APPEND reads see before the commit */
			}
			blob_unref(b);
		}
	}
	if (rc) {
		handle_free(fs, h);
		return rc;
	}
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, ino);
	if (in) {
		in->nopen++;
		h->counted = 1;
	}
	pthread_mutex_unlock(&fs->mu);
	*out = h;
	return 0;
}

void handle_open_reply_flags(struct coordfs *fs, struct handle *h, struct fuse_file_info *fi)
{
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 1; /* never drop the pages another open may be reading */
	fi->noflush = !h->writable;
	if (h->kind != H_FILE || h->writable || !h->blob)
		return;
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, h->ino);
	struct blob *cur = in ? cache_blob(fs, in) : NULL;
	if (cur && cur->version == h->blob->version && cur->mzxid == h->blob->mzxid && !inval_pending(fs, in)) {
		int same = in->pc_set && in->pc_version == h->blob->version && in->pc_mzxid == h->blob->mzxid;
		if (same || in->pc_handles == 0) {
			/* A new version takes over the page cache: the kernel drops the old pages now. */
			fi->keep_cache = same;
			fi->direct_io = 0;
			in->pc_set = 1;
			in->pc_version = h->blob->version;
			in->pc_mzxid = h->blob->mzxid;
			in->pc_size = (int64_t)h->blob->len;
			in->pc_handles++;
			h->pc = 1;
		}
	}
	pthread_mutex_unlock(&fs->mu);
	blob_unref(cur);
}

/* ---- reads and writes ---- */

ssize_t handle_read(struct handle *h, char *out, size_t size, off_t off)
{
	pthread_mutex_lock(&h->mu);
	const char *src;
	size_t len;
	if (h->kind == H_TEXT) {
		src = h->text;
		len = h->text_len;
	} else if (h->writable && h->mode != W_APPEND) {
		src = h->buf;
		len = h->len;
	} else if (h->blob) {
		src = h->blob->data;
		len = h->blob->len;
	} else {
		src = NULL;
		len = 0;
	}
	ssize_t n = 0;
	if (off >= 0 && (uint64_t)off < len) {
		n = (ssize_t)((len - (size_t)off) < size ? len - (size_t)off : size);
		memcpy(out, src + off, (size_t)n);
	}
	pthread_mutex_unlock(&h->mu);
	return n;
}

static int reserve(struct handle *h, size_t need)
{
	if (need <= h->cap)
		return 0;
	size_t c = h->cap ? h->cap : 4096;
	while (c < need)
		c *= 2;
	char *p = realloc(h->buf, c);
	if (!p)
		return -ENOMEM;
	h->buf = p;
	h->cap = c;
	return 0;
}

ssize_t handle_write(struct handle *h, const char *buf, size_t size, off_t off)
{
	if (off < 0)
		return -EINVAL;
	pthread_mutex_lock(&h->mu);
	ssize_t rc = (ssize_t)size;
	if (h->err) {
		rc = -h->err;
	} else if (h->mode == W_APPEND) {
		if (h->len + size > h->max) {
			h->err = EFBIG;
			rc = -EFBIG;
		} else if (reserve(h, h->len + size)) {
			rc = -ENOMEM;
		} else {
			memcpy(h->buf + h->len, buf, size);
			h->len += size;
			h->dirty = h->wrote = 1;
		}
	} else {
		uint64_t end = (uint64_t)off + size;
		if (end > h->max) {
			h->err = EFBIG;
			rc = -EFBIG;
		} else if (reserve(h, (size_t)end)) {
			rc = -ENOMEM;
		} else {
			if ((size_t)off > h->len)
				memset(h->buf + h->len, 0, (size_t)off - h->len);
			memcpy(h->buf + off, buf, size);
			if (end > h->len)
				h->len = (size_t)end;
			h->dirty = h->wrote = 1;
		}
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int handle_truncate(struct handle *h, off_t size)
{
	if (size < 0)
		return -EINVAL;
	pthread_mutex_lock(&h->mu);
	int rc = 0;
	if (h->err) {
		rc = -h->err;
	} else if ((uint64_t)size > h->max) {
		rc = -EFBIG;
	} else if (h->mode == W_APPEND) {
		/* Only "nothing appended yet, truncate to what is there" is meaningful; the file's
		 * data cannot be cut through an append-only open. */
		if (size != 0 || h->len)
			rc = -EINVAL;
	} else if (reserve(h, (size_t)size)) {
		rc = -ENOMEM;
	} else {
		if ((size_t)size > h->len)
			memset(h->buf + h->len, 0, (size_t)size - h->len);
		h->len = (size_t)size;
		h->dirty = h->wrote = 1;
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

off_t handle_size(struct handle *h)
{
	pthread_mutex_lock(&h->mu);
	off_t n;
	if (h->kind == H_TEXT)
		n = (off_t)h->text_len;
	else if (h->writable && h->mode != W_APPEND)
		n = (off_t)h->len;
	else if (h->blob)
		n = (off_t)h->blob->len + (h->mode == W_APPEND ? (off_t)h->len : 0);
	else
		n = (off_t)h->st.data_length;
	pthread_mutex_unlock(&h->mu);
	return n;
}

/* ---- commit ---- */

void handle_wait_commits(struct coordfs *fs, struct inode *in)
{
	if (!in->committing)
		return;
	loop_blocking();
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += 5;
	uint64_t ino = in->ino;
	while ((in = inode_get(fs->it, ino)) && in->committing)
		if (pthread_cond_timedwait(&fs->commit_cv, &fs->mu, &ts))
			break;
}

static void committing(struct coordfs *fs, uint64_t ino, int delta)
{
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, ino);
	if (in) {
		if (delta > 0)
			in->committing++;
		else if (in->committing && --in->committing == 0)
			pthread_cond_broadcast(&fs->commit_cv);
	}
	pthread_mutex_unlock(&fs->mu);
}

int handle_commit(struct coordfs *fs, struct handle *h, int at_close)
{
	if (h->kind != H_FILE || !h->writable)
		return 0;
	pthread_mutex_lock(&h->mu);
	if (h->err || !h->dirty || (at_close && !h->wrote)) {
		int err = h->err;
		pthread_mutex_unlock(&h->mu);
		return err;
	}
	char path[COORD_MAX_PATH + 1];
	int n = path_of(fs, h->ino, path, sizeof(path));
	if (n < 0) {
		h->err = -n;
		pthread_mutex_unlock(&h->mu);
		return -n;
	}
	committing(fs, h->ino, +1);
	struct snap s = {0, fs_epoch(fs)};
	struct coord_stat st;
	int rc;
	if (h->mode == W_APPEND)
		rc = remote_append(fs, path, h->buf, h->len, &st);
	else
		rc = remote_set(fs, path, h->buf, h->len, h->mode == W_CHECKED ? h->version : -1, &st);
	if (rc) {
		h->err = coord_errno(rc);
		LOG_DEBUG("commit of %s failed: %s", path, remote_last_error());
		committing(fs, h->ino, -1);
		pthread_mutex_unlock(&h->mu);
		return h->err;
	}
	h->dirty = 0;
	h->wrote = 0;
	h->version = st.version;
	h->st = st;
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, h->ino);
	if (in && st.ino == in->ino) {
		if (h->mode == W_APPEND)
			cache_fill_stat(fs, in, &st, &s);
		else
			cache_fill_data(fs, in, &st, h->buf, h->len, &s);
	}
	pthread_mutex_unlock(&fs->mu);
	committing(fs, h->ino, -1);
	if (h->mode == W_APPEND)
		h->len = 0;
	pthread_mutex_unlock(&h->mu);
	return 0;
}
