/*
 * test_tree.c: the znode store (server/tree.c).
 *
 * Add, lookup and remove; paging through a directory of 100,000 children reproduces the sorted
 * list exactly with the right `more` flag; paths; detach/attach and renaming a detached node;
 * the treap stays a valid binary search tree and heap; digests agree for equal trees built in
 * different orders and disagree after any change.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "nodealloc.h"
#include "tree.h"

static struct znode *add_kind(struct tree *t, struct znode *parent, const char *name, const char *data, uint8_t kind,
			      uint64_t owner)
{
	struct znode *n = tree_add(t, parent, name, strlen(name), data, data ? strlen(data) : 0, kind, owner);
	CHECK(n);
	CHECK_EQ(n->kind, kind);
	CHECK_EQ(znode_owner(n), owner);
	return n;
}

/* A persistent directory (only a directory can have children). */
static struct znode *add(struct tree *t, struct znode *parent, const char *name, const char *data)
{
	return add_kind(t, parent, name, data, COORD_KIND_DIR, 0);
}

/* n (without children) made again with another kind and owner, which are fixed when a node is
 * made: same name, data, Stat and ino. */
static struct znode *remake(struct tree *t, struct znode *n, uint8_t kind, uint64_t owner)
{
	struct znode *p = n->parent;
	tree_detach(t, n);
	struct znode *m = tree_add(t, p, n->name, n->name_len, znode_data(n), n->data_len, kind, owner);
	CHECK(m);
	t->next_ino--;
	m->czxid = n->czxid, m->mzxid = n->mzxid, m->pzxid = n->pzxid, m->ctime = n->ctime, m->mtime = n->mtime;
	m->version = n->version, m->cversion = n->cversion, m->aversion = n->aversion;
	m->acl = n->acl, m->policy = n->policy, m->ino = n->ino;
	tree_node_free(t, n);
	return m;
}

static struct znode *look(struct tree *t, const char *path)
{
	return tree_lookup(t, path, strlen(path));
}

/* Check the treap under `c`: names in order within (lo, hi), heap order of priorities,
 * parent pointers; returns the number of nodes. */
static size_t treap_check(const struct znode *c, const struct znode *dir, const struct znode *lo,
			  const struct znode *hi, size_t depth, size_t *maxdepth)
{
	if (!c)
		return 0;
	if (depth > *maxdepth)
		*maxdepth = depth;
	CHECK(c->parent == dir);
	if (lo)
		CHECK(tree_name_cmp(lo->name, lo->name_len, c->name, c->name_len) < 0);
	if (hi)
		CHECK(tree_name_cmp(c->name, c->name_len, hi->name, hi->name_len) < 0);
	if (c->left)
		CHECK(tree_node_prio(c->left) <= tree_node_prio(c));
	if (c->right)
		CHECK(tree_node_prio(c->right) <= tree_node_prio(c));
	return 1 + treap_check(c->left, dir, lo, c, depth + 1, maxdepth) +
	       treap_check(c->right, dir, c, hi, depth + 1, maxdepth);
}

static void check_dir(const struct znode *dir)
{
	size_t maxdepth = 0;
	CHECK_EQ(treap_check(znode_kids(dir), dir, NULL, NULL, 1, &maxdepth), znode_nkids(dir));
}

static void test_name_cmp(void)
{
	CHECK(tree_name_cmp("a", 1, "b", 1) < 0);
	CHECK(tree_name_cmp("b", 1, "a", 1) > 0);
	CHECK(tree_name_cmp("a", 1, "ab", 2) < 0);
	CHECK(tree_name_cmp("ab", 2, "a", 1) > 0);
	CHECK_EQ(tree_name_cmp("ab", 2, "ab", 2), 0);
	/* bytewise, unsigned */
	CHECK(tree_name_cmp("\xc3\xa9", 2, "z", 1) > 0);
	CHECK(tree_name_cmp("B", 1, "a", 1) < 0);
}

