/*
 * inode.c: the inode table and the dentry map (see inode.h for the contract).
 *
 * Two chained hash tables: inodes by nodeid, dentries by (parent nodeid, name). A positive dentry
 * is owned by its inode (in->d); negative ones are owned by the table and capped, because the
 * kernel never says when it drops a negative dentry.
 */
#include "inode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cache.h"

#define NEG_MAX 65536

struct itable {
	struct inode **ib;
	size_t nib, ninodes;
	struct dentry **db;
	size_t ndb, ndentries, nneg;
	struct lru lru;
};

struct lru *itable_lru(struct itable *t) { return &t->lru; }

static uint64_t ihash(uint64_t ino) { return ino * 0x9E3779B97F4A7C15ULL; }

static uint64_t dhash(uint64_t parent, const char *name, size_t len)
{
	return XXH64(name, len, parent);
}

struct itable *itable_new(void)
{
	struct itable *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->nib = 1024;
	t->ndb = 1024;
	t->ib = calloc(t->nib, sizeof(*t->ib));
	t->db = calloc(t->ndb, sizeof(*t->db));
	if (!t->ib || !t->db) {
		itable_free(t);
		return NULL;
	}
	return t;
}

void itable_free(struct itable *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->ib && i < t->nib; i++) {
		struct inode *in = t->ib[i];
		while (in) {
			struct inode *next = in->hnext;
			cache_inode_clear(&t->lru, in);
			free(in);
			in = next;
		}
	}
	for (size_t i = 0; t->db && i < t->ndb; i++) {
		struct dentry *d = t->db[i];
		while (d) {
			struct dentry *next = d->hnext;
			free(d);
			d = next;
		}
	}
	free(t->ib);
	free(t->db);
	free(t);
}

size_t inode_count(const struct itable *t) { return t->ninodes; }

struct inode *inode_get(struct itable *t, uint64_t ino)
{
	for (struct inode *in = t->ib[ihash(ino) & (t->nib - 1)]; in; in = in->hnext)
		if (in->ino == ino)
			return in;
	return NULL;
}

static void igrow(struct itable *t)
{
	size_t n = t->nib * 2;
	struct inode **b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < t->nib; i++) {
		struct inode *in = t->ib[i];
		while (in) {
			struct inode *next = in->hnext;
			size_t k = ihash(in->ino) & (n - 1);
			in->hnext = b[k];
			b[k] = in;
			in = next;
		}
	}
	free(t->ib);
	t->ib = b;
	t->nib = n;
}

struct inode *inode_obtain(struct itable *t, uint64_t ino, uint8_t kind)
{
	struct inode *in = inode_get(t, ino);
	if (in)
		return in;
	in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->ino = ino;
	in->kind = kind;
	size_t k = ihash(ino) & (t->nib - 1);
	in->hnext = t->ib[k];
	t->ib[k] = in;
	if (++t->ninodes > t->nib)
		igrow(t);
	return in;
}

void inode_maybe_drop(struct itable *t, struct inode *in)
{
	if (in->nlookup || in->nopen || in->ino == FUSE_ROOT_ID_VALUE)
		return;
	inode_detach(t, in);
	struct inode **pp = &t->ib[ihash(in->ino) & (t->nib - 1)];
	while (*pp && *pp != in)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = in->hnext;
	t->ninodes--;
	cache_inode_clear(&t->lru, in);
	free(in);
}

void inode_sweep(struct itable *t)
{
	for (size_t i = 0; i < t->nib; i++) {
		struct inode *in = t->ib[i];
		while (in) {
			struct inode *next = in->hnext;
			inode_maybe_drop(t, in);
			in = next;
		}
	}
}

void inode_each(struct itable *t, void (*fn)(void *arg, struct inode *in), void *arg)
{
	for (size_t i = 0; i < t->nib; i++)
		for (struct inode *in = t->ib[i]; in; in = in->hnext)
			fn(arg, in);
}

void dentry_each(struct itable *t, void (*fn)(void *arg, struct dentry *d), void *arg)
{
	for (size_t i = 0; i < t->ndb; i++)
		for (struct dentry *d = t->db[i]; d; d = d->hnext)
			fn(arg, d);
}

/* ---- dentries ---- */

static struct dentry **dslot(struct itable *t, uint64_t parent, const char *name, size_t len, uint64_t h)
{
	struct dentry **pp = &t->db[h & (t->ndb - 1)];
	while (*pp && !((*pp)->hash == h && (*pp)->parent == parent && (*pp)->len == len &&
			!memcmp((*pp)->name, name, len)))
		pp = &(*pp)->hnext;
	return pp;
}

struct dentry *dentry_find(struct itable *t, uint64_t parent, const char *name, size_t len)
{
	return *dslot(t, parent, name, len, dhash(parent, name, len));
}

static void dgrow(struct itable *t)
{
	size_t n = t->ndb * 2;
	struct dentry **b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < t->ndb; i++) {
		struct dentry *d = t->db[i];
		while (d) {
			struct dentry *next = d->hnext;
			d->hnext = b[d->hash & (n - 1)];
			b[d->hash & (n - 1)] = d;
			d = next;
		}
	}
	free(t->db);
	t->db = b;
	t->ndb = n;
}

static void dunlink(struct itable *t, struct dentry *d)
{
	struct dentry **pp = &t->db[d->hash & (t->ndb - 1)];
	while (*pp && *pp != d)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = d->hnext;
	t->ndentries--;
	if (!d->ino)
		t->nneg--;
}

