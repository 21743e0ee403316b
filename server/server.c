/*
 * server.c: recovery, the client-port loop with group commit, session expiry and snapshots.
 *
 * One thread owns everything here (ZeroMQ's I/O thread only moves bytes), so the state, the
 * watch table and the client table need no locks, and the order in which the loop applies txns
 * and sends frames is the order clients see.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "log.h"
#include "path.h"
#include "snapshot.h"
#include "txn.h"

#define DRAIN_MAX 2048          /* requests taken into one batch at most */
#define EXPIRY_CHECK_MS 50
#define SNAPSHOTS_KEPT 3

enum pending_kind {
	P_TXN,          /* a logged client write: apply, then answer the session */
	P_NEW_SESSION,  /* a logged session creation: apply, then answer the connecting peer */
	P_EXPIRE,       /* a logged expiry */
	P_READ,         /* a read queued behind its session's writes */
	P_FRAME,        /* a ready reply queued behind its session's writes */
};

struct pending {
	uint8_t kind;
	uint8_t route_len;
	uint8_t route[CLIENT_ROUTE_MAX];
	uint64_t session;
	uint64_t zxid;
	uint64_t xid;
	uint8_t *data;
	size_t len;
	int64_t recv_ns;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- sending ---- */

static void send_to(struct server *s, const void *route, size_t rlen, const void *frame, size_t len)
{
	if (!rlen)
		return; /* the session has no connection now: replies wait for the resend */
	if (zmq_send(s->sock, route, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(s->sock, frame, len, ZMQ_DONTWAIT) < 0) {
		LOG_DEBUG("send to a client failed: %s", zmq_strerror(errno));
		return;
	}
	s->stats.sent++;
}

static void send_session(struct server *s, uint64_t session, const void *frame, size_t len)
{
	struct client *c = clients_get(&s->cl, session);
	if (c)
		send_to(s, c->route, c->route_len, frame, len);
}

static void note_latency(struct server *s, int64_t recv_ns)
{
	if (!recv_ns)
		return;
	uint64_t us = (uint64_t)((mono_ns() - recv_ns) / 1000);
	if (!s->stats.lat_n || us < s->stats.lat_min_us)
		s->stats.lat_min_us = us;
	if (us > s->stats.lat_max_us)
		s->stats.lat_max_us = us;
	s->stats.lat_n++;
	s->stats.lat_sum_us += us;
}

static void send_error(struct server *s, const void *route, size_t rlen, const struct coord_req *req, int err,
		       const char *msg)
{
	struct buf b;
	buf_init(&b);
	state_error_frame(&b, req, s->st.last_zxid, err, msg);
	send_to(s, route, rlen, b.p, b.len);
	buf_free(&b);
}

/* ---- watch events ---- */

struct deliver {
	struct server *s;
	const uint8_t *frame;
	size_t len;
	uint64_t zxid;
	int64_t now;
};

static void deliver_one(void *arg, uint64_t session)
{
	struct deliver *d = arg;
	struct client *c = clients_get(&d->s->cl, session);
	if (!c)
		return;
	client_ring_push(c, d->zxid, d->frame, d->len, d->now);
	send_to(d->s, c->route, c->route_len, d->frame, d->len);
}

static void event_frame(struct buf *b, uint8_t type, const char *path, size_t len, uint64_t zxid)
{
	struct coord_reply ev = {0};
	ev.kind = COORD_MSG_EVENT;
	ev.zxid = zxid;
	ev.ev_type = type;
	ev.ev_path = slice_of(path, len);
	ev.fail_index = -1;
	coord_reply_encode(b, &ev);
}

static void fire_events(struct server *s, const struct apply_out *out, uint64_t zxid)
{
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < out->nev; i++) {
		const struct state_event *e = &out->ev[i];
		size_t len = strlen(e->path);
		buf_reset(&b);
		event_frame(&b, e->type, e->path, len, zxid);
		struct deliver d = {s, b.p, b.len, zxid, mono_ns()};
		watch_trigger(s->wm, e->type, e->path, len, deliver_one, &d);
	}
	buf_free(&b);
}

/* Send one event to one session (SETWATCHES, replay markers). */
static void event_to(struct server *s, struct client *c, uint8_t type, const char *path, size_t len)
{
	struct buf b;
	buf_init(&b);
	event_frame(&b, type, path, len, s->st.last_zxid);
	send_to(s, c->route, c->route_len, b.p, b.len);
	buf_free(&b);
}

/* ---- the batch ---- */

static struct pending *batch_add(struct server *s, uint8_t kind, const void *route, size_t rlen, uint64_t session)
{
	if (s->nbatch == s->cbatch) {
		size_t c = s->cbatch ? s->cbatch * 2 : 256;
		struct pending *p = realloc(s->batch, c * sizeof(*p));
		if (!p)
			return NULL;
		s->batch = p;
		s->cbatch = c;
	}
	struct pending *p = &s->batch[s->nbatch++];
	memset(p, 0, offsetof(struct pending, route));
	p->kind = kind;
	p->route_len = (uint8_t)(rlen <= CLIENT_ROUTE_MAX ? rlen : 0);
	if (p->route_len)
		memcpy(p->route, route, p->route_len);
	p->session = session;
	p->zxid = p->xid = 0;
	p->data = NULL;
	p->len = 0;
	p->recv_ns = 0;
	struct client *c = session ? clients_get(&s->cl, session) : NULL;
	if (c)
		c->pending++;
	return p;
}

/* Log a txn and queue it; COORD_OK or COORD_ENOMEM. */
static int batch_log(struct server *s, struct pending *p, struct buf *txn)
{
	p->zxid = ++s->next_zxid;
	int err = txnlog_append(s->log, p->zxid, txn->p, txn->len);
	if (err) {
		s->next_zxid--;
		return err;
	}
	p->data = buf_take(txn, &p->len);
	s->batch_logged = 1;
	s->stats.txns_logged++;
	return COORD_OK;
}

static int queue_frame(struct server *s, uint64_t session, struct buf *frame)
{
	struct pending *p = batch_add(s, P_FRAME, NULL, 0, session);
	if (!p)
		return COORD_ENOMEM;
	p->data = buf_take(frame, &p->len);
	return COORD_OK;
}

/* ---- reads and watch requests ---- */

static int changed_since(void *arg, const struct znode *n)
{
	uint64_t rel = *(const uint64_t *)arg;
	return (uint64_t)n->mzxid > rel || (uint64_t)n->pzxid > rel;
}

static void add_watches_from(struct server *s, struct client *c, struct slice list, unsigned kind, uint64_t rel)
{
	const char *p = (const char *)list.p, *end = p + list.len;
	while (p < end) {
		const char *nul = memchr(p, 0, (size_t)(end - p));
		size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);
		if (len && !coord_path_check(p, len, 0, NULL, 0)) {
			const struct znode *n = tree_lookup(&s->st.tree, p, len);
			/* ZooKeeper's setWatches: tell what changed while the client was away, else re-arm. */
			if (kind == WATCH_DATA) {
				if (!n)
					watch_add(s->wm, c->session, p, len, kind);
				else if ((uint64_t)n->mzxid > rel)
					event_to(s, c, COORD_EV_CHANGED, p, len);
				else
					watch_add(s->wm, c->session, p, len, kind);
			} else if (kind == WATCH_CHILD) {
				if (!n)
					event_to(s, c, COORD_EV_DELETED, p, len);
				else if ((uint64_t)n->pzxid > rel)
					event_to(s, c, COORD_EV_CHILDREN, p, len);
				else
					watch_add(s->wm, c->session, p, len, kind);
			} else {
				/* Persistent watches cannot be replayed event by event: if anything they
				 * cover changed since rel, say so with one overflow for the path. */
				watch_add(s->wm, c->session, p, len, kind);
				int changed = !n || (uint64_t)n->mzxid > rel || (uint64_t)n->pzxid > rel;
				if (!changed && kind == WATCH_RECURSIVE)
					changed = tree_walk(n, changed_since, &rel) != 0;
				if (changed)
					event_to(s, c, COORD_EV_OVERFLOW, p, len);
			}
		}
		p += len + 1;
	}
}

