/*
 * admin.c: ZooKeeper's four-letter words (ruok, srvr, stat, mntr, conf, isro, wchs, cons), with
 * ZooKeeper's output shapes so the tools that parse them keep working.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "server.h"

#define COORD_VERSION "coordfs 0.1.0"

static void say(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct buf *b, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_put(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}


static uint64_t avg_latency_us(const struct server *s)
{
	return s->stats.lat_n ? s->stats.lat_sum_us / s->stats.lat_n : 0;
}

static size_t ephemerals(const struct server *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->st.sessions.nbuckets; i++)
		for (const struct session *se = s->st.sessions.buckets[i]; se; se = se->next)
			n += se->neph;
	return n;
}

static void count_ops(void *arg, struct client *c) { *(size_t *)arg += c->nops; }

static size_t outstanding(const struct server *s)
{
	size_t n = s->nconnects;
	clients_each(&s->cl, count_ops, &n);
	return n;
}

/* The ensemble as this member sees it: one line per member. */
static void members(const struct server *s, struct buf *b, const char *prefix)
{
	struct raft_status st;
	raft_status(s->raft, &st);
	say(b, "%sleader\t%d\n", prefix, st.leader);
	say(b, "%sterm\t%" PRIu64 "\n", prefix, st.term);
	say(b, "%scommit\t0x%" PRIx64 "\n", prefix, st.commit);
	if (st.role != RAFT_LEADER)
		return;
	for (int i = 0; i < st.npeers; i++) {
		const struct coord_member *m = NULL;
		for (int k = 0; k < s->cfg.nmembers; k++)
			if (s->cfg.members[k].id == st.peers[i].id)
				m = &s->cfg.members[k];
		uint64_t lag = st.last_index > st.peers[i].match ? st.last_index - st.peers[i].match : 0;
		say(b, "%smember.%d\t%s match=0x%" PRIx64 " lag=%" PRIu64 " %s\n", prefix, st.peers[i].id,
		    st.peers[i].id == st.id ? "leader" : m && m->observer ? "observer" : "follower", st.peers[i].match, lag,
		    st.peers[i].id == st.id || st.peers[i].active ? "up" : "silent");
	}
}

static void srvr(const struct server *s, struct buf *b)
{
	say(b, "Zookeeper version: %s\n", COORD_VERSION);
	say(b, "Latency min/avg/max: %.3f/%.3f/%.3f\n", s->stats.lat_min_us / 1000.0, avg_latency_us(s) / 1000.0,
	    s->stats.lat_max_us / 1000.0);
	say(b, "Received: %" PRIu64 "\n", s->stats.received);
	say(b, "Sent: %" PRIu64 "\n", s->stats.sent);
	say(b, "Connections: %zu\n", s->cl.count);
	say(b, "Outstanding: %zu\n", outstanding(s));
	say(b, "Zxid: 0x%" PRIx64 "\n", s->st.last_zxid);
	say(b, "Mode: %s\n", server_mode(s));
	say(b, "Node count: %" PRIu64 "\n", s->st.tree.count);
	if (!s->standalone)
		members(s, b, "");
}

static void mntr(const struct server *s, struct buf *b)
{
	say(b, "zk_version\t%s\n", COORD_VERSION);
	say(b, "zk_server_state\t%s\n", server_mode(s));
	say(b, "zk_avg_latency\t%.3f\n", avg_latency_us(s) / 1000.0);
	say(b, "zk_max_latency\t%.3f\n", s->stats.lat_max_us / 1000.0);
	say(b, "zk_min_latency\t%.3f\n", s->stats.lat_min_us / 1000.0);
	say(b, "zk_packets_received\t%" PRIu64 "\n", s->stats.received);
	say(b, "zk_packets_sent\t%" PRIu64 "\n", s->stats.sent);
	say(b, "zk_num_alive_connections\t%zu\n", s->cl.count);
	say(b, "zk_outstanding_requests\t%zu\n", outstanding(s));
	say(b, "zk_znode_count\t%" PRIu64 "\n", s->st.tree.count);
	say(b, "zk_watch_count\t%zu\n", watch_count(s->wm, 0));
	say(b, "zk_ephemerals_count\t%zu\n", ephemerals(s));
	say(b, "zk_approximate_data_size\t%" PRIu64 "\n", s->st.tree.data_bytes);
	say(b, "coordfs_server_id\t%d\n", s->cfg.my_id);
	say(b, "coordfs_last_zxid\t0x%" PRIx64 "\n", s->st.last_zxid);
	say(b, "coordfs_session_count\t%zu\n", s->st.sessions.count);
	say(b, "coordfs_auth_refused\t%" PRIu64 "\n", s->zap.refused_keys + s->zap.refused_plain + s->peers.refused);
	say(b, "coordfs_cnxns_refused\t%" PRIu64 "\n", s->zap.refused_cnxns);
	say(b, "coordfs_log_fsyncs\t%" PRIu64 "\n", s->stats.fsyncs);
	say(b, "coordfs_txns_logged\t%" PRIu64 "\n", s->stats.txns_logged);
	say(b, "coordfs_snapshots\t%" PRIu64 "\n", s->stats.snapshots);
	say(b, "coordfs_disk_error\t%d\n", s->disk_error);
	say(b, "coordfs_tree_digest\t0x%016" PRIx64 "\n", state_digest(&s->st));
	say(b, "coordfs_elections_won\t%" PRIu64 "\n", s->stats.elections_won);
	if (!s->standalone) {
		struct raft_status st;
		raft_status(s->raft, &st);
		int synced = 0, followers = 0;
		for (int i = 0; i < st.npeers && st.role == RAFT_LEADER; i++) {
			if (st.peers[i].id == st.id)
				continue;
			followers++;
			synced += st.peers[i].active && st.peers[i].match + 1000 >= st.last_index;
		}
		if (st.role == RAFT_LEADER) {
			say(b, "zk_followers\t%d\n", followers);
			say(b, "zk_synced_followers\t%d\n", synced);
		}
		members(s, b, "coordfs_");
	}
}

