/*
 * fs.h: the state of one coordfs mount, shared by the modules of fs/.
 *
 * One mount is one session with the ensemble (session.c), one inode table with the daemon's cache
 * (inode.c, cache.c), one invalidation thread that talks back to the kernel (inval.c), the open
 * files (handle.c), the special files at the root (special.c, pollfile.c, cluster.c, history.c)
 * and the FUSE operations that tie them together (ops.c, xattr.c), served by the request loop
 * (loop.c). main.c parses options and mounts.
 *
 * Locks, outermost first; a thread never takes one that comes earlier in this list while holding a
 * later one, and none is held across a call to the server:
 *   handle->mu      one open file's buffer (handle.c)
 *   fs->reply_lock  read-held by a request from the moment it decides what the kernel may cache
 *                   until its reply is written; the invalidation thread write-locks it once
 *                   (and lets go at once) before sending notices, so a notice about a change is
 *                   never overtaken by a reply that was computed before the change (inval.c)
 *   fs->mu          the inode table, the daemon's cache, and the counters below
 *   pollset lock    the .watch instances (pollfile.c)
 *   inval queue     the invalidation thread's queue (inval.c), always innermost
 *   history table   .history's nodeids (history.c); like the queue, never held while taking another
 *   pool lock       the request loop's threads and jobs (loop.c); never held while taking another
 * The session's lock (session.c) and the client library's are taken with none of these held,
 * except that the client library's is innermost of all.
 */
#ifndef COORDFS_FS_H
#define COORDFS_FS_H

#define FUSE_USE_VERSION 34

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "client.h"
#include "wire.h"

/* How long the kernel may keep entries and attributes: long, because every change is announced by
 * an event and invalidated explicitly. A reply the daemon cannot vouch for gets 0 instead. */
#define FS_CACHE_TIMEOUT 86400.0

/* Nodeids of the special files: the top bit set, so they never meet a znode's ino. */
#define FS_SPECIAL_BIT (1ULL << 63)

struct history;
struct itable;
struct inval;
struct pollset;
struct session;

struct fs_opts {
	char *hosts;              /* "host:port[,host:port...]" */
	char *mountpoint;
	int session_timeout_ms;
	int foreground;
	int debug;
	char *logfile;
	char *key_file;           /* -o key=: CURVE key pair, NULL: plaintext */
	char *server_key_file;    /* -o serverkey=: the ensemble's public key */
};

struct coordfs {
	struct fs_opts opts;
	struct fuse_session *se;
	uid_t uid;
	gid_t gid;

	pthread_rwlock_t reply_lock;   /* see the lock order above */

	pthread_mutex_t mu;            /* the table and everything marked "under mu" */
	struct itable *it;             /* under mu */
	uint64_t epoch;                /* under mu: bumped when every cached thing becomes unknown */
	uint64_t inval_seq;            /* under mu: the last notice batch queued to the kernel */
	uint64_t inval_done;           /* under mu: the last batch the invalidation thread sent */
	uint64_t flush_seq;            /* under mu: the batch of the last "forget everything" */
	pthread_cond_t commit_cv;      /* with mu: an inode's `committing` went down */

	struct session *sess;
	struct inval *inval;
	struct pollset *watch;
	struct history *hist;           /* .history's nodeids (own lock) */
};

/* The snapshot a read from the server is taken at: fills of the cache are accepted only when no
 * event newer than `zxid` touched what they fill, and the epoch did not move. */
struct snap {
	uint64_t zxid;
	uint64_t epoch;
};

static inline struct coordfs *fs_of(fuse_req_t req) { return fuse_req_userdata(req); }

/* The largest of a stat's zxids: a stat is a snapshot taken at or after all of them. */
static inline uint64_t stat_zxid(const struct coord_stat *st)
{
	uint64_t z = (uint64_t)st->czxid;
	if ((uint64_t)st->mzxid > z)
		z = (uint64_t)st->mzxid;
	if ((uint64_t)st->pzxid > z)
		z = (uint64_t)st->pzxid;
	return z;
}

#endif
