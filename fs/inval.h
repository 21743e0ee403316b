/*
 * inval.h: the invalidation thread, the one thread that tells the kernel what changed.
 *
 * FUSE's notices (fuse_lowlevel_notify_inval_inode / _inval_entry) can block on the kernel's
 * locks, which a request handler may be holding up; so they are never sent from a handler or from
 * the client's I/O thread. Whoever learns of a change queues a batch here (under fs->mu, never
 * blocking); the thread, for each batch in order: waits until every reply computed before the
 * batch was queued has been written (a write-lock of fs->reply_lock, let go at once), sends the
 * batch's notices, marks the batch done, and only then hands the event or session line to the
 * .watch files. So a reader of .watch never sees a line before the kernel has forgotten what the
 * line's change made stale.
 */
#ifndef COORDFS_INVAL_H
#define COORDFS_INVAL_H

#include <stddef.h>
#include <stdint.h>

#include "fs.h"

enum notice_kind { NOTE_INODE = 1, NOTE_ENTRY = 2 };

struct notice {
	uint8_t kind;
	uint64_t ino;          /* NOTE_INODE: the inode; NOTE_ENTRY: the parent */
	char *name;            /* NOTE_ENTRY: malloc'd */
};

/* Set up the queue (before the session: events may come before the mount); -errno on failure. */
int inval_init(struct coordfs *fs);
/* Start the thread once fs->se is mounted; what was queued before is sent then. */
int inval_start(struct coordfs *fs);
/* Stop the thread (pending batches are dropped). */
void inval_stop(struct coordfs *fs);

/*
 * Queue a batch. Called with fs->mu held; takes ownership of nv (an array of nn notices, may be
 * NULL). ev_type 0 means no event line; line NULL means no session line. Returns the batch's
 * sequence number (also stored in fs->inval_seq). On out of memory the notices are sent late
 * (with the next batch that can be queued) rather than lost: see inval.c.
 */
uint64_t inval_queue(struct coordfs *fs, struct notice *nv, size_t nn, uint8_t ev_type,
		     const char *path, uint64_t zxid, const char *line);
/* Queue "forget everything the kernel caches" followed by a session line (may be NULL); the
 * inodes and names to forget are read from the table when the thread gets to it. fs->mu held. */
uint64_t inval_queue_flush(struct coordfs *fs, const char *line);
/* Wake the thread to answer interrupted .watch reads (any thread, no lock needed). */
void inval_kick(struct coordfs *fs);
/* 1 while a notice about `in` (or a flush) is queued and not yet sent. fs->mu held. */
struct inode;
int inval_pending(const struct coordfs *fs, const struct inode *in);

#endif
