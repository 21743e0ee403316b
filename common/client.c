/*
 * client.c: one session with a coordfs ensemble (see client.h for the contract).
 *
 * Threads. Each client has one I/O thread; it alone touches the ZeroMQ sockets, the watch sets
 * and the connection state machine. API calls from other threads encode their request, give it
 * the next xid and append it to the pending queue under c->mu, then wake the I/O thread through
 * an eventfd that zmq_poll watches next to the DEALER. Sync calls wait on c->cv. Callbacks run on
 * the I/O thread with c->mu released, so a callback may submit (but not wait).
 *
 * Why the queue keeps encoded frames: after a reconnect every unanswered request is sent again,
 * byte for byte, with its original xid; the server's replicated reply cache then applies it at
 * most once. The ack in a resent frame is the one computed at submit time: it is lower than or
 * equal to the current one, and an old ack is still true ("every reply below it was received"),
 * merely less useful to the server, so the frames never need re-encoding.
 *
 * Messages outside the session's xid sequence (CONNECT, PING, SETWATCHES and the session-less
 * ADMIN of coord_admin_oneshot) carry xid 0: they are not deduplicated, never resent, and must
 * not consume a number the server's dedup window expects.
 *
 * Connection life: PH_IDLE (no socket; retry at `deadline`) -> PH_WAIT_OUT (socket connecting;
 * with ZMQ_IMMEDIATE the DEALER turns writable only once TCP is up) -> PH_HANDSHAKE (CONNECT sent)
 * -> PH_CONNECTED. A socket monitor reports TCP failures at once, so a refused or reset
 * connection moves to the next address without waiting for a timeout, and ZeroMQ's silent
 * auto-reconnect (which would present us to the server as a new peer without a CONNECT) is never
 * relied on: any disconnect closes the socket and starts a proper handshake elsewhere.
 * PH_DEAD: the session expired or was closed; nothing more is sent.
 *
 * Timeouts use CLOCK_MONOTONIC only, so a wall-clock jump neither expires nor stalls anything.
 */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "client_internal.h"
#include "curve.h"
#include "err.h"
#include "log.h"

#define DEFAULT_SESSION_TIMEOUT_MS 10000
#define MIN_ATTEMPT_MS 200          /* never give a server less than this to answer CONNECT */
#define MAX_BACKOFF_MS 500          /* pause between whole rounds of failed hosts */
#define FIRST_BACKOFF_MS 50
#define FLAP_MS 1000                /* a connection shorter than this that breaks counts as a failure */
#define CLOSE_WAIT_MS 2000          /* coord_client_close waits this long for CLOSE's reply */
#define SETWATCHES_CHUNK (256u << 10) /* split re-arming so no frame grows without bound (ZOOKEEPER-706) */
#define CONTROL_XID 0               /* CONNECT, PING, SETWATCHES, session-less ADMIN */
/* The server takes frames of maxDataBytes + 1 MiB at most (ZMQ_MAXMSGSIZE, server.c) and drops the
 * connection of a sender of a larger one: refuse those here, or a resend would loop forever. */
#define FRAME_SLACK (1u << 20)

enum phase { PH_IDLE, PH_WAIT_OUT, PH_HANDSHAKE, PH_CONNECTED, PH_DEAD };

struct coord_client {
	pthread_mutex_t mu;
	pthread_cond_t cv;           /* CLOCK_MONOTONIC; broadcast on every completion and state change */
	pthread_t thread;
	int thread_started;
	int wake_fd;
	void *zctx;

	/* fixed at open */
	struct coord_hostport *hosts;
	size_t nhosts;
	int connect_timeout_ms;
	void (*on_event)(void *arg, const struct coord_event *ev);
	void (*on_state)(void *arg, int state);
	void *cb_arg;
	struct coord_keypair key;     /* CURVE: ours (secret_z85 "" = plaintext) */
	char server_key[COORD_KEY_Z85_LEN + 1];

	/* under mu */
	int state;                   /* enum coord_state */
	int stopping;                /* the I/O thread must exit */
	int closing;                 /* coord_client_close runs: only its CLOSE may still be submitted */
	int ever_connected;
	uint64_t session_id;
	uint8_t passwd[COORD_PASSWD_LEN];
	int timeout_ms;              /* negotiated; the requested one until the first connect */
	uint32_t server_id, max_data;
	char principal[COORD_PRINCIPAL_MAX + 1]; /* from the connect reply; "" = anonymous */
	uint64_t last_zxid;
	char server[COORD_HOSTNAME_MAX + 16];
	struct coord_pqueue pq;
	int open_err;                /* why connecting failed, for coord_client_open */
	char open_msg[600];
	int refused;                 /* handshakes refused in a row (every host refused: open fails) */
	int closed;                  /* plaintext handshakes the server closed without a reason, in a row */
	int refused_said;            /* the refusal was logged (once per kind of refusal) */

	/* I/O thread only */
	void *sock, *mon;
	unsigned mon_seq;
	int phase;
	size_t host_idx;
	char **addrs;                /* "tcp://IP:port" for hosts[host_idx], resolved at each visit */
	size_t naddrs, addr_idx;
	size_t failed_hosts;         /* hosts failed in a row: a whole round means back off */
	int backoff_ms;
	int64_t deadline;            /* PH_IDLE: next attempt; PH_WAIT_OUT/HANDSHAKE: give up */
	int64_t last_send, last_recv;
	int64_t connected_at;        /* when the current connection's handshake completed */
	int ping_out;
	int send_blocked;
	int notified_state;          /* the last state given to on_state */
	struct coord_wset w_data, w_child, w_pers, w_rec;
};

static _Thread_local char last_error[256];

/* coord_client_set_keys: set once at start, read by every open. */
static struct coord_keypair default_key;
static char default_server_key[COORD_KEY_Z85_LEN + 1];

static int load_keys(const char *key_file, const char *server_key_file, struct coord_keypair *kp, char *server_key,
		     char *err, size_t errlen)
{
	memset(kp, 0, sizeof(*kp));
	server_key[0] = '\0';
	if (!key_file && !server_key_file)
		return COORD_OK;
	if (!key_file || !server_key_file) {
		snprintf(err, errlen, "CURVE needs both keys: %s", key_file ? "the server's public key file is missing"
									     : "this client's key file is missing");
		return COORD_EBADARG;
	}
	struct coord_keypair sk;
	if (coord_key_load(key_file, 1, kp, err, errlen) || coord_key_load(server_key_file, 0, &sk, err, errlen)) {
		memset(kp, 0, sizeof(*kp));
		return COORD_EBADARG;
	}
	memcpy(server_key, sk.public_z85, COORD_KEY_Z85_LEN + 1);
	return COORD_OK;
}

int coord_client_set_keys(const char *key_file, const char *server_key_file, char *err, size_t errlen)
{
	return load_keys(key_file, server_key_file, &default_key, default_server_key, err, errlen);
}

/* A DEALER (or the one-shot admin socket) as a CURVE client, when keys are set. */
static int curve_client(void *s, const struct coord_keypair *kp, const char *server_key)
{
	if (!kp->secret_z85[0])
		return 0;
	if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, COORD_KEY_Z85_LEN) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, kp->public_z85, COORD_KEY_Z85_LEN) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp->secret_z85, COORD_KEY_Z85_LEN) != 0) {
		LOG_WARN("client: cannot set CURVE keys: %s", zmq_strerror(zmq_errno()));
		return -1;
	}
	return 0;
}

/* What a failed handshake means, for the person reading the error. */
static const char *handshake_text(int event, uint32_t value, int have_key, int *err)
{
	*err = COORD_ENOAUTH;
	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && value == 500) {
		*err = COORD_ELIMIT;
		return "server refused the connection: too many connections from this address (maxClientCnxns)";
	}
	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
		return have_key ? "server refused our key (not authorised)"
				: "server refused the connection (not authorised)";
	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
		return have_key ? "handshake failed: the server does not use CURVE keys (auth=none?)"
				: "handshake failed: the server requires a key (give --key and --server-key, "
				  "or COORD_KEY and COORD_SERVER_KEY, or -o key=FILE,serverkey=FILE)";
	return have_key ? "handshake failed: the server closed it (is the server key the ensemble's?)"
			: "handshake failed: the server closed it (if the server requires a key, give --key and "
			  "--server-key, or COORD_KEY and COORD_SERVER_KEY, or -o key=FILE,serverkey=FILE)";
}

