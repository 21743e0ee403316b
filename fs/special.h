/*
 * special.h: the special files at the mount root: .watch (pollfile.h), .session, .cluster, and the
 * .history directory (history.h).
 *
 * They are not znodes (every name starting with '.' at the root is reserved by the path rules);
 * their nodeids have FS_SPECIAL_BIT set. readdir of the root lists them first, so `ls` hides them
 * as dot files and `ls -a` shows them. .session and .cluster are generated at open, one snapshot
 * per open, and read with direct I/O (their size is 0 to stat).
 */
#ifndef COORDFS_SPECIAL_H
#define COORDFS_SPECIAL_H

#include <stddef.h>
#include <sys/stat.h>

#include "fs.h"

enum special_id { SPECIAL_WATCH = 1, SPECIAL_SESSION = 2, SPECIAL_CLUSTER = 3, SPECIAL_HISTORY = 4, SPECIAL_COUNT = 5 };

static inline int special_of(uint64_t ino)
{
	return (ino & FS_SPECIAL_BIT) && (ino & ~FS_SPECIAL_BIT) < SPECIAL_COUNT ? (int)(ino & ~FS_SPECIAL_BIT) : 0;
}
static inline uint64_t special_ino(int id) { return FS_SPECIAL_BIT | (uint64_t)id; }

/* The id of a name at the root, or 0. */
int special_lookup(const char *name);
const char *special_name(int id);
void special_attr(struct coordfs *fs, int id, struct stat *st);
/* Generate the contents of .session or .cluster (malloc'd). Returns 0 or -errno. */
int special_text(struct coordfs *fs, int id, char **text, size_t *len);

#endif