static void serve_read(struct server *s, uint64_t session, const struct coord_req *req, int64_t recv_ns)
{
	struct client *c = clients_get(&s->cl, session);
	if (!c)
		return;
	struct buf b;
	buf_init(&b);
	int err = COORD_OK;
	switch (req->op) {
	case COORD_OP_GET:
	case COORD_OP_EXISTS:
	case COORD_OP_LIST:
	case COORD_OP_SYNC:
		err = state_read(&s->st, req, &b);
		if (req->watch && req->op != COORD_OP_SYNC &&
		    (err == COORD_OK || (err == COORD_ENONODE && req->op == COORD_OP_EXISTS)))
			watch_add(s->wm, session, (const char *)req->path.p, req->path.len,
				  req->op == COORD_OP_LIST ? WATCH_CHILD : WATCH_DATA);
		break;
	case COORD_OP_ADDWATCH:
	case COORD_OP_REMOVEWATCH: {
		char why[300];
		unsigned kind = req->watch == COORD_WATCH_PERSISTENT_RECURSIVE ? WATCH_RECURSIVE
				: req->watch == COORD_WATCH_PERSISTENT		   ? WATCH_PERSIST
				: req->watch == COORD_WATCH_ONESHOT		   ? (WATCH_DATA | WATCH_CHILD)
				: req->op == COORD_OP_REMOVEWATCH		   ? ~0u
										   : 0;
		err = coord_path_check((const char *)req->path.p, req->path.len, 0, why, sizeof(why));
		if (!err && !kind) {
			err = COORD_EBADARG;
			snprintf(why, sizeof(why), "addwatch: mode must be persistent or persistent-recursive");
		}
		if (!err && req->op == COORD_OP_ADDWATCH)
			err = watch_add(s->wm, session, (const char *)req->path.p, req->path.len, kind);
		else if (!err) {
			err = watch_remove(s->wm, session, (const char *)req->path.p, req->path.len, kind);
			if (err)
				snprintf(why, sizeof(why), "%.*s: no such watch", (int)req->path.len, (const char *)req->path.p);
		}
		state_error_frame(&b, req, s->st.last_zxid, err, err ? why : NULL);
		break;
	}
	case COORD_OP_SETWATCHES:
		add_watches_from(s, c, req->data_watches, WATCH_DATA, req->last_zxid);
		add_watches_from(s, c, req->child_watches, WATCH_CHILD, req->last_zxid);
		add_watches_from(s, c, req->persistent, WATCH_PERSIST, req->last_zxid);
		add_watches_from(s, c, req->recursive, WATCH_RECURSIVE, req->last_zxid);
		state_error_frame(&b, req, s->st.last_zxid, COORD_OK, NULL);
		break;
	case COORD_OP_PING:
		state_error_frame(&b, req, s->st.last_zxid, COORD_OK, NULL);
		break;
	default:
		state_error_frame(&b, req, s->st.last_zxid, COORD_EBADARG, "not a read operation");
	}
	send_to(s, c->route, c->route_len, b.p, b.len);
	note_latency(s, recv_ns);
	buf_free(&b);
}

