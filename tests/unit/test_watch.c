/*
 * test_watch.c: the watch table (server/watch.c).
 *
 * One-shot data and child watches fire once (for the events ZooKeeper fires them for) and are
 * gone; persistent ones stay; recursive ones fire for the node and its descendants but not for
 * child-list events, and "/" watches everything; a session hears of an event once however many
 * of its watches match; removal by kind and by session; counts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "watch.h"
#include "wire.h"

struct hits {
	uint64_t s[256];
	size_t n;
};

static void on_hit(void *arg, uint64_t session)
{
	struct hits *h = arg;
	CHECK(h->n < 256);
	h->s[h->n++] = session;
}

static struct hits H;

/* Trigger and return how many sessions were told; each at most once. */
static size_t fire(struct watch_mgr *wm, uint8_t type, const char *path)
{
	H.n = 0;
	watch_trigger(wm, type, path, strlen(path), on_hit, &H);
	for (size_t i = 0; i < H.n; i++)
		for (size_t j = i + 1; j < H.n; j++)
			CHECK(H.s[i] != H.s[j]);
	return H.n;
}

static int told(uint64_t s)
{
	for (size_t i = 0; i < H.n; i++)
		if (H.s[i] == s)
			return 1;
	return 0;
}

static int add(struct watch_mgr *wm, uint64_t s, const char *path, unsigned kind)
{
	return watch_add(wm, s, path, strlen(path), kind);
}

static int rm(struct watch_mgr *wm, uint64_t s, const char *path, unsigned kind)
{
	return watch_remove(wm, s, path, strlen(path), kind);
}

static void test_oneshot_data(void)
{
	struct watch_mgr *wm = watch_new();
	CHECK(wm);
	/* a data watch (get/exists) fires on created, changed, deleted; not on children */
	static const uint8_t fires[] = {COORD_EV_CREATED, COORD_EV_CHANGED, COORD_EV_DELETED};
	for (size_t i = 0; i < 3; i++) {
		CHECK_EQ(add(wm, 1, "/a", WATCH_DATA), COORD_OK);
		CHECK_EQ(watch_count(wm, 1), 1);
		CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/a"), 0);
		CHECK_EQ(fire(wm, fires[i], "/a/b"), 0); /* another path */
		CHECK_EQ(fire(wm, fires[i], "/"), 0);
		CHECK_EQ(fire(wm, fires[i], "/a"), 1);
		CHECK(told(1));
		CHECK_EQ(watch_count(wm, 1), 0);
		CHECK_EQ(watch_count(wm, 0), 0);
		CHECK_EQ(fire(wm, fires[i], "/a"), 0); /* gone */
	}
	/* adding it twice is one watch, fired once */
	CHECK_EQ(add(wm, 1, "/a", WATCH_DATA), COORD_OK);
	CHECK_EQ(add(wm, 1, "/a", WATCH_DATA), COORD_OK);
	CHECK_EQ(watch_count(wm, 1), 1);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a"), 1);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a"), 0);
	watch_free(wm);
}

static void test_oneshot_child(void)
{
	struct watch_mgr *wm = watch_new();
	/* a child watch (list) fires on children and on the node's deletion */
	CHECK_EQ(add(wm, 1, "/d", WATCH_CHILD), COORD_OK);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/d"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CREATED, "/d"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/d/x"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CREATED, "/d/x"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/d"), 1);
	CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/d"), 0);
	CHECK_EQ(add(wm, 1, "/d", WATCH_CHILD), COORD_OK);
	CHECK_EQ(fire(wm, COORD_EV_DELETED, "/d"), 1);
	CHECK_EQ(watch_count(wm, 0), 0);
	/* data and child watch on the same node: a deletion fires (once) and takes both */
	CHECK_EQ(add(wm, 1, "/d", WATCH_CHILD), COORD_OK);
	CHECK_EQ(add(wm, 1, "/d", WATCH_DATA), COORD_OK);
	CHECK_EQ(watch_count(wm, 1), 2);
	CHECK_EQ(fire(wm, COORD_EV_DELETED, "/d"), 1);
	CHECK_EQ(watch_count(wm, 1), 0);
	/* a change takes the data watch and leaves the child watch */
	CHECK_EQ(add(wm, 1, "/d", WATCH_CHILD | WATCH_DATA), COORD_OK);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/d"), 1);
	CHECK_EQ(watch_count(wm, 1), 1);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/d"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/d"), 1);
	CHECK_EQ(watch_count(wm, 1), 0);
	watch_free(wm);
}

