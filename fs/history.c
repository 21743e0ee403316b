/*
 * history.c: the .history view (see history.h): its table of nodeids and its FUSE operations.
 */
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "err.h"
#include "handle.h"
#include "path.h"
#include "session.h"

#define PATHBUF (COORD_MAX_PATH + 2)

/* ---- the table: nodeid <-> (znode path, version; -1 for the znode's directory) ---- */

struct hnode {
	struct hnode *id_next, *key_next;
	uint64_t id;
	uint64_t nlookup;
	uint64_t hash;
	int32_t version;
	char path[];
};

struct history {
	pthread_mutex_t mu;
	struct hnode **by_id, **by_key;
	size_t nb, count;
	uint64_t next;
};

static uint64_t key_hash(const char *path, int32_t version)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h = (h ^ (uint32_t)version) * 1099511628211ULL;
	return h;
}

static size_t id_slot(const struct history *h, uint64_t id) { return (size_t)(id * 0x9E3779B97F4A7C15ULL >> 20) % h->nb; }

struct history *history_new(void)
{
	struct history *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->nb = 256;
	h->by_id = calloc(h->nb, sizeof(*h->by_id));
	h->by_key = calloc(h->nb, sizeof(*h->by_key));
	if (!h->by_id || !h->by_key) {
		free(h->by_id);
		free(h->by_key);
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->mu, NULL);
	h->next = 1;
	return h;
}

void history_free(struct history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nb; i++)
		for (struct hnode *n = h->by_id[i], *next; n; n = next) {
			next = n->id_next;
			free(n);
		}
	free(h->by_id);
	free(h->by_key);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* Double the buckets (under mu); on out of memory the chains just grow longer. */
static void grow(struct history *h)
{
	size_t nb = h->nb * 2;
	struct hnode **bi = calloc(nb, sizeof(*bi)), **bk = calloc(nb, sizeof(*bk));
	if (!bi || !bk) {
		free(bi);
		free(bk);
		return;
	}
	struct history t = *h;
	t.nb = nb;
	for (size_t i = 0; i < h->nb; i++)
		for (struct hnode *n = h->by_id[i], *next; n; n = next) {
			next = n->id_next;
			size_t s = id_slot(&t, n->id);
			n->id_next = bi[s];
			bi[s] = n;
			n->key_next = bk[n->hash % nb];
			bk[n->hash % nb] = n;
		}
	free(h->by_id);
	free(h->by_key);
	h->by_id = bi;
	h->by_key = bk;
	h->nb = nb;
}

/* The nodeid of (path, version), added if new, with one more lookup counted; 0 on out of memory. */
static uint64_t obtain(struct history *h, const char *path, int32_t version)
{
	uint64_t hash = key_hash(path, version);
	pthread_mutex_lock(&h->mu);
	for (struct hnode *n = h->by_key[hash % h->nb]; n; n = n->key_next)
		if (n->hash == hash && n->version == version && !strcmp(n->path, path)) {
			n->nlookup++;
			uint64_t id = n->id;
			pthread_mutex_unlock(&h->mu);
			return id;
		}
	size_t pl = strlen(path);
	struct hnode *n = malloc(sizeof(*n) + pl + 1);
	if (!n) {
		pthread_mutex_unlock(&h->mu);
		return 0;
	}
	n->id = FS_SPECIAL_BIT | HIST_BIT | h->next++;
	n->nlookup = 1;
	n->hash = hash;
	n->version = version;
	memcpy(n->path, path, pl + 1);
	if (h->count >= 2 * h->nb)
		grow(h);
	size_t s = id_slot(h, n->id);
	n->id_next = h->by_id[s];
	h->by_id[s] = n;
	n->key_next = h->by_key[hash % h->nb];
	h->by_key[hash % h->nb] = n;
	h->count++;
	uint64_t id = n->id;
	pthread_mutex_unlock(&h->mu);
	return id;
}

/* The znode path and version of a nodeid; -ENOENT when the kernel asks about one it forgot. */
static int node_of(struct history *h, uint64_t ino, char *path, size_t size, int32_t *version)
{
	if (ino == special_ino(SPECIAL_HISTORY)) {
		snprintf(path, size, "/");
		*version = -1;
		return 0;
	}
	int rc = -ENOENT;
	pthread_mutex_lock(&h->mu);
	for (struct hnode *n = h->by_id[id_slot(h, ino)]; n; n = n->id_next)
		if (n->id == ino) {
			if (strlen(n->path) < size) {
				strcpy(path, n->path);
				*version = n->version;
				rc = 0;
			} else {
				rc = -ENAMETOOLONG;
			}
			break;
		}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

void history_forget(struct coordfs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct history *h = fs->hist;
	if (!(ino & HIST_BIT))
		return;
	pthread_mutex_lock(&h->mu);
	struct hnode **pp = &h->by_id[id_slot(h, ino)];
	while (*pp && (*pp)->id != ino)
		pp = &(*pp)->id_next;
	struct hnode *n = *pp;
	if (n) {
		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
		if (!n->nlookup) {
			*pp = n->id_next;
			struct hnode **kp = &h->by_key[n->hash % h->nb];
			while (*kp && *kp != n)
				kp = &(*kp)->key_next;
			if (*kp)
				*kp = n->key_next;
			h->count--;
			free(n);
		}
	}
	pthread_mutex_unlock(&h->mu);
}

/* ---- what a node looks like ---- */

/* A znode's own versions show in its .history directory if it is a file, or a directory whose
 * data was ever set. */
static int shows_versions(const struct coord_stat *st) { return st->kind != COORD_KIND_DIR || st->version > 0; }

/* A canonical version number: "0" or digits without a leading zero, within int32. */
static int parse_version(const char *s, int32_t *out)
{
	if (!*s || (s[0] == '0' && s[1]))
		return 0;
	int64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (*p - '0');
		if (v > INT32_MAX)
			return 0;
	}
	*out = (int32_t)v;
	return 1;
}

