/*
 * cluster.c: the contents of .cluster, the ensemble as seen from this host, asked afresh at
 * every open (see cluster.h).
 *
 * Every member in the mount's server list is asked for `mntr` at once (one thread each, a short
 * timeout), without the mount's session: .cluster works while the mount is cut off, which is
 * when one looks at it. One member that answered (the leader if it did) is then asked for `conf`,
 * which names every member of the ensemble; members missing from the mount's list are asked
 * too. The leader's `mntr` says how far behind each member is and whether it hears from it.
 */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "session.h"

#define ASK_MS 500         /* how long a member gets to answer */
#define MAX_MEMBERS 64     /* rows at most (an ensemble has at most 32 members) */
#define HOST_MAX 256

struct member {
	char host[HOST_MAX];   /* without brackets */
	int port;
	int listed;            /* in the mount's server list */
	int asked, answered;
	char err[200];
	char *mntr;            /* the answer */
	int read;              /* mntr parsed */
	int id;                /* -1: not known */
	char mode[16];
	char zxid[24];
	int observer;          /* from conf */
	/* the leader's view of it */
	int seen_by_leader, silent;
	char lag[24];
};

struct cluster {
	struct member m[MAX_MEMBERS];
	int n;
};

/* "host:port" with brackets around an IPv6 literal. */
static void addr_of(const struct member *m, char *buf, size_t size)
{
	snprintf(buf, size, strchr(m->host, ':') ? "[%s]:%d" : "%s:%d", m->host, m->port);
}

/* One entry of a server list ("host", "host:port", "[v6]:port"); 0 or -1 when unparsable. */
static int parse_hostport(const char *s, size_t len, char *host, int *port)
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (!len)
		return -1;
	const char *h = s, *p = NULL;
	size_t hl;
	if (*s == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return -1;
		h = s + 1;
		hl = (size_t)(close - h);
		if ((size_t)(close + 1 - s) < len) {
			if (close[1] != ':')
				return -1;
			p = close + 2;
		}
	} else {
		const char *colon = NULL;
		for (size_t i = 0; i < len; i++)
			if (s[i] == ':')
				colon = s + i;
		hl = colon ? (size_t)(colon - s) : len;
		p = colon ? colon + 1 : NULL;
	}
	if (!hl || hl >= HOST_MAX)
		return -1;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = 2181;
	if (p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || end != s + len || v < 1 || v > 65535)
			return -1;
		*port = (int)v;
	}
	return 0;
}

static struct member *add(struct cluster *c, const char *host, int port)
{
	for (int i = 0; i < c->n; i++)
		if (c->m[i].port == port && !strcmp(c->m[i].host, host))
			return &c->m[i];
	if (c->n == MAX_MEMBERS)
		return NULL;
	struct member *m = &c->m[c->n++];
	memset(m, 0, sizeof(*m));
	snprintf(m->host, sizeof(m->host), "%s", host);
	m->port = port;
	m->id = -1;
	return m;
}

/* ---- asking ---- */

struct ask {
	struct member *m;
	const char *word;
	char *text;
	int rc;
	char err[200];
	pthread_t th;
	int started;
};

static void *ask_main(void *arg)
{
	struct ask *a = arg;
	char addr[HOST_MAX + 16];
	addr_of(a->m, addr, sizeof(addr));
	a->rc = coord_admin_oneshot(addr, a->word, ASK_MS, &a->text, a->err, sizeof(a->err));
	return NULL;
}

/* Ask every member not asked yet for `mntr`, all at once. */
static void ask_all(struct cluster *c)
{
	struct ask asks[MAX_MEMBERS];
	int n = 0;
	for (int i = 0; i < c->n; i++) {
		if (c->m[i].asked)
			continue;
		c->m[i].asked = 1;
		asks[n] = (struct ask){.m = &c->m[i], .word = "mntr"};
		n++;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* signals are for the request loop (loop.c) */
	for (int i = 0; i < n; i++)
		asks[i].started = pthread_create(&asks[i].th, NULL, ask_main, &asks[i]) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < n; i++) {
		if (asks[i].started)
			pthread_join(asks[i].th, NULL);
		else
			ask_main(&asks[i]);
		struct member *m = asks[i].m;
		if (asks[i].rc == COORD_OK && asks[i].text) {
			m->answered = 1;
			m->mntr = asks[i].text;
		} else {
			free(asks[i].text);
			snprintf(m->err, sizeof(m->err), "%s", asks[i].err[0] ? asks[i].err : coord_strerror(asks[i].rc));
		}
	}
}

