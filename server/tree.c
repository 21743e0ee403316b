/*
 * tree.c: the znode store. Each directory's children form a treap ordered by name with the
 * name's hash as priority, so the shape depends only on the set of names: two members holding
 * the same names hold the same structure, and paging through a million children costs
 * O(log n + page) per page.
 */
#include "tree.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "err.h"

int tree_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int node_cmp(const struct znode *n, const char *name, size_t len)
{
	return tree_name_cmp(n->name, n->name_len, name, len);
}

static uint32_t name_prio(const char *name, size_t len)
{
	return (uint32_t)XXH64(name, len, 0x636f6f7264667321ULL);
}

/* Computed when needed rather than kept in the node: 4 bytes less per znode. */
static uint32_t node_prio(const struct znode *n) { return name_prio(n->name, n->name_len); }

uint32_t tree_node_prio(const struct znode *n) { return node_prio(n); }

/* Split t into l (names < key) and r (names > key); key itself is not in t. */
static void treap_split(struct znode *t, const char *key, size_t klen, struct znode **l, struct znode **r)
{
	if (!t) {
		*l = *r = NULL;
		return;
	}
	if (node_cmp(t, key, klen) < 0) {
		treap_split(t->right, key, klen, &t->right, r);
		*l = t;
	} else {
		treap_split(t->left, key, klen, l, &t->left);
		*r = t;
	}
}

/* Join l and r, every name in l sorting before every name in r. */
static struct znode *treap_merge(struct znode *l, struct znode *r)
{
	if (!l)
		return r;
	if (!r)
		return l;
	if (node_prio(l) > node_prio(r)) {
		l->right = treap_merge(l->right, r);
		return l;
	}
	r->left = treap_merge(l, r->left);
	return r;
}

static struct znode *treap_insert(struct znode *t, struct znode *n, uint32_t prio)
{
	if (!t)
		return n;
	if (prio > node_prio(t)) {
		treap_split(t, n->name, n->name_len, &n->left, &n->right);
		return n;
	}
	if (node_cmp(t, n->name, n->name_len) > 0)
		t->left = treap_insert(t->left, n, prio);
	else
		t->right = treap_insert(t->right, n, prio);
	return t;
}

static struct znode *treap_delete(struct znode *t, const struct znode *n)
{
	if (!t)
		return NULL;
	if (t == n)
		return treap_merge(t->left, t->right);
	if (node_cmp(t, n->name, n->name_len) > 0)
		t->left = treap_delete(t->left, n);
	else
		t->right = treap_delete(t->right, n);
	return t;
}

/*
 * Data up to INLINE_MAX bytes lives in the node's own chunk, after its name (and owner): one
 * chunk per znode instead of two. Data set later goes there too when it fits what the chunk
 * holds, up to INLINE_MAX (a reused chunk may be larger than its node needs); otherwise it has a
 * malloc'd block of its own, whose address the data area holds (so the area always has room for
 * a pointer). So every node, renamed to the longest name, fits a nodealloc chunk: which chunk a
 * node got depends on this member's allocation history, which the ensemble does not share, and
 * must never decide whether an operation succeeds.
 */
#define INLINE_MAX 256
#define HEAD offsetof(struct znode, name)

_Static_assert(offsetof(struct znode, name) == 96, "struct znode grew: memory per znode is measured (issue 7)");
_Static_assert(sizeof(struct zdir) + 96 + COORD_MAX_NAME + 8 + INLINE_MAX <= NODEALLOC_MAX,
	       "the largest node (a directory with the longest name, an owner and inline data) must fit a chunk");
_Static_assert(sizeof(struct zdir) % 8 == 0, "a directory's node must stay 8-byte aligned");

static size_t dir_bytes(uint8_t kind) { return kind == COORD_KIND_DIR ? sizeof(struct zdir) : 0; }
static char *node_chunk(const struct znode *n) { return (char *)n - dir_bytes(n->kind); }
static size_t owner_bytes(const struct znode *n) { return (n->flags & ZNODE_OWNER) ? 8 : 0; }

/* Bytes of data the chunk holds in place. */
static size_t inline_cap(const struct znode *n)
{
	size_t cap = (size_t)n->units * 8 - dir_bytes(n->kind) - HEAD - n->name_len - owner_bytes(n);
	return cap < INLINE_MAX ? cap : INLINE_MAX;
}

