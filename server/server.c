/*
 * server.c: recovery, and the loop around the Raft core that serves clients and peers.
 *
 * One thread owns everything here (ZeroMQ's I/O thread only moves the client port's bytes; the
 * peer links are this loop's own sockets), so the state, the watch table and the client table
 * need no locks, and the order in which the loop applies entries and sends frames is the order
 * clients see. A round: take every waiting client and peer message, tick the core when due, then
 * do what the core's ready says (persist with one fdatasync, send, apply, answer), and answer each
 * session's queued requests in order.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "log.h"
#include "path.h"
#include "peerwire.h"
#include "snapshot.h"
#include "txn.h"

#define DRAIN_MAX 4096          /* messages taken in one round at most, per socket */
#define SNAPSHOTS_KEPT 3
#define RAFT_TICK_MS 10

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int is_leader(const struct server *s) { return raft_role(s->raft) == RAFT_LEADER; }

/* ---- sending to clients ---- */

static void send_to(struct server *s, const void *route, size_t rlen, const void *frame, size_t len)
{
	if (!rlen)
		return; /* the session has no connection here now: the client resends */
	if (zmq_send(s->sock, route, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(s->sock, frame, len, ZMQ_DONTWAIT) < 0) {
		LOG_DEBUG("send to a client failed: %s", zmq_strerror(errno));
		return;
	}
	s->sock_sent = 1;
	s->stats.sent++;
}

static void send_client(struct server *s, const struct client *c, const void *frame, size_t len)
{
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

static void error_frame(struct server *s, struct buf *b, const struct coord_req *req, int err, const char *msg)
{
	state_error_frame(b, req, s->st.last_zxid, err, msg);
}

static void send_error(struct server *s, const void *route, size_t rlen, const struct coord_req *req, int err,
		       const char *msg)
{
	struct buf b;
	buf_init(&b);
	error_frame(s, &b, req, err, msg);
	send_to(s, route, rlen, b.p, b.len);
	buf_free(&b);
}

/* The op and xid of a request frame, without decoding its body. */
static void req_header(const void *frame, size_t len, struct coord_req *req)
{
	struct rd r;
	memset(req, 0, sizeof(*req));
	rd_init(&r, frame, len);
	rd_u8(&r);
	req->op = rd_u8(&r);
	rd_u16(&r);
	req->xid = rd_u64(&r);
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
	send_client(d->s, c, d->frame, d->len);
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
	if (!out->nev)
		return;
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

static void event_to(struct server *s, struct client *c, uint8_t type, const char *path, size_t len)
{
	struct buf b;
	buf_init(&b);
	event_frame(&b, type, path, len, s->st.last_zxid);
	send_client(s, c, b.p, b.len);
	buf_free(&b);
}

/* ---- reads and watch requests ---- */

/* maxSessionWatches: 1 (and a rate-limited log line) when the session may add no more. */
static int watch_limit_hit(struct server *s, const struct client *c)
{
	size_t n = watch_count(s->wm, c->session);
	if (n < (size_t)s->cfg.max_session_watches)
		return 0;
	uint64_t sup;
	if (ratelog_ok(&s->log_watches, mono_ns(), &sup))
		LOG_WARN("session 0x%016" PRIx64 " hit maxSessionWatches=%d: further watches refused with ELIMIT "
			 "(%" PRIu64 " more refusals not logged)", c->session, s->cfg.max_session_watches, sup);
	return 1;
}

static int changed_since(void *arg, const struct znode *n)
{
	uint64_t rel = *(const uint64_t *)arg;
	return (uint64_t)n->mzxid > rel || (uint64_t)n->pzxid > rel;
}

/* The nearest existing ancestor of a missing path (the root at worst). */
static const struct znode *nearest(const struct server *s, const char *p, size_t len)
{
	size_t plen = coord_path_parent_len(p, len);
	const struct znode *n = tree_lookup(&s->st.tree, p, plen);
	return n ? n : nearest(s, p, plen);
}

/*
 * SETWATCHES: ZooKeeper's rule: tell what changed while the client was away (since rel), else
 * re-arm quietly. A missing node's nearest ancestor says, by its pzxid, whether anything was
 * created or deleted beneath it since rel. A recursive watch whose subtree changed cannot be
 * replayed event by event: one overflow for its path says so.
 */
static void rearm(struct server *s, struct client *c, struct slice list, unsigned kind, uint64_t rel,
		  const char *principal)
{
	const char *p = (const char *)list.p, *end = p + list.len;
	char why[COORD_MAX_PATH + 400];
	while (p < end) {
		const char *nul = memchr(p, 0, (size_t)(end - p));
		size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);
		if (!len || coord_path_check(p, len, 0, NULL, 0)) {
			p += len + 1;
			continue;
		}
		const struct znode *n = tree_lookup(&s->st.tree, p, len);
		/* As for a new watch: none on a node this session may not read (its ACL may have
		 * changed while the client was away). */
		if (n && state_acl_check(&s->st, n, p, len, principal, COORD_PERM_READ, why, sizeof(why))) {
			p += len + 1;
			continue;
		}
		int gone = !n && (uint64_t)nearest(s, p, len)->pzxid > rel;
		int fire = 0;
		if (kind == WATCH_RECURSIVE) {
			if (gone || (n && tree_walk(n, changed_since, &rel)))
				event_to(s, c, COORD_EV_OVERFLOW, p, len);
		} else if (gone) {
			event_to(s, c, COORD_EV_DELETED, p, len);
			fire = 1;
		} else if (n && (uint64_t)n->czxid > rel) {
			event_to(s, c, COORD_EV_CREATED, p, len);
			fire = 1;
		} else if (n && kind != WATCH_CHILD && (uint64_t)n->mzxid > rel) {
			event_to(s, c, COORD_EV_CHANGED, p, len);
			fire = 1;
		} else if (n && kind != WATCH_DATA && (uint64_t)n->pzxid > rel) {
			event_to(s, c, COORD_EV_CHILDREN, p, len);
			fire = 1;
		}
		/* A one-shot watch that fired is used up; a persistent one stays. */
		if ((!fire || kind == WATCH_PERSIST || kind == WATCH_RECURSIVE) && !watch_limit_hit(s, c))
			watch_add(s->wm, c->session, p, len, kind);
		p += len + 1;
	}
}

/* Answer a request that needs no log entry, from this member's state. */
static void serve_read(struct server *s, struct client *c, const struct coord_req *req, int64_t recv_ns)
{
	struct buf b;
	buf_init(&b);
	int err;
	char why[COORD_MAX_PATH + 400];
	const struct session *se = sessions_find(&s->st.sessions, c->session);
	const char *principal = se ? se->principal : ""; /* for ACL checks */
	switch (req->op) {
	case COORD_OP_GET:
	case COORD_OP_EXISTS:
	case COORD_OP_LIST:
	case COORD_OP_SYNC:
	case COORD_OP_HISTORY:
	case COORD_OP_GETACL:
		err = state_read_as(&s->st, req, principal, &b);
		if (req->watch && req->op != COORD_OP_SYNC &&
		    (err == COORD_OK || (err == COORD_ENONODE && req->op == COORD_OP_EXISTS)) && watch_limit_hit(s, c)) {
			buf_reset(&b);
			snprintf(why, sizeof(why), "too many watches on this session (maxSessionWatches=%d)",
				 s->cfg.max_session_watches);
			error_frame(s, &b, req, COORD_ELIMIT, why);
		} else if (req->watch && req->op != COORD_OP_SYNC &&
		    (err == COORD_OK || (err == COORD_ENONODE && req->op == COORD_OP_EXISTS)))
			watch_add(s->wm, c->session, (const char *)req->path.p, req->path.len,
				  req->op == COORD_OP_LIST ? WATCH_CHILD : WATCH_DATA);
		break;
	case COORD_OP_ADDWATCH:
	case COORD_OP_REMOVEWATCH: {
		unsigned kind = req->watch == COORD_WATCH_PERSISTENT_RECURSIVE ? WATCH_RECURSIVE
				: req->watch == COORD_WATCH_PERSISTENT		   ? WATCH_PERSIST
				: req->watch == COORD_WATCH_ONESHOT		   ? (WATCH_DATA | WATCH_CHILD)
				: req->op == COORD_OP_REMOVEWATCH		   ? ~0u
										   : 0;
		err = coord_path_check((const char *)req->path.p, req->path.len, 0, why, sizeof(why));
		if (!err && req->op == COORD_OP_ADDWATCH && watch_limit_hit(s, c)) {
			err = COORD_ELIMIT;
			snprintf(why, sizeof(why), "too many watches on this session (maxSessionWatches=%d)",
				 s->cfg.max_session_watches);
		}
		if (!err && !kind) {
			err = COORD_EBADARG;
			snprintf(why, sizeof(why), "addwatch: mode must be persistent or persistent-recursive");
		}
		const struct znode *wn = err ? NULL : tree_lookup(&s->st.tree, (const char *)req->path.p, req->path.len);
		if (wn && req->op == COORD_OP_ADDWATCH) /* a watch needs read: its events name children */
			err = state_acl_check(&s->st, wn, (const char *)req->path.p, req->path.len, principal,
					      COORD_PERM_READ, why, sizeof(why));
		if (!err && req->op == COORD_OP_ADDWATCH) {
			err = watch_add(s->wm, c->session, (const char *)req->path.p, req->path.len, kind);
		} else if (!err) {
			err = watch_remove(s->wm, c->session, (const char *)req->path.p, req->path.len, kind);
			if (err)
				snprintf(why, sizeof(why), "%.*s: no such watch", (int)req->path.len, (const char *)req->path.p);
		}
		error_frame(s, &b, req, err, err ? why : NULL);
		break;
	}
	case COORD_OP_SETWATCHES:
		rearm(s, c, req->data_watches, WATCH_DATA, req->last_zxid, principal);
		rearm(s, c, req->child_watches, WATCH_CHILD, req->last_zxid, principal);
		rearm(s, c, req->persistent, WATCH_PERSIST, req->last_zxid, principal);
		rearm(s, c, req->recursive, WATCH_RECURSIVE, req->last_zxid, principal);
		error_frame(s, &b, req, COORD_OK, NULL);
		break;
	case COORD_OP_PING:
		error_frame(s, &b, req, COORD_OK, NULL);
		break;
	default:
		error_frame(s, &b, req, COORD_EBADARG, "not a read operation");
	}
	send_client(s, c, b.p, b.len);
	note_latency(s, recv_ns);
	buf_free(&b);
}

/* Answer the session's queued requests whose turn has come. */
static void flush_ops(struct server *s, struct client *c)
{
	while (c->head) {
		struct client_op *op = c->head;
		if (op->kind == CLIENT_OP_WRITE || op->kind == CLIENT_OP_FRAME) {
			if (!op->done)
				return;
			send_client(s, c, op->reply, op->reply_len);
			note_latency(s, op->recv_ns);
		} else {
			if (op->kind == CLIENT_OP_SYNC && (!op->done || s->st.last_zxid < op->index))
				return;
			struct coord_req req;
			if (!coord_req_decode(op->req, op->req_len, &req, NULL, 0)) {
				serve_read(s, c, &req, op->recv_ns);
				coord_req_clear(&req);
			}
		}
		client_op_pop(c);
	}
}

/* ---- handing writes to the leader ---- */

/* Is the write (session, xid) in the log but not yet applied? (Only asked while the disk refuses.) */
static int in_unapplied_log(struct server *s, uint64_t session, uint64_t xid)
{
	for (uint64_t i = s->st.last_zxid + 1; i && i <= raft_last_index(s->raft); i++) {
		const struct raft_entry *e = raft_entry(s->raft, i);
		struct txn t;
		struct coord_req hdr;
		if (!e || e->type != RAFT_ENTRY_NORMAL || txn_decode(e->data, e->len, &t) || t.type != TXN_REQUEST ||
		    t.session_id != session)
			continue;
		req_header(t.req.p, t.req.len, &hdr);
		if (hdr.xid == xid)
			return 1;
	}
	return 0;
}

/* Leader: turn a write of `session` into a txn and propose it. On a refusal, *reply gets the
 * error frame for the client and the function returns the error. */
static int prep_and_propose(struct server *s, uint64_t session, const void *frame, size_t len, struct buf *reply)
{
	struct coord_req req;
	char why[400];
	int err = coord_req_decode(frame, len, &req, why, sizeof(why));
	if (err) {
		req_header(frame, len, &req);
		error_frame(s, reply, &req, COORD_EPROTO, why);
		return COORD_EPROTO;
	}
	struct buf txn;
	buf_init(&txn);
	if (s->disk_error && in_unapplied_log(s, session, req.xid)) {
		/* A resend of a write already in our log: refusing it now would be an ambiguous
		 * answer (the first copy may still commit). Its reply comes when that copy applies. */
		buf_free(&txn);
		coord_req_clear(&req);
		return COORD_OK;
	} else if (s->disk_error) {
		err = s->disk_error;
		snprintf(why, sizeof(why), "the leader cannot write its log (%s); writes are refused until it can",
			 coord_strerror(err));
	} else if (!(err = prep_request(&s->lim, session, &req, frame, len, &txn, why, sizeof(why)))) {
		err = raft_propose(s->raft, RAFT_ENTRY_NORMAL, txn.p, txn.len, NULL);
		if (err == COORD_OK)
			s->stats.txns_logged++;
	}
	if (err && err != COORD_ENOTREADY)
		error_frame(s, reply, &req, err, why);
	buf_free(&txn);
	coord_req_clear(&req);
	return err;
}

/* Tell whoever handed us a write that it was refused: our own client, or a follower's. */
static void refuse(struct server *s, int from, uint64_t session, struct buf *reply)
{
	if (from == s->cfg.my_id) {
		struct client *c = clients_get(&s->cl, session);
		uint8_t kind, op;
		uint64_t xid;
		struct client_op *w = NULL;
		if (c && !coord_reply_peek(reply->p, reply->len, &kind, &xid, &op))
			for (w = c->head; w && !(w->kind == CLIENT_OP_WRITE && w->xid == xid && !w->done); w = w->next)
				;
		if (w) {
			w->reply = buf_take(reply, &w->reply_len);
			w->done = 1; /* the caller answers it in the session's order (flush_ops) */
		}
		return;
	}
	struct buf b;
	buf_init(&b);
	peer_encode_forward(&b, PEER_REFUSED, session, reply->p, reply->len);
	peers_send(&s->peers, from, b.p, b.len);
	buf_free(&b);
}

/*
 * Leader: a write handed to us by `from` (ourselves or a follower). While a leadership transfer
 * holds proposals back, writes wait here in arrival order, so none overtakes another.
 */
static void take_write(struct server *s, int from, uint64_t session, const void *frame, size_t len)
{
	if (!s->nheld && !raft_transferring(s->raft)) {
		struct buf reply;
		buf_init(&reply);
		int err = prep_and_propose(s, session, frame, len, &reply);
		if (err != COORD_ENOTREADY) {
			if (err)
				refuse(s, from, session, &reply);
			buf_free(&reply);
			return;
		}
		buf_free(&reply);
	}
	if (s->nheld == s->cheld) {
		size_t c = s->cheld ? s->cheld * 2 : 64;
		struct held_write *p = realloc(s->held, c * sizeof(*p));
		if (!p)
			return; /* lost: the writer hands it again when it sees a leader change */
		s->held = p;
		s->cheld = c;
	}
	struct held_write *h = &s->held[s->nheld];
	h->frame = malloc(len ? len : 1);
	if (!h->frame)
		return;
	memcpy(h->frame, frame, len);
	h->len = len;
	h->session = session;
	h->from = from;
	s->nheld++;
}

/* Propose the held writes once the transfer is over; drop them if we lost the leadership (their
 * writers hand them, in order, to the new leader). */
static void flush_held(struct server *s)
{
	size_t i = 0;
	if (is_leader(s)) {
		for (; i < s->nheld && !raft_transferring(s->raft); i++) {
			struct held_write *h = &s->held[i];
			struct buf reply;
			buf_init(&reply);
			int err = prep_and_propose(s, h->session, h->frame, h->len, &reply);
			if (err && err != COORD_ENOTREADY) {
				refuse(s, h->from, h->session, &reply);
				struct client *c = h->from == s->cfg.my_id ? clients_get(&s->cl, h->session) : NULL;
				if (c)
					flush_ops(s, c);
			}
			buf_free(&reply);
			if (err == COORD_ENOTREADY)
				break;
			free(h->frame);
		}
	} else {
		for (; i < s->nheld; i++)
			free(s->held[i].frame);
	}
	memmove(s->held, s->held + i, (s->nheld - i) * sizeof(*s->held));
	s->nheld -= i;
}

static void submit_new_session(struct server *s, struct pending_connect *pc)
{
	int leader = raft_leader(s->raft);
	if (leader == RAFT_NONE)
		return;
	pc->sent_to = leader;
	pc->sent_term = raft_term(s->raft);
	if (leader == s->cfg.my_id || s->standalone) {
		struct buf txn;
		buf_init(&txn);
		if (prep_create_session(&s->lim, pc->session, pc->passwd, pc->timeout_ms, pc->principal, &txn) == COORD_OK &&
		    raft_propose(s->raft, RAFT_ENTRY_NORMAL, txn.p, txn.len, NULL) == COORD_OK)
			s->stats.txns_logged++;
		else
			pc->sent_to = 0; /* try again next round */
		buf_free(&txn);
		return;
	}
	struct buf b;
	buf_init(&b);
	peer_encode_new_session(&b, pc->session, pc->passwd, pc->timeout_ms, pc->principal);
	peers_send(&s->peers, leader, b.p, b.len);
	buf_free(&b);
}

/* Hand a queued write to the current leader (or take it, being the leader). */
static void submit_write(struct server *s, struct client *c, struct client_op *op, int leader)
{
	op->sent_to = leader;
	op->sent_term = raft_term(s->raft);
	if (leader == s->cfg.my_id) {
		take_write(s, leader, c->session, op->req, op->req_len);
		return;
	}
	struct buf b;
	buf_init(&b);
	peer_encode_forward(&b, PEER_FORWARD, c->session, op->req, op->req_len);
	peers_send(&s->peers, leader, b.p, b.len);
	buf_free(&b);
}

/*
 * Hand the session's unanswered writes to the current leader, oldest first, each that this leader
 * of this term has not had yet (all: every one). Nothing goes while no leader is known, so a
 * write never overtakes an earlier one of its session: the state applies a session's xids in
 * order and would refuse an earlier one arriving late.
 */
static void submit_session(struct server *s, struct client *c, int all)
{
	int leader = raft_leader(s->raft);
	uint64_t term = raft_term(s->raft);
	if (leader == RAFT_NONE)
		return;
	for (struct client_op *op = c->head; op; op = op->next) {
		if (op->kind == CLIENT_OP_WRITE && !op->done &&
		    (all || op->sent_to != leader || op->sent_term != term))
			submit_write(s, c, op, leader);
		else if (op->kind == CLIENT_OP_SYNC && !op->done && (all || op->sent_to != leader)) {
			op->sent_to = leader;
			op->ctx = ++s->next_ctx;
			raft_read_index(s->raft, op->ctx);
		}
	}
	flush_ops(s, c);
}

struct resubmit {
	struct server *s;
	int all;
};

static void resubmit_client(void *arg, struct client *c)
{
	struct resubmit *x = arg;
	submit_session(x->s, c, x->all);
}

/* A new leader, or writes that never reached one: hand every unanswered write to it again, in
 * each session's order (the state applies a resent request once). */
static void resubmit_all(struct server *s, int all)
{
	struct resubmit x = {s, all};
	clients_each(&s->cl, resubmit_client, &x);
	for (size_t i = 0; i < s->nconnects; i++)
		if (all || s->connects[i].sent_to != raft_leader(s->raft) || s->connects[i].sent_term != raft_term(s->raft))
			submit_new_session(s, &s->connects[i]);
}

/* ---- connecting ---- */

static void connect_reply(struct server *s, const void *route, size_t rlen, uint64_t xid, const struct session *se,
			  int watches_kept)
{
	struct coord_reply r = {0};
	r.kind = COORD_MSG_REPLY;
	r.op = COORD_OP_CONNECT;
	r.xid = xid;
	r.zxid = s->st.last_zxid;
	r.fail_index = -1;
	r.session_id = se->id;
	memcpy(r.passwd, se->passwd, COORD_PASSWD_LEN);
	r.timeout_ms = se->timeout_ms;
	r.server_id = (uint32_t)s->cfg.my_id;
	r.max_data = s->cfg.max_data_bytes;
	r.watches_kept = (uint8_t)watches_kept;
	r.principal = slice_str(se->principal);
	struct buf b;
	buf_init(&b);
	coord_reply_encode(&b, &r);
	send_to(s, route, rlen, b.p, b.len);
	buf_free(&b);
}

static void new_session(struct server *s, const void *route, size_t rlen, const struct coord_req *req,
			const char *principal, int64_t now)
{
	if (s->nconnects == s->cconnects) {
		size_t c = s->cconnects ? s->cconnects * 2 : 16;
		struct pending_connect *p = realloc(s->connects, c * sizeof(*p));
		if (!p) {
			send_error(s, route, rlen, req, COORD_ENOMEM, "server out of memory");
			return;
		}
		s->connects = p;
		s->cconnects = c;
	}
	struct pending_connect *pc = &s->connects[s->nconnects];
	memset(pc, 0, sizeof(*pc));
	if (prep_new_session(&s->lim, req->timeout_ms, &pc->session, pc->passwd, &pc->timeout_ms)) {
		send_error(s, route, rlen, req, COORD_EIO, "cannot draw a session id");
		return;
	}
	snprintf(pc->principal, sizeof(pc->principal), "%s", principal);
	pc->xid = req->xid;
	pc->route_len = (uint8_t)(rlen <= CLIENT_ROUTE_MAX ? rlen : 0);
	memcpy(pc->route, route, pc->route_len);
	pc->recv_ns = now;
	s->nconnects++;
	submit_new_session(s, pc);
}

static void handle_connect(struct server *s, const void *route, size_t rlen, const struct coord_req *req,
			   const char *principal, int64_t now)
{
	char msg[200];
	if (!zap_principal_ok(&s->zap, principal)) {
		/* The key was removed from authorizedKeysFile (SIGHUP) after this connection was admitted. */
		snprintf(msg, sizeof(msg), "principal '%s' is no longer authorised", principal);
		send_error(s, route, rlen, req, COORD_ENOAUTH, msg);
		return;
	}
	if (!req->session_id) {
		new_session(s, route, rlen, req, principal, now);
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
	if (strcmp(se->principal, principal) != 0) {
		/* A session is bound to the key that opened it: its password alone does not move it. */
		LOG_WARN("refused to resume session 0x%016" PRIx64 " of principal '%s' for principal '%s'",
			 req->session_id, se->principal, principal);
		snprintf(msg, sizeof(msg), "session 0x%016" PRIx64 " belongs to another principal", req->session_id);
		send_error(s, route, rlen, req, COORD_ENOAUTH, msg);
		return;
	}
	if (req->last_zxid > s->st.last_zxid) {
		snprintf(msg, sizeof(msg), "this member is behind the client (zxid 0x%" PRIx64 " < 0x%" PRIx64 ")",
			 s->st.last_zxid, req->last_zxid);
		send_error(s, route, rlen, req, COORD_ENOTREADY, msg);
		return;
	}
	int here_before = c->route_len || c->ring_n || watch_count(s->wm, c->session);
	clients_attach(&s->cl, c, route, rlen);
	c->last_heard_ns = now;
	c->touched = 1;
	connect_reply(s, route, rlen, req->xid, se, here_before && !c->watches_lost);
	c->watches_lost = 0;
	/* Events the old connection may have lost: everything after what the client saw. */
	if (c->ring_dropped_zxid > req->last_zxid)
		event_to(s, c, COORD_EV_OVERFLOW, "/", 1);
	for (uint32_t i = 0; i < c->ring_n; i++) {
		const struct client_event *e = &c->ring[(c->ring_head + i) % CLIENT_RING_EVENTS];
		if (e->zxid > req->last_zxid)
			send_client(s, c, e->frame, e->len);
	}
}

/* ---- one client message ---- */

static void handle_admin(struct server *s, const void *route, size_t rlen, const struct coord_req *req)
{
	struct buf text, b;
	buf_init(&text);
	buf_init(&b);
	char word[65];
	size_t wl = req->word.len < 64 ? req->word.len : 64;
	memcpy(word, req->word.p, wl);
	word[wl] = 0;
	int err = admin_answer(s, word, &text);
	struct coord_reply r;
	memset(&r, 0, sizeof(r));
	r.kind = COORD_MSG_REPLY;
	r.op = req->op;
	r.err = err;
	r.xid = req->xid;
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
}

static void handle_client(struct server *s, const uint8_t *route, size_t rlen, const uint8_t *frame, size_t len,
			  const char *principal)
{
	int64_t now = mono_ns();
	s->stats.received++;
	struct coord_req req;
	char why[300];
	if (coord_req_decode(frame, len, &req, why, sizeof(why))) {
		struct coord_req hdr;
		req_header(frame, len, &hdr);
		LOG_DEBUG("malformed request: %s", why);
		send_error(s, route, rlen, &hdr, COORD_EPROTO, why);
		return;
	}
	if (req.op == COORD_OP_ADMIN) {
		handle_admin(s, route, rlen, &req);
	} else if (req.op == COORD_OP_CONNECT) {
		handle_connect(s, route, rlen, &req, principal, now);
	} else {
		struct client *c = clients_by_route(&s->cl, route, rlen);
		if (!c) {
			/* No session on this connection here (never connected, or this member restarted):
			 * the client library answers ENOTREADY by connecting again with its session. */
			send_error(s, route, rlen, &req, COORD_ENOTREADY, "no session on this connection: send CONNECT first");
		} else if (c->nops >= (uint32_t)s->cfg.max_session_requests) {
			char msg[160];
			uint64_t sup;
			if (ratelog_ok(&s->log_ops, now, &sup))
				LOG_WARN("session 0x%016" PRIx64 " hit maxSessionRequests=%d: requests refused with ELIMIT "
					 "(%" PRIu64 " more refusals not logged)", c->session, s->cfg.max_session_requests, sup);
			snprintf(msg, sizeof(msg), "too many outstanding requests on this session (maxSessionRequests=%d)",
				 s->cfg.max_session_requests);
			send_error(s, route, rlen, &req, COORD_ELIMIT, msg);
		} else {
			c->last_heard_ns = now;
			c->touched = 1;
			if (coord_op_is_write(req.op)) {
				if (client_op_push(c, CLIENT_OP_WRITE, req.xid, frame, len, now))
					submit_session(s, c, 0);
			} else if (req.op == COORD_OP_SYNC) {
				struct client_op *op = client_op_push(c, CLIENT_OP_SYNC, req.xid, frame, len, now);
				if (op && raft_leader(s->raft) != RAFT_NONE) {
					op->ctx = ++s->next_ctx;
					op->sent_to = raft_leader(s->raft);
					raft_read_index(s->raft, op->ctx);
				}
			} else if (c->head) {
				client_op_push(c, CLIENT_OP_READ, req.xid, frame, len, now);
			} else {
				serve_read(s, c, &req, now);
			}
		}
	}
	coord_req_clear(&req);
}

/* ---- one peer message ---- */

struct find_op {
	uint64_t xid, ctx;
	struct client_op *op;
	struct client *c;
};

static struct client_op *find_write(struct client *c, uint64_t xid)
{
	for (struct client_op *op = c->head; op; op = op->next)
		if (op->kind == CLIENT_OP_WRITE && op->xid == xid && !op->done)
			return op;
	return NULL;
}

static void handle_peer(struct server *s, int from, const uint8_t *frame, size_t len)
{
	struct peer_msg m;
	char why[200];
	if (peer_decode(frame, len, &m, why, sizeof(why))) {
		LOG_WARN("member %d sent a malformed message: %s", from, why);
		return;
	}
	switch (m.kind) {
	case PEER_RAFT:
		if (m.raft.from != from)
			break; /* a member speaks only for itself */
		if (m.raft.type == RAFT_MSG_SNAPSHOT && !peers_have_snapshot(&s->peers, m.raft.index, m.raft.log_term))
			break; /* the chunks did not all arrive: the leader offers it again */
		raft_step(s->raft, &m.raft);
		break;
	case PEER_FORWARD:
		/* Not the leader (any more): dropped; the follower hands it to the leader it learns of. */
		if (is_leader(s))
			take_write(s, from, m.session, m.frame.p, m.frame.len);
		break;
	case PEER_NEW_SESSION:
		if (is_leader(s)) {
			struct buf txn;
			buf_init(&txn);
			if (prep_create_session(&s->lim, m.session, m.passwd, m.timeout_ms, m.principal, &txn) == COORD_OK &&
			    raft_propose(s->raft, RAFT_ENTRY_NORMAL, txn.p, txn.len, NULL) == COORD_OK)
				s->stats.txns_logged++;
			buf_free(&txn);
		}
		break;
	case PEER_REFUSED: {
		struct client *c = clients_get(&s->cl, m.session);
		uint8_t kind, op;
		uint64_t xid;
		if (c && !coord_reply_peek(m.frame.p, m.frame.len, &kind, &xid, &op)) {
			struct client_op *w = find_write(c, xid);
			if (w) {
				w->reply = malloc(m.frame.len);
				if (w->reply) {
					memcpy(w->reply, m.frame.p, m.frame.len);
					w->reply_len = m.frame.len;
					w->done = 1;
				}
				flush_ops(s, c);
			}
		}
		break;
	}
	case PEER_TOUCH: {
		/* Every member keeps when each session was last heard of, so a new leader need not
		 * guess (see grace). */
		int64_t now = mono_ns();
		for (uint32_t i = 0; i < m.ntouch; i++) {
			struct client *c = clients_get(&s->cl, peer_touch_at(&m, i));
			if (c)
				c->last_heard_ns = now;
		}
		break;
	}
	case PEER_SNAP_CHUNK:
		peers_recv_chunk(&s->peers, m.index, m.term, m.offset, m.total, m.chunk.p, m.chunk.len);
		break;
	}
	peer_msg_clear(&m);
}

/* ---- applying committed entries ---- */

static void end_session(struct server *s, uint64_t session)
{
	watch_remove_session(s->wm, session);
	clients_remove(&s->cl, session);
}

static void answer_connect(struct server *s, uint64_t session)
{
	for (size_t i = 0; i < s->nconnects; i++) {
		struct pending_connect *pc = &s->connects[i];
		if (pc->session != session)
			continue;
		const struct session *se = sessions_find(&s->st.sessions, session);
		struct client *c = se ? clients_get(&s->cl, session) : NULL;
		if (c && !memcmp(se->passwd, pc->passwd, COORD_PASSWD_LEN)) {
			clients_attach(&s->cl, c, pc->route, pc->route_len);
			c->touched = 1;
			connect_reply(s, pc->route, pc->route_len, pc->xid, se, 1);
			note_latency(s, pc->recv_ns);
		}
		s->connects[i] = s->connects[--s->nconnects];
		return;
	}
}

static void apply_entry(struct server *s, uint64_t index, const struct raft_entry *e)
{
	struct txn t;
	if (e->type == RAFT_ENTRY_NOOP) {
		memset(&t, 0, sizeof(t));
		t.type = TXN_NOOP;
	} else if (txn_decode(e->data, e->len, &t)) {
		LOG_ERROR("committed entry 0x%" PRIx64 " does not decode; stopping rather than diverging", index);
		abort();
	}
	t.term = e->term;
	struct apply_out out = {0};
	state_apply(&s->st, index, &t, &out);
	fire_events(s, &out, index);
	s->txns_since_snap++;
	if (t.type == TXN_CREATE_SESSION) {
		if (out.created_session)
			clients_add(&s->cl, t.session_id, t.timeout_ms, mono_ns());
		answer_connect(s, t.session_id);
	} else if (out.reply) {
		struct client *c = clients_get(&s->cl, t.session_id);
		uint8_t kind, op;
		uint64_t xid;
		if (c && !coord_reply_peek(out.reply, out.reply_len, &kind, &xid, &op)) {
			struct client_op *w = find_write(c, xid);
			if (w) {
				w->reply = out.reply;
				w->reply_len = out.reply_len;
				out.reply = NULL;
				w->done = 1;
			}
			flush_ops(s, c);
		}
	}
	if (out.closed_session) {
		if (t.type == TXN_CLOSE_SESSION)
			LOG_INFO("session 0x%016" PRIx64 " expired", out.closed_session);
		end_session(s, out.closed_session);
	}
	apply_out_reset(&out);
}

/* Sessions queued behind a sync whose commit point is now applied. */
static void flush_syncs(void *arg, struct client *c)
{
	struct server *s = arg;
	if (c->head && c->head->kind == CLIENT_OP_SYNC)
		flush_ops(s, c);
}

struct read_result {
	struct server *s;
	const struct raft_read *rd;
};

static void take_read(void *arg, struct client *c)
{
	struct read_result *x = arg;
	for (struct client_op *op = c->head; op; op = op->next) {
		if (op->kind != CLIENT_OP_SYNC || op->ctx != x->rd->ctx || op->done)
			continue;
		if (x->rd->ok) {
			op->index = x->rd->index;
			op->done = 1;
		} else {
			op->sent_to = -1; /* no leader could answer: ask again next tick */
		}
		return;
	}
}

/* ---- the durable log ---- */

static int log_entry(struct server *s, uint64_t index, const struct raft_entry *e)
{
	struct buf b;
	buf_init(&b);
	buf_u64(&b, e->term);
	buf_u8(&b, e->type);
	buf_put(&b, e->data, e->len);
	int err = b.oom ? COORD_ENOMEM : txnlog_append(s->log, index, b.p, b.len);
	buf_free(&b);
	return err;
}

static void disk_failed(struct server *s, int err)
{
	if (!s->disk_error)
		LOG_ERROR("cannot write the log in %s (%s): writes are refused until it can; nothing acknowledged "
			  "is lost", s->cfg.data_log_dir, coord_strerror(err));
	s->disk_error = err;
}

static void install_snapshot(struct server *s, uint64_t index, uint64_t term)
{
	char err[512];
	if (peers_keep_snapshot(&s->peers)) {
		LOG_ERROR("cannot keep the snapshot received from the leader; stopping");
		exit(1);
	}
	state_free(&s->st);
	if (state_init(&s->st, s->cfg.max_data_bytes)) {
		LOG_ERROR("out of memory loading a snapshot");
		exit(1);
	}
	state_set_history(&s->st, s->cfg.history_depth, s->cfg.history_bytes);
	state_set_super_user(&s->st, s->cfg.super_user);
	uint64_t zxid = 0;
	if (snap_load_newest(s->cfg.data_dir, &zxid, (int (*)(void *, const uint8_t *, size_t))state_load_record, &s->st,
			     err, sizeof(err)) ||
	    zxid != index || state_load_done(&s->st)) {
		LOG_ERROR("the snapshot 0x%" PRIx64 " received from the leader does not load (%s); stopping", index, err);
		exit(1);
	}
	if (txnlog_truncate_after(s->log, 0)) {
		LOG_ERROR("cannot empty the log for the new snapshot; stopping");
		exit(1);
	}
	/* The session table may have changed wholesale: rebuild this member's view of it. */
	struct clients fresh;
	if (clients_init(&fresh)) {
		LOG_ERROR("out of memory");
		exit(1);
	}
	int64_t now = mono_ns();
	for (size_t i = 0; i < s->st.sessions.nbuckets; i++) {
		for (struct session *se = s->st.sessions.buckets[i]; se; se = se->next) {
			struct client *old = clients_get(&s->cl, se->id);
			struct client *c = clients_add(&fresh, se->id, se->timeout_ms, now);
			if (c && old && old->route_len)
				clients_attach(&fresh, c, old->route, old->route_len);
			if (c)
				c->watches_lost = !old;
		}
	}
	for (size_t i = 0; i < s->cl.nbuckets; i++)
		for (struct client *c = s->cl.by_id[i]; c; c = c->next_id)
			if (!clients_get(&fresh, c->session))
				watch_remove_session(s->wm, c->session);
	clients_free(&s->cl);
	s->cl = fresh;
	s->prev_snap_zxid = s->snap_zxid = index;
	s->prev_snap_term = s->snap_term = term;
	LOG_INFO("installed snapshot 0x%" PRIx64 " from the leader (%" PRIu64 " znodes)", index, s->st.tree.count);
}

static void send_raft(struct server *s, const struct raft_msg *m)
{
	if (m->type == RAFT_MSG_SNAPSHOT &&
	    peers_send_snapshot(&s->peers, m->to, s->cfg.data_dir, m->index, m->log_term))
		return;
	struct buf b;
	buf_init(&b);
	if (peer_encode_raft(&b, m) == COORD_OK)
		peers_send(&s->peers, m->to, b.p, b.len);
	buf_free(&b);
}

/* Do what the core asks: returns 0, or an error when the disk refused (retry next tick). */
static int process_ready(struct server *s)
{
	struct raft_ready rd;
	while (raft_ready(s->raft, &rd)) {
		if (rd.install_snapshot)
			install_snapshot(s, rd.snap_index, rd.snap_term);
		for (size_t i = 0; i < rd.nmsgs; i++)
			send_raft(s, &rd.msgs[i]);
		if (rd.nmsgs && !s->standalone)
			peers_flush(&s->peers); /* on the wire while we write and sync */
		int err = COORD_OK;
		if (rd.truncate && (err = txnlog_truncate_after(s->log, rd.truncate_after))) {
			disk_failed(s, err);
			return err;
		}
		for (uint64_t i = rd.persist_from; !err && i && i <= rd.persist_to; i++)
			err = log_entry(s, i, raft_entry(s->raft, i));
		if (!err && rd.persist_to) {
			err = txnlog_sync(s->log);
			s->stats.fsyncs++;
		}
		if (!err && rd.has_hard)
			err = raftstate_save(s->rs, &rd.hard);
		if (err) {
			txnlog_discard(s->log);
			disk_failed(s, err);
			return err;
		}
		if (s->disk_error) {
			LOG_INFO("the log is writable again");
			s->disk_error = 0;
		}
		for (size_t i = 0; i < rd.nafter; i++)
			send_raft(s, &rd.msgs_after[i]);
		for (uint64_t i = rd.apply_from; i && i <= rd.apply_to; i++)
			apply_entry(s, i, raft_entry(s->raft, i));
		for (size_t i = 0; i < rd.nreads; i++) {
			struct read_result x = {s, &rd.reads[i]};
			clients_each(&s->cl, take_read, &x);
		}
		if (rd.apply_to || rd.nreads)
			clients_each(&s->cl, flush_syncs, s);
		raft_advance(s->raft, &rd);
	}
	return 0;
}

/* ---- leadership, expiry, liveness reports ---- */

/*
 * A new leader's view of when sessions were last heard of comes from the reports every member
 * sends to every other; but a member just back from a partition may have missed some. So no
 * session may expire sooner than half its timeout from now (live clients ping every third of
 * it), and one last heard of earlier keeps its date: a dead client's ephemerals still go close
 * to its timeout, not a whole timeout after the election, as in ZooKeeper.
 */
static void grace(void *arg, struct client *c)
{
	int64_t floor = *(int64_t *)arg - (int64_t)c->timeout_ms * 1000000 / 2;
	if (c->last_heard_ns < floor)
		c->last_heard_ns = floor;
	c->expiring = 0;
}

static void leader_changed(struct server *s)
{
	int leader = raft_leader(s->raft);
	if (leader == s->leader_seen && raft_term(s->raft) == s->term_seen)
		return;
	s->leader_seen = leader;
	s->term_seen = raft_term(s->raft);
	if (leader == s->cfg.my_id) {
		s->stats.elections_won++;
		if (!s->standalone)
			LOG_INFO("leading the ensemble (term %" PRIu64 ")", s->term_seen);
		int64_t now = mono_ns();
		clients_each(&s->cl, grace, &now);
	} else if (leader != RAFT_NONE && !s->standalone) {
		LOG_INFO("following member %d (term %" PRIu64 ")", leader, s->term_seen);
	}
	resubmit_all(s, 0);
}

struct expiry {
	struct server *s;
	int64_t now;
	uint64_t *touched;
	uint32_t ntouched, ctouched;
};

static void tick_client(void *arg, struct client *c)
{
	struct expiry *e = arg;
	struct server *s = e->s;
	if (is_leader(s) && !c->expiring && e->now - c->last_heard_ns > (int64_t)c->timeout_ms * 1000000) {
		struct buf txn;
		buf_init(&txn);
		if (!s->disk_error && prep_expire_session(c->session, &txn) == COORD_OK &&
		    raft_propose(s->raft, RAFT_ENTRY_NORMAL, txn.p, txn.len, NULL) == COORD_OK) {
			c->expiring = 1;
			s->stats.txns_logged++;
		}
		buf_free(&txn);
	}
	if (!c->touched || s->standalone)
		return;
	c->touched = 0;
	if (e->ntouched == e->ctouched) {
		uint32_t n = e->ctouched ? e->ctouched * 2 : 64;
		uint64_t *p = realloc(e->touched, n * sizeof(*p));
		if (!p)
			return;
		e->touched = p;
		e->ctouched = n;
	}
	e->touched[e->ntouched++] = c->session;
}

/* After a reload: a session whose principal lost its key loses its connection here; its client's
 * next CONNECT is refused (handle_connect), and a new connection fails the handshake. */
static void cut_unauthorised(void *arg, struct client *c)
{
	struct server *s = arg;
	const struct session *se = sessions_find(&s->st.sessions, c->session);
	if (!c->route_len || !se || zap_principal_ok(&s->zap, se->principal))
		return;
	LOG_WARN("session 0x%016" PRIx64 " of principal '%s': key no longer authorised, connection cut", c->session,
		 se->principal);
	clients_detach(&s->cl, c);
}

static void tick(struct server *s)
{
	if (s->reload) { /* SIGHUP: read authorizedKeysFile again */
		s->reload = 0;
		zap_reload(&s->zap);
		clients_each(&s->cl, cut_unauthorised, s);
	}
	raft_tick(s->raft);
	struct expiry e = {s, mono_ns(), NULL, 0, 0};
	clients_each(&s->cl, tick_client, &e);
	if (e.ntouched) {
		struct buf b;
		buf_init(&b);
		for (uint32_t off = 0; off < e.ntouched; off += PEER_MAX_TOUCH) {
			uint32_t n = e.ntouched - off < PEER_MAX_TOUCH ? e.ntouched - off : PEER_MAX_TOUCH;
			buf_reset(&b);
			peer_encode_touch(&b, e.touched + off, n);
			for (int i = 0; i < s->peers.n; i++)
				peers_send(&s->peers, s->peers.p[i].id, b.p, b.len);
		}
		buf_free(&b);
	}
	free(e.touched);
	/* Connects nobody answered within a minute: the client gave up long ago. */
	for (size_t i = 0; i < s->nconnects;) {
		if (e.now - s->connects[i].recv_ns > 60LL * 1000000000)
			s->connects[i] = s->connects[--s->nconnects];
		else
			i++;
	}
	resubmit_all(s, 0);
}

static void peer_lost(void *arg, int id)
{
	struct server *s = arg;
	if (id == raft_leader(s->raft))
		LOG_INFO("lost the connection to the leader (member %d): electing a new one", id);
	raft_peer_lost(s->raft, id);
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

/* No member needs the log up to index any more: standalone, or a leader whose members all hold it. */
static int nobody_behind(struct server *s, uint64_t index)
{
	if (s->standalone || s->cfg.nmembers == 1)
		return 1;
	if (!is_leader(s))
		return 0;
	struct raft_status st;
	raft_status(s->raft, &st);
	for (int i = 0; i < st.npeers; i++)
		if (st.peers[i].id != st.id && st.peers[i].match < index)
			return 0;
	return 1;
}

/*
 * A member without peers never sends an entry to anyone: once applied (and so on disk) it needs
 * no copy in memory. Dropping it at once keeps a standalone member's memory that of its tree.
 */
static void drop_applied(struct server *s)
{
	if (!s->standalone && s->cfg.nmembers != 1)
		return;
	struct raft_status st;
	raft_status(s->raft, &st);
	if (st.applied >= st.first_index)
		raft_compact(s->raft, st.applied, raft_term_at(s->raft, st.applied));
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
			/* Keep the log from the previous snapshot on, in memory and on disk, so a member a
			 * little behind catches up from the log rather than by a whole snapshot. In memory
			 * only while someone may need it: alone, or leading members that all hold the new
			 * snapshot's entries, the log goes up to the new snapshot. */
			if (nobody_behind(s, s->snap_zxid))
				raft_compact(s->raft, s->snap_zxid, s->snap_term);
			else if (s->prev_snap_zxid)
				raft_compact(s->raft, s->prev_snap_zxid, s->prev_snap_term);
			s->prev_snap_zxid = s->snap_zxid;
			s->prev_snap_term = s->snap_term;
			uint64_t oldest = snap_purge(s->cfg.data_dir, SNAPSHOTS_KEPT);
			if (oldest)
				txnlog_purge(s->log, oldest);
			/* Hand freed heap pages back (what the compacted log and the requests left). */
			malloc_trim(0);
		} else {
			LOG_WARN("snapshot 0x%" PRIx64 " failed; the log keeps everything, the next one will try again",
				 s->snap_zxid);
		}
	}
	if (s->txns_since_snap < s->snap_threshold || s->snap_pid)
		return;
	if (txnlog_roll(s->log))
		return;
	s->snap_zxid = s->st.last_zxid;
	s->snap_term = s->st.last_term;
	pid_t pid = fork();
	if (pid < 0) {
		LOG_WARN("cannot fork to write a snapshot: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		/* The child sees the state as of the fork (copy-on-write) and touches nothing else. It
		 * dies with its parent (releasing the locks it inherited), so a member killed while
		 * writing a snapshot can start again at once. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
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

static int load_entry(void *arg, uint64_t zxid, const uint8_t *payload, size_t len)
{
	struct server *s = arg;
	if (zxid != raft_last_index(s->raft) + 1) {
		LOG_ERROR("the log jumps from zxid 0x%" PRIx64 " to 0x%" PRIx64 ": entries are missing; restore %s from "
			  "a backup, or empty this member's dataDir and dataLogDir and let it rejoin from the leader",
			  raft_last_index(s->raft), zxid, s->cfg.data_log_dir);
		return COORD_EIO;
	}
	struct rd r;
	rd_init(&r, payload, len);
	uint64_t term = rd_u64(&r);
	uint8_t type = rd_u8(&r);
	if (r.bad) {
		LOG_ERROR("log entry 0x%" PRIx64 " is too short", zxid);
		return COORD_EPROTO;
	}
	return raft_load(s->raft, term, type, r.p, rd_left(&r));
}

static int snap_load(void *arg, const uint8_t *p, size_t n) { return state_load_record(arg, p, n); }

static int raft_setup(struct server *s, struct raft_hard *hs, char *err, size_t errlen)
{
	struct raft_config rc = {0};
	rc.id = s->cfg.my_id;
	if (s->standalone) {
		rc.nmembers = 1;
		rc.members[0].id = rc.id;
		rc.members[0].voter = 1;
	} else {
		rc.nmembers = s->cfg.nmembers;
		for (int i = 0; i < s->cfg.nmembers; i++) {
			rc.members[i].id = s->cfg.members[i].id;
			rc.members[i].voter = !s->cfg.members[i].observer;
		}
	}
	/* The core ticks every 10 ms; an election waits two to four tickTimes unless a dropped
	 * connection says sooner that the leader is gone; heartbeats go six times per timeout. */
	rc.election_ticks = 2 * s->cfg.tick_time / RAFT_TICK_MS;
	if (rc.election_ticks < 10)
		rc.election_ticks = 10;
	rc.heartbeat_ticks = rc.election_ticks / 6;
	rc.max_batch = 1024;
	rc.max_batch_bytes = 1u << 20; /* a follower catching up on large znodes gets them a few at a time */
	rc.max_inflight = 256;
	if (getrandom(&rc.seed, sizeof(rc.seed), 0) != sizeof(rc.seed))
		rc.seed = (uint64_t)mono_ns();
	int e = raft_new(&rc, hs, s->st.last_zxid, s->st.last_term, &s->raft);
	if (e)
		snprintf(err, errlen, "cannot start the consensus core: %s", coord_strerror(e));
	return e;
}

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
	s->prev_snap_zxid = s->snap_zxid = snap_zxid;
	s->prev_snap_term = s->snap_term = s->st.last_term;
	struct raft_hard hs;
	if ((rc = raftstate_open(s->cfg.data_dir, &s->rs, &hs, err, errlen)))
		return rc;
	if ((rc = txnlog_open(s->cfg.data_log_dir, &s->log, &log_last, err, errlen)))
		return rc;
	if ((rc = raft_setup(s, &hs, err, errlen)))
		return rc;
	if ((rc = txnlog_replay(s->log, snap_zxid, load_entry, s))) {
		snprintf(err, errlen, "cannot read the log in %s (see above)", s->cfg.data_log_dir);
		return rc;
	}
	raft_set_applied(s->raft, snap_zxid);
	struct restore r = {s, mono_ns(), 0};
	sessions_each(&s->st.sessions, restore_client, &r);
	LOG_INFO("recovered: snapshot 0x%" PRIx64 " + %" PRIu64 " log records, last zxid 0x%" PRIx64 " (term %" PRIu64
		 "), %" PRIu64 " znodes, %zu sessions",
		 snap_zxid, raft_last_index(s->raft) - snap_zxid, raft_last_index(s->raft), hs.term, s->st.tree.count,
		 s->st.sessions.count);
	return r.err;
}

static int bind_client_port(struct server *s, char *err, size_t errlen)
{
	s->sock = zmq_socket(s->zctx, ZMQ_ROUTER);
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
	if (zap_server_socket(&s->zap, s->sock) != 0 || zap_monitor(&s->zap, s->zctx, s->sock) != 0) {
		snprintf(err, errlen, "cannot set up authentication on the client port: %s", zmq_strerror(errno));
		return COORD_EIO;
	}
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
	s->standalone = cfg->nmembers == 0;
	if (s->standalone && !s->cfg.my_id)
		s->cfg.my_id = 1;
	s->lock_fd = -1;
	s->lim = (struct prep_limits){cfg->max_data_bytes, cfg->min_session_timeout, cfg->max_session_timeout, s->cfg.my_id};
	s->snap_threshold = draw_threshold(cfg->snap_count);
	s->stats.started_ms = prep_now_ms();
	s->tick_ns = (int64_t)RAFT_TICK_MS * 1000000;
	int rc;
	if ((rc = mkdirs(cfg->data_dir, err, errlen)) || (rc = mkdirs(cfg->data_log_dir, err, errlen)))
		goto fail;
	char lock[COORD_DIR_MAX + 32];
	snprintf(lock, sizeof(lock), "%s/coordd.lock", cfg->data_dir);
	s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	/* A killed member's snapshot writer may take a moment to die with it: wait up to 2 s. */
	for (int i = 0; s->lock_fd >= 0 && i < 40 && flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0; i++)
		usleep(50000);
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
	state_set_history(&s->st, cfg->history_depth, cfg->history_bytes);
	state_set_super_user(&s->st, cfg->super_user);
	if ((rc = recover(s, err, errlen)))
		goto fail;
	s->zctx = zmq_ctx_new();
	if (!s->zctx) {
		snprintf(err, errlen, "cannot start ZeroMQ: %s", zmq_strerror(errno));
		rc = COORD_EIO;
		goto fail;
	}
	if ((rc = zap_open(&s->zap, s->zctx, &s->cfg, err, errlen)))
		goto fail;
	if (!s->standalone) {
		struct peerlink_keys keys;
		if (s->zap.curve && (rc = peerlink_keys_load(&keys, &s->cfg, err, errlen)))
			goto fail;
		rc = peers_open(&s->peers, &s->cfg, s->zap.curve ? &keys : NULL, err, errlen);
		sodium_memzero(&keys, sizeof(keys));
		if (rc)
			goto fail;
	}
	if (s->standalone)
		process_ready(s); /* apply the whole durable log before the first client can read */
	if ((rc = bind_client_port(s, err, errlen)) || (rc = zap_start(&s->zap, err, errlen)))
		goto fail;
	s->leader_seen = -1;
	if (s->standalone || (s->cfg.nmembers == 1))
		raft_campaign(s->raft); /* alone: no one to wait for */
	*out = s;
	return COORD_OK;
fail:
	server_close(s);
	return rc;
}

/* Take what the client port holds; 1 if DRAIN_MAX stopped it with more maybe left. */
static int drain_clients(struct server *s)
{
	for (int k = 0; k < DRAIN_MAX; k++) {
		zmq_msg_t route, body;
		zmq_msg_init(&route);
		if (zmq_msg_recv(&route, s->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&route);
			return 0;
		}
		zmq_msg_init(&body);
		int ok = zmq_msg_more(&route) && zmq_msg_recv(&body, s->sock, 0) >= 0;
		int extra = ok && zmq_msg_more(&body);
		int multi = extra;
		while (extra) { /* one request is one frame: drain and refuse the rest */
			zmq_msg_t junk;
			zmq_msg_init(&junk);
			extra = zmq_msg_recv(&junk, s->sock, 0) >= 0 && zmq_msg_more(&junk);
			zmq_msg_close(&junk);
		}
		if (ok) {
			/* The ZAP handler's answer for this connection (CURVE); NULL without authentication. */
			const char *principal = zmq_msg_gets(&body, "User-Id");
			handle_client(s, zmq_msg_data(&route), zmq_msg_size(&route), multi ? (const uint8_t *)"" : zmq_msg_data(&body),
				      multi ? 0 : zmq_msg_size(&body), principal ? principal : "");
		}
		zmq_msg_close(&body);
		zmq_msg_close(&route);
	}
	return 1;
}

/* The same for the peer links. */
static int drain_peers(struct server *s)
{
	if (s->standalone)
		return 0;
	for (int k = 0; k < DRAIN_MAX; k++) {
		const uint8_t *msg;
		size_t len;
		int from = 0;
		if (!peers_recv(&s->peers, &from, &msg, &len))
			return 0;
		handle_peer(s, from, msg, len);
	}
	return 1;
}

/* A leader asked to stop hands leadership to its most up-to-date voter first, so the ensemble
 * does not wait for an election timeout. Returns 1 while the hand-over is still under way. */
static int hand_over(struct server *s, int64_t *deadline)
{
	if (s->standalone || !is_leader(s))
		return 0;
	int64_t now = mono_ns();
	if (!*deadline) {
		*deadline = now + 1000000000LL;
		struct raft_status st;
		raft_status(s->raft, &st);
		int best = 0;
		uint64_t match = 0;
		for (int i = 0; i < st.npeers; i++) {
			const struct coord_member *m = NULL;
			for (int k = 0; k < s->cfg.nmembers; k++)
				if (s->cfg.members[k].id == st.peers[i].id)
					m = &s->cfg.members[k];
			if (st.peers[i].id != st.id && m && !m->observer && st.peers[i].active && st.peers[i].match >= match) {
				best = st.peers[i].id;
				match = st.peers[i].match;
			}
		}
		if (!best || raft_transfer(s->raft, best))
			return 0;
		LOG_INFO("stopping: handing leadership to member %d", best);
	}
	return now < *deadline;
}

/*
 * One poll(2) over the client port's ZMQ_FD and the peer links' sockets instead of zmq_poll:
 * libzmq's zmq_poll asks every socket for ZMQ_EVENTS before and after it sleeps, and each ask
 * costs a poll and a getpid. ZMQ_FD is edge-triggered: it is readable when the socket's mailbox
 * holds commands, not when a message is waiting. A socket drained until EAGAIN has an empty
 * mailbox, so the fd then says when something new comes; but a send on a socket may swallow the
 * command that announced a message, so the client port, which we also send on, is drained again
 * after any send. The peer links are plain sockets (level-triggered); what they read and did not
 * hand over yet keeps more_peer set.
 */
int server_run(struct server *s)
{
	s->next_tick_ns = mono_ns() + s->tick_ns;
	int64_t hand_over_deadline = 0;
	int more_cl = 1, more_peer = 1; /* may hold something: drain without waiting */
	struct pollfd pf[1 + PEERS_POLL_MAX];
	while (!s->stop || hand_over(s, &hand_over_deadline)) {
		int n = 0, npeer = 0;
		size_t fdlen = sizeof(int);
		if (zmq_getsockopt(s->sock, ZMQ_FD, &pf[n].fd, &fdlen) == 0) {
			pf[n].events = POLLIN;
			n++;
		}
		int have_cl = n, first_peer = n; /* pf[0] is the client port's when have_cl */
		if (!s->standalone)
			peers_flush(&s->peers);
		int64_t now = mono_ns();
		long wait_ms = (long)((s->next_tick_ns - now + 999999) / 1000000);
		if (!s->standalone) {
			npeer = peers_pollfds(&s->peers, pf + n, &wait_ms);
			n += npeer;
		}
		if (s->sock_sent)
			more_cl = 1;
		if (wait_ms < 0 || more_cl || more_peer)
			wait_ms = 0;
		int pr = poll(pf, (nfds_t)n, (int)wait_ms);
		if (pr < 0 && errno != EINTR) {
			LOG_ERROR("poll: %s", strerror(errno));
			return COORD_EIO;
		}
		if (pr < 0)
			for (int i = 0; i < n; i++)
				pf[i].revents = 0;
		if (have_cl && pf[0].revents)
			more_cl = 1;
		if (!s->standalone) {
			peers_io(&s->peers, pf + first_peer, npeer, peer_lost, s);
			more_peer = 1;
		}
		if (more_peer)
			more_peer = drain_peers(s);
		if (more_cl) {
			s->sock_sent = 0;
			more_cl = drain_clients(s);
		}
		now = mono_ns();
		int ticked = now >= s->next_tick_ns;
		if (ticked) {
			s->next_tick_ns = now + s->tick_ns;
			tick(s);
		}
		/* While the disk refuses, retry once a tick rather than in a tight loop. */
		if (!s->disk_error || ticked) {
			process_ready(s);
			leader_changed(s);
			if (s->nheld)
				flush_held(s);
			process_ready(s);
			drop_applied(s);
		}
		maybe_snapshot(s);
	}
	return COORD_OK;
}

void server_stop(struct server *s) { s->stop = 1; }

void server_reload(struct server *s) { s->reload = 1; }

void server_close(struct server *s)
{
	if (!s)
		return;
	if (s->snap_pid) {
		int status;
		waitpid(s->snap_pid, &status, 0);
	}
	zap_close(&s->zap); /* first: its thread watches the ports' monitors */
	if (s->sock)
		zmq_close(s->sock);
	peers_close(&s->peers);
	if (s->zctx)
		zmq_ctx_term(s->zctx);
	raft_free(s->raft);
	if (s->log)
		txnlog_close(s->log);
	raftstate_close(s->rs);
	watch_free(s->wm);
	if (s->cl.by_id)
		clients_free(&s->cl);
	state_free(&s->st);
	free(s->connects);
	for (size_t i = 0; i < s->nheld; i++)
		free(s->held[i].frame);
	free(s->held);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s);
}

const char *server_mode(const struct server *s)
{
	if (s->standalone)
		return "standalone";
	if (is_leader(s))
		return "leader";
	const struct coord_member *me = coord_config_self(&s->cfg);
	return me && me->observer ? "observer" : "follower";
}
