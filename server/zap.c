/*
 * zap.c: the ZAP handler, connection counting per address, refusal logs (see zap.h).
 */
#include "zap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "log.h"

#define RATELOG_NS (10LL * 1000000000LL) /* one line per kind of refusal per 10 s at most */
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define MON_ENDPOINT "inproc://coordd-client-port-monitor"

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ratelog_ok(struct ratelog *r, int64_t now_ns, uint64_t *suppressed)
{
	if (r->last_ns && now_ns - r->last_ns < RATELOG_NS) {
		r->suppressed++;
		return 0;
	}
	*suppressed = r->suppressed;
	r->suppressed = 0;
	r->last_ns = now_ns;
	return 1;
}

static const char *more_text(uint64_t n, char *buf, size_t len)
{
	if (n)
		snprintf(buf, len, " (and %" PRIu64 " more like it not logged)", n);
	else
		buf[0] = '\0';
	return buf;
}

int zap_open(struct zap *z, void *zctx, const struct coord_config *cfg, char *err, size_t errlen)
{
	memset(z, 0, sizeof(*z));
	pthread_mutex_init(&z->mu, NULL);
	z->mu_init = 1;
	z->curve = cfg->auth == COORD_AUTH_CURVE;
	z->max_cnxns = cfg->max_client_cnxns;
	int rc;
	if (z->curve) {
		snprintf(z->clients_file, sizeof(z->clients_file), "%s", cfg->authorized_keys_file);
		if ((rc = coord_key_load(cfg->client_secret_key_file, 1, &z->client_kp, err, errlen)) ||
		    (rc = coord_authkeys_load(cfg->authorized_keys_file, &z->clients, err, errlen)))
			return rc;
		LOG_INFO("auth=curve: clients need a key listed in %s (%zu keys); %s", cfg->authorized_keys_file,
			 z->clients.n, cfg->nmembers ? "members need their key in memberKeysFile" : "standalone");
	} else {
		LOG_WARN("auth=none: serving in plaintext without authentication: whoever reaches clientPort%s can "
			 "read and change everything (see README.md, Security)", cfg->nmembers ? " or the peer port" : "");
	}
	z->sock = zmq_socket(zctx, ZMQ_REP);
	int zero = 0;
	if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
		snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
		return COORD_EIO;
	}
	return COORD_OK;
}

void zap_close(struct zap *z)
{
	if (z->started) {
		__atomic_store_n(&z->stopping, 1, __ATOMIC_RELEASE);
		/* A stopping member must not wait out the handler's poll: clients of its port notice
		 * its going only when it closes the port, after this. */
		ssize_t w = write(z->wake[1], "x", 1);
		(void)w;
		pthread_join(z->thread, NULL);
		z->started = 0;
		close(z->wake[0]);
		close(z->wake[1]);
	}
	if (z->sock)
		zmq_close(z->sock);
	if (z->mon)
		zmq_close(z->mon);
	z->sock = z->mon = NULL;
	coord_authkeys_free(&z->clients);
	free(z->conns);
	z->conns = NULL;
	z->nconns = z->cconns = 0;
	if (z->mu_init)
		pthread_mutex_destroy(&z->mu);
	z->mu_init = 0;
}

int zap_server_socket(struct zap *z, void *sock)
{
	if (!z->curve && !z->max_cnxns)
		return 0; /* nothing to check or count: no handler needed */
	int one = 1;
	if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN_CLIENT, strlen(ZAP_DOMAIN_CLIENT)) != 0)
		return -1;
	if (!z->curve)
		return 0;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z->client_kp.secret_z85, COORD_KEY_Z85_LEN) != 0)
		return -1;
	return 0;
}

int zap_monitor(struct zap *z, void *zctx, void *client_sock)
{
	int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
	if (zmq_socket_monitor(client_sock, MON_ENDPOINT, events) != 0)
		return -1;
	z->mon = zmq_socket(zctx, ZMQ_PAIR);
	int zero = 0;
	if (!z->mon || zmq_setsockopt(z->mon, ZMQ_LINGER, &zero, sizeof(zero)) != 0 || zmq_connect(z->mon, MON_ENDPOINT) != 0)
		return -1;
	return 0;
}

int zap_principal_ok(struct zap *z, const char *principal)
{
	if (!z->curve)
		return 1;
	int ok = 0;
	pthread_mutex_lock(&z->mu);
	for (size_t i = 0; i < z->clients.n && !ok; i++)
		ok = strcmp(z->clients.v[i].name, principal) == 0;
	pthread_mutex_unlock(&z->mu);
	return ok;
}

int zap_conns_from(const struct zap *z, const char *ip)
{
	int n = 0;
	for (size_t i = 0; i < z->nconns; i++)
		n += strcmp(z->conns[i].ip, ip) == 0;
	return n;
}

