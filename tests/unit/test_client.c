/*
 * test_client.c: the client library's bookkeeping, without a server.
 *
 * What a reconnect depends on is checked here: host lists parse (and refuse) as documented,
 * xids rise by one from 1, the ack is always the oldest unanswered xid, a rewind resends every
 * unanswered request in xid order, and the watch sets behave as sets. Then the parts of the
 * public API that need no server: opening against a port nobody listens on gives ECONNLOSS
 * within the connect timeout (and leaks nothing), admin_oneshot likewise, bad host lists give
 * EBADARG. The client against a real coordd is tested by the pytest suite.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "check.h"
#include "client.h"
#include "client_internal.h"
#include "err.h"
#include "log.h"
#include "wire.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TCP port on 127.0.0.1 with nobody listening (bound then closed: refused at once). */
static int dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	socklen_t l = sizeof(a);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &l) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_hosts_good(void)
{
	struct coord_hostport *h;
	size_t n;
	char err[200];
	CHECK_EQ(coord_hosts_parse("127.0.0.1:2181", &h, &n, err, sizeof(err)), COORD_OK);
	CHECK_EQ(n, 1);
	CHECK_STR(h[0].host, "127.0.0.1");
	CHECK_EQ(h[0].port, 2181);
	free(h);

	CHECK_EQ(coord_hosts_parse("a:1, b.example.com:65535 ,c", &h, &n, err, sizeof(err)), COORD_OK);
	CHECK_EQ(n, 3);
	CHECK_STR(h[0].host, "a");
	CHECK_EQ(h[0].port, 1);
	CHECK_STR(h[1].host, "b.example.com");
	CHECK_EQ(h[1].port, 65535);
	CHECK_STR(h[2].host, "c");
	CHECK_EQ(h[2].port, COORD_DEFAULT_PORT);
	free(h);

	CHECK_EQ(coord_hosts_parse("[::1]:2182,[fe80::1]", &h, &n, err, sizeof(err)), COORD_OK);
	CHECK_EQ(n, 2);
	CHECK_STR(h[0].host, "::1");
	CHECK_EQ(h[0].port, 2182);
	CHECK_STR(h[1].host, "fe80::1");
	CHECK_EQ(h[1].port, COORD_DEFAULT_PORT);
	free(h);
}

static void test_hosts_bad(void)
{
	static const char *bad[] = {
		"", ",", "a:1,", ",a:1", "a:1,,b:2", ":2181", "a:", "a:0", "a:65536", "a:12x",
		"a:-1", "::1:2181", "[::1", "[::1]x", "[]:1", "a b:1", "h:2181/chroot", "a:123456",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct coord_hostport *h = (void *)1;
		size_t n = 99;
		char err[200] = "";
		int rc = coord_hosts_parse(bad[i], &h, &n, err, sizeof(err));
		if (rc != COORD_EBADARG)
			fprintf(stderr, "accepted: '%s'\n", bad[i]);
		CHECK_EQ(rc, COORD_EBADARG);
		CHECK(h == NULL);
		CHECK_EQ(n, 0);
		CHECK(err[0] != '\0');
	}
	struct coord_hostport *h;
	size_t n;
	CHECK_EQ(coord_hosts_parse(NULL, &h, &n, NULL, 0), COORD_EBADARG);
	char longname[400];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ(coord_hosts_parse(longname, &h, &n, NULL, 0), COORD_EBADARG);
}

static struct coord_pending *mk(uint8_t op)
{
	struct coord_pending *p = calloc(1, sizeof(*p));
	CHECK(p != NULL);
	p->op = op;
	return p;
}