static void test_basic(void)
{
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	CHECK_EQ(t.count, 1);
	CHECK(look(&t, "/") == t.root);
	CHECK_EQ(t.root->kind, COORD_KIND_DIR);
	CHECK(t.root->parent == NULL);
	CHECK(look(&t, "/a") == NULL);

	struct znode *a = add(&t, t.root, "a", "hello");
	struct znode *b = add(&t, a, "b", NULL);
	struct znode *c = add(&t, a, "c", "xyz");
	CHECK_EQ(t.count, 4);
	CHECK_EQ(t.data_bytes, 8);
	CHECK(look(&t, "/a") == a);
	CHECK(look(&t, "/a/b") == b);
	CHECK(look(&t, "/a/c") == c);
	CHECK(look(&t, "/a/d") == NULL);
	CHECK(look(&t, "/a/b/c") == NULL);
	CHECK(look(&t, "/b") == NULL);
	CHECK(tree_child(a, "b", 1) == b);
	CHECK(tree_child(a, "bb", 2) == NULL);
	CHECK(tree_child(t.root, "a", 1) == a);
	CHECK_EQ(znode_nkids(a), 2);
	CHECK_EQ(znode_nkids(t.root), 1);
	CHECK_EQ(a->data_len, 5);
	CHECK(!memcmp(znode_data(a), "hello", 5));
	CHECK_EQ(b->data_len, 0);
	/* inode numbers: root 1, then in creation order, never reused */
	CHECK_EQ(t.root->ino, 1);
	CHECK_EQ(a->ino, 2);
	CHECK_EQ(b->ino, 3);
	CHECK_EQ(c->ino, 4);

	struct coord_stat st;
	memset(&st, 0xff, sizeof(st));
	a->czxid = 5, a->mzxid = 6, a->pzxid = 7, a->ctime = 8, a->mtime = 9;
	a->version = 10, a->cversion = 11, a->aversion = 12;
	a->policy = COORD_POLICY_SEQUENTIAL;
	tree_stat(a, &st);
	CHECK_EQ(st.czxid, 5);
	CHECK_EQ(st.mzxid, 6);
	CHECK_EQ(st.pzxid, 7);
	CHECK_EQ(st.ctime, 8);
	CHECK_EQ(st.mtime, 9);
	CHECK_EQ(st.version, 10);
	CHECK_EQ(st.cversion, 11);
	CHECK_EQ(st.aversion, 12);
	CHECK_EQ(st.ephemeral_owner, 0);
	CHECK_EQ(st.data_length, 5);
	CHECK_EQ(st.num_children, 2);
	CHECK_EQ(st.ino, 2);
	CHECK_EQ(st.kind, COORD_KIND_DIR);
	CHECK_EQ(st.policy, COORD_POLICY_SEQUENTIAL);
	struct znode *eph = add_kind(&t, a, "eph", "e", COORD_KIND_FILE, 13);
	tree_stat(eph, &st);
	CHECK_EQ(st.ephemeral_owner, 13);
	CHECK_EQ(st.kind, COORD_KIND_FILE);
	CHECK_EQ(st.num_children, 0);
	CHECK(znode_kids(eph) == NULL);
	tree_remove(&t, eph);
	CHECK_EQ(t.data_bytes, 8);

	tree_remove(&t, c);
	CHECK(look(&t, "/a/c") == NULL);
	CHECK_EQ(znode_nkids(a), 1);
	CHECK_EQ(t.count, 3);
	CHECK_EQ(t.data_bytes, 5);
	struct znode *c2 = add(&t, a, "c", NULL);
	CHECK_EQ(c2->ino, 6); /* not 4 again (5 was eph) */
	tree_remove(&t, b);
	tree_remove(&t, c2);
	tree_remove(&t, a);
	CHECK_EQ(t.count, 1);
	CHECK_EQ(t.data_bytes, 0);
	CHECK_EQ(znode_nkids(t.root), 0);
	CHECK(znode_kids(t.root) == NULL);
	tree_free(&t);
}

static void test_data(void)
{
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	struct znode *a = add(&t, t.root, "a", "abc");
	uint8_t *nd = malloc(4);
	memcpy(nd, "wxyz", 4);
	uint32_t old_len = 99;
	uint8_t *old = tree_swap_data(&t, a, nd, 4, &old_len);
	CHECK_EQ(old_len, 3);
	CHECK(!memcmp(old, "abc", 3));
	free(old);
	CHECK_EQ(t.data_bytes, 4);
	CHECK_EQ(tree_append_data(&t, a, "12", 2), COORD_OK);
	CHECK_EQ(a->data_len, 6);
	CHECK(!memcmp(znode_data(a), "wxyz12", 6));
	CHECK_EQ(t.data_bytes, 6);
	CHECK_EQ(tree_append_data(&t, a, NULL, 0), COORD_OK);
	CHECK_EQ(a->data_len, 6);
	old = tree_swap_data(&t, a, NULL, 0, &old_len);
	CHECK_EQ(old_len, 6);
	free(old);
	CHECK_EQ(t.data_bytes, 0);
	CHECK_EQ(tree_append_data(&t, a, "q", 1), COORD_OK);
	CHECK_EQ(t.data_bytes, 1);
	tree_free(&t);
}

struct collect {
	char **names;
	size_t n, cap;
};

static void collect_cb(void *arg, const struct znode *child)
{
	struct collect *c = arg;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->names = realloc(c->names, c->cap * sizeof(*c->names));
		CHECK(c->names);
	}
	char *s = malloc(child->name_len + 1u);
	CHECK(s);
	memcpy(s, child->name, child->name_len);
	s[child->name_len] = 0;
	c->names[c->n++] = s;
}

static void collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	memset(c, 0, sizeof(*c));
}

static int cmp_str(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	return tree_name_cmp(x, strlen(x), y, strlen(y));
}