/* Remove whatever holds (parent, name): a negative entry is freed, a positive one's inode detached. */
static void dclear(struct itable *t, uint64_t parent, const char *name, size_t len)
{
	struct dentry *d = dentry_find(t, parent, name, len);
	if (!d)
		return;
	if (d->ino) {
		struct inode *in = inode_get(t, d->ino);
		if (in && in->d == d) {
			inode_detach(t, in);
			return;
		}
	}
	dunlink(t, d);
	free(d);
}

static struct dentry *dadd(struct itable *t, uint64_t parent, const char *name, size_t len, uint64_t ino)
{
	if (len > 0xffff)
		return NULL;
	struct dentry *d = malloc(sizeof(*d) + len + 1);
	if (!d)
		return NULL;
	d->parent = parent;
	d->ino = ino;
	d->epoch = 0;
	d->len = (uint16_t)len;
	memcpy(d->name, name, len);
	d->name[len] = 0;
	d->hash = dhash(parent, name, len);
	size_t k = d->hash & (t->ndb - 1);
	d->hnext = t->db[k];
	t->db[k] = d;
	t->ndentries++;
	if (!ino)
		t->nneg++;
	if (t->ndentries > t->ndb)
		dgrow(t);
	return d;
}

void inode_detach(struct itable *t, struct inode *in)
{
	if (!in->d)
		return;
	dunlink(t, in->d);
	free(in->d);
	in->d = NULL;
}

int inode_link(struct itable *t, struct inode *in, uint64_t parent, const char *name, size_t len)
{
	if (in->d && in->d->parent == parent && in->d->len == len && !memcmp(in->d->name, name, len))
		return 0;
	inode_detach(t, in);
	dclear(t, parent, name, len);
	in->d = dadd(t, parent, name, len, in->ino);
	return in->d ? 0 : -1;
}

int dentry_set_negative(struct itable *t, uint64_t parent, const char *name, size_t len, uint64_t epoch)
{
	struct dentry *d = dentry_find(t, parent, name, len);
	if (d && !d->ino) {
		d->epoch = epoch;
		return 0;
	}
	if (d)
		dclear(t, parent, name, len);
	if (t->nneg >= NEG_MAX)
		return -1;
	d = dadd(t, parent, name, len, 0);
	if (!d)
		return -1;
	d->epoch = epoch;
	return 0;
}

void dentry_forget(struct itable *t, uint64_t parent, const char *name, size_t len)
{
	dclear(t, parent, name, len);
}

void dentry_drop_negatives(struct itable *t)
{
	for (size_t i = 0; i < t->ndb; i++) {
		struct dentry **pp = &t->db[i];
		while (*pp) {
			struct dentry *d = *pp;
			if (!d->ino) {
				*pp = d->hnext;
				t->ndentries--;
				t->nneg--;
				free(d);
			} else {
				pp = &d->hnext;
			}
		}
	}
}

/* ---- paths ---- */

int inode_path(struct itable *t, const struct inode *in, char *buf, size_t size)
{
	if (size < 2)
		return -ENAMETOOLONG;
	if (in->ino == FUSE_ROOT_ID_VALUE) {
		buf[0] = '/';
		buf[1] = 0;
		return 1;
	}
	/* Fill from the end, then move to the front. */
	size_t pos = size - 1;
	buf[pos] = 0;
	int depth = 0;
	const struct inode *cur = in;
	while (cur->ino != FUSE_ROOT_ID_VALUE) {
		if (!cur->d || ++depth > COORD_MAX_PATH / 2)
			return -ESTALE;
		size_t n = cur->d->len;
		if (pos < n + 1)
			return -ENAMETOOLONG;
		pos -= n;
		memcpy(buf + pos, cur->d->name, n);
		buf[--pos] = '/';
		cur = inode_get(t, cur->d->parent);
		if (!cur)
			return -ESTALE;
	}
	size_t len = size - 1 - pos;
	memmove(buf, buf + pos, len + 1);
	return (int)len;
}

int inode_child_path(struct itable *t, const struct inode *parent, const char *name, char *buf, size_t size)
{
	int n = inode_path(t, parent, buf, size);
	if (n < 0)
		return n;
	size_t nl = strlen(name);
	size_t at = n == 1 ? 1 : (size_t)n + 1;
	if (at + nl + 1 > size)
		return -ENAMETOOLONG;
	if (n != 1)
		buf[n] = '/';
	memcpy(buf + at, name, nl + 1);
	return (int)(at + nl);
}

void inode_walk(struct itable *t, const char *path, struct inode **node, struct inode **parent,
		struct inode **deepest)
{
	struct inode *cur = inode_get(t, FUSE_ROOT_ID_VALUE);
	struct inode *par = NULL;
	*node = *parent = NULL;
	*deepest = cur;
	if (!cur)
		return;
	const char *p = path;
	if (*p == '/')
		p++;
	if (!*p) {
		*node = cur;
		return;
	}
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		par = cur;
		struct dentry *d = dentry_find(t, par->ino, p, len);
		cur = d && d->ino ? inode_get(t, d->ino) : NULL;
		if (!slash) {
			*parent = par;
			*node = cur;
			return;
		}
		if (!cur)
			return;
		*deepest = cur;
		p = slash + 1;
	}
}
