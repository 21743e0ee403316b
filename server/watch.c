/*
 * watch.c: the watch table, a hash map from path to the sessions watching it and how.
 * Recursive watches are found by looking up each ancestor of an event's path, so an event costs
 * O(depth) lookups when any recursive watch exists and one lookup otherwise.
 */
#include "watch.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "err.h"
#include "wire.h"

struct wsub {
	uint64_t session;
	unsigned kinds;
};

struct wentry {
	struct wentry *next;
	uint64_t hash;
	struct wsub *subs;
	uint32_t nsubs, csubs;
	uint32_t len;
	char path[];
};

struct watch_mgr {
	struct wentry **buckets;
	size_t nbuckets, nentries;
	size_t nrecursive;        /* subscriptions with WATCH_RECURSIVE */
	/* scratch for one trigger: sessions to notify */
	uint64_t *hit;
	size_t nhit, chit;
};

struct watch_mgr *watch_new(void)
{
	struct watch_mgr *wm = calloc(1, sizeof(*wm));
	if (!wm)
		return NULL;
	wm->nbuckets = 1024;
	wm->buckets = calloc(wm->nbuckets, sizeof(*wm->buckets));
	if (!wm->buckets) {
		free(wm);
		return NULL;
	}
	return wm;
}

static void entry_free(struct wentry *e)
{
	free(e->subs);
	free(e);
}

void watch_free(struct watch_mgr *wm)
{
	if (!wm)
		return;
	for (size_t i = 0; i < wm->nbuckets; i++) {
		struct wentry *e = wm->buckets[i];
		while (e) {
			struct wentry *next = e->next;
			entry_free(e);
			e = next;
		}
	}
	free(wm->buckets);
	free(wm->hit);
	free(wm);
}

static struct wentry **find(struct watch_mgr *wm, const char *path, size_t len, uint64_t h)
{
	struct wentry **pp = &wm->buckets[h & (wm->nbuckets - 1)];
	while (*pp && !((*pp)->hash == h && (*pp)->len == len && !memcmp((*pp)->path, path, len)))
		pp = &(*pp)->next;
	return pp;
}

