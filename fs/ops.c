/*
 * ops.c: the FUSE low-level operations: names, attributes, opens, reads and writes, directories.
 *
 * Every reply that lets the kernel cache something (an entry, attributes, an open's page-cache
 * flags) is computed and written while fs->reply_lock is read-held, and carries a long timeout
 * only if, at that moment, the daemon's cache holds exactly what is replied; otherwise timeout 0.
 * Together with the invalidation thread's write-lock barrier, a change's notice can never be
 * overtaken by a reply that was computed before the change (see fs.h, inval.h).
 *
 * Path operations answer ESTALE when the server's node at the path has a different ino than the
 * inode the kernel asked about (renamed or replaced on another host); Linux then walks the path
 * again with revalidation and finds the new node.
 */
#include "ops.h"

#include <errno.h>
#include <linux/fuse.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "err.h"
#include "handle.h"
#include "history.h"
#include "inode.h"
#include "inval.h"
#include "log.h"
#include "path.h"
#include "pollfile.h"
#include "session.h"
#include "special.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define PATHBUF (COORD_MAX_PATH + 2)

static struct handle *fh_of(const struct fuse_file_info *fi)
{
	return fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
}

/* ---- attributes ---- */

void ops_stat_to_attr(const struct coordfs *fs, const struct coord_stat *zs, struct stat *a)
{
	memset(a, 0, sizeof(*a));
	a->st_ino = zs->ino;
	if (zs->kind == COORD_KIND_DIR) {
		a->st_mode = S_IFDIR | 0755;
		/* POSIX-style: 2 + subdirectories; children are counted as if all were directories,
		 * never fewer, so tools that skip leaves by link count never skip a directory. */
		a->st_nlink = 2 + (nlink_t)(zs->num_children > 0 ? zs->num_children : 0);
	} else {
		a->st_mode = S_IFREG | 0644;
		a->st_nlink = 1;
	}
	a->st_size = zs->data_length;
	a->st_blocks = (a->st_size + 511) / 512;
	a->st_blksize = 4096;
	a->st_uid = fs->uid;
	a->st_gid = fs->gid;
	struct timespec m = {(time_t)(zs->mtime / 1000), (long)(zs->mtime % 1000) * 1000000L};
	a->st_mtim = m;
	a->st_ctim = m;
	a->st_atim = m;
}

static int same_stat(const struct coord_stat *a, const struct coord_stat *b)
{
	return a->ino == b->ino && a->version == b->version && a->mzxid == b->mzxid && a->pzxid == b->pzxid &&
	       a->cversion == b->cversion;
}

/*
 * The attributes the kernel may be told for `in`: while page-cached opens of an older version are
 * open, the kernel keeps that version's pages, so it must keep that version's size too (a smaller
 * size would cut those opens' reads short); returns 0 then (reply with timeout 0). fs->mu held.
 */
static int kernel_attr(const struct coordfs *fs, const struct inode *in, const struct coord_stat *st,
		       struct stat *a)
{
	ops_stat_to_attr(fs, st, a);
	if (in && in->pc_handles && in->pc_set &&
	    (in->pc_version != st->version || in->pc_mzxid != (uint64_t)st->mzxid)) {
		a->st_size = in->pc_size;
		a->st_blocks = (a->st_size + 511) / 512;
		return 0;
	}
	return 1;
}

/* Does the daemon's cache hold exactly st for ino right now? fs->mu held. */
static int cached_exactly(struct coordfs *fs, uint64_t ino, const struct coord_stat *st)
{
	struct inode *in = inode_get(fs->it, ino);
	return in && cache_stat_valid(fs, in) && same_stat(&in->st, st);
}

/* ---- paths ---- */

int ops_path(struct coordfs *fs, uint64_t ino, char *buf, size_t size)
{
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, ino);
	int n = in ? inode_path(fs->it, in, buf, size) : -ENOENT;
	if (in && n == -ESTALE && in->deleted)
		n = -ENOENT;
	pthread_mutex_unlock(&fs->mu);
	return n;
}

/* Check a name and build parent's path + "/" + name. */
static int child_path(struct coordfs *fs, uint64_t parent, const char *name, char *buf, size_t size)
{
	size_t nl = strlen(name);
	if (nl > COORD_MAX_NAME)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&fs->mu);
	struct inode *p = inode_get(fs->it, parent);
	int n = p ? inode_child_path(fs->it, p, name, buf, size) : -ENOENT;
	pthread_mutex_unlock(&fs->mu);
	if (n < 0)
		return n;
	int rc = coord_path_check(buf, (size_t)n, 0, NULL, 0);
	if (rc)
		return -coord_errno(rc);
	return n;
}

/* The name at `in`'s place now leads elsewhere: forget it here and in the kernel. fs->mu held. */
static void forget_name_locked(struct coordfs *fs, struct inode *in)
{
	if (!in->d)
		return;
	struct notice *nv = malloc(sizeof(*nv));
	char *name = strdup(in->d->name);
	uint64_t parent = in->d->parent;
	inode_detach(fs->it, in);
	cache_forget_inode(in, itable_lru(fs->it));
	if (nv && name) {
		nv[0] = (struct notice){NOTE_ENTRY, parent, name};
		inval_queue(fs, nv, 1, 0, NULL, 0, NULL);
	} else {
		free(nv);
		free(name);
		inval_queue_flush(fs, NULL);
	}
}

static void went_stale(struct coordfs *fs, uint64_t ino)
{
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, ino);
	if (in)
		forget_name_locked(fs, in);
	pthread_mutex_unlock(&fs->mu);
}

