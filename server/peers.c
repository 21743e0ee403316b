/*
 * peers.c: the TCP links between members (see peers.h): connecting with name resolution that
 * never blocks the loop, greeting and hello (peerlink.c), framed sends with a queue, reads,
 * loss reports, and snapshots streamed from their file as a link drains.
 */
#include "peers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "peerwire.h"
#include "recfile.h"

#define CHUNK (1u << 20)
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 500
#define HANDSHAKE_NS (10LL * 1000000000)
#define READ_MIN (64u << 10)          /* free room wanted before a read */
#define REFUSAL_LOG_NS (10LL * 1000000000)
#define STABLE_NS (1000000000LL)              /* up this long: a drop is news, said again */

enum { PO_IDLE, PO_RESOLVING, PO_CONNECTING, PO_GREETING, PO_UP };
enum { REFUSED_PROTOCOL, REFUSED_AUTH, REFUSED_CONFIG };

/* A name being resolved by getaddrinfo_a: everything it points to lives here until it is done. */
struct resolve {
	struct gaicb cb;
	struct addrinfo hints;
	char port[8];
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void tune(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Close a socket so that the other end learns at once, even while a forked snapshot writer
 * still holds a copy of the descriptor. */
static void drop_fd(int *fd)
{
	if (*fd >= 0) {
		shutdown(*fd, SHUT_RDWR);
		close(*fd);
	}
	*fd = -1;
}

/* ---- out links: connecting ---- */

static void out_reset(struct peer_out *o)
{
	drop_fd(&o->fd);
	if (o->ai)
		freeaddrinfo(o->ai);
	o->ai = o->ai_cur = NULL;
	buf_free(&o->q);
	buf_free(&o->after);
	o->qoff = 0;
	if (o->snap_fd >= 0)
		close(o->snap_fd);
	o->snap_fd = -1;
	o->rxlen = 0;
	sodium_memzero(&o->tx, sizeof(o->tx));
}

/*
 * The link failed or dropped: try again later. A link that was up and dropped (not refused) is
 * reported lost; one that had been up for a while is tried again at once, one that keeps dropping
 * right after it links backs off like a failed attempt. Problems are logged once until the link
 * has stayed up for STABLE_NS (then "linked" is said again).
 */
static void out_fail_as(struct peers *ps, struct peer_out *o, const char *why, int refused)
{
	int was_up = o->state == PO_UP;
	int64_t now = mono_ns();
	int stable = was_up && now - o->up_ns >= STABLE_NS;
	out_reset(o);
	o->state = PO_IDLE;
	if (was_up && !refused)
		o->lost = 1;
	if (stable) {
		o->backoff_ms = RETRY_MIN_MS;
		LOG_INFO("link to member %d (%s:%d) dropped: %s; linking again", o->id, o->host, o->port, why);
		o->said = 0;
	} else {
		o->backoff_ms = o->backoff_ms ? o->backoff_ms * 2 : RETRY_MIN_MS;
		if (o->backoff_ms > RETRY_MAX_MS)
			o->backoff_ms = RETRY_MAX_MS;
		if (!o->said)
			coord_log(refused ? COORD_LOG_ERROR : COORD_LOG_INFO, "cannot link to member %d at %s:%d: %s "
				  "(trying again every %d ms; said once)", o->id, o->host, o->port, why, RETRY_MAX_MS);
		o->said = 1;
	}
	o->retry_ns = now + (int64_t)o->backoff_ms * 1000000;
}

static void out_fail(struct peers *ps, struct peer_out *o, const char *why) { out_fail_as(ps, o, why, 0); }

static void out_connect_next(struct peers *ps, struct peer_out *o)
{
	int err = 0;
	while (o->ai_cur) {
		struct addrinfo *a = o->ai_cur;
		o->ai_cur = a->ai_next;
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		tune(fd);
		/* Data the other end has not acknowledged for syncLimit ticks (a cut network, a host gone
		 * without a word) closes the link, which is then made again: a fresh connection is up
		 * as soon as the network is back, where this one would wait out TCP's backed-off
		 * retransmissions (up to minutes after a long cut). */
		unsigned uto = ps->user_timeout_ms;
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
			o->fd = fd;
			o->state = PO_CONNECTING;
			/* A connect (and greeting) gets as long as sent data may go unacknowledged: once a
			 * cut network heals, a fresh attempt's first SYN gets through at once, while one
			 * attempt would wait out its own backed-off SYN retries. */
			o->deadline_ns = mono_ns() + (int64_t)ps->user_timeout_ms * 1000000;
			return;
		}
		err = errno;
		close(fd);
	}
	out_fail(ps, o, err ? strerror(err) : "no address to connect to");
}

static void out_resolved(struct peers *ps, struct peer_out *o, struct addrinfo *res)
{
	o->ai = o->ai_cur = res;
	out_connect_next(ps, o);
}

static void out_start(struct peers *ps, struct peer_out *o)
{
	char port[8];
	snprintf(port, sizeof(port), "%d", o->port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	if (getaddrinfo(o->host, port, &hints, &res) == 0) {
		out_resolved(ps, o, res);
		return;
	}
	/* A name: resolved again at every attempt (its address may have moved), on glibc's thread. */
	struct resolve *r = calloc(1, sizeof(*r));
	if (!r) {
		out_fail(ps, o, "out of memory");
		return;
	}
	memcpy(r->port, port, sizeof(port));
	r->hints.ai_socktype = SOCK_STREAM;
	r->hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	r->cb.ar_name = o->host;
	r->cb.ar_service = r->port;
	r->cb.ar_request = &r->hints;
	struct gaicb *list[1] = {&r->cb};
	int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc) {
		free(r);
		out_fail(ps, o, gai_strerror(rc));
		return;
	}
	o->gai = r;
	o->state = PO_RESOLVING;
}

static void out_check_resolve(struct peers *ps, struct peer_out *o)
{
	struct resolve *r = o->gai;
	int rc = gai_error(&r->cb);
	if (rc == EAI_INPROGRESS)
		return;
	o->gai = NULL;
	struct addrinfo *res = r->cb.ar_result;
	free(r);
	if (rc) {
		char why[300];
		snprintf(why, sizeof(why), "cannot resolve %s: %s", o->host, gai_strerror(rc));
		out_fail(ps, o, why);
		return;
	}
	out_resolved(ps, o, res);
}

/* ---- out links: sending ---- */

/* Append one framed (and, with auth=curve, sealed) message to q. 0, or -1 out of memory. */
static int frame_into(struct peer_out *o, struct buf *q, const void *msg, size_t len)
{
	size_t ov = peerlink_overhead(o->tx.curve);
	if (buf_reserve(q, 4 + len + ov)) {
		buf_free(q);
		return -1;
	}
	rec_put32(q->p + q->len, (uint32_t)(len + ov));
	peerlink_seal(&o->tx, q->p + q->len + 4, msg, len);
	q->len += 4 + len + ov;
	return 0;
}

/* Frame the messages that waited behind a snapshot stream. */
static void move_after(struct peer_out *o)
{
	size_t at = 0;
	while (at + 4 <= o->after.len) {
		uint32_t n = rec_le32(o->after.p + at);
		if (frame_into(o, &o->q, o->after.p + at + 4, n))
			break; /* out of memory: the rest is dropped, as a full queue drops */
		at += 4 + n;
	}
	buf_reset(&o->after);
}

/* Frame the next chunk of the snapshot being streamed; at its end, what waited behind it. */
static void snap_next(struct peers *ps, struct peer_out *o)
{
	if (o->snap_off < o->snap_total) {
		if (!ps->chunk && !(ps->chunk = malloc(CHUNK)))
			goto abandon;
		uint64_t want = o->snap_total - o->snap_off < CHUNK ? o->snap_total - o->snap_off : CHUNK;
		ssize_t n = pread(o->snap_fd, ps->chunk, (size_t)want, (off_t)o->snap_off);
		if (n <= 0) {
			LOG_WARN("cannot read snapshot 0x%" PRIx64 " for member %d: %s", o->snap_index, o->id,
				 n < 0 ? strerror(errno) : "it is shorter than it was");
			goto abandon;
		}
		struct buf b;
		buf_init(&b);
		peer_encode_chunk(&b, o->snap_index, o->snap_term, o->snap_off, o->snap_total, ps->chunk, (size_t)n);
		int bad = b.oom || frame_into(o, &o->q, b.p, b.len);
		buf_free(&b);
		if (bad)
			goto abandon;
		o->snap_off += (uint64_t)n;
		return;
	}
	LOG_INFO("sent snapshot 0x%" PRIx64 " (%" PRIu64 " bytes) to member %d", o->snap_index, o->snap_total, o->id);
abandon: /* the follower waits for the leader to offer it again */
	close(o->snap_fd);
	o->snap_fd = -1;
	move_after(o);
}

/* Write what the kernel takes. 0, or -1 if the connection failed (errno). */
static int out_flush(struct peers *ps, struct peer_out *o)
{
	for (;;) {
		if (o->qoff < o->q.len) {
			ssize_t w = send(o->fd, o->q.p + o->qoff, o->q.len - o->qoff, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
			}
			o->qoff += (size_t)w;
			continue;
		}
		buf_reset(&o->q);
		o->qoff = 0;
		if (o->snap_fd < 0)
			return 0;
		snap_next(ps, o);
	}
}

static struct peer_out *find(struct peers *ps, int id)
{
	for (int i = 0; i < ps->n; i++)
		if (ps->p[i].id == id)
			return &ps->p[i];
	return NULL;
}

void peers_send(struct peers *ps, int id, const void *msg, size_t len)
{
	struct peer_out *o = find(ps, id);
	if (!o || o->state != PO_UP)
		return; /* not linked: Raft sends again what matters */
	if (len > PEERLINK_FRAME_MAX - PEERLINK_ABYTES) {
		LOG_WARN("a message of %zu bytes to member %d is over the peer link's frame limit: dropped", len, id);
		return;
	}
	if (o->snap_fd >= 0) { /* behind the snapshot's chunks, in order */
		if (!o->after.len || o->after.len + 4 + len <= PEERS_QUEUE_MAX) {
			uint8_t n[4];
			rec_put32(n, (uint32_t)len);
			buf_put(&o->after, n, 4);
			buf_put(&o->after, msg, len);
			if (o->after.oom)
				buf_free(&o->after);
		}
		return;
	}
	if (o->q.len > o->qoff && o->q.len - o->qoff + len > PEERS_QUEUE_MAX) { /* one always fits */
		LOG_DEBUG("the link to member %d has %zu bytes waiting: a message dropped", id, o->q.len - o->qoff);
		return;
	}
	if (o->qoff > (1u << 20) && o->qoff > o->q.len / 2) { /* drop what was written */
		memmove(o->q.p, o->q.p + o->qoff, o->q.len - o->qoff);
		o->q.len -= o->qoff;
		o->qoff = 0;
	}
	if (frame_into(o, &o->q, msg, len))
		out_fail(ps, o, "out of memory"); /* the queue and its frames' order are gone: start again */
}

void peers_flush(struct peers *ps)
{
	for (int i = 0; i < ps->n; i++) {
		struct peer_out *o = &ps->p[i];
		if (o->state == PO_UP && (o->qoff < o->q.len || o->snap_fd >= 0) && out_flush(ps, o) < 0)
			out_fail(ps, o, strerror(errno));
	}
}

int peers_up(const struct peers *ps, int id)
{
	for (int i = 0; i < ps->n; i++)
		if (ps->p[i].id == id)
			return ps->p[i].state == PO_UP;
	return 0;
}

/* ---- out links: handshake ---- */

static void out_connected(struct peers *ps, struct peer_out *o)
{
	int err = 0;
	socklen_t sl = sizeof(err);
	if (getsockopt(o->fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
		err = errno;
	if (err) {
		drop_fd(&o->fd);
		if (o->ai_cur) { /* the name has another address */
			out_connect_next(ps, o);
			return;
		}
		out_fail(ps, o, strerror(err));
		return;
	}
	if (o->ai)
		freeaddrinfo(o->ai);
	o->ai = o->ai_cur = NULL;
	o->state = PO_GREETING;
	o->rxlen = 0;
}

static void out_greeting(struct peers *ps, struct peer_out *o)
{
	for (;;) {
		long want = peerlink_greeting_len(o->rx, o->rxlen);
		if (want < 0) {
			out_fail(ps, o, "that port does not speak coordfs's peer protocol (another program on it?)");
			return;
		}
		if (want > 0 && o->rxlen >= (size_t)want)
			break;
		size_t room = want > 0 ? (size_t)want - o->rxlen : 8 - o->rxlen;
		ssize_t r = recv(o->fd, o->rx + o->rxlen, room, 0);
		if (r == 0) {
			out_fail(ps, o, "it closed the connection before greeting (is it refusing this member?)");
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				out_fail(ps, o, strerror(errno));
			return;
		}
		o->rxlen += (size_t)r;
	}
	uint8_t hello[PEERLINK_HELLO_MAX];
	size_t hlen;
	char why[300];
	if (peerlink_hello_make(&ps->keys, ps->self, o->id, o->rx, o->rxlen, hello, &hlen, &o->tx, why, sizeof(why))) {
		out_fail_as(ps, o, why, 1);
		return;
	}
	buf_reset(&o->q);
	buf_put(&o->q, hello, hlen);
	o->qoff = 0;
	o->state = PO_UP;
	o->up_ns = mono_ns();
	if (!o->said)
		LOG_INFO("linked to member %d at %s:%d%s", o->id, o->host, o->port, o->tx.curve ? " (CURVE keys)" : "");
	if (o->q.oom || out_flush(ps, o) < 0)
		out_fail(ps, o, o->q.oom ? "out of memory" : strerror(errno));
}

/*
 * Anything readable on an up out link is its end: the other side sends nothing after its
 * greeting but, when it refuses our hello, "CFPNO" and why (peerlink.h).
 */
static void out_readable(struct peers *ps, struct peer_out *o)
{
	uint8_t b[PEERLINK_REFUSAL_MAX + 1];
	ssize_t r = recv(o->fd, b, sizeof(b) - 1, 0);
	char why[PEERLINK_REFUSAL_MAX + 64];
	if (r > 0 && peerlink_refusal_text(b, (size_t)r, why, sizeof(why)) == 0)
		out_fail_as(ps, o, why, 1);
	else if (r == 0)
		out_fail(ps, o, "closed by the other end");
	else if (r > 0)
		out_fail(ps, o, "it sent bytes where none belong");
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		out_fail(ps, o, strerror(errno));
}

/* ---- in links ---- */

static void in_close(struct peer_in *in)
{
	drop_fd(&in->fd);
	free(in->rx);
	in->rx = NULL;
	in->rxlen = in->rxcap = in->rxoff = 0;
	in->id = 0;
	sodium_memzero(&in->crypt, sizeof(in->crypt));
	sodium_memzero(&in->greet, sizeof(in->greet));
}

/* A connection refused on the peer port: logged at most once per 10 s for each kind of reason
 * (so a flood of one kind hides no other), with a count of those not logged. */
static void refuse(struct peers *ps, struct peer_in *in, int kind, const char *why)
{
	ps->refused++;
	int64_t now = mono_ns();
	struct peers_ratelog *r = &ps->refusals[kind];
	if (!r->last_ns || now - r->last_ns >= REFUSAL_LOG_NS) {
		if (r->unlogged)
			LOG_WARN("peer port: refused a connection from %s: %s (and %" PRIu64 " more like it since the "
				 "last such line)", in->ip, why, r->unlogged);
		else
			LOG_WARN("peer port: refused a connection from %s: %s", in->ip, why);
		r->last_ns = now;
		r->unlogged = 0;
	} else {
		r->unlogged++;
	}
	in_close(in);
}

/* Which refusal kind an error code is. */
static int refusal_kind(int rc) { return rc == COORD_ENOAUTH ? REFUSED_AUTH : rc == COORD_EBADCONFIG ? REFUSED_CONFIG : REFUSED_PROTOCOL; }

static void in_accept(struct peers *ps)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		int fd = accept4(ps->listen_fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		tune(fd);
		/* A free slot, else the stranger that has been silent longest gives its own up. */
		struct peer_in *in = NULL, *oldest = NULL;
		for (int i = 0; i < PEERS_IN_MAX && !in; i++) {
			struct peer_in *x = &ps->in[i];
			if (x->fd < 0)
				in = x;
			else if (!x->id && (!oldest || x->deadline_ns < oldest->deadline_ns))
				oldest = x;
		}
		if (!in && oldest) {
			refuse(ps, oldest, REFUSED_PROTOCOL, "too many connections on the peer port: the oldest silent one closed");
			in = oldest;
		}
		if (!in) {
			close(fd);
			continue;
		}
		memset(in, 0, sizeof(*in));
		in->fd = fd;
		in->deadline_ns = mono_ns() + HANDSHAKE_NS;
		const struct in6_addr *a6 = &((struct sockaddr_in6 *)&sa)->sin6_addr;
		if (sa.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, in->ip, sizeof(in->ip));
		else if (sa.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(a6))
			inet_ntop(AF_INET, &a6->s6_addr[12], in->ip, sizeof(in->ip));
		else if (sa.ss_family == AF_INET6)
			inet_ntop(AF_INET6, a6, in->ip, sizeof(in->ip));
		else
			snprintf(in->ip, sizeof(in->ip), "?");
		peerlink_greeting_make(&ps->keys, ps->self, &in->greet);
		if (send(fd, in->greet.bytes, in->greet.len, MSG_NOSIGNAL) != (ssize_t)in->greet.len)
			in_close(in);
	}
}

static int is_member(const struct peers *ps, int id)
{
	for (int i = 0; i < ps->n; i++)
		if (ps->p[i].id == id)
			return 1;
	return 0;
}

/* Take the hello out of what was read. 0 while it is incomplete or taken; -1 if refused. */
static int in_hello(struct peers *ps, struct peer_in *in)
{
	size_t avail = in->rxlen - in->rxoff;
	long want = peerlink_hello_len(in->rx + in->rxoff, avail);
	if (want < 0) {
		refuse(ps, in, REFUSED_PROTOCOL, "not coordfs's peer protocol");
		return -1;
	}
	if (want == 0 || avail < (size_t)want)
		return 0;
	char why[300];
	int from = 0;
	int rc = peerlink_hello_take(&ps->keys, ps->self, &in->greet, in->rx + in->rxoff, (size_t)want, &from,
				     &in->crypt, why, sizeof(why));
	if (!rc && !is_member(ps, from)) {
		snprintf(why, sizeof(why), "it claims to be member %d, which has no server.%d line here", from, from);
		rc = COORD_ENOAUTH;
	}
	if (rc) {
		/* A coordfs member that is refused is told why, so its own log says it too. */
		uint8_t no[PEERLINK_REFUSAL_MAX];
		size_t nl = peerlink_refusal_make(no, why);
		(void)!send(in->fd, no, nl, MSG_NOSIGNAL | MSG_DONTWAIT);
		refuse(ps, in, refusal_kind(rc), why);
		return -1;
	}
	sodium_memzero(&in->greet, sizeof(in->greet));
	in->rxoff += (size_t)want;
	in->id = from;
	/* The member connected again: its older connection is dead to it. */
	for (int i = 0; i < PEERS_IN_MAX; i++)
		if (&ps->in[i] != in && ps->in[i].fd >= 0 && ps->in[i].id == from)
			in_close(&ps->in[i]);
	return 0;
}

/* Read what the socket has. 0, or -1 when the link is closed (and its slot freed). */
static int in_read(struct peers *ps, struct peer_in *in)
{
	if (in->rxcap - in->rxlen < READ_MIN && in->rxoff) { /* move what is left to the front */
		memmove(in->rx, in->rx + in->rxoff, in->rxlen - in->rxoff);
		in->rxlen -= in->rxoff;
		in->rxoff = 0;
	}
	if (in->rxcap - in->rxlen < READ_MIN) {
		/* Grow by doubling: memory follows what the other end really sent, never a length it
		 * merely claimed. */
		size_t cap = in->rxcap ? in->rxcap * 2 : 4 * READ_MIN;
		uint8_t *p = realloc(in->rx, cap);
		if (!p) {
			LOG_WARN("peer port: out of memory reading from %s: connection closed", in->ip);
			in_close(in);
			return -1;
		}
		in->rx = p;
		in->rxcap = cap;
	}
	size_t room = in->rxcap - in->rxlen;
	if (!in->id && room > PEERLINK_HELLO_MAX)
		room = PEERLINK_HELLO_MAX; /* nothing but the hello before the hello */
	ssize_t r = recv(in->fd, in->rx + in->rxlen, room, 0);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		if (!in->id)
			refuse(ps, in, REFUSED_PROTOCOL, r == 0 ? "it closed the connection without a hello" : strerror(errno));
		else
			in_close(in);
		return -1;
	}
	if (r > 0)
		in->rxlen += (size_t)r;
	return in->id ? 0 : in_hello(ps, in);
}

int peers_recv(struct peers *ps, int *from, const uint8_t **msg, size_t *len)
{
	size_t ov = peerlink_overhead(ps->keys.curve);
	for (int k = 0; k < PEERS_IN_MAX; k++) {
		int i = (ps->next_in + k) % PEERS_IN_MAX;
		struct peer_in *in = &ps->in[i];
		if (in->fd < 0 || !in->id)
			continue;
		size_t avail = in->rxlen - in->rxoff;
		if (avail < 4) {
			if (!avail)
				in->rxlen = in->rxoff = 0;
			continue;
		}
		uint32_t flen = rec_le32(in->rx + in->rxoff);
		if (flen > PEERLINK_FRAME_MAX || flen < ov) {
			LOG_WARN("member %d sent a frame of impossible length %" PRIu32 ": link closed", in->id, flen);
			in_close(in);
			continue;
		}
		if (avail < 4 + (size_t)flen)
			continue;
		const uint8_t *c = in->rx + in->rxoff + 4;
		in->rxoff += 4 + (size_t)flen;
		if (ov) {
			if (ps->plain_cap < flen) {
				uint8_t *p = realloc(ps->plain, flen);
				if (!p) {
					LOG_WARN("out of memory opening a frame of %" PRIu32 " bytes from member %d: link "
						 "closed", flen, in->id);
					in_close(in);
					continue;
				}
				ps->plain = p;
				ps->plain_cap = flen;
			}
			if (peerlink_open(&in->crypt, ps->plain, c, flen)) {
				LOG_WARN("member %d's link carried a frame that does not open with its key (changed on "
					 "the way?): link closed", in->id);
				in_close(in);
				continue;
			}
			c = ps->plain;
		}
		*from = in->id;
		*msg = c;
		*len = flen - ov;
		ps->next_in = (i + 1) % PEERS_IN_MAX;
		return 1;
	}
	return 0;
}

/* ---- the loop's side ---- */

int peers_pollfds(struct peers *ps, struct pollfd *pf, long *timeout_ms)
{
	int n = 0;
	pf[n] = (struct pollfd){.fd = ps->listen_fd, .events = POLLIN};
	ps->pmap[n++] = -1;
	for (int i = 0; i < ps->n; i++) {
		struct peer_out *o = &ps->p[i];
		long want = o->lost ? 0 : o->state == PO_RESOLVING ? 5 : -1; /* a loss to report, a name to check */
		if (want >= 0 && (*timeout_ms < 0 || *timeout_ms > want))
			*timeout_ms = want;
		if (o->fd < 0)
			continue;
		short ev = POLLIN;
		if (o->state == PO_CONNECTING)
			ev = POLLOUT;
		else if (o->state == PO_UP && (o->qoff < o->q.len || o->snap_fd >= 0))
			ev |= POLLOUT;
		pf[n] = (struct pollfd){.fd = o->fd, .events = ev};
		ps->pmap[n++] = i;
	}
	for (int i = 0; i < PEERS_IN_MAX; i++) {
		if (ps->in[i].fd < 0)
			continue;
		pf[n] = (struct pollfd){.fd = ps->in[i].fd, .events = POLLIN};
		ps->pmap[n++] = PEERS_MAX + i;
	}
	return n;
}

void peers_io(struct peers *ps, const struct pollfd *pf, int n, void (*lost)(void *arg, int id), void *arg)
{
	for (int k = 0; k < n; k++) {
		short re = pf[k].revents;
		if (!re)
			continue;
		int m = ps->pmap[k];
		if (m < 0) {
			in_accept(ps);
		} else if (m < PEERS_MAX) {
			struct peer_out *o = &ps->p[m];
			if (o->fd != pf[k].fd)
				continue; /* replaced since the poll */
			if (o->state == PO_CONNECTING)
				out_connected(ps, o);
			else if (o->state == PO_GREETING)
				out_greeting(ps, o);
			else if (o->state == PO_UP) {
				if (re & (POLLIN | POLLERR | POLLHUP))
					out_readable(ps, o);
				if (o->state == PO_UP && (re & POLLOUT) && out_flush(ps, o) < 0)
					out_fail(ps, o, strerror(errno));
			}
		} else {
			struct peer_in *in = &ps->in[m - PEERS_MAX];
			if (in->fd == pf[k].fd)
				in_read(ps, in);
		}
	}
	/* timers */
	int64_t now = mono_ns();
	for (int i = 0; i < ps->n; i++) {
		struct peer_out *o = &ps->p[i];
		if (o->state == PO_IDLE && now >= o->retry_ns)
			out_start(ps, o);
		else if (o->state == PO_RESOLVING)
			out_check_resolve(ps, o);
		else if (o->state == PO_UP && o->said && now - o->up_ns >= STABLE_NS) {
			o->said = 0;
			LOG_INFO("linked to member %d at %s:%d%s", o->id, o->host, o->port, o->tx.curve ? " (CURVE keys)" : "");
		} else if ((o->state == PO_CONNECTING || o->state == PO_GREETING) && now > o->deadline_ns)
			out_fail(ps, o, o->state == PO_CONNECTING ? "no answer to connect in syncLimit ticks" : "no greeting in syncLimit ticks");
	}
	for (int i = 0; i < PEERS_IN_MAX; i++)
		if (ps->in[i].fd >= 0 && !ps->in[i].id && now > ps->in[i].deadline_ns)
			refuse(ps, &ps->in[i], REFUSED_PROTOCOL, "no hello within 10 s");
	for (int i = 0; i < ps->n; i++) {
		if (ps->p[i].lost) {
			ps->p[i].lost = 0;
			if (lost)
				lost(arg, ps->p[i].id);
		}
	}
}

/* ---- opening and closing ---- */

int peers_open(struct peers *ps, const struct coord_config *cfg, const struct peerlink_keys *keys, char *err,
	       size_t errlen)
{
	memset(ps, 0, sizeof(*ps));
	ps->self = cfg->my_id;
	ps->rx_fd = -1;
	long uto = (long)cfg->sync_limit * cfg->tick_time;
	ps->user_timeout_ms = (unsigned)(uto < 1000 ? 1000 : uto > 600000 ? 600000 : uto);
	ps->listen_fd = -1;
	for (int i = 0; i < PEERS_IN_MAX; i++)
		ps->in[i].fd = -1;
	ps->opened = 1;
	if (keys)
		ps->keys = *keys;
	snprintf(ps->dir, sizeof(ps->dir), "%s", cfg->data_dir);
	if (sodium_init() < 0) {
		snprintf(err, errlen, "cannot start libsodium (no random source?)");
		return COORD_EIO;
	}
	const struct coord_member *me = coord_config_self(cfg);
	if (!me) {
		snprintf(err, errlen, "myid %d has no server.%d line", cfg->my_id, cfg->my_id);
		return COORD_EBADCONFIG;
	}
	/* Listen on every interface (the others reach us by whatever name our line gives), in IPv6
	 * with IPv4 mapped in where the system has it. */
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, zero = 0;
	if (fd >= 0) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)me->peer_port),
					 .sin6_addr = IN6ADDR_ANY_INIT};
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			int e = errno;
			close(fd);
			fd = -1;
			errno = e;
		}
	}
	if (fd < 0 && errno != EADDRINUSE) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)me->peer_port),
						.sin_addr.s_addr = htonl(INADDR_ANY)};
			if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
				int e = errno;
				close(fd);
				fd = -1;
				errno = e;
			}
		}
	}
	if (fd < 0 || listen(fd, 64) != 0) {
		snprintf(err, errlen, "cannot listen on peer port %d: %s", me->peer_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return COORD_EIO;
	}
	ps->listen_fd = fd;
	for (int i = 0; i < cfg->nmembers; i++) {
		const struct coord_member *m = &cfg->members[i];
		if (m->id == cfg->my_id)
			continue;
		struct peer_out *o = &ps->p[ps->n++];
		o->id = m->id;
		snprintf(o->host, sizeof(o->host), "%s", m->host);
		o->port = m->peer_port;
		o->fd = -1;
		o->snap_fd = -1;
		buf_init(&o->q);
		buf_init(&o->after);
		o->state = PO_IDLE; /* connects at the first peers_io */
	}
	return COORD_OK;
}