static void test_xids_and_ack(void)
{
	struct coord_pqueue q;
	coord_pq_init(&q, 1);
	/* Nothing pending: the ack is the next xid (everything below it has been answered). */
	CHECK_EQ(coord_pq_ack(&q), 1);
	struct coord_pending *a = mk(COORD_OP_CREATE), *b = mk(COORD_OP_GET), *c = mk(COORD_OP_SET);
	CHECK_EQ(coord_pq_push(&q, a), 1);
	CHECK_EQ(coord_pq_push(&q, b), 2);
	CHECK_EQ(coord_pq_push(&q, c), 3);
	CHECK_EQ(q.count, 3);
	CHECK_EQ(coord_pq_ack(&q), 1);

	/* Sending walks them in order. */
	CHECK(coord_pq_next_unsent(&q) == a);
	coord_pq_sent(&q);
	CHECK(coord_pq_next_unsent(&q) == b);
	coord_pq_sent(&q);

	/* Reply to 2 first (out of order): the ack stays at 1, the oldest unanswered. */
	CHECK(coord_pq_take(&q, 2) == b);
	coord_pending_free(b);
	CHECK_EQ(coord_pq_ack(&q), 1);
	CHECK(coord_pq_take(&q, 2) == NULL);
	CHECK(coord_pq_find(&q, 3) == c);
	CHECK(coord_pq_next_unsent(&q) == c);

	/* Reply to 1: ack moves to 3. */
	CHECK(coord_pq_take(&q, 1) == a);
	coord_pending_free(a);
	CHECK_EQ(coord_pq_ack(&q), 3);

	/* A reply to a request not sent yet (cannot happen, but must not corrupt the queue). */
	CHECK(coord_pq_take(&q, 3) == c);
	coord_pending_free(c);
	CHECK(coord_pq_next_unsent(&q) == NULL);
	CHECK(q.head == NULL && q.tail == NULL);
	CHECK_EQ(q.count, 0);
	CHECK_EQ(coord_pq_ack(&q), 4);

	/* xids keep counting: never reused. */
	struct coord_pending *d = mk(COORD_OP_DELETE);
	CHECK_EQ(coord_pq_push(&q, d), 4);
	CHECK_EQ(coord_pq_ack(&q), 4);
	CHECK(coord_pq_take(&q, 4) == d);
	coord_pending_free(d);
}

static void test_rewind_resends_in_order(void)
{
	struct coord_pqueue q;
	coord_pq_init(&q, 1);
	struct coord_pending *p[6];
	for (int i = 0; i < 6; i++) {
		p[i] = mk(COORD_OP_SET);
		coord_pq_push(&q, p[i]);
	}
	/* 1..4 sent, 5..6 not yet. 2 and 3 answered. Then the connection drops. */
	for (int i = 0; i < 4; i++)
		coord_pq_sent(&q);
	CHECK(coord_pq_next_unsent(&q) == p[4]);
	coord_pending_free(coord_pq_take(&q, 2));
	coord_pending_free(coord_pq_take(&q, 3));
	coord_pq_rewind(&q);
	/* The new connection resends 1, 4, 5, 6: every unanswered one, in xid order. */
	uint64_t want[] = {1, 4, 5, 6};
	for (int i = 0; i < 4; i++) {
		struct coord_pending *x = coord_pq_next_unsent(&q);
		CHECK(x != NULL);
		CHECK_EQ(x->xid, want[i]);
		coord_pq_sent(&q);
	}
	CHECK(coord_pq_next_unsent(&q) == NULL);
	CHECK_EQ(coord_pq_ack(&q), 1);
	/* New submissions after the rewind come after, with new xids. */
	struct coord_pending *n7 = mk(COORD_OP_GET);
	CHECK_EQ(coord_pq_push(&q, n7), 7);
	CHECK(coord_pq_next_unsent(&q) == n7);
	/* Removing the tail keeps tail right for the next push. */
	coord_pending_free(coord_pq_take(&q, 7));
	struct coord_pending *n8 = mk(COORD_OP_GET);
	CHECK_EQ(coord_pq_push(&q, n8), 8);
	CHECK(q.tail == n8);
	CHECK(coord_pq_next_unsent(&q) == n8);
	/* Expiry: take everything at once. */
	struct coord_pending *all = coord_pq_take_all(&q);
	int k = 0;
	uint64_t last = 0;
	while (all) {
		struct coord_pending *next = all->next;
		CHECK(all->xid > last);
		last = all->xid;
		coord_pending_free(all);
		all = next;
		k++;
	}
	CHECK_EQ(k, 5);
	CHECK_EQ(q.count, 0);
	CHECK(coord_pq_next_unsent(&q) == NULL);
	CHECK_EQ(coord_pq_ack(&q), 9);
}