/* ------------------------------------------------------------------ small helpers */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on c->cv until woken or the monotonic deadline passes (deadline < 0: no deadline). */
static void cv_wait_until(struct coord_client *c, int64_t deadline)
{
	if (deadline < 0) {
		pthread_cond_wait(&c->cv, &c->mu);
		return;
	}
	struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
	pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

static void wake(struct coord_client *c)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is already nonzero: the thread is woken anyway. */
	if (write(c->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		LOG_WARN("client: eventfd write: %s", strerror(errno));
}

static void copy_msg(char *dst, size_t n, int err, struct slice msg)
{
	if (err == 0) {
		dst[0] = '\0';
	} else if (msg.len > 0) {
		size_t k = msg.len < n - 1 ? msg.len : n - 1;
		memcpy(dst, msg.p, k);
		dst[k] = '\0';
	} else {
		snprintf(dst, n, "%s", coord_strerror(err));
	}
}

static int attempt_window_ms(const struct coord_client *c, int timeout_ms)
{
	int w = timeout_ms / 3;
	if (c->connect_timeout_ms > 0 && c->connect_timeout_ms < w)
		w = c->connect_timeout_ms;
	return w < MIN_ATTEMPT_MS ? MIN_ATTEMPT_MS : w;
}

/* ------------------------------------------------------------------ host list */

static int parse_port(const char *p, size_t n, int *port)
{
	if (n == 0 || n > 5)
		return -1;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

static int parse_one_host(const char *e, size_t n, struct coord_hostport *hp, char *err, size_t errlen)
{
	const char *host = e, *port = NULL;
	size_t hlen = n, plen = 0;
	if (n > 0 && e[0] == '[') {
		const char *close = memchr(e, ']', n);
		if (!close) {
			snprintf(err, errlen, "'%.*s': missing ']'", (int)n, e);
			return COORD_EBADARG;
		}
		host = e + 1;
		hlen = (size_t)(close - host);
		size_t rest = n - (size_t)(close + 1 - e);
		if (rest > 0) {
			if (close[1] != ':') {
				snprintf(err, errlen, "'%.*s': expected ':' after ']'", (int)n, e);
				return COORD_EBADARG;
			}
			port = close + 2;
			plen = rest - 1;
		}
	} else {
		const char *colon = memchr(e, ':', n);
		if (colon) {
			if (memchr(colon + 1, ':', n - (size_t)(colon + 1 - e))) {
				snprintf(err, errlen, "'%.*s': an IPv6 address goes in brackets, as [::1]:2181",
					 (int)n, e);
				return COORD_EBADARG;
			}
			hlen = (size_t)(colon - e);
			port = colon + 1;
			plen = n - hlen - 1;
		}
	}
	if (hlen == 0) {
		snprintf(err, errlen, "'%.*s': empty host name", (int)n, e);
		return COORD_EBADARG;
	}
	if (hlen >= COORD_HOSTNAME_MAX) {
		snprintf(err, errlen, "host name longer than %d bytes", COORD_HOSTNAME_MAX - 1);
		return COORD_EBADARG;
	}
	for (size_t i = 0; i < hlen; i++) {
		unsigned char ch = (unsigned char)host[i];
		if (ch <= ' ' || ch == '/' || ch == 0x7f) {
			snprintf(err, errlen, "'%.*s': invalid character in host name", (int)n, e);
			return COORD_EBADARG;
		}
	}
	memcpy(hp->host, host, hlen);
	hp->host[hlen] = '\0';
	hp->port = COORD_DEFAULT_PORT;
	if (port && parse_port(port, plen, &hp->port)) {
		snprintf(err, errlen, "'%.*s': port must be a number from 1 to 65535", (int)n, e);
		return COORD_EBADARG;
	}
	return COORD_OK;
}

int coord_hosts_parse(const char *s, struct coord_hostport **out, size_t *n, char *err, size_t errlen)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	*out = NULL;
	*n = 0;
	if (!s) {
		snprintf(err, errlen, "no servers given");
		return COORD_EBADARG;
	}
	size_t cap = 1;
	for (const char *p = s; *p; p++)
		cap += *p == ',';
	struct coord_hostport *hps = calloc(cap, sizeof(*hps));
	if (!hps) {
		snprintf(err, errlen, "out of memory");
		return COORD_ENOMEM;
	}
	size_t k = 0;
	const char *p = s;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *e = p;
		while (len > 0 && (*e == ' ' || *e == '\t')) {
			e++;
			len--;
		}
		while (len > 0 && (e[len - 1] == ' ' || e[len - 1] == '\t'))
			len--;
		if (len == 0) {
			snprintf(err, errlen, "empty entry in server list '%s'", s);
			free(hps);
			return COORD_EBADARG;
		}
		int rc = parse_one_host(e, len, &hps[k], err, errlen);
		if (rc) {
			free(hps);
			return rc;
		}
		k++;
		if (!end)
			break;
		p = end + 1;
	}
	*out = hps;
	*n = k;
	return COORD_OK;
}

/* ------------------------------------------------------------------ pending queue */

void coord_pq_init(struct coord_pqueue *q, uint64_t first_xid)
{
	memset(q, 0, sizeof(*q));
	q->next_xid = first_xid ? first_xid : 1;
}

uint64_t coord_pq_ack(const struct coord_pqueue *q) { return q->head ? q->head->xid : q->next_xid; }

uint64_t coord_pq_push(struct coord_pqueue *q, struct coord_pending *p)
{
	p->xid = q->next_xid++;
	p->next = NULL;
	if (q->tail)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	if (!q->unsent)
		q->unsent = p;
	q->count++;
	return p->xid;
}

struct coord_pending *coord_pq_find(const struct coord_pqueue *q, uint64_t xid)
{
	for (struct coord_pending *p = q->head; p; p = p->next)
		if (p->xid == xid)
			return p;
	return NULL;
}

struct coord_pending *coord_pq_take(struct coord_pqueue *q, uint64_t xid)
{
	/* Replies come in xid order, so this is almost always the head: O(1) in practice. */
	struct coord_pending *prev = NULL, *p = q->head;
	while (p && p->xid != xid) {
		prev = p;
		p = p->next;
	}
	if (!p)
		return NULL;
	if (q->unsent == p)
		q->unsent = p->next;
	if (prev)
		prev->next = p->next;
	else
		q->head = p->next;
	if (q->tail == p)
		q->tail = prev;
	q->count--;
	p->next = NULL;
	return p;
}

struct coord_pending *coord_pq_next_unsent(const struct coord_pqueue *q) { return q->unsent; }

void coord_pq_sent(struct coord_pqueue *q)
{
	if (q->unsent)
		q->unsent = q->unsent->next;
}

void coord_pq_rewind(struct coord_pqueue *q) { q->unsent = q->head; }

struct coord_pending *coord_pq_take_all(struct coord_pqueue *q)
{
	struct coord_pending *all = q->head;
	q->head = q->tail = q->unsent = NULL;
	q->count = 0;
	return all;
}

void coord_pending_free(struct coord_pending *p)
{
	if (!p)
		return;
	free(p->wpath);
	free(p->frame);
	free(p);
}

/* ------------------------------------------------------------------ watch sets */

struct coord_wnode {
	struct coord_wnode *next;
	uint64_t hash;
	char path[];
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

void coord_wset_init(struct coord_wset *s) { memset(s, 0, sizeof(*s)); }

void coord_wset_free(struct coord_wset *s)
{
	for (size_t i = 0; i < s->nslots; i++) {
		struct coord_wnode *n = s->slots[i];
		while (n) {
			struct coord_wnode *next = n->next;
			free(n);
			n = next;
		}
	}
	free(s->slots);
	coord_wset_init(s);
}

static struct coord_wnode **wset_slot(const struct coord_wset *s, const char *path, uint64_t h)
{
	struct coord_wnode **pp = &s->slots[h & (s->nslots - 1)];
	while (*pp && ((*pp)->hash != h || strcmp((*pp)->path, path) != 0))
		pp = &(*pp)->next;
	return pp;
}

int coord_wset_has(const struct coord_wset *s, const char *path)
{
	return s->nslots && *wset_slot(s, path, fnv1a(path)) != NULL;
}

static int wset_grow(struct coord_wset *s)
{
	size_t nn = s->nslots ? s->nslots * 2 : 16;
	struct coord_wnode **ns = calloc(nn, sizeof(*ns));
	if (!ns)
		return -1;
	for (size_t i = 0; i < s->nslots; i++) {
		struct coord_wnode *n = s->slots[i];
		while (n) {
			struct coord_wnode *next = n->next;
			n->next = ns[n->hash & (nn - 1)];
			ns[n->hash & (nn - 1)] = n;
			n = next;
		}
	}
	free(s->slots);
	s->slots = ns;
	s->nslots = nn;
	return 0;
}

int coord_wset_add(struct coord_wset *s, const char *path)
{
	uint64_t h = fnv1a(path);
	if (s->nslots && *wset_slot(s, path, h))
		return 1;
	if (s->count + 1 > s->nslots && wset_grow(s))
		return -1;
	size_t len = strlen(path);
	struct coord_wnode *n = malloc(sizeof(*n) + len + 1);
	if (!n)
		return -1;
	n->hash = h;
	memcpy(n->path, path, len + 1);
	n->next = s->slots[h & (s->nslots - 1)];
	s->slots[h & (s->nslots - 1)] = n;
	s->count++;
	return 0;
}

int coord_wset_del(struct coord_wset *s, const char *path)
{
	if (!s->nslots)
		return 0;
	struct coord_wnode **pp = wset_slot(s, path, fnv1a(path));
	if (!*pp)
		return 0;
	struct coord_wnode *n = *pp;
	*pp = n->next;
	free(n);
	s->count--;
	return 1;
}

int coord_wset_each(const struct coord_wset *s, int (*fn)(void *arg, const char *path), void *arg)
{
	for (size_t i = 0; i < s->nslots; i++)
		for (struct coord_wnode *n = s->slots[i]; n; n = n->next) {
			int rc = fn(arg, n->path);
			if (rc)
				return rc;
		}
	return 0;
}

/* ------------------------------------------------------------------ results */

void coord_result_free(struct coord_result *res)
{
	if (!res)
		return;
	coord_reply_clear(&res->rep);
	free(res->frame);
	res->frame = NULL;
	res->len = 0;
}

/* A result for a request that got no reply (session expired, client closing). */
static struct coord_result *local_result(int err, const char *msg)
{
	struct coord_result *res = calloc(1, sizeof(*res));
	if (!res)
		return NULL;
	res->err = err;
	res->rep.err = err;
	res->rep.kind = COORD_MSG_REPLY;
	res->rep.fail_index = -1;
	snprintf(res->msg, sizeof(res->msg), "%s", msg && *msg ? msg : coord_strerror(err));
	return res;
}

static void fail_list(struct coord_pending *list, int err, const char *msg)
{
	while (list) {
		struct coord_pending *next = list->next;
		struct coord_result *res = local_result(err, msg);
		if (res && list->done)
			list->done(list->arg, res);
		else if (res)
			free(res);
		else
			LOG_ERROR("client: out of memory failing request xid %llu", (unsigned long long)list->xid);
		coord_pending_free(list);
		list = next;
	}
}

/* ------------------------------------------------------------------ state and sockets */

static void notify_state(struct coord_client *c, int st)
{
	if (c->notified_state == st)
		return;
	c->notified_state = st;
	if (c->on_state)
		c->on_state(c->cb_arg, st);
}

static void set_state(struct coord_client *c, int st)
{
	pthread_mutex_lock(&c->mu);
	c->state = st;
	if (st != COORD_STATE_CONNECTED)
		c->server[0] = '\0';
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	notify_state(c, st);
}

static void close_socket(struct coord_client *c)
{
	if (c->sock) {
		zmq_socket_monitor(c->sock, NULL, 0);
		zmq_close(c->sock);
		c->sock = NULL;
	}
	if (c->mon) {
		zmq_close(c->mon);
		c->mon = NULL;
	}
	c->send_blocked = 0;
	c->ping_out = 0;
}

static void free_addrs(struct coord_client *c)
{
	for (size_t i = 0; i < c->naddrs; i++)
		free(c->addrs[i]);
	free(c->addrs);
	c->addrs = NULL;
	c->naddrs = c->addr_idx = 0;
}

/* Resolve hosts[host_idx] now (names may have moved since the last visit: ZOOKEEPER-2184). */
static int resolve_host(struct coord_client *c)
{
	const struct coord_hostport *hp = &c->hosts[c->host_idx];
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(hp->host, NULL, &hints, &res);
	if (rc) {
		LOG_WARN("client: cannot resolve %s: %s", hp->host, gai_strerror(rc));
		pthread_mutex_lock(&c->mu);
		c->open_err = COORD_ECONNLOSS;
		snprintf(c->open_msg, sizeof(c->open_msg), "cannot resolve %s: %s", hp->host, gai_strerror(rc));
		pthread_mutex_unlock(&c->mu);
		return -1;
	}
	size_t n = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next)
		n++;
	c->addrs = calloc(n ? n : 1, sizeof(char *));
	c->naddrs = 0;
	for (struct addrinfo *a = res; a && c->addrs; a = a->ai_next) {
		char ip[INET6_ADDRSTRLEN], ep[INET6_ADDRSTRLEN + 32];
		if (a->ai_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, ip, sizeof(ip));
			snprintf(ep, sizeof(ep), "tcp://%s:%d", ip, hp->port);
		} else if (a->ai_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, ip, sizeof(ip));
			snprintf(ep, sizeof(ep), "tcp://[%s]:%d", ip, hp->port);
		} else {
			continue;
		}
		int dup = 0;
		for (size_t i = 0; i < c->naddrs; i++)
			dup |= strcmp(c->addrs[i], ep) == 0;
		if (!dup && (c->addrs[c->naddrs] = strdup(ep)) != NULL)
			c->naddrs++;
	}
	freeaddrinfo(res);
	c->addr_idx = 0;
	if (c->naddrs == 0) {
		free_addrs(c);
		LOG_WARN("client: %s has no usable address", hp->host);
		return -1;
	}
	return 0;
}

