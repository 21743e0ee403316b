/*
 * session.h: the mount's session with the ensemble, and every call the mount makes to it.
 *
 * One mount is one session (client.h). Its callbacks feed the cache (events) and the .watch files
 * (disconnected / reconnected). When the server declares the session expired, the mount forgets
 * every cached thing, says "expired" on every .watch, and a thread of this module opens a new
 * session, re-adds the recursive watch on "/", and swaps it in; calls made meanwhile wait for it
 * (up to the session timeout). A clean unmount closes the session, so its ephemeral nodes go at once.
 *
 * The remote_* calls return an enum coord_err. Reads fill a struct snap (see fs.h) sampled before
 * the request left, so the cache can tell whether their answer may be kept; reads that failed
 * because the session expired under them are retried once on the new session. Out-pointers as in
 * client.h (malloc'd for the caller).
 */
#ifndef COORDFS_SESSION_H
#define COORDFS_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "fs.h"

/* Connect (blocks up to the session timeout) and add the watch. On failure err says why. */
int session_start(struct coordfs *fs, char *err, size_t errlen);
/* Close the session cleanly (ephemeral nodes go now) and stop the recovery thread. */
void session_stop(struct coordfs *fs);

/* For .session: a few "key value" lines. Returns the text length written into buf. */
size_t session_describe(struct coordfs *fs, char *buf, size_t size);
/* "host:port" of the server the session is connected to ("" when not connected). */
void session_server(struct coordfs *fs, char *buf, size_t size);
/* The server's maxDataBytes, as negotiated. */
uint32_t session_max_data(struct coordfs *fs);

int remote_exists(struct coordfs *fs, const char *path, struct coord_stat *st, struct snap *s);
int remote_get(struct coordfs *fs, const char *path, void **data, size_t *len, struct coord_stat *st,
	       struct snap *s);
int remote_list(struct coordfs *fs, const char *path, char ***names, size_t *count, struct coord_stat *st,
		struct snap *s);
int remote_create(struct coordfs *fs, const char *path, const void *data, size_t len, uint32_t flags,
		  uint8_t policy, char **created, struct coord_stat *st);
int remote_set(struct coordfs *fs, const char *path, const void *data, size_t len, int32_t version,
	       struct coord_stat *st);
int remote_append(struct coordfs *fs, const char *path, const void *data, size_t len, struct coord_stat *st);
int remote_delete(struct coordfs *fs, const char *path, int32_t version);
int remote_rename(struct coordfs *fs, const char *from, const char *to, uint32_t flags, struct coord_stat *st);
int remote_setpolicy(struct coordfs *fs, const char *path, uint8_t policy);
/* The node's ACL in its text form (malloc'd), and replacing it (unconditionally). */
int remote_getacl(struct coordfs *fs, const char *path, char **acl, unsigned *perms);
int remote_setacl(struct coordfs *fs, const char *path, const char *acl, size_t len);
int remote_sync(struct coordfs *fs, const char *path);
/*
 * EXISTS of n paths, pipelined (a window of requests in flight): sts[i] and errs[i] get each
 * answer. Returns COORD_OK once all answered, or the error that stopped the batch. One snapshot,
 * taken before the first request, covers them all.
 */
int remote_exists_many(struct coordfs *fs, char **paths, size_t n, struct coord_stat *sts, int *errs,
		       struct snap *s);
int remote_admin(struct coordfs *fs, const char *word, char **text);
/* The kept versions of path, oldest first, the current one last (none when the server keeps no
 * history); *hist is malloc'd. st: the node's stat. */
int remote_history(struct coordfs *fs, const char *path, struct coord_hist **hist, uint32_t *n,
		   struct coord_stat *st);
/* One kept version's data (malloc'd); COORD_ENONODE when the node or that version is gone. */
int remote_get_version(struct coordfs *fs, const char *path, int32_t version, void **data, size_t *len,
		       struct coord_hist *h);

/* This thread's last remote_* error text, for logs. */
const char *remote_last_error(void);

/* The current epoch (takes fs->mu). */
uint64_t fs_epoch(struct coordfs *fs);

#endif
