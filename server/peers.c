/*
 * peers.c: ZeroMQ links between members, connection-loss detection, snapshot streaming.
 */
#include "peers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "log.h"
#include "peerwire.h"

#define CHUNK (1u << 20)

static void endpoint_of(char *out, size_t len, const char *host, int port)
{
	if (strchr(host, ':'))
		snprintf(out, len, "tcp://[%s]:%d", host, port);
	else
		snprintf(out, len, "tcp://%s:%d", host, port);
}

int peers_open(struct peers *ps, void *zctx, const struct coord_config *cfg, struct zap *zap, char *err,
	       size_t errlen)
{
	memset(ps, 0, sizeof(*ps));
	ps->zctx = zctx;
	ps->self = cfg->my_id;
	ps->rx_fd = -1;
	snprintf(ps->dir, sizeof(ps->dir), "%s", cfg->data_dir);
	const struct coord_member *me = coord_config_self(cfg);
	if (!me) {
		snprintf(err, errlen, "myid %d has no server.%d line", cfg->my_id, cfg->my_id);
		return COORD_EBADCONFIG;
	}
	int zero = 0, hwm = 100000, one = 1;
	ps->router = zmq_socket(zctx, ZMQ_ROUTER);
	if (!ps->router) {
		snprintf(err, errlen, "cannot create the peer socket: %s", zmq_strerror(errno));
		return COORD_EIO;
	}
	zmq_setsockopt(ps->router, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(ps->router, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	ps->curve = zap->curve;
	if (zap_server_socket(zap, ps->router, ZAP_DOMAIN_PEER) != 0 || zap_monitor_peers(zap, zctx, ps->router) != 0) {
		snprintf(err, errlen, "cannot set up authentication on the peer port: %s", zmq_strerror(errno));
		return COORD_EIO;
	}
	char ep[COORD_HOST_MAX + 32];
	/* Listen on the address our own line names, on every interface when it names a host name. */
	endpoint_of(ep, sizeof(ep), "0.0.0.0", me->peer_port);
	if (zmq_bind(ps->router, ep) != 0) {
		snprintf(err, errlen, "cannot listen on peer port %d: %s", me->peer_port, zmq_strerror(errno));
		return COORD_EIO;
	}
	for (int i = 0; i < cfg->nmembers; i++) {
		const struct coord_member *m = &cfg->members[i];
		if (m->id == cfg->my_id)
			continue;
		struct peer *p = &ps->p[ps->n++];
		p->id = m->id;
		endpoint_of(p->endpoint, sizeof(p->endpoint), m->host, m->peer_port);
		p->sock = zmq_socket(zctx, ZMQ_DEALER);
		if (!p->sock) {
			snprintf(err, errlen, "cannot create a peer socket: %s", zmq_strerror(errno));
			return COORD_EIO;
		}
		char ident[16];
		int il = snprintf(ident, sizeof(ident), "m%d", cfg->my_id);
		int ivl = 50, ivl_max = 500;
		zmq_setsockopt(p->sock, ZMQ_ROUTING_ID, ident, (size_t)il);
		zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(p->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
		zmq_setsockopt(p->sock, ZMQ_IMMEDIATE, &one, sizeof(one));
		zmq_setsockopt(p->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
		zmq_setsockopt(p->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
		int rc = zap_peer_client(zap, p->sock, m->id, err, errlen);
		if (rc)
			return rc;
		char monep[64];
		snprintf(monep, sizeof(monep), "inproc://peer-mon-%d-%d", cfg->my_id, m->id);
		if (zmq_socket_monitor(p->sock, monep, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) == 0) {
			p->mon = zmq_socket(zctx, ZMQ_PAIR);
			if (p->mon)
				zmq_connect(p->mon, monep);
		}
		if (zmq_connect(p->sock, p->endpoint) != 0) {
			snprintf(err, errlen, "server.%d: cannot connect to %s: %s", m->id, p->endpoint, zmq_strerror(errno));
			return COORD_EIO;
		}
	}
	return COORD_OK;
}

void peers_close(struct peers *ps)
{
	for (int i = 0; i < ps->n; i++) {
		if (ps->p[i].sock)
			zmq_close(ps->p[i].sock);
		if (ps->p[i].mon)
			zmq_close(ps->p[i].mon);
	}
	if (ps->router)
		zmq_close(ps->router);
	if (ps->rx_fd >= 0) {
		close(ps->rx_fd);
		unlink(ps->rx_path);
	}
	ps->n = 0;
	ps->router = NULL;
}

static struct peer *find(struct peers *ps, int id)
{
	for (int i = 0; i < ps->n; i++)
		if (ps->p[i].id == id)
			return &ps->p[i];
	return NULL;
}

void peers_send(struct peers *ps, int id, const void *frame, size_t len)
{
	struct peer *p = find(ps, id);
	if (!p || !p->sock)
		return;
	if (zmq_send(p->sock, frame, len, ZMQ_DONTWAIT) < 0 && errno != EAGAIN)
		LOG_DEBUG("send to member %d: %s", id, zmq_strerror(errno));
}

int peers_recv(struct peers *ps, int *from, void *msg)
{
	zmq_msg_t ident;
	zmq_msg_init(&ident);
	if (zmq_msg_recv(&ident, ps->router, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&ident);
		return 0;
	}
	int more = zmq_msg_more(&ident);
	char name[16] = {0};
	size_t il = zmq_msg_size(&ident);
	if (il < sizeof(name))
		memcpy(name, zmq_msg_data(&ident), il);
	zmq_msg_close(&ident);
	zmq_msg_t *body = msg;
	zmq_msg_init(body);
	if (!more || zmq_msg_recv(body, ps->router, 0) < 0) {
		zmq_msg_close(body);
		return -1;
	}
	while (zmq_msg_more(body)) { /* one frame per message: drop extras */
		zmq_msg_t junk;
		zmq_msg_init(&junk);
		int r = zmq_msg_recv(&junk, ps->router, 0);
		int m = r >= 0 && zmq_msg_more(&junk);
		zmq_msg_close(&junk);
		if (!m)
			break;
	}
	int id = 0;
	if (name[0] != 'm' || sscanf(name + 1, "%d", &id) != 1 || !find(ps, id)) {
		LOG_WARN("peer port: a message from an unknown member '%.15s' was dropped", name);
		zmq_msg_close(body);
		return -1;
	}
	if (ps->curve) {
		/* The routing id is the sender's claim; its key (the ZAP User-Id) is the proof. */
		const char *who = zmq_msg_gets(body, "User-Id");
		char want[32];
		snprintf(want, sizeof(want), "server.%d", id);
		if (!who || strcmp(who, want) != 0) {
			if (!ps->forged_logged++)
				LOG_WARN("peer port: %s claimed to be member %d: dropped (and further ones like it)",
					 who ? who : "a connection without a key", id);
			zmq_msg_close(body);
			return -1;
		}
	}
	*from = id;
	return 1;
}

void peers_poll_monitors(struct peers *ps, void (*lost)(void *arg, int id), void *arg)
{
	for (int i = 0; i < ps->n; i++) {
		struct peer *p = &ps->p[i];
		if (!p->mon)
			continue;
		for (;;) {
			zmq_msg_t ev;
			zmq_msg_init(&ev);
			if (zmq_msg_recv(&ev, p->mon, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&ev);
				break;
			}
			uint16_t event = 0;
			if (zmq_msg_size(&ev) >= 2)
				memcpy(&event, zmq_msg_data(&ev), 2);
			int more = zmq_msg_more(&ev);
			zmq_msg_close(&ev);
			if (more) { /* the address frame */
				zmq_msg_t addr;
				zmq_msg_init(&addr);
				zmq_msg_recv(&addr, p->mon, 0);
				zmq_msg_close(&addr);
			}
			if (event == ZMQ_EVENT_CONNECTED) {
				p->up = 1;
			} else if (event == ZMQ_EVENT_DISCONNECTED) {
				p->up = 0;
				lost(arg, p->id);
			}
		}
	}
}

int peers_send_snapshot(struct peers *ps, int id, const char *data_dir, uint64_t index, uint64_t term)
{
	char path[COORD_DIR_MAX + 64];
	snprintf(path, sizeof(path), "%s/snapshot.%016" PRIx64, data_dir, index);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		LOG_WARN("cannot send snapshot %s to member %d: %s", path, id, strerror(errno));
		return COORD_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return COORD_EIO;
	}
	uint64_t total = (uint64_t)st.st_size, off = 0;
	uint8_t *chunk = malloc(CHUNK);
	struct buf b;
	buf_init(&b);
	int rc = chunk ? COORD_OK : COORD_ENOMEM;
	while (!rc && off < total) {
		ssize_t n = pread(fd, chunk, CHUNK, (off_t)off);
		if (n <= 0) {
			rc = COORD_EIO;
			break;
		}
		buf_reset(&b);
		peer_encode_chunk(&b, index, term, off, total, chunk, (size_t)n);
		peers_send(ps, id, b.p, b.len);
		off += (uint64_t)n;
	}
	LOG_INFO("sent snapshot 0x%" PRIx64 " (%" PRIu64 " bytes) to member %d", index, total, id);
	buf_free(&b);
	free(chunk);
	close(fd);
	return rc;
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