static uint8_t *outline_ptr(const struct znode *n)
{
	uint8_t *p;
	memcpy(&p, znode_data_area(n), sizeof(p));
	return p;
}

static void set_outline(struct znode *n, uint8_t *p)
{
	memcpy(znode_data_area(n), &p, sizeof(p));
	n->flags |= ZNODE_OUTLINE;
}

/* Chunk size for a node: the data area holds the inline data, or at least a pointer. */
static size_t node_size(uint8_t kind, size_t name_len, int owner, size_t area)
{
	return dir_bytes(kind) + HEAD + name_len + (owner ? 8 : 0) + (area > sizeof(void *) ? area : sizeof(void *));
}

static struct znode *node_new(struct tree *t, const char *name, size_t len, const void *data, size_t dlen,
			      uint8_t kind, uint64_t owner)
{
	kind = kind == COORD_KIND_DIR ? COORD_KIND_DIR : COORD_KIND_FILE;
	size_t in = dlen <= INLINE_MAX ? dlen : 0, got;
	char *chunk = nodealloc_get(&t->alloc, node_size(kind, len, owner != 0, in), &got);
	if (!chunk)
		return NULL;
	memset(chunk, 0, dir_bytes(kind) + HEAD);
	struct znode *n = (struct znode *)(chunk + dir_bytes(kind));
	n->kind = kind;
	n->units = (uint8_t)(got / 8);
	memcpy(n->name, name, len);
	n->name_len = (uint16_t)len;
	if (owner) {
		n->flags |= ZNODE_OWNER;
		memcpy(n->name + len, &owner, sizeof(owner));
	}
	if (dlen > INLINE_MAX) {
		uint8_t *p = malloc(dlen);
		if (!p) {
			nodealloc_put(&t->alloc, chunk, got);
			return NULL;
		}
		memcpy(p, data, dlen);
		set_outline(n, p);
	} else if (dlen) {
		memcpy(znode_data_area(n), data, dlen);
	}
	n->data_len = (uint32_t)dlen;
	n->ino = t->next_ino++;
	return n;
}

/* ---- the history table: ino -> struct zhist, only for nodes with kept versions */

static size_t hist_slot(const struct tree *t, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 32) & (t->hist_cap - 1);
}

static struct zhist *hist_get(const struct tree *t, const struct znode *n)
{
	if (!(n->flags & ZNODE_HIST))
		return NULL;
	for (size_t i = hist_slot(t, n->ino);; i = (i + 1) & (t->hist_cap - 1))
		if (t->hist[i].ino == n->ino)
			return t->hist[i].h;
}

/* Insert or replace; the table has room (hist_grow). */
static void hist_set(struct tree *t, uint64_t ino, struct zhist *h)
{
	size_t i = hist_slot(t, ino);
	while (t->hist[i].ino && t->hist[i].ino != ino)
		i = (i + 1) & (t->hist_cap - 1);
	if (!t->hist[i].ino)
		t->hist_n++;
	t->hist[i].ino = ino;
	t->hist[i].h = h;
}

/* Room for one more entry at a load of at most 3/4. COORD_OK or COORD_ENOMEM. */
static int hist_grow(struct tree *t)
{
	if ((t->hist_n + 1) * 4 <= t->hist_cap * 3)
		return COORD_OK;
	size_t cap = t->hist_cap ? t->hist_cap * 2 : 64;
	struct tree_histent *old = t->hist, *nt = calloc(cap, sizeof(*nt));
	if (!nt)
		return COORD_ENOMEM;
	size_t oldcap = t->hist_cap;
	t->hist = nt;
	t->hist_cap = cap;
	t->hist_n = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].ino)
			hist_set(t, old[i].ino, old[i].h);
	free(old);
	return COORD_OK;
}

/* Remove ino's entry (present), shifting later entries of its probe run back into the gap. */
static void hist_del(struct tree *t, uint64_t ino)
{
	size_t mask = t->hist_cap - 1, i = hist_slot(t, ino);
	while (t->hist[i].ino != ino)
		i = (i + 1) & mask;
	for (size_t j = (i + 1) & mask; t->hist[j].ino; j = (j + 1) & mask) {
		size_t home = hist_slot(t, t->hist[j].ino);
		/* j's entry may move to i when its home is not in (i, j] (cyclically) */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->hist[i] = t->hist[j];
			i = j;
		}
	}
	t->hist[i].ino = 0;
	t->hist[i].h = NULL;
	t->hist_n--;
}

