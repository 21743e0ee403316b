/*
 * session.c: the mount's session, its recovery after expiry, and the calls made through it
 * (see session.h).
 *
 * The current client sits behind a small reference count so the recovery thread can swap in a
 * new one while requests are in flight: a call takes a reference, the swap waits until the old
 * client's last reference is given back before closing it. Callbacks get their own client's
 * wrapper (struct sclient) as argument, so a retired client's late callbacks can be told apart.
 */
#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "err.h"
#include "log.h"
#include "loop.h"

struct sclient {
	struct coordfs *fs;
	struct coord_client *c;
	int refs;                   /* under session mu */
	atomic_int retired;
	atomic_int expired_seen;    /* its EXPIRED callback has run */
	int disconnected;           /* I/O thread only */
};

struct session {
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* CLOCK_MONOTONIC */
	struct sclient *cur;
	int recovering;             /* cur expired; a new session is being opened */
	int wake;                   /* the recovery thread has work */
	atomic_int stopping;
	pthread_t th;
	int th_started;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wait_until(struct session *s, int64_t deadline)
{
	struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
	pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

uint64_t fs_epoch(struct coordfs *fs)
{
	pthread_mutex_lock(&fs->mu);
	uint64_t e = fs->epoch;
	pthread_mutex_unlock(&fs->mu);
	return e;
}

/* ---- callbacks (client I/O thread) ---- */

static void on_event(void *arg, const struct coord_event *ev)
{
	struct sclient *sc = arg;
	if (atomic_load(&sc->retired))
		return;
	cache_on_event(sc->fs, ev->type, ev->path, ev->zxid);
}

static void on_state(void *arg, int state)
{
	struct sclient *sc = arg;
	struct coordfs *fs = sc->fs;
	struct session *s = fs->sess;
	switch (state) {
	case COORD_STATE_CONNECTING:
		if (atomic_load(&sc->retired))
			break;
		sc->disconnected = 1;
		LOG_WARN("lost the server; looking for another (the session lives on)");
		cache_line(fs, "disconnected");
		break;
	case COORD_STATE_CONNECTED:
		if (atomic_load(&sc->retired) || !sc->disconnected)
			break;
		sc->disconnected = 0;
		LOG_INFO("connected again");
		cache_line(fs, "reconnected");
		break;
	case COORD_STATE_EXPIRED:
		LOG_WARN("the session expired: its ephemeral nodes are gone; opening a new one");
		cache_flush(fs, "expired");
		pthread_mutex_lock(&s->mu);
		atomic_store(&sc->expired_seen, 1);
		if (s->cur == sc) {
			s->recovering = 1;
			s->wake = 1;
		}
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		break;
	default:
		break;
	}
}

/* ---- opening ---- */

static int open_client(struct coordfs *fs, struct sclient **out, int timeout_ms, char *err, size_t errlen)
{
	struct sclient *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		snprintf(err, errlen, "out of memory");
		return COORD_ENOMEM;
	}
	sc->fs = fs;
	struct coord_client_opts o;
	memset(&o, 0, sizeof(o));
	o.hosts = fs->opts.hosts;
	o.session_timeout_ms = fs->opts.session_timeout_ms;
	o.connect_timeout_ms = timeout_ms;
	o.on_event = on_event;
	o.on_state = on_state;
	o.arg = sc;
	char why[700];
	int rc = coord_client_open(&o, &sc->c, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s", why);
		free(sc);
		return rc;
	}
	/* One persistent recursive watch on "/" keeps every cache of this mount coherent. */
	rc = coord_addwatch(sc->c, "/", COORD_WATCH_PERSISTENT_RECURSIVE);
	if (rc) {
		snprintf(err, errlen, "cannot watch /: %s", coord_last_error());
		coord_client_close(sc->c);
		free(sc);
		return rc;
	}
	*out = sc;
	return COORD_OK;
}

static void *recover_main(void *arg)
{
	struct coordfs *fs = arg;
	struct session *s = fs->sess;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->wake && !s->stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stopping)
			break;
		s->wake = 0;
		struct sclient *old = s->cur;
		/* Let the old client's EXPIRED callback (flush, "expired" lines) run first. */
		while (old && !atomic_load(&old->expired_seen) && !s->stopping)
			wait_until(s, now_ms() + 100);
		struct sclient *nsc = NULL;
		while (!s->stopping) {
			pthread_mutex_unlock(&s->mu);
			char err[800];
			int rc = open_client(fs, &nsc, fs->opts.session_timeout_ms, err, sizeof(err));
			pthread_mutex_lock(&s->mu);
			if (rc == COORD_OK)
				break;
			LOG_WARN("cannot open a new session yet: %s", err);
			if (!s->stopping)
				wait_until(s, now_ms() + 1000);
		}
		if (!nsc)
			break;
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			coord_client_close(nsc->c);
			free(nsc);
			pthread_mutex_lock(&s->mu);
			break;
		}
		s->cur = nsc;
		s->recovering = 0;
		if (old)
			atomic_store(&old->retired, 1);
		pthread_cond_broadcast(&s->cv);
		while (old && old->refs)
			pthread_cond_wait(&s->cv, &s->mu);
		pthread_mutex_unlock(&s->mu);
		LOG_INFO("new session 0x%016" PRIx64 " in place of the expired one",
			 coord_client_session_id(nsc->c));
		/* Whatever changed between the expiry and the new watch was not announced. */
		cache_flush(fs, NULL);
		if (old) {
			coord_client_close(old->c);
			free(old);
		}
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int session_start(struct coordfs *fs, char *err, size_t errlen)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return COORD_ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	fs->sess = s;
	char why[800];
	int rc = open_client(fs, &s->cur, fs->opts.session_timeout_ms, why, sizeof(why));
	if (rc) {
		if (rc == COORD_ECONNLOSS)
			snprintf(err, errlen, "cannot reach any server in %s within %g s (%s)", fs->opts.hosts,
				 fs->opts.session_timeout_ms / 1000.0, why);
		else
			snprintf(err, errlen, "cannot open a session with %s: %s", fs->opts.hosts, why);
		return rc;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int prc = pthread_create(&s->th, NULL, recover_main, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (prc) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(prc));
		return COORD_EIO;
	}
	s->th_started = 1;
	LOG_INFO("session 0x%016" PRIx64 " with %s (timeout %d ms)", coord_client_session_id(s->cur->c),
		 fs->opts.hosts, coord_client_timeout_ms(s->cur->c));
	return COORD_OK;
}

