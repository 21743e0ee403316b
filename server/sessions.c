/*
 * sessions.c: the session table, a chained hash map from session id, plus each session's
 * ephemeral list and reply cache.
 */
#include "sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static size_t bucket(const struct sessions *t, uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 32) & (t->nbuckets - 1);
}

int sessions_init(struct sessions *t)
{
	t->nbuckets = 256;
	t->count = 0;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	return t->buckets ? COORD_OK : COORD_ENOMEM;
}

static void session_free(struct session *se)
{
	for (uint32_t i = 0; i < se->ncache; i++)
		free(se->cache[i].frame);
	free(se->cache);
	free(se->eph);
	free(se);
}

void sessions_free(struct sessions *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct session *se = t->buckets[i];
		while (se) {
			struct session *next = se->next;
			session_free(se);
			se = next;
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

struct session *sessions_find(const struct sessions *t, uint64_t id)
{
	for (struct session *se = t->buckets[bucket(t, id)]; se; se = se->next)
		if (se->id == id)
			return se;
	return NULL;
}

static int grow(struct sessions *t)
{
	size_t n = t->nbuckets * 2;
	struct session **b = calloc(n, sizeof(*b));
	if (!b)
		return COORD_ENOMEM;
	struct sessions nt = {b, n, t->count};
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct session *se = t->buckets[i];
		while (se) {
			struct session *next = se->next;
			size_t k = bucket(&nt, se->id);
			se->next = b[k];
			b[k] = se;
			se = next;
		}
	}
	free(t->buckets);
	*t = nt;
	return COORD_OK;
}

struct session *sessions_add(struct sessions *t, uint64_t id, const uint8_t *passwd, uint32_t timeout_ms,
			     const char *principal)
{
	if (t->count >= t->nbuckets && grow(t))
		return NULL;
	struct session *se = calloc(1, sizeof(*se));
	if (!se)
		return NULL;
	se->id = id;
	memcpy(se->passwd, passwd, COORD_PASSWD_LEN);
	se->timeout_ms = timeout_ms;
	if (principal)
		snprintf(se->principal, sizeof(se->principal), "%s", principal);
	size_t k = bucket(t, id);
	se->next = t->buckets[k];
	t->buckets[k] = se;
	t->count++;
	return se;
}

void sessions_remove(struct sessions *t, struct session *se)
{
	struct session **pp = &t->buckets[bucket(t, se->id)];
	while (*pp && *pp != se)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = se->next;
		t->count--;
	}
	session_free(se);
}

void sessions_each(const struct sessions *t, void (*cb)(void *arg, struct session *se), void *arg)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct session *se = t->buckets[i];
		while (se) {
			struct session *next = se->next; /* cb may remove se */
			cb(arg, se);
			se = next;
		}
	}
}

int session_eph_add(struct session *se, struct znode *n)
{
	if (se->neph == se->ceph) {
		uint32_t c = se->ceph ? se->ceph * 2 : 4;
		struct znode **p = realloc(se->eph, c * sizeof(*p));
		if (!p)
			return COORD_ENOMEM;
		se->eph = p;
		se->ceph = c;
	}
	/* Keep creation order, which is inode order (inode numbers only grow): a new node goes
	 * last, and a node a multi's rollback puts back returns to its old place, so closing the
	 * session deletes in the same order on every member, rolled back or reloaded or not. */
	uint32_t lo = se->neph;
	if (lo && se->eph[lo - 1]->ino > n->ino) {
		uint32_t hi = lo;
		lo = 0;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (se->eph[mid]->ino < n->ino)
				lo = mid + 1;
			else
				hi = mid;
		}
		memmove(&se->eph[lo + 1], &se->eph[lo], (se->neph - lo) * sizeof(*se->eph));
	}
	se->eph[lo] = n;
	se->neph++;
	return COORD_OK;
}

void session_eph_del(struct session *se, const struct znode *n)
{
	/* Keep creation order: close deletes ephemerals in the same order on every member. */
	for (uint32_t i = 0; i < se->neph; i++) {
		if (se->eph[i] == n) {
			memmove(&se->eph[i], &se->eph[i + 1], (se->neph - i - 1) * sizeof(*se->eph));
			se->neph--;
			return;
		}
	}
}

void session_eph_replace(struct session *se, const struct znode *old, struct znode *n)
{
	for (uint32_t i = 0; i < se->neph; i++)
		if (se->eph[i] == old)
			se->eph[i] = n;
}

void session_cache_prune(struct session *se, uint64_t ack)
{
	uint32_t k = 0;
	while (k < se->ncache && se->cache[k].xid < ack)
		free(se->cache[k++].frame);
	if (k) {
		memmove(se->cache, se->cache + k, (se->ncache - k) * sizeof(*se->cache));
		se->ncache -= k;
	}
}

int session_cache_put(struct session *se, uint64_t xid, const void *frame, size_t len)
{
	if (se->ncache == SESSION_MAX_CACHED_REPLIES) {
		free(se->cache[0].frame);
		memmove(se->cache, se->cache + 1, (se->ncache - 1) * sizeof(*se->cache));
		se->ncache--;
	}
	if (se->ncache == se->ccache) {
		uint32_t c = se->ccache ? se->ccache * 2 : 4;
		struct cached_reply *p = realloc(se->cache, c * sizeof(*p));
		if (!p)
			return COORD_ENOMEM;
		se->cache = p;
		se->ccache = c;
	}
	uint8_t *f = malloc(len ? len : 1);
	if (!f)
		return COORD_ENOMEM;
	memcpy(f, frame, len);
	se->cache[se->ncache++] = (struct cached_reply){xid, f, (uint32_t)len};
	return COORD_OK;
}

const struct cached_reply *session_cache_find(const struct session *se, uint64_t xid)
{
	for (uint32_t i = 0; i < se->ncache; i++)
		if (se->cache[i].xid == xid)
			return &se->cache[i];
	return NULL;
}