/* ---- connecting ---- */

static void connect_reply(struct server *s, const void *route, size_t rlen, const struct coord_req *req,
			  const struct session *se, int watches_kept)
{
	struct coord_reply r = {0};
	r.kind = COORD_MSG_REPLY;
	r.op = COORD_OP_CONNECT;
	r.xid = req->xid;
	r.zxid = s->st.last_zxid;
	r.fail_index = -1;
	r.session_id = se->id;
	memcpy(r.passwd, se->passwd, COORD_PASSWD_LEN);
	r.timeout_ms = se->timeout_ms;
	r.server_id = (uint32_t)s->cfg.my_id;
	r.max_data = s->cfg.max_data_bytes;
	r.watches_kept = (uint8_t)watches_kept;
	struct buf b;
	buf_init(&b);
	coord_reply_encode(&b, &r);
	send_to(s, route, rlen, b.p, b.len);
	buf_free(&b);
}

static void handle_connect(struct server *s, const void *route, size_t rlen, const struct coord_req *req,
			   int64_t now)
{
	char msg[200];
	if (!req->session_id) {
		struct buf txn;
		buf_init(&txn);
		uint64_t id;
		uint32_t timeout;
		int err = prep_create_session(&s->lim, req->timeout_ms, &txn, &id, &timeout);
		struct pending *p = err ? NULL : batch_add(s, P_NEW_SESSION, route, rlen, 0);
		if (p) {
			p->xid = req->xid;
			p->session = id;
			p->recv_ns = now;
			err = batch_log(s, p, &txn);
			if (err)
				s->nbatch--;
		}
		if (err || !p)
			send_error(s, route, rlen, req, err ? err : COORD_ENOMEM, "cannot open a session now");
		buf_free(&txn);
		return;
	}
	const struct session *se = sessions_find(&s->st.sessions, req->session_id);
	struct client *c = clients_get(&s->cl, req->session_id);
	if (!se || !c || c->expiring || memcmp(se->passwd, req->passwd, COORD_PASSWD_LEN) != 0) {
		snprintf(msg, sizeof(msg), "session 0x%016" PRIx64 " has expired or is unknown; open a new one",
			 req->session_id);
		send_error(s, route, rlen, req, COORD_ESESSIONEXPIRED, msg);
		return;
	}
	if (req->last_zxid > s->st.last_zxid) {
		snprintf(msg, sizeof(msg), "this member is behind the client (zxid 0x%" PRIx64 " < 0x%" PRIx64 ")",
			 s->st.last_zxid, req->last_zxid);
		send_error(s, route, rlen, req, COORD_ENOTREADY, msg);
		return;
	}
	clients_attach(&s->cl, c, route, rlen);
	c->last_heard_ns = now;
	connect_reply(s, route, rlen, req, se, !c->watches_lost);
	c->watches_lost = 0;
	/* Events the old connection may have lost: everything after what the client saw. */
	if (c->ring_dropped_zxid > req->last_zxid)
		event_to(s, c, COORD_EV_OVERFLOW, "/", 1);
	for (uint32_t i = 0; i < c->ring_n; i++) {
		const struct client_event *e = &c->ring[(c->ring_head + i) % CLIENT_RING_EVENTS];
		if (e->zxid > req->last_zxid)
			send_to(s, c->route, c->route_len, e->frame, e->len);
	}
}

