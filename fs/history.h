/*
 * history.h: .history, the read-only view of every znode's kept versions (server: historyDepth,
 * historyBytes; wire: COORD_OP_HISTORY).
 *
 *   .history/                   the root znode "/" (a directory)
 *   .history/app/               the znode /app: a directory, whatever the znode's kind
 *   .history/app/config/        the znode /app/config
 *   .history/app/config/4       version 4 of /app/config's data (a read-only file)
 *
 * Every znode shows as a directory under .history. In it, its kept data versions are files named
 * by version number (oldest first, the current one included) and its children are
 * subdirectories. A file znode shows only versions (files have no children). A directory znode
 * shows its own data versions only once its data was ever set (version > 0): a plain `mkdir`
 * directory lists only its children. Where a child's name is also a kept version number of its
 * directory, the child wins (the version stays readable with `coordctl get --version`).
 *
 * Nothing here is cached by the kernel or the daemon: entries and attributes carry timeout 0 and
 * version files are read with direct I/O, each open fetching its version once (so one open reads
 * one version, as everywhere). A version no longer kept is ENOENT; every write is EROFS.
 *
 * Nodeids: the .history directory itself is special_ino(SPECIAL_HISTORY); everything below it has
 * FS_SPECIAL_BIT | HIST_BIT and a number from a counter, held in a table of its own (path,
 * version) while the kernel holds lookups on it. The table's lock is taken with no other lock held.
 */
#ifndef COORDFS_HISTORY_H
#define COORDFS_HISTORY_H

#include <stdint.h>

#include "fs.h"
#include "special.h"

#define HIST_BIT (1ULL << 62)

/* Does this nodeid belong to .history (the .history directory or anything below it)? */
static inline int history_owns(uint64_t ino)
{
	return (ino & FS_SPECIAL_BIT) && ((ino & HIST_BIT) || ino == special_ino(SPECIAL_HISTORY));
}

struct history;
struct history *history_new(void);
void history_free(struct history *h);

/* The FUSE operations on .history nodeids (the callers checked history_owns). Each replies. */
void history_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void history_forget(struct coordfs *fs, fuse_ino_t ino, uint64_t nlookup);
void history_getattr(fuse_req_t req, fuse_ino_t ino);
void history_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void history_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* readdir / readdirplus of a handle from history_opendir. */
void history_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, int plus);

#endif