static int count_cb(void *arg, const char *path)
{
	(void)path;
	(*(int *)arg)++;
	return 0;
}

static int stop_cb(void *arg, const char *path)
{
	(void)path;
	return ++(*(int *)arg) == 3 ? 7 : 0;
}

static void test_wset(void)
{
	struct coord_wset s;
	coord_wset_init(&s);
	CHECK(!coord_wset_has(&s, "/a"));
	CHECK_EQ(coord_wset_del(&s, "/a"), 0);
	CHECK_EQ(coord_wset_add(&s, "/a"), 0);
	CHECK_EQ(coord_wset_add(&s, "/a"), 1);
	CHECK(coord_wset_has(&s, "/a"));
	CHECK(!coord_wset_has(&s, "/a/b"));
	char p[64];
	for (int i = 0; i < 1000; i++) {
		snprintf(p, sizeof(p), "/n/%d", i);
		CHECK_EQ(coord_wset_add(&s, p), 0);
	}
	CHECK_EQ(s.count, 1001);
	for (int i = 0; i < 1000; i += 2) {
		snprintf(p, sizeof(p), "/n/%d", i);
		CHECK_EQ(coord_wset_del(&s, p), 1);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(p, sizeof(p), "/n/%d", i);
		CHECK_EQ(coord_wset_has(&s, p), i % 2);
	}
	int n = 0;
	CHECK_EQ(coord_wset_each(&s, count_cb, &n), 0);
	CHECK_EQ(n, 501);
	n = 0;
	CHECK_EQ(coord_wset_each(&s, stop_cb, &n), 7);
	CHECK_EQ(n, 3);
	coord_wset_free(&s);
	CHECK_EQ(s.count, 0);
	CHECK(!coord_wset_has(&s, "/a"));
	coord_wset_free(&s);
}

static void test_open_bad_hosts(void)
{
	struct coord_client_opts o;
	memset(&o, 0, sizeof(o));
	o.hosts = "a:1,,b:2";
	struct coord_client *c = (void *)1;
	char err[200] = "";
	CHECK_EQ(coord_client_open(&o, &c, err, sizeof(err)), COORD_EBADARG);
	CHECK(c == NULL);
	CHECK(strstr(err, "empty") != NULL);
}

static void test_open_nobody_listening(void)
{
	char hosts[64];
	snprintf(hosts, sizeof(hosts), "127.0.0.1:%d,localhost:%d", dead_port(), dead_port());
	struct coord_client_opts o;
	memset(&o, 0, sizeof(o));
	o.hosts = hosts;
	o.session_timeout_ms = 3000;
	o.connect_timeout_ms = 600;
	struct coord_client *c = (void *)1;
	char err[300] = "";
	int64_t t0 = mono_ms();
	CHECK_EQ(coord_client_open(&o, &c, err, sizeof(err)), COORD_ECONNLOSS);
	int64_t took = mono_ms() - t0;
	CHECK(c == NULL);
	CHECK(err[0] != '\0');
	/* Gives up on time: not before the connect timeout, and not long after. */
	CHECK(took >= 550);
	CHECK(took < 3000);
}

static void test_open_unresolvable(void)
{
	struct coord_client_opts o;
	memset(&o, 0, sizeof(o));
	o.hosts = "no-such-host.invalid:2181";
	o.connect_timeout_ms = 300;
	struct coord_client *c = NULL;
	char err[300] = "";
	CHECK_EQ(coord_client_open(&o, &c, err, sizeof(err)), COORD_ECONNLOSS);
	CHECK(c == NULL);
	CHECK(strstr(err, "no-such-host.invalid") != NULL);
}

static void test_admin_nobody_listening(void)
{
	char hosts[64], err[300] = "";
	snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", dead_port());
	char *text = (void *)1;
	int64_t t0 = mono_ms();
	CHECK_EQ(coord_admin_oneshot(hosts, "ruok", 300, &text, err, sizeof(err)), COORD_ECONNLOSS);
	CHECK(text == NULL);
	CHECK(mono_ms() - t0 < 2000);
	CHECK(strstr(err, "did not answer") != NULL);
	CHECK_EQ(coord_admin_oneshot("x:0", "ruok", 300, &text, err, sizeof(err)), COORD_EBADARG);
}