static void base_attr(struct coordfs *fs, uint64_t ino, int64_t mtime_ms, struct stat *a)
{
	memset(a, 0, sizeof(*a));
	a->st_ino = ino;
	a->st_uid = fs->uid;
	a->st_gid = fs->gid;
	a->st_blksize = 4096;
	struct timespec m = {(time_t)(mtime_ms / 1000), (long)(mtime_ms % 1000) * 1000000L};
	a->st_mtim = a->st_ctim = a->st_atim = m;
}

static void dir_attr(struct coordfs *fs, uint64_t ino, const struct coord_stat *st, struct stat *a)
{
	base_attr(fs, ino, st->mtime, a);
	a->st_mode = S_IFDIR | 0555;
	a->st_nlink = 2 + (nlink_t)(st->num_children > 0 ? st->num_children : 0);
}

static void file_attr(struct coordfs *fs, uint64_t ino, const struct coord_hist *hv, struct stat *a)
{
	base_attr(fs, ino, hv->mtime, a);
	a->st_mode = S_IFREG | 0444;
	a->st_nlink = 1;
	a->st_size = hv->size;
	a->st_blocks = (a->st_size + 511) / 512;
}

/* parent path + "/" + name into buf; -ENAMETOOLONG, or -ENOENT for a name no znode can have. */
static int join(const char *parent, const char *name, char *buf, size_t size)
{
	size_t nl = strlen(name);
	if (nl > COORD_MAX_NAME)
		return -ENAMETOOLONG;
	int n = snprintf(buf, size, "%s/%s", strcmp(parent, "/") ? parent : "", name);
	if (n < 0 || (size_t)n >= size || (size_t)n > COORD_MAX_PATH)
		return -ENAMETOOLONG;
	if (!strcmp(parent, "/") && name[0] == '.')
		return -ENOENT; /* the special names at the root are not znodes */
	int rc = coord_path_check(buf, (size_t)n, 0, NULL, 0);
	if (rc)
		return rc == COORD_ENAMETOOLONG ? -ENAMETOOLONG : -ENOENT;
	return n;
}

/* Version v of path among its kept ones: 0 and *out, or -errno (-ENOENT: not kept, or not shown). */
static int find_version(struct coordfs *fs, const char *path, int32_t v, struct coord_hist *out)
{
	struct coord_hist *hv = NULL;
	uint32_t n = 0;
	struct coord_stat st;
	int rc = remote_history(fs, path, &hv, &n, &st);
	if (rc)
		return -coord_errno(rc);
	rc = -ENOENT;
	if (shows_versions(&st))
		for (uint32_t i = 0; i < n; i++)
			if (hv[i].version == v) {
				*out = hv[i];
				rc = 0;
				break;
			}
	free(hv);
	return rc;
}

/* ---- operations ---- */

static void reply_entry(fuse_req_t req, uint64_t id, const struct stat *a)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = id;
	e.generation = 1;
	e.attr = *a;
	e.attr.st_ino = id;
	e.attr_timeout = e.entry_timeout = 0; /* every look is fresh: nothing here is announced */
	if (fuse_reply_entry(req, &e) != 0)
		history_forget(fs_of(req), id, 1);
}

void history_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct coordfs *fs = fs_of(req);
	char ppath[PATHBUF], path[PATHBUF];
	int32_t pver;
	int rc = node_of(fs->hist, parent, ppath, sizeof(ppath), &pver);
	if (!rc && pver >= 0)
		rc = -ENOTDIR;
	if (!rc) {
		int n = join(ppath, name, path, sizeof(path));
		rc = n < 0 ? n : 0;
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* A child znode first: it wins over a version of the same name. */
	struct coord_stat st;
	int crc = remote_exists(fs, path, &st, NULL);
	if (crc == COORD_OK) {
		uint64_t id = obtain(fs->hist, path, -1);
		if (!id) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		struct stat a;
		dir_attr(fs, id, &st, &a);
		reply_entry(req, id, &a);
		return;
	}
	if (crc != COORD_ENONODE && crc != COORD_ENOTDIR && crc != COORD_EEPHEMERAL) {
		fuse_reply_err(req, coord_errno(crc));
		return;
	}
	int32_t v;
	struct coord_hist hv;
	if (!parse_version(name, &v)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	rc = find_version(fs, ppath, v, &hv);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	uint64_t id = obtain(fs->hist, ppath, v);
	if (!id) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct stat a;
	file_attr(fs, id, &hv, &a);
	reply_entry(req, id, &a);
}

void history_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct coordfs *fs = fs_of(req);
	char path[PATHBUF];
	int32_t v;
	struct stat a;
	int rc = node_of(fs->hist, ino, path, sizeof(path), &v);
	if (!rc && v < 0) {
		struct coord_stat st;
		int crc = remote_exists(fs, path, &st, NULL);
		if (crc)
			rc = -coord_errno(crc);
		else
			dir_attr(fs, ino, &st, &a);
		if (ino == special_ino(SPECIAL_HISTORY)) {
			/* The view itself is always there, even with no server to ask. */
			special_attr(fs, SPECIAL_HISTORY, &a);
			rc = 0;
		}
	} else if (!rc) {
		struct coord_hist hv;
		rc = find_version(fs, path, v, &hv);
		if (!rc)
			file_attr(fs, ino, &hv, &a);
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &a, 0);
}