static void test_persistent(void)
{
	struct watch_mgr *wm = watch_new();
	CHECK_EQ(add(wm, 7, "/p", WATCH_PERSIST), COORD_OK);
	for (int round = 0; round < 3; round++) {
		CHECK_EQ(fire(wm, COORD_EV_CREATED, "/p"), 1);
		CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/p"), 1);
		CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/p"), 1);
		CHECK_EQ(fire(wm, COORD_EV_DELETED, "/p"), 1);
		CHECK(told(7));
		CHECK_EQ(watch_count(wm, 7), 1);
	}
	/* not for descendants */
	CHECK_EQ(fire(wm, COORD_EV_CREATED, "/p/q"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/p/q/r"), 0);
	/* persistent plus one-shot: told once; the one-shot goes, the persistent stays */
	CHECK_EQ(add(wm, 7, "/p", WATCH_DATA | WATCH_CHILD), COORD_OK);
	CHECK_EQ(watch_count(wm, 7), 3);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/p"), 1);
	CHECK_EQ(watch_count(wm, 7), 2);
	CHECK_EQ(fire(wm, COORD_EV_DELETED, "/p"), 1);
	CHECK_EQ(watch_count(wm, 7), 1);
	/* an unknown event type tells nobody */
	CHECK_EQ(fire(wm, 99, "/p"), 0);
	CHECK_EQ(fire(wm, COORD_EV_OVERFLOW, "/p"), 0);
	watch_free(wm);
}

static void test_recursive(void)
{
	struct watch_mgr *wm = watch_new();
	CHECK_EQ(add(wm, 3, "/a", WATCH_RECURSIVE), COORD_OK);
	/* the node itself and every descendant, for created, deleted, changed */
	static const uint8_t types[] = {COORD_EV_CREATED, COORD_EV_CHANGED, COORD_EV_DELETED};
	static const char *const under[] = {"/a", "/a/b", "/a/b/c", "/a/b/c/d/e/f"};
	for (size_t t = 0; t < 3; t++)
		for (size_t p = 0; p < 4; p++) {
			CHECK_EQ(fire(wm, types[t], under[p]), 1);
			CHECK(told(3));
		}
	/* not child-list events (ZooKeeper: the child's own created/deleted tells it) */
	CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/a"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/a/b"), 0);
	/* not outside the subtree, not a sibling sharing the prefix */
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/ab"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/ab/c"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/b/a"), 0);
	CHECK_EQ(watch_count(wm, 3), 1);

	/* the root's recursive watch sees everything, the root included */
	CHECK_EQ(add(wm, 4, "/", WATCH_RECURSIVE), COORD_OK);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/"), 1);
	CHECK(told(4));
	CHECK_EQ(fire(wm, COORD_EV_CREATED, "/zzz"), 1);
	CHECK_EQ(fire(wm, COORD_EV_DELETED, "/x/y/z"), 1);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a/b"), 2);
	CHECK(told(3) && told(4));
	CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/"), 0);

	/* one session, several matching watches (recursive at two ancestors, persistent, one-shot):
	 * one notification per event */
	CHECK_EQ(add(wm, 3, "/", WATCH_RECURSIVE), COORD_OK);
	CHECK_EQ(add(wm, 3, "/a/b", WATCH_RECURSIVE | WATCH_PERSIST | WATCH_DATA), COORD_OK);
	CHECK_EQ(watch_count(wm, 3), 5);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a/b"), 2);
	CHECK_EQ(watch_count(wm, 3), 4); /* the data watch fired */
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a/b/c"), 2);
	CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/a/b"), 1); /* the persistent one */
	CHECK(told(3));

	/* removing the recursive kinds stops them */
	CHECK_EQ(rm(wm, 3, "/", WATCH_RECURSIVE), COORD_OK);
	CHECK_EQ(rm(wm, 3, "/", WATCH_RECURSIVE), COORD_ENONODE);
	CHECK_EQ(rm(wm, 4, "/", WATCH_RECURSIVE), COORD_OK);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/zzz"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a/q"), 1);
	CHECK_EQ(rm(wm, 3, "/a", WATCH_RECURSIVE), COORD_OK);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a/q"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a/b/q"), 1);
	CHECK_EQ(rm(wm, 3, "/a/b", WATCH_RECURSIVE), COORD_OK);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a/b/q"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a/b"), 1); /* still persistent there */
	CHECK_EQ(watch_count(wm, 0), 1);
	watch_free(wm);
}

static void test_many_sessions(void)
{
	struct watch_mgr *wm = watch_new();
	/* 40 sessions on one path: even ones one-shot, odd ones persistent, every third also
	 * recursive on the parent */
	for (uint64_t s = 1; s <= 40; s++) {
		CHECK_EQ(add(wm, s, "/x/y", s % 2 ? WATCH_PERSIST : WATCH_DATA), COORD_OK);
		if (s % 3 == 0)
			CHECK_EQ(add(wm, s, "/x", WATCH_RECURSIVE), COORD_OK);
	}
	CHECK_EQ(watch_count(wm, 0), 40 + 13);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/x/y"), 40);
	for (uint64_t s = 1; s <= 40; s++)
		CHECK(told(s));
	/* the one-shot ones are gone, the rest stay */
	CHECK_EQ(watch_count(wm, 0), 20 + 13);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/x/y"), 20 + 6); /* odd ones, plus even multiples of 3 */
	CHECK(!told(2) && told(6) && told(1));
	/* the order is deterministic: the same event twice tells them in the same order */
	struct hits first = H;
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/x/y"), 26);
	CHECK(!memcmp(first.s, H.s, first.n * sizeof(H.s[0])));
	/* a session's removal */
	watch_remove_session(wm, 3);
	CHECK_EQ(watch_count(wm, 3), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/x/y"), 25);
	CHECK(!told(3));
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/x/z"), 12); /* recursive on /x: 6, 9, ..., 39 */
	for (uint64_t s = 1; s <= 40; s++)
		watch_remove_session(wm, s);
	CHECK_EQ(watch_count(wm, 0), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/x/y"), 0);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/x/z"), 0);
	/* a session with nothing, twice */
	watch_remove_session(wm, 99);
	watch_remove_session(wm, 99);
	watch_free(wm);
}

