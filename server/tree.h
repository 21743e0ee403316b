/*
 * tree.h: the znode store: nodes, their Stat, and each directory's children in name order.
 *
 * A pure in-memory structure with no clocks, randomness or I/O: the replicated state machine
 * (state.c) drives it, so every member that applies the same transactions holds the same tree.
 * Children live in a treap keyed by name whose priorities are a hash of the name (deterministic),
 * so lookup, insert, delete and "the next page after NAME" are O(log n) in a directory of any
 * size. The tree owns every node and its data (znode_data: a caller never frees it; tree_swap_data
 * hands it a copy of what it replaced) and every kept earlier version (tree_hist).
 */
#ifndef COORD_TREE_H
#define COORD_TREE_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "nodealloc.h"
#include "wire.h"

/* An earlier version of a node's data (versioned reads: historyDepth/historyBytes). */
struct zver {
	int32_t version;
	int64_t mzxid, mtime;
	uint32_t len;
	uint8_t *data;
};

/* A node's kept earlier versions, oldest first; absent until the data is first overwritten. */
struct zhist {
	uint32_t n, cap;
	uint64_t bytes;
	struct zver v[];
};

/*
 * A znode is one nodealloc chunk (no malloc header): for a directory a struct zdir (its children)
 * comes first, then the struct below, then the name, then the owner (8 bytes, only for an
 * ephemeral node), then the data area: the data itself when it fits (up to 256 bytes when made,
 * or whatever the chunk holds later), else the address of a malloc'd block with it. Earlier
 * versions live in the tree's table keyed by ino, so a node never overwritten pays nothing.
 * Use the accessors below for the data, owner and children; kind and owner never change after
 * tree_add. A 100-byte file named n123 takes 200 bytes.
 */
struct znode {
	struct znode *parent;
	struct znode *left, *right; /* links in the parent's child treap */
	int64_t czxid, mzxid, pzxid, ctime, mtime;
	uint64_t ino;
	uint32_t data_len;
	int32_t version, cversion, aversion;
	uint32_t acl;               /* id in the state's interned ACL table (acls.h), 0 = world:anyone:rwcda */
	uint16_t name_len;
	uint8_t kind : 1;           /* enum coord_kind, fixed at tree_add (a directory has a struct zdir) */
	uint8_t policy : 2;         /* COORD_POLICY_* bits */
	uint8_t flags : 5;          /* ZNODE_* */
	uint8_t units;              /* size of the node's chunk in 8-byte units (tree.c) */
	char name[];                /* not NUL-terminated; then owner and data as above */
};

#define ZNODE_OWNER 0x1   /* an ephemeral node: the owner session follows the name */
#define ZNODE_OUTLINE 0x2 /* the data area holds the address of the data, not the data */
#define ZNODE_HIST 0x4    /* the tree's history table has earlier versions of this node */

/* What precedes a directory's struct znode: its children. */
struct zdir {
	struct znode *kids;         /* root of this node's child treap */
	uint32_t nkids;
	uint32_t spare;
};

struct tree_histent {
	uint64_t ino;               /* 0: empty slot */
	struct zhist *h;
};

struct tree {
	struct znode *root;
	uint64_t next_ino;          /* replicated counter: inode numbers are never reused */
	uint64_t count;             /* znodes, root included */
	uint64_t data_bytes;        /* sum of data lengths */
	uint64_t hist_bytes;        /* sum of kept earlier versions' lengths */
	struct tree_histent *hist;  /* open addressing by ino (linear probing), hist_cap a power of 2 */
	size_t hist_cap, hist_n;
	struct nodealloc alloc;     /* every node's chunk */
};

int tree_init(struct tree *t);
void tree_free(struct tree *t);

/* The node at a valid path of len bytes, or NULL. */
struct znode *tree_lookup(const struct tree *t, const char *path, size_t len);
/* A child by name, or NULL. */
struct znode *tree_child(const struct znode *dir, const char *name, size_t len);

/*
 * Make a child node of parent (a directory) named name, with a copy of data, of the given kind
 * (COORD_KIND_*) and ephemeral owner (0: persistent); neither can change later. The caller has
 * checked that it does not exist. Stat fields are zero except ino; the caller fills them. NULL
 * on ENOMEM.
 */
struct znode *tree_add(struct tree *t, struct znode *parent, const char *name, size_t len,
		       const void *data, size_t data_len, uint8_t kind, uint64_t owner);