static void conf(const struct server *s, struct buf *b)
{
	const struct coord_config *c = &s->cfg;
	say(b, "clientPort=%d\n", c->client_port);
	say(b, "clientPortAddress=%s\n", c->client_addr);
	say(b, "dataDir=%s\n", c->data_dir);
	say(b, "dataLogDir=%s\n", c->data_log_dir);
	say(b, "tickTime=%d\n", c->tick_time);
	say(b, "minSessionTimeout=%d\n", c->min_session_timeout);
	say(b, "maxSessionTimeout=%d\n", c->max_session_timeout);
	say(b, "snapCount=%ld\n", c->snap_count);
	say(b, "maxDataBytes=%u\n", c->max_data_bytes);
	say(b, "historyDepth=%d\n", c->history_depth);
	say(b, "historyBytes=%u\n", c->history_bytes);
	say(b, "serverId=%d\n", c->my_id);
	say(b, "auth=%s\n", c->auth == COORD_AUTH_CURVE ? "curve" : "none");
	say(b, "maxClientCnxns=%d\n", c->max_client_cnxns);
	say(b, "maxSessionRequests=%d\n", c->max_session_requests);
	say(b, "maxSessionWatches=%d\n", c->max_session_watches);
	for (int i = 0; i < c->nmembers; i++) {
		const struct coord_member *m = &c->members[i];
		say(b, "server.%d=%s:%d:%d:%s;%d\n", m->id, m->host, m->peer_port, m->election_port,
		    m->observer ? "observer" : "participant", m->client_port);
	}
}

struct cons_ctx {
	struct buf *b;
	const struct server *s;
};

static void cons_one(void *arg, struct client *c)
{
	struct cons_ctx *x = arg;
	const struct session *se = sessions_find(&x->s->st.sessions, c->session);
	say(x->b, " session=0x%016" PRIx64 " timeout=%u connected=%d watches=%zu principal=%s\n", c->session,
	    c->timeout_ms, c->route_len > 0, watch_count(x->s->wm, c->session),
	    se && se->principal[0] ? se->principal : "anonymous");
}

int admin_answer(const struct server *s, const char *word, struct buf *out)
{
	if (!strcmp(word, "ruok"))
		say(out, "imok");
	else if (!strcmp(word, "srvr") || !strcmp(word, "stat"))
		srvr(s, out);
	else if (!strcmp(word, "mntr"))
		mntr(s, out);
	else if (!strcmp(word, "conf"))
		conf(s, out);
	else if (!strcmp(word, "isro"))
		say(out, "rw");
	else if (!strcmp(word, "wchs"))
		say(out, "%zu connections watching %zu paths\nTotal watches:%zu\n", s->cl.count, watch_count(s->wm, 0),
		    watch_count(s->wm, 0));
	else if (!strcmp(word, "cons")) {
		struct cons_ctx x = {out, s};
		clients_each(&s->cl, cons_one, &x);
	} else {
		say(out, "unknown four-letter word '%s'; known: ruok srvr stat mntr conf isro wchs cons", word);
		return COORD_EBADARG;
	}
	return out->oom ? COORD_ENOMEM : COORD_OK;
}