/* Go on to the next host: after a whole round of failures, pause before the next round. */
static void next_host(struct coord_client *c, int failed)
{
	free_addrs(c);
	c->host_idx = (c->host_idx + 1) % c->nhosts;
	c->phase = PH_IDLE;
	c->deadline = now_ms();
	if (!failed) {
		c->failed_hosts = 0;
		return;
	}
	if (++c->failed_hosts >= c->nhosts) {
		c->failed_hosts = 0;
		c->deadline += c->backoff_ms;
		c->backoff_ms = c->backoff_ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : c->backoff_ms * 2;
	}
}

/* This address did not work out: try the host's next address, or the next host. */
static void attempt_failed(struct coord_client *c)
{
	close_socket(c);
	if (c->addrs && c->addr_idx + 1 < c->naddrs) {
		c->addr_idx++;
		c->phase = PH_IDLE;
		c->deadline = now_ms();
		return;
	}
	next_host(c, 1);
}

/* The connected server went away (or misbehaved): the session lives on, find another member. */
static void drop_connection(struct coord_client *c, const char *why)
{
	LOG_WARN("client: leaving %s:%d: %s", c->hosts[c->host_idx].host, c->hosts[c->host_idx].port, why);
	int was_connected = c->phase == PH_CONNECTED;
	close_socket(c);
	/*
	 * A connection that lasted is a server that went away: try the next one at once. One that
	 * broke right after the handshake (a member that accepts sessions but cannot serve them)
	 * counts as a failed attempt, so the pause between rounds grows instead of a hot loop of
	 * CONNECT and resends.
	 */
	int lasted = now_ms() - c->connected_at >= FLAP_MS;
	if (lasted)
		c->backoff_ms = FIRST_BACKOFF_MS;
	next_host(c, !lasted);
	if (was_connected)
		set_state(c, COORD_STATE_CONNECTING);
}

static void *make_socket(struct coord_client *c, void **mon)
{
	void *s = zmq_socket(c->zctx, ZMQ_DEALER);
	if (!s)
		return NULL;
	int zero = 0, one = 1;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one));
	zmq_setsockopt(s, ZMQ_IPV6, &one, sizeof(one));
	curve_client(s, &c->key, c->server_key);
	*mon = NULL;
	char ep[96];
	snprintf(ep, sizeof(ep), "inproc://coord-client-mon-%p-%u", (void *)c, c->mon_seq++);
	if (zmq_socket_monitor(s, ep, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
				       ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_CLOSED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
				       ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0) {
		void *m = zmq_socket(c->zctx, ZMQ_PAIR);
		if (m) {
			zmq_setsockopt(m, ZMQ_LINGER, &zero, sizeof(zero));
			if (zmq_connect(m, ep) == 0)
				*mon = m;
			else
				zmq_close(m);
		}
	}
	if (!*mon) /* still works, just slower to notice a dead peer (heartbeats catch it) */
		LOG_WARN("client: no socket monitor: %s", zmq_strerror(zmq_errno()));
	return s;
}

static void start_attempt(struct coord_client *c)
{
	if (!c->addrs && resolve_host(c)) {
		next_host(c, 1);
		return;
	}
	c->sock = make_socket(c, &c->mon);
	if (!c->sock || zmq_connect(c->sock, c->addrs[c->addr_idx]) != 0) {
		LOG_WARN("client: connect %s: %s", c->addrs[c->addr_idx], zmq_strerror(zmq_errno()));
		attempt_failed(c);
		return;
	}
	pthread_mutex_lock(&c->mu);
	int t = c->timeout_ms;
	pthread_mutex_unlock(&c->mu);
	LOG_DEBUG("client: trying %s (%s:%d)", c->addrs[c->addr_idx], c->hosts[c->host_idx].host,
		  c->hosts[c->host_idx].port);
	c->phase = PH_WAIT_OUT;
	c->deadline = now_ms() + attempt_window_ms(c, t);
}

static int send_control(struct coord_client *c, struct coord_req *req)
{
	struct buf b;
	buf_init(&b);
	req->xid = CONTROL_XID;
	pthread_mutex_lock(&c->mu);
	req->ack = coord_pq_ack(&c->pq);
	pthread_mutex_unlock(&c->mu);
	int rc = coord_req_encode(&b, req);
	if (rc == 0 && b.oom)
		rc = COORD_ENOMEM;
	if (rc == 0 && zmq_send(c->sock, b.p, b.len, ZMQ_DONTWAIT) < 0)
		rc = zmq_errno() == EAGAIN ? COORD_ELIMIT : COORD_EIO;
	if (rc == 0)
		c->last_send = now_ms();
	buf_free(&b);
	return rc;
}

static void try_send_connect(struct coord_client *c)
{
	struct coord_req req;
	memset(&req, 0, sizeof(req));
	req.op = COORD_OP_CONNECT;
	pthread_mutex_lock(&c->mu);
	req.session_id = c->session_id;
	memcpy(req.passwd, c->passwd, COORD_PASSWD_LEN);
	req.timeout_ms = (uint32_t)c->timeout_ms;
	req.last_zxid = c->last_zxid;
	pthread_mutex_unlock(&c->mu);
	int rc = send_control(c, &req);
	if (rc == COORD_ELIMIT) /* not connected yet: wait for POLLOUT */
		return;
	if (rc) {
		LOG_WARN("client: sending CONNECT to %s failed: %s", c->addrs[c->addr_idx], coord_strerror(rc));
		attempt_failed(c);
		return;
	}
	c->phase = PH_HANDSHAKE;
}

/* ------------------------------------------------------------------ watches */

struct sw_ctx {
	struct coord_client *c;
	struct buf lists[4];
	uint64_t rel;   /* the newest zxid seen before this connection */
	int err;
};

static int sw_flush(struct sw_ctx *x)
{
	struct coord_req req;
	memset(&req, 0, sizeof(req));
	req.op = COORD_OP_SETWATCHES;
	req.last_zxid = x->rel;
	req.data_watches = slice_of(x->lists[0].p, x->lists[0].len);
	req.child_watches = slice_of(x->lists[1].p, x->lists[1].len);
	req.persistent = slice_of(x->lists[2].p, x->lists[2].len);
	req.recursive = slice_of(x->lists[3].p, x->lists[3].len);
	int rc = send_control(x->c, &req);
	for (int i = 0; i < 4; i++)
		buf_reset(&x->lists[i]);
	return rc;
}

static int sw_add(struct sw_ctx *x, int which, const char *path)
{
	/* Each path NUL-terminated, the form LIST uses for names. */
	buf_put(&x->lists[which], path, strlen(path) + 1);
	if (x->lists[which].oom)
		return COORD_ENOMEM;
	size_t total = 0;
	for (int i = 0; i < 4; i++)
		total += x->lists[i].len;
	return total >= SETWATCHES_CHUNK ? sw_flush(x) : 0;
}

static int sw_data(void *a, const char *p) { return sw_add(a, 0, p); }
static int sw_child(void *a, const char *p) { return sw_add(a, 1, p); }
static int sw_pers(void *a, const char *p) { return sw_add(a, 2, p); }
static int sw_rec(void *a, const char *p) { return sw_add(a, 3, p); }

/* After connecting to a member that does not hold our watches: re-arm them all, relative to the
 * last zxid we saw, so the server fires whatever we missed while away. */
static void send_setwatches(struct coord_client *c, uint64_t rel)
{
	if (!c->w_data.count && !c->w_child.count && !c->w_pers.count && !c->w_rec.count)
		return;
	struct sw_ctx x;
	memset(&x, 0, sizeof(x));
	x.c = c;
	x.rel = rel;
	for (int i = 0; i < 4; i++)
		buf_init(&x.lists[i]);
	int rc = coord_wset_each(&c->w_data, sw_data, &x);
	if (!rc)
		rc = coord_wset_each(&c->w_child, sw_child, &x);
	if (!rc)
		rc = coord_wset_each(&c->w_pers, sw_pers, &x);
	if (!rc)
		rc = coord_wset_each(&c->w_rec, sw_rec, &x);
	size_t left = 0;
	for (int i = 0; i < 4; i++)
		left += x.lists[i].len;
	if (!rc && left)
		rc = sw_flush(&x);
	for (int i = 0; i < 4; i++)
		buf_free(&x.lists[i]);
	if (rc) /* the events of this reconnect may be lost: say so loudly, then start over */
		drop_connection(c, "could not re-arm watches");
}

/* A reply to a watching request: remember the watch so a reconnect can re-arm it. */
static void track_watch(struct coord_client *c, const struct coord_pending *p, int err)
{
	if (!p->wpath)
		return;
	int rc = 0;
	switch (p->op) {
	case COORD_OP_GET:
		if (err == COORD_OK)
			rc = coord_wset_add(&c->w_data, p->wpath);
		break;
	case COORD_OP_EXISTS: /* an exists watch on a missing node waits for its creation */
		if (err == COORD_OK || err == COORD_ENONODE)
			rc = coord_wset_add(&c->w_data, p->wpath);
		break;
	case COORD_OP_LIST:
		if (err == COORD_OK)
			rc = coord_wset_add(&c->w_child, p->wpath);
		break;
	case COORD_OP_ADDWATCH:
		if (err == COORD_OK)
			rc = coord_wset_add(p->watch == COORD_WATCH_PERSISTENT_RECURSIVE ? &c->w_rec : &c->w_pers,
					    p->wpath);
		break;
	case COORD_OP_REMOVEWATCH:
		/* Whatever the server said, it holds no such watch afterwards. */
		if (p->watch == COORD_WATCH_ONESHOT) {
			coord_wset_del(&c->w_data, p->wpath);
			coord_wset_del(&c->w_child, p->wpath);
		} else if (p->watch == COORD_WATCH_PERSISTENT) {
			coord_wset_del(&c->w_pers, p->wpath);
		} else if (p->watch == COORD_WATCH_PERSISTENT_RECURSIVE) {
			coord_wset_del(&c->w_rec, p->wpath);
		}
		break;
	}
	if (rc < 0)
		LOG_ERROR("client: out of memory tracking the watch on %s: it will not survive a reconnect",
			  p->wpath);
}