static void grow(struct watch_mgr *wm)
{
	size_t n = wm->nbuckets * 2;
	struct wentry **b = calloc(n, sizeof(*b));
	if (!b)
		return; /* keep the longer chains */
	for (size_t i = 0; i < wm->nbuckets; i++) {
		struct wentry *e = wm->buckets[i];
		while (e) {
			struct wentry *next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(wm->buckets);
	wm->buckets = b;
	wm->nbuckets = n;
}

int watch_add(struct watch_mgr *wm, uint64_t session, const char *path, size_t len, unsigned kind)
{
	uint64_t h = XXH64(path, len, 0);
	struct wentry **pp = find(wm, path, len, h);
	struct wentry *e = *pp;
	if (!e) {
		e = calloc(1, sizeof(*e) + len);
		if (!e)
			return COORD_ENOMEM;
		e->hash = h;
		e->len = (uint32_t)len;
		memcpy(e->path, path, len);
		*pp = e;
		if (++wm->nentries > wm->nbuckets)
			grow(wm);
	}
	for (uint32_t i = 0; i < e->nsubs; i++) {
		if (e->subs[i].session == session) {
			if ((kind & WATCH_RECURSIVE) && !(e->subs[i].kinds & WATCH_RECURSIVE))
				wm->nrecursive++;
			e->subs[i].kinds |= kind;
			return COORD_OK;
		}
	}
	if (e->nsubs == e->csubs) {
		uint32_t c = e->csubs ? e->csubs * 2 : 2;
		struct wsub *s = realloc(e->subs, c * sizeof(*s));
		if (!s) {
			if (!e->nsubs) { /* just made: do not leave an empty entry behind */
				struct wentry **q = find(wm, path, len, h);
				*q = e->next;
				entry_free(e);
				wm->nentries--;
			}
			return COORD_ENOMEM;
		}
		e->subs = s;
		e->csubs = c;
	}
	e->subs[e->nsubs++] = (struct wsub){session, kind};
	if (kind & WATCH_RECURSIVE)
		wm->nrecursive++;
	return COORD_OK;
}

/* Clear `kind` bits of subscription i; drop it (and the entry) when nothing is left. */
static void clear_kinds(struct watch_mgr *wm, struct wentry **pp, uint32_t i, unsigned kind)
{
	struct wentry *e = *pp;
	if ((kind & WATCH_RECURSIVE) && (e->subs[i].kinds & WATCH_RECURSIVE))
		wm->nrecursive--;
	e->subs[i].kinds &= ~kind;
	if (e->subs[i].kinds)
		return;
	e->subs[i] = e->subs[--e->nsubs];
	if (e->nsubs)
		return;
	*pp = e->next;
	entry_free(e);
	wm->nentries--;
}

int watch_remove(struct watch_mgr *wm, uint64_t session, const char *path, size_t len, unsigned kind)
{
	struct wentry **pp = find(wm, path, len, XXH64(path, len, 0));
	if (!*pp)
		return COORD_ENONODE;
	for (uint32_t i = 0; i < (*pp)->nsubs; i++) {
		if ((*pp)->subs[i].session == session && ((*pp)->subs[i].kinds & kind)) {
			clear_kinds(wm, pp, i, kind);
			return COORD_OK;
		}
	}
	return COORD_ENONODE;
}

void watch_remove_session(struct watch_mgr *wm, uint64_t session)
{
	for (size_t b = 0; b < wm->nbuckets; b++) {
		struct wentry **pp = &wm->buckets[b];
		while (*pp) {
			struct wentry *e = *pp;
			int gone = 0;
			for (uint32_t i = 0; i < e->nsubs; i++) {
				if (e->subs[i].session == session) {
					gone = e->nsubs == 1;
					clear_kinds(wm, pp, i, ~0u);
					break;
				}
			}
			if (!gone)
				pp = &(*pp)->next;
		}
	}
}

static void hit(struct watch_mgr *wm, uint64_t session)
{
	for (size_t i = 0; i < wm->nhit; i++)
		if (wm->hit[i] == session)
			return;
	if (wm->nhit == wm->chit) {
		size_t c = wm->chit ? wm->chit * 2 : 16;
		uint64_t *p = realloc(wm->hit, c * sizeof(*p));
		if (!p)
			return; /* cannot happen in practice; the event is then not delivered to this one */
		wm->hit = p;
		wm->chit = c;
	}
	wm->hit[wm->nhit++] = session;
}

/* Collect the sessions of entry `path` whose kinds intersect `fire`; drop one-shot kinds in `consume`. */
static void match(struct watch_mgr *wm, const char *path, size_t len, unsigned fire, unsigned consume)
{
	struct wentry **pp = find(wm, path, len, XXH64(path, len, 0));
	struct wentry *e = *pp;
	if (!e)
		return;
	for (uint32_t i = 0; i < e->nsubs;) {
		unsigned k = e->subs[i].kinds;
		if (!(k & fire)) {
			i++;
			continue;
		}
		hit(wm, e->subs[i].session);
		if (!(k & consume)) {
			i++;
			continue;
		}
		int sub_gone = !(k & ~consume);
		int entry_gone = sub_gone && e->nsubs == 1;
		clear_kinds(wm, pp, i, consume);
		if (entry_gone)
			return;
		if (!sub_gone)
			i++; /* else slot i now holds the last subscription: look at it next */
	}
}

void watch_trigger(struct watch_mgr *wm, uint8_t type, const char *path, size_t len,
		   void (*cb)(void *arg, uint64_t session), void *arg)
{
	wm->nhit = 0;
	unsigned fire = WATCH_PERSIST, consume = 0;
	switch (type) {
	case COORD_EV_CREATED:
	case COORD_EV_CHANGED:
		fire |= WATCH_DATA;
		consume = WATCH_DATA;
		break;
	case COORD_EV_DELETED:
		fire |= WATCH_DATA | WATCH_CHILD;
		consume = WATCH_DATA | WATCH_CHILD;
		break;
	case COORD_EV_CHILDREN:
		fire |= WATCH_CHILD;
		consume = WATCH_CHILD;
		break;
	default:
		return;
	}
	match(wm, path, len, fire, consume);
	/* Recursive watchers hear of creations, deletions and changes in their subtree; a child-list
	 * change reaches them as the child's own created/deleted event, as in ZooKeeper. */
	if (wm->nrecursive && type != COORD_EV_CHILDREN) {
		match(wm, path, len, WATCH_RECURSIVE, 0);
		for (size_t i = len; i-- > 1;)
			if (path[i] == '/')
				match(wm, path, i, WATCH_RECURSIVE, 0);
		if (len > 1)
			match(wm, "/", 1, WATCH_RECURSIVE, 0);
	}
	for (size_t i = 0; i < wm->nhit; i++)
		cb(arg, wm->hit[i]);
}

size_t watch_count(const struct watch_mgr *wm, uint64_t session)
{
	size_t n = 0;
	for (size_t b = 0; b < wm->nbuckets; b++)
		for (const struct wentry *e = wm->buckets[b]; e; e = e->next)
			for (uint32_t i = 0; i < e->nsubs; i++)
				if (!session || e->subs[i].session == session)
					n += (size_t)__builtin_popcount(e->subs[i].kinds);
	return n;
}

void watch_each(const struct watch_mgr *wm, uint64_t session,
		void (*cb)(void *arg, const char *path, size_t len, unsigned kinds), void *arg)
{
	for (size_t b = 0; b < wm->nbuckets; b++)
		for (const struct wentry *e = wm->buckets[b]; e; e = e->next)
			for (uint32_t i = 0; i < e->nsubs; i++)
				if (e->subs[i].session == session)
					cb(arg, e->path, e->len, e->subs[i].kinds);
}