/* The value of "key\tvalue" in an mntr answer, copied into buf; 0 if found. */
static int mntr_get(const char *text, const char *key, char *buf, size_t size)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > kl && !strncmp(p, key, kl) && p[kl] == '\t') {
			size_t vl = ll - kl - 1;
			if (vl >= size)
				vl = size - 1;
			memcpy(buf, p + kl + 1, vl);
			buf[vl] = 0;
			return 0;
		}
		p = eol ? eol + 1 : NULL;
	}
	return -1;
}

static void read_mntr(struct member *m)
{
	char v[64];
	if (!m->answered || m->read)
		return;
	m->read = 1;
	if (!mntr_get(m->mntr, "coordfs_server_id", v, sizeof(v)))
		m->id = atoi(v);
	if (mntr_get(m->mntr, "zk_server_state", m->mode, sizeof(m->mode)))
		snprintf(m->mode, sizeof(m->mode), "?");
	if (mntr_get(m->mntr, "coordfs_last_zxid", m->zxid, sizeof(m->zxid)))
		snprintf(m->zxid, sizeof(m->zxid), "-");
}

static struct member *by_id(struct cluster *c, int id)
{
	for (int i = 0; i < c->n; i++)
		if (c->m[i].id == id)
			return &c->m[i];
	return NULL;
}

/*
 * conf's "server.N=host:peerPort:electionPort:role;clientPort" lines: name every member, and add
 * the ones the mount's list lacks. A member whose clientAddr differs from its host is matched
 * by its id once it answers.
 */
static void read_conf(struct cluster *c, const char *conf)
{
	for (const char *p = conf; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		char line[600];
		if (ll < sizeof(line) && !strncmp(p, "server.", 7)) {
			memcpy(line, p, ll);
			line[ll] = 0;
			int id = atoi(line + 7);
			char *eq = strchr(line, '='), *semi = strrchr(line, ';');
			if (eq && semi && id > 0) {
				*semi = 0;
				int cport = atoi(semi + 1);
				/* host:peer:election:role, from the right (a v6 host has colons) */
				char *role = strrchr(eq + 1, ':');
				int observer = role && !strcmp(role + 1, "observer");
				char *hostend = eq + 1;
				for (int k = 0; k < 3 && (hostend = strrchr(eq + 1, ':')); k++)
					*hostend = 0;
				char *host = eq + 1;
				if (*host == '[' && host[strlen(host) - 1] == ']') {
					host[strlen(host) - 1] = 0;
					host++;
				}
				struct member *m = by_id(c, id);
				if (!m) {
					/* the same address in the mount's list (down, so its id is not known) */
					m = add(c, host, cport);
					if (m && m->id < 0 && m->asked && !m->answered)
						m->id = id;
					else if (m && m->id >= 0 && m->id != id)
						m = NULL;
				}
				if (m) {
					if (m->id < 0 && !m->asked)
						m->id = id;
					m->observer = observer;
				}
			}
		}
		p = eol ? eol + 1 : NULL;
	}
}

/* The leader's "coordfs_member.N\trole match=0x.. lag=N up|silent" lines. */
static void read_leader_view(struct cluster *c, const char *mntr)
{
	for (const char *p = mntr; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		char line[200];
		if (ll < sizeof(line) && !strncmp(p, "coordfs_member.", 15)) {
			memcpy(line, p, ll);
			line[ll] = 0;
			struct member *m = by_id(c, atoi(line + 15));
			if (m) {
				m->seen_by_leader = 1;
				char *lag = strstr(line, "lag=");
				if (lag) {
					size_t k = strcspn(lag + 4, " \t");
					snprintf(m->lag, sizeof(m->lag), "%.*s", (int)k, lag + 4);
				}
				m->silent = strstr(line, " silent") != NULL;
			}
		}
		p = eol ? eol + 1 : NULL;
	}
}

/* ---- the text ---- */

struct out {
	char *p;
	size_t len, cap;
	int oom;
};

static void say(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct out *o, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? o->cap - o->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->oom = 1;
			return;
		}
		if (o->p && o->len + (size_t)n < o->cap) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap ? o->cap * 2 : 1024;
		while (cap < o->len + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(o->p, cap);
		if (!np) {
			o->oom = 1;
			return;
		}
		o->p = np;
		o->cap = cap;
	}
}