/* One-shot watches end when they fire (ZooKeeper's rules for which event ends which watch). */
static void untrack_fired(struct coord_client *c, int type, const char *path)
{
	switch (type) {
	case COORD_EV_CREATED:
	case COORD_EV_CHANGED:
		coord_wset_del(&c->w_data, path);
		break;
	case COORD_EV_DELETED:
		coord_wset_del(&c->w_data, path);
		coord_wset_del(&c->w_child, path);
		break;
	case COORD_EV_CHILDREN:
		coord_wset_del(&c->w_child, path);
		break;
	}
}

/* ------------------------------------------------------------------ receiving */

static void see_zxid(struct coord_client *c, uint64_t zxid)
{
	pthread_mutex_lock(&c->mu);
	if (zxid > c->last_zxid)
		c->last_zxid = zxid;
	pthread_mutex_unlock(&c->mu);
}

static void expire(struct coord_client *c, const char *why)
{
	LOG_WARN("client: session 0x%llx expired: %s", (unsigned long long)c->session_id, why);
	close_socket(c);
	free_addrs(c);
	c->phase = PH_DEAD;
	pthread_mutex_lock(&c->mu);
	/* Refuse new requests before failing the pending ones: a request queued after the take
	 * below would never be sent (PH_DEAD) nor failed, and its caller would wait forever. */
	c->state = COORD_STATE_EXPIRED;
	struct coord_pending *all = coord_pq_take_all(&c->pq);
	c->open_err = COORD_ESESSIONEXPIRED;
	snprintf(c->open_msg, sizeof(c->open_msg), "%s", why);
	pthread_mutex_unlock(&c->mu);
	fail_list(all, COORD_ESESSIONEXPIRED, why);
	set_state(c, COORD_STATE_EXPIRED);
}

static void handle_connect_reply(struct coord_client *c, const void *f, size_t len)
{
	struct coord_reply rep;
	char eb[160], msg[256];
	if (coord_reply_decode(f, len, COORD_OP_CONNECT, &rep, eb, sizeof(eb))) {
		LOG_WARN("client: bad CONNECT reply from %s: %s", c->addrs[c->addr_idx], eb);
		attempt_failed(c);
		return;
	}
	copy_msg(msg, sizeof(msg), rep.err, rep.msg);
	if (rep.err == COORD_ESESSIONEXPIRED) {
		coord_reply_clear(&rep);
		expire(c, msg);
		return;
	}
	pthread_mutex_lock(&c->mu);
	uint64_t seen = c->last_zxid;
	pthread_mutex_unlock(&c->mu);
	if (rep.err == COORD_OK && rep.zxid != 0 && rep.zxid < seen) {
		/* The server should have said ENOTREADY; never attach to a member behind us anyway. */
		rep.err = COORD_ENOTREADY;
		snprintf(msg, sizeof(msg), "server is at zxid 0x%llx, behind 0x%llx already seen",
			 (unsigned long long)rep.zxid, (unsigned long long)seen);
	}
	if (rep.err != COORD_OK) {
		LOG_INFO("client: %s refused the session: %s", c->addrs[c->addr_idx], msg);
		pthread_mutex_lock(&c->mu);
		c->open_err = rep.err == COORD_ENOTREADY ? COORD_ECONNLOSS : rep.err;
		snprintf(c->open_msg, sizeof(c->open_msg), "%s:%d: %s", c->hosts[c->host_idx].host,
			 c->hosts[c->host_idx].port, msg);
		pthread_mutex_unlock(&c->mu);
		coord_reply_clear(&rep);
		attempt_failed(c);
		return;
	}
	int64_t now = now_ms();
	pthread_mutex_lock(&c->mu);
	c->session_id = rep.session_id;
	memcpy(c->passwd, rep.passwd, COORD_PASSWD_LEN);
	if (rep.timeout_ms)
		c->timeout_ms = (int)rep.timeout_ms;
	c->server_id = rep.server_id;
	c->max_data = rep.max_data ? rep.max_data : COORD_MAX_DATA;
	snprintf(c->principal, sizeof(c->principal), "%.*s", (int)rep.principal.len, (const char *)rep.principal.p);
	/*
	 * Not max(last_zxid, rep.zxid): the member's zxid covers changes whose events we have not
	 * received, and SETWATCHES below must ask for everything after what we actually saw.
	 */
	c->ever_connected = 1;
	snprintf(c->server, sizeof(c->server), "%s:%d", c->hosts[c->host_idx].host, c->hosts[c->host_idx].port);
	coord_pq_rewind(&c->pq);
	size_t resend = c->pq.count;
	pthread_mutex_unlock(&c->mu);
	LOG_INFO("client: session 0x%llx on %s (server %u, timeout %d ms, %zu to resend)",
		 (unsigned long long)rep.session_id, c->addrs[c->addr_idx], rep.server_id,
		 rep.timeout_ms ? (int)rep.timeout_ms : -1, resend);
	c->phase = PH_CONNECTED;
	c->connected_at = now;
	c->last_recv = c->last_send = now;
	c->ping_out = 0;
	int kept = rep.watches_kept;
	coord_reply_clear(&rep);
	/* Relative to what we saw before this connection: the CONNECT reply's zxid says only where
	 * the member is, not which events reached us. */
	if (!kept)
		send_setwatches(c, seen);
	if (c->phase == PH_CONNECTED)
		set_state(c, COORD_STATE_CONNECTED);
}

static void handle_event(struct coord_client *c, const void *f, size_t len)
{
	struct coord_reply rep;
	char eb[160];
	if (coord_reply_decode(f, len, 0, &rep, eb, sizeof(eb))) {
		LOG_WARN("client: undecodable event dropped: %s", eb);
		return;
	}
	see_zxid(c, rep.zxid);
	char path[COORD_MAX_PATH + 1];
	size_t n = rep.ev_path.len < COORD_MAX_PATH ? rep.ev_path.len : COORD_MAX_PATH;
	if (n)
		memcpy(path, rep.ev_path.p, n);
	path[n] = '\0';
	untrack_fired(c, rep.ev_type, path);
	if (c->on_event) {
		struct coord_event ev = {rep.ev_type, path, rep.zxid};
		c->on_event(c->cb_arg, &ev);
	}
	coord_reply_clear(&rep);
}

/* A member that cannot serve now: the request was not applied there; resend it elsewhere. */
static int is_retry_elsewhere(int err)
{
	return err == COORD_ENOTREADY || err == COORD_ECONNLOSS || err == COORD_ETIMEOUT;
}

/* xid 0: the reply to a PING or SETWATCHES. */
static void handle_control_reply(struct coord_client *c, uint8_t op, const void *f, size_t len)
{
	struct coord_reply rep;
	char eb[160], msg[256];
	if (op != COORD_OP_PING && op != COORD_OP_SETWATCHES) {
		LOG_WARN("client: unexpected %s reply with xid 0", coord_op_name(op));
		return;
	}
	if (coord_reply_decode(f, len, op, &rep, eb, sizeof(eb))) {
		LOG_WARN("client: bad %s reply: %s", coord_op_name(op), eb);
		return;
	}
	see_zxid(c, rep.zxid);
	copy_msg(msg, sizeof(msg), rep.err, rep.msg);
	int err = rep.err;
	coord_reply_clear(&rep);
	if (err == COORD_ESESSIONEXPIRED)
		expire(c, msg);
	else if (is_retry_elsewhere(err))
		drop_connection(c, msg); /* e.g. watches not re-armed here: try a member that can */
	else if (err && op == COORD_OP_SETWATCHES)
		LOG_ERROR("client: re-arming watches failed, events may be lost: %s", msg);
	else if (err)
		LOG_WARN("client: %s failed: %s", coord_op_name(op), msg);
}

static void handle_reply(struct coord_client *c, uint64_t xid, uint8_t op, const void *f, size_t len)
{
	pthread_mutex_lock(&c->mu);
	struct coord_pending *p = coord_pq_find(&c->pq, xid);
	uint8_t sent_op = p ? p->op : 0;
	pthread_mutex_unlock(&c->mu);
	if (!p) {
		LOG_WARN("client: reply to unknown xid %llu (%s) dropped", (unsigned long long)xid,
			 coord_op_name(op));
		return;
	}
	if (sent_op != op) {
		char why[128];
		snprintf(why, sizeof(why), "protocol error: reply to xid %llu is %s, the request was %s",
			 (unsigned long long)xid, coord_op_name(op), coord_op_name(sent_op));
		drop_connection(c, why);
		return;
	}
	struct coord_result *res = calloc(1, sizeof(*res));
	void *copy = malloc(len ? len : 1);
	if (!res || !copy) {
		/* Leave it pending: a reconnect resends it and the server answers from its cache. */
		free(res);
		free(copy);
		drop_connection(c, "out of memory for a reply");
		return;
	}
	memcpy(copy, f, len);
	res->frame = copy;
	res->len = len;
	char eb[160];
	if (coord_reply_decode(copy, len, op, &res->rep, eb, sizeof(eb))) {
		/* Fail just this request rather than loop: the stream itself is still in step. */
		LOG_WARN("client: bad %s reply (xid %llu): %s", coord_op_name(op), (unsigned long long)xid, eb);
		res->err = COORD_EPROTO;
		res->rep.err = COORD_EPROTO;
		res->rep.fail_index = -1;
		snprintf(res->msg, sizeof(res->msg), "malformed reply: %s", eb);
	} else {
		res->err = res->rep.err;
		copy_msg(res->msg, sizeof(res->msg), res->err, res->rep.msg);
		see_zxid(c, res->rep.zxid);
		if (res->err == COORD_ESESSIONEXPIRED) {
			char msg[256];
			snprintf(msg, sizeof(msg), "%s", res->msg);
			coord_result_free(res);
			free(res);
			expire(c, msg);
			return;
		}
		if (is_retry_elsewhere(res->err)) {
			char why[300];
			snprintf(why, sizeof(why), "%s for %s: %s", coord_errname(res->err), coord_op_name(op), res->msg);
			coord_result_free(res);
			free(res);
			drop_connection(c, why);
			return;
		}
	}
	pthread_mutex_lock(&c->mu);
	coord_pq_take(&c->pq, xid);
	pthread_mutex_unlock(&c->mu);
	track_watch(c, p, res->err);
	if (op == COORD_OP_CLOSE && res->err == COORD_OK) {
		close_socket(c);
		free_addrs(c);
		c->phase = PH_DEAD;
		set_state(c, COORD_STATE_CLOSED);
	}
	if (p->done)
		p->done(p->arg, res);
	else {
		coord_result_free(res);
		free(res);
	}
	coord_pending_free(p);
}

