/*
 * tree.c: the znode store. Each directory's children form a treap ordered by name with the
 * name's hash as priority, so the shape depends only on the set of names: two members holding
 * the same names hold the same structure, and paging through a million children costs
 * O(log n + page) per page.
 */
#include "tree.h"

#include <malloc.h>
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
 * Data up to INLINE_MAX bytes lives in the node's own allocation, after its name: one heap chunk
 * per znode instead of two (a 100-byte znode: 256 B of heap instead of 160 + 112). Data set later
 * goes there too when it fits what the allocation holds; otherwise it has a chunk of its own.
 */
#define INLINE_MAX 256

static uint8_t *inline_area(const struct znode *n) { return (uint8_t *)n->name + n->name_len; }

static size_t inline_cap(const struct znode *n)
{
	size_t usable = malloc_usable_size((void *)n), used = sizeof(*n) + n->name_len;
	return usable > used ? usable - used : 0;
}

static int data_inline(const struct znode *n) { return n->data && n->data == inline_area(n); }

static struct znode *node_new(struct tree *t, const char *name, size_t len, const void *data, size_t dlen)
{
	size_t in = dlen <= INLINE_MAX ? dlen : 0;
	struct znode *n = calloc(1, sizeof(*n) + len + in);
	if (!n)
		return NULL;
	memcpy(n->name, name, len);
	n->name_len = (uint16_t)len;
	if (in) {
		n->data = inline_area(n);
		memcpy(n->data, data, dlen);
	} else if (dlen) {
		n->data = malloc(dlen);
		if (!n->data) {
			free(n);
			return NULL;
		}
		memcpy(n->data, data, dlen);
	}
	n->data_len = (uint32_t)dlen;
	n->ino = t->next_ino++;
	return n;
}

static void hist_free(struct zhist *h)
{
	if (!h)
		return;
	for (uint32_t i = 0; i < h->n; i++)
		free(h->v[i].data);
	free(h);
}

static void node_free(struct znode *n)
{
	if (!data_inline(n))
		free(n->data);
	hist_free(n->hist);
	free(n);
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
	struct zhist *h = n->hist;
	if (!h || h->n == h->cap) {
		uint32_t cap = h ? h->cap * 2 : 2;
		if (cap > keep + 1)
			cap = keep + 1;
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
		n->hist = h = nh;
	}
	h->v[h->n++] = *v;
	h->bytes += v->len;
	t->hist_bytes += v->len;
	while (h->n > keep || h->bytes > max_bytes)
		hist_drop_oldest(t, h);
	return COORD_OK;
}

const struct zhist *tree_hist(const struct tree *t, const struct znode *n)
{
	(void)t;
	return n->hist;
}

const struct zver *tree_hist_find(const struct tree *t, const struct znode *n, int32_t version)
{
	(void)t;
	const struct zhist *h = n->hist;
	for (uint32_t i = 0; h && i < h->n; i++)
		if (h->v[i].version == version)
			return &h->v[i];
	return NULL;
}

int tree_init(struct tree *t)
{
	memset(t, 0, sizeof(*t));
	t->next_ino = 1;
	t->root = node_new(t, "", 0, NULL, 0);
	if (!t->root)
		return COORD_ENOMEM;
	t->root->kind = COORD_KIND_DIR;
	t->count = 1;
	return COORD_OK;
}

static void free_subtree(struct znode *treap)
{
	if (!treap)
		return;
	free_subtree(treap->left);
	free_subtree(treap->right);
	free_subtree(treap->kids);
	node_free(treap);
}

void tree_free(struct tree *t)
{
	if (t->root) {
		free_subtree(t->root->kids);
		node_free(t->root);
	}
	memset(t, 0, sizeof(*t));
}

struct znode *tree_child(const struct znode *dir, const char *name, size_t len)
{
	struct znode *c = dir->kids;
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
	struct znode *n = node_new(t, name, len, data, data_len);
	if (n) {
		n->kind = kind;
		n->owner = owner;
		tree_attach(t, parent, n);
	}
	return n;
}