static void hist_free(struct zhist *h)
{
	if (!h)
		return;
	for (uint32_t i = 0; i < h->n; i++)
		free(h->v[i].data);
	free(h);
}

static void node_free(struct tree *t, struct znode *n)
{
	if (n->flags & ZNODE_OUTLINE)
		free(outline_ptr(n));
	if (n->flags & ZNODE_HIST) {
		hist_free(hist_get(t, n));
		hist_del(t, n->ino);
	}
	nodealloc_put(&t->alloc, node_chunk(n), (size_t)n->units * 8);
}

static void hist_drop_oldest(struct tree *t, struct zhist *h)
{
	t->hist_bytes -= h->v[0].len;
	h->bytes -= h->v[0].len;
	free(h->v[0].data);
	memmove(&h->v[0], &h->v[1], (h->n - 1) * sizeof(h->v[0]));
	h->n--;
}

int tree_hist_push(struct tree *t, struct znode *n, const struct zver *v, uint32_t keep, uint64_t max_bytes)
{
	if (!keep || v->len > max_bytes) {
		free(v->data);
		return COORD_OK;
	}
	struct zhist *h = hist_get(t, n);
	if (!h || h->n == h->cap) {
		uint32_t cap = h ? h->cap * 2 : 2;
		if (cap > keep + 1)
			cap = keep + 1;
		if (!h && hist_grow(t)) {
			free(v->data);
			return COORD_ENOMEM;
		}
		struct zhist *nh = realloc(h, sizeof(*nh) + cap * sizeof(nh->v[0]));
		if (!nh) {
			free(v->data);
			return COORD_ENOMEM;
		}
		if (!h) {
			nh->n = 0;
			nh->bytes = 0;
		}
		nh->cap = cap;
		hist_set(t, n->ino, nh);
		n->flags |= ZNODE_HIST;
		h = nh;
	}
	h->v[h->n++] = *v;
	h->bytes += v->len;
	t->hist_bytes += v->len;
	while (h->n > keep || h->bytes > max_bytes)
		hist_drop_oldest(t, h);
	return COORD_OK;
}

const struct zhist *tree_hist(const struct tree *t, const struct znode *n) { return hist_get(t, n); }

const struct zver *tree_hist_find(const struct tree *t, const struct znode *n, int32_t version)
{
	const struct zhist *h = hist_get(t, n);
	for (uint32_t i = 0; h && i < h->n; i++)
		if (h->v[i].version == version)
			return &h->v[i];
	return NULL;
}

int tree_init(struct tree *t)
{
	memset(t, 0, sizeof(*t));
	nodealloc_init(&t->alloc);
	t->next_ino = 1;
	t->root = node_new(t, "", 0, NULL, 0, COORD_KIND_DIR, 0);
	if (!t->root)
		return COORD_ENOMEM;
	t->count = 1;
	return COORD_OK;
}

/* Free what nodes hold outside their chunks (the chunks go with the allocator's slabs). */
static void free_subtree(struct znode *treap)
{
	while (treap) {
		free_subtree(treap->left);
		free_subtree(znode_kids(treap));
		if (treap->flags & ZNODE_OUTLINE)
			free(outline_ptr(treap));
		treap = treap->right; /* tail loop instead of recursion */
	}
}

void tree_free(struct tree *t)
{
	if (t->root) {
		free_subtree(t->root);
		for (size_t i = 0; i < t->hist_cap; i++)
			if (t->hist[i].ino)
				hist_free(t->hist[i].h);
		free(t->hist);
		nodealloc_free(&t->alloc);
	}
	memset(t, 0, sizeof(*t));
}

struct znode *tree_child(const struct znode *dir, const char *name, size_t len)
{
	struct znode *c = znode_kids(dir);
	while (c) {
		int r = node_cmp(c, name, len);
		if (r == 0)
			return c;
		c = r > 0 ? c->left : c->right;
	}
	return NULL;
}

struct znode *tree_lookup(const struct tree *t, const char *path, size_t len)
{
	struct znode *n = t->root;
	size_t i = 1;
	while (n && i < len) {
		size_t j = i;
		while (j < len && path[j] != '/')
			j++;
		n = tree_child(n, path + i, j - i);
		i = j + 1;
	}
	return n;
}

struct znode *tree_add(struct tree *t, struct znode *parent, const char *name, size_t len,
		       const void *data, size_t data_len, uint8_t kind, uint64_t owner)
{
	struct znode *n = node_new(t, name, len, data, data_len, kind, owner);
	if (n)
		tree_attach(t, parent, n);
	return n;
}

