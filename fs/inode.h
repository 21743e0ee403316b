/*
 * inode.h: the mount's inode table: nodeid -> inode, and (parent, name) -> dentry.
 *
 * A nodeid is the znode's ino (unique, never reused; the root is 1 = FUSE_ROOT_ID). An inode lives
 * while the kernel holds lookups on it (nlookup, dropped by forget) or a handle has it open (nopen).
 * Each inode knows its current name through at most one positive dentry (parent nodeid, name), so
 * its path can be rebuilt; an inode whose name is no longer known (deleted or renamed on another
 * host) is "detached" and path operations on it answer ESTALE or ENOENT. Negative dentries record
 * names known not to exist (valid within one cache epoch).
 *
 * Everything here runs under fs->mu; nothing here allocates while a caller expects it not to fail
 * except where a NULL return says so. The cache fields of struct inode belong to cache.c.
 */
#ifndef COORDFS_INODE_H
#define COORDFS_INODE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define FUSE_ROOT_ID_VALUE 1 /* the root znode's ino, and FUSE's root nodeid */

struct blob;
struct names;

/* The inodes that hold cached data, least recently used first, and what they hold (cache.c). */
struct lru {
	struct inode *head, *tail;
	size_t bytes, max;
};

struct dentry {
	struct dentry *hnext;
	uint64_t parent;
	uint64_t ino;          /* 0: a negative entry */
	uint64_t epoch;        /* negative entries are valid in this epoch only */
	uint64_t hash;
	uint16_t len;
	char name[];           /* NUL-terminated */
};

struct inode {
	struct inode *hnext;
	uint64_t ino;
	struct dentry *d;      /* its name, or NULL when detached */
	uint64_t nlookup;      /* the kernel's references */
	uint32_t nopen;        /* open handles */
	uint8_t kind;          /* enum coord_kind; fixed for the node's life */
	uint8_t deleted;       /* an event said the node is gone */

	/* The daemon's cache (cache.c). */
	struct coord_stat st;
	int st_valid;
	uint64_t st_epoch;
	struct blob *blob;         /* the data at st.version, or NULL */
	struct names *kids;        /* the child names, or NULL */
	uint64_t kids_epoch;
	uint64_t inval_zxid;       /* the newest event about this node */
	uint64_t dir_inval_zxid;   /* the newest event about its children or anything below them */
	struct inode *lru_prev, *lru_next; /* inodes holding a blob, least recently used first */

	/* What the kernel's page cache may hold (handle.c): pages of version pc_version only, put
	 * there by reads of the pc_handles handles that use the page cache. */
	int pc_set;
	int32_t pc_version;
	uint64_t pc_mzxid;
	int64_t pc_size;
	uint32_t pc_handles;
	uint64_t kern_queued;      /* the last notice batch about this inode queued to the kernel */
	/* A change came while page-cached opens of the old version were open: the kernel keeps that
	 * version's pages and attributes (so those opens read one version, with its size) until the
	 * last of them closes; then the notice is sent (handle.c). */
	int kern_deferred;
	/* Commits of this mount's writes to this node in flight: opens and stats wait for them, so
	 * `: > f; cat f` reads its own write even though the kernel sends RELEASE asynchronously. */
	uint32_t committing;
};

struct itable;

struct itable *itable_new(void);
void itable_free(struct itable *t);
struct lru *itable_lru(struct itable *t);

struct inode *inode_get(struct itable *t, uint64_t ino);
/* Find or add the inode for `ino` (added with nlookup 0). NULL on out of memory. */
struct inode *inode_obtain(struct itable *t, uint64_t ino, uint8_t kind);
/* Drop it when nothing refers to it any more (nlookup == 0, nopen == 0; never the root). */
void inode_maybe_drop(struct itable *t, struct inode *in);
size_t inode_count(const struct itable *t);
/* Drop every inode nothing refers to (stats fetched ahead for a directory listing). */
void inode_sweep(struct itable *t);
/* Call fn for every inode / every dentry (fn must not add or remove). */
void inode_each(struct itable *t, void (*fn)(void *arg, struct inode *in), void *arg);
void dentry_each(struct itable *t, void (*fn)(void *arg, struct dentry *d), void *arg);

struct dentry *dentry_find(struct itable *t, uint64_t parent, const char *name, size_t len);
/* Give `in` the name (parent, name): its old dentry goes, and whatever else held that name is
 * detached. Returns 0, or -1 on out of memory (the inode is then detached). */
int inode_link(struct itable *t, struct inode *in, uint64_t parent, const char *name, size_t len);
/* The inode forgets its name (the dentry goes). */
void inode_detach(struct itable *t, struct inode *in);
/* Remember that (parent, name) does not exist, in this epoch. Returns 0, or -1 when the table of
 * negative entries is full or memory is short (the caller then must not let the kernel cache it).
 * A positive entry under that name is detached first. */
int dentry_set_negative(struct itable *t, uint64_t parent, const char *name, size_t len, uint64_t epoch);
/* Remove a negative entry, or detach the inode of a positive one. */
void dentry_forget(struct itable *t, uint64_t parent, const char *name, size_t len);
/* Remove every negative entry. */
void dentry_drop_negatives(struct itable *t);

/*
 * Rebuild an inode's path into buf (NUL-terminated). Returns its length, or -ESTALE when the inode
 * is detached (or an ancestor is), -ENAMETOOLONG when it does not fit.
 */
int inode_path(struct itable *t, const struct inode *in, char *buf, size_t size);
/* parent's path + "/" + name; same returns. */
int inode_child_path(struct itable *t, const struct inode *parent, const char *name, char *buf,
		     size_t size);
/*
 * Walk a znode path from the root through positive dentries. Sets *node to the inode at the path
 * (NULL if not known), *parent to the inode of its parent (NULL if not known) and *deepest to the
 * deepest known inode on the way (at least the root).
 */
void inode_walk(struct itable *t, const char *path, struct inode **node, struct inode **parent,
		struct inode **deepest);

#endif