void peers_close(struct peers *ps)
{
	if (!ps->opened)
		return;
	for (int i = 0; i < ps->n; i++) {
		struct peer_out *o = &ps->p[i];
		if (o->gai) {
			struct resolve *r = o->gai;
			if (gai_cancel(&r->cb) != EAI_CANCELED) {
				const struct gaicb *w[1] = {&r->cb};
				while (gai_error(&r->cb) == EAI_INPROGRESS)
					gai_suspend(w, 1, NULL);
			}
			if (r->cb.ar_result)
				freeaddrinfo(r->cb.ar_result);
			free(r);
			o->gai = NULL;
		}
		out_reset(o);
	}
	for (int i = 0; i < PEERS_IN_MAX; i++)
		if (ps->in[i].fd >= 0)
			in_close(&ps->in[i]);
	drop_fd(&ps->listen_fd);
	if (ps->rx_fd >= 0) {
		close(ps->rx_fd);
		unlink(ps->rx_path);
		ps->rx_fd = -1;
	}
	sodium_memzero(&ps->keys, sizeof(ps->keys));
	free(ps->chunk);
	ps->chunk = NULL;
	free(ps->plain);
	ps->plain = NULL;
	ps->plain_cap = 0;
	ps->n = 0;
	ps->opened = 0;
}

