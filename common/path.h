/*
 * path.h: ZooKeeper's path rules, and the small path manipulations coordfs needs.
 *
 * A valid path is "/" or "/a/b": absolute, no trailing '/', no empty, "." or ".." component,
 * valid UTF-8 without control characters (0x00-0x1f, 0x7f), at most COORD_MAX_NAME bytes per
 * component and COORD_MAX_PATH bytes in all. Names starting with '.' directly under the root are
 * reserved for the mount's special files. No function here allocates.
 */
#ifndef COORD_PATH_H
#define COORD_PATH_H

#include <stddef.h>

/*
 * Check a path of len bytes (not necessarily NUL-terminated). Returns COORD_OK, COORD_EBADPATH
 * or COORD_ENAMETOOLONG; on error writes a reason naming the fault into err (may be NULL).
 * sequential: the path will get a 10-digit suffix, so a trailing '/' is allowed ("/q/" makes
 * "/q/0000000001") and the last component's length limit leaves room for the suffix.
 */
int coord_path_check(const char *p, size_t len, int sequential, char *err, size_t errlen);

/* Length of the parent's path ("/a/b" -> 2 for "/a", "/a" -> 1 for "/"); 0 for "/". */
size_t coord_path_parent_len(const char *p, size_t len);
/* Offset of the last component ("/a/b" -> 3); len for "/" */
size_t coord_path_base_off(const char *p, size_t len);
/* 1 if `p` equals `prefix` or lies under it ("/a/b" under "/a"; everything under "/") */
int coord_path_under(const char *p, size_t len, const char *prefix, size_t plen);

#endif
