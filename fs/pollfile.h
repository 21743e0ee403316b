/*
 * pollfile.h: .watch, the poll file. Each open is an independent watch instance.
 *
 * Writes are command lines: "PATH" (the node and its list of children), "PATH recursive" (the
 * whole subtree), "-PATH" (drop it). Reads return whole lines "EVENT PATH 0xZXID" and the session
 * lines "disconnected", "reconnected", "expired", "overflow". The server is asked for nothing: the
 * mount's one recursive watch on "/" already brings every event, and the invalidation thread hands
 * each to pollset_event after the kernel has been told (inval.h), so instances filter locally.
 *
 * Reads block without holding a FUSE worker thread: the request is kept and answered when a line
 * arrives (or EINTR when interrupted); O_NONBLOCK gives EAGAIN. poll/select/epoll readiness comes
 * through fuse_lowlevel_notify_poll. The file offset is honoured: the last chunk read is kept, and
 * a reader that seeks back into it (bash's read builtin does) reads the unconsumed rest again.
 *
 * All functions are thread-safe (one lock for the set). pollset_event/_line/_reap run on the
 * invalidation thread only.
 */
#ifndef COORDFS_POLLFILE_H
#define COORDFS_POLLFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs.h"

struct pollset;
struct pwatch;

struct pollset *pollset_new(struct coordfs *fs);
void pollset_free(struct pollset *ps);

struct pwatch *pwatch_open(struct pollset *ps);
void pwatch_release(struct pollset *ps, struct pwatch *w);
/* Command lines; returns size, or -EINVAL for a malformed line (nothing of the write is applied),
 * -ENOENT for dropping a watch that is not there. */
ssize_t pwatch_write(struct pollset *ps, struct pwatch *w, const char *buf, size_t size, off_t off);
/* Apply a final command line that had no newline. */
int pwatch_flush(struct pollset *ps, struct pwatch *w);
/* Answers req now or later. */
void pwatch_read(struct pollset *ps, struct pwatch *w, fuse_req_t req, size_t size, off_t off, int nonblock);
void pwatch_poll(struct pollset *ps, struct pwatch *w, fuse_req_t req, struct fuse_pollhandle *ph);

/* From the invalidation thread. */
void pollset_event(struct pollset *ps, uint8_t type, const char *path, uint64_t zxid);
void pollset_line(struct pollset *ps, const char *line);
void pollset_reap(struct pollset *ps);

#endif