void session_stop(struct coordfs *fs)
{
	struct session *s = fs->sess;
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->th_started)
		pthread_join(s->th, NULL);
	if (s->cur) {
		atomic_store(&s->cur->retired, 1);
		coord_client_close(s->cur->c);
		free(s->cur);
		s->cur = NULL;
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	fs->sess = NULL;
}

/* ---- taking the current client ---- */

/* The current client, waiting (up to the session timeout) while a new session is being opened. */
static struct sclient *sget(struct coordfs *fs)
{
	loop_blocking(); /* every call to the server starts here: the reader must not wait on one */
	struct session *s = fs->sess;
	pthread_mutex_lock(&s->mu);
	int64_t deadline = now_ms() + fs->opts.session_timeout_ms;
	while (!s->stopping && (s->recovering ||
				(s->cur && coord_client_state(s->cur->c) == COORD_STATE_EXPIRED))) {
		if (now_ms() >= deadline)
			break;
		wait_until(s, deadline);
	}
	struct sclient *sc = s->cur;
	if (sc)
		sc->refs++;
	pthread_mutex_unlock(&s->mu);
	return sc;
}

static void sput(struct coordfs *fs, struct sclient *sc)
{
	struct session *s = fs->sess;
	pthread_mutex_lock(&s->mu);
	if (--sc->refs == 0 && atomic_load(&sc->retired))
		pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

size_t session_describe(struct coordfs *fs, char *buf, size_t size)
{
	struct sclient *sc = sget(fs);
	if (!sc)
		return (size_t)snprintf(buf, size, "state closed\n");
	struct coord_client *c = sc->c;
	static const char *names[] = {"connecting", "connected", "expired", "closed"};
	int st = coord_client_state(c);
	char server[300], principal[COORD_PRINCIPAL_MAX + 1];
	coord_client_server(c, server, sizeof(server));
	coord_client_principal(c, principal, sizeof(principal));
	int n = snprintf(buf, size,
			 "session 0x%016" PRIx64 "\n"
			 "timeout_ms %d\n"
			 "state %s\n"
			 "server %s\n"
			 "last_zxid 0x%" PRIx64 "\n"
			 "principal %s\n",
			 coord_client_session_id(c), coord_client_timeout_ms(c),
			 st >= 0 && st < 4 ? names[st] : "unknown", server[0] ? server : "-",
			 coord_client_last_zxid(c), principal[0] ? principal : "-");
	sput(fs, sc);
	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

void session_server(struct coordfs *fs, char *buf, size_t size)
{
	buf[0] = 0;
	struct sclient *sc = sget(fs);
	if (!sc)
		return;
	coord_client_server(sc->c, buf, size);
	sput(fs, sc);
}

uint32_t session_max_data(struct coordfs *fs)
{
	struct sclient *sc = sget(fs);
	if (!sc)
		return COORD_MAX_DATA;
	uint32_t m = coord_client_max_data(sc->c);
	sput(fs, sc);
	return m;
}

/* ---- calls ---- */

/*
 * Every call is a coord_submit and a wait of our own, rather than the library's blocking
 * conveniences: while no server can be reached a request stays pending (it is resent, applied
 * once, when one answers), and the library would wait for ever. Our wait gives up when the mount
 * is going away, so an unmount or SIGTERM never hangs on an unreachable ensemble; the abandoned
 * request's reply, if it ever comes, is dropped.
 */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, refs;
	struct coord_result res;
};

static _Thread_local char last_error[256];

const char *remote_last_error(void) { return last_error; }

static void waiter_put(struct waiter *w)
{
	/* w->mu held */
	int last = --w->refs == 0;
	pthread_mutex_unlock(&w->mu);
	if (last) {
		coord_result_free(&w->res);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
	}
}

static void waiter_done(void *arg, struct coord_result *r)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->res = *r; /* the reply's slices point into r->frame, which moves with it */
	free(r);
	w->done = 1;
	pthread_cond_signal(&w->cv);
	waiter_put(w);
}