/* ---- one incoming message ---- */

static void handle_message(struct server *s, const uint8_t *route, size_t rlen, const uint8_t *frame, size_t len)
{
	int64_t now = mono_ns();
	s->stats.received++;
	struct coord_req req;
	char why[300];
	if (coord_req_decode(frame, len, &req, why, sizeof(why))) {
		struct coord_req hdr = {0};
		struct rd r;
		rd_init(&r, frame, len);
		rd_u8(&r);
		hdr.op = rd_u8(&r);
		rd_u16(&r);
		hdr.xid = rd_u64(&r);
		LOG_DEBUG("malformed request: %s", why);
		send_error(s, route, rlen, &hdr, COORD_EPROTO, why);
		return;
	}
	if (req.op == COORD_OP_ADMIN) {
		struct buf text, b;
		buf_init(&text);
		buf_init(&b);
		char word[65];
		size_t wl = req.word.len < 64 ? req.word.len : 64;
		memcpy(word, req.word.p, wl);
		word[wl] = 0;
		int err = admin_answer(s, word, &text);
		struct coord_reply r;
		memset(&r, 0, sizeof(r));
		r.kind = COORD_MSG_REPLY;
		r.op = req.op;
		r.err = err;
		r.xid = req.xid;
		r.zxid = s->st.last_zxid;
		r.fail_index = -1;
		if (err)
			r.msg = slice_of(text.p, text.len);
		else
			r.data = slice_of(text.p, text.len);
		coord_reply_encode(&b, &r);
		send_to(s, route, rlen, b.p, b.len);
		buf_free(&text);
		buf_free(&b);
		coord_req_clear(&req);
		return;
	}
	if (req.op == COORD_OP_CONNECT) {
		handle_connect(s, route, rlen, &req, now);
		coord_req_clear(&req);
		return;
	}
	struct client *c = clients_by_route(&s->cl, route, rlen);
	if (!c) {
		/* This peer has no session here (never connected, or this member restarted): the
		 * client library answers ENOTREADY by connecting again with its session id. */
		send_error(s, route, rlen, &req, COORD_ENOTREADY, "no session on this connection: send CONNECT first");
		coord_req_clear(&req);
		return;
	}
	c->last_heard_ns = now;
	uint64_t session = c->session;
	if (coord_op_is_write(req.op)) {
		struct buf txn;
		buf_init(&txn);
		int err = prep_request(&s->lim, session, &req, frame, len, &txn, why, sizeof(why));
		struct pending *p = NULL;
		if (!err) {
			p = batch_add(s, P_TXN, route, rlen, session);
			if (!p || (err = batch_log(s, p, &txn))) {
				if (p) {
					s->nbatch--;
					c->pending--;
				}
				err = COORD_ENOMEM;
				snprintf(why, sizeof(why), "server out of memory");
			} else {
				p->xid = req.xid;
				p->recv_ns = now;
			}
		}
		buf_free(&txn);
		if (err) {
			struct buf b;
			buf_init(&b);
			state_error_frame(&b, &req, s->st.last_zxid, err, why);
			if (c->pending)
				queue_frame(s, session, &b);
			else
				send_to(s, route, rlen, b.p, b.len);
			buf_free(&b);
		}
	} else if (c->pending) {
		struct pending *p = batch_add(s, P_READ, route, rlen, session);
		if (p) {
			p->data = malloc(len ? len : 1);
			if (p->data) {
				memcpy(p->data, frame, len);
				p->len = len;
				p->recv_ns = now;
			} else {
				s->nbatch--;
				c->pending--;
				send_error(s, route, rlen, &req, COORD_ENOMEM, "server out of memory");
			}
		}
	} else {
		serve_read(s, session, &req, now);
	}
	coord_req_clear(&req);
}