static uint64_t rng_state = 0x853c49e6748fea9bULL;
static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void test_paging(void)
{
	enum { N = 100000, PAGE = 1000 };
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	struct znode *d = add(&t, t.root, "d", NULL);
	/* names of varied lengths and shapes, inserted in a shuffled order */
	char **names = malloc(N * sizeof(*names));
	CHECK(names);
	for (size_t i = 0; i < N; i++) {
		char buf[64];
		switch (i % 4) {
		case 0: snprintf(buf, sizeof(buf), "n%zu", i); break;
		case 1: snprintf(buf, sizeof(buf), "job%010zu", i); break;
		case 2: snprintf(buf, sizeof(buf), "%zx", i * 2654435761u); break;
		default: snprintf(buf, sizeof(buf), "z-%zu-%c", i, (char)('a' + i % 26)); break;
		}
		names[i] = strdup(buf);
		CHECK(names[i]);
	}
	for (size_t i = N; i-- > 1;) {
		size_t j = (size_t)(rnd() % (i + 1));
		char *tmp = names[i];
		names[i] = names[j];
		names[j] = tmp;
	}
	for (size_t i = 0; i < N; i++)
		add(&t, d, names[i], NULL);
	CHECK_EQ(znode_nkids(d), N);
	check_dir(d);
	size_t maxdepth = 0;
	treap_check(znode_kids(d), d, NULL, NULL, 1, &maxdepth);
	CHECK(maxdepth < 100); /* expected ~2.5 log2(N) ~ 42 */
	for (size_t i = 0; i < N; i += 997)
		CHECK(tree_child(d, names[i], strlen(names[i])) != NULL);
	qsort(names, N, sizeof(*names), cmp_str);

	/* pages of PAGE, each starting after the last name of the previous one */
	struct collect all = {0};
	const char *after = "";
	size_t pages = 0;
	for (;;) {
		int more = -1;
		size_t before = all.n;
		size_t got = tree_children_after(d, after, strlen(after), PAGE, collect_cb, &all, &more);
		CHECK_EQ(got, all.n - before);
		pages++;
		if (all.n < N) {
			CHECK_EQ(got, PAGE);
			CHECK_EQ(more, 1);
		} else {
			CHECK_EQ(more, 0);
		}
		if (!more)
			break;
		after = all.names[all.n - 1];
	}
	CHECK_EQ(pages, N / PAGE);
	CHECK_EQ(all.n, N);
	for (size_t i = 0; i < N; i++)
		CHECK_STR(all.names[i], names[i]);
	collect_free(&all);

	/* everything in one call; a page exactly as large as what remains has more=0 */
	int more = -1;
	CHECK_EQ(tree_children_after(d, "", 0, N, collect_cb, &all, &more), N);
	CHECK_EQ(more, 0);
	collect_free(&all);
	CHECK_EQ(tree_children_after(d, "", 0, N - 1, collect_cb, &all, &more), N - 1);
	CHECK_EQ(more, 1);
	collect_free(&all);
	/* after the second-to-last: one left */
	CHECK_EQ(tree_children_after(d, names[N - 2], strlen(names[N - 2]), 5, collect_cb, &all, &more), 1);
	CHECK_EQ(more, 0);
	CHECK_STR(all.names[0], names[N - 1]);
	collect_free(&all);
	/* after the last: none */
	CHECK_EQ(tree_children_after(d, names[N - 1], strlen(names[N - 1]), 5, collect_cb, &all, &more), 0);
	CHECK_EQ(more, 0);
	/* after a name that is not there: starts at the next one in order */
	char probe[80];
	snprintf(probe, sizeof(probe), "%s!", names[500]); /* '!' sorts before the digits and letters */
	CHECK_EQ(tree_children_after(d, probe, strlen(probe), 3, collect_cb, &all, &more), 3);
	CHECK_EQ(more, 1);
	CHECK_STR(all.names[0], names[501]);
	CHECK_STR(all.names[2], names[503]);
	collect_free(&all);
	/* a prefix of an existing name sorts before it */
	CHECK_EQ(tree_children_after(d, "n", 1, 1, collect_cb, &all, &more), 1);
	CHECK(all.names[0][0] == 'n');
	collect_free(&all);
	/* max 0: nothing visited, more when any child exists */
	CHECK_EQ(tree_children_after(d, "", 0, 0, collect_cb, &all, &more), 0);
	CHECK_EQ(more, 1);
	/* an empty directory */
	struct znode *e = add(&t, t.root, "e", NULL);
	CHECK_EQ(tree_children_after(e, "", 0, 10, collect_cb, &all, &more), 0);
	CHECK_EQ(more, 0);
	CHECK_EQ(tree_children_after(e, "", 0, 0, collect_cb, &all, &more), 0);
	CHECK_EQ(more, 0);
	/* more may be NULL */
	CHECK_EQ(tree_children_after(d, "", 0, 2, collect_cb, &all, NULL), 2);
	collect_free(&all);

	/* delete every other name (in shuffled order), then page again */
	size_t *order = malloc(N * sizeof(*order));
	CHECK(order);
	for (size_t i = 0; i < N; i++)
		order[i] = i;
	for (size_t i = N; i-- > 1;) {
		size_t j = (size_t)(rnd() % (i + 1));
		size_t tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	for (size_t k = 0; k < N; k++) {
		size_t i = order[k];
		if (i % 2)
			continue;
		struct znode *n = tree_child(d, names[i], strlen(names[i]));
		CHECK(n);
		tree_remove(&t, n);
	}
	free(order);
	CHECK_EQ(znode_nkids(d), N / 2);
	check_dir(d);
	after = "";
	for (;;) {
		size_t got = tree_children_after(d, after, strlen(after), 777, collect_cb, &all, &more);
		if (!more)
			break;
		CHECK_EQ(got, 777);
		after = all.names[all.n - 1];
	}
	CHECK_EQ(all.n, N / 2);
	for (size_t i = 0; i < N / 2; i++)
		CHECK_STR(all.names[i], names[2 * i + 1]);
	collect_free(&all);

	for (size_t i = 0; i < N; i++)
		free(names[i]);
	free(names);
	CHECK_EQ(t.count, 2 + N / 2 + 1);
	tree_free(&t);
}

static void test_path(void)
{
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	char buf[64];
	CHECK_EQ(tree_path(t.root, buf, sizeof(buf)), 1);
	CHECK_STR(buf, "/");
	CHECK_EQ(tree_path(t.root, buf, 1), 0);
	struct znode *a = add(&t, t.root, "alpha", NULL);
	struct znode *b = add(&t, a, "b", NULL);
	struct znode *c = add(&t, b, "gamma", NULL);
	CHECK_EQ(tree_path(a, buf, sizeof(buf)), 6);
	CHECK_STR(buf, "/alpha");
	CHECK_EQ(tree_path(c, buf, sizeof(buf)), 14);
	CHECK_STR(buf, "/alpha/b/gamma");
	/* exactly fits (with the NUL), one byte short */
	CHECK_EQ(tree_path(c, buf, 15), 14);
	CHECK_STR(buf, "/alpha/b/gamma");
	memset(buf, 'x', sizeof(buf));
	CHECK_EQ(tree_path(c, buf, 14), 0);

	/* deep path of max length round-trips through lookup */
	static char deep[COORD_MAX_PATH + 16];
	struct znode *n = t.root;
	size_t len = 0;
	while (len + 2 <= COORD_MAX_PATH) {
		n = add(&t, n, "x", NULL);
		deep[len++] = '/';
		deep[len++] = 'x';
	}
	deep[len] = 0;
	static char got[COORD_MAX_PATH + 16];
	CHECK_EQ(tree_path(n, got, sizeof(got)), len);
	CHECK_STR(got, deep);
	CHECK(tree_lookup(&t, deep, len) == n);
	tree_free(&t);
}

static void test_detach_attach_rename(void)
{
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	struct znode *a = add(&t, t.root, "a", NULL);
	struct znode *b = add(&t, t.root, "b", NULL);
	for (int i = 0; i < 50; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "k%02d", i);
		add(&t, a, nm, i % 2 ? "odd" : NULL);
	}
	CHECK_EQ(t.count, 53);
	CHECK_EQ(t.data_bytes, 75);
	struct znode *k7 = look(&t, "/a/k07");
	CHECK(k7);
	uint64_t ino = k7->ino;
	k7->version = 4;
	k7->mzxid = 99;
	tree_detach(&t, k7);
	CHECK(k7->parent == NULL && k7->left == NULL && k7->right == NULL);
	CHECK(look(&t, "/a/k07") == NULL);
	CHECK_EQ(znode_nkids(a), 49);
	CHECK_EQ(t.count, 52);
	CHECK_EQ(t.data_bytes, 72);
	check_dir(a);
	/* back where it was */
	tree_attach(&t, a, k7);
	CHECK(look(&t, "/a/k07") == k7);
	CHECK_EQ(t.count, 53);
	CHECK_EQ(t.data_bytes, 75);
	check_dir(a);
	/* move under b with a new name */
	tree_detach(&t, k7);
	struct znode *m = tree_rename_node(&t, k7, "moved-with-a-longer-name", 24);
	CHECK(m);
	CHECK_EQ(m->ino, ino);
	CHECK_EQ(m->version, 4);
	CHECK_EQ(m->mzxid, 99);
	CHECK_EQ(m->data_len, 3);
	CHECK(!memcmp(znode_data(m), "odd", 3));
	CHECK_EQ(m->name_len, 24);
	tree_attach(&t, b, m);
	CHECK(look(&t, "/b/moved-with-a-longer-name") == m);
	CHECK(look(&t, "/a/k07") == NULL);
	CHECK_EQ(znode_nkids(a), 49);
	CHECK_EQ(znode_nkids(b), 1);
	check_dir(a);
	check_dir(b);
	char buf[64];
	tree_path(m, buf, sizeof(buf));
	CHECK_STR(buf, "/b/moved-with-a-longer-name");
	/* shorter name */
	tree_detach(&t, m);
	m = tree_rename_node(&t, m, "s", 1);
	tree_attach(&t, a, m);
	CHECK(look(&t, "/a/s") == m);
	check_dir(a);
	/* detach + free */
	tree_detach(&t, m);
	tree_node_free(&t, m);
	CHECK_EQ(t.count, 52);
	CHECK_EQ(t.data_bytes, 72);
	/* rename every child in place (detach, rename, attach) keeps the treap valid */
	struct collect c = {0};
	tree_children_after(a, "", 0, 1000, collect_cb, &c, NULL);
	for (size_t i = 0; i < c.n; i++) {
		struct znode *x = tree_child(a, c.names[i], strlen(c.names[i]));
		CHECK(x);
		tree_detach(&t, x);
		char nm[32];
		snprintf(nm, sizeof(nm), "r%zu", 1000 - i);
		x = tree_rename_node(&t, x, nm, strlen(nm));
		tree_attach(&t, a, x);
		check_dir(a);
	}
	collect_free(&c);
	CHECK_EQ(znode_nkids(a), 49);
	CHECK(look(&t, "/a/r1000") != NULL);
	CHECK(look(&t, "/a/k00") == NULL);
	tree_free(&t);
}