static int going_away(struct coordfs *fs)
{
	return (fs->se && fuse_session_exited(fs->se)) || fs->sess->stopping;
}

/* Send req and wait for its reply into *res (free it with coord_result_free). Returns res->err. */
static int rcall(struct coordfs *fs, struct coord_client *c, const struct coord_req *req, struct coord_result *res)
{
	memset(res, 0, sizeof(*res));
	res->rep.fail_index = -1;
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		res->err = COORD_ENOMEM;
		snprintf(last_error, sizeof(last_error), "out of memory");
		return res->err;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->refs = 2;
	int rc = coord_submit(c, req, waiter_done, w);
	if (rc) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		res->err = rc;
		snprintf(last_error, sizeof(last_error), "%s", coord_strerror(rc));
		return rc;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		if (!w->done && going_away(fs)) {
			waiter_put(w);
			res->err = COORD_ECLOSING;
			snprintf(last_error, sizeof(last_error), "the mount is going away");
			return res->err;
		}
	}
	*res = w->res;
	memset(&w->res, 0, sizeof(w->res));
	waiter_put(w);
	snprintf(last_error, sizeof(last_error), "%s", res->msg);
	return res->err;
}

static void rq(struct coord_req *r, uint8_t op, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->version = -1;
	if (path)
		r->path = slice_str(path);
}

static void take_snap(struct coordfs *fs, struct sclient *sc, struct snap *s)
{
	if (!s)
		return;
	s->epoch = fs_epoch(fs);
	s->zxid = coord_client_last_zxid(sc->c);
}

/* One call on the current client; reads (retry) go again on the new session when the old one
 * expired under them. */
