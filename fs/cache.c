/*
 * cache.c: the daemon's cache and how events keep it coherent (see cache.h).
 *
 * Why zxids and not just "invalidate on event": a handler reads from the server without holding
 * fs->mu, so an event can be processed between the server's answer and the handler storing it.
 * Every event leaves its zxid on what it touches (inval_zxid on the node, dir_inval_zxid on the
 * parent, or on the deepest known ancestor when the node itself is not in the table); a fill is
 * stored only if the read's snapshot is at least that new. The snapshot's zxid is the client's
 * last seen zxid sampled before the request was sent (any event up to it had already been
 * processed, and the server had applied it before our request), raised to the zxids in the
 * returned Stat (a Stat is a snapshot taken at or after them).
 */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

#include "inval.h"
#include "log.h"

#define CACHE_MAX_BYTES (64u << 20)

/* ---- blobs and names ---- */

struct blob *blob_new(const void *p, size_t len, int32_t version, uint64_t mzxid)
{
	struct blob *b = malloc(sizeof(*b) + (len ? len : 1));
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->version = version;
	b->mzxid = mzxid;
	b->len = len;
	if (len)
		memcpy(b->data, p, len);
	return b;
}

struct blob *blob_ref(struct blob *b)
{
	if (b)
		atomic_fetch_add(&b->refs, 1);
	return b;
}

void blob_unref(struct blob *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1)
		free(b);
}

