/*
 * watch.h: which session watches which path, and who an event goes to.
 *
 * Not replicated: watches belong to the member a session is connected to (a client re-arms them
 * when it moves). One-shot data and child watches are ZooKeeper's (fired once, then gone);
 * persistent and persistent-recursive ones are ZooKeeper 3.6's addWatch and stay until removed.
 * A session gets one notification per event, however many of its watches match.
 * The manager owns copies of the paths.
 */
#ifndef COORD_WATCH_H
#define COORD_WATCH_H

#include <stddef.h>
#include <stdint.h>

#define WATCH_DATA 0x1u       /* one-shot: get/exists */
#define WATCH_CHILD 0x2u      /* one-shot: list */
#define WATCH_PERSIST 0x4u    /* this node's data, existence and children */
#define WATCH_RECURSIVE 0x8u  /* every node of the subtree: created, deleted, changed */

struct watch_mgr;

struct watch_mgr *watch_new(void);
void watch_free(struct watch_mgr *wm);
/* COORD_OK or COORD_ENOMEM */
int watch_add(struct watch_mgr *wm, uint64_t session, const char *path, size_t len, unsigned kind);
/* Remove the given kinds; COORD_ENONODE when the session had none of them there. */
int watch_remove(struct watch_mgr *wm, uint64_t session, const char *path, size_t len, unsigned kind);
void watch_remove_session(struct watch_mgr *wm, uint64_t session);
/*
 * An event happened at path: call cb(arg, session) once for each session with a matching watch,
 * in a deterministic order, and drop the one-shot watches that fired.
 */
void watch_trigger(struct watch_mgr *wm, uint8_t type, const char *path, size_t len,
		   void (*cb)(void *arg, uint64_t session), void *arg);
/* Watches held by one session, or by all (session 0). */
size_t watch_count(const struct watch_mgr *wm, uint64_t session);
/* Visit a session's watches: cb(arg, path, len, kinds). */
void watch_each(const struct watch_mgr *wm, uint64_t session,
		void (*cb)(void *arg, const char *path, size_t len, unsigned kinds), void *arg);

#endif