static void handle_frame(struct coord_client *c, const void *f, size_t len)
{
	uint8_t kind = 0, op = 0;
	uint64_t xid = 0;
	if (coord_reply_peek(f, len, &kind, &xid, &op)) {
		if (c->phase == PH_HANDSHAKE)
			attempt_failed(c);
		else
			drop_connection(c, "protocol error: unreadable message header");
		return;
	}
	c->last_recv = now_ms();
	c->ping_out = 0;
	if (c->phase == PH_HANDSHAKE) {
		if (kind == COORD_MSG_REPLY && op == COORD_OP_CONNECT)
			handle_connect_reply(c, f, len);
		else
			LOG_DEBUG("client: %s before the CONNECT reply ignored", coord_op_name(op));
		return;
	}
	if (c->phase != PH_CONNECTED)
		return;
	if (kind == COORD_MSG_EVENT)
		handle_event(c, f, len);
	else if (kind != COORD_MSG_REPLY)
		drop_connection(c, "protocol error: unknown message kind");
	else if (xid == CONTROL_XID)
		handle_control_reply(c, op, f, len);
	else
		handle_reply(c, xid, op, f, len);
}

static void recv_all(struct coord_client *c)
{
	void *s = c->sock;
	while (c->sock == s && s) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		int more = zmq_msg_more(&m);
		handle_frame(c, zmq_msg_data(&m), zmq_msg_size(&m));
		zmq_msg_close(&m);
		/* One frame is one message; drop any stray extra parts. */
		while (more && c->sock == s) {
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&m);
				break;
			}
			more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		}
	}
}

static void monitor_events(struct coord_client *c)
{
	void *m = c->mon;
	while (c->mon == m && m) {
		zmq_msg_t ev, addr;
		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, m, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			break;
		}
		uint16_t event = 0;
		uint32_t value = 0;
		if (zmq_msg_size(&ev) >= 6) {
			memcpy(&event, zmq_msg_data(&ev), 2);
			memcpy(&value, (const uint8_t *)zmq_msg_data(&ev) + 2, 4);
		}
		int more = zmq_msg_more(&ev);
		zmq_msg_close(&ev);
		if (more) { /* the endpoint frame */
			zmq_msg_init(&addr);
			zmq_msg_recv(&addr, m, 0);
			zmq_msg_close(&addr);
		}
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			pthread_mutex_lock(&c->mu);
			c->refused = c->closed = 0;
			pthread_mutex_unlock(&c->mu);
		} else if ((event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
			    event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) &&
			   (c->phase == PH_WAIT_OUT || c->phase == PH_HANDSHAKE)) {
			/* ZeroMQ answers nothing on a refused handshake: its monitor is the only one to say why. */
			int err;
			const char *why = handshake_text(event, value, c->key.secret_z85[0] != 0, &err);
			if (!(c->refused_said & event) && (event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || c->key.secret_z85[0]))
				LOG_WARN("client: %s:%d: %s", c->hosts[c->host_idx].host, c->hosts[c->host_idx].port, why);
			c->refused_said |= event;
			pthread_mutex_lock(&c->mu);
			c->open_err = err;
			snprintf(c->open_msg, sizeof(c->open_msg), "%s:%d: %s", c->hosts[c->host_idx].host,
				 c->hosts[c->host_idx].port, why);
			/* A plaintext connection closed mid-handshake is most often a CURVE server that saw our
			 * greeting before sending its own (else it says "mechanism mismatch"), but may be a
			 * server going down: only three rounds of it count as a refusal. */
			if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && !c->key.secret_z85[0])
				c->closed++;
			else
				c->refused++;
			if (c->refused >= (int)c->nhosts || c->closed >= 3 * (int)c->nhosts)
				pthread_cond_broadcast(&c->cv); /* coord_client_open need not wait any longer */
			pthread_mutex_unlock(&c->mu);
			attempt_failed(c);
		} else if (event == ZMQ_EVENT_CONNECT_RETRIED && c->phase == PH_WAIT_OUT) {
			LOG_DEBUG("client: %s refused the connection", c->addrs[c->addr_idx]);
			pthread_mutex_lock(&c->mu);
			c->open_err = COORD_ECONNLOSS;
			snprintf(c->open_msg, sizeof(c->open_msg), "%s:%d (%s) refused the connection",
				 c->hosts[c->host_idx].host, c->hosts[c->host_idx].port, c->addrs[c->addr_idx]);
			pthread_mutex_unlock(&c->mu);
			attempt_failed(c);
		} else if (event == ZMQ_EVENT_DISCONNECTED) {
			if (c->phase == PH_CONNECTED)
				drop_connection(c, "connection lost");
			else if (c->phase == PH_WAIT_OUT || c->phase == PH_HANDSHAKE)
				attempt_failed(c);
		}
	}
}

/* ------------------------------------------------------------------ sending and timers */

static void flush_sends(struct coord_client *c)
{
	if (c->phase != PH_CONNECTED)
		return;
	pthread_mutex_lock(&c->mu);
	struct coord_pending *p;
	int sent = 0, err = 0;
	c->send_blocked = 0;
	while ((p = coord_pq_next_unsent(&c->pq)) != NULL) {
		if (zmq_send(c->sock, p->frame, p->len, ZMQ_DONTWAIT) < 0) {
			if (zmq_errno() == EAGAIN)
				c->send_blocked = 1;
			else
				err = zmq_errno();
			break;
		}
		coord_pq_sent(&c->pq);
		sent = 1;
	}
	pthread_mutex_unlock(&c->mu);
	if (sent)
		c->last_send = now_ms();
	if (err) {
		char why[128];
		snprintf(why, sizeof(why), "send failed: %s", zmq_strerror(err));
		drop_connection(c, why);
	}
}

/* Heartbeats and give-up timers. Returns ms until the next thing is due. */
static int64_t run_timers(struct coord_client *c)
{
	int64_t now = now_ms();
	switch (c->phase) {
	case PH_IDLE:
		if (now >= c->deadline)
			start_attempt(c);
		break;
	case PH_WAIT_OUT:
	case PH_HANDSHAKE:
		if (now >= c->deadline) {
			LOG_INFO("client: no answer from %s in time", c->addrs[c->addr_idx]);
			pthread_mutex_lock(&c->mu);
			c->open_err = COORD_ECONNLOSS;
			snprintf(c->open_msg, sizeof(c->open_msg), "%s:%d did not answer",
				 c->hosts[c->host_idx].host, c->hosts[c->host_idx].port);
			pthread_mutex_unlock(&c->mu);
			attempt_failed(c);
		}
		break;
	case PH_CONNECTED: {
		pthread_mutex_lock(&c->mu);
		int t = c->timeout_ms;
		pthread_mutex_unlock(&c->mu);
		if (now - c->last_recv >= t / 2)
			recv_all(c); /* after a stall of our own (SIGSTOP, starved CPU), read before judging */
		if (c->phase != PH_CONNECTED)
			break;
		if (now - c->last_recv >= t / 2) {
			char why[96];
			snprintf(why, sizeof(why), "nothing heard for %lld ms", (long long)(now - c->last_recv));
			drop_connection(c, why);
			break;
		}
		/* Ping when we have been quiet, and also when the server has: a busy client that sends
		 * all the time must still learn in time that replies stopped. */
		if (now - c->last_send >= t / 3 || (!c->ping_out && now - c->last_recv >= t / 4)) {
			struct coord_req req;
			memset(&req, 0, sizeof(req));
			req.op = COORD_OP_PING;
			int rc = send_control(c, &req);
			if (rc == COORD_ELIMIT) {
				/* Queue full or TCP down: don't spin retrying; the silence timer decides. */
				c->last_send = now;
				rc = 0;
			}
			if (rc == 0)
				c->ping_out = 1;
			else
				drop_connection(c, "cannot send PING");
		}
		break;
	}
	default:
		break;
	}
	/* When is the next thing due? */
	now = now_ms();
	int64_t next = now + 1000;
	switch (c->phase) {
	case PH_IDLE:
	case PH_WAIT_OUT:
	case PH_HANDSHAKE:
		if (c->deadline < next)
			next = c->deadline;
		break;
	case PH_CONNECTED: {
		pthread_mutex_lock(&c->mu);
		int t = c->timeout_ms;
		pthread_mutex_unlock(&c->mu);
		int64_t d = c->last_recv + t / 2;
		if (d < next)
			next = d;
		d = c->last_send + t / 3;
		if (d < next)
			next = d;
		if (!c->ping_out && c->last_recv + t / 4 < next)
			next = c->last_recv + t / 4;
		break;
	}
	default:
		break;
	}
	return next > now ? next - now : 0;
}

