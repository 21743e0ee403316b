/*
 * inval.c: the invalidation thread (see inval.h for why it exists and the order it keeps).
 *
 * The queue is a list of batches under its own mutex, which is always the innermost lock: callers
 * hold fs->mu when queueing, so a batch's sequence number and the inodes' kern_queued marks are
 * assigned in one step with the cache invalidation that caused them.
 */
#include "inval.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "inode.h"
#include "log.h"
#include "pollfile.h"

struct batch {
	struct batch *next;
	uint64_t seq;
	int flush;              /* forget everything first */
	struct notice *nv;
	size_t nn;
	uint8_t ev_type;
	uint64_t zxid;
	char *path;
	char *line;
};

struct inval {
	pthread_t th;
	int started;
	pthread_mutex_t qmu;
	pthread_cond_t cv;
	struct batch *head, *tail;
	int stop, kicked;
	int lost;               /* a batch could not be queued: flush at the next chance */
	uint64_t lost_seq;      /* the sequence number that flush stands for */
};

static void free_batch(struct batch *b)
{
	for (size_t i = 0; i < b->nn; i++)
		free(b->nv[i].name);
	free(b->nv);
	free(b->path);
	free(b->line);
	free(b);
}

static uint64_t push(struct coordfs *fs, struct batch *b)
{
	struct inval *iv = fs->inval;
	b->seq = ++fs->inval_seq;
	pthread_mutex_lock(&iv->qmu);
	b->next = NULL;
	if (iv->tail)
		iv->tail->next = b;
	else
		iv->head = b;
	iv->tail = b;
	pthread_cond_signal(&iv->cv);
	pthread_mutex_unlock(&iv->qmu);
	return b->seq;
}

static uint64_t lost(struct coordfs *fs, struct notice *nv, size_t nn)
{
	for (size_t i = 0; i < nn; i++)
		free(nv[i].name);
	free(nv);
	LOG_ERROR("out of memory queueing a kernel invalidation: the kernel will be told to forget everything");
	fs->flush_seq = ++fs->inval_seq;
	pthread_mutex_lock(&fs->inval->qmu);
	fs->inval->lost = 1;
	fs->inval->lost_seq = fs->flush_seq;
	pthread_cond_signal(&fs->inval->cv);
	pthread_mutex_unlock(&fs->inval->qmu);
	return fs->flush_seq;
}

uint64_t inval_queue(struct coordfs *fs, struct notice *nv, size_t nn, uint8_t ev_type, const char *path,
		     uint64_t zxid, const char *line)
{
	struct batch *b = calloc(1, sizeof(*b));
	if (!b)
		return lost(fs, nv, nn);
	b->nv = nv;
	b->nn = nn;
	b->ev_type = ev_type;
	b->zxid = zxid;
	if ((path && !(b->path = strdup(path))) || (line && !(b->line = strdup(line)))) {
		b->nv = NULL;
		b->nn = 0;
		free_batch(b);
		return lost(fs, nv, nn);
	}
	return push(fs, b);
}

uint64_t inval_queue_flush(struct coordfs *fs, const char *line)
{
	struct batch *b = calloc(1, sizeof(*b));
	if (!b || (line && !(b->line = strdup(line)))) {
		free(b);
		return lost(fs, NULL, 0);
	}
	b->flush = 1;
	fs->flush_seq = push(fs, b);
	return fs->flush_seq;
}

void inval_kick(struct coordfs *fs)
{
	struct inval *iv = fs->inval;
	pthread_mutex_lock(&iv->qmu);
	iv->kicked = 1;
	pthread_cond_signal(&iv->cv);
	pthread_mutex_unlock(&iv->qmu);
}

int inval_pending(const struct coordfs *fs, const struct inode *in)
{
	return in->kern_queued > fs->inval_done || fs->flush_seq > fs->inval_done;
}

/* ---- the thread ---- */

static void send_inode(struct coordfs *fs, uint64_t ino)
{
	int rc = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	if (rc && rc != -ENOENT)
		LOG_DEBUG("inval_inode %llu: %s", (unsigned long long)ino, strerror(-rc));
}

static void send_entry(struct coordfs *fs, uint64_t parent, const char *name)
{
	int rc = fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
	if (rc && rc != -ENOENT)
		LOG_DEBUG("inval_entry %llu/%s: %s", (unsigned long long)parent, name, strerror(-rc));
}

struct everything {
	uint64_t *inos;
	size_t ni, ci;
	struct notice *ents;
	size_t ne, ce;
	int oom;
};

static void all_inodes(void *arg, struct inode *in)
{
	struct everything *e = arg;
	if (e->oom)
		return;
	if (e->ni == e->ci) {
		size_t c = e->ci ? e->ci * 2 : 256;
		uint64_t *p = realloc(e->inos, c * sizeof(*p));
		if (!p) {
			e->oom = 1;
			return;
		}
		e->inos = p;
		e->ci = c;
	}
	e->inos[e->ni++] = in->ino;
}