static int call(struct coordfs *fs, const struct coord_req *req, struct coord_result *res, struct snap *s, int retry)
{
	int rc = COORD_ECONNLOSS;
	for (int attempt = 0; attempt < (retry ? 2 : 1); attempt++) {
		struct sclient *sc = sget(fs);
		if (!sc) {
			memset(res, 0, sizeof(*res));
			res->err = rc = COORD_ECONNLOSS;
			break;
		}
		take_snap(fs, sc, s);
		rc = rcall(fs, sc->c, req, res);
		sput(fs, sc);
		if (rc != COORD_ESESSIONEXPIRED)
			break;
		coord_result_free(res);
	}
	return rc;
}

int remote_exists(struct coordfs *fs, const char *path, struct coord_stat *st, struct snap *s)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_EXISTS, path);
	int rc = call(fs, &r, &res, s, 1);
	if (rc == COORD_OK && st)
		*st = res.rep.stat;
	coord_result_free(&res);
	return rc;
}

int remote_get(struct coordfs *fs, const char *path, void **data, size_t *len, struct coord_stat *st,
	       struct snap *s)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_GET, path);
	int rc = call(fs, &r, &res, s, 1);
	if (rc == COORD_OK) {
		if (st)
			*st = res.rep.stat;
		if (len)
			*len = res.rep.data.len;
		if (data && !(*data = slice_dup(res.rep.data)))
			rc = COORD_ENOMEM;
	}
	coord_result_free(&res);
	return rc;
}

/*
 * Every child name, page by page. Pages are separate reads: when the child list changes between
 * them (the directory's cversion moves), start over once, as coord_list does. The snapshot is
 * the first page's.
 */
int remote_list(struct coordfs *fs, const char *path, char ***names, size_t *count, struct coord_stat *st,
		struct snap *s)
{
	for (int pass = 0;; pass++) {
		char **v = NULL;
		size_t n = 0, cap = 0;
		char *after = NULL;
		struct coord_stat first;
		int rc = COORD_OK, moved = 0;
		for (int page = 0;; page++) {
			struct coord_req r;
			struct coord_result res;
			rq(&r, COORD_OP_LIST, path);
			r.after = slice_str(after ? after : "");
			rc = call(fs, &r, &res, page == 0 ? s : NULL, 1);
			if (rc) {
				coord_result_free(&res);
				break;
			}
			if (page == 0)
				first = res.rep.stat;
			else if (res.rep.stat.cversion != first.cversion)
				moved = 1;
			const uint8_t *p = res.rep.names.p, *end = p + res.rep.names.len;
			uint32_t got = 0;
			while (p < end && got < res.rep.count) {
				const uint8_t *z = memchr(p, 0, (size_t)(end - p));
				size_t nl = z ? (size_t)(z - p) : (size_t)(end - p);
				if (n == cap) {
					size_t nc = cap ? cap * 2 : 64;
					char **nv = realloc(v, nc * sizeof(*nv));
					if (!nv) {
						rc = COORD_ENOMEM;
						break;
					}
					v = nv;
					cap = nc;
				}
				if (!(v[n] = malloc(nl + 1))) {
					rc = COORD_ENOMEM;
					break;
				}
				memcpy(v[n], p, nl);
				v[n++][nl] = 0;
				p += nl + 1;
				got++;
			}
			int more = res.rep.more && got > 0;
			if (res.rep.more && got == 0 && !rc) {
				rc = COORD_EPROTO;
				snprintf(last_error, sizeof(last_error), "list of %s: more names promised, none sent", path);
			}
			coord_result_free(&res);
			if (rc || !more || moved)
				break;
			free(after);
			after = strdup(v[n - 1]);
			if (!after) {
				rc = COORD_ENOMEM;
				break;
			}
		}
		free(after);
		if (rc || (moved && pass == 0)) {
			coord_names_free(v, n);
			if (rc)
				return rc;
			continue;
		}
		if (!v && !(v = calloc(1, sizeof(*v))))
			return COORD_ENOMEM;
		*names = v;
		*count = n;
		if (st)
			*st = first;
		return COORD_OK;
	}
}