struct walk_acc {
	char paths[64][32];
	int n, stop_at;
};

static int walk_cb(void *arg, const struct znode *n)
{
	struct walk_acc *w = arg;
	tree_path(n, w->paths[w->n], sizeof(w->paths[0]));
	w->n++;
	return w->n == w->stop_at ? 7 : 0;
}

static void test_walk(void)
{
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	struct znode *b = add(&t, t.root, "b", NULL);
	add(&t, t.root, "a", NULL);
	add(&t, b, "z", NULL);
	struct znode *y = add(&t, b, "y", NULL);
	add(&t, y, "q", NULL);
	add(&t, t.root, "c", NULL);
	struct walk_acc w = {.stop_at = -1};
	CHECK_EQ(tree_walk(t.root, walk_cb, &w), 0);
	const char *want[] = {"/", "/a", "/b", "/b/y", "/b/y/q", "/b/z", "/c"};
	CHECK_EQ(w.n, 7);
	for (int i = 0; i < 7; i++)
		CHECK_STR(w.paths[i], want[i]);
	memset(&w, 0, sizeof(w));
	w.stop_at = 4;
	CHECK_EQ(tree_walk(t.root, walk_cb, &w), 7);
	CHECK_EQ(w.n, 4);
	tree_free(&t);
}

