/*
 * loop.h: the mount's request loop.
 *
 * A reader thread takes the requests from the kernel. A request the daemon can answer from memory
 * (ops_inline says which: a read-only open of a cached file, its reads and release, cached
 * attributes and names, forgets) is answered by the reader itself, at once; any other (one that
 * may ask the server or wait) is copied and handed to a pool of worker threads.
 *
 * Why: a FUSE request costs two wake-ups (the kernel wakes a daemon thread, the reply wakes the
 * caller), and on a small machine most of that cost is a wake-up on another CPU. libfuse's
 * multi-threaded loop hands successive requests to different idle threads, each wherever it last
 * ran; one reader that answers the hot requests inline stays warm and next to its caller, which
 * takes a hot `cat` from about 30 to about 16-20 us (README, "Caching"). When requests pile up
 * (callers on several CPUs), more threads read, up to one per CPU, and stop again once idle.
 */
#ifndef COORDFS_LOOP_H
#define COORDFS_LOOP_H

#include "fs.h"

/* Serve until unmounted or told to exit. Returns 0, or -errno / a signal number as libfuse's loops. */
int loop_run(struct coordfs *fs);
/* Wait for the pool's threads to finish (after the session is closed, so none waits on the server). */
void loop_join(struct coordfs *fs);
/* The calling thread is about to wait (on the server, on a commit): if it is the reader, another
 * thread takes over reading first. Any thread, any lock held. */
void loop_blocking(void);

#endif