/*
 * A fake server on a ROUTER socket: enough of the protocol to see what the client sends
 * (CONNECT first, then requests with xids from 1 and the right ack) and that it takes replies.
 */
struct fake {
	void *ctx, *router;
	int port;
};

static void fake_start(struct fake *f)
{
	f->ctx = zmq_ctx_new();
	f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
	int zero = 0;
	zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof(zero));
	CHECK(zmq_bind(f->router, "tcp://127.0.0.1:*") == 0);
	char ep[128];
	size_t l = sizeof(ep);
	zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, ep, &l);
	f->port = atoi(strrchr(ep, ':') + 1);
}

static void fake_stop(struct fake *f)
{
	zmq_close(f->router);
	zmq_ctx_term(f->ctx);
}

/* Receive one request; id/idlen get the peer's routing id. */
static void fake_recv(struct fake *f, uint8_t *id, size_t *idlen, struct coord_req *req, void **frame)
{
	zmq_pollitem_t it = {f->router, 0, ZMQ_POLLIN, 0};
	CHECK(zmq_poll(&it, 1, 5000) == 1);
	int n = zmq_recv(f->router, id, 256, 0);
	CHECK(n > 0);
	*idlen = (size_t)n;
	zmq_msg_t m;
	zmq_msg_init(&m);
	CHECK(zmq_msg_recv(&m, f->router, 0) >= 0);
	*frame = malloc(zmq_msg_size(&m));
	memcpy(*frame, zmq_msg_data(&m), zmq_msg_size(&m));
	char err[160];
	CHECK_EQ(coord_req_decode(*frame, zmq_msg_size(&m), req, err, sizeof(err)), COORD_OK);
	zmq_msg_close(&m);
}

static void fake_send(struct fake *f, const uint8_t *id, size_t idlen, const struct coord_reply *rep)
{
	struct buf b;
	buf_init(&b);
	CHECK_EQ(coord_reply_encode(&b, rep), COORD_OK);
	CHECK(zmq_send(f->router, id, idlen, ZMQ_SNDMORE) >= 0);
	CHECK(zmq_send(f->router, b.p, b.len, 0) >= 0);
	buf_free(&b);
}

struct seen {
	_Atomic int events, last_type, states, last_state;
	_Atomic uint64_t last_zxid;
};

static void on_ev(void *arg, const struct coord_event *ev)
{
	struct seen *s = arg;
	s->last_type = ev->type;
	s->last_zxid = ev->zxid;
	s->events++;
}

static void on_st(void *arg, int st)
{
	struct seen *s = arg;
	s->last_state = st;
	s->states++;
}

struct async_done {
	_Atomic int calls, err;
	char data[32];
};

static void adone(void *arg, struct coord_result *res)
{
	struct async_done *d = arg;
	if (res->err == 0 && res->rep.data.len && res->rep.data.len < sizeof(d->data))
		memcpy(d->data, res->rep.data.p, res->rep.data.len);
	d->err = res->err;
	d->calls++;
	coord_result_free(res);
	free(res);
}

static void wait_for(_Atomic int *v, int want)
{
	int64_t end = mono_ms() + 5000;
	while (*v < want && mono_ms() < end)
		usleep(1000);
	CHECK(*v >= want);
}

struct opener {
	struct coord_client_opts *o;
	struct coord_client *c;
	int rc;
	char err[300];
};

static void *open_thread(void *arg)
{
	struct opener *op = arg;
	op->rc = coord_client_open(op->o, &op->c, op->err, sizeof(op->err));
	return NULL;
}

static void reply_init(struct coord_reply *r, uint8_t op, uint64_t xid, uint64_t zxid)
{
	memset(r, 0, sizeof(*r));
	r->kind = COORD_MSG_REPLY;
	r->op = op;
	r->xid = xid;
	r->zxid = zxid;
	r->fail_index = -1;
}

/*
 * The whole life of a session against fake servers: handshake; pipelined requests with xids
 * 1, 2, 3 and acks; a reply, an event; the server going away; the resume on another member
 * with the same session, the watches re-armed, the unanswered request resent with its xid;
 * then the server declaring the session expired.
 */