/* ---- applying a batch ---- */

static void apply_txn(struct server *s, struct pending *p, struct apply_out *out)
{
	struct txn t;
	if (txn_decode(p->data, p->len, &t)) {
		LOG_ERROR("txn 0x%" PRIx64 " does not decode; this is a bug", p->zxid);
		abort();
	}
	state_apply(&s->st, p->zxid, &t, out);
	fire_events(s, out, p->zxid);
}

static void end_session(struct server *s, uint64_t session)
{
	watch_remove_session(s->wm, session);
	clients_remove(&s->cl, session);
}

static void flush_batch(struct server *s)
{
	int failed = COORD_OK;
	if (s->batch_logged) {
		failed = txnlog_sync(s->log);
		s->stats.fsyncs++;
		if (failed) {
			if (!s->disk_error)
				LOG_ERROR("cannot write the transaction log in %s (%s): refusing writes until it can; "
					  "nothing acknowledged is lost", s->cfg.data_log_dir, coord_strerror(failed));
			s->disk_error = 1;
			txnlog_discard(s->log);
			s->next_zxid = s->durable_zxid;
		} else {
			if (s->disk_error)
				LOG_INFO("the transaction log is writable again");
			s->disk_error = 0;
			s->durable_zxid = s->next_zxid;
		}
	}
	for (size_t i = 0; i < s->nbatch; i++) {
		struct pending *p = &s->batch[i];
		struct client *c = p->session ? clients_get(&s->cl, p->session) : NULL;
		if (c && c->pending)
			c->pending--;
		struct apply_out out = {0};
		switch (p->kind) {
		case P_TXN:
			if (failed) {
				struct txn t;
				struct coord_req req = {0};
				struct rd r;
				if (!txn_decode(p->data, p->len, &t)) {
					rd_init(&r, t.req.p, t.req.len);
					rd_u8(&r);
					req.op = rd_u8(&r);
					rd_u16(&r);
					req.xid = rd_u64(&r);
				}
				struct buf b;
				buf_init(&b);
				state_error_frame(&b, &req, s->st.last_zxid, failed,
						  failed == COORD_ENOSPC ? "the server's disk is full; the write was not applied"
									 : "the server cannot write its log; the write was not applied");
				send_session(s, p->session, b.p, b.len);
				buf_free(&b);
				break;
			}
			apply_txn(s, p, &out);
			if (out.reply)
				send_session(s, p->session, out.reply, out.reply_len);
			note_latency(s, p->recv_ns);
			if (out.closed_session)
				end_session(s, out.closed_session);
			s->txns_since_snap++;
			break;
		case P_NEW_SESSION: {
			struct coord_req req = {.op = COORD_OP_CONNECT, .xid = p->xid};
			if (failed) {
				send_error(s, p->route, p->route_len, &req, failed, "cannot open a session: the server cannot write its log");
				break;
			}
			apply_txn(s, p, &out);
			const struct session *se = out.created_session ? sessions_find(&s->st.sessions, out.created_session) : NULL;
			struct client *nc = se ? clients_add(&s->cl, se->id, se->timeout_ms, mono_ns()) : NULL;
			if (nc) {
				clients_attach(&s->cl, nc, p->route, p->route_len);
				connect_reply(s, p->route, p->route_len, &req, se, 1);
			} else {
				send_error(s, p->route, p->route_len, &req, COORD_ENOTREADY, "session id collision; try again");
			}
			note_latency(s, p->recv_ns);
			s->txns_since_snap++;
			break;
		}
		case P_EXPIRE:
			if (failed) {
				if (c)
					c->expiring = 0; /* try again at the next check */
				break;
			}
			apply_txn(s, p, &out);
			if (out.closed_session) {
				LOG_INFO("session 0x%016" PRIx64 " expired", out.closed_session);
				end_session(s, out.closed_session);
			}
			s->txns_since_snap++;
			break;
		case P_READ: {
			struct coord_req req;
			if (!coord_req_decode(p->data, p->len, &req, NULL, 0)) {
				serve_read(s, p->session, &req, p->recv_ns);
				coord_req_clear(&req);
			}
			break;
		}
		case P_FRAME:
			send_session(s, p->session, p->data, p->len);
			break;
		}
		apply_out_reset(&out);
		free(p->data);
	}
	s->nbatch = 0;
	s->batch_logged = 0;
}