static int row_order(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	if ((x->id < 0) != (y->id < 0))
		return x->id < 0 ? 1 : -1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* host:port of the server this mount's session is connected to ("" if none). */
static void connected_to(struct coordfs *fs, char *host, int *port)
{
	char buf[HOST_MAX + 16];
	host[0] = 0;
	*port = 0;
	session_server(fs, buf, sizeof(buf));
	if (buf[0] && parse_hostport(buf, strlen(buf), host, port))
		host[0] = 0;
}

int cluster_text(struct coordfs *fs, char **text, size_t *len)
{
	struct cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	const char *hosts = fs->opts.hosts;
	for (const char *p = hosts; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		char host[HOST_MAX];
		int port;
		struct member *m = !parse_hostport(p, l, host, &port) ? add(c, host, port) : NULL;
		if (m)
			m->listed = 1;
		p = comma ? comma + 1 : NULL;
	}
	ask_all(c);
	for (int i = 0; i < c->n; i++)
		read_mntr(&c->m[i]);
	/* Who is in the ensemble: the leader knows best, any member will do. */
	struct member *src = NULL;
	for (int i = 0; i < c->n; i++)
		if (c->m[i].answered && (!src || !strcmp(c->m[i].mode, "leader")))
			src = &c->m[i];
	if (src && strcmp(src->mode, "standalone")) {
		char addr[HOST_MAX + 16], err[200], *conf = NULL;
		addr_of(src, addr, sizeof(addr));
		if (coord_admin_oneshot(addr, "conf", ASK_MS, &conf, err, sizeof(err)) == COORD_OK && conf)
			read_conf(c, conf);
		free(conf);
		ask_all(c);
		for (int i = 0; i < c->n; i++)
			read_mntr(&c->m[i]);
	}
	int leader = -1;
	char term[24] = "";
	for (int i = 0; i < c->n; i++)
		if (c->m[i].answered && !strcmp(c->m[i].mode, "leader")) {
			leader = c->m[i].id;
			mntr_get(c->m[i].mntr, "coordfs_term", term, sizeof(term));
			read_leader_view(c, c->m[i].mntr);
		}

	char chost[HOST_MAX];
	int cport;
	connected_to(fs, chost, &cport);
	qsort(c->m, (size_t)c->n, sizeof(c->m[0]), row_order);
	size_t w = 6;
	for (int i = 0; i < c->n; i++) {
		char addr[HOST_MAX + 16];
		addr_of(&c->m[i], addr, sizeof(addr));
		if (strlen(addr) > w)
			w = strlen(addr);
	}
	struct out o = {0};
	say(&o, "%-*s  %-3s  %-10s  %-12s  %-6s  %s\n", (int)w, "SERVER", "ID", "MODE", "ZXID", "LAG", "HEALTH");
	int voters = 0, voters_up = 0, standalone = 0;
	for (int i = 0; i < c->n; i++) {
		struct member *m = &c->m[i];
		char addr[HOST_MAX + 16], id[16];
		addr_of(m, addr, sizeof(addr));
		snprintf(id, sizeof(id), m->id >= 0 ? "%d" : "-", m->id);
		const char *health = !m->answered ? "down" : m->silent ? "silent" : "up";
		int conn = chost[0] && m->port == cport && !strcmp(m->host, chost);
		if (m->answered && !strcmp(m->mode, "standalone"))
			standalone = 1;
		int observer = m->observer || (m->answered && !strcmp(m->mode, "observer"));
		if (!observer) {
			voters++;
			voters_up += m->answered;
		}
		say(&o, "%-*s  %-3s  %-10s  %-12s  %-6s  %s", (int)w, addr, id, m->answered ? m->mode : "-",
		    m->answered ? m->zxid : "-", m->seen_by_leader && m->lag[0] ? m->lag : "-", health);
		if (conn)
			say(&o, "  connected");
		if (!m->listed)
			say(&o, "  (not in this mount's server list)");
		if (!m->answered)
			say(&o, "  (%s)", m->err);
		else if (m->silent)
			say(&o, "  (the leader does not hear from it)");
		say(&o, "\n");
		free(m->mntr);
	}
	if (!standalone) {
		if (leader >= 0)
			say(&o, "leader %d (term %s)\n", leader, term[0] ? term : "?");
		else
			say(&o, "leader none answered\n");
		say(&o, "quorum %s: %d of %d voting members answer\n", 2 * voters_up > voters ? "yes" : "no", voters_up,
		    voters);
	}
	if (chost[0]) {
		struct member at;
		char addr[HOST_MAX + 16];
		snprintf(at.host, sizeof(at.host), "%s", chost);
		at.port = cport;
		addr_of(&at, addr, sizeof(addr));
		say(&o, "connected %s\n", addr);
	} else {
		say(&o, "connected -\n");
	}
	free(c);
	if (o.oom || !o.p) {
		free(o.p);
		return -ENOMEM;
	}
	*text = o.p;
	*len = o.len;
	return 0;
}