static void conn_add(struct zap *z, int fd)
{
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	char ip[ZAP_IP_MAX] = "?";
	if (getpeername(fd, (struct sockaddr *)&sa, &sl) == 0) {
		if (sa.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, ip, sizeof(ip));
		else if (sa.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, ip, sizeof(ip));
	}
	if (z->nconns == z->cconns) {
		size_t c = z->cconns ? z->cconns * 2 : 64;
		struct zap_conn *v = realloc(z->conns, c * sizeof(*v));
		if (!v)
			return; /* not counted: the limit is a guard, not bookkeeping anything depends on */
		z->conns = v;
		z->cconns = c;
	}
	for (size_t i = 0; i < z->nconns; i++)
		if (z->conns[i].fd == fd) { /* a reused fd whose close we missed */
			snprintf(z->conns[i].ip, sizeof(z->conns[i].ip), "%s", ip);
			return;
		}
	z->conns[z->nconns].fd = fd;
	snprintf(z->conns[z->nconns].ip, sizeof(z->conns[z->nconns].ip), "%s", ip);
	z->nconns++;
}

static void conn_remove(struct zap *z, int fd, char *ip, size_t iplen)
{
	for (size_t i = 0; i < z->nconns; i++)
		if (z->conns[i].fd == fd) {
			snprintf(ip, iplen, "%s", z->conns[i].ip);
			z->conns[i] = z->conns[--z->nconns];
			return;
		}
	snprintf(ip, iplen, "?");
}

static void take_monitor(struct zap *z)
{
	while (z->mon) {
		zmq_msg_t ev, addr;
		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, z->mon, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			return;
		}
		uint16_t event = 0;
		uint32_t value = 0;
		if (zmq_msg_size(&ev) >= 6) {
			memcpy(&event, zmq_msg_data(&ev), 2);
			memcpy(&value, (uint8_t *)zmq_msg_data(&ev) + 2, 4);
		}
		int more = zmq_msg_more(&ev);
		zmq_msg_close(&ev);
		if (more) {
			zmq_msg_init(&addr);
			zmq_msg_recv(&addr, z->mon, 0);
			zmq_msg_close(&addr);
		}
		if (event == ZMQ_EVENT_ACCEPTED) {
			conn_add(z, (int)value);
		} else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
			z->failed_handshake = 1;
		} else if (event == ZMQ_EVENT_DISCONNECTED) {
			char ip[ZAP_IP_MAX];
			conn_remove(z, (int)value, ip, sizeof(ip));
			if (z->failed_handshake) {
				z->failed_handshake = 0;
				z->refused_plain++;
				uint64_t sup;
				char more_buf[80];
				if (ratelog_ok(&z->log_nokey, mono_ns(), &sup))
					LOG_WARN("refused a client from %s: its handshake failed (%s)%s",
						 strcmp(ip, "?") ? ip : "an address unknown (it closed before it was read)",
						 z->curve ? "no CURVE key, or not this ensemble's server key"
							  : "it uses CURVE but this server runs auth=none",
						 more_text(sup, more_buf, sizeof(more_buf)));
			}
		}
	}
}

static void reply(struct zap *z, zmq_msg_t *reqid, const char *status, const char *text, const char *user)
{
	zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
	zmq_msg_send(reqid, z->sock, ZMQ_SNDMORE);
	zmq_send(z->sock, status, strlen(status), ZMQ_SNDMORE);
	zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(z->sock, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(z->sock, "", 0, 0);
}

#define ZAP_FRAMES 7

static void answer(struct zap *z)
{
	zmq_msg_t f[ZAP_FRAMES + 1];
	int n = 0, more = 1;
	while (more) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, z->sock, n ? 0 : ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			if (n == 0)
				return;
			break;
		}
		more = zmq_msg_more(&m);
		if (n < ZAP_FRAMES)
			f[n++] = m;
		else
			zmq_msg_close(&m);
	}
	take_monitor(z); /* the accept of this connection was announced before its ZAP request */
	char domain[32] = "", ip[ZAP_IP_MAX] = "", mech[16] = "";
#define COPY(dst, i) \
	if (n > (i)) snprintf(dst, sizeof(dst), "%.*s", (int)zmq_msg_size(&f[i]), (const char *)zmq_msg_data(&f[i]))
	COPY(domain, 2);
	COPY(ip, 3);
	COPY(mech, 5);