static void test_fake_server_session(void)
{
	struct fake a, b;
	fake_start(&a);
	int bport = dead_port(); /* B is not listening yet: a client trying it first moves on */
	char hosts[64];
	snprintf(hosts, sizeof(hosts), "127.0.0.1:%d,127.0.0.1:%d", a.port, bport);
	struct seen seen;
	memset(&seen, 0, sizeof(seen));
	struct coord_client_opts o;
	memset(&o, 0, sizeof(o));
	o.hosts = hosts;
	o.session_timeout_ms = 6000;
	o.connect_timeout_ms = 4000;
	o.on_event = on_ev;
	o.on_state = on_st;
	o.arg = &seen;
	struct opener op = {&o, NULL, -1, ""};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, open_thread, &op) == 0);

	uint8_t id[256];
	size_t idlen;
	struct coord_req req;
	void *frame;
	struct coord_reply rep;

	fake_recv(&a, id, &idlen, &req, &frame);
	CHECK_EQ(req.op, COORD_OP_CONNECT);
	CHECK_EQ(req.xid, 0);
	CHECK_EQ(req.session_id, 0);
	CHECK_EQ(req.timeout_ms, 6000);
	CHECK_EQ(req.last_zxid, 0);
	free(frame);
	reply_init(&rep, COORD_OP_CONNECT, 0, 10);
	rep.session_id = 0x55;
	memset(rep.passwd, 0xab, COORD_PASSWD_LEN);
	rep.timeout_ms = 6000;
	rep.server_id = 1;
	rep.max_data = 1000;
	rep.watches_kept = 0;
	fake_send(&a, id, idlen, &rep);
	pthread_join(th, NULL);
	CHECK_EQ(op.rc, COORD_OK);
	struct coord_client *c = op.c;
	CHECK_EQ(coord_client_session_id(c), 0x55);
	CHECK_EQ(coord_client_max_data(c), 1000);
	CHECK_EQ(coord_client_timeout_ms(c), 6000);
	/* The member's zxid in the CONNECT reply is not something this client has seen. */
	CHECK_EQ(coord_client_last_zxid(c), 0);
	CHECK_EQ(coord_client_state(c), COORD_STATE_CONNECTED);
	char server[300];
	coord_client_server(c, server, sizeof(server));
	CHECK(strstr(server, "127.0.0.1:") == server);

	/* Over the negotiated limit: refused locally, nothing sent. */
	static char big[1001];
	struct coord_req r;
	memset(&r, 0, sizeof(r));
	r.op = COORD_OP_SET;
	r.path = slice_str("/a");
	r.data = slice_of(big, sizeof(big));
	r.version = -1;
	struct async_done d1 = {0}, d2 = {0}, d3 = {0}, d4 = {0};
	CHECK_EQ(coord_submit(c, &r, adone, &d1), COORD_ETOOLARGE);
	/* Reserved ops are the library's. */
	r.op = COORD_OP_PING;
	CHECK_EQ(coord_submit(c, &r, adone, &d1), COORD_EBADARG);

	/* GET /a watch, SET /a, EXISTS /b watch: xids 1, 2, 3; ack 1 for all (none answered). */
	memset(&r, 0, sizeof(r));
	r.op = COORD_OP_GET;
	r.path = slice_str("/a");
	r.watch = COORD_WATCH_ONESHOT;
	CHECK_EQ(coord_submit(c, &r, adone, &d1), COORD_OK);
	r.op = COORD_OP_SET;
	r.watch = 0;
	r.data = slice_str("new");
	r.version = -1;
	CHECK_EQ(coord_submit(c, &r, adone, &d2), COORD_OK);
	memset(&r, 0, sizeof(r));
	r.op = COORD_OP_EXISTS;
	r.path = slice_str("/b");
	r.watch = COORD_WATCH_ONESHOT;
	CHECK_EQ(coord_submit(c, &r, adone, &d3), COORD_OK);
	for (uint64_t x = 1; x <= 3; x++) {
		fake_recv(&a, id, &idlen, &req, &frame);
		CHECK_EQ(req.xid, x);
		CHECK_EQ(req.ack, 1);
		CHECK_EQ(req.op, x == 1 ? COORD_OP_GET : x == 2 ? COORD_OP_SET : COORD_OP_EXISTS);
		coord_req_clear(&req);
		free(frame);
	}
	/* Answer GET and EXISTS (ENONODE: an exists watch still stands), not SET. */
	reply_init(&rep, COORD_OP_GET, 1, 11);
	rep.data = slice_str("hi");
	fake_send(&a, id, idlen, &rep);
	reply_init(&rep, COORD_OP_EXISTS, 3, 11);
	rep.err = COORD_ENONODE;
	fake_send(&a, id, idlen, &rep);
	wait_for(&d1.calls, 1);
	CHECK_EQ(d1.err, COORD_OK);
	CHECK_STR(d1.data, "hi");
	wait_for(&d3.calls, 1);
	CHECK_EQ(d3.err, COORD_ENONODE);
	/* The GET's data watch fires and ends. */
	memset(&rep, 0, sizeof(rep));
	rep.kind = COORD_MSG_EVENT;
	rep.zxid = 12;
	rep.ev_type = COORD_EV_CHANGED;
	rep.ev_path = slice_str("/a");
	fake_send(&a, id, idlen, &rep);
	wait_for(&seen.events, 1);
	CHECK_EQ(seen.last_type, COORD_EV_CHANGED);
	CHECK_EQ(seen.last_zxid, 12);
	CHECK_EQ(coord_client_last_zxid(c), 12);
	CHECK_EQ(d2.calls, 0);

	/* Member A goes away; B comes up on the port the client already knows. */
	int states_before = seen.states;
	b.ctx = zmq_ctx_new();
	b.router = zmq_socket(b.ctx, ZMQ_ROUTER);
	int zero = 0;
	zmq_setsockopt(b.router, ZMQ_LINGER, &zero, sizeof(zero));
	char ep[64];
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", bport);
	CHECK(zmq_bind(b.router, ep) == 0);
	b.port = bport;
	fake_stop(&a);

	/* Resume: same session and password, last zxid seen, then the watch, then SET again. */
	int64_t t0 = mono_ms();
	fake_recv(&b, id, &idlen, &req, &frame);
	CHECK(mono_ms() - t0 < 3000); /* the monitor noticed the disconnect: no heartbeat wait */
	CHECK_EQ(req.op, COORD_OP_CONNECT);
	CHECK_EQ(req.session_id, 0x55);
	CHECK_EQ(req.passwd[0], 0xab);
	CHECK_EQ(req.last_zxid, 12);
	CHECK_EQ(req.ack, 2);
	free(frame);
	reply_init(&rep, COORD_OP_CONNECT, 0, 50); /* B has moved on while we were away */
	rep.session_id = 0x55;
	memset(rep.passwd, 0xab, COORD_PASSWD_LEN);
	rep.timeout_ms = 6000;
	rep.server_id = 2;
	rep.max_data = 1000;
	rep.watches_kept = 0;
	fake_send(&b, id, idlen, &rep);
	fake_recv(&b, id, &idlen, &req, &frame);
	CHECK_EQ(req.op, COORD_OP_SETWATCHES);
	CHECK_EQ(req.xid, 0);
	CHECK_EQ(req.last_zxid, 12); /* relative to what we saw, not to B's 50: B fires 13..50 */
	CHECK_EQ(req.data_watches.len, 3); /* "/b\0": /a's one-shot watch fired already */
	CHECK(memcmp(req.data_watches.p, "/b", 3) == 0);
	CHECK_EQ(req.child_watches.len, 0);
	free(frame);
	fake_recv(&b, id, &idlen, &req, &frame);
	CHECK_EQ(req.op, COORD_OP_SET);
	CHECK_EQ(req.xid, 2);
	CHECK(slice_eq(req.data, "new"));
	free(frame);
	wait_for(&seen.states, states_before + 2); /* connecting, connected */
	CHECK_EQ(seen.last_state, COORD_STATE_CONNECTED);
	reply_init(&rep, COORD_OP_SET, 2, 13);
	fake_send(&b, id, idlen, &rep);
	wait_for(&d2.calls, 1);
	CHECK_EQ(d2.err, COORD_OK);

	/* xids go on from 4; the ack is now 4 (1..3 answered). */
	memset(&r, 0, sizeof(r));
	r.op = COORD_OP_DELETE;
	r.path = slice_str("/a");
	r.version = -1;
	CHECK_EQ(coord_submit(c, &r, adone, &d4), COORD_OK);
	fake_recv(&b, id, &idlen, &req, &frame);
	CHECK_EQ(req.op, COORD_OP_DELETE);
	CHECK_EQ(req.xid, 4);
	CHECK_EQ(req.ack, 4);
	free(frame);
	/* The server says the session is gone: the request fails, the state says so. */
	reply_init(&rep, COORD_OP_DELETE, 4, 13);
	rep.err = COORD_ESESSIONEXPIRED;
	rep.msg = slice_str("session 0x55 expired");
	fake_send(&b, id, idlen, &rep);
	wait_for(&d4.calls, 1);
	CHECK_EQ(d4.err, COORD_ESESSIONEXPIRED);
	CHECK_EQ(coord_client_state(c), COORD_STATE_EXPIRED);
	wait_for(&seen.states, states_before + 3);
	CHECK_EQ(seen.last_state, COORD_STATE_EXPIRED);
	CHECK_EQ(coord_submit(c, &r, adone, &d4), COORD_ESESSIONEXPIRED);
	struct coord_result res;
	CHECK_EQ(coord_call(c, &r, &res), COORD_ESESSIONEXPIRED);
	CHECK(res.msg[0] != '\0');
	CHECK_STR(coord_last_error(), res.msg);
	coord_result_free(&res);
	coord_client_close(c); /* no CLOSE for a dead session: returns at once */
	fake_stop(&b);
}