struct each_acc {
	char paths[16][32];
	unsigned kinds[16];
	int n;
};

static void each_cb(void *arg, const char *path, size_t len, unsigned kinds)
{
	struct each_acc *a = arg;
	CHECK(a->n < 16 && len < 32);
	memcpy(a->paths[a->n], path, len);
	a->paths[a->n][len] = 0;
	a->kinds[a->n++] = kinds;
}

static unsigned kinds_of(const struct each_acc *a, const char *path)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->paths[i], path))
			return a->kinds[i];
	return 0;
}

static void test_remove_and_each(void)
{
	struct watch_mgr *wm = watch_new();
	CHECK_EQ(add(wm, 1, "/a", WATCH_DATA | WATCH_CHILD | WATCH_PERSIST), COORD_OK);
	CHECK_EQ(add(wm, 1, "/b", WATCH_RECURSIVE), COORD_OK);
	CHECK_EQ(add(wm, 2, "/a", WATCH_DATA), COORD_OK);
	CHECK_EQ(watch_count(wm, 1), 4);
	CHECK_EQ(watch_count(wm, 2), 1);
	CHECK_EQ(watch_count(wm, 0), 5);
	struct each_acc acc = {.n = 0};
	watch_each(wm, 1, each_cb, &acc);
	CHECK_EQ(acc.n, 2);
	CHECK_EQ(kinds_of(&acc, "/a"), WATCH_DATA | WATCH_CHILD | WATCH_PERSIST);
	CHECK_EQ(kinds_of(&acc, "/b"), WATCH_RECURSIVE);
	/* remove one kind: the others stay */
	CHECK_EQ(rm(wm, 1, "/a", WATCH_CHILD), COORD_OK);
	CHECK_EQ(watch_count(wm, 1), 3);
	CHECK_EQ(rm(wm, 1, "/a", WATCH_CHILD), COORD_ENONODE);
	CHECK_EQ(rm(wm, 1, "/nope", WATCH_DATA), COORD_ENONODE);
	CHECK_EQ(rm(wm, 3, "/a", WATCH_DATA), COORD_ENONODE); /* another session's */
	CHECK_EQ(fire(wm, COORD_EV_CHILDREN, "/a"), 1);      /* only the persistent one */
	CHECK_EQ(watch_count(wm, 1), 3);
	/* remove several kinds at once */
	CHECK_EQ(rm(wm, 1, "/a", WATCH_DATA | WATCH_PERSIST), COORD_OK);
	CHECK_EQ(watch_count(wm, 1), 1);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/a"), 1);
	CHECK(told(2) && !told(1));
	CHECK_EQ(watch_count(wm, 0), 1);
	memset(&acc, 0, sizeof(acc));
	watch_each(wm, 1, each_cb, &acc);
	CHECK_EQ(acc.n, 1);
	CHECK_STR(acc.paths[0], "/b");
	/* remove_session takes recursive ones too */
	watch_remove_session(wm, 1);
	CHECK_EQ(fire(wm, COORD_EV_CHANGED, "/b/c"), 0);
	CHECK_EQ(watch_count(wm, 0), 0);
	memset(&acc, 0, sizeof(acc));
	watch_each(wm, 1, each_cb, &acc);
	CHECK_EQ(acc.n, 0);
	watch_free(wm);
	watch_free(NULL);
}

static void test_many_paths(void)
{
	enum { N = 20000 };
	struct watch_mgr *wm = watch_new();
	char p[64];
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "/dir%d/node%d", i % 50, i);
		CHECK_EQ(add(wm, (uint64_t)(i % 7) + 1, p, i % 2 ? WATCH_DATA : WATCH_PERSIST), COORD_OK);
	}
	CHECK_EQ(watch_count(wm, 0), N);
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "/dir%d/node%d", i % 50, i);
		CHECK_EQ(fire(wm, COORD_EV_CHANGED, p), 1);
		CHECK(told((uint64_t)(i % 7) + 1));
	}
	CHECK_EQ(watch_count(wm, 0), N / 2);
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "/dir%d/node%d", i % 50, i);
		CHECK_EQ(fire(wm, COORD_EV_CHANGED, p), (size_t)(i % 2 == 0));
	}
	for (uint64_t s = 1; s <= 7; s++)
		watch_remove_session(wm, s);
	CHECK_EQ(watch_count(wm, 0), 0);
	watch_free(wm);
}

int main(void)
{
	RUN(test_oneshot_data);
	RUN(test_oneshot_child);
	RUN(test_persistent);
	RUN(test_recursive);
	RUN(test_many_sessions);
	RUN(test_remove_and_each);
	RUN(test_many_paths);
	return 0;
}