struct batch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;                 /* 1 for the waiter + 1 per request in flight */
	size_t inflight;
	struct coord_stat *sts;   /* NULL once the waiter gave up */
	int *errs;
};

struct batch_slot {
	struct batch *b;
	size_t i;
};

static void batch_put(struct batch *b)
{
	/* b->mu held */
	int last = --b->refs == 0;
	pthread_mutex_unlock(&b->mu);
	if (last) {
		pthread_mutex_destroy(&b->mu);
		pthread_cond_destroy(&b->cv);
		free(b);
	}
}

static void batch_done(void *arg, struct coord_result *r)
{
	struct batch_slot *slot = arg;
	struct batch *b = slot->b;
	pthread_mutex_lock(&b->mu);
	if (b->sts) {
		b->errs[slot->i] = r->err;
		if (r->err == COORD_OK)
			b->sts[slot->i] = r->rep.stat;
	}
	b->inflight--;
	pthread_cond_signal(&b->cv);
	batch_put(b);
	coord_result_free(r);
	free(r);
	free(slot);
}

#define BATCH_WINDOW 256

int remote_exists_many(struct coordfs *fs, char **paths, size_t n, struct coord_stat *sts, int *errs,
		       struct snap *s)
{
	struct sclient *sc = sget(fs);
	if (!sc)
		return COORD_ECONNLOSS;
	take_snap(fs, sc, s);
	struct batch *b = calloc(1, sizeof(*b));
	if (!b) {
		sput(fs, sc);
		return COORD_ENOMEM;
	}
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	b->refs = 1;
	b->sts = sts;
	b->errs = errs;
	int rc = COORD_OK;
	pthread_mutex_lock(&b->mu);
	for (size_t i = 0; i < n && rc == COORD_OK;) {
		if (b->inflight >= BATCH_WINDOW) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&b->cv, &b->mu, &ts);
			if (going_away(fs))
				rc = COORD_ECLOSING;
			continue;
		}
		struct batch_slot *slot = malloc(sizeof(*slot));
		if (!slot) {
			rc = COORD_ENOMEM;
			break;
		}
		slot->b = b;
		slot->i = i;
		struct coord_req r;
		rq(&r, COORD_OP_EXISTS, paths[i]);
		errs[i] = COORD_ECONNLOSS;
		b->refs++;
		b->inflight++;
		pthread_mutex_unlock(&b->mu);
		int src = coord_submit(sc->c, &r, batch_done, slot);
		pthread_mutex_lock(&b->mu);
		if (src) {
			b->refs--;
			b->inflight--;
			free(slot);
			rc = src;
			break;
		}
		i++;
	}
	while (b->inflight && rc != COORD_ECLOSING) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&b->cv, &b->mu, &ts);
		if (b->inflight && going_away(fs))
			rc = COORD_ECLOSING;
	}
	b->sts = NULL; /* late answers (after giving up) are dropped */
	batch_put(b);
	sput(fs, sc);
	return rc;
}

int remote_sync(struct coordfs *fs, const char *path)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_SYNC, path);
	int rc = call(fs, &r, &res, NULL, 1);
	coord_result_free(&res);
	return rc;
}

int remote_admin(struct coordfs *fs, const char *word, char **text)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_ADMIN, NULL);
	r.word = slice_str(word);
	int rc = call(fs, &r, &res, NULL, 1);
	if (rc == COORD_OK) {
		*text = slice_dup(res.rep.data);
		if (!*text)
			rc = COORD_ENOMEM;
	}
	coord_result_free(&res);
	return rc;
}

int remote_history(struct coordfs *fs, const char *path, struct coord_hist **hist, uint32_t *n,
		   struct coord_stat *st)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_HISTORY, path);
	r.version = -1;
	int rc = call(fs, &r, &res, NULL, 1);
	if (rc == COORD_OK) {
		if (st)
			*st = res.rep.stat;
		struct coord_hist *h = malloc((res.rep.nhist ? res.rep.nhist : 1) * sizeof(*h));
		if (!h) {
			rc = COORD_ENOMEM;
		} else {
			uint32_t k = 0;
			for (uint32_t i = 0; i < res.rep.nhist; i++)
				if (coord_hist_at(&res.rep, i, &h[k]) == COORD_OK)
					k++;
			*hist = h;
			*n = k;
		}
	}
	coord_result_free(&res);
	return rc;
}