static void *io_main(void *arg)
{
	struct coord_client *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		int stop = c->stopping;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;

		int64_t wait = run_timers(c);
		if (c->phase == PH_WAIT_OUT)
			try_send_connect(c);
		flush_sends(c);

		zmq_pollitem_t items[3];
		int n = 0;
		memset(items, 0, sizeof(items));
		items[n].fd = c->wake_fd;
		items[n++].events = ZMQ_POLLIN;
		int si = -1, mi = -1;
		if (c->sock) {
			si = n;
			items[n].socket = c->sock;
			items[n].events = ZMQ_POLLIN;
			if (c->phase == PH_WAIT_OUT || (c->phase == PH_CONNECTED && c->send_blocked))
				items[n].events |= ZMQ_POLLOUT;
			n++;
		}
		if (c->mon) {
			mi = n;
			items[n].socket = c->mon;
			items[n++].events = ZMQ_POLLIN;
		}
		if (c->phase == PH_IDLE && wait == 0)
			continue;
		int rc = zmq_poll(items, n, (long)wait);
		if (rc < 0) {
			if (zmq_errno() != EINTR)
				LOG_WARN("client: zmq_poll: %s", zmq_strerror(zmq_errno()));
			continue;
		}
		if (items[0].revents & ZMQ_POLLIN) {
			uint64_t v;
			if (read(c->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				LOG_WARN("client: eventfd read: %s", strerror(errno));
		}
		if (mi >= 0 && (items[mi].revents & ZMQ_POLLIN))
			monitor_events(c);
		if (si >= 0 && (items[si].revents & ZMQ_POLLIN))
			recv_all(c);
	}
	/* Stopping: nothing more will be answered. */
	close_socket(c);
	free_addrs(c);
	pthread_mutex_lock(&c->mu);
	struct coord_pending *all = coord_pq_take_all(&c->pq);
	if (c->state != COORD_STATE_EXPIRED)
		c->state = COORD_STATE_CLOSED;
	pthread_mutex_unlock(&c->mu);
	fail_list(all, COORD_ECLOSING, "the client is closing");
	return NULL;
}

/* ------------------------------------------------------------------ open and close */

static void client_free(struct coord_client *c)
{
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->zctx)
		zmq_ctx_term(c->zctx);
	fail_list(coord_pq_take_all(&c->pq), COORD_ECLOSING, "the client is closing");
	coord_wset_free(&c->w_data);
	coord_wset_free(&c->w_child);
	coord_wset_free(&c->w_pers);
	coord_wset_free(&c->w_rec);
	free(c->hosts);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void stop_and_free(struct coord_client *c)
{
	if (c->thread_started) {
		pthread_mutex_lock(&c->mu);
		c->stopping = 1;
		pthread_mutex_unlock(&c->mu);
		wake(c);
		pthread_join(c->thread, NULL);
	}
	client_free(c);
}

int coord_client_open(const struct coord_client_opts *opts, struct coord_client **out, char *err,
		      size_t errlen)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	*out = NULL;
	if (!opts) {
		snprintf(err, errlen, "no options");
		return COORD_EBADARG;
	}
	struct coord_client *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return COORD_ENOMEM;
	}
	c->wake_fd = -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	int rc = coord_hosts_parse(opts->hosts, &c->hosts, &c->nhosts, err, errlen);
	if (rc) {
		client_free(c);
		return rc;
	}
	c->timeout_ms = opts->session_timeout_ms > 0 ? opts->session_timeout_ms : DEFAULT_SESSION_TIMEOUT_MS;
	c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : c->timeout_ms;
	c->session_id = opts->session_id;
	memcpy(c->passwd, opts->passwd, COORD_PASSWD_LEN);
	c->on_event = opts->on_event;
	c->on_state = opts->on_state;
	c->cb_arg = opts->arg;
	if (opts->key_file || opts->server_key_file) {
		rc = load_keys(opts->key_file, opts->server_key_file, &c->key, c->server_key, err, errlen);
		if (rc) {
			client_free(c);
			return rc;
		}
	} else {
		c->key = default_key;
		memcpy(c->server_key, default_server_key, sizeof(c->server_key));
	}
	c->max_data = COORD_MAX_DATA;
	c->state = COORD_STATE_CONNECTING;
	c->notified_state = COORD_STATE_CONNECTING;
	c->phase = PH_IDLE;
	c->backoff_ms = FIRST_BACKOFF_MS;
	c->open_err = COORD_ECONNLOSS;
	snprintf(c->open_msg, sizeof(c->open_msg), "no server answered");
	/*
	 * xids are per session and must keep increasing. A new session starts at 1. A session
	 * resumed from another process does not know where its predecessor stopped, so it starts
	 * from the wall clock in microseconds: above anything a predecessor could have used unless
	 * it sent more than a million requests a second for its whole life.
	 */
	uint64_t first = 1;
	if (opts->session_id) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		first = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	}
	coord_pq_init(&c->pq, first);
	coord_wset_init(&c->w_data);
	coord_wset_init(&c->w_child);
	coord_wset_init(&c->w_pers);
	coord_wset_init(&c->w_rec);
	/* A random first host spreads many clients over the ensemble. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->host_idx = (size_t)(((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16)) % c->nhosts);
	c->deadline = now_ms();

	c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->zctx = zmq_ctx_new();
	if (c->wake_fd < 0 || !c->zctx) {
		snprintf(err, errlen, "cannot set up the client: %s", strerror(errno));
		client_free(c);
		return COORD_EIO;
	}
	/* The I/O thread takes no signals: they belong to the application's threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->thread, NULL, io_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		snprintf(err, errlen, "cannot start the client thread: %s", strerror(rc));
		client_free(c);
		return COORD_EIO;
	}
	c->thread_started = 1;

	int64_t deadline = now_ms() + c->connect_timeout_ms;
	pthread_mutex_lock(&c->mu);
	while (!c->ever_connected && c->state != COORD_STATE_EXPIRED && c->refused < (int)c->nhosts &&
	       c->closed < 3 * (int)c->nhosts && now_ms() < deadline)
		cv_wait_until(c, deadline);
	int ok = c->ever_connected && c->state != COORD_STATE_EXPIRED;
	int refused = !ok && (c->refused >= (int)c->nhosts || c->closed >= 3 * (int)c->nhosts);
	int oerr = c->state == COORD_STATE_EXPIRED ? COORD_ESESSIONEXPIRED : c->open_err;
	char omsg[600];
	snprintf(omsg, sizeof(omsg), "%s", c->open_msg);
	pthread_mutex_unlock(&c->mu);
	if (!ok) {
		if (oerr == COORD_ESESSIONEXPIRED)
			snprintf(err, errlen, "session expired: %s", omsg);
		else if (refused)
			snprintf(err, errlen, "%s", omsg);
		else
			snprintf(err, errlen, "no server answered within %d ms (last try: %s)", c->connect_timeout_ms, omsg);
		stop_and_free(c);
		return oerr ? oerr : COORD_ECONNLOSS;
	}
	*out = c;
	if (err != dummy && errlen)
		err[0] = '\0';
	return COORD_OK;
}

struct close_wait {
	struct coord_client *c;
	int done, err;
};

static void close_done(void *arg, struct coord_result *res)
{
	struct close_wait *w = arg;
	pthread_mutex_lock(&w->c->mu);
	w->done = 1;
	w->err = res->err;
	pthread_cond_broadcast(&w->c->cv);
	pthread_mutex_unlock(&w->c->mu);
	coord_result_free(res);
	free(res);
}

void coord_client_close(struct coord_client *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	int st = c->state;
	c->closing = 1;
	pthread_mutex_unlock(&c->mu);
	if (st == COORD_STATE_CONNECTED || st == COORD_STATE_CONNECTING) {
		struct close_wait w = {c, 0, 0};
		struct coord_req req;
		memset(&req, 0, sizeof(req));
		req.op = COORD_OP_CLOSE;
		if (coord_submit(c, &req, close_done, &w) == COORD_OK) {
			int64_t deadline = now_ms() + CLOSE_WAIT_MS;
			pthread_mutex_lock(&c->mu);
			while (!w.done && now_ms() < deadline)
				cv_wait_until(c, deadline);
			pthread_mutex_unlock(&c->mu);
			if (!w.done)
				LOG_WARN("client: no reply to CLOSE within %d ms: the session will expire instead",
					 CLOSE_WAIT_MS);
		}
		/* If CLOSE is still pending, stopping fails it with ECLOSING; w outlives the join. */
		stop_and_free(c);
		return;
	}
	stop_and_free(c);
}

void coord_client_abandon(struct coord_client *c)
{
	if (c)
		stop_and_free(c);
}

/* ------------------------------------------------------------------ requests */

static int too_large(const struct coord_client *c, const struct coord_req *req)
{
	uint32_t max = c->max_data;
	switch (req->op) {
	case COORD_OP_CREATE:
	case COORD_OP_SET:
	case COORD_OP_APPEND:
		return req->data.len > max;
	case COORD_OP_MULTI:
		for (uint32_t i = 0; i < req->nops; i++)
			if (req->ops[i].data.len > max)
				return 1;
		return 0;
	default:
		return 0;
	}
}

int coord_submit(struct coord_client *c, const struct coord_req *req, coord_done_fn done, void *arg)
{
	if (!c || !req)
		return COORD_EBADARG;
	if (req->op == 0 || req->op >= COORD_OP_MAX || req->op == COORD_OP_CONNECT ||
	    req->op == COORD_OP_PING || req->op == COORD_OP_SETWATCHES || req->op == COORD_OP_CHECK)
		return COORD_EBADARG; /* the library sends those itself (CHECK only inside MULTI) */
	if (req->op == COORD_OP_MULTI && (req->nops > COORD_MAX_MULTI || (req->nops && !req->ops)))
		return COORD_EBADARG;
	/* A path the protocol cannot carry is a name-too-long error, not a malformed message. */
	if (req->path.len > COORD_MAX_PATH || req->path2.len > COORD_MAX_PATH || req->after.len > COORD_MAX_PATH)
		return COORD_ENAMETOOLONG;
	for (uint32_t i = 0; req->op == COORD_OP_MULTI && i < req->nops; i++)
		if (req->ops[i].path.len > COORD_MAX_PATH)
			return COORD_ENAMETOOLONG;
	struct coord_pending *p = calloc(1, sizeof(*p));
	if (!p)
		return COORD_ENOMEM;
	p->op = req->op;
	p->watch = req->watch;
	p->done = done;
	p->arg = arg;
	int tracks = ((req->op == COORD_OP_GET || req->op == COORD_OP_EXISTS || req->op == COORD_OP_LIST) &&
		      req->watch) ||
		     req->op == COORD_OP_ADDWATCH || req->op == COORD_OP_REMOVEWATCH;
	if (tracks) {
		p->wpath = slice_dup(req->path);
		if (!p->wpath) {
			free(p);
			return COORD_ENOMEM;
		}
	}

	pthread_mutex_lock(&c->mu);
	int rc = COORD_OK;
	if (c->state == COORD_STATE_EXPIRED)
		rc = COORD_ESESSIONEXPIRED;
	else if (c->state == COORD_STATE_CLOSED || c->stopping || (c->closing && req->op != COORD_OP_CLOSE))
		rc = COORD_ECLOSING;
	else if (too_large(c, req))
		rc = COORD_ETOOLARGE;
	if (rc == COORD_OK) {
		struct coord_req r = *req;
		r.xid = c->pq.next_xid;
		r.ack = coord_pq_ack(&c->pq);
		struct buf b;
		buf_init(&b);
		rc = coord_req_encode(&b, &r);
		if (rc == COORD_OK && b.oom)
			rc = COORD_ENOMEM;
		if (rc == COORD_OK && b.len > (size_t)c->max_data + FRAME_SLACK)
			rc = COORD_ETOOLARGE; /* e.g. a multi whose parts fit but whose whole does not */
		if (rc == COORD_OK) {
			p->frame = buf_take(&b, &p->len);
			coord_pq_push(&c->pq, p);
		}
		buf_free(&b);
	}
	pthread_mutex_unlock(&c->mu);
	if (rc) {
		coord_pending_free(p);
		return rc;
	}
	wake(c);
	return COORD_OK;
}

struct call_wait {
	struct coord_client *c;
	struct coord_result *res;
	int done;
};