static uint64_t node_hist_bytes(const struct tree *t, const struct znode *n)
{
	const struct zhist *h = hist_get(t, n);
	return h ? h->bytes : 0;
}

void tree_detach(struct tree *t, struct znode *n)
{
	struct zdir *p = znode_dir(n->parent);
	p->kids = treap_delete(p->kids, n);
	p->nkids--;
	t->count--;
	t->data_bytes -= n->data_len;
	t->hist_bytes -= node_hist_bytes(t, n);
	n->left = n->right = NULL;
	n->parent = NULL;
}

void tree_attach(struct tree *t, struct znode *parent, struct znode *n)
{
	struct zdir *p = znode_dir(parent);
	if (!p)
		abort(); /* a file has no children: the callers check (ENOTDIR) */
	n->parent = parent;
	n->left = n->right = NULL;
	p->kids = treap_insert(p->kids, n, node_prio(n));
	p->nkids++;
	t->count++;
	t->data_bytes += n->data_len;
	t->hist_bytes += node_hist_bytes(t, n);
}

void tree_node_free(struct tree *t, struct znode *n) { node_free(t, n); }

void tree_remove(struct tree *t, struct znode *n)
{
	tree_detach(t, n);
	node_free(t, n);
}

struct znode *tree_rename_node(struct tree *t, struct znode *n, const char *name, size_t len)
{
	int out = (n->flags & ZNODE_OUTLINE) != 0;
	size_t area = out ? sizeof(void *) : n->data_len, got, pre = dir_bytes(n->kind);
	char *chunk = nodealloc_get(&t->alloc, node_size(n->kind, len, (n->flags & ZNODE_OWNER) != 0, area), &got);
	if (!chunk)
		return NULL;
	memcpy(chunk, node_chunk(n), pre + HEAD);
	struct znode *m = (struct znode *)(chunk + pre);
	m->units = (uint8_t)(got / 8);
	m->name_len = (uint16_t)len;
	memcpy(m->name, name, len);
	memcpy(m->name + len, n->name + n->name_len, owner_bytes(n) + area);
	nodealloc_put(&t->alloc, node_chunk(n), (size_t)n->units * 8);
	return m;
}

uint8_t *tree_swap_data(struct tree *t, struct znode *n, uint8_t *data, uint32_t len, uint32_t *old_len)
{
	uint8_t *old = NULL;
	*old_len = n->data_len;
	if (n->flags & ZNODE_OUTLINE) {
		old = outline_ptr(n);
	} else if (n->data_len) {
		/* The caller owns what it gets back: a copy of the inline bytes. */
		old = malloc(n->data_len);
		if (!old)
			abort(); /* as ops_oom: stop rather than diverge from the ensemble */
		memcpy(old, znode_data_area(n), n->data_len);
	}
	t->data_bytes += len;
	t->data_bytes -= n->data_len;
	if (len <= inline_cap(n)) {
		if (len)
			memcpy(znode_data_area(n), data, len);
		free(data);
		n->flags &= ~ZNODE_OUTLINE;
	} else {
		set_outline(n, data);
	}
	n->data_len = len;
	return old;
}

int tree_append_data(struct tree *t, struct znode *n, const void *data, size_t len)
{
	if (!len)
		return COORD_OK;
	size_t total = (size_t)n->data_len + len;
	if (n->flags & ZNODE_OUTLINE) {
		uint8_t *p = realloc(outline_ptr(n), total);
		if (!p)
			return COORD_ENOMEM;
		memcpy(p + n->data_len, data, len);
		set_outline(n, p);
	} else if (total <= inline_cap(n)) {
		memcpy(znode_data_area(n) + n->data_len, data, len);
	} else {
		uint8_t *p = malloc(total);
		if (!p)
			return COORD_ENOMEM;
		memcpy(p, znode_data_area(n), n->data_len);
		memcpy(p + n->data_len, data, len);
		set_outline(n, p);
	}
	n->data_len = (uint32_t)total;
	t->data_bytes += len;
	return COORD_OK;
}

struct page {
	const char *after;
	size_t alen, max, count;
	int from_start, stop, more;
	void (*cb)(void *, const struct znode *);
	void *arg;
};