/* Unlink a node without children from its parent and free it. */
void tree_remove(struct tree *t, struct znode *n);
/* Unlink a node without children but keep it (a multi may put it back with tree_attach). */
void tree_detach(struct tree *t, struct znode *n);
/* Link a detached node under parent, a directory (whose child of that name must not exist). */
void tree_attach(struct tree *t, struct znode *parent, struct znode *n);
/* Free a detached node. */
void tree_node_free(struct tree *t, struct znode *n);
/*
 * Give a detached node a new name (its memory moves: the old pointer is freed and the new one
 * returned; ino, Stat and data stay). NULL on ENOMEM, then n is unchanged.
 */
struct znode *tree_rename_node(struct tree *t, struct znode *n, const char *name, size_t len);
/* Give a node new data (taking ownership of the malloc'd `data`); returns the old data for the
 * caller to free (or to put back, when a multi rolls back). */
uint8_t *tree_swap_data(struct tree *t, struct znode *n, uint8_t *data, uint32_t len, uint32_t *old_len);
/*
 * Keep an earlier version (taking ownership of v->data), then drop the oldest while more than
 * keep versions or more than max_bytes are kept. keep 0 frees it at once. COORD_OK or
 * COORD_ENOMEM (then v->data is freed: the version is simply not kept).
 */
int tree_hist_push(struct tree *t, struct znode *n, const struct zver *v, uint32_t keep, uint64_t max_bytes);
/* The kept version `version` of n, or NULL. */
const struct zver *tree_hist_find(const struct tree *t, const struct znode *n, int32_t version);
/* n's kept earlier versions, or NULL when it has none. */
const struct zhist *tree_hist(const struct tree *t, const struct znode *n);
/* Append to a node's data. COORD_OK or COORD_ENOMEM (then unchanged). */
int tree_append_data(struct tree *t, struct znode *n, const void *data, size_t len);

/*
 * Up to max child names of dir that sort after `after` (alen bytes; alen 0 = from the first),
 * in name order: cb(arg, child) for each. Returns how many were visited; *more is set when
 * children remain after the last one visited.
 */
size_t tree_children_after(const struct znode *dir, const char *after, size_t alen, size_t max,
			   void (*cb)(void *arg, const struct znode *child), void *arg, int *more);
/* Visit every node in pre-order, children in name order (snapshots, digests). Stops on non-zero. */
int tree_walk(const struct znode *from, int (*cb)(void *arg, const struct znode *n), void *arg);

/* The node's full path into buf (NUL-terminated); returns its length, or 0 if it does not fit. */
size_t tree_path(const struct znode *n, char *buf, size_t len);
void tree_stat(const struct znode *n, struct coord_stat *st);
/* xxh64 digest of the whole tree (names, data, Stat): equal on members that applied the same log */
uint64_t tree_digest(const struct tree *t);

static inline uint8_t *znode_data_area(const struct znode *n)
{
	return (uint8_t *)n->name + n->name_len + ((n->flags & ZNODE_OWNER) ? 8 : 0);
}
/* A node's data (data_len bytes; owned by the tree, valid until the node's data changes). */
static inline const uint8_t *znode_data(const struct znode *n)
{
	uint8_t *p = znode_data_area(n);
	if (n->flags & ZNODE_OUTLINE)
		memcpy(&p, p, sizeof(p));
	return p;
}
/* The ephemeral owner session, 0 for a persistent node (fixed at tree_add). */
static inline uint64_t znode_owner(const struct znode *n)
{
	uint64_t o = 0;
	if (n->flags & ZNODE_OWNER)
		memcpy(&o, n->name + n->name_len, sizeof(o));
	return o;
}
/* A directory's children (NULL for a file). */
static inline struct zdir *znode_dir(const struct znode *n)
{
	return n->kind == COORD_KIND_DIR ? (struct zdir *)((char *)n - sizeof(struct zdir)) : NULL;
}
/* The number of children, and the root of the child treap (NULL for a file). */
static inline uint32_t znode_nkids(const struct znode *n) { return n->kind == COORD_KIND_DIR ? znode_dir(n)->nkids : 0; }
static inline struct znode *znode_kids(const struct znode *n) { return n->kind == COORD_KIND_DIR ? znode_dir(n)->kids : NULL; }

/* A node's treap priority (a hash of its name: computed, not stored). */
uint32_t tree_node_prio(const struct znode *n);

/* Name order: bytewise, then shorter first. */
int tree_name_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