void history_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	char path[PATHBUF];
	int32_t v;
	int rc = node_of(fs->hist, ino, path, sizeof(path), &v);
	if (!rc && v < 0)
		rc = -EISDIR;
	if (!rc && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)))
		rc = -EROFS;
	void *data = NULL;
	size_t len = 0;
	if (!rc) {
		int crc = remote_get_version(fs, path, v, &data, &len, NULL);
		if (crc)
			rc = -coord_errno(crc);
	}
	struct handle *h = rc ? NULL : handle_new(H_TEXT, ino);
	if (!rc && !h)
		rc = -ENOMEM;
	if (rc) {
		free(data);
		fuse_reply_err(req, -rc);
		return;
	}
	h->text = data;
	h->text_len = len;
	h->readable = 1;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1; /* this open's version, read from the daemon */
	fi->keep_cache = 0;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) != 0)
		handle_free(fs, h);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void history_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct coordfs *fs = fs_of(req);
	char path[PATHBUF];
	int32_t v;
	int rc = node_of(fs->hist, ino, path, sizeof(path), &v);
	if (!rc && v >= 0)
		rc = -ENOTDIR;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct coord_hist *hv = NULL;
	uint32_t nh = 0;
	struct coord_stat st;
	int crc = remote_history(fs, path, &hv, &nh, &st);
	if (crc) {
		fuse_reply_err(req, coord_errno(crc));
		return;
	}
	char **kids = NULL;
	size_t nk = 0;
	if (st.kind == COORD_KIND_DIR) {
		struct coord_stat lst;
		crc = remote_list(fs, path, &kids, &nk, &lst, NULL);
		if (crc) {
			free(hv);
			fuse_reply_err(req, coord_errno(crc));
			return;
		}
	}
	if (!shows_versions(&st))
		nh = 0;
	char **v2 = calloc(nh + nk + 1, sizeof(*v2));
	size_t n = 0, nfiles = 0;
	rc = v2 ? 0 : -ENOMEM;
	for (uint32_t i = 0; !rc && i < nh; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%d", hv[i].version);
		/* A child of that name wins (kids are sorted). */
		if (nk && bsearch(&(const char *){name}, kids, nk, sizeof(*kids), cmp_str))
			continue;
		if (!(v2[n] = strdup(name)))
			rc = -ENOMEM;
		else
			n++;
	}
	nfiles = n;
	for (size_t i = 0; !rc && i < nk; i++) {
		v2[n++] = kids[i];
		kids[i] = NULL;
	}
	coord_names_free(kids, nk);
	free(hv);
	struct names *names = NULL;
	if (!rc) {
		names = names_new(v2, n);
		v2 = NULL;
		if (!names)
			rc = -ENOMEM;
	}
	if (v2)
		coord_names_free(v2, n);
	struct handle *h = rc ? NULL : handle_new(H_HDIR, ino);
	if (!rc && !h)
		rc = -ENOMEM;
	if (rc) {
		names_unref(names);
		fuse_reply_err(req, -rc);
		return;
	}
	h->kids = names;
	h->hfiles = nfiles;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		handle_free(fs, h);
}

void history_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, int plus)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (!h || h->kind != H_HDIR) {
		fuse_reply_err(req, EBADF);
		return;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0, total = 2 + h->kids->n;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < total; i++) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		const char *name;
		if (i < 2) {
			name = i == 0 ? "." : "..";
			e.attr.st_ino = ino;
			e.attr.st_mode = S_IFDIR;
		} else {
			size_t k = i - 2;
			name = h->kids->v[k];
			/* Not known without asking the server: the kernel looks the name up itself. */
			e.attr.st_ino = 0xffffffffu;
			e.attr.st_mode = k < h->hfiles ? S_IFREG : S_IFDIR;
		}
		size_t need = plus ? fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0)
				   : fuse_add_direntry(req, NULL, 0, name, NULL, 0);
		if (used + need > size)
			break;
		if (plus)
			fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)(i + 1));
		else
			fuse_add_direntry(req, buf + used, size - used, name, &e.attr, (off_t)(i + 1));
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}