#undef COPY
	int64_t now = mono_ns();
	uint64_t sup;
	char more_buf[80], kz[COORD_KEY_Z85_LEN + 1] = "";
	int is_curve = strcmp(mech, "CURVE") == 0 && n >= 7 && zmq_msg_size(&f[6]) == COORD_KEY_BIN_LEN;
	if (is_curve)
		zmq_z85_encode(kz, zmq_msg_data(&f[6]), COORD_KEY_BIN_LEN);
	zmq_msg_t reqid;
	zmq_msg_init(&reqid);
	if (n >= 2)
		zmq_msg_copy(&reqid, &f[1]);

	if (n < 6) {
		reply(z, &reqid, "500", "malformed ZAP request", "");
	} else if (strcmp(domain, ZAP_DOMAIN_CLIENT) == 0) {
		char principal[COORD_PRINCIPAL_MAX + 1] = "";
		pthread_mutex_lock(&z->mu);
		const struct coord_authkey *k = is_curve ? coord_authkeys_find(&z->clients, zmq_msg_data(&f[6])) : NULL;
		if (k)
			snprintf(principal, sizeof(principal), "%s", k->name);
		pthread_mutex_unlock(&z->mu);
		int count = zap_conns_from(z, ip);
		if (z->max_cnxns && count > z->max_cnxns) {
			z->refused_cnxns++;
			if (ratelog_ok(&z->log_cnxns, now, &sup))
				LOG_WARN("refused a connection from %s: it has %d connections open (maxClientCnxns=%d)%s", ip,
					 count - 1, z->max_cnxns, more_text(sup, more_buf, sizeof(more_buf)));
			reply(z, &reqid, "500", "too many connections from this address", "");
		} else if (!z->curve) {
			reply(z, &reqid, "200", "OK", "");
		} else if (principal[0]) {
			LOG_DEBUG("admitted %s from %s", principal, ip);
			reply(z, &reqid, "200", "OK", principal);
		} else {
			z->refused_keys++;
			if (ratelog_ok(&z->log_key, now, &sup))
				LOG_WARN("refused a client from %s: key %s is not in %s%s", ip, kz[0] ? kz : "(none)",
					 z->clients_file, more_text(sup, more_buf, sizeof(more_buf)));
			reply(z, &reqid, "400", "key not authorised", "");
		}
	} else {
		reply(z, &reqid, "400", "unknown domain", "");
	}
	zmq_msg_close(&reqid);
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
}

/* The handler's thread: it alone uses the ZAP socket and the monitors once started. */
static void *zap_main(void *arg)
{
	struct zap *z = arg;
	while (!__atomic_load_n(&z->stopping, __ATOMIC_ACQUIRE)) {
		zmq_pollitem_t it[3];
		int n = 0;
		it[n++] = (zmq_pollitem_t){NULL, z->wake[0], ZMQ_POLLIN, 0};
		it[n++] = (zmq_pollitem_t){z->sock, 0, ZMQ_POLLIN, 0};
		if (z->mon)
			it[n++] = (zmq_pollitem_t){z->mon, 0, ZMQ_POLLIN, 0};
		if (zmq_poll(it, n, 100) < 0 && zmq_errno() != EINTR) {
			LOG_ERROR("ZAP handler: zmq_poll: %s", zmq_strerror(zmq_errno()));
			break;
		}
		take_monitor(z);
		for (int i = 0; i < 1024; i++) {
			int ev = 0;
			size_t sl = sizeof(ev);
			if (zmq_getsockopt(z->sock, ZMQ_EVENTS, &ev, &sl) != 0 || !(ev & ZMQ_POLLIN))
				break;
			answer(z);
		}
	}
	return NULL;
}

int zap_start(struct zap *z, char *err, size_t errlen)
{
	/* Signals belong to the server's thread (SIGTERM, SIGHUP set flags there). */
	if (pipe2(z->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(err, errlen, "cannot start the ZAP handler: pipe: %s", strerror(errno));
		return COORD_EIO;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&z->thread, NULL, zap_main, z);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		close(z->wake[0]);
		close(z->wake[1]);
		snprintf(err, errlen, "cannot start the ZAP handler's thread: %s", strerror(rc));
		return COORD_EIO;
	}
	z->started = 1;
	return COORD_OK;
}

void zap_reload(struct zap *z)
{
	if (!z->curve) {
		LOG_INFO("SIGHUP: auth=none, no keys to reload");
		return;
	}
	struct coord_authkeys fresh;
	char err[600];
	if (coord_authkeys_load(z->clients_file, &fresh, err, sizeof(err))) {
		LOG_ERROR("SIGHUP: %s; keeping the %zu keys loaded before", err, z->clients.n);
		return;
	}
	size_t added = 0, removed = 0;
	for (size_t i = 0; i < fresh.n; i++)
		added += !coord_authkeys_find(&z->clients, fresh.v[i].key);
	for (size_t i = 0; i < z->clients.n; i++)
		removed += !coord_authkeys_find(&fresh, z->clients.v[i].key);
	pthread_mutex_lock(&z->mu);
	struct coord_authkeys old = z->clients;
	z->clients = fresh;
	pthread_mutex_unlock(&z->mu);
	coord_authkeys_free(&old);
	LOG_INFO("SIGHUP: reloaded %s: %zu keys (%zu added, %zu removed)", z->clients_file, fresh.n, added, removed);
}