/* Build a tree with the given insertion order of a fixed set of nodes, then give every node
 * the Stat a function of its path would give it. */
struct spec {
	const char *path;
	const char *data;
	int dir;
};

static const struct spec specs[] = {
	{"/a", "A", 1},        {"/a/x", "ax", 0},   {"/a/y", NULL, 0},   {"/b", NULL, 1},
	{"/b/c", NULL, 1},     {"/b/c/d", "d", 0},  {"/e", "eeee", 0},   {"/a/z", "zz", 1},
	{"/b/c/e", NULL, 0},   {"/f", NULL, 1},
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

static uint64_t path_hash(const char *p)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	return h;
}

static void stamp(struct znode *n, const char *path)
{
	uint64_t h = path_hash(path);
	n->czxid = (int64_t)(h & 0xffff);
	n->mzxid = n->czxid + 1;
	n->pzxid = n->czxid + 2;
	n->ctime = 1700000000000 + (int64_t)(h & 0xfff);
	n->mtime = n->ctime + 5;
	n->version = (int32_t)(h % 7);
	n->cversion = (int32_t)(h % 5);
	n->ino = 100 + (h % 100000); /* as if the same ino on both members */
}

static void build(struct tree *t, const size_t *order)
{
	CHECK_EQ(tree_init(t), COORD_OK);
	size_t done = 0;
	int placed[NSPECS] = {0};
	/* insert in `order`, but a node only after its parent: retry passes */
	while (done < NSPECS) {
		for (size_t k = 0; k < NSPECS; k++) {
			size_t i = order[k];
			if (placed[i])
				continue;
			const char *p = specs[i].path;
			const char *slash = strrchr(p, '/');
			struct znode *parent = tree_lookup(t, p, (size_t)(slash - p) ? (size_t)(slash - p) : 1);
			if (!parent)
				continue;
			struct znode *n = add_kind(t, parent, slash + 1, specs[i].data,
						   specs[i].dir ? COORD_KIND_DIR : COORD_KIND_FILE, 0);
			stamp(n, p);
			placed[i] = 1;
			done++;
		}
	}
}