/* ---- expiry ---- */

struct expiry {
	struct server *s;
	int64_t now;
};

static void check_one(void *arg, struct client *c)
{
	struct expiry *e = arg;
	struct server *s = e->s;
	if (c->expiring || e->now - c->last_heard_ns <= (int64_t)c->timeout_ms * 1000000)
		return;
	struct buf txn;
	buf_init(&txn);
	if (prep_expire_session(c->session, &txn) == COORD_OK) {
		struct pending *p = batch_add(s, P_EXPIRE, NULL, 0, c->session);
		if (p && batch_log(s, p, &txn) == COORD_OK)
			c->expiring = 1;
		else if (p) {
			s->nbatch--;
			c->pending--;
		}
	}
	buf_free(&txn);
}

static void check_expiry(struct server *s)
{
	struct expiry e = {s, mono_ns()};
	clients_each(&s->cl, check_one, &e);
}

/* ---- snapshots ---- */

static int snap_put(void *arg, const void *p, size_t n) { return snap_write_record(arg, p, n); }

static int write_snapshot(struct server *s, uint64_t zxid)
{
	char err[512];
	struct snap_writer *w;
	if (snap_write_begin(s->cfg.data_dir, zxid, &w, err, sizeof(err))) {
		LOG_ERROR("snapshot 0x%" PRIx64 ": %s", zxid, err);
		return 1;
	}
	int rc = state_save(&s->st, snap_put, w);
	if (rc) {
		LOG_ERROR("snapshot 0x%" PRIx64 ": cannot write: %s", zxid, coord_strerror(rc));
		snap_write_abort(w);
		return 1;
	}
	if (snap_write_end(w, err, sizeof(err))) {
		LOG_ERROR("snapshot 0x%" PRIx64 ": %s", zxid, err);
		return 1;
	}
	return 0;
}

static long draw_threshold(long snap_count)
{
	/* ZooKeeper's trick: members of an ensemble should not all snapshot at once. */
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = 0;
	long half = snap_count / 2;
	return half + (half ? (long)(r % (uint32_t)half) : 0) + 1;
}

static void maybe_snapshot(struct server *s)
{
	if (s->snap_pid) {
		int status;
		pid_t r = waitpid(s->snap_pid, &status, WNOHANG);
		if (r == 0)
			return;
		s->snap_pid = 0;
		if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			s->stats.snapshots++;
			LOG_INFO("snapshot 0x%" PRIx64 " written", s->snap_zxid);
			uint64_t oldest = snap_purge(s->cfg.data_dir, SNAPSHOTS_KEPT);
			if (oldest)
				txnlog_purge(s->log, oldest);
		} else {
			LOG_WARN("snapshot 0x%" PRIx64 " failed; the log keeps everything, the next one will try again",
				 s->snap_zxid);
		}
	}
	if (s->txns_since_snap < s->snap_threshold)
		return;
	if (txnlog_roll(s->log))
		return;
	s->snap_zxid = s->st.last_zxid;
	pid_t pid = fork();
	if (pid < 0) {
		LOG_WARN("cannot fork to write a snapshot: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		/* The child sees the state as of the fork (copy-on-write) and touches nothing else. */
		_exit(write_snapshot(s, s->snap_zxid));
	}
	s->snap_pid = pid;
	s->txns_since_snap = 0;
	s->snap_threshold = draw_threshold(s->cfg.snap_count);
}

