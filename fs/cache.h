/*
 * cache.h: the daemon's cache of znodes, kept coherent by the mount's one recursive watch.
 *
 * Per inode the daemon caches the Stat, the data (a refcounted immutable blob) and, for
 * directories, the child names. Each is valid only in the current epoch (fs->epoch, bumped when
 * events may have been lost: overflow, session expiry). A fill from a server read is accepted only
 * if no event newer than the read's snapshot touched what it fills (the inode's inval_zxid, or the
 * parent's dir_inval_zxid for names), so a reply that raced with a change never outlives it.
 *
 * cache_on_event runs on the client's I/O thread: it invalidates the daemon's cache at once and
 * queues the kernel's notices and the .watch line to the invalidation thread (inval.h).
 *
 * Everything but cache_on_event and cache_flush takes fs->mu held by the caller.
 */
#ifndef COORDFS_CACHE_H
#define COORDFS_CACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fs.h"
#include "inode.h"

/* A version of a node's data; immutable, shared by the cache and the handles reading it. */
struct blob {
	atomic_int refs;
	int32_t version;
	uint64_t mzxid;
	size_t len;
	char data[];
};
/* A copy of len bytes (NULL on out of memory), one reference. */
struct blob *blob_new(const void *p, size_t len, int32_t version, uint64_t mzxid);
struct blob *blob_ref(struct blob *b);
void blob_unref(struct blob *b);

/* A directory's child names, sorted; shared like blobs. */
struct names {
	atomic_int refs;
	size_t n;
	char **v;
};
/* Takes ownership of v (from coord_list). NULL on out of memory (v is then freed). */
struct names *names_new(char **v, size_t n);
struct names *names_ref(struct names *n);
void names_unref(struct names *n);

/* Drop an inode's cached data and names (when it leaves the table). */
void cache_inode_clear(struct lru *lru, struct inode *in);

int cache_stat_valid(const struct coordfs *fs, const struct inode *in);
/* The cached data if it is valid (a new reference), else NULL. Touches the LRU. */
struct blob *cache_blob(struct coordfs *fs, struct inode *in);
/* The cached child names if valid (a new reference), else NULL. */
struct names *cache_kids(struct coordfs *fs, struct inode *in);

/* Accept a read of `in` taken at snapshot s: 1 if stored, 0 if it may be stale (not stored). */
int cache_fill_stat(struct coordfs *fs, struct inode *in, const struct coord_stat *st, const struct snap *s);
/* Same, with the data (copied into a new blob when accepted). */
int cache_fill_data(struct coordfs *fs, struct inode *in, const struct coord_stat *st, const void *data,
		    size_t len, const struct snap *s);
/* Same, with an existing blob (one more reference is taken when accepted). */
int cache_fill_blob(struct coordfs *fs, struct inode *in, const struct coord_stat *st, struct blob *b,
		    const struct snap *s);
/* Directory listing: st is the directory's stat from the list reply; takes a reference to kids. */
int cache_fill_kids(struct coordfs *fs, struct inode *dir, const struct coord_stat *st, struct names *kids,
		    const struct snap *s);
/* May a name under `dir`, read at snapshot s (st: the child's stat, NULL if it does not exist),
 * be remembered and handed to the kernel for keeps? */
int cache_accept_name(const struct coordfs *fs, const struct inode *dir, const struct coord_stat *st,
		      const struct snap *s);
/* The node changed through this mount in a way the daemon cannot describe: forget its stat and
 * data (the event that announces it does the kernel's part). */
void cache_forget_inode(struct inode *in, struct lru *lru);

/* The watch callback: one event from the server (client I/O thread; takes fs->mu). */
void cache_on_event(struct coordfs *fs, uint8_t type, const char *path, uint64_t zxid);
/* Forget everything (daemon and kernel), then give every .watch `line` (may be NULL). Takes fs->mu. */
void cache_flush(struct coordfs *fs, const char *line);
/* A session line for every .watch, in order with the events. Takes fs->mu. */
void cache_line(struct coordfs *fs, const char *line);

#endif