static void test_digest(void)
{
	size_t fwd[NSPECS], rev[NSPECS], mix[NSPECS];
	for (size_t i = 0; i < NSPECS; i++) {
		fwd[i] = i;
		rev[i] = NSPECS - 1 - i;
		mix[i] = (i * 7 + 3) % NSPECS;
	}
	struct tree t1, t2, t3;
	build(&t1, fwd);
	build(&t2, rev);
	build(&t3, mix);
	uint64_t d1 = tree_digest(&t1);
	CHECK(d1 != 0);
	CHECK_EQ(tree_digest(&t2), d1);
	CHECK_EQ(tree_digest(&t3), d1);
	CHECK_EQ(tree_digest(&t1), d1); /* stable */

	/* every single change changes the digest, and undoing it restores it */
	struct znode *n = look(&t2, "/b/c/d");
	n->version++;
	CHECK(tree_digest(&t2) != d1);
	n->version--;
	CHECK_EQ(tree_digest(&t2), d1);
	n->mzxid++;
	CHECK(tree_digest(&t2) != d1);
	n->mzxid--;
	n = remake(&t2, n, COORD_KIND_FILE, 5);
	CHECK(tree_digest(&t2) != d1);
	n = remake(&t2, n, COORD_KIND_FILE, 0);
	CHECK_EQ(tree_digest(&t2), d1);
	n->ino++;
	CHECK(tree_digest(&t2) != d1);
	n->ino--;
	n = remake(&t2, n, COORD_KIND_DIR, 0);
	CHECK(tree_digest(&t2) != d1);
	n = remake(&t2, n, COORD_KIND_FILE, 0);
	CHECK_EQ(tree_digest(&t2), d1);
	look(&t2, "/f")->policy = COORD_POLICY_EPHEMERAL;
	CHECK(tree_digest(&t2) != d1);
	look(&t2, "/f")->policy = 0;
	CHECK_EQ(tree_digest(&t2), d1);
	/* data: same length, one byte different */
	CHECK_EQ(n->data_len, 1);
	uint32_t olen;
	uint8_t *nd = malloc(1);
	CHECK(nd);
	nd[0] = 'D';
	free(tree_swap_data(&t2, n, nd, 1, &olen));
	CHECK(tree_digest(&t2) != d1);
	nd = malloc(1);
	CHECK(nd);
	nd[0] = 'd';
	free(tree_swap_data(&t2, n, nd, 1, &olen));
	CHECK_EQ(tree_digest(&t2), d1);
	/* an extra node */
	struct znode *extra = add(&t2, look(&t2, "/f"), "g", NULL);
	CHECK(tree_digest(&t2) != d1);
	tree_remove(&t2, extra);
	CHECK_EQ(tree_digest(&t2), d1);
	/* the same node under a different parent (same names otherwise) */
	struct znode *e = look(&t3, "/b/c/e");
	tree_detach(&t3, e);
	tree_attach(&t3, look(&t3, "/a"), e);
	CHECK(tree_digest(&t3) != d1);
	tree_detach(&t3, e);
	tree_attach(&t3, look(&t3, "/b/c"), e);
	CHECK_EQ(tree_digest(&t3), d1);
	/* a rename */
	struct znode *y = look(&t3, "/a/y");
	tree_detach(&t3, y);
	y = tree_rename_node(&t3, y, "w", 1);
	tree_attach(&t3, look(&t3, "/a"), y);
	CHECK(tree_digest(&t3) != d1);

	tree_free(&t1);
	tree_free(&t2);
	tree_free(&t3);
}

/* Random inserts and deletes against a sorted array model. */
static void test_treap_random(void)
{
	enum { M = 3000, STEPS = 60000 };
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	struct znode *d = add(&t, t.root, "d", NULL);
	char present[M] = {0};
	size_t count = 0;
	for (int s = 0; s < STEPS; s++) {
		unsigned k = (unsigned)(rnd() % M);
		char nm[16];
		snprintf(nm, sizeof(nm), "%u", k * 7919u % 100003u);
		struct znode *n = tree_child(d, nm, strlen(nm));
		CHECK((n != NULL) == present[k]);
		if (n) {
			tree_remove(&t, n);
			present[k] = 0;
			count--;
		} else {
			add(&t, d, nm, NULL);
			present[k] = 1;
			count++;
		}
		CHECK_EQ(znode_nkids(d), count);
		if (s % 5000 == 0)
			check_dir(d);
	}
	check_dir(d);
	tree_free(&t);
}

/* The node allocator: 8-byte granularity, reuse of freed chunks, nothing overlaps across slabs. */
static void test_nodealloc(void)
{
	struct nodealloc a;
	nodealloc_init(&a);
	size_t got;
	CHECK(nodealloc_get(&a, 0, &got) == NULL);
	CHECK(nodealloc_get(&a, NODEALLOC_MAX + 1, &got) == NULL);
	enum { K = 20000 };
	unsigned char **p = calloc(K, sizeof(*p));
	size_t *sz = calloc(K, sizeof(*sz));
	CHECK(p && sz);
	for (size_t i = 0; i < K; i++) {
		size_t want = 1 + (size_t)(rnd() % NODEALLOC_MAX);
		p[i] = nodealloc_get(&a, want, &sz[i]);
		CHECK(p[i]);
		CHECK_EQ((uintptr_t)p[i] % 8, 0);
		CHECK(sz[i] >= want && sz[i] % 8 == 0 && sz[i] <= NODEALLOC_MAX);
		memset(p[i], (int)(i & 0xff), sz[i]);
	}
	CHECK(a.slab_bytes >= (size_t)K * NODEALLOC_MAX / 2);
	/* free every other one, then the same sizes come back from the free lists */
	size_t held = a.slab_bytes;
	for (size_t i = 0; i < K; i += 2)
		nodealloc_put(&a, p[i], sz[i]);
	for (size_t i = 0; i < K; i += 2) {
		p[i] = nodealloc_get(&a, sz[i], &sz[i]);
		CHECK(p[i]);
		memset(p[i], (int)(i & 0xff), sz[i]);
	}
	CHECK_EQ(a.slab_bytes, held);
	for (size_t i = 0; i < K; i++)
		for (size_t j = 0; j < sz[i]; j++)
			if (p[i][j] != (unsigned char)(i & 0xff))
				CHECK(!"chunks overlap");
	/* a 200-byte chunk serves a 176-byte request (within the slack), not a 160-byte one */
	unsigned char *x = nodealloc_get(&a, 200, &got);
	CHECK_EQ(got, 200);
	nodealloc_put(&a, x, got);
	unsigned char *y = nodealloc_get(&a, 176, &got);
	CHECK(y == x && got == 200);
	nodealloc_put(&a, y, got);
	y = nodealloc_get(&a, 160, &got);
	CHECK(y != x && got == 160);
	nodealloc_free(&a);
	CHECK_EQ(a.slab_bytes, 0);
	/* before a new slab, any larger free chunk serves: fill one slab with 1000-byte chunks,
	 * free one, then ask for more than the slab's tail holds */
	unsigned char *big = NULL, *c;
	while ((c = nodealloc_get(&a, 1000, &got)) && a.slab_bytes == NODEALLOC_SLAB && a.left >= 1000)
		big = c;
	CHECK(big && a.slab_bytes == NODEALLOC_SLAB && a.left < 1000);
	nodealloc_put(&a, big, 1000);
	size_t want = a.left + 8 > 1000 - NODEALLOC_SLACK - 8 ? 1000 - NODEALLOC_SLACK - 8 : a.left + 8;
	if (want > a.left) {
		c = nodealloc_get(&a, want, &got);
		CHECK(c == big && got == 1000 && a.slab_bytes == NODEALLOC_SLAB);
	}
	nodealloc_free(&a);
	free(p);
	free(sz);
}