struct names *names_new(char **v, size_t n)
{
	struct names *s = malloc(sizeof(*s));
	if (!s) {
		coord_names_free(v, n);
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->n = n;
	s->v = v;
	return s;
}

struct names *names_ref(struct names *n)
{
	if (n)
		atomic_fetch_add(&n->refs, 1);
	return n;
}

void names_unref(struct names *n)
{
	if (n && atomic_fetch_sub(&n->refs, 1) == 1) {
		coord_names_free(n->v, n->n);
		free(n);
	}
}

/* ---- the LRU of cached data ---- */

static void lru_unlink(struct lru *l, struct inode *in)
{
	if (in->lru_prev)
		in->lru_prev->lru_next = in->lru_next;
	else if (l->head == in)
		l->head = in->lru_next;
	if (in->lru_next)
		in->lru_next->lru_prev = in->lru_prev;
	else if (l->tail == in)
		l->tail = in->lru_prev;
	in->lru_prev = in->lru_next = NULL;
}

static void lru_push(struct lru *l, struct inode *in)
{
	in->lru_prev = l->tail;
	in->lru_next = NULL;
	if (l->tail)
		l->tail->lru_next = in;
	else
		l->head = in;
	l->tail = in;
}

static void drop_blob(struct lru *l, struct inode *in)
{
	if (!in->blob)
		return;
	l->bytes -= in->blob->len;
	lru_unlink(l, in);
	blob_unref(in->blob);
	in->blob = NULL;
}

static void set_blob(struct lru *l, struct inode *in, struct blob *b)
{
	drop_blob(l, in);
	in->blob = b;
	l->bytes += b->len;
	lru_push(l, in);
	size_t max = l->max ? l->max : CACHE_MAX_BYTES;
	while (l->bytes > max && l->head && l->head != in)
		drop_blob(l, l->head);
}

void cache_inode_clear(struct lru *lru, struct inode *in)
{
	drop_blob(lru, in);
	names_unref(in->kids);
	in->kids = NULL;
}

void cache_forget_inode(struct inode *in, struct lru *lru)
{
	in->st_valid = 0;
	drop_blob(lru, in);
}

/* ---- validity and fills ---- */

int cache_stat_valid(const struct coordfs *fs, const struct inode *in)
{
	return in->st_valid && in->st_epoch == fs->epoch;
}

struct blob *cache_blob(struct coordfs *fs, struct inode *in)
{
	if (!cache_stat_valid(fs, in) || !in->blob || in->blob->version != in->st.version)
		return NULL;
	struct lru *l = itable_lru(fs->it);
	lru_unlink(l, in);
	lru_push(l, in);
	return blob_ref(in->blob);
}

struct names *cache_kids(struct coordfs *fs, struct inode *in)
{
	if (!in->kids || in->kids_epoch != fs->epoch)
		return NULL;
	return names_ref(in->kids);
}

static uint64_t snap_at(const struct snap *s, const struct coord_stat *st)
{
	uint64_t z = s->zxid;
	if (st && stat_zxid(st) > z)
		z = stat_zxid(st);
	return z;
}

int cache_fill_stat(struct coordfs *fs, struct inode *in, const struct coord_stat *st, const struct snap *s)
{
	if (s->epoch != fs->epoch || in->inval_zxid > snap_at(s, st) || st->ino != in->ino)
		return 0;
	/* An older answer must not replace a newer one already stored. */
	if (cache_stat_valid(fs, in) && stat_zxid(&in->st) > stat_zxid(st))
		return 0;
	in->st = *st;
	in->st_valid = 1;
	in->st_epoch = fs->epoch;
	in->deleted = 0;
	if (in->blob && in->blob->version != st->version)
		drop_blob(itable_lru(fs->it), in);
	return 1;
}

int cache_fill_blob(struct coordfs *fs, struct inode *in, const struct coord_stat *st, struct blob *b,
		    const struct snap *s)
{
	if (!cache_fill_stat(fs, in, st, s))
		return 0;
	if (in->st.version == st->version)
		set_blob(itable_lru(fs->it), in, blob_ref(b));
	return 1;
}

int cache_fill_data(struct coordfs *fs, struct inode *in, const struct coord_stat *st, const void *data,
		    size_t len, const struct snap *s)
{
	if (!cache_fill_stat(fs, in, st, s))
		return 0;
	if (in->st.version != st->version)
		return 1;
	struct blob *b = blob_new(data, len, st->version, (uint64_t)st->mzxid);
	if (b)
		set_blob(itable_lru(fs->it), in, b);
	return 1;
}

int cache_fill_kids(struct coordfs *fs, struct inode *dir, const struct coord_stat *st, struct names *kids,
		    const struct snap *s)
{
	if (s->epoch != fs->epoch || dir->dir_inval_zxid > snap_at(s, st))
		return 0;
	cache_fill_stat(fs, dir, st, s);
	names_unref(dir->kids);
	dir->kids = names_ref(kids);
	dir->kids_epoch = fs->epoch;
	return 1;
}

int cache_accept_name(const struct coordfs *fs, const struct inode *dir, const struct coord_stat *st,
		      const struct snap *s)
{
	return s->epoch == fs->epoch && dir->dir_inval_zxid <= snap_at(s, st);
}

/* ---- events ---- */

static uint64_t umax(uint64_t a, uint64_t b) { return a > b ? a : b; }

struct notes {
	struct notice v[4];
	size_t n;
};

static void note_inode(struct notes *ns, struct inode *in)
{
	for (size_t i = 0; i < ns->n; i++)
		if (ns->v[i].kind == NOTE_INODE && ns->v[i].ino == in->ino)
			return;
	if (ns->n < 4)
		ns->v[ns->n++] = (struct notice){NOTE_INODE, in->ino, NULL};
}

static void note_entry(struct notes *ns, struct inode *dir, const char *name)
{
	if (ns->n >= 4)
		return;
	char *copy = strdup(name);
	if (copy)
		ns->v[ns->n++] = (struct notice){NOTE_ENTRY, dir->ino, copy};
}

/* Something in dir's list of children changed at zxid. */
static void touch_dir(struct coordfs *fs, struct inode *dir, uint64_t zxid, struct notes *ns)
{
	dir->dir_inval_zxid = umax(dir->dir_inval_zxid, zxid);
	dir->inval_zxid = umax(dir->inval_zxid, zxid);
	dir->st_valid = 0;
	names_unref(dir->kids);
	dir->kids = NULL;
	note_inode(ns, dir);
}

static void touch_node(struct coordfs *fs, struct inode *in, uint64_t zxid, struct notes *ns)
{
	in->inval_zxid = umax(in->inval_zxid, zxid);
	cache_forget_inode(in, itable_lru(fs->it));
	if (in->pc_handles)
		in->kern_deferred = 1; /* see inode.h: sent when the last page-cached open closes */
	else
		note_inode(ns, in);
}

void cache_on_event(struct coordfs *fs, uint8_t type, const char *path, uint64_t zxid)
{
	pthread_mutex_lock(&fs->mu);
	if (type == COORD_EV_OVERFLOW) {
		pthread_mutex_unlock(&fs->mu);
		LOG_INFO("events under %s may have been lost: forgetting every cached node", path);
		cache_flush(fs, "overflow");
		return;
	}
	struct notes ns = {.n = 0};
	struct inode *node, *parent, *deepest;
	inode_walk(fs->it, path, &node, &parent, &deepest);
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	switch (type) {
	case COORD_EV_CREATED:
	case COORD_EV_DELETED:
		if (node) {
			touch_node(fs, node, zxid, &ns);
			if (type == COORD_EV_DELETED)
				node->deleted = 1;
			/* The name no longer leads there (deleted, or it was a stale mapping). */
			inode_detach(fs->it, node);
		}
		if (parent) {
			if (*base)
				dentry_forget(fs->it, parent->ino, base, strlen(base));
			touch_dir(fs, parent, zxid, &ns);
			if (*base)
				note_entry(&ns, parent, base);
		} else {
			deepest->dir_inval_zxid = umax(deepest->dir_inval_zxid, zxid);
		}
		break;
	case COORD_EV_CHANGED:
		/* A rename over an existing name and an exchange also say "changed", and then the name
		 * leads to another node: the kernel must look a changed file's name up again (the
		 * daemon keeps its mapping and checks the ino on that lookup). A directory's name is
		 * left alone: dropping it would drop every cached name below it. */
		if (node && parent && node->kind == COORD_KIND_FILE && *base)
			note_entry(&ns, parent, base);
		if (node) {
			touch_node(fs, node, zxid, &ns);
			if (node->kind == COORD_KIND_DIR)
				touch_dir(fs, node, zxid, &ns); /* a new ACL may forbid listing it */
		} else if (parent) {
			parent->dir_inval_zxid = umax(parent->dir_inval_zxid, zxid);
		} else {
			deepest->dir_inval_zxid = umax(deepest->dir_inval_zxid, zxid);
		}
		break;
	case COORD_EV_CHILDREN:
		if (node)
			touch_dir(fs, node, zxid, &ns);
		else
			deepest->dir_inval_zxid = umax(deepest->dir_inval_zxid, zxid);
		break;
	default:
		break;
	}
	struct notice *nv = NULL;
	if (ns.n) {
		nv = malloc(ns.n * sizeof(*nv));
		if (nv) {
			memcpy(nv, ns.v, ns.n * sizeof(*nv));
		} else {
			/* Cannot tell the kernel precisely: tell it to forget everything. */
			for (size_t i = 0; i < ns.n; i++)
				free(ns.v[i].name);
			ns.n = 0;
			inval_queue_flush(fs, NULL);
		}
	}
	uint64_t seq = inval_queue(fs, nv, ns.n, type, path, zxid, NULL);
	for (size_t i = 0; i < ns.n; i++) {
		struct inode *in = inode_get(fs->it, ns.v[i].ino);
		if (in)
			in->kern_queued = seq;
	}
	pthread_mutex_unlock(&fs->mu);
}

static void flush_one(void *arg, struct inode *in)
{
	struct coordfs *fs = arg;
	cache_inode_clear(itable_lru(fs->it), in);
	in->st_valid = 0;
}

void cache_flush(struct coordfs *fs, const char *line)
{
	pthread_mutex_lock(&fs->mu);
	fs->epoch++;
	inode_each(fs->it, flush_one, fs);
	inval_queue_flush(fs, line);
	pthread_mutex_unlock(&fs->mu);
}

void cache_line(struct coordfs *fs, const char *line)
{
	pthread_mutex_lock(&fs->mu);
	inval_queue(fs, NULL, 0, 0, NULL, 0, line);
	pthread_mutex_unlock(&fs->mu);
}