static void call_done(void *arg, struct coord_result *r)
{
	struct call_wait *w = arg;
	pthread_mutex_lock(&w->c->mu);
	*w->res = *r; /* rep's slices point into r->frame, which moves with it */
	w->done = 1;
	pthread_cond_broadcast(&w->c->cv);
	pthread_mutex_unlock(&w->c->mu);
	free(r);
}

int coord_call(struct coord_client *c, const struct coord_req *req, struct coord_result *res)
{
	memset(res, 0, sizeof(*res));
	res->rep.fail_index = -1;
	int rc;
	if (c && c->thread_started && pthread_equal(pthread_self(), c->thread)) {
		rc = COORD_EBADARG;
		snprintf(res->msg, sizeof(res->msg), "sync call from a client callback would deadlock");
	} else {
		struct call_wait w = {c, res, 0};
		rc = coord_submit(c, req, call_done, &w);
		if (rc == COORD_OK) {
			pthread_mutex_lock(&c->mu);
			while (!w.done)
				cv_wait_until(c, -1);
			pthread_mutex_unlock(&c->mu);
			rc = res->err;
		} else {
			snprintf(res->msg, sizeof(res->msg), "%s", coord_strerror(rc));
		}
	}
	res->err = rc;
	res->rep.err = rc;
	snprintf(last_error, sizeof(last_error), "%s", res->msg);
	return rc;
}

const char *coord_last_error(void) { return last_error; }

/* ------------------------------------------------------------------ sync conveniences */

static void req_init(struct coord_req *req, uint8_t op, const char *path)
{
	memset(req, 0, sizeof(*req));
	req->op = op;
	req->version = -1;
	if (path)
		req->path = slice_str(path);
}

static int dup_out(struct slice s, char **out)
{
	if (!out)
		return COORD_OK;
	*out = slice_dup(s);
	return *out ? COORD_OK : COORD_ENOMEM;
}

/* Out of memory after the server acted: the result is lost to the caller; say so. */
static int local_fail(int err)
{
	snprintf(last_error, sizeof(last_error), "%s", coord_strerror(err));
	return err;
}

int coord_create(struct coord_client *c, const char *path, const void *data, size_t len, uint32_t flags,
		 uint8_t policy, char **created, struct coord_stat *st)
{
	return coord_create_acl(c, path, data, len, flags, policy, NULL, created, st);
}

int coord_create_acl(struct coord_client *c, const char *path, const void *data, size_t len, uint32_t flags,
		     uint8_t policy, const char *acl, char **created, struct coord_stat *st)
{
	struct coord_req req;
	struct coord_result res;
	req_init(&req, COORD_OP_CREATE, path);
	if (len > UINT32_MAX)
		return local_fail(COORD_ETOOLARGE);
	req.data = slice_of(data, len);
	req.flags = flags & ~COORD_CREATE_ACL;
	req.policy = policy;
	if (acl) {
		req.flags |= COORD_CREATE_ACL;
		req.acl = slice_str(acl);
	}
	int rc = coord_call(c, &req, &res);
	if (rc == COORD_OK) {
		if (st)
			*st = res.rep.stat;
		rc = dup_out(res.rep.path, created);
		if (rc)
			local_fail(rc);
	}
	coord_result_free(&res);
	return rc;
}

/* A reply's data for the caller: malloc'd and NUL-terminated for convenience (len does not count it). */
static int take_data(const struct coord_result *res, void **data, size_t *len)
{
	if (len)
		*len = res->rep.data.len;
	if (!data)
		return COORD_OK;
	char *d = malloc((size_t)res->rep.data.len + 1);
	if (!d)
		return local_fail(COORD_ENOMEM);
	if (res->rep.data.len)
		memcpy(d, res->rep.data.p, res->rep.data.len);
	d[res->rep.data.len] = '\0';
	*data = d;
	return COORD_OK;
}

int coord_get(struct coord_client *c, const char *path, int watch, void **data, size_t *len,
	      struct coord_stat *st)
{
	struct coord_req req;
	struct coord_result res;
	req_init(&req, COORD_OP_GET, path);
	req.watch = watch ? COORD_WATCH_ONESHOT : 0;
	int rc = coord_call(c, &req, &res);
	if (rc == COORD_OK) {
		if (st)
			*st = res.rep.stat;
		rc = take_data(&res, data, len);
	}
	coord_result_free(&res);
	return rc;
}

int coord_history(struct coord_client *c, const char *path, struct coord_hist **hist, uint32_t *n,
		  struct coord_stat *st)
{
	struct coord_req req;
	struct coord_result res;
	req_init(&req, COORD_OP_HISTORY, path);
	req.version = -1;
	int rc = coord_call(c, &req, &res);
	if (rc == COORD_OK) {
		if (st)
			*st = res.rep.stat;
		struct coord_hist *h = malloc((res.rep.nhist ? res.rep.nhist : 1) * sizeof(*h));
		if (!h) {
			rc = local_fail(COORD_ENOMEM);
		} else {
			for (uint32_t i = 0; i < res.rep.nhist; i++)
				coord_hist_at(&res.rep, i, &h[i]);
			*hist = h;
			*n = res.rep.nhist;
		}
	}
	coord_result_free(&res);
	return rc;
}

int coord_get_version(struct coord_client *c, const char *path, int32_t version, void **data, size_t *len,
		      struct coord_hist *h)
{
	struct coord_req req;
	struct coord_result res;
	req_init(&req, COORD_OP_HISTORY, path);
	req.version = version;
	int rc = coord_call(c, &req, &res);
	if (rc == COORD_OK) {
		if (h && coord_hist_at(&res.rep, 0, h))
			memset(h, 0, sizeof(*h));
		rc = take_data(&res, data, len);
	}
	coord_result_free(&res);
	return rc;
}

/* A request whose reply matters only for its error and the node's Stat (st may be NULL). */
static int stat_call(struct coord_client *c, struct coord_req *req, struct coord_stat *st)
{
	struct coord_result res;
	int rc = coord_call(c, req, &res);
	if (rc == COORD_OK && st)
		*st = res.rep.stat;
	coord_result_free(&res);
	return rc;
}

static int write_call(struct coord_client *c, uint8_t op, const char *path, const void *data, size_t len,
		      int32_t version, struct coord_stat *st)
{
	struct coord_req req;
	req_init(&req, op, path);
	if (len > UINT32_MAX)
		return local_fail(COORD_ETOOLARGE);
	req.data = slice_of(data, len);
	req.version = version;
	return stat_call(c, &req, st);
}

int coord_set(struct coord_client *c, const char *path, const void *data, size_t len, int32_t version,
	      struct coord_stat *st)
{
	return write_call(c, COORD_OP_SET, path, data, len, version, st);
}

int coord_append(struct coord_client *c, const char *path, const void *data, size_t len,
		 struct coord_stat *st)
{
	return write_call(c, COORD_OP_APPEND, path, data, len, -1, st);
}

int coord_delete(struct coord_client *c, const char *path, int32_t version)
{
	return write_call(c, COORD_OP_DELETE, path, NULL, 0, version, NULL);
}

int coord_exists(struct coord_client *c, const char *path, int watch, struct coord_stat *st)
{
	struct coord_req req;
	req_init(&req, COORD_OP_EXISTS, path);
	req.watch = watch ? COORD_WATCH_ONESHOT : 0;
	return stat_call(c, &req, st);
}

void coord_names_free(char **names, size_t count)
{
	if (!names)
		return;
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

struct namelist {
	char **v;
	size_t n, cap;
};

static int names_add(struct namelist *l, const uint8_t *p, size_t len)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		char **nv = realloc(l->v, nc * sizeof(char *));
		if (!nv)
			return COORD_ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	char *s = malloc(len + 1);
	if (!s)
		return COORD_ENOMEM;
	memcpy(s, p, len);
	s[len] = '\0';
	l->v[l->n++] = s;
	return COORD_OK;
}

/*
 * One pass over every page. Returns COORD_OK and sets *moved when the parent's child list
 * changed between pages (cversion differs from the first page's).
 */
static int list_pass(struct coord_client *c, const char *path, int watch, struct namelist *l,
		     struct coord_stat *st, int *moved)
{
	char *after = NULL;
	int first = 1, rc = COORD_OK;
	*moved = 0;
	for (;;) {
		struct coord_req req;
		struct coord_result res;
		req_init(&req, COORD_OP_LIST, path);
		req.after = slice_str(after ? after : "");
		req.max = 0;
		req.watch = (first && watch) ? COORD_WATCH_ONESHOT : 0;
		rc = coord_call(c, &req, &res);
		if (rc) {
			coord_result_free(&res);
			break;
		}
		if (first)
			*st = res.rep.stat;
		else if (res.rep.stat.cversion != st->cversion)
			*moved = 1;
		first = 0;
		/* names: count NUL-terminated strings, back to back */
		const uint8_t *p = res.rep.names.p, *end = p + res.rep.names.len;
		uint32_t got = 0;
		while (p < end && got < res.rep.count && rc == COORD_OK) {
			const uint8_t *z = memchr(p, 0, (size_t)(end - p));
			size_t nl = z ? (size_t)(z - p) : (size_t)(end - p);
			rc = names_add(l, p, nl);
			p += nl + 1;
			got++;
		}
		int more = res.rep.more && got > 0;
		if (res.rep.more && got == 0) {
			/* "more" with an empty page would loop forever: treat as a server fault. */
			rc = COORD_EPROTO;
			snprintf(last_error, sizeof(last_error), "list of %s: server said more but sent no names", path);
		}
		coord_result_free(&res);
		if (rc || !more || *moved)
			break;
		free(after);
		after = strdup(l->v[l->n - 1]);
		if (!after) {
			rc = local_fail(COORD_ENOMEM);
			break;
		}
	}
	free(after);
	return rc;
}

/*
 * Pages are separate reads, so a child list that changes between them could come back as a mix
 * of two states. When the parent's cversion moves between pages we start over once; if it moves
 * again the second pass is returned as it is (the names were each true at some point, and any
 * watch set on the first page has fired, so a watching caller hears of the change anyway).
 */
int coord_list(struct coord_client *c, const char *path, int watch, char ***names, size_t *count,
	       struct coord_stat *st)
{
	struct namelist l = {NULL, 0, 0};
	struct coord_stat s;
	memset(&s, 0, sizeof(s));
	int moved = 0, rc = COORD_OK;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < l.n; i++)
			free(l.v[i]);
		l.n = 0;
		rc = list_pass(c, path, watch, &l, &s, &moved);
		if (rc || !moved)
			break;
	}
	if (rc) {
		coord_names_free(l.v, l.n);
		return rc;
	}
	if (st)
		*st = s;
	if (count)
		*count = l.n;
	if (names) {
		if (!l.v)
			l.v = calloc(1, sizeof(char *)); /* a valid empty array */
		if (!l.v)
			return local_fail(COORD_ENOMEM);
		*names = l.v;
	} else {
		coord_names_free(l.v, l.n);
	}
	return COORD_OK;
}