/* Kept versions live in the tree's table by ino: they follow a node through renames and
 * detach/attach, go with it, and every node finds its own among thousands. */
static void test_hist_table(void)
{
	enum { M = 3000 };
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	struct znode *d = add(&t, t.root, "d", NULL);
	int32_t kept[M] = {0}; /* versions kept for node i: 1..kept[i] */
	for (int i = 0; i < M; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "n%d", i);
		add_kind(&t, d, nm, "v0", COORD_KIND_FILE, 0);
	}
	uint64_t bytes = 0;
	for (int round = 1; round <= 4; round++)
		for (int i = round % 3; i < M; i += 1 + round % 3) {
			char nm[16];
			snprintf(nm, sizeof(nm), "n%d", i);
			struct znode *n = tree_child(d, nm, strlen(nm));
			struct zver v = {.version = kept[i] + 1, .mzxid = i, .mtime = round, .len = 4};
			v.data = malloc(4);
			CHECK(v.data);
			memcpy(v.data, "abcd", 4);
			CHECK_EQ(tree_hist_push(&t, n, &v, 3, 1 << 20), COORD_OK);
			kept[i]++;
		}
	/* delete a third, rename a third */
	for (int i = 0; i < M; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "n%d", i);
		struct znode *n = tree_child(d, nm, strlen(nm));
		if (i % 3 == 0) {
			tree_remove(&t, n);
			kept[i] = -1;
		} else if (i % 3 == 1) {
			tree_detach(&t, n);
			snprintf(nm, sizeof(nm), "renamed-%d", i);
			n = tree_rename_node(&t, n, nm, strlen(nm));
			CHECK(n);
			tree_attach(&t, d, n);
		}
	}
	for (int i = 0; i < M; i++) {
		if (kept[i] < 0)
			continue;
		char nm[32];
		snprintf(nm, sizeof(nm), i % 3 == 1 ? "renamed-%d" : "n%d", i);
		struct znode *n = tree_child(d, nm, strlen(nm));
		CHECK(n);
		const struct zhist *h = tree_hist(&t, n);
		uint32_t want = kept[i] > 3 ? 3 : (uint32_t)kept[i];
		CHECK_EQ(h ? h->n : 0, want);
		for (uint32_t k = 0; k < want; k++) {
			CHECK_EQ(h->v[k].version, kept[i] - (int32_t)want + 1 + (int32_t)k);
			CHECK_EQ(h->v[k].mzxid, i);
			CHECK(tree_hist_find(&t, n, h->v[k].version) == &h->v[k]);
		}
		CHECK(tree_hist_find(&t, n, kept[i] + 1) == NULL);
		bytes += 4 * want;
	}
	CHECK_EQ(t.hist_bytes, bytes);
	tree_free(&t);
}

/* Data moves between the node's chunk and a block of its own and back; owner, name and data
 * survive renames either way. */
/* Nodes made after others were deleted may get a reused chunk larger than they need (nodealloc
 * serves any larger free chunk before taking a new slab). Which chunk a node gets is this
 * member's own history, not the ensemble's: such a node still keeps at most 256 bytes in place,
 * and renaming it to the longest name always works, as on a member where it got a tight chunk. */