/* ---- start, run, stop ---- */

static int mkdirs(const char *dir, char *err, size_t errlen)
{
	char p[COORD_DIR_MAX];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		if (mkdir(p, 0750) && errno != EEXIST)
			goto fail;
		*q = '/';
	}
	if (mkdir(p, 0750) && errno != EEXIST)
		goto fail;
	return COORD_OK;
fail:
	snprintf(err, errlen, "cannot create directory %s: %s", p, strerror(errno));
	return COORD_EIO;
}

static int replay_one(void *arg, uint64_t zxid, const uint8_t *payload, size_t len)
{
	struct server *s = arg;
	if (zxid != s->st.last_zxid + 1) {
		LOG_ERROR("the transaction log jumps from zxid 0x%" PRIx64 " to 0x%" PRIx64
			  ": transactions are missing; restore %s from a backup or a healthy member",
			  s->st.last_zxid, zxid, s->cfg.data_log_dir);
		return COORD_EIO;
	}
	struct txn t;
	if (txn_decode(payload, len, &t)) {
		LOG_ERROR("transaction 0x%" PRIx64 " in the log does not decode (written by another version?)", zxid);
		return COORD_EPROTO;
	}
	struct apply_out out = {0};
	state_apply(&s->st, zxid, &t, &out);
	apply_out_reset(&out);
	return 0;
}

static int snap_load(void *arg, const uint8_t *p, size_t n) { return state_load_record(arg, p, n); }

struct restore {
	struct server *s;
	int64_t now;
	int err;
};

static void restore_client(void *arg, struct session *se)
{
	struct restore *r = arg;
	struct client *c = clients_add(&r->s->cl, se->id, se->timeout_ms, r->now);
	if (!c)
		r->err = COORD_ENOMEM;
	else
		c->watches_lost = 1;
}

static int recover(struct server *s, char *err, size_t errlen)
{
	uint64_t snap_zxid = 0, log_last = 0;
	int rc = snap_load_newest(s->cfg.data_dir, &snap_zxid, snap_load, &s->st, err, errlen);
	if (rc)
		return rc;
	if (snap_zxid && (rc = state_load_done(&s->st))) {
		snprintf(err, errlen, "snapshot 0x%" PRIx64 " in %s is inconsistent", snap_zxid, s->cfg.data_dir);
		return rc;
	}
	if ((rc = txnlog_open(s->cfg.data_log_dir, &s->log, &log_last, err, errlen)))
		return rc;
	uint64_t before = s->st.last_zxid;
	if ((rc = txnlog_replay(s->log, s->st.last_zxid, replay_one, s))) {
		snprintf(err, errlen, "cannot replay the transaction log in %s (see the log above)", s->cfg.data_log_dir);
		return rc;
	}
	s->next_zxid = s->durable_zxid = s->st.last_zxid;
	struct restore r = {s, mono_ns(), 0};
	sessions_each(&s->st.sessions, restore_client, &r);
	LOG_INFO("recovered: snapshot 0x%" PRIx64 " + %" PRIu64 " log records, last zxid 0x%" PRIx64
		 ", %" PRIu64 " znodes, %zu sessions",
		 snap_zxid, s->st.last_zxid - before, s->st.last_zxid, s->st.tree.count, s->st.sessions.count);
	return r.err;
}

static int bind_port(struct server *s, char *err, size_t errlen)
{
	s->zctx = zmq_ctx_new();
	s->sock = s->zctx ? zmq_socket(s->zctx, ZMQ_ROUTER) : NULL;
	if (!s->sock) {
		snprintf(err, errlen, "cannot create the ZeroMQ socket: %s", zmq_strerror(errno));
		return COORD_EIO;
	}
	int zero = 0, hwm = 1000000;
	int64_t maxmsg = (int64_t)s->cfg.max_data_bytes + (1 << 20); /* checked before allocation */
	zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	char ep[COORD_HOST_MAX + 32];
	snprintf(ep, sizeof(ep), "tcp://%s:%d", s->cfg.client_addr, s->cfg.client_port);
	if (zmq_bind(s->sock, ep) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s (is another server using clientPort %d?)", ep,
			 zmq_strerror(errno), s->cfg.client_port);
		return COORD_EIO;
	}
	LOG_INFO("serving clients on %s", ep);
	return COORD_OK;
}