static void all_dentries(void *arg, struct dentry *d)
{
	struct everything *e = arg;
	if (e->oom)
		return;
	if (e->ne == e->ce) {
		size_t c = e->ce ? e->ce * 2 : 256;
		struct notice *p = realloc(e->ents, c * sizeof(*p));
		if (!p) {
			e->oom = 1;
			return;
		}
		e->ents = p;
		e->ce = c;
	}
	char *name = strdup(d->name);
	if (!name) {
		e->oom = 1;
		return;
	}
	e->ents[e->ne++] = (struct notice){NOTE_ENTRY, d->parent, name};
}

/* Tell the kernel to forget every inode's attributes and pages and every name we ever answered. */
static void send_flush(struct coordfs *fs)
{
	struct everything e;
	memset(&e, 0, sizeof(e));
	pthread_mutex_lock(&fs->mu);
	inode_each(fs->it, all_inodes, &e);
	dentry_each(fs->it, all_dentries, &e);
	dentry_drop_negatives(fs->it);
	pthread_mutex_unlock(&fs->mu);
	if (e.oom)
		LOG_ERROR("out of memory listing what the kernel caches: some of it may stay stale");
	for (size_t i = 0; i < e.ne; i++) {
		send_entry(fs, e.ents[i].ino, e.ents[i].name);
		free(e.ents[i].name);
	}
	for (size_t i = 0; i < e.ni; i++)
		send_inode(fs, e.inos[i]);
	free(e.ents);
	free(e.inos);
}

static void *inval_main(void *arg)
{
	struct coordfs *fs = arg;
	struct inval *iv = fs->inval;
	for (;;) {
		pthread_mutex_lock(&iv->qmu);
		while (!iv->head && !iv->stop && !iv->kicked && !iv->lost)
			pthread_cond_wait(&iv->cv, &iv->qmu);
		if (iv->stop) {
			pthread_mutex_unlock(&iv->qmu);
			break;
		}
		struct batch *list = iv->head;
		iv->head = iv->tail = NULL;
		int was_lost = iv->lost;
		uint64_t lost_seq = iv->lost_seq;
		iv->lost = 0;
		iv->kicked = 0;
		pthread_mutex_unlock(&iv->qmu);

		pollset_reap(fs->watch);
		if (!list && !was_lost)
			continue;
		/* Every reply computed before these batches were queued is written before we go on. */
		pthread_rwlock_wrlock(&fs->reply_lock);
		pthread_rwlock_unlock(&fs->reply_lock);
		if (was_lost) {
			send_flush(fs);
			pthread_mutex_lock(&fs->mu);
			if (lost_seq > fs->inval_done)
				fs->inval_done = lost_seq;
			pthread_mutex_unlock(&fs->mu);
		}
		while (list) {
			struct batch *b = list;
			list = b->next;
			if (b->flush)
				send_flush(fs);
			/* Entries first: an entry notice also drops the parent's attributes. */
			for (size_t i = 0; i < b->nn; i++)
				if (b->nv[i].kind == NOTE_ENTRY)
					send_entry(fs, b->nv[i].ino, b->nv[i].name);
			for (size_t i = 0; i < b->nn; i++)
				if (b->nv[i].kind == NOTE_INODE)
					send_inode(fs, b->nv[i].ino);
			pthread_mutex_lock(&fs->mu);
			if (b->seq > fs->inval_done)
				fs->inval_done = b->seq;
			pthread_mutex_unlock(&fs->mu);
			if (b->ev_type)
				pollset_event(fs->watch, b->ev_type, b->path, b->zxid);
			if (b->line)
				pollset_line(fs->watch, b->line);
			free_batch(b);
		}
	}
	return NULL;
}

int inval_init(struct coordfs *fs)
{
	struct inval *iv = calloc(1, sizeof(*iv));
	if (!iv)
		return -ENOMEM;
	pthread_mutex_init(&iv->qmu, NULL);
	pthread_cond_init(&iv->cv, NULL);
	fs->inval = iv;
	return 0;
}

int inval_start(struct coordfs *fs)
{
	struct inval *iv = fs->inval;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&iv->th, NULL, inval_main, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	iv->started = 1;
	return 0;
}

void inval_stop(struct coordfs *fs)
{
	struct inval *iv = fs->inval;
	if (!iv)
		return;
	if (iv->started) {
		pthread_mutex_lock(&iv->qmu);
		iv->stop = 1;
		pthread_cond_signal(&iv->cv);
		pthread_mutex_unlock(&iv->qmu);
		pthread_join(iv->th, NULL);
	}
	while (iv->head) {
		struct batch *b = iv->head;
		iv->head = b->next;
		free_batch(b);
	}
	pthread_mutex_destroy(&iv->qmu);
	pthread_cond_destroy(&iv->cv);
	free(iv);
	fs->inval = NULL;
}
