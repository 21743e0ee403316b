/*
 * ops.h: the FUSE low-level operations of a coordfs mount, and the helpers the xattr operations
 * share with them.
 */
#ifndef COORDFS_OPS_H
#define COORDFS_OPS_H

#include <sys/stat.h>

#include "fs.h"

extern const struct fuse_lowlevel_ops coordfs_ops;

/* The znode's Stat as struct stat. */
void ops_stat_to_attr(const struct coordfs *fs, const struct coord_stat *zs, struct stat *a);
/*
 * The current Stat of inode `ino`: from the daemon's cache, else from the server (and cached when
 * it may be). Returns 0 or -errno (-ESTALE when its name now leads to another node, which also
 * makes the daemon and the kernel forget that name). path (may be NULL) receives the node's path.
 */
int ops_node_stat(struct coordfs *fs, uint64_t ino, struct coord_stat *st, char *path, size_t pathlen);
/* The node's path; -ENOENT when unknown or deleted, -ESTALE when its name is no longer known. */
int ops_path(struct coordfs *fs, uint64_t ino, char *buf, size_t size);

/*
 * May the request in buf (header and arguments, len bytes) be answered by the reader thread
 * itself (loop.h)? Yes when its answer is in memory: forgets; reads, flushes and releases of
 * opens that commit nothing; a read-only open of a file whose data is cached; cached attributes
 * and names; directory listings already fetched. Anything that may ask the server or wait: no.
 */
int ops_inline(struct coordfs *fs, const void *buf, size_t len);

/* xattr.c */
void xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size);
void xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags);
void xattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