int server_open(const struct coord_config *cfg, struct server **out, char *err, size_t errlen)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return COORD_ENOMEM;
	}
	s->cfg = *cfg;
	s->lock_fd = -1;
	s->lim = (struct prep_limits){cfg->max_data_bytes, cfg->min_session_timeout, cfg->max_session_timeout, cfg->my_id};
	s->snap_threshold = draw_threshold(cfg->snap_count);
	s->stats.started_ms = prep_now_ms();
	int rc;
	if ((rc = mkdirs(cfg->data_dir, err, errlen)) || (rc = mkdirs(cfg->data_log_dir, err, errlen)))
		goto fail;
	char lock[COORD_DIR_MAX + 32];
	snprintf(lock, sizeof(lock), "%s/coordd.lock", cfg->data_dir);
	s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "dataDir %s is in use by another coordd (lock %s): %s", cfg->data_dir, lock,
			 strerror(errno));
		rc = COORD_EIO;
		goto fail;
	}
	if (state_init(&s->st, cfg->max_data_bytes) || clients_init(&s->cl) || !(s->wm = watch_new())) {
		snprintf(err, errlen, "out of memory");
		rc = COORD_ENOMEM;
		goto fail;
	}
	if ((rc = recover(s, err, errlen)) || (rc = bind_port(s, err, errlen)))
		goto fail;
	*out = s;
	return COORD_OK;
fail:
	server_close(s);
	return rc;
}

int server_run(struct server *s)
{
	int64_t next_check = 0;
	while (!s->stop) {
		zmq_pollitem_t it = {s->sock, 0, ZMQ_POLLIN, 0};
		int rc = zmq_poll(&it, 1, EXPIRY_CHECK_MS);
		if (rc < 0 && errno != EINTR) {
			LOG_ERROR("zmq_poll: %s", zmq_strerror(errno));
			return COORD_EIO;
		}
		for (int k = 0; k < DRAIN_MAX; k++) {
			zmq_msg_t route, body;
			zmq_msg_init(&route);
			if (zmq_msg_recv(&route, s->sock, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&route);
				break;
			}
			zmq_msg_init(&body);
			int ok = zmq_msg_more(&route) && zmq_msg_recv(&body, s->sock, 0) >= 0;
			int extra = ok && zmq_msg_more(&body);
			while (extra) { /* one request is one frame: drain and refuse the rest */
				zmq_msg_t junk;
				zmq_msg_init(&junk);
				extra = zmq_msg_recv(&junk, s->sock, 0) >= 0 && zmq_msg_more(&junk);
				zmq_msg_close(&junk);
			}
			if (ok)
				handle_message(s, zmq_msg_data(&route), zmq_msg_size(&route),
					       ok && !zmq_msg_more(&body) ? zmq_msg_data(&body) : "", zmq_msg_size(&body));
			zmq_msg_close(&body);
			zmq_msg_close(&route);
		}
		int64_t now = mono_ns();
		if (now >= next_check) {
			check_expiry(s);
			next_check = now + (int64_t)EXPIRY_CHECK_MS * 1000000;
		}
		if (s->nbatch)
			flush_batch(s);
		maybe_snapshot(s);
	}
	if (s->nbatch)
		flush_batch(s);
	return COORD_OK;
}

void server_stop(struct server *s) { s->stop = 1; }

void server_close(struct server *s)
{
	if (!s)
		return;
	if (s->snap_pid) {
		int status;
		waitpid(s->snap_pid, &status, 0);
	}
	for (size_t i = 0; i < s->nbatch; i++)
		free(s->batch[i].data);
	free(s->batch);
	if (s->sock)
		zmq_close(s->sock);
	if (s->zctx)
		zmq_ctx_term(s->zctx);
	if (s->log)
		txnlog_close(s->log);
	watch_free(s->wm);
	if (s->cl.by_id)
		clients_free(&s->cl);
	state_free(&s->st);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s);
}