/* Close sends CLOSE and waits for its reply; pending requests get ECLOSING. */
static void *close_thread(void *arg)
{
	coord_client_close(arg);
	return NULL;
}

static void test_fake_close(void)
{
	struct fake a;
	fake_start(&a);
	char hosts[64];
	snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", a.port);
	struct coord_client_opts o;
	memset(&o, 0, sizeof(o));
	o.hosts = hosts;
	o.session_timeout_ms = 6000;
	struct opener op = {&o, NULL, -1, ""};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, open_thread, &op) == 0);
	uint8_t id[256];
	size_t idlen;
	struct coord_req req;
	void *frame;
	struct coord_reply rep;
	fake_recv(&a, id, &idlen, &req, &frame);
	free(frame);
	reply_init(&rep, COORD_OP_CONNECT, 0, 1);
	rep.session_id = 7;
	rep.timeout_ms = 6000;
	rep.watches_kept = 1;
	fake_send(&a, id, idlen, &rep);
	pthread_join(th, NULL);
	CHECK_EQ(op.rc, COORD_OK);
	struct async_done d = {0};
	struct coord_req r;
	memset(&r, 0, sizeof(r));
	r.op = COORD_OP_SYNC;
	r.path = slice_str("/");
	CHECK_EQ(coord_submit(op.c, &r, adone, &d), COORD_OK);
	fake_recv(&a, id, &idlen, &req, &frame);
	CHECK_EQ(req.op, COORD_OP_SYNC);
	free(frame);
	CHECK(pthread_create(&th, NULL, close_thread, op.c) == 0);
	fake_recv(&a, id, &idlen, &req, &frame);
	CHECK_EQ(req.op, COORD_OP_CLOSE);
	CHECK_EQ(req.xid, 2);
	free(frame);
	reply_init(&rep, COORD_OP_CLOSE, 2, 2);
	fake_send(&a, id, idlen, &rep);
	pthread_join(th, NULL);
	CHECK_EQ(d.calls, 1);
	CHECK_EQ(d.err, COORD_ECLOSING);
	fake_stop(&a);
}

int main(void)
{
	coord_log_init("test_client", COORD_LOG_ERROR);
	RUN(test_hosts_good);
	RUN(test_hosts_bad);
	RUN(test_xids_and_ack);
	RUN(test_rewind_resends_in_order);
	RUN(test_wset);
	RUN(test_open_bad_hosts);
	RUN(test_open_nobody_listening);
	RUN(test_open_unresolvable);
	RUN(test_admin_nobody_listening);
	RUN(test_fake_server_session);
	RUN(test_fake_close);
	return 0;
}