int coord_rename(struct coord_client *c, const char *from, const char *to, uint32_t flags,
		 struct coord_stat *st)
{
	struct coord_req req;
	req_init(&req, COORD_OP_RENAME, from);
	req.path2 = slice_str(to);
	req.flags = flags;
	return stat_call(c, &req, st);
}

int coord_setpolicy(struct coord_client *c, const char *path, uint8_t policy)
{
	struct coord_req req;
	req_init(&req, COORD_OP_SETPOLICY, path);
	req.policy = policy;
	return stat_call(c, &req, NULL);
}

int coord_getacl(struct coord_client *c, const char *path, char **acl, unsigned *perms, struct coord_stat *st)
{
	struct coord_req req;
	struct coord_result res;
	req_init(&req, COORD_OP_GETACL, path);
	int rc = coord_call(c, &req, &res);
	if (rc == COORD_OK) {
		if (st)
			*st = res.rep.stat;
		if (perms)
			*perms = res.rep.perms;
		if ((rc = dup_out(res.rep.acl, acl)))
			local_fail(rc);
	}
	coord_result_free(&res);
	return rc;
}

int coord_setacl(struct coord_client *c, const char *path, const char *acl, int32_t aversion, struct coord_stat *st)
{
	struct coord_req req;
	req_init(&req, COORD_OP_SETACL, path);
	req.acl = slice_str(acl);
	req.version = aversion;
	return stat_call(c, &req, st);
}

int coord_sync(struct coord_client *c, const char *path)
{
	struct coord_req req;
	req_init(&req, COORD_OP_SYNC, path);
	return stat_call(c, &req, NULL);
}

int coord_addwatch(struct coord_client *c, const char *path, int mode)
{
	struct coord_req req;
	req_init(&req, COORD_OP_ADDWATCH, path);
	req.watch = (uint8_t)mode;
	return stat_call(c, &req, NULL);
}

int coord_removewatch(struct coord_client *c, const char *path, int mode)
{
	struct coord_req req;
	req_init(&req, COORD_OP_REMOVEWATCH, path);
	req.watch = (uint8_t)mode;
	return stat_call(c, &req, NULL);
}

int coord_admin(struct coord_client *c, const char *word, char **text)
{
	struct coord_req req;
	struct coord_result res;
	req_init(&req, COORD_OP_ADMIN, NULL);
	req.word = slice_str(word);
	int rc = coord_call(c, &req, &res);
	if (rc == COORD_OK) {
		rc = dup_out(res.rep.data, text);
		if (rc)
			local_fail(rc);
	}
	coord_result_free(&res);
	return rc;
}

/* ------------------------------------------------------------------ session-less admin */

/* Ask one host (all its addresses at once: whichever connects first gets the question). */
static int admin_one(void *ctx, const struct coord_hostport *hp, const char *word, int timeout_ms,
		     char **text, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int g = getaddrinfo(hp->host, NULL, &hints, &ai);
	if (g) {
		snprintf(err, errlen, "cannot resolve %s: %s", hp->host, gai_strerror(g));
		return COORD_ECONNLOSS;
	}
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	if (!s) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(zmq_errno()));
		return COORD_EIO;
	}
	int zero = 0, one = 1;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one));
	zmq_setsockopt(s, ZMQ_IPV6, &one, sizeof(one));
	curve_client(s, &default_key, default_server_key);
	/* A refused handshake gets no reply: the monitor says so, instead of "did not answer". */
	static unsigned admin_mon_seq;
	char monep[80];
	snprintf(monep, sizeof(monep), "inproc://coord-admin-mon-%p-%u", ctx, __atomic_fetch_add(&admin_mon_seq, 1, __ATOMIC_RELAXED));
	void *mon = NULL;
	if (zmq_socket_monitor(s, monep, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) == 0 &&
	    (mon = zmq_socket(ctx, ZMQ_PAIR)) != NULL) {
		zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof(zero));
		if (zmq_connect(mon, monep) != 0) {
			zmq_close(mon);
			mon = NULL;
		}
	}
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		char ip[INET6_ADDRSTRLEN], ep[INET6_ADDRSTRLEN + 32];
		if (a->ai_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, ip, sizeof(ip));
			snprintf(ep, sizeof(ep), "tcp://%s:%d", ip, hp->port);
		} else if (a->ai_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, ip, sizeof(ip));
			snprintf(ep, sizeof(ep), "tcp://[%s]:%d", ip, hp->port);
		} else {
			continue;
		}
		zmq_connect(s, ep);
	}
	freeaddrinfo(ai);

	struct coord_req req;
	memset(&req, 0, sizeof(req));
	req.op = COORD_OP_ADMIN;
	req.xid = CONTROL_XID;
	req.word = slice_str(word);
	struct buf b;
	buf_init(&b);
	int rc = coord_req_encode(&b, &req);
	if (rc == COORD_OK && b.oom)
		rc = COORD_ENOMEM;
	int64_t deadline = now_ms() + timeout_ms;
	int sent = 0;
	rc = rc ? rc : COORD_ECONNLOSS;
	snprintf(err, errlen, "%s:%d did not answer within %d ms", hp->host, hp->port, timeout_ms);
	while (b.len && !b.oom) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			break;
		zmq_pollitem_t its[2] = {{s, 0, sent ? ZMQ_POLLIN : ZMQ_POLLOUT, 0}, {mon, 0, ZMQ_POLLIN, 0}};
		zmq_pollitem_t it;
		if (zmq_poll(its, mon ? 2 : 1, (long)left) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			break;
		}
		it = its[0];
		if (mon && (its[1].revents & ZMQ_POLLIN)) {
			zmq_msg_t ev;
			zmq_msg_init(&ev);
			uint16_t event = 0;
			uint32_t value = 0;
			if (zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) >= 0 && zmq_msg_size(&ev) >= 6) {
				memcpy(&event, zmq_msg_data(&ev), 2);
				memcpy(&value, (const uint8_t *)zmq_msg_data(&ev) + 2, 4);
			}
			int more = zmq_msg_more(&ev);
			zmq_msg_close(&ev);
			if (more) {
				zmq_msg_init(&ev);
				zmq_msg_recv(&ev, mon, 0);
				zmq_msg_close(&ev);
			}
			if (event) {
				snprintf(err, errlen, "%s:%d: %s", hp->host, hp->port,
					 handshake_text(event, value, default_key.secret_z85[0] != 0, &rc));
				break;
			}
			continue;
		}
		if (!sent && (it.revents & ZMQ_POLLOUT)) {
			if (zmq_send(s, b.p, b.len, ZMQ_DONTWAIT) >= 0)
				sent = 1;
			continue;
		}
		if (sent && (it.revents & ZMQ_POLLIN)) {
			zmq_msg_t m;
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&m);
				continue;
			}
			struct coord_reply rep;
			char eb[160];
			if (coord_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), COORD_OP_ADMIN, &rep, eb,
					       sizeof(eb))) {
				snprintf(err, errlen, "%s:%d: malformed reply: %s", hp->host, hp->port, eb);
				rc = COORD_EPROTO;
			} else if (rep.err) {
				char msg[256];
				copy_msg(msg, sizeof(msg), rep.err, rep.msg);
				snprintf(err, errlen, "%s:%d: %s", hp->host, hp->port, msg);
				rc = rep.err;
				coord_reply_clear(&rep);
			} else {
				*text = slice_dup(rep.data);
				rc = *text ? COORD_OK : COORD_ENOMEM;
				if (rc == COORD_OK)
					err[0] = '\0';
				coord_reply_clear(&rep);
			}
			zmq_msg_close(&m);
			break;
		}
	}
	buf_free(&b);
	if (mon) {
		zmq_socket_monitor(s, NULL, 0);
		zmq_close(mon);
	}
	zmq_close(s);
	return rc;
}

int coord_admin_oneshot(const char *hosts, const char *word, int timeout_ms, char **text, char *err,
			size_t errlen)
{
	char dummy[256];
	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	*text = NULL;
	struct coord_hostport *hps;
	size_t n;
	int rc = coord_hosts_parse(hosts, &hps, &n, err, errlen);
	if (rc)
		return rc;
	if (timeout_ms <= 0)
		timeout_ms = 5000;
	void *ctx = zmq_ctx_new();
	if (!ctx) {
		free(hps);
		snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
		return COORD_EIO;
	}
	rc = COORD_ECONNLOSS;
	for (size_t i = 0; i < n; i++) {
		rc = admin_one(ctx, &hps[i], word, timeout_ms, text, err, errlen);
		/* Only "could not reach it" moves on; an answer (even an error) is the answer. */
		if (rc != COORD_ECONNLOSS)
			break;
	}
	zmq_ctx_term(ctx);
	free(hps);
	return rc;
}

/* ------------------------------------------------------------------ accessors */

int coord_client_state(struct coord_client *c)
{
	pthread_mutex_lock(&c->mu);
	int st = c->state;
	pthread_mutex_unlock(&c->mu);
	return st;
}

uint64_t coord_client_session_id(struct coord_client *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t v = c->session_id;
	pthread_mutex_unlock(&c->mu);
	return v;
}

void coord_client_passwd(struct coord_client *c, uint8_t passwd[COORD_PASSWD_LEN])
{
	pthread_mutex_lock(&c->mu);
	memcpy(passwd, c->passwd, COORD_PASSWD_LEN);
	pthread_mutex_unlock(&c->mu);
}

int coord_client_timeout_ms(struct coord_client *c)
{
	pthread_mutex_lock(&c->mu);
	int v = c->timeout_ms;
	pthread_mutex_unlock(&c->mu);
	return v;
}

uint64_t coord_client_last_zxid(struct coord_client *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t v = c->last_zxid;
	pthread_mutex_unlock(&c->mu);
	return v;
}

void coord_client_principal(struct coord_client *c, char *buf, size_t len)
{
	pthread_mutex_lock(&c->mu);
	snprintf(buf, len, "%s", c->principal);
	pthread_mutex_unlock(&c->mu);
}

uint32_t coord_client_max_data(struct coord_client *c)
{
	pthread_mutex_lock(&c->mu);
	uint32_t v = c->max_data;
	pthread_mutex_unlock(&c->mu);
	return v;
}

void coord_client_server(struct coord_client *c, char *buf, size_t len)
{
	if (!len)
		return;
	pthread_mutex_lock(&c->mu);
	snprintf(buf, len, "%s", c->state == COORD_STATE_CONNECTED ? c->server : "");
	pthread_mutex_unlock(&c->mu);
}