int remote_get_version(struct coordfs *fs, const char *path, int32_t version, void **data, size_t *len,
		       struct coord_hist *h)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_HISTORY, path);
	r.version = version;
	int rc = call(fs, &r, &res, NULL, 1);
	if (rc == COORD_OK) {
		if (h && coord_hist_at(&res.rep, 0, h))
			memset(h, 0, sizeof(*h));
		*len = res.rep.data.len;
		if (!(*data = slice_dup(res.rep.data)))
			rc = COORD_ENOMEM;
	}
	coord_result_free(&res);
	return rc;
}

int remote_create(struct coordfs *fs, const char *path, const void *data, size_t len, uint32_t flags,
		  uint8_t policy, char **created, struct coord_stat *st)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_CREATE, path);
	r.data = slice_of(data, len);
	r.flags = flags;
	r.policy = policy;
	int rc = call(fs, &r, &res, NULL, 0);
	if (rc == COORD_OK) {
		if (st)
			*st = res.rep.stat;
		if (created && !(*created = slice_dup(res.rep.path)))
			rc = COORD_ENOMEM;
	}
	coord_result_free(&res);
	return rc;
}

static int write_op(struct coordfs *fs, uint8_t op, const char *path, const void *data, size_t len,
		    int32_t version, struct coord_stat *st)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, op, path);
	r.data = slice_of(data, len);
	r.version = version;
	int rc = call(fs, &r, &res, NULL, 0);
	if (rc == COORD_OK && st)
		*st = res.rep.stat;
	coord_result_free(&res);
	return rc;
}

int remote_set(struct coordfs *fs, const char *path, const void *data, size_t len, int32_t version,
	       struct coord_stat *st)
{
	return write_op(fs, COORD_OP_SET, path, data, len, version, st);
}

int remote_append(struct coordfs *fs, const char *path, const void *data, size_t len, struct coord_stat *st)
{
	return write_op(fs, COORD_OP_APPEND, path, data, len, -1, st);
}

int remote_delete(struct coordfs *fs, const char *path, int32_t version)
{
	return write_op(fs, COORD_OP_DELETE, path, NULL, 0, version, NULL);
}

int remote_rename(struct coordfs *fs, const char *from, const char *to, uint32_t flags, struct coord_stat *st)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_RENAME, from);
	r.path2 = slice_str(to);
	r.flags = flags;
	int rc = call(fs, &r, &res, NULL, 0);
	if (rc == COORD_OK && st)
		*st = res.rep.stat;
	coord_result_free(&res);
	return rc;
}

int remote_getacl(struct coordfs *fs, const char *path, char **acl, unsigned *perms)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_GETACL, path);
	int rc = call(fs, &r, &res, NULL, 1);
	if (rc == COORD_OK && perms)
		*perms = res.rep.perms;
	if (rc == COORD_OK && acl && !(*acl = slice_dup(res.rep.acl)))
		rc = COORD_ENOMEM;
	coord_result_free(&res);
	return rc;
}

int remote_setacl(struct coordfs *fs, const char *path, const char *acl, size_t len)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_SETACL, path);
	r.acl = slice_of(acl, len);
	r.version = -1; /* setfattr replaces the ACL whatever its aversion (coordctl setacl -v compares) */
	int rc = call(fs, &r, &res, NULL, 0);
	coord_result_free(&res);
	return rc;
}

int remote_setpolicy(struct coordfs *fs, const char *path, uint8_t policy)
{
	struct coord_req r;
	struct coord_result res;
	rq(&r, COORD_OP_SETPOLICY, path);
	r.policy = policy;
	int rc = call(fs, &r, &res, NULL, 0);
	coord_result_free(&res);
	return rc;
}