static void page_walk(const struct znode *c, struct page *pg)
{
	while (c && !pg->stop) {
		if (pg->from_start || node_cmp(c, pg->after, pg->alen) > 0) {
			page_walk(c->left, pg);
			if (pg->stop)
				return;
			if (pg->count == pg->max) {
				pg->more = 1;
				pg->stop = 1;
				return;
			}
			pg->cb(pg->arg, c);
			pg->count++;
		}
		c = c->right; /* tail loop instead of recursion */
	}
}

size_t tree_children_after(const struct znode *dir, const char *after, size_t alen, size_t max,
			   void (*cb)(void *arg, const struct znode *child), void *arg, int *more)
{
	struct page pg = {after, alen, max, 0, alen == 0, 0, 0, cb, arg};
	page_walk(znode_kids(dir), &pg);
	if (more)
		*more = pg.more;
	return pg.count;
}

static int walk_treap(const struct znode *c, int (*cb)(void *, const struct znode *), void *arg);

int tree_walk(const struct znode *from, int (*cb)(void *arg, const struct znode *n), void *arg)
{
	int r = cb(arg, from);
	if (r)
		return r;
	return walk_treap(znode_kids(from), cb, arg);
}

static int walk_treap(const struct znode *c, int (*cb)(void *, const struct znode *), void *arg)
{
	while (c) {
		int r = walk_treap(c->left, cb, arg);
		if (r)
			return r;
		if ((r = tree_walk(c, cb, arg)))
			return r;
		c = c->right;
	}
	return 0;
}

size_t tree_path(const struct znode *n, char *buf, size_t len)
{
	if (!n->parent) {
		if (len < 2)
			return 0;
		buf[0] = '/';
		buf[1] = 0;
		return 1;
	}
	size_t total = 0;
	for (const struct znode *p = n; p->parent; p = p->parent)
		total += 1 + p->name_len;
	if (total + 1 > len)
		return 0;
	size_t end = total;
	buf[end] = 0;
	for (const struct znode *p = n; p->parent; p = p->parent) {
		end -= p->name_len;
		memcpy(buf + end, p->name, p->name_len);
		buf[--end] = '/';
	}
	return total;
}

void tree_stat(const struct znode *n, struct coord_stat *st)
{
	st->czxid = n->czxid;
	st->mzxid = n->mzxid;
	st->pzxid = n->pzxid;
	st->ctime = n->ctime;
	st->mtime = n->mtime;
	st->version = n->version;
	st->cversion = n->cversion;
	st->aversion = n->aversion;
	st->ephemeral_owner = (int64_t)znode_owner(n);
	st->data_length = (int32_t)n->data_len;
	st->num_children = (int32_t)znode_nkids(n);
	st->ino = n->ino;
	st->kind = n->kind;
	st->policy = n->policy;
}

struct digest {
	XXH64_state_t *h;
	const struct tree *t;
};

static int digest_node(void *arg, const struct znode *n)
{
	struct digest *d = arg;
	/* The parent's ino ties each node to its place, so equal digests mean equal shapes. */
	uint64_t parent = n->parent ? n->parent->ino : 0;
	XXH64_update(d->h, &parent, sizeof(parent));
	XXH64_update(d->h, &n->name_len, sizeof(n->name_len));
	XXH64_update(d->h, n->name, n->name_len);
	struct coord_stat st;
	memset(&st, 0, sizeof(st));
	tree_stat(n, &st);
	struct buf b;
	buf_init(&b);
	coord_stat_put(&b, &st);
	XXH64_update(d->h, b.p, b.len);
	buf_free(&b);
	XXH64_update(d->h, znode_data(n), n->data_len);
	XXH64_update(d->h, &n->acl, sizeof(n->acl));
	const struct zhist *h = hist_get(d->t, n);
	for (uint32_t i = 0; h && i < h->n; i++) {
		const struct zver *v = &h->v[i];
		XXH64_update(d->h, &v->version, sizeof(v->version));
		XXH64_update(d->h, &v->mzxid, sizeof(v->mzxid));
		XXH64_update(d->h, &v->mtime, sizeof(v->mtime));
		XXH64_update(d->h, v->data, v->len);
	}
	return 0;
}

uint64_t tree_digest(const struct tree *t)
{
	struct digest d = {XXH64_createState(), t};
	if (!d.h)
		return 0;
	XXH64_reset(d.h, 0);
	tree_walk(t->root, digest_node, &d);
	uint64_t v = XXH64_digest(d.h);
	XXH64_freeState(d.h);
	return v;
}