int ops_node_stat(struct coordfs *fs, uint64_t ino, struct coord_stat *st, char *path, size_t pathlen)
{
	char pbuf[PATHBUF];
	if (!path) {
		path = pbuf;
		pathlen = sizeof(pbuf);
	}
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, ino);
	if (in)
		handle_wait_commits(fs, in);
	in = inode_get(fs->it, ino);
	if (!in) {
		pthread_mutex_unlock(&fs->mu);
		return -ENOENT;
	}
	int n = inode_path(fs->it, in, path, pathlen);
	if (n == -ESTALE && in->deleted)
		n = -ENOENT;
	if (n >= 0 && cache_stat_valid(fs, in)) {
		*st = in->st;
		pthread_mutex_unlock(&fs->mu);
		return 0;
	}
	pthread_mutex_unlock(&fs->mu);
	if (n < 0)
		return n;
	struct snap s;
	int rc = remote_exists(fs, path, st, &s);
	if (rc)
		return -coord_errno(rc);
	if (st->ino != ino) {
		went_stale(fs, ino);
		return -ESTALE;
	}
	pthread_mutex_lock(&fs->mu);
	in = inode_get(fs->it, ino);
	if (in)
		cache_fill_stat(fs, in, st, &s);
	pthread_mutex_unlock(&fs->mu);
	return 0;
}

/* ---- entries ---- */

/* fs->mu held (in may be NULL). */
static void fill_entry(struct coordfs *fs, struct fuse_entry_param *e, const struct inode *in,
		       const struct coord_stat *st, int cacheable)
{
	memset(e, 0, sizeof(*e));
	e->ino = st->ino;
	e->generation = 1;
	int same = kernel_attr(fs, in, st, &e->attr);
	e->attr_timeout = cacheable && same ? FS_CACHE_TIMEOUT : 0;
	e->entry_timeout = cacheable ? FS_CACHE_TIMEOUT : 0;
}

static void reply_special_entry(fuse_req_t req, struct coordfs *fs, int id)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = special_ino(id);
	e.generation = 1;
	special_attr(fs, id, &e.attr);
	e.attr_timeout = e.entry_timeout = FS_CACHE_TIMEOUT;
	fuse_reply_entry(req, &e);
}

/*
 * Give `in` the name (parent, name). If it had another name, the node moved (on another host, or
 * names were exchanged) and the kernel may still resolve the old name to it: that name goes.
 * fs->mu held.
 */
static void relink(struct coordfs *fs, struct inode *in, uint64_t parent, const char *name)
{
	size_t len = strlen(name);
	if (in->d && !(in->d->parent == parent && in->d->len == len && !memcmp(in->d->name, name, len))) {
		struct notice *nv = malloc(sizeof(*nv));
		char *old = strdup(in->d->name);
		if (nv && old) {
			nv[0] = (struct notice){NOTE_ENTRY, in->d->parent, old};
			in->kern_queued = inval_queue(fs, nv, 1, 0, NULL, 0, NULL);
		} else {
			free(nv);
			free(old);
			inval_queue_flush(fs, NULL);
		}
	}
	inode_link(fs->it, in, parent, name, len);
}

/*
 * The kernel now refers to st->ino by (parent, name): make it the inode's name, count the lookup,
 * and reply. A reply the cache does not vouch for gets timeout 0. `s` is the snapshot the stat
 * was read at (NULL: it comes from this mount's own write, which the event already announced).
 */
static void reply_new_entry(fuse_req_t req, struct coordfs *fs, uint64_t parent, const char *name,
			    const struct coord_stat *st, const struct snap *s, int force_uncached,
			    struct fuse_file_info *fi, struct handle *h)
{
	struct fuse_entry_param e;
	pthread_rwlock_rdlock(&fs->reply_lock);
	pthread_mutex_lock(&fs->mu);
	struct inode *dir = inode_get(fs->it, parent);
	struct inode *in = inode_obtain(fs->it, st->ino, st->kind);
	if (!in || !dir) {
		pthread_mutex_unlock(&fs->mu);
		pthread_rwlock_unlock(&fs->reply_lock);
		if (h)
			handle_free(fs, h);
		fuse_reply_err(req, in ? ENOENT : ENOMEM);
		return;
	}
	struct snap own = {0, s ? s->epoch : fs->epoch};
	if (!s)
		s = &own;
	int ok = cache_accept_name(fs, dir, st, s);
	if (!in->d || ok)
		relink(fs, in, parent, name);
	if (ok)
		cache_fill_stat(fs, in, st, s);
	in->nlookup++;
	int cacheable = ok && !force_uncached && cached_exactly(fs, st->ino, st);
	fill_entry(fs, &e, in, st, cacheable);
	pthread_mutex_unlock(&fs->mu);
	if (fi) {
		handle_open_reply_flags(fs, h, fi);
		if (force_uncached)
			e.entry_timeout = 0;
		if (fuse_reply_create(req, &e, fi) != 0)
			handle_free(fs, h);
	} else {
		fuse_reply_entry(req, &e);
	}
	pthread_rwlock_unlock(&fs->reply_lock);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct coordfs *fs = fs_of(req);
	if (history_owns(parent)) {
		history_lookup(req, parent, name);
		return;
	}
	if (parent == FUSE_ROOT_ID && name[0] == '.') {
		int id = special_lookup(name);
		if (id)
			reply_special_entry(req, fs, id);
		else
			fuse_reply_err(req, ENOENT);
		return;
	}
	char path[PATHBUF];
	int n = child_path(fs, parent, name, path, sizeof(path));
	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	size_t nl = strlen(name);
	struct fuse_entry_param e;
	/* The daemon's cache first. */
	pthread_rwlock_rdlock(&fs->reply_lock);
	pthread_mutex_lock(&fs->mu);
	struct dentry *d = dentry_find(fs->it, parent, name, nl);
	if (d && !d->ino && d->epoch == fs->epoch) {
		pthread_mutex_unlock(&fs->mu);
		memset(&e, 0, sizeof(e));
		e.entry_timeout = FS_CACHE_TIMEOUT;
		fuse_reply_entry(req, &e);
		pthread_rwlock_unlock(&fs->reply_lock);
		return;
	}
	struct inode *in = d && d->ino ? inode_get(fs->it, d->ino) : NULL;
	if (in && cache_stat_valid(fs, in)) {
		in->nlookup++;
		fill_entry(fs, &e, in, &in->st, 1);
		pthread_mutex_unlock(&fs->mu);
		fuse_reply_entry(req, &e);
		pthread_rwlock_unlock(&fs->reply_lock);
		return;
	}
	int known_file = in && in->kind == COORD_KIND_FILE;
	pthread_mutex_unlock(&fs->mu);
	pthread_rwlock_unlock(&fs->reply_lock);