/* ---- snapshots ---- */

int peers_send_snapshot(struct peers *ps, int id, const char *data_dir, uint64_t index, uint64_t term)
{
	struct peer_out *o = find(ps, id);
	if (!o || o->state != PO_UP)
		return COORD_ENOTREADY; /* offered again once linked */
	char path[COORD_DIR_MAX + 64];
	snprintf(path, sizeof(path), "%s/snapshot.%016" PRIx64, data_dir, index);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		LOG_WARN("cannot send snapshot %s to member %d: %s", path, id, strerror(errno));
		if (fd >= 0)
			close(fd);
		return COORD_EIO;
	}
	if (o->snap_fd >= 0) /* a newer offer replaces one still streaming; its chunks start at 0 */
		close(o->snap_fd);
	o->snap_fd = fd;
	o->snap_index = index;
	o->snap_term = term;
	o->snap_off = 0;
	o->snap_total = (uint64_t)st.st_size;
	LOG_INFO("sending snapshot 0x%" PRIx64 " (%" PRIu64 " bytes) to member %d", index, o->snap_total, id);
	return COORD_OK;
}

int peers_recv_chunk(struct peers *ps, uint64_t index, uint64_t term, uint64_t offset, uint64_t total,
		     const void *chunk, size_t len)
{
	if (offset == 0) {
		if (ps->rx_fd >= 0) {
			close(ps->rx_fd);
			unlink(ps->rx_path);
		}
		snprintf(ps->rx_path, sizeof(ps->rx_path), "%s/snapshot.%016" PRIx64 ".rx", ps->dir, index);
		ps->rx_fd = open(ps->rx_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
		if (ps->rx_fd < 0) {
			LOG_ERROR("cannot receive a snapshot into %s: %s", ps->rx_path, strerror(errno));
			return 0;
		}
		ps->rx_index = index;
		ps->rx_term = term;
		ps->rx_total = total;
		ps->rx_got = 0;
	}
	if (ps->rx_fd < 0 || index != ps->rx_index || term != ps->rx_term || total != ps->rx_total ||
	    offset != ps->rx_got)
		return 0; /* out of order: wait for the leader to start again */
	if (pwrite(ps->rx_fd, chunk, len, (off_t)offset) != (ssize_t)len) {
		LOG_ERROR("cannot write %s: %s", ps->rx_path, strerror(errno));
		close(ps->rx_fd);
		ps->rx_fd = -1;
		unlink(ps->rx_path);
		return 0;
	}
	ps->rx_got += len;
	return ps->rx_got == ps->rx_total;
}

int peers_have_snapshot(const struct peers *ps, uint64_t index, uint64_t term)
{
	return ps->rx_fd >= 0 && ps->rx_index == index && ps->rx_term == term && ps->rx_got == ps->rx_total;
}

int peers_keep_snapshot(struct peers *ps)
{
	char final[COORD_DIR_MAX + 64];
	snprintf(final, sizeof(final), "%s/snapshot.%016" PRIx64, ps->dir, ps->rx_index);
	int rc = COORD_OK;
	if (fsync(ps->rx_fd) != 0 || rename(ps->rx_path, final) != 0) {
		LOG_ERROR("cannot keep the received snapshot as %s: %s", final, strerror(errno));
		rc = COORD_EIO;
	}
	close(ps->rx_fd);
	ps->rx_fd = -1;
	int dfd = open(ps->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return rc;
}