void tree_detach(struct tree *t, struct znode *n)
{
	struct znode *p = n->parent;
	p->kids = treap_delete(p->kids, n);
	p->nkids--;
	t->count--;
	t->data_bytes -= n->data_len;
	t->hist_bytes -= n->hist ? n->hist->bytes : 0;
	n->left = n->right = NULL;
	n->parent = NULL;
}

void tree_attach(struct tree *t, struct znode *parent, struct znode *n)
{
	n->parent = parent;
	n->left = n->right = NULL;
	parent->kids = treap_insert(parent->kids, n, node_prio(n));
	parent->nkids++;
	t->count++;
	t->data_bytes += n->data_len;
	t->hist_bytes += n->hist ? n->hist->bytes : 0;
}

void tree_node_free(struct tree *t, struct znode *n)
{
	(void)t;
	node_free(n);
}

void tree_remove(struct tree *t, struct znode *n)
{
	tree_detach(t, n);
	node_free(n);
}

struct znode *tree_rename_node(struct tree *t, struct znode *n, const char *name, size_t len)
{
	(void)t;
	int in = data_inline(n);
	struct znode *m = malloc(sizeof(*m) + len + (in ? n->data_len : 0));
	if (!m)
		return NULL;
	memcpy(m, n, sizeof(*m));
	memcpy(m->name, name, len);
	m->name_len = (uint16_t)len;
	if (in) {
		m->data = inline_area(m);
		memcpy(m->data, n->data, n->data_len);
	}
	free(n);
	return m;
}

uint8_t *tree_swap_data(struct tree *t, struct znode *n, uint8_t *data, uint32_t len, uint32_t *old_len)
{
	uint8_t *old = n->data;
	*old_len = n->data_len;
	if (data_inline(n)) {
		/* The caller owns what it gets back: a copy of the inline bytes. */
		old = malloc(n->data_len);
		if (!old)
			abort(); /* as ops_oom: stop rather than diverge from the ensemble */
		memcpy(old, n->data, n->data_len);
	}
	t->data_bytes += len;
	t->data_bytes -= n->data_len;
	if (data && len <= inline_cap(n)) {
		memcpy(inline_area(n), data, len);
		free(data);
		data = inline_area(n);
	}
	n->data = data;
	n->data_len = len;
	return old;
}

int tree_append_data(struct tree *t, struct znode *n, const void *data, size_t len)
{
	if (!len)
		return COORD_OK;
	int in = data_inline(n);
	uint8_t *p = in ? malloc((size_t)n->data_len + len) : realloc(n->data, (size_t)n->data_len + len);
	if (!p)
		return COORD_ENOMEM;
	if (in)
		memcpy(p, n->data, n->data_len);
	memcpy(p + n->data_len, data, len);
	n->data = p;
	n->data_len += (uint32_t)len;
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
	page_walk(dir->kids, &pg);
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
	return walk_treap(from->kids, cb, arg);
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
	st->ephemeral_owner = (int64_t)n->owner;
	st->data_length = (int32_t)n->data_len;
	st->num_children = (int32_t)n->nkids;
	st->ino = n->ino;
	st->kind = n->kind;
	st->policy = n->policy;
}

struct digest {
	XXH64_state_t *h;
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
	XXH64_update(d->h, n->data, n->data_len);
	XXH64_update(d->h, &n->acl, sizeof(n->acl));
	for (uint32_t i = 0; n->hist && i < n->hist->n; i++) {
		const struct zver *v = &n->hist->v[i];
		XXH64_update(d->h, &v->version, sizeof(v->version));
		XXH64_update(d->h, &v->mzxid, sizeof(v->mzxid));
		XXH64_update(d->h, &v->mtime, sizeof(v->mtime));
		XXH64_update(d->h, v->data, v->len);
	}
	return 0;
}

uint64_t tree_digest(const struct tree *t)
{
	struct digest d = {XXH64_createState()};
	if (!d.h)
		return 0;
	XXH64_reset(d.h, 0);
	tree_walk(t->root, digest_node, &d);
	uint64_t v = XXH64_digest(d.h);
	XXH64_freeState(d.h);
	return v;
}