	struct coord_stat st;
	struct snap s;
	int rc;
	if (known_file) {
		/* A file known here whose stat went stale (it changed): fetch its data along, the open
		 * that usually follows then needs no second trip to the server. */
		void *data = NULL;
		size_t len = 0;
		rc = remote_get(fs, path, &data, &len, &st, &s);
		if (rc == COORD_OK) {
			pthread_mutex_lock(&fs->mu);
			struct inode *fin = inode_get(fs->it, st.ino);
			if (fin && fin->kind == COORD_KIND_FILE)
				cache_fill_data(fs, fin, &st, data, len, &s);
			pthread_mutex_unlock(&fs->mu);
		}
		free(data);
	} else {
		rc = remote_exists(fs, path, &st, &s);
	}
	if (rc == COORD_ENONODE) {
		pthread_rwlock_rdlock(&fs->reply_lock);
		pthread_mutex_lock(&fs->mu);
		struct inode *dir = inode_get(fs->it, parent);
		int ok = dir && cache_accept_name(fs, dir, NULL, &s) &&
			 dentry_set_negative(fs->it, parent, name, nl, fs->epoch) == 0;
		pthread_mutex_unlock(&fs->mu);
		memset(&e, 0, sizeof(e));
		e.entry_timeout = ok ? FS_CACHE_TIMEOUT : 0;
		fuse_reply_entry(req, &e);
		pthread_rwlock_unlock(&fs->reply_lock);
		return;
	}
	if (rc) {
		fuse_reply_err(req, coord_errno(rc));
		return;
	}
	reply_new_entry(req, fs, parent, name, &st, &s, 0, NULL, NULL);
}

static void forget_one(struct coordfs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	if (ino & FS_SPECIAL_BIT) {
		history_forget(fs, ino, nlookup);
		return;
	}
	struct inode *in = inode_get(fs->it, ino);
	if (!in)
		return;
	in->nlookup = in->nlookup > nlookup ? in->nlookup - nlookup : 0;
	inode_maybe_drop(fs->it, in);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct coordfs *fs = fs_of(req);
	pthread_mutex_lock(&fs->mu);
	forget_one(fs, ino, nlookup);
	pthread_mutex_unlock(&fs->mu);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct coordfs *fs = fs_of(req);
	pthread_mutex_lock(&fs->mu);
	for (size_t i = 0; i < count; i++)
		forget_one(fs, forgets[i].ino, forgets[i].nlookup);
	pthread_mutex_unlock(&fs->mu);
	fuse_reply_none(req);
}

/* ---- attributes ---- */