static void test_reused_big_chunks(void)
{
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	struct znode *d = add(&t, t.root, "d", NULL);
	enum { BIG = 3000, SMALL = 4000 }; /* 3000 freed 608-byte chunks serve what the slab tail cannot */
	char name[COORD_MAX_NAME + 1], data[301];
	memset(data, 'v', 256);
	data[256] = 0;
	for (int i = 0; i < BIG; i++) {
		memset(name, 'x', COORD_MAX_NAME);
		name[COORD_MAX_NAME] = 0;
		int k = snprintf(name, sizeof(name), "%d", i);
		name[k] = 'x';
		add_kind(&t, d, name, data, COORD_KIND_FILE, 0);
	}
	while (znode_kids(d))
		tree_remove(&t, znode_kids(d));
	size_t held = t.alloc.slab_bytes, reused = 0;
	memset(data, 'w', 300);
	data[300] = 0;
	for (int i = 0; i < SMALL; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		struct znode *n = add_kind(&t, d, name, "1", COORD_KIND_FILE, 0);
		reused += (size_t)n->units * 8 >= 96 + COORD_MAX_NAME + 256;
		uint32_t old_len;
		free(tree_swap_data(&t, n, (uint8_t *)strdup(data), 300, &old_len));
		CHECK((n->flags & ZNODE_OUTLINE) != 0); /* 300 > 256 bytes: out of line, whatever the chunk */
		CHECK_EQ(memcmp(znode_data(n), data, 300), 0);
		free(tree_swap_data(&t, n, (uint8_t *)strdup("tiny"), 4, &old_len));
		CHECK((n->flags & ZNODE_OUTLINE) == 0);
	}
	CHECK(reused > 0);                       /* the case this test is about did happen */
	CHECK_EQ(t.alloc.slab_bytes, held);     /* and no slab was taken while big chunks were free */
	/* the longest rename of every one of them fits */
	for (int i = 0; i < SMALL; i += 7) {
		snprintf(name, sizeof(name), "s%d", i);
		struct znode *n = tree_child(d, name, strlen(name));
		CHECK(n);
		tree_detach(&t, n);
		memset(name, 'r', COORD_MAX_NAME);
		snprintf(name, sizeof(name), "%d", i);
		name[strlen(name)] = 'r';
		name[COORD_MAX_NAME] = 0;
		struct znode *m = tree_rename_node(&t, n, name, COORD_MAX_NAME);
		CHECK(m);
		CHECK_EQ(m->data_len, 4);
		CHECK_EQ(memcmp(znode_data(m), "tiny", 4), 0);
		tree_attach(&t, d, m);
	}
	tree_free(&t);
}

static void test_data_placement(void)
{
	struct tree t;
	CHECK_EQ(tree_init(&t), COORD_OK);
	struct znode *d = add(&t, t.root, "d", NULL);
	char small[101], big[3000];
	memset(small, 's', 100);
	small[100] = 0;
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	struct znode *e = add_kind(&t, d, "eph", small, COORD_KIND_FILE, 0x1122334455667788ULL);
	struct znode *f = add_kind(&t, d, "big", big, COORD_KIND_FILE, 0);
	CHECK_EQ(f->data_len, sizeof(big) - 1);
	CHECK(!memcmp(znode_data(f), big, f->data_len));
	/* small -> big -> append -> small again */
	uint32_t ol;
	uint8_t *nd = malloc(2000);
	CHECK(nd);
	memset(nd, 'x', 2000);
	uint8_t *old = tree_swap_data(&t, e, nd, 2000, &ol);
	CHECK(ol == 100 && !memcmp(old, small, 100));
	free(old);
	CHECK_EQ(tree_append_data(&t, e, "yz", 2), COORD_OK);
	CHECK_EQ(e->data_len, 2002);
	CHECK(!memcmp(znode_data(e) + 1998, "xxyz", 4));
	CHECK_EQ(znode_owner(e), 0x1122334455667788ULL);
	tree_detach(&t, e);
	e = tree_rename_node(&t, e, "ephemeral-node-with-a-long-name", 31);
	tree_attach(&t, d, e);
	CHECK_EQ(znode_owner(e), 0x1122334455667788ULL);
	CHECK(!memcmp(znode_data(e) + 1998, "xxyz", 4));
	nd = malloc(3);
	CHECK(nd);
	memcpy(nd, "abc", 3);
	old = tree_swap_data(&t, e, nd, 3, &ol);
	CHECK_EQ(ol, 2002);
	free(old);
	CHECK(!memcmp(znode_data(e), "abc", 3));
	CHECK_EQ(tree_append_data(&t, e, small, 100), COORD_OK); /* in place or moved: same bytes */
	CHECK(!memcmp(znode_data(e), "abc", 3) && !memcmp(znode_data(e) + 3, small, 100));
	tree_detach(&t, e);
	e = tree_rename_node(&t, e, "e", 1);
	tree_attach(&t, d, e);
	CHECK_EQ(e->data_len, 103);
	CHECK(!memcmp(znode_data(e) + 3, small, 100));
	CHECK_EQ(znode_owner(e), 0x1122334455667788ULL);
	CHECK(look(&t, "/d/e") == e);
	CHECK_EQ(t.data_bytes, 103 + sizeof(big) - 1);
	/* a directory renamed keeps being a directory that can take children */
	struct znode *sub = add(&t, d, "sub", "x");
	tree_detach(&t, sub);
	sub = tree_rename_node(&t, sub, "sub2", 4);
	tree_attach(&t, d, sub);
	add_kind(&t, sub, "k", NULL, COORD_KIND_FILE, 0);
	CHECK(look(&t, "/d/sub2/k") != NULL);
	CHECK_EQ(znode_nkids(sub), 1);
	tree_free(&t);
}

int main(void)
{
	RUN(test_name_cmp);
	RUN(test_basic);
	RUN(test_data);
	RUN(test_path);
	RUN(test_walk);
	RUN(test_detach_attach_rename);
	RUN(test_digest);
	RUN(test_treap_random);
	RUN(test_paging);
	RUN(test_nodealloc);
	RUN(test_hist_table);
	RUN(test_data_placement);
	RUN(test_reused_big_chunks);
	return 0;
}