static void reply_node_attr(fuse_req_t req, struct coordfs *fs, fuse_ino_t ino, struct handle *h)
{
	struct coord_stat st;
	int rc = ops_node_stat(fs, ino, &st, NULL, 0);
	struct stat a;
	if (h && h->kind == H_FILE) {
		/* fstat: the size this open sees; the node itself may be gone or newer. */
		int own = h->writable || (h->blob && (rc || st.version != h->blob->version));
		if (own) {
			if (rc)
				st = h->st;
			if (!st.ino) {
				fuse_reply_err(req, -rc);
				return;
			}
			ops_stat_to_attr(fs, &st, &a);
			a.st_size = handle_size(h);
			a.st_blocks = (a.st_size + 511) / 512;
			if (rc == -ENOENT)
				a.st_nlink = 0;
			fuse_reply_attr(req, &a, 0);
			return;
		}
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	pthread_rwlock_rdlock(&fs->reply_lock);
	pthread_mutex_lock(&fs->mu);
	int cacheable = cached_exactly(fs, ino, &st);
	cacheable &= kernel_attr(fs, inode_get(fs->it, ino), &st, &a);
	pthread_mutex_unlock(&fs->mu);
	fuse_reply_attr(req, &a, cacheable ? FS_CACHE_TIMEOUT : 0);
	pthread_rwlock_unlock(&fs->reply_lock);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	if (ino & HIST_BIT) {
		history_getattr(req, ino);
		return;
	}
	int id = special_of(ino);
	if (id) {
		struct stat a;
		special_attr(fs, id, &a);
		fuse_reply_attr(req, &a, FS_CACHE_TIMEOUT);
		return;
	}
	reply_node_attr(req, fs, ino, fh_of(fi));
}

/* truncate(2) by path, without an open file: read-modify-write, conditional on the version. */
static int truncate_path(struct coordfs *fs, fuse_ino_t ino, off_t size)
{
	char path[PATHBUF];
	int n = ops_path(fs, ino, path, sizeof(path));
	if (n < 0)
		return n;
	if ((uint64_t)size > session_max_data(fs))
		return -EFBIG;
	for (int attempt = 0; attempt < 5; attempt++) {
		struct coord_stat st;
		int rc;
		if (size == 0) {
			rc = remote_set(fs, path, "", 0, -1, &st);
		} else {
			struct snap s;
			void *data = NULL;
			size_t len = 0;
			rc = remote_get(fs, path, &data, &len, &st, &s);
			if (rc)
				return -coord_errno(rc);
			if (st.ino != ino) {
				free(data);
				went_stale(fs, ino);
				return -ESTALE;
			}
			char *nd = realloc(data, (size_t)size);
			if (!nd) {
				free(data);
				return -ENOMEM;
			}
			if ((size_t)size > len)
				memset(nd + len, 0, (size_t)size - len);
			rc = remote_set(fs, path, nd, (size_t)size, st.version, &st);
			free(nd);
			if (rc == COORD_EBADVERSION)
				continue;
		}
		return rc ? -coord_errno(rc) : 0;
	}
	return -ESTALE;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	if (history_owns(ino)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	int id = special_of(ino);
	if (id) {
		struct stat a;
		special_attr(fs, id, &a);
		fuse_reply_attr(req, &a, FS_CACHE_TIMEOUT);
		return;
	}
	struct handle *h = fh_of(fi);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		int rc;
		if (h && h->kind == H_FILE && h->writable)
			rc = handle_truncate(h, attr->st_size);
		else
			rc = truncate_path(fs, ino, attr->st_size);
		if (rc) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	/* Mode, owner and times are the mount's, not the znode's: accepted and left as they are
	 * (so cp -p, tar and sed -i work); see README. */
	reply_node_attr(req, fs, ino, h);
}

/* ---- creating and deleting ---- */

static const char *base_of(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

static int reserved_name(fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && name[0] == '.';
}

static void do_create(fuse_req_t req, fuse_ino_t parent, const char *name, int dir, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	if (history_owns(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (reserved_name(parent, name)) {
		fuse_reply_err(req, special_lookup(name) ? EEXIST : EINVAL);
		return;
	}
	char path[PATHBUF];
	int n = child_path(fs, parent, name, path, sizeof(path));
	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	struct coord_stat st;
	char *created = NULL;
	int rc = remote_create(fs, path, NULL, 0, dir ? COORD_CREATE_DIR : 0, 0, &created, &st);
	if (rc == COORD_ENODEEXISTS && fi && !(fi->flags & O_EXCL)) {
		/* open(O_CREAT) of a name another host created meanwhile: open that one. */
		struct snap s;
		rc = remote_exists(fs, path, &st, &s);
		if (rc == COORD_OK && st.kind == COORD_KIND_DIR)
			rc = COORD_EISDIR;
		if (rc) {
			fuse_reply_err(req, coord_errno(rc == COORD_ENONODE ? COORD_ENODEEXISTS : rc));
			return;
		}
		pthread_mutex_lock(&fs->mu);
		struct inode *in = inode_obtain(fs->it, st.ino, st.kind);
		if (in)
			relink(fs, in, parent, name);
		if (in)
			in->nlookup++; /* held across handle_open so the inode stays; given back below */
		pthread_mutex_unlock(&fs->mu);
		if (!in) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		struct handle *h = NULL;
		int orc = handle_open(fs, st.ino, fi->flags, 0, NULL, &h);
		pthread_mutex_lock(&fs->mu);
		in = inode_get(fs->it, st.ino);
		if (in && in->nlookup)
			in->nlookup--;
		if (in && orc)
			inode_maybe_drop(fs->it, in);
		pthread_mutex_unlock(&fs->mu);
		if (orc) {
			fuse_reply_err(req, -orc);
			return;
		}
		reply_new_entry(req, fs, parent, name, &st, &s, 0, fi, h);
		return;
	}
	if (rc) {
		fuse_reply_err(req, coord_errno(rc));
		return;
	}
	const char *real = base_of(created);
	/* A sequential create made another name: the kernel must not keep a dentry for the one asked. */
	int renamed = strcmp(real, name) != 0;
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_obtain(fs->it, st.ino, st.kind);
	if (in) {
		inode_link(fs->it, in, parent, real, strlen(real));
		struct snap own = {0, fs->epoch};
		if (!dir)
			cache_fill_data(fs, in, &st, "", 0, &own);
		in->nlookup++; /* held across handle_open; reply_new_entry counts the kernel's own */
	}
	if (renamed) {
		struct notice *nv = malloc(sizeof(*nv));
		char *nm = strdup(name);
		if (nv && nm) {
			nv[0] = (struct notice){NOTE_ENTRY, parent, nm};
			inval_queue(fs, nv, 1, 0, NULL, 0, NULL);
		} else {
			free(nv);
			free(nm);
		}
	}
	pthread_mutex_unlock(&fs->mu);
	if (!in) {
		free(created);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct handle *h = NULL;
	if (fi) {
		int orc = handle_open(fs, st.ino, fi->flags, 1, &st, &h);
		if (orc) {
			pthread_mutex_lock(&fs->mu);
			in = inode_get(fs->it, st.ino);
			if (in && in->nlookup)
				in->nlookup--;
			if (in)
				inode_maybe_drop(fs->it, in);
			pthread_mutex_unlock(&fs->mu);
			free(created);
			fuse_reply_err(req, -orc);
			return;
		}
	}
	pthread_mutex_lock(&fs->mu);
	in = inode_get(fs->it, st.ino);
	if (in && in->nlookup)
		in->nlookup--;
	pthread_mutex_unlock(&fs->mu);
	reply_new_entry(req, fs, parent, real, &st, NULL, renamed, fi, h);
	free(created);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	do_create(req, parent, name, 0, fi);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	do_create(req, parent, name, 1, NULL);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	if (history_owns(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM); /* znodes are files and directories only */
		return;
	}
	do_create(req, parent, name, 0, NULL);
}

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct coordfs *fs = fs_of(req);
	if (history_owns(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (reserved_name(parent, name)) {
		fuse_reply_err(req, special_lookup(name) ? EPERM : ENOENT);
		return;
	}
	char path[PATHBUF];
	int n = child_path(fs, parent, name, path, sizeof(path));
	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	int rc = remote_delete(fs, path, -1);
	if (rc) {
		fuse_reply_err(req, coord_errno(rc));
		return;
	}
	pthread_mutex_lock(&fs->mu);
	struct dentry *d = dentry_find(fs->it, parent, name, strlen(name));
	if (d && d->ino) {
		struct inode *in = inode_get(fs->it, d->ino);
		if (in) {
			in->deleted = 1;
			cache_forget_inode(in, itable_lru(fs->it));
			inode_detach(fs->it, in);
		}
	}
	pthread_mutex_unlock(&fs->mu);
	fuse_reply_err(req, 0);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) { do_remove(req, parent, name); }
static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) { do_remove(req, parent, name); }

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct coordfs *fs = fs_of(req);
	if (history_owns(parent) || history_owns(newparent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT: no whiteouts here */
		return;
	}
	if (reserved_name(parent, name) || reserved_name(newparent, newname)) {
		fuse_reply_err(req, special_lookup(name) || special_lookup(newname) ? EPERM : EINVAL);
		return;
	}
	char from[PATHBUF], to[PATHBUF];
	int n = child_path(fs, parent, name, from, sizeof(from));
	if (n >= 0)
		n = child_path(fs, newparent, newname, to, sizeof(to));
	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	uint32_t cflags = (flags & RENAME_NOREPLACE ? COORD_RENAME_NOREPLACE : 0) |
			  (flags & RENAME_EXCHANGE ? COORD_RENAME_EXCHANGE : 0);
	/* Who holds the target's name now (it moves to the source's name in an exchange). */
	uint64_t other = 0;
	pthread_mutex_lock(&fs->mu);
	struct dentry *td = dentry_find(fs->it, newparent, newname, strlen(newname));
	if (td)
		other = td->ino;
	pthread_mutex_unlock(&fs->mu);
	struct coord_stat st;
	uint64_t epoch = fs_epoch(fs);
	int rc = remote_rename(fs, from, to, cflags, &st);
	if (rc == COORD_ENOTEMPTY) {
		/* The server renames only nodes without children. A directory with children cannot
		 * move in one step: EXDEV makes mv copy it and remove the original. */
		struct coord_stat sst;
		struct snap s;
		if (remote_exists(fs, from, &sst, &s) == COORD_OK && sst.num_children > 0)
			rc = -1;
	}
	if (rc) {
		fuse_reply_err(req, rc == -1 ? EXDEV : coord_errno(rc));
		return;
	}
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, st.ino);
	struct inode *oin = other && other != st.ino ? inode_get(fs->it, other) : NULL;
	if (oin) {
		if (flags & RENAME_EXCHANGE) {
			inode_link(fs->it, oin, parent, name, strlen(name));
			cache_forget_inode(oin, itable_lru(fs->it));
		} else {
			oin->deleted = 1;
			cache_forget_inode(oin, itable_lru(fs->it));
			inode_detach(fs->it, oin);
		}
	}
	if (in) {
		struct snap own = {0, epoch};
		struct inode *dir = inode_get(fs->it, newparent);
		if (dir && cache_accept_name(fs, dir, &st, &own)) {
			inode_link(fs->it, in, newparent, newname, strlen(newname));
			cache_fill_stat(fs, in, &st, &own);
		} else {
			inode_link(fs->it, in, newparent, newname, strlen(newname));
			cache_forget_inode(in, itable_lru(fs->it));
		}
	}
	pthread_mutex_unlock(&fs->mu);
	fuse_reply_err(req, 0);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, history_owns(ino) || history_owns(newparent) ? EROFS : EPERM); /* a znode has one name */
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, history_owns(parent) ? EROFS : EPERM); /* znodes are files and directories only */
}

/* ---- open files ---- */

static void open_special(fuse_req_t req, struct coordfs *fs, int id, struct fuse_file_info *fi)
{
	int acc = fi->flags & O_ACCMODE;
	struct handle *h;
	if (id == SPECIAL_WATCH && acc == O_RDONLY) {
		/* Nothing can be watched through a read-only open (watches are written): it reads as an
		 * empty file, so `grep -r`, `tar` or `cp -r` of the mount never block on it. */
		h = handle_new(H_TEXT, special_ino(id));
		if (!h) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		h->readable = 1;
	} else if (id == SPECIAL_WATCH) {
		h = handle_new(H_WATCH, special_ino(id));
		if (h)
			h->w = pwatch_open(fs->watch);
		if (!h || !h->w) {
			free(h);
			fuse_reply_err(req, ENOMEM);
			return;
		}
		h->readable = acc != O_WRONLY;
		h->writable = acc != O_RDONLY;
	} else {
		if (acc != O_RDONLY) {
			fuse_reply_err(req, EACCES);
			return;
		}
		h = handle_new(H_TEXT, special_ino(id));
		if (!h) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		int rc = special_text(fs, id, &h->text, &h->text_len);
		if (rc) {
			handle_free(fs, h);
			fuse_reply_err(req, -rc);
			return;
		}
		h->readable = 1;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = !h->writable;
	if (fuse_reply_open(req, fi) != 0) {
		if (h->w)
			pwatch_release(fs->watch, h->w);
		handle_free(fs, h);
	}
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	if (ino & HIST_BIT) {
		history_open(req, ino, fi);
		return;
	}
	int id = special_of(ino);
	if (id == SPECIAL_HISTORY) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (id) {
		open_special(req, fs, id, fi);
		return;
	}
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, ino);
	int kind = in ? in->kind : -1;
	pthread_mutex_unlock(&fs->mu);
	if (kind < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (kind == COORD_KIND_DIR) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	struct handle *h = NULL;
	int rc = handle_open(fs, ino, fi->flags, 0, NULL, &h);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	pthread_rwlock_rdlock(&fs->reply_lock);
	handle_open_reply_flags(fs, h, fi);
	if (fuse_reply_open(req, fi) != 0)
		handle_free(fs, h);
	pthread_rwlock_unlock(&fs->reply_lock);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	struct handle *h = fh_of(fi);
	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (h->kind == H_WATCH) {
		pwatch_read(fs->watch, h->w, req, size, off, (fi->flags & O_NONBLOCK) != 0);
		return;
	}
	if (h->kind == H_DIR) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = handle_read(h, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	struct handle *h = fh_of(fi);
	ssize_t n;
	if (!h)
		n = -EBADF;
	else if (h->kind == H_WATCH)
		n = pwatch_write(fs->watch, h->w, buf, size, off);
	else if (h->kind != H_FILE || !h->writable)
		n = -EBADF;
	else
		n = handle_write(h, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	struct handle *h = fh_of(fi);
	int rc = 0;
	if (h && h->kind == H_FILE)
		rc = handle_commit(fs, h, 1);
	else if (h && h->kind == H_WATCH)
		rc = pwatch_flush(fs->watch, h->w);
	fuse_reply_err(req, rc);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	struct handle *h = fh_of(fi);
	if (h) {
		if (h->kind == H_FILE) {
			int rc = handle_commit(fs, h, 0); /* an O_TRUNC open never written to commits here */
			if (rc)
				LOG_DEBUG("release of inode %" PRIu64 ": uncommitted data dropped (%s)", h->ino,
					  strerror(rc));
		}
		if (h->kind == H_WATCH)
			pwatch_release(fs->watch, h->w);
		handle_free(fs, h);
	}
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	struct handle *h = fh_of(fi);
	int rc = 0;
	if (h && h->kind == H_FILE)
		rc = handle_commit(fs, h, 0);
	if (!rc && !(ino & FS_SPECIAL_BIT)) {
		int crc = remote_sync(fs, "/");
		rc = crc ? coord_errno(crc) : 0;
	}
	fuse_reply_err(req, rc);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	struct coordfs *fs = fs_of(req);
	struct handle *h = fh_of(fi);
	if (h && h->kind == H_WATCH) {
		pwatch_poll(fs->watch, h->w, req, ph);
		return;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
}

/* ---- directories ---- */

#define PREFETCH_MAX 20000    /* children whose stats a listing fetches ahead, at most */
#define PREFETCH_SWEEP 100000 /* inodes in the table before unreferenced ones are swept */

/*
 * `ls -l`, `find` and `rm -r` want every child's attributes right after the listing: ask for all
 * of them at once (pipelined) instead of one lookup, one round trip, at a time. They go into the
 * daemon's cache (and straight to the kernel through readdirplus).
 */
static void prefetch_stats(struct coordfs *fs, fuse_ino_t ino, struct names *kids)
{
	if (!kids->n || kids->n > PREFETCH_MAX)
		return;
	char dir[PATHBUF];
	int dl = ops_path(fs, ino, dir, sizeof(dir));
	if (dl < 0)
		return;
	char **paths = calloc(kids->n, sizeof(*paths));
	size_t *which = calloc(kids->n, sizeof(*which));
	size_t n = 0;
	if (!paths || !which)
		goto out;
	pthread_mutex_lock(&fs->mu);
	if (inode_count(fs->it) > PREFETCH_SWEEP)
		inode_sweep(fs->it);
	for (size_t i = 0; i < kids->n; i++) {
		const char *name = kids->v[i];
		struct dentry *d = dentry_find(fs->it, ino, name, strlen(name));
		struct inode *in = d && d->ino ? inode_get(fs->it, d->ino) : NULL;
		if (in && cache_stat_valid(fs, in))
			continue;
		size_t need = (size_t)dl + strlen(name) + 2;
		if (need > COORD_MAX_PATH + 1 || !(paths[n] = malloc(need)))
			continue;
		size_t at = (size_t)dl;
		memcpy(paths[n], dir, at);
		if (dl != 1)
			paths[n][at++] = '/';
		memcpy(paths[n] + at, name, strlen(name) + 1);
		which[n++] = i;
	}
	pthread_mutex_unlock(&fs->mu);
	if (!n)
		goto out;
	struct coord_stat *sts = calloc(n, sizeof(*sts));
	int *errs = calloc(n, sizeof(*errs));
	struct snap s;
	if (sts && errs && remote_exists_many(fs, paths, n, sts, errs, &s) == COORD_OK) {
		pthread_mutex_lock(&fs->mu);
		struct inode *d = inode_get(fs->it, ino);
		for (size_t k = 0; d && k < n; k++) {
			if (errs[k] != COORD_OK || !cache_accept_name(fs, d, &sts[k], &s))
				continue;
			struct inode *in = inode_obtain(fs->it, sts[k].ino, sts[k].kind);
			if (!in)
				break;
			relink(fs, in, ino, kids->v[which[k]]);
			cache_fill_stat(fs, in, &sts[k], &s);
		}
		pthread_mutex_unlock(&fs->mu);
	}
	free(sts);
	free(errs);
out:
	for (size_t k = 0; k < n; k++)
		free(paths[k]);
	free(paths);
	free(which);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	if (history_owns(ino)) {
		history_opendir(req, ino, fi);
		return;
	}
	if (special_of(ino)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	pthread_mutex_lock(&fs->mu);
	struct inode *in = inode_get(fs->it, ino);
	int kind = in ? in->kind : -1;
	struct names *kids = in ? cache_kids(fs, in) : NULL;
	pthread_mutex_unlock(&fs->mu);
	if (kind != COORD_KIND_DIR) {
		fuse_reply_err(req, kind < 0 ? ENOENT : ENOTDIR);
		return;
	}
	if (!kids) {
		char path[PATHBUF];
		int n = ops_path(fs, ino, path, sizeof(path));
		if (n < 0) {
			fuse_reply_err(req, -n);
			return;
		}
		char **v = NULL;
		size_t count = 0;
		struct coord_stat st;
		struct snap s;
		int rc = remote_list(fs, path, &v, &count, &st, &s);
		if (rc) {
			fuse_reply_err(req, coord_errno(rc));
			return;
		}
		if (st.ino != ino) {
			coord_names_free(v, count);
			went_stale(fs, ino);
			fuse_reply_err(req, ESTALE);
			return;
		}
		kids = names_new(v, count);
		if (!kids) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		pthread_mutex_lock(&fs->mu);
		in = inode_get(fs->it, ino);
		if (in)
			cache_fill_kids(fs, in, &st, kids, &s);
		pthread_mutex_unlock(&fs->mu);
	}
	prefetch_stats(fs, ino, kids);
	struct handle *h = handle_new(H_DIR, ino);
	if (!h) {
		names_unref(kids);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->kids = kids;
	fi->fh = (uint64_t)(uintptr_t)h;
	/* The kernel keeps no listing of its own (no cache_readdir): every open's readdir is
	 * answered from its handle (the daemon's cached names, kept coherent by events). A kernel
	 * listing would be filled by whichever handle reads first after an invalidation, possibly one
	 * opened before the change, and later opens would keep reading it. */
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	pthread_rwlock_rdlock(&fs->reply_lock);
	if (fuse_reply_open(req, fi) != 0)
		handle_free(fs, h);
	pthread_rwlock_unlock(&fs->reply_lock);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	struct handle *h = fh_of(fi);
	if (h && h->kind == H_HDIR) {
		history_readdir(req, ino, size, off, fi, 0);
		return;
	}
	if (!h || h->kind != H_DIR) {
		fuse_reply_err(req, EBADF);
		return;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	int nspecial = ino == FUSE_ROOT_ID ? SPECIAL_COUNT - 1 : 0;
	size_t total = 2 + (size_t)nspecial + h->kids->n;
	pthread_mutex_lock(&fs->mu);
	struct inode *self = inode_get(fs->it, ino);
	uint64_t parent_ino = self && self->d ? self->d->parent : FUSE_ROOT_ID;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < total; i++) {
		struct stat a;
		memset(&a, 0, sizeof(a));
		const char *name;
		if (i == 0) {
			name = ".";
			a.st_ino = ino;
			a.st_mode = S_IFDIR;
		} else if (i == 1) {
			name = "..";
			a.st_ino = parent_ino;
			a.st_mode = S_IFDIR;
		} else if (i < 2 + (size_t)nspecial) {
			int id = (int)(i - 1);
			name = special_name(id);
			a.st_ino = special_ino(id);
			a.st_mode = id == SPECIAL_HISTORY ? S_IFDIR : S_IFREG;
		} else {
			name = h->kids->v[i - 2 - (size_t)nspecial];
			struct dentry *d = dentry_find(fs->it, ino, name, strlen(name));
			struct inode *in = d && d->ino ? inode_get(fs->it, d->ino) : NULL;
			if (in) {
				a.st_ino = in->ino;
				a.st_mode = in->kind == COORD_KIND_DIR ? S_IFDIR : S_IFREG;
			} else {
				a.st_ino = 0xffffffffu; /* not known without asking the server: the kernel's lookup will */
			}
		}
		size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
		if (used + need > size)
			break;
		fuse_add_direntry(req, buf + used, size - used, name, &a, (off_t)(i + 1));
		used += need;
	}
	pthread_mutex_unlock(&fs->mu);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/* readdir with each child's entry and attributes, when the daemon has them (else the kernel looks
 * the name up itself). Each entry handed over counts as a lookup. */
static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	struct handle *h = fh_of(fi);
	if (h && h->kind == H_HDIR) {
		history_readdir(req, ino, size, off, fi, 1);
		return;
	}
	if (!h || h->kind != H_DIR) {
		fuse_reply_err(req, EBADF);
		return;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	int nspecial = ino == FUSE_ROOT_ID ? SPECIAL_COUNT - 1 : 0;
	size_t total = 2 + (size_t)nspecial + h->kids->n;
	pthread_rwlock_rdlock(&fs->reply_lock);
	pthread_mutex_lock(&fs->mu);
	struct inode *self = inode_get(fs->it, ino);
	uint64_t parent_ino = self && self->d ? self->d->parent : FUSE_ROOT_ID;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < total; i++) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		const char *name;
		struct inode *in = NULL;
		if (i < 2) {
			/* The kernel takes no lookup for "." and "..": no nodeid. */
			name = i == 0 ? "." : "..";
			e.attr.st_ino = i == 0 ? ino : parent_ino;
			e.attr.st_mode = S_IFDIR;
		} else if (i < 2 + (size_t)nspecial) {
			int id = (int)(i - 1);
			name = special_name(id);
			e.ino = special_ino(id);
			e.generation = 1;
			special_attr(fs, id, &e.attr);
			e.attr_timeout = e.entry_timeout = FS_CACHE_TIMEOUT;
		} else {
			name = h->kids->v[i - 2 - (size_t)nspecial];
			struct dentry *d = dentry_find(fs->it, ino, name, strlen(name));
			in = d && d->ino ? inode_get(fs->it, d->ino) : NULL;
			if (in && cache_stat_valid(fs, in))
				fill_entry(fs, &e, in, &in->st, 1);
			else
				in = NULL; /* the kernel will look it up */
		}
		size_t need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
		if (used + need > size)
			break;
		fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)(i + 1));
		used += need;
		if (in)
			in->nlookup++;
	}
	pthread_mutex_unlock(&fs->mu);
	fuse_reply_buf(req, buf, used);
	pthread_rwlock_unlock(&fs->reply_lock);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_free(fs_of(req), fh_of(fi));
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int rc = remote_sync(fs_of(req), "/");
	fuse_reply_err(req, rc ? coord_errno(rc) : 0);
}

/* ---- which requests the reader thread answers itself (loop.h) ---- */

/* A node whose stat is cached and that no commit of ours is changing. fs->mu held. */
static int settled(struct coordfs *fs, uint64_t ino)
{
	struct inode *in = inode_get(fs->it, ino);
	return in && cache_stat_valid(fs, in) && !in->committing;
}

int ops_inline(struct coordfs *fs, const void *buf, size_t len)
{
	const struct fuse_in_header *in = buf;
	const char *arg = (const char *)buf + sizeof(*in);
	size_t alen = len - sizeof(*in);
	uint64_t ino = in->nodeid;
	const struct handle *h;
	int ok = 0;
	switch (in->opcode) {
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
	case FUSE_INIT:
	case FUSE_DESTROY:
	case FUSE_POLL:
	case FUSE_RELEASEDIR:
		return 1;
	case FUSE_READ:
		/* From the open's own version or buffer, or a .watch (which keeps the request). */
		return alen >= sizeof(struct fuse_read_in);
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		return 1; /* the listing was fetched at opendir */
	case FUSE_FLUSH:
	case FUSE_RELEASE:
		/* Only opens that commit nothing: not writable files. */
		if (alen < sizeof(uint64_t))
			return 0;
		h = (const struct handle *)(uintptr_t)((const struct fuse_release_in *)arg)->fh;
		return !h || h->kind == H_TEXT || h->kind == H_DIR || h->kind == H_HDIR ||
		       (h->kind == H_FILE && !h->writable) || (h->kind == H_WATCH && in->opcode == FUSE_FLUSH);
	case FUSE_OPEN:
		if (alen < sizeof(struct fuse_open_in))
			return 0;
		if (ino & FS_SPECIAL_BIT)
			return ino == special_ino(SPECIAL_WATCH);
		if ((((const struct fuse_open_in *)arg)->flags & (O_ACCMODE | O_TRUNC)) != O_RDONLY)
			return 0;
		pthread_mutex_lock(&fs->mu);
		if (settled(fs, ino)) {
			struct inode *n = inode_get(fs->it, ino);
			ok = n->kind == COORD_KIND_FILE && n->blob && n->blob->version == n->st.version;
		}
		pthread_mutex_unlock(&fs->mu);
		return ok;
	case FUSE_GETATTR:
		if (ino & HIST_BIT)
			return 0;
		if (ino & FS_SPECIAL_BIT)
			return 1;
		pthread_mutex_lock(&fs->mu);
		ok = settled(fs, ino);
		pthread_mutex_unlock(&fs->mu);
		return ok;
	case FUSE_LOOKUP: {
		if (history_owns(ino) || !alen || memchr(arg, 0, alen) == NULL)
			return 0;
		if (ino == FUSE_ROOT_ID && arg[0] == '.')
			return 1; /* a special name, or ENOENT */
		size_t nl = strlen(arg);
		pthread_mutex_lock(&fs->mu);
		struct dentry *d = dentry_find(fs->it, ino, arg, nl);
		if (d && !d->ino)
			ok = d->epoch == fs->epoch;
		else if (d)
			ok = settled(fs, d->ino) && inode_get(fs->it, ino) != NULL;
		pthread_mutex_unlock(&fs->mu);
		return ok;
	}
	default:
		return 0;
	}
}

/* ---- the filesystem ---- */

static uint64_t mntr_value(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	if (!p)
		return 0;
	p += strlen(key);
	while (*p == '\t' || *p == ' ')
		p++;
	return strtoull(p, NULL, 10);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct coordfs *fs = fs_of(req);
	char *text = NULL;
	uint64_t nodes = 0, bytes = 0;
	if (remote_admin(fs, "mntr", &text) == COORD_OK && text) {
		nodes = mntr_value(text, "zk_znode_count");
		bytes = mntr_value(text, "zk_approximate_data_size");
	}
	free(text);
	/* The ensemble has no fixed capacity; say so with a large, steady amount free. */
	const uint64_t free_blocks = 1ULL << 28, free_files = 1ULL << 32;
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = (bytes + 4095) / 4096 + free_blocks;
	sv.f_bfree = sv.f_bavail = free_blocks;
	sv.f_files = nodes + free_files;
	sv.f_ffree = sv.f_favail = free_files;
	sv.f_namemax = COORD_MAX_NAME;
	fuse_reply_statfs(req, &sv);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* O_TRUNC comes with the open instead of a separate setattr(size=0) before the writes. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Pages are dropped when an event says so, not guessed from mtimes. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV)
		conn->want |= FUSE_CAP_HANDLE_KILLPRIV;
	/* Listings hand the kernel the children's attributes when the daemon has them; the kernel
	 * decides when that is worth it. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	conn->max_write = 1u << 20;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	xattr_get(req, ino, name, size);
}
static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) { xattr_list(req, ino, size); }
static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags)
{
	xattr_set(req, ino, name, value, size, flags);
}
static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) { xattr_remove(req, ino, name); }

const struct fuse_lowlevel_ops coordfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.poll = op_poll,
};
