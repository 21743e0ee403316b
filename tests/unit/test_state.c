/*
 * test_state.c: the replicated state machine (server/state.c, ops.c, sessions.c, txn.c) driven
 * the way the server drives it: client requests encoded with the wire codec, wrapped in txns,
 * txn-encoded and decoded, applied with state_apply, and the reply frames decoded again.
 *
 * ZooKeeper's semantics are the oracle for every op and error, the Stat fields and the events.
 * Then multi all-or-nothing, session close and expiry, exactly-once replies, reads, snapshot
 * round trips, and a determinism run of 20,000 random txns on two states plus a third one that
 * is rebuilt from a snapshot every 1,000 txns and must keep answering byte for byte the same.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "ops.h"
#include "path.h"
#include "sessions.h"
#include "state.h"
#include "tree.h"
#include "txn.h"
#include "wire.h"

#define MAXDATA 100 /* maxDataBytes of the test states: appends may not grow data past it */
#define T0 1700000000000LL

/* ---- a state and the last thing it answered ---- */

struct env {
	struct state s;
	uint64_t zxid;
	int64_t now;
	uint64_t next_xid;
	struct apply_out out;
	struct coord_reply rep;
	int have_rep;
	uint8_t *last_req; /* the last request frame sent, for resends */
	size_t last_req_len;
};

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	CHECK_EQ(state_init(&e->s, MAXDATA), COORD_OK);
	e->zxid = 0x100000000ULL;
	e->now = T0;
}

static void env_clear_last(struct env *e)
{
	if (e->have_rep)
		coord_reply_clear(&e->rep);
	e->have_rep = 0;
	apply_out_reset(&e->out);
}

static void env_free(struct env *e)
{
	env_clear_last(e);
	free(e->last_req);
	state_free(&e->s);
}

/* Encode t, decode it back (as a member reading its log would) and apply it at the next zxid. */
static void apply_txn(struct env *e, const struct txn *t)
{
	env_clear_last(e);
	struct buf b;
	buf_init(&b);
	CHECK_EQ(txn_encode(&b, t), COORD_OK);
	struct txn d;
	CHECK_EQ(txn_decode(b.p, b.len, &d), COORD_OK);
	CHECK_EQ(d.type, t->type);
	CHECK_EQ(d.session_id, t->session_id);
	CHECK_EQ(d.time_ms, t->time_ms);
	e->zxid++;
	state_apply(&e->s, e->zxid, &d, &e->out);
	CHECK_EQ(e->s.last_zxid, e->zxid);
	buf_free(&b);
}

static const uint8_t PW[COORD_PASSWD_LEN] = "0123456789abcdef";

static void new_session(struct env *e, uint64_t sid)
{
	struct txn t = {.type = TXN_CREATE_SESSION, .term = 1, .time_ms = e->now, .session_id = sid,
			.timeout_ms = 10000};
	memcpy(t.passwd, PW, sizeof(PW));
	t.passwd[0] = (uint8_t)sid;
	apply_txn(e, &t);
	CHECK_EQ(e->out.err, COORD_OK);
	CHECK_EQ(e->out.created_session, sid);
	CHECK(e->out.reply == NULL);
	struct session *se = sessions_find(&e->s.sessions, sid);
	CHECK(se);
	CHECK_EQ(se->timeout_ms, 10000);
	CHECK_EQ(se->passwd[0], (uint8_t)sid);
}

static void expire_session(struct env *e, uint64_t sid)
{
	struct txn t = {.type = TXN_CLOSE_SESSION, .term = 1, .time_ms = e->now, .session_id = sid,
			.reason = TXN_CLOSE_EXPIRED};
	apply_txn(e, &t);
	CHECK(e->out.reply == NULL);
}

/* Send a request frame as-is; decode the reply. Returns the reply's error. */
static int send_frame(struct env *e, uint64_t sid, const void *frame, size_t len, uint8_t op, uint64_t xid)
{
	struct txn t = {.type = TXN_REQUEST, .term = 1, .time_ms = e->now, .session_id = sid,
			.req = slice_of(frame, len)};
	apply_txn(e, &t);
	CHECK(e->out.reply != NULL);
	char why[256];
	int rc = coord_reply_decode(e->out.reply, e->out.reply_len, op, &e->rep, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "reply does not decode: %s\n", why);
		CHECK_EQ(rc, COORD_OK);
	}
	e->have_rep = 1;
	CHECK_EQ(e->rep.kind, COORD_MSG_REPLY);
	CHECK_EQ(e->rep.op, op);
	CHECK_EQ(e->rep.xid, xid);
	CHECK_EQ(e->rep.err, e->out.err);
	if (!e->out.dup)
		CHECK_EQ(e->rep.zxid, e->zxid);
	if (e->rep.err)
		CHECK(e->rep.msg.len > 0);
	else if (op != COORD_OP_MULTI)
		CHECK_EQ(e->rep.msg.len, 0);
	return e->rep.err;
}

/* Send q (xid assigned when 0) for session sid. */
static int send_req(struct env *e, uint64_t sid, struct coord_req *q)
{
	if (!q->xid)
		q->xid = ++e->next_xid;
	struct buf b;
	buf_init(&b);
	CHECK_EQ(coord_req_encode(&b, q), COORD_OK);
	free(e->last_req);
	e->last_req = buf_take(&b, &e->last_req_len);
	return send_frame(e, sid, e->last_req, e->last_req_len, q->op, q->xid);
}

static uint64_t S1 = 0x0100000000000001ULL, S2 = 0x0200000000000002ULL;

static int create(struct env *e, uint64_t sid, const char *path, const char *data, uint32_t flags, uint8_t policy)
{
	struct coord_req q = {.op = COORD_OP_CREATE, .path = slice_str(path), .data = slice_str(data),
			      .flags = flags, .policy = policy};
	return send_req(e, sid, &q);
}
static int mkdir_(struct env *e, const char *path) { return create(e, S1, path, NULL, COORD_CREATE_DIR, 0); }
static int mkfile(struct env *e, const char *path, const char *data) { return create(e, S1, path, data, 0, 0); }

static int del(struct env *e, uint64_t sid, const char *path, int32_t version)
{
	struct coord_req q = {.op = COORD_OP_DELETE, .path = slice_str(path), .version = version};
	return send_req(e, sid, &q);
}

static int set(struct env *e, uint64_t sid, const char *path, const char *data, int32_t version)
{
	struct coord_req q = {.op = COORD_OP_SET, .path = slice_str(path), .data = slice_str(data), .version = version};
	return send_req(e, sid, &q);
}

static int append(struct env *e, uint64_t sid, const char *path, const void *data, size_t len, int32_t version)
{
	struct coord_req q = {.op = COORD_OP_APPEND, .path = slice_str(path), .data = slice_of(data, len),
			      .version = version};
	return send_req(e, sid, &q);
}

static int ren(struct env *e, uint64_t sid, const char *from, const char *to, int32_t version, uint32_t flags)
{
	struct coord_req q = {.op = COORD_OP_RENAME, .path = slice_str(from), .path2 = slice_str(to),
			      .version = version, .flags = flags};
	return send_req(e, sid, &q);
}

static int setpolicy(struct env *e, uint64_t sid, const char *path, uint8_t policy)
{
	struct coord_req q = {.op = COORD_OP_SETPOLICY, .path = slice_str(path), .policy = policy};
	return send_req(e, sid, &q);
}

static int multi(struct env *e, uint64_t sid, struct coord_subop *ops, uint32_t n)
{
	struct coord_req q = {.op = COORD_OP_MULTI, .nops = n, .ops = ops};
	return send_req(e, sid, &q);
}

static struct coord_subop sub_create(const char *path, const char *data, uint32_t flags)
{
	return (struct coord_subop){.op = COORD_OP_CREATE, .path = slice_str(path), .data = slice_str(data), .flags = flags};
}
static struct coord_subop sub_set(const char *path, const char *data, int32_t version)
{
	return (struct coord_subop){.op = COORD_OP_SET, .path = slice_str(path), .data = slice_str(data), .version = version};
}
static struct coord_subop sub_del(const char *path, int32_t version)
{
	return (struct coord_subop){.op = COORD_OP_DELETE, .path = slice_str(path), .version = version};
}
static struct coord_subop sub_check(const char *path, int32_t version)
{
	return (struct coord_subop){.op = COORD_OP_CHECK, .path = slice_str(path), .version = version};
}

static struct znode *N(struct env *e, const char *path) { return tree_lookup(&e->s.tree, path, strlen(path)); }

static int exists(struct env *e, const char *path) { return N(e, path) != NULL; }

static void check_data(struct env *e, const char *path, const char *data)
{
	struct znode *n = N(e, path);
	CHECK(n);
	size_t len = strlen(data);
	CHECK_EQ(n->data_len, len);
	CHECK(len == 0 || !memcmp(znode_data(n), data, len));
}

/* The events of the last txn as "C /a|H /" (Created, Deleted, Modified, cHildren). */
static void check_events(struct env *e, const char *want)
{
	char got[4096];
	size_t k = 0;
	got[0] = 0;
	for (size_t i = 0; i < e->out.nev; i++) {
		static const char letters[] = "?CDMHO";
		uint8_t t = e->out.ev[i].type;
		k += (size_t)snprintf(got + k, sizeof(got) - k, "%s%c %s", i ? "|" : "",
				      letters[t < 6 ? t : 0], e->out.ev[i].path);
		CHECK(k < sizeof(got));
	}
	CHECK_STR(got, want);
}

/* The error's message names the path (people read it). */
static void check_msg_has(struct env *e, const char *s)
{
	char m[1024];
	size_t n = e->rep.msg.len < sizeof(m) - 1 ? e->rep.msg.len : sizeof(m) - 1;
	memcpy(m, e->rep.msg.p, n);
	m[n] = 0;
	if (!strstr(m, s)) {
		fprintf(stderr, "message \"%s\" does not mention \"%s\"\n", m, s);
		CHECK(0);
	}
}

/* ---- a fingerprint of everything replicated except counters that every txn moves ---- */

struct sess_fp {
	struct buf *b;
	const struct state *s;
};

static void eph_paths(struct buf *b, const struct session *se)
{
	char path[COORD_MAX_PATH + 16];
	buf_u32(b, se->neph);
	for (uint32_t i = 0; i < se->neph; i++) {
		size_t len = tree_path(se->eph[i], path, sizeof(path));
		buf_bytes(b, path, len);
		CHECK_EQ(znode_owner(se->eph[i]), se->id);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct idlist {
	uint64_t ids[1024];
	size_t n;
};

static void collect_id(void *arg, struct session *se)
{
	struct idlist *l = arg;
	CHECK(l->n < 1024);
	l->ids[l->n++] = se->id;
}

/* with_caches: include last_xid and the reply caches */
static void fingerprint(const struct state *s, struct buf *b, int with_caches)
{
	buf_u64(b, tree_digest(&s->tree));
	buf_u64(b, acls_digest(&s->acls));
	buf_u32(b, s->acls.live);
	buf_u64(b, s->tree.count);
	buf_u64(b, s->tree.data_bytes);
	struct idlist l = {.n = 0};
	sessions_each(&s->sessions, collect_id, &l);
	CHECK_EQ(l.n, s->sessions.count);
	qsort(l.ids, l.n, sizeof(l.ids[0]), cmp_u64);
	for (size_t i = 0; i < l.n; i++) {
		const struct session *se = sessions_find(&s->sessions, l.ids[i]);
		CHECK(se);
		buf_u64(b, se->id);
		buf_put(b, se->passwd, COORD_PASSWD_LEN);
		buf_u32(b, se->timeout_ms);
		eph_paths(b, se);
		if (with_caches) {
			buf_u64(b, se->last_xid);
			buf_u32(b, se->ncache);
			for (uint32_t k = 0; k < se->ncache; k++) {
				buf_u64(b, se->cache[k].xid);
				buf_bytes(b, se->cache[k].frame, se->cache[k].len);
			}
		}
	}
	CHECK(!b->oom);
}

static int same_fp(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && !memcmp(a->p, b->p, a->len);
}

/* Every node with an owner is in exactly its session's list, and the lists hold only live nodes. */
static int count_owned(void *arg, const struct znode *n)
{
	if (znode_owner(n)) {
		CHECK_EQ(znode_nkids(n), 0);
		(*(size_t *)arg)++;
	}
	return 0;
}

static void sum_eph(void *arg, struct session *se)
{
	*(size_t *)arg += se->neph;
	for (uint32_t i = 0; i < se->neph; i++) {
		CHECK_EQ(znode_owner(se->eph[i]), se->id);
		CHECK(se->eph[i]->parent != NULL);
		/* creation order: inode numbers increase */
		if (i)
			CHECK(se->eph[i - 1]->ino < se->eph[i]->ino);
	}
}

static void check_eph_consistent(const struct state *s)
{
	size_t owned = 0, listed = 0;
	tree_walk(s->tree.root, count_owned, &owned);
	sessions_each(&s->sessions, sum_eph, &listed);
	CHECK_EQ(owned, listed);
}

/* The tree's own invariants: counters, child treaps (order, heap, parents, sizes), files and
 * ephemeral nodes without children, owners that exist, Stat orderings. */
struct inv {
	const struct state *s;
	uint64_t count, bytes, max_ino;
};

static size_t treap_size(const struct znode *c, const struct znode *dir, const struct znode *lo,
			 const struct znode *hi)
{
	if (!c)
		return 0;
	CHECK(c->parent == dir);
	if (lo)
		CHECK(tree_name_cmp(lo->name, lo->name_len, c->name, c->name_len) < 0);
	if (hi)
		CHECK(tree_name_cmp(c->name, c->name_len, hi->name, hi->name_len) < 0);
	CHECK(!c->left || tree_node_prio(c->left) <= tree_node_prio(c));
	CHECK(!c->right || tree_node_prio(c->right) <= tree_node_prio(c));
	return 1 + treap_size(c->left, dir, lo, c) + treap_size(c->right, dir, c, hi);
}

static int inv_node(void *arg, const struct znode *n)
{
	struct inv *v = arg;
	v->count++;
	v->bytes += n->data_len;
	if (n->ino > v->max_ino)
		v->max_ino = n->ino;
	CHECK_EQ(treap_size(znode_kids(n), n, NULL, NULL), znode_nkids(n));
	if (n->kind != COORD_KIND_DIR || znode_owner(n))
		CHECK_EQ(znode_nkids(n), 0);
	if (znode_owner(n))
		CHECK(sessions_find(&v->s->sessions, znode_owner(n)) != NULL);
	CHECK(n->mzxid >= n->czxid);
	CHECK(n->pzxid >= n->czxid);
	CHECK(n->version >= 0 && n->cversion >= 0);
	CHECK(n->kind <= COORD_KIND_DIR);
	CHECK(n->policy == 0 || n->kind == COORD_KIND_DIR);
	return 0;
}

struct acl_refs {
	const struct state *s;
	uint32_t *refs;
};

static int count_acl(void *arg, const struct znode *n)
{
	struct acl_refs *a = arg;
	CHECK(acls_valid(&a->s->acls, n->acl));
	a->refs[n->acl]++;
	return 0;
}

/* Every interned ACL's count is the number of nodes holding it; none is kept unused. */
static void check_acl_refs(const struct state *s)
{
	struct acl_refs a = {s, calloc(s->acls.n + 1, sizeof(uint32_t))};
	CHECK(a.refs);
	tree_walk(s->tree.root, count_acl, &a);
	uint32_t live = 0;
	for (uint32_t id = 0; id < s->acls.n; id++) {
		if (!acls_valid(&s->acls, id))
			continue;
		live++;
		if (id != ACL_DEFAULT_ID) {
			CHECK(a.refs[id] > 0);
			CHECK_EQ(s->acls.v[id].refs, a.refs[id]);
		}
	}
	CHECK_EQ(live, s->acls.live);
	free(a.refs);
}

static void check_tree_invariants(const struct state *s)
{
	struct inv v = {.s = s};
	check_acl_refs(s);
	tree_walk(s->tree.root, inv_node, &v);
	CHECK_EQ(v.count, s->tree.count);
	CHECK_EQ(v.bytes, s->tree.data_bytes);
	CHECK(v.max_ino < s->tree.next_ino);
	check_eph_consistent(s);
}

static void setup(struct env *e)
{
	env_init(e);
	new_session(e, S1);
	new_session(e, S2);
}

/* ---- create ---- */

static void test_create(void)
{
	struct env e;
	setup(&e);
	struct znode *root = N(&e, "/");
	e.now = T0 + 1000;
	CHECK_EQ(mkdir_(&e, "/app"), COORD_OK);
	uint64_t z1 = e.zxid;
	CHECK(slice_eq(e.rep.path, "/app"));
	check_events(&e, "C /app|H /");
	struct coord_stat *st = &e.rep.stat;
	CHECK_EQ(st->czxid, (int64_t)z1);
	CHECK_EQ(st->mzxid, (int64_t)z1);
	CHECK_EQ(st->pzxid, (int64_t)z1);
	CHECK_EQ(st->ctime, T0 + 1000);
	CHECK_EQ(st->mtime, T0 + 1000);
	CHECK_EQ(st->version, 0);
	CHECK_EQ(st->cversion, 0);
	CHECK_EQ(st->aversion, 0);
	CHECK_EQ(st->ephemeral_owner, 0);
	CHECK_EQ(st->data_length, 0);
	CHECK_EQ(st->num_children, 0);
	CHECK_EQ(st->kind, COORD_KIND_DIR);
	CHECK_EQ(st->policy, 0);
	CHECK(st->ino > 1);
	CHECK_EQ(root->cversion, 1);
	CHECK_EQ(root->pzxid, (int64_t)z1);
	CHECK_EQ(znode_nkids(root), 1);
	CHECK_EQ(root->version, 0);

	e.now = T0 + 2000;
	CHECK_EQ(mkfile(&e, "/app/config", "k=v"), COORD_OK);
	uint64_t z2 = e.zxid;
	check_events(&e, "C /app/config|H /app");
	CHECK_EQ(e.rep.stat.kind, COORD_KIND_FILE);
	CHECK_EQ(e.rep.stat.data_length, 3);
	CHECK_EQ(e.rep.stat.czxid, (int64_t)z2);
	CHECK_EQ(e.rep.stat.ctime, T0 + 2000);
	check_data(&e, "/app/config", "k=v");
	struct znode *app = N(&e, "/app");
	/* ZooKeeper: a create moves the parent's cversion, pzxid and numChildren, not its version,
	 * mzxid or mtime */
	CHECK_EQ(app->cversion, 1);
	CHECK_EQ(app->pzxid, (int64_t)z2);
	CHECK_EQ(znode_nkids(app), 1);
	CHECK_EQ(app->version, 0);
	CHECK_EQ(app->mzxid, (int64_t)z1);
	CHECK_EQ(app->mtime, T0 + 1000);
	CHECK_EQ(app->czxid, (int64_t)z1);
	CHECK_EQ(root->cversion, 1); /* the grandparent does not move */
	CHECK_EQ(root->pzxid, (int64_t)z1);
	/* inode numbers: unique, never reused */
	uint64_t ino = N(&e, "/app/config")->ino;
	CHECK(ino != app->ino);
	/* a directory with data */
	CHECK_EQ(create(&e, S1, "/app/both", "data", COORD_CREATE_DIR, 0), COORD_OK);
	CHECK_EQ(N(&e, "/app/both")->kind, COORD_KIND_DIR);
	check_data(&e, "/app/both", "data");
	CHECK_EQ(mkfile(&e, "/app/both/child", ""), COORD_OK);
	CHECK_EQ(del(&e, S1, "/app/both/child", -1), COORD_OK);
	CHECK_EQ(mkfile(&e, "/app/both/child", ""), COORD_OK);
	CHECK(N(&e, "/app/both/child")->ino > ino + 1);
	/* binary data with NULs */
	struct coord_req q = {.op = COORD_OP_CREATE, .path = slice_str("/bin"), .data = slice_of("a\0b\0", 4)};
	CHECK_EQ(send_req(&e, S2, &q), COORD_OK);
	CHECK_EQ(N(&e, "/bin")->data_len, 4);
	CHECK(!memcmp(znode_data(N(&e, "/bin")), "a\0b\0", 4));
	/* unicode names */
	CHECK_EQ(mkfile(&e, "/app/caf\xc3\xa9", "x"), COORD_OK);
	check_events(&e, "C /app/caf\xc3\xa9|H /app");
	env_free(&e);
}

static void test_create_errors(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/d"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/d/f", "x"), COORD_OK);
	CHECK_EQ(create(&e, S1, "/d/eph", NULL, COORD_CREATE_EPHEMERAL | COORD_CREATE_DIR, 0), COORD_OK);
	/* a name of 255 bytes is fine */
	char name[300];
	memset(name, 'n', sizeof(name));
	name[0] = '/';
	name[256] = 0;
	CHECK_EQ(mkfile(&e, name, ""), COORD_OK);
	CHECK_EQ(del(&e, S1, name, -1), COORD_OK);
	struct buf before, after;
	buf_init(&before);
	fingerprint(&e.s, &before, 0);
	int32_t cv = N(&e, "/d")->cversion;

	struct {
		const char *path;
		uint32_t flags;
		uint8_t policy;
		int err;
		const char *mention;
	} cases[] = {
		{"/d/f", 0, 0, COORD_ENODEEXISTS, "/d/f"},
		{"/d/f", COORD_CREATE_DIR, 0, COORD_ENODEEXISTS, "/d/f"},
		{"/d", COORD_CREATE_DIR, 0, COORD_ENODEEXISTS, "/d"},
		{"/", COORD_CREATE_DIR, 0, COORD_ENODEEXISTS, "/"},
		{"/nope/x", 0, 0, COORD_ENONODE, "/nope"},
		{"/d/nope/x", 0, 0, COORD_ENONODE, "/d/nope"},
		{"/d/f/x", 0, 0, COORD_ENOTDIR, "/d/f"},
		{"/d/eph/x", 0, 0, COORD_EEPHEMERAL, "/d/eph"},
		{"/d/eph/x", COORD_CREATE_EPHEMERAL, 0, COORD_EEPHEMERAL, "/d/eph"},
		{"d/x", 0, 0, COORD_EBADPATH, "d/x"},
		{"", 0, 0, COORD_EBADPATH, ""},
		{"/d/", 0, 0, COORD_EBADPATH, "/d/"},
		{"/d//x", 0, 0, COORD_EBADPATH, "/d//x"},
		{"/d/.", 0, 0, COORD_EBADPATH, "/d/."},
		{"/d/..", 0, 0, COORD_EBADPATH, "/d/.."},
		{"/.watch", 0, 0, COORD_EBADPATH, "/.watch"},
		{"/d/a\x01", 0, 0, COORD_EBADPATH, "/d"},
		{"/d/\xff", 0, 0, COORD_EBADPATH, "/d"},
		{"/d/x", 0x80, 0, COORD_EBADARG, "/d/x"},
		{"/d/x", COORD_CREATE_DIR, 0x10, COORD_EBADARG, "/d/x"},
		{"/d/x", 0, COORD_POLICY_EPHEMERAL, COORD_EBADARG, "/d/x"}, /* a file has no child policy */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = create(&e, S1, cases[i].path, "data", cases[i].flags, cases[i].policy);
		if (err != cases[i].err)
			fprintf(stderr, "case %zu (%s)\n", i, cases[i].path);
		CHECK_EQ(err, cases[i].err);
		check_msg_has(&e, cases[i].mention);
		check_events(&e, "");
		CHECK_EQ(e.rep.stat.czxid, 0); /* no body on an error */
	}
	/* a name and a path too long (the protocol carries at most 4096 bytes of path, so only a
	 * sequential create, which needs room for the suffix, can be too long as a whole) */
	name[256] = 'n';
	name[257] = 0; /* component of 256 */
	CHECK_EQ(mkfile(&e, name, ""), COORD_ENAMETOOLONG);
	check_events(&e, "");
	static char longp[COORD_MAX_PATH + 8];
	size_t k = 0;
	while (k + 2 <= 4090) {
		longp[k++] = '/';
		longp[k++] = 'x';
	}
	longp[k] = 0;
	CHECK_EQ(create(&e, S1, longp, "", COORD_CREATE_SEQUENTIAL, 0), COORD_ENAMETOOLONG);
	check_events(&e, "");

	buf_init(&after);
	fingerprint(&e.s, &after, 0);
	CHECK(same_fp(&before, &after));
	CHECK_EQ(N(&e, "/d")->cversion, cv);
	buf_free(&before);
	buf_free(&after);
	env_free(&e);
}

static void test_sequential(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/q"), COORD_OK);
	CHECK_EQ(create(&e, S1, "/q/job", "a", COORD_CREATE_SEQUENTIAL, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/q/job0000000000"));
	check_events(&e, "C /q/job0000000000|H /q");
	CHECK(exists(&e, "/q/job0000000000"));
	CHECK_EQ(mkfile(&e, "/q/plain", ""), COORD_OK);
	CHECK_EQ(create(&e, S1, "/q/job", "b", COORD_CREATE_SEQUENTIAL, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/q/job0000000002"));
	/* a delete also moves cversion, so the counter never repeats (ZooKeeper) */
	CHECK_EQ(del(&e, S1, "/q/plain", -1), COORD_OK);
	CHECK_EQ(N(&e, "/q")->cversion, 4);
	/* trailing '/': the name is the number */
	CHECK_EQ(create(&e, S1, "/q/", NULL, COORD_CREATE_SEQUENTIAL, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/q/0000000004"));
	check_events(&e, "C /q/0000000004|H /q");
	/* sequential directory, ephemeral sequential */
	CHECK_EQ(create(&e, S2, "/q/e-", NULL, COORD_CREATE_SEQUENTIAL | COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/q/e-0000000005"));
	CHECK_EQ(e.rep.stat.ephemeral_owner, (int64_t)S2);
	CHECK_EQ(create(&e, S1, "/q/d", NULL, COORD_CREATE_SEQUENTIAL | COORD_CREATE_DIR, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/q/d0000000006"));
	CHECK_EQ(N(&e, "/q/d0000000006")->kind, COORD_KIND_DIR);
	/* at the root */
	CHECK_EQ(create(&e, S1, "/r", NULL, COORD_CREATE_SEQUENTIAL, 0), COORD_OK);
	char want[32];
	snprintf(want, sizeof(want), "/r%010d", N(&e, "/")->cversion - 1);
	CHECK(slice_eq(e.rep.path, want));
	/* "/" with the sequential flag: a numbered child of the root (ZooKeeper does the same) */
	CHECK_EQ(create(&e, S1, "/", NULL, COORD_CREATE_SEQUENTIAL, 0), COORD_OK);
	snprintf(want, sizeof(want), "/%010d", N(&e, "/")->cversion - 1);
	CHECK(slice_eq(e.rep.path, want));
	check_events(&e, "C /0000000002|H /");
	CHECK(exists(&e, want));
	/* the sequential name already taken: ZooKeeper answers NodeExists */
	CHECK_EQ(mkfile(&e, "/q/job0000000008", ""), COORD_OK); /* cversion 7 -> 8 */
	CHECK_EQ(N(&e, "/q")->cversion, 8);
	CHECK_EQ(create(&e, S1, "/q/job", NULL, COORD_CREATE_SEQUENTIAL, 0), COORD_ENODEEXISTS);
	check_msg_has(&e, "/q/job0000000008");
	CHECK_EQ(N(&e, "/q")->cversion, 8);
	/* room for the suffix: a 245-byte name is fine, 246 is not */
	char p[300] = "/q/";
	memset(p + 3, 's', 245);
	p[3 + 245] = 0;
	CHECK_EQ(create(&e, S1, p, NULL, COORD_CREATE_SEQUENTIAL, 0), COORD_OK);
	CHECK_EQ(e.rep.path.len, 3 + 255);
	p[3 + 245] = 's';
	p[3 + 246] = 0;
	CHECK_EQ(create(&e, S1, p, NULL, COORD_CREATE_SEQUENTIAL, 0), COORD_ENAMETOOLONG);
	CHECK_EQ(mkfile(&e, p, ""), COORD_OK); /* not sequential: 246 is fine */
	env_free(&e);
}

/* The counters are 32-bit and wrap, as ZooKeeper's do; the sequence suffix stays 10 digits
 * (read as unsigned past 2^31, so names keep growing where ZooKeeper's turn negative). */
static void test_counter_wrap(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/q"), COORD_OK);
	N(&e, "/q")->cversion = INT32_MAX;
	CHECK_EQ(create(&e, S1, "/q/s", NULL, COORD_CREATE_SEQUENTIAL, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/q/s2147483647"));
	CHECK_EQ(N(&e, "/q")->cversion, INT32_MIN);
	CHECK_EQ(create(&e, S1, "/q/s", NULL, COORD_CREATE_SEQUENTIAL, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/q/s2147483648"));
	N(&e, "/q")->cversion = -1;
	CHECK_EQ(create(&e, S1, "/q/s", NULL, COORD_CREATE_SEQUENTIAL, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/q/s4294967295"));
	CHECK_EQ(N(&e, "/q")->cversion, 0);
	CHECK_EQ(del(&e, S1, "/q/s4294967295", -1), COORD_OK);
	/* a data version at the top wraps too */
	CHECK_EQ(mkfile(&e, "/f", ""), COORD_OK);
	N(&e, "/f")->version = INT32_MAX;
	CHECK_EQ(set(&e, S1, "/f", "x", INT32_MAX), COORD_OK);
	CHECK_EQ(e.rep.stat.version, INT32_MIN);
	CHECK_EQ(append(&e, S1, "/f", "y", 1, INT32_MIN), COORD_OK);
	CHECK_EQ(e.rep.stat.version, INT32_MIN + 1);
	CHECK_EQ(mkfile(&e, "/g", ""), COORD_OK);
	N(&e, "/g")->version = INT32_MAX;
	CHECK_EQ(ren(&e, S1, "/f", "/g", -1, COORD_RENAME_EXCHANGE), COORD_OK);
	CHECK_EQ(ren(&e, S1, "/f", "/g", -1, 0), COORD_OK);
	env_free(&e);
}

static void test_ephemeral_and_policy(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/locks"), COORD_OK);
	CHECK_EQ(create(&e, S2, "/locks/a", "me", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(e.rep.stat.ephemeral_owner, (int64_t)S2);
	CHECK_EQ(znode_owner(N(&e, "/locks/a")), S2);
	struct session *se2 = sessions_find(&e.s.sessions, S2);
	CHECK_EQ(se2->neph, 1);
	CHECK(se2->eph[0] == N(&e, "/locks/a"));
	CHECK_EQ(create(&e, S2, "/locks/a/b", "", 0, 0), COORD_EEPHEMERAL);
	CHECK_EQ(create(&e, S1, "/locks/a/b", "", COORD_CREATE_DIR, 0), COORD_EEPHEMERAL);
	check_eph_consistent(&e.s);

	/* a child policy at mkdir: files made in it are ephemeral and/or sequential */
	CHECK_EQ(create(&e, S1, "/members", NULL, COORD_CREATE_DIR, COORD_POLICY_EPHEMERAL), COORD_OK);
	CHECK_EQ(e.rep.stat.policy, COORD_POLICY_EPHEMERAL);
	CHECK_EQ(N(&e, "/members")->policy, COORD_POLICY_EPHEMERAL);
	CHECK_EQ(create(&e, S2, "/members/host1", "up", 0, 0), COORD_OK);
	CHECK_EQ(e.rep.stat.ephemeral_owner, (int64_t)S2);
	CHECK(slice_eq(e.rep.path, "/members/host1"));
	/* a directory made in it is not (the policy is for files) */
	CHECK_EQ(create(&e, S2, "/members/sub", NULL, COORD_CREATE_DIR, 0), COORD_OK);
	CHECK_EQ(e.rep.stat.ephemeral_owner, 0);
	CHECK(slice_eq(e.rep.path, "/members/sub"));

	CHECK_EQ(create(&e, S1, "/jobs", NULL, COORD_CREATE_DIR, COORD_POLICY_SEQUENTIAL), COORD_OK);
	CHECK_EQ(create(&e, S2, "/jobs/j", "1", 0, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/jobs/j0000000000"));
	CHECK_EQ(e.rep.stat.ephemeral_owner, 0);
	CHECK_EQ(create(&e, S1, "/elect", NULL, COORD_CREATE_DIR,
			COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL), COORD_OK);
	CHECK_EQ(create(&e, S2, "/elect/n_", "", 0, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/elect/n_0000000000"));
	CHECK_EQ(e.rep.stat.ephemeral_owner, (int64_t)S2);
	CHECK_EQ(create(&e, S1, "/elect/n_", "", 0, 0), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/elect/n_0000000001"));
	CHECK_EQ(e.rep.stat.ephemeral_owner, (int64_t)S1);
	/* the policy's sequence suffix must fit: a 250-byte name is refused by the policy */
	char p[300] = "/elect/";
	memset(p + 7, 'x', 250);
	p[257] = 0;
	CHECK_EQ(create(&e, S1, p, "", 0, 0), COORD_ENAMETOOLONG);
	CHECK_EQ(create(&e, S1, p, "", COORD_CREATE_DIR, 0), COORD_OK); /* a dir: no suffix */

	/* setpolicy: once */
	CHECK_EQ(mkdir_(&e, "/later"), COORD_OK);
	int64_t mz = N(&e, "/later")->mzxid;
	CHECK_EQ(setpolicy(&e, S1, "/later", COORD_POLICY_SEQUENTIAL), COORD_OK);
	check_events(&e, "M /later");
	CHECK_EQ(N(&e, "/later")->policy, COORD_POLICY_SEQUENTIAL);
	CHECK_EQ(N(&e, "/later")->version, 0);
	CHECK_EQ(N(&e, "/later")->mzxid, mz);
	CHECK_EQ(setpolicy(&e, S1, "/later", COORD_POLICY_SEQUENTIAL), COORD_OK); /* the same: fine */
	check_events(&e, "");
	CHECK_EQ(setpolicy(&e, S1, "/later", COORD_POLICY_EPHEMERAL), COORD_EPOLICY);
	CHECK_EQ(setpolicy(&e, S1, "/later", COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL), COORD_EPOLICY);
	check_events(&e, "");
	CHECK_EQ(N(&e, "/later")->policy, COORD_POLICY_SEQUENTIAL);
	CHECK_EQ(setpolicy(&e, S1, "/members", COORD_POLICY_SEQUENTIAL), COORD_EPOLICY);
	CHECK_EQ(setpolicy(&e, S1, "/locks/a", COORD_POLICY_SEQUENTIAL), COORD_EPOLICY); /* a file */
	CHECK_EQ(setpolicy(&e, S1, "/nope", COORD_POLICY_SEQUENTIAL), COORD_ENONODE);
	CHECK_EQ(setpolicy(&e, S1, "/later", 0), COORD_EBADARG);
	CHECK_EQ(setpolicy(&e, S1, "/later", 4), COORD_EBADARG);
	CHECK_EQ(setpolicy(&e, S1, "bad", 1), COORD_EBADPATH);
	CHECK_EQ(mkfile(&e, "/later/t", ""), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/later/t0000000000"));
	check_eph_consistent(&e.s);
	env_free(&e);
}

/* ---- delete, set, append ---- */

static void test_delete(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/a"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/a/b", "x"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/a/c", "y"), COORD_OK);
	CHECK_EQ(set(&e, S1, "/a/b", "z", -1), COORD_OK);
	CHECK_EQ(del(&e, S1, "/a", -1), COORD_ENOTEMPTY);
	check_msg_has(&e, "/a");
	CHECK_EQ(del(&e, S1, "/a/b", 0), COORD_EBADVERSION);
	check_msg_has(&e, "/a/b");
	CHECK_EQ(del(&e, S1, "/a/b", 5), COORD_EBADVERSION);
	CHECK_EQ(del(&e, S1, "/a/x", -1), COORD_ENONODE);
	CHECK_EQ(del(&e, S1, "/x/y", -1), COORD_ENONODE);
	CHECK_EQ(del(&e, S1, "/", -1), COORD_EBADARG);
	CHECK_EQ(del(&e, S1, "/a/", -1), COORD_EBADPATH);
	CHECK_EQ(del(&e, S1, "a", -1), COORD_EBADPATH);
	check_events(&e, "");
	/* ZooKeeper's order: a bad version is reported before "not empty" */
	CHECK_EQ(del(&e, S1, "/a", 3), COORD_EBADVERSION);
	CHECK(exists(&e, "/a/b"));
	int32_t cv = N(&e, "/a")->cversion;
	CHECK_EQ(del(&e, S1, "/a/b", 1), COORD_OK);
	check_events(&e, "D /a/b|H /a");
	CHECK(!exists(&e, "/a/b"));
	CHECK_EQ(N(&e, "/a")->cversion, cv + 1);
	CHECK_EQ(N(&e, "/a")->pzxid, (int64_t)e.zxid);
	CHECK_EQ(znode_nkids(N(&e, "/a")), 1);
	CHECK_EQ(e.rep.stat.czxid, 0);
	CHECK_EQ(del(&e, S1, "/a/c", -1), COORD_OK);
	CHECK_EQ(del(&e, S1, "/a", 0), COORD_OK);
	check_events(&e, "D /a|H /");
	CHECK_EQ(e.s.tree.count, 1);
	CHECK_EQ(e.s.tree.data_bytes, 0);
	/* deleting an ephemeral takes it off its session's list */
	CHECK_EQ(create(&e, S2, "/e1", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/e2", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/e3", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(del(&e, S1, "/e2", -1), COORD_OK); /* another session may delete it */
	struct session *se = sessions_find(&e.s.sessions, S2);
	CHECK_EQ(se->neph, 2);
	CHECK(se->eph[0] == N(&e, "/e1") && se->eph[1] == N(&e, "/e3"));
	expire_session(&e, S2);
	check_events(&e, "D /e1|H /|D /e3|H /");
	CHECK(!exists(&e, "/e1") && !exists(&e, "/e3"));
	env_free(&e);
}

static void test_set(void)
{
	struct env e;
	setup(&e);
	e.now = T0 + 5;
	CHECK_EQ(mkfile(&e, "/f", "one"), COORD_OK);
	uint64_t cz = e.zxid;
	struct coord_stat c0 = e.rep.stat;
	e.now = T0 + 50;
	CHECK_EQ(set(&e, S1, "/f", "second", 0), COORD_OK);
	check_events(&e, "M /f");
	struct coord_stat *st = &e.rep.stat;
	CHECK_EQ(st->version, 1);
	CHECK_EQ(st->mzxid, (int64_t)e.zxid);
	CHECK_EQ(st->mtime, T0 + 50);
	CHECK_EQ(st->czxid, (int64_t)cz);
	CHECK_EQ(st->ctime, T0 + 5);
	CHECK_EQ(st->pzxid, (int64_t)cz); /* children did not change */
	CHECK_EQ(st->cversion, 0);
	CHECK_EQ(st->data_length, 6);
	CHECK_EQ(st->ino, c0.ino);
	check_data(&e, "/f", "second");
	CHECK_EQ(N(&e, "/")->cversion, 1); /* the parent does not move */
	CHECK_EQ(set(&e, S1, "/f", "x", 0), COORD_EBADVERSION);
	check_msg_has(&e, "/f");
	check_events(&e, "");
	check_data(&e, "/f", "second");
	CHECK_EQ(set(&e, S1, "/f", "third", -1), COORD_OK);
	CHECK_EQ(e.rep.stat.version, 2);
	CHECK_EQ(set(&e, S1, "/f", "", 2), COORD_OK);
	CHECK_EQ(e.rep.stat.version, 3);
	CHECK_EQ(e.rep.stat.data_length, 0);
	CHECK(N(&e, "/f")->data_len == 0);
	CHECK_EQ(e.s.tree.data_bytes, 0);
	/* the same data again is still a new version (ZooKeeper) */
	CHECK_EQ(set(&e, S1, "/f", "", -1), COORD_OK);
	CHECK_EQ(e.rep.stat.version, 4);
	CHECK_EQ(set(&e, S1, "/nope", "x", -1), COORD_ENONODE);
	CHECK_EQ(set(&e, S1, "nope", "x", -1), COORD_EBADPATH);
	/* the root's data can be set */
	CHECK_EQ(set(&e, S1, "/", "rootdata", -1), COORD_OK);
	check_events(&e, "M /");
	CHECK_EQ(e.rep.stat.version, 1);
	check_data(&e, "/", "rootdata");
	env_free(&e);
}

static void test_append(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkfile(&e, "/log", ""), COORD_OK);
	e.now = T0 + 77;
	CHECK_EQ(append(&e, S1, "/log", "line1\n", 6, -1), COORD_OK);
	check_events(&e, "M /log");
	CHECK_EQ(e.rep.stat.version, 1);
	CHECK_EQ(e.rep.stat.data_length, 6);
	CHECK_EQ(e.rep.stat.mzxid, (int64_t)e.zxid);
	CHECK_EQ(e.rep.stat.mtime, T0 + 77);
	CHECK_EQ(append(&e, S2, "/log", "line2\n", 6, 1), COORD_OK);
	check_data(&e, "/log", "line1\nline2\n");
	CHECK_EQ(append(&e, S2, "/log", "x", 1, 1), COORD_EBADVERSION);
	check_data(&e, "/log", "line1\nline2\n");
	CHECK_EQ(append(&e, S2, "/nope", "x", 1, -1), COORD_ENONODE);
	/* an empty append is a new version with the same data */
	CHECK_EQ(append(&e, S2, "/log", "", 0, -1), COORD_OK);
	CHECK_EQ(e.rep.stat.version, 3);
	check_data(&e, "/log", "line1\nline2\n");
	/* the size limit: up to maxDataBytes exactly, not a byte more */
	char big[MAXDATA];
	memset(big, 'b', sizeof(big));
	CHECK_EQ(append(&e, S1, "/log", big, MAXDATA - 12, -1), COORD_OK);
	CHECK_EQ(N(&e, "/log")->data_len, MAXDATA);
	int32_t v = N(&e, "/log")->version;
	CHECK_EQ(append(&e, S1, "/log", "!", 1, -1), COORD_ETOOLARGE);
	check_msg_has(&e, "/log");
	check_events(&e, "");
	CHECK_EQ(N(&e, "/log")->data_len, MAXDATA);
	CHECK_EQ(N(&e, "/log")->version, v);
	CHECK_EQ(append(&e, S1, "/log", "", 0, -1), COORD_OK);
	/* onto an empty node, and onto a directory with data */
	CHECK_EQ(mkdir_(&e, "/d"), COORD_OK);
	CHECK_EQ(append(&e, S1, "/d", "dd", 2, 0), COORD_OK);
	check_data(&e, "/d", "dd");
	CHECK_EQ(e.s.tree.data_bytes, MAXDATA + 2);
	env_free(&e);
}

/* ---- rename ---- */

static void test_rename_plain(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/d"), COORD_OK);
	CHECK_EQ(mkdir_(&e, "/o"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/d/a", "A"), COORD_OK);
	uint64_t cz = e.zxid;
	CHECK_EQ(set(&e, S1, "/d/a", "AA", -1), COORD_OK);
	struct znode *a = N(&e, "/d/a");
	uint64_t ino = a->ino;
	int32_t dcv = N(&e, "/d")->cversion, ocv = N(&e, "/o")->cversion;
	e.now = T0 + 9;
	/* same directory */
	CHECK_EQ(ren(&e, S1, "/d/a", "/d/b", 1, 0), COORD_OK);
	check_events(&e, "D /d/a|C /d/b|H /d");
	CHECK(!exists(&e, "/d/a"));
	struct znode *b = N(&e, "/d/b");
	CHECK(b);
	CHECK_EQ(b->ino, ino);
	CHECK_EQ(b->version, 1);
	CHECK_EQ(b->czxid, (int64_t)cz);
	check_data(&e, "/d/b", "AA");
	CHECK_EQ(e.rep.stat.ino, ino);
	CHECK_EQ(e.rep.stat.mzxid, (int64_t)e.zxid);
	CHECK_EQ(N(&e, "/d")->cversion, dcv + 1);
	CHECK_EQ(N(&e, "/d")->pzxid, (int64_t)e.zxid);
	CHECK_EQ(znode_nkids(N(&e, "/d")), 1);
	/* across directories */
	CHECK_EQ(ren(&e, S1, "/d/b", "/o/c", -1, 0), COORD_OK);
	check_events(&e, "D /d/b|C /o/c|H /d|H /o");
	CHECK_EQ(N(&e, "/o/c")->ino, ino);
	CHECK_EQ(N(&e, "/d")->cversion, dcv + 2);
	CHECK_EQ(N(&e, "/o")->cversion, ocv + 1);
	CHECK_EQ(N(&e, "/o")->pzxid, (int64_t)e.zxid);
	CHECK_EQ(znode_nkids(N(&e, "/d")), 0);
	CHECK_EQ(znode_nkids(N(&e, "/o")), 1);
	/* a directory without children moves too; to the root */
	CHECK_EQ(ren(&e, S1, "/d", "/dd", -1, 0), COORD_OK);
	check_events(&e, "D /d|C /dd|H /");
	CHECK_EQ(N(&e, "/dd")->kind, COORD_KIND_DIR);
	/* rename to itself: nothing happens */
	int32_t cv = N(&e, "/o")->cversion;
	CHECK_EQ(ren(&e, S1, "/o/c", "/o/c", -1, 0), COORD_OK);
	check_events(&e, "");
	CHECK_EQ(N(&e, "/o")->cversion, cv);
	CHECK_EQ(e.rep.stat.ino, ino);
	/* an ephemeral node keeps its owner; closing the session deletes it at its new place */
	CHECK_EQ(create(&e, S2, "/o/eph", "e", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/o/eph2", "e", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(ren(&e, S1, "/o/eph", "/dd/moved", -1, 0), COORD_OK);
	CHECK_EQ(znode_owner(N(&e, "/dd/moved")), S2);
	check_eph_consistent(&e.s);
	/* an ephemeral parent cannot receive it */
	CHECK_EQ(ren(&e, S1, "/o/c", "/o/eph2/x", -1, 0), COORD_EEPHEMERAL);
	expire_session(&e, S2);
	check_events(&e, "D /dd/moved|H /dd|D /o/eph2|H /o");
	CHECK(!exists(&e, "/dd/moved"));
	CHECK_EQ(e.out.closed_session, S2);
	check_eph_consistent(&e.s);
	env_free(&e);
}

static void test_rename_replace_exchange(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/d"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/d/new", "NEW"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/d/cur", "CUR"), COORD_OK);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(set(&e, S1, "/d/cur", "CUR", -1), COORD_OK);
	uint64_t new_ino = N(&e, "/d/new")->ino;
	/* replace: `to` gets the new node, with a version above the old one's (so a CAS holding
	 * the old version fails) */
	CHECK_EQ(ren(&e, S1, "/d/new", "/d/cur", 0, 0), COORD_OK);
	check_events(&e, "D /d/new|M /d/cur|H /d");
	CHECK(!exists(&e, "/d/new"));
	check_data(&e, "/d/cur", "NEW");
	CHECK_EQ(N(&e, "/d/cur")->ino, new_ino);
	CHECK_EQ(N(&e, "/d/cur")->version, 4);
	CHECK_EQ(e.rep.stat.version, 4);
	CHECK_EQ(znode_nkids(N(&e, "/d")), 1);
	CHECK_EQ(set(&e, S1, "/d/cur", "stale", 3), COORD_EBADVERSION);
	/* a newer source keeps its own version */
	CHECK_EQ(mkfile(&e, "/d/n2", ""), COORD_OK);
	for (int i = 0; i < 7; i++)
		CHECK_EQ(set(&e, S1, "/d/n2", "x", -1), COORD_OK);
	CHECK_EQ(ren(&e, S1, "/d/n2", "/d/cur", -1, 0), COORD_OK);
	CHECK_EQ(N(&e, "/d/cur")->version, 7);
	/* replacing an ephemeral node of another session takes it off that session's list */
	CHECK_EQ(create(&e, S2, "/d/lock", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(mkfile(&e, "/d/n3", "n3"), COORD_OK);
	CHECK_EQ(ren(&e, S1, "/d/n3", "/d/lock", -1, 0), COORD_OK);
	CHECK_EQ(znode_owner(N(&e, "/d/lock")), 0);
	CHECK_EQ(sessions_find(&e.s.sessions, S2)->neph, 0);
	check_eph_consistent(&e.s);

	/* NOREPLACE */
	CHECK_EQ(mkfile(&e, "/d/x", "X"), COORD_OK);
	struct buf before, after;
	buf_init(&before);
	buf_init(&after);
	fingerprint(&e.s, &before, 0);
	CHECK_EQ(ren(&e, S1, "/d/x", "/d/cur", -1, COORD_RENAME_NOREPLACE), COORD_ENODEEXISTS);
	check_msg_has(&e, "/d/cur");
	check_events(&e, "");
	fingerprint(&e.s, &after, 0);
	CHECK(same_fp(&before, &after));
	CHECK_EQ(ren(&e, S1, "/d/x", "/d/y", -1, COORD_RENAME_NOREPLACE), COORD_OK);
	check_events(&e, "D /d/x|C /d/y|H /d");

	/* EXCHANGE: both stay, names swap; the kinds may differ */
	CHECK_EQ(mkdir_(&e, "/o"), COORD_OK);
	CHECK_EQ(mkdir_(&e, "/o/sub"), COORD_OK);
	CHECK_EQ(set(&e, S1, "/o/sub", "subdata", -1), COORD_OK);
	uint64_t y_ino = N(&e, "/d/y")->ino, sub_ino = N(&e, "/o/sub")->ino;
	int32_t y_v = N(&e, "/d/y")->version, sub_v = N(&e, "/o/sub")->version;
	int32_t dcv = N(&e, "/d")->cversion, ocv = N(&e, "/o")->cversion;
	CHECK_EQ(ren(&e, S1, "/d/y", "/o/sub", -1, COORD_RENAME_EXCHANGE), COORD_OK);
	check_events(&e, "M /d/y|M /o/sub");
	CHECK_EQ(N(&e, "/d/y")->ino, sub_ino);
	CHECK_EQ(N(&e, "/o/sub")->ino, y_ino);
	CHECK_EQ(N(&e, "/d/y")->kind, COORD_KIND_DIR);
	CHECK_EQ(N(&e, "/o/sub")->kind, COORD_KIND_FILE);
	check_data(&e, "/d/y", "subdata");
	check_data(&e, "/o/sub", "X");
	CHECK_EQ(e.rep.stat.ino, y_ino); /* the Stat of the node that was at `from` */
	CHECK_EQ(znode_nkids(N(&e, "/d")), 3);
	CHECK_EQ(znode_nkids(N(&e, "/o")), 1);
	CHECK_EQ(N(&e, "/d")->cversion, dcv + 1);
	CHECK_EQ(N(&e, "/o")->cversion, ocv + 1);
	/* the data at both names changed: a CAS holding either old version must fail */
	CHECK(N(&e, "/d/y")->version > y_v);
	CHECK(N(&e, "/o/sub")->version > sub_v);
	CHECK_EQ(N(&e, "/d/y")->mzxid, (int64_t)e.zxid);
	CHECK_EQ(N(&e, "/o/sub")->mzxid, (int64_t)e.zxid);
	/* same directory, equal versions */
	CHECK_EQ(mkfile(&e, "/d/p", "P"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/d/q", "Q"), COORD_OK);
	CHECK_EQ(ren(&e, S1, "/d/p", "/d/q", 0, COORD_RENAME_EXCHANGE), COORD_OK);
	check_data(&e, "/d/p", "Q");
	check_data(&e, "/d/q", "P");
	CHECK_EQ(set(&e, S1, "/d/p", "cas", 0), COORD_EBADVERSION);
	CHECK_EQ(set(&e, S1, "/d/q", "cas", 0), COORD_EBADVERSION);
	/* exchanging ephemeral nodes keeps the owners' lists pointing at the live nodes */
	CHECK_EQ(create(&e, S2, "/d/e1", "1", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/o/e2", "2", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(ren(&e, S1, "/d/e1", "/o/e2", -1, COORD_RENAME_EXCHANGE), COORD_OK);
	check_data(&e, "/d/e1", "2");
	check_eph_consistent(&e.s);
	CHECK_EQ(ren(&e, S1, "/d/e1", "/d/q", -1, COORD_RENAME_EXCHANGE), COORD_OK);
	check_eph_consistent(&e.s);
	expire_session(&e, S2);
	CHECK(!exists(&e, "/o/e2") && !exists(&e, "/d/q"));
	CHECK(exists(&e, "/d/e1"));
	check_data(&e, "/d/e1", "P");
	check_eph_consistent(&e.s);
	CHECK_EQ(ren(&e, S1, "/d/p", "/d/none", -1, COORD_RENAME_EXCHANGE), COORD_ENONODE);
	check_msg_has(&e, "/d/none");
	buf_free(&before);
	buf_free(&after);
	env_free(&e);
}

static void test_rename_errors(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/d"), COORD_OK);
	CHECK_EQ(mkdir_(&e, "/full"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/full/k", ""), COORD_OK);
	CHECK_EQ(mkdir_(&e, "/empty"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/f", "F"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/g", "G"), COORD_OK);
	CHECK_EQ(create(&e, S2, "/eph", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	struct buf before, after;
	buf_init(&before);
	buf_init(&after);
	fingerprint(&e.s, &before, 0);
	struct {
		const char *from, *to;
		int32_t version;
		uint32_t flags;
		int err;
	} cases[] = {
		{"/nope", "/x", -1, 0, COORD_ENONODE},
		{"/f", "/nope/x", -1, 0, COORD_ENONODE},
		{"/f", "/g/x", -1, 0, COORD_ENOTDIR},           /* the new parent is a file */
		{"/f", "/eph/x", -1, 0, COORD_EEPHEMERAL},
		{"/f", "/x", 3, 0, COORD_EBADVERSION},
		{"/full", "/x", -1, 0, COORD_ENOTEMPTY},         /* only childless nodes move */
		{"/f", "/full", -1, 0, COORD_ENOTEMPTY},         /* nor replace one with children */
		{"/empty", "/empty/in", -1, 0, COORD_EBADARG},   /* into itself */
		{"/empty", "/f", -1, 0, COORD_ENOTDIR},          /* a directory over a file */
		{"/f", "/empty", -1, 0, COORD_EISDIR},           /* a file over a directory */
		{"/", "/x", -1, 0, COORD_EBADARG},
		{"/f", "/", -1, 0, COORD_EBADARG},
		{"/f", "/x", -1, COORD_RENAME_NOREPLACE | COORD_RENAME_EXCHANGE, COORD_EBADARG},
		{"/f", "/x", -1, 0x8, COORD_EBADARG},
		{"/f", "/x", -1, COORD_RENAME_EXCHANGE, COORD_ENONODE},
		{"/f", "/full", -1, COORD_RENAME_EXCHANGE, COORD_ENOTEMPTY},
		{"/f", "/g", -1, COORD_RENAME_NOREPLACE, COORD_ENODEEXISTS},
		{"f", "/x", -1, 0, COORD_EBADPATH},
		{"/f", "/x/", -1, 0, COORD_EBADPATH},
		{"/f", "/.x", -1, 0, COORD_EBADPATH},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = ren(&e, S1, cases[i].from, cases[i].to, cases[i].version, cases[i].flags);
		if (err != cases[i].err)
			fprintf(stderr, "case %zu: %s -> %s\n", i, cases[i].from, cases[i].to);
		CHECK_EQ(err, cases[i].err);
		check_events(&e, "");
	}
	fingerprint(&e.s, &after, 0);
	CHECK(same_fp(&before, &after));
	/* a dir over an empty dir is fine (rename(2)) */
	CHECK_EQ(ren(&e, S1, "/d", "/empty", -1, 0), COORD_OK);
	check_events(&e, "D /d|M /empty|H /");
	buf_free(&before);
	buf_free(&after);
	env_free(&e);
}

/* ---- multi ---- */

static void test_multi_ok(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/m"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/m/old", "old"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/m/s", "s0"), COORD_OK);
	int32_t cv = N(&e, "/m")->cversion;
	e.now = T0 + 123;
	struct coord_subop ops[] = {
		sub_create("/m/a", "A", COORD_CREATE_DIR),
		sub_create("/m/a/b", "B", 0),
		sub_set("/m/s", "s1", 0),
		sub_del("/m/old", 0),
		sub_check("/m/s", 1),
		sub_create("/m/q-", "", COORD_CREATE_SEQUENTIAL | COORD_CREATE_EPHEMERAL),
		sub_set("/m/a/b", "B2", 0),
		sub_del("/m/a/b", 1),
		sub_create("/m/a/b", "B3", 0),
	};
	uint32_t n = sizeof(ops) / sizeof(ops[0]);
	CHECK_EQ(multi(&e, S2, ops, n), COORD_OK);
	uint64_t z = e.zxid;
	CHECK_EQ(e.rep.fail_index, -1);
	CHECK_EQ(e.rep.nops, n);
	for (uint32_t i = 0; i < n; i++) {
		CHECK_EQ(e.rep.ops[i].op, ops[i].op);
		CHECK_EQ(e.rep.ops[i].err, COORD_OK);
	}
	CHECK(slice_eq(e.rep.ops[0].path, "/m/a"));
	CHECK_EQ(e.rep.ops[0].stat.czxid, (int64_t)z);
	CHECK_EQ(e.rep.ops[0].stat.kind, COORD_KIND_DIR);
	CHECK(slice_eq(e.rep.ops[1].path, "/m/a/b"));
	CHECK_EQ(e.rep.ops[2].stat.version, 1);
	CHECK_EQ(e.rep.ops[2].stat.mtime, T0 + 123);
	/* /m's cversion: +1 (a) +1 (old deleted) = cv + 2 before q- */
	char qname[32];
	snprintf(qname, sizeof(qname), "/m/q-%010d", cv + 2);
	CHECK(slice_eq(e.rep.ops[5].path, qname));
	CHECK_EQ(e.rep.ops[5].stat.ephemeral_owner, (int64_t)S2);
	CHECK_EQ(e.rep.ops[6].stat.version, 1);
	CHECK(slice_eq(e.rep.ops[8].path, "/m/a/b"));
	CHECK_EQ(e.rep.ops[8].stat.version, 0);
	check_data(&e, "/m/a", "A");
	check_data(&e, "/m/a/b", "B3");
	check_data(&e, "/m/s", "s1");
	CHECK(!exists(&e, "/m/old"));
	CHECK(exists(&e, qname));
	CHECK_EQ(N(&e, "/m")->cversion, cv + 3);
	CHECK_EQ(N(&e, "/m/a")->cversion, 3);
	CHECK_EQ(N(&e, "/m/a")->pzxid, (int64_t)z);
	char evs[512];
	snprintf(evs, sizeof(evs),
		 "C /m/a|H /m|C /m/a/b|H /m/a|M /m/s|D /m/old|H /m|C %s|H /m|M /m/a/b|D /m/a/b|H /m/a|C /m/a/b|H /m/a",
		 qname);
	check_events(&e, evs);
	check_eph_consistent(&e.s);
	CHECK_EQ(sessions_find(&e.s.sessions, S2)->neph, 1);
	/* an empty multi is fine and changes nothing */
	struct buf before, after;
	buf_init(&before);
	buf_init(&after);
	fingerprint(&e.s, &before, 0);
	CHECK_EQ(multi(&e, S1, NULL, 0), COORD_OK);
	CHECK_EQ(e.rep.nops, 0);
	check_events(&e, "");
	fingerprint(&e.s, &after, 0);
	CHECK(same_fp(&before, &after));
	/* a multi's ephemerals go with the session */
	expire_session(&e, S2);
	CHECK(!exists(&e, qname));
	buf_free(&before);
	buf_free(&after);
	env_free(&e);
}

/* Run ops as a multi that must fail at fail_at with err; everything must be as before. */
static void multi_fails(struct env *e, uint64_t sid, struct coord_subop *ops, uint32_t n, uint32_t fail_at, int err)
{
	struct buf before, after;
	buf_init(&before);
	buf_init(&after);
	fingerprint(&e->s, &before, 0);
	CHECK_EQ(multi(e, sid, ops, n), err);
	CHECK_EQ(e->rep.fail_index, (int32_t)fail_at);
	CHECK_EQ(e->rep.nops, n);
	for (uint32_t i = 0; i < n; i++) {
		CHECK_EQ(e->rep.ops[i].op, ops[i].op);
		CHECK_EQ(e->rep.ops[i].err, i == fail_at ? err : COORD_EROLLEDBACK);
	}
	char idx[32];
	snprintf(idx, sizeof(idx), "operation %u", fail_at);
	check_msg_has(e, idx);
	check_events(e, "");
	fingerprint(&e->s, &after, 0);
	CHECK(same_fp(&before, &after));
	check_eph_consistent(&e->s);
	buf_free(&before);
	buf_free(&after);
}

static void test_multi_rollback(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/m"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/m/f", "f0"), COORD_OK);
	CHECK_EQ(mkfile(&e, "/m/g", "g0"), COORD_OK);
	CHECK_EQ(create(&e, S2, "/m/e1", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/m/e2", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/m/e3", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);

	/* failing in the middle, after creates, sets and deletes (also of ephemerals) */
	{
		struct coord_subop ops[] = {
			sub_create("/m/new", "N", COORD_CREATE_DIR),
			sub_create("/m/new/kid", "K", COORD_CREATE_EPHEMERAL),
			sub_set("/m/f", "f1", 0),
			sub_del("/m/e1", -1),
			sub_del("/m/g", 0),
			sub_set("/m/f", "f2", 1),
			sub_create("/m/q", "", COORD_CREATE_SEQUENTIAL),
			sub_del("/m/e2", -1),
			sub_check("/m/f", 7), /* fails */
			sub_create("/m/after", "", 0),
			sub_del("/m/e3", -1),
		};
		multi_fails(&e, S2, ops, sizeof(ops) / sizeof(ops[0]), 8, COORD_EBADVERSION);
		check_msg_has(&e, "/m/f");
	}
	/* the session's ephemerals keep their creation order: closing deletes e1, e2, e3 in order */
	struct session *se = sessions_find(&e.s.sessions, S2);
	CHECK_EQ(se->neph, 3);
	CHECK(se->eph[0] == N(&e, "/m/e1"));
	CHECK(se->eph[1] == N(&e, "/m/e2"));
	CHECK(se->eph[2] == N(&e, "/m/e3"));
	/* the first op fails */
	{
		struct coord_subop ops[] = {sub_create("/m/f", "", 0), sub_set("/m/g", "x", -1)};
		multi_fails(&e, S1, ops, 2, 0, COORD_ENODEEXISTS);
	}
	/* the last op fails */
	{
		struct coord_subop ops[] = {sub_set("/m/g", "x", -1), sub_del("/m/f", -1), sub_create("/m/f/x", "", 0)};
		multi_fails(&e, S1, ops, 3, 2, COORD_ENONODE);
	}
	/* delete a directory's children then the directory, then fail */
	{
		CHECK_EQ(mkdir_(&e, "/m/dir"), COORD_OK);
		CHECK_EQ(mkfile(&e, "/m/dir/a", "a"), COORD_OK);
		CHECK_EQ(mkfile(&e, "/m/dir/b", "b"), COORD_OK);
		struct coord_subop ops[] = {sub_del("/m/dir/a", -1), sub_del("/m/dir/b", -1), sub_del("/m/dir", -1),
					    sub_create("/m/dir", "recreated", 0), sub_set("/m/dir", "x", 0),
					    sub_del("/m", -1)};
		multi_fails(&e, S1, ops, 6, 5, COORD_ENOTEMPTY);
		check_data(&e, "/m/dir/a", "a");
	}
	/* the same delete twice */
	{
		struct coord_subop ops[] = {sub_del("/m/g", -1), sub_del("/m/g", -1)};
		multi_fails(&e, S1, ops, 2, 1, COORD_ENONODE);
	}
	/* errors of each kind inside a multi */
	{
		struct coord_subop ops[] = {sub_create("/m/z", "", 0), sub_create("/m/e1/x", "", 0)};
		multi_fails(&e, S1, ops, 2, 1, COORD_EEPHEMERAL);
	}
	{
		struct coord_subop ops[] = {sub_create("/m/z", "", 0), sub_create("/m/f/x", "", 0)};
		multi_fails(&e, S1, ops, 2, 1, COORD_ENOTDIR);
	}
	{
		struct coord_subop ops[] = {sub_create("/m/z", "", 0), sub_create("bad", "", 0)};
		multi_fails(&e, S1, ops, 2, 1, COORD_EBADPATH);
	}
	{
		struct coord_subop ops[] = {sub_set("/m/f", "", -1), sub_del("/m/f", 0)};
		multi_fails(&e, S1, ops, 2, 1, COORD_EBADVERSION);
	}
	/* a failed multi's reply is kept like any other: a resend gets it byte for byte */
	{
		struct coord_subop ops[] = {sub_set("/m/f", "", -1), sub_del("/m/f", 0), sub_check("/m", -1)};
		multi_fails(&e, S1, ops, 3, 1, COORD_EBADVERSION);
		uint8_t *first = malloc(e.out.reply_len);
		size_t flen = e.out.reply_len;
		memcpy(first, e.out.reply, flen);
		uint64_t xid = e.rep.xid;
		uint8_t *req = malloc(e.last_req_len);
		size_t rlen = e.last_req_len;
		memcpy(req, e.last_req, rlen);
		CHECK_EQ(send_frame(&e, S1, req, rlen, COORD_OP_MULTI, xid), COORD_EBADVERSION);
		CHECK_EQ(e.out.dup, 1);
		CHECK_EQ(e.out.reply_len, flen);
		CHECK(!memcmp(e.out.reply, first, flen));
		free(first);
		free(req);
	}
	/* after all that, the same multi without the failing op applies */
	{
		struct coord_subop ops[] = {
			sub_create("/m/new", "N", COORD_CREATE_DIR),
			sub_create("/m/new/kid", "K", COORD_CREATE_EPHEMERAL),
			sub_set("/m/f", "f1", 0),
			sub_del("/m/e1", -1),
			sub_del("/m/g", 0),
		};
		CHECK_EQ(multi(&e, S2, ops, 5), COORD_OK);
		CHECK_EQ(znode_owner(N(&e, "/m/new/kid")), S2);
		check_eph_consistent(&e.s);
	}
	expire_session(&e, S2);
	check_events(&e, "D /m/e2|H /m|D /m/e3|H /m|D /m/new/kid|H /m/new");
	check_eph_consistent(&e.s);
	env_free(&e);
}

/* ---- sessions ---- */

static void test_sessions(void)
{
	struct env e;
	setup(&e);
	/* an id in use is refused */
	struct txn t = {.type = TXN_CREATE_SESSION, .term = 1, .time_ms = e.now, .session_id = S1, .timeout_ms = 5};
	apply_txn(&e, &t);
	CHECK_EQ(e.out.err, COORD_ENODEEXISTS);
	CHECK_EQ(e.out.created_session, 0);
	CHECK_EQ(sessions_find(&e.s.sessions, S1)->timeout_ms, 10000);
	CHECK_EQ(e.s.sessions.count, 2);
	/* many sessions: the table grows */
	for (uint64_t i = 1; i <= 600; i++)
		new_session(&e, 0x5500000000000000ULL + i * 7);
	CHECK_EQ(e.s.sessions.count, 602);
	for (uint64_t i = 1; i <= 600; i++)
		CHECK(sessions_find(&e.s.sessions, 0x5500000000000000ULL + i * 7));
	for (uint64_t i = 1; i <= 600; i += 2)
		expire_session(&e, 0x5500000000000000ULL + i * 7);
	CHECK_EQ(e.s.sessions.count, 302);
	CHECK(!sessions_find(&e.s.sessions, 0x5500000000000000ULL + 7));
	CHECK(sessions_find(&e.s.sessions, 0x5500000000000000ULL + 14));

	/* expiry deletes the ephemerals in creation order, each with its events */
	CHECK_EQ(mkdir_(&e, "/a"), COORD_OK);
	CHECK_EQ(mkdir_(&e, "/b"), COORD_OK);
	CHECK_EQ(create(&e, S2, "/b/z", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/a/y", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/x", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S1, "/a/mine", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	int32_t acv = N(&e, "/a")->cversion, bcv = N(&e, "/b")->cversion;
	e.now = T0 + 99999;
	expire_session(&e, S2);
	CHECK_EQ(e.out.closed_session, S2);
	check_events(&e, "D /b/z|H /b|D /a/y|H /a|D /x|H /");
	CHECK(!sessions_find(&e.s.sessions, S2));
	CHECK(!exists(&e, "/b/z") && !exists(&e, "/a/y") && !exists(&e, "/x"));
	CHECK(exists(&e, "/a/mine"));
	CHECK_EQ(N(&e, "/a")->cversion, acv + 1);
	CHECK_EQ(N(&e, "/b")->cversion, bcv + 1);
	CHECK_EQ(N(&e, "/a")->pzxid, (int64_t)e.zxid);
	/* expiring it again, or a session never seen, does nothing */
	expire_session(&e, S2);
	CHECK_EQ(e.out.closed_session, 0);
	check_events(&e, "");
	expire_session(&e, 0x77);
	CHECK_EQ(e.out.closed_session, 0);
	/* its requests now get ESESSIONEXPIRED, and change nothing */
	CHECK_EQ(mkfile(&e, "/a/y", ""), COORD_OK); /* S1 */
	CHECK_EQ(create(&e, S2, "/a/z", "", 0, 0), COORD_ESESSIONEXPIRED);
	check_events(&e, "");
	CHECK(!exists(&e, "/a/z"));
	CHECK_EQ(del(&e, 0x1234, "/a/y", -1), COORD_ESESSIONEXPIRED);
	CHECK(exists(&e, "/a/y"));

	/* a client's close: reply OK, ephemerals gone, the session too */
	CHECK_EQ(create(&e, S1, "/a/m2", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	struct coord_req q = {.op = COORD_OP_CLOSE};
	CHECK_EQ(send_req(&e, S1, &q), COORD_OK);
	CHECK_EQ(e.out.closed_session, S1);
	check_events(&e, "D /a/mine|H /a|D /a/m2|H /a");
	CHECK(!sessions_find(&e.s.sessions, S1));
	/* the close resent: the session is gone */
	uint8_t *req = malloc(e.last_req_len);
	size_t rlen = e.last_req_len;
	memcpy(req, e.last_req, rlen);
	CHECK_EQ(send_frame(&e, S1, req, rlen, COORD_OP_CLOSE, q.xid), COORD_ESESSIONEXPIRED);
	CHECK_EQ(e.out.closed_session, 0);
	free(req);
	/* a request that is not a write, a frame that does not decode */
	new_session(&e, S1);
	struct coord_req g = {.op = COORD_OP_GET, .path = slice_str("/a")};
	CHECK_EQ(send_req(&e, S1, &g), COORD_EBADARG);
	struct coord_req c = {.op = COORD_OP_CHECK, .path = slice_str("/a"), .version = -1};
	CHECK_EQ(send_req(&e, S1, &c), COORD_EBADARG);
	struct txn bad = {.type = TXN_REQUEST, .term = 1, .time_ms = e.now, .session_id = S1,
			  .req = slice_of("\x01\x04garbage", 9)};
	apply_txn(&e, &bad);
	CHECK_EQ(e.out.err, COORD_EPROTO);
	CHECK(e.out.reply != NULL);
	/* a NOOP changes nothing but the zxid */
	struct buf before, after;
	buf_init(&before);
	buf_init(&after);
	fingerprint(&e.s, &before, 1);
	struct txn noop = {.type = TXN_NOOP, .term = 2, .time_ms = e.now};
	apply_txn(&e, &noop);
	CHECK(e.out.reply == NULL);
	CHECK_EQ(e.out.nev, 0);
	fingerprint(&e.s, &after, 1);
	CHECK(same_fp(&before, &after));
	buf_free(&before);
	buf_free(&after);
	env_free(&e);
}

/* ---- exactly once ---- */

static void test_exactly_once(void)
{
	struct env e;
	setup(&e);
	struct coord_req q = {.op = COORD_OP_CREATE, .xid = 10, .ack = 1, .path = slice_str("/once"),
			      .data = slice_str("1"), .flags = COORD_CREATE_SEQUENTIAL};
	CHECK_EQ(send_req(&e, S1, &q), COORD_OK);
	CHECK(slice_eq(e.rep.path, "/once0000000000"));
	uint64_t z = e.zxid;
	size_t flen = e.out.reply_len;
	uint8_t *first = malloc(flen);
	memcpy(first, e.out.reply, flen);
	CHECK_EQ(e.out.dup, 0);
	struct session *se = sessions_find(&e.s.sessions, S1);
	CHECK_EQ(se->last_xid, 10);
	CHECK_EQ(se->ncache, 1);
	struct buf before, after;
	buf_init(&before);
	buf_init(&after);
	fingerprint(&e.s, &before, 1);
	/* resent (after a failover, say): same bytes, dup, nothing applied, no events */
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(send_req(&e, S1, &q), COORD_OK);
		CHECK_EQ(e.out.dup, 1);
		CHECK_EQ(e.out.reply_len, flen);
		CHECK(!memcmp(e.out.reply, first, flen));
		CHECK_EQ(e.rep.zxid, z); /* the first reply's zxid */
		check_events(&e, "");
		buf_reset(&after);
		fingerprint(&e.s, &after, 1);
		CHECK(same_fp(&before, &after));
	}
	CHECK(!exists(&e, "/once0000000001"));
	/* an error reply is kept too */
	struct coord_req d = {.op = COORD_OP_DELETE, .xid = 11, .path = slice_str("/none"), .version = -1};
	CHECK_EQ(send_req(&e, S1, &d), COORD_ENONODE);
	size_t elen = e.out.reply_len;
	uint8_t *eframe = malloc(elen);
	memcpy(eframe, e.out.reply, elen);
	CHECK_EQ(send_req(&e, S1, &d), COORD_ENONODE);
	CHECK_EQ(e.out.dup, 1);
	CHECK_EQ(e.out.reply_len, elen);
	CHECK(!memcmp(e.out.reply, eframe, elen));
	free(eframe);
	/* the node appearing meanwhile changes nothing for the resend */
	struct coord_req c = {.op = COORD_OP_CREATE, .xid = 12, .path = slice_str("/none")};
	CHECK_EQ(send_req(&e, S1, &c), COORD_OK);
	CHECK_EQ(send_req(&e, S1, &d), COORD_ENONODE);
	CHECK_EQ(e.out.dup, 1);
	CHECK(exists(&e, "/none"));
	/* a multi resent */
	struct coord_subop ops[] = {sub_create("/m", "", COORD_CREATE_SEQUENTIAL), sub_set("/none", "v", 0)};
	struct coord_req m = {.op = COORD_OP_MULTI, .xid = 13, .nops = 2, .ops = ops};
	CHECK_EQ(send_req(&e, S1, &m), COORD_OK);
	CHECK(slice_eq(e.rep.ops[0].path, "/m0000000002"));
	CHECK_EQ(send_req(&e, S1, &m), COORD_OK);
	CHECK_EQ(e.out.dup, 1);
	CHECK(slice_eq(e.rep.ops[0].path, "/m0000000002"));
	CHECK_EQ(N(&e, "/none")->version, 1);
	CHECK(!exists(&e, "/m0000000003"));
	env_free(&e);
	free(first);
	buf_free(&before);
	buf_free(&after);
}

/* The exactly-once window, with explicit xids. */
static int xreq(struct env *e, uint64_t sid, uint64_t xid, uint64_t ack, const char *path, uint8_t op)
{
	struct coord_req q = {.op = op, .xid = xid, .ack = ack, .path = slice_str(path), .version = -1};
	return send_req(e, sid, &q);
}

static void test_exactly_once_window(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(xreq(&e, S1, 1, 0, "/a", COORD_OP_CREATE), COORD_OK);
	CHECK_EQ(xreq(&e, S1, 2, 0, "/b", COORD_OP_CREATE), COORD_OK);
	CHECK_EQ(xreq(&e, S1, 3, 0, "/a", COORD_OP_CREATE), COORD_ENODEEXISTS);
	CHECK_EQ(xreq(&e, S1, 5, 0, "/a", COORD_OP_DELETE), COORD_OK); /* gaps are fine */
	struct session *se = sessions_find(&e.s.sessions, S1);
	CHECK_EQ(se->ncache, 4);
	/* resends of each: their own replies, nothing applied */
	CHECK_EQ(xreq(&e, S1, 1, 0, "/a", COORD_OP_CREATE), COORD_OK);
	CHECK_EQ(e.out.dup, 1);
	CHECK(!exists(&e, "/a"));
	CHECK_EQ(xreq(&e, S1, 3, 0, "/a", COORD_OP_CREATE), COORD_ENODEEXISTS);
	CHECK_EQ(e.out.dup, 1);
	CHECK_EQ(xreq(&e, S1, 5, 0, "/a", COORD_OP_DELETE), COORD_OK);
	CHECK_EQ(e.out.dup, 1);
	/* a skipped xid below the last one was never applied and never will be */
	CHECK_EQ(xreq(&e, S1, 4, 0, "/c", COORD_OP_CREATE), COORD_EDUPLICATE);
	CHECK_EQ(e.out.dup, 0);
	CHECK(!exists(&e, "/c"));
	/* an ack prunes the replies below it, also when it rides on a resend */
	CHECK_EQ(xreq(&e, S1, 6, 3, "/c", COORD_OP_CREATE), COORD_OK);
	CHECK_EQ(se->ncache, 3); /* 3, 5, 6 */
	CHECK_EQ(se->cache[0].xid, 3);
	CHECK_EQ(xreq(&e, S1, 1, 0, "/a", COORD_OP_CREATE), COORD_EDUPLICATE);
	check_msg_has(&e, "1");
	CHECK_EQ(xreq(&e, S1, 2, 0, "/b", COORD_OP_CREATE), COORD_EDUPLICATE);
	CHECK(!exists(&e, "/a"));
	CHECK_EQ(xreq(&e, S1, 3, 6, "/a", COORD_OP_CREATE), COORD_EDUPLICATE); /* pruned by its own ack */
	CHECK_EQ(se->ncache, 1);
	CHECK_EQ(xreq(&e, S1, 6, 6, "/c", COORD_OP_CREATE), COORD_OK);
	CHECK_EQ(e.out.dup, 1);
	CHECK_EQ(xreq(&e, S1, 7, 100, "/d", COORD_OP_CREATE), COORD_OK);
	CHECK_EQ(se->ncache, 1);
	CHECK_EQ(se->cache[0].xid, 7);
	/* xid 0 is never new */
	CHECK_EQ(xreq(&e, S2, 0, 0, "/z", COORD_OP_CREATE), COORD_OK);
	/* (send_req assigns a fresh xid when 0; use a raw frame instead) */
	struct coord_req z0 = {.op = COORD_OP_CREATE, .xid = 0, .path = slice_str("/z0")};
	struct buf b;
	buf_init(&b);
	CHECK_EQ(coord_req_encode(&b, &z0), COORD_OK);
	CHECK_EQ(send_frame(&e, S2, b.p, b.len, COORD_OP_CREATE, 0), COORD_EDUPLICATE);
	buf_free(&b);
	/* sessions have independent windows */
	CHECK_EQ(xreq(&e, S2, 1 + e.next_xid, 0, "/s2", COORD_OP_CREATE), COORD_OK);
	/* the cache keeps at most SESSION_MAX_CACHED_REPLIES: the oldest go */
	uint64_t base = 1000;
	for (uint64_t i = 0; i < SESSION_MAX_CACHED_REPLIES + 5; i++)
		CHECK_EQ(xreq(&e, S1, base + i, 0, "/a", COORD_OP_CHECK), COORD_EBADARG);
	CHECK_EQ(se->ncache, SESSION_MAX_CACHED_REPLIES);
	CHECK_EQ(se->cache[0].xid, base + 5);
	CHECK_EQ(xreq(&e, S1, base + 4, 0, "/a", COORD_OP_CHECK), COORD_EDUPLICATE);
	CHECK_EQ(xreq(&e, S1, base + 5, 0, "/a", COORD_OP_CHECK), COORD_EBADARG);
	CHECK_EQ(e.out.dup, 1);
	CHECK_EQ(xreq(&e, S1, 7, 0, "/d", COORD_OP_CREATE), COORD_EDUPLICATE);
	env_free(&e);
}

/* ---- reads ---- */

static int read_req(struct env *e, struct coord_req *q, struct coord_reply *r, struct buf *b)
{
	buf_reset(b);
	int err = state_read(&e->s, q, b);
	CHECK_EQ(coord_reply_decode(b->p, b->len, q->op, r, NULL, 0), COORD_OK);
	CHECK_EQ(r->err, err);
	CHECK_EQ(r->zxid, e->s.last_zxid);
	CHECK_EQ(r->xid, q->xid);
	return err;
}

static void test_reads(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/d"), COORD_OK);
	for (int i = 0; i < 25; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/d/n%02d", 24 - i);
		CHECK_EQ(mkfile(&e, p, "v"), COORD_OK);
	}
	CHECK_EQ(set(&e, S1, "/d/n07", "seven", -1), COORD_OK);
	struct buf b;
	buf_init(&b);
	struct coord_reply r;
	struct coord_req g = {.op = COORD_OP_GET, .xid = 42, .path = slice_str("/d/n07")};
	CHECK_EQ(read_req(&e, &g, &r, &b), COORD_OK);
	CHECK(slice_eq(r.data, "seven"));
	CHECK_EQ(r.stat.version, 1);
	CHECK_EQ(r.stat.data_length, 5);
	coord_reply_clear(&r);
	struct coord_req x = {.op = COORD_OP_EXISTS, .xid = 43, .path = slice_str("/d")};
	CHECK_EQ(read_req(&e, &x, &r, &b), COORD_OK);
	CHECK_EQ(r.stat.num_children, 25);
	CHECK_EQ(r.stat.cversion, 25);
	coord_reply_clear(&r);
	x.path = slice_str("/d/none");
	CHECK_EQ(read_req(&e, &x, &r, &b), COORD_ENONODE);
	coord_reply_clear(&r);
	x.path = slice_str("/d/");
	CHECK_EQ(read_req(&e, &x, &r, &b), COORD_EBADPATH);
	coord_reply_clear(&r);
	/* list in pages of 10 */
	struct coord_req l = {.op = COORD_OP_LIST, .xid = 44, .path = slice_str("/d"), .max = 10};
	char names[25][8];
	int got = 0;
	char after[16] = "";
	for (int page = 0; page < 3; page++) {
		l.after = slice_str(after);
		CHECK_EQ(read_req(&e, &l, &r, &b), COORD_OK);
		CHECK_EQ(r.count, page < 2 ? 10 : 5);
		CHECK_EQ(r.more, page < 2);
		CHECK_EQ(r.stat.num_children, 25);
		const char *p = (const char *)r.names.p;
		for (uint32_t i = 0; i < r.count; i++) {
			snprintf(names[got++], sizeof(names[0]), "%s", p);
			p += strlen(p) + 1;
		}
		snprintf(after, sizeof(after), "%s", names[got - 1]);
		coord_reply_clear(&r);
	}
	for (int i = 0; i < 25; i++) {
		char want[8];
		snprintf(want, sizeof(want), "n%02d", i);
		CHECK_STR(names[i], want);
	}
	l.max = 0; /* server default */
	l.after = slice_str("");
	CHECK_EQ(read_req(&e, &l, &r, &b), COORD_OK);
	CHECK_EQ(r.count, 25);
	CHECK_EQ(r.more, 0);
	coord_reply_clear(&r);
	struct coord_req sy = {.op = COORD_OP_SYNC, .xid = 45, .path = slice_str("/d")};
	CHECK_EQ(read_req(&e, &sy, &r, &b), COORD_OK);
	CHECK(slice_eq(r.path, "/d"));
	coord_reply_clear(&r);
	struct coord_req w = {.op = COORD_OP_SET, .xid = 46, .path = slice_str("/d")};
	CHECK_EQ(read_req(&e, &w, &r, &b), COORD_EBADARG);
	coord_reply_clear(&r);
	buf_free(&b);
	env_free(&e);
}

/* ---- snapshots ---- */

struct records {
	uint8_t **p;
	size_t *len;
	size_t n, cap;
};

static int put_record(void *arg, const void *p, size_t n)
{
	struct records *r = arg;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->p = realloc(r->p, r->cap * sizeof(*r->p));
		r->len = realloc(r->len, r->cap * sizeof(*r->len));
		CHECK(r->p && r->len);
	}
	r->p[r->n] = malloc(n ? n : 1);
	CHECK(r->p[r->n]);
	memcpy(r->p[r->n], p, n);
	r->len[r->n++] = n;
	return 0;
}

static void records_free(struct records *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->p[i]);
	free(r->p);
	free(r->len);
	memset(r, 0, sizeof(*r));
}

/* Save s, load into fresh (initialised by this function), compare. */
static void snapshot_copy(const struct state *s, struct state *fresh)
{
	struct records r = {0};
	CHECK_EQ(state_save(s, put_record, &r), COORD_OK);
	CHECK_EQ(state_init(fresh, s->max_data), COORD_OK);
	for (size_t i = 0; i < r.n; i++)
		CHECK_EQ(state_load_record(fresh, r.p[i], r.len[i]), COORD_OK);
	CHECK_EQ(state_load_done(fresh), COORD_OK);
	records_free(&r);
	CHECK_EQ(tree_digest(&fresh->tree), tree_digest(&s->tree));
	CHECK_EQ(fresh->last_zxid, s->last_zxid);
	CHECK_EQ(fresh->tree.next_ino, s->tree.next_ino);
	CHECK_EQ(fresh->tree.count, s->tree.count);
	CHECK_EQ(fresh->tree.data_bytes, s->tree.data_bytes);
	struct buf a, b;
	buf_init(&a);
	buf_init(&b);
	fingerprint(s, &a, 1);
	fingerprint(fresh, &b, 1);
	CHECK(same_fp(&a, &b));
	buf_free(&a);
	buf_free(&b);
	check_eph_consistent(fresh);
}

static void test_snapshot(void)
{
	struct env e;
	setup(&e);
	new_session(&e, 0x33);
	CHECK_EQ(create(&e, S1, "/", "root data", 0, 0), COORD_ENODEEXISTS);
	CHECK_EQ(set(&e, S1, "/", "root data", -1), COORD_OK);
	CHECK_EQ(create(&e, S1, "/app", "cfg", COORD_CREATE_DIR, COORD_POLICY_EPHEMERAL), COORD_OK);
	CHECK_EQ(create(&e, S1, "/q", NULL, COORD_CREATE_DIR, COORD_POLICY_SEQUENTIAL), COORD_OK);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(mkfile(&e, "/q/item", "x"), COORD_OK);
	/* ephemerals of S2 created in an order that is not name order, across directories */
	CHECK_EQ(create(&e, S2, "/app/zz", "", 0, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/q/e", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/app/aa", "", 0, 0), COORD_OK);
	CHECK_EQ(create(&e, S2, "/app/mm", "", 0, 0), COORD_OK);
	CHECK_EQ(create(&e, 0x33, "/app/s3", "", 0, 0), COORD_OK);
	CHECK_EQ(ren(&e, S2, "/app/zz", "/app/b", -1, 0), COORD_OK);
	CHECK_EQ(append(&e, S1, "/q/item0000000002", "yy", 2, -1), COORD_OK);
	CHECK_EQ(del(&e, S1, "/q/item0000000003", -1), COORD_OK);
	/* binary data and a failed multi in a cache */
	struct coord_req q = {.op = COORD_OP_CREATE, .path = slice_str("/bin"), .data = slice_of("\0\1\2", 3)};
	CHECK_EQ(send_req(&e, S1, &q), COORD_OK);
	struct coord_subop ops[] = {sub_set("/bin", "", -1), sub_del("/none", -1)};
	CHECK_EQ(multi(&e, S2, ops, 2), COORD_ENONODE);

	/* a session of an authenticated principal: through the txn codec and the snapshot */
	struct txn pt = {.type = TXN_CREATE_SESSION, .term = 1, .time_ms = e.now, .session_id = 0x44, .timeout_ms = 5000};
	snprintf(pt.principal, sizeof(pt.principal), "web-1");
	struct buf pb;
	buf_init(&pb);
	CHECK_EQ(txn_encode(&pb, &pt), COORD_OK);
	struct txn back;
	CHECK_EQ(txn_decode(pb.p, pb.len, &back), COORD_OK);
	CHECK(strcmp(back.principal, "web-1") == 0);
	CHECK_EQ(txn_decode(pb.p, pb.len - 1, &back), COORD_EPROTO); /* cut principal */
	buf_free(&pb);
	apply_txn(&e, &pt);
	CHECK(strcmp(sessions_find(&e.s.sessions, 0x44)->principal, "web-1") == 0);
	CHECK(strcmp(sessions_find(&e.s.sessions, 0x33)->principal, "") == 0);

	struct state s2;
	snapshot_copy(&e.s, &s2);
	CHECK(strcmp(sessions_find(&s2.sessions, 0x44)->principal, "web-1") == 0);
	CHECK(strcmp(sessions_find(&s2.sessions, 0x33)->principal, "") == 0);
	/* a second generation */
	struct state s3;
	snapshot_copy(&s2, &s3);
	state_free(&s3);

	/* the loaded state goes on exactly like the original: swap it in and compare */
	struct env f = e;
	f.s = s2;
	memset(&f.out, 0, sizeof(f.out));
	f.have_rep = 0;
	f.last_req = NULL;
	/* close S2 on both: same events in the same (creation) order, same digest */
	expire_session(&e, S2);
	expire_session(&f, S2);
	check_events(&e, "D /app/b|H /app|D /q/e0000000005|H /q|D /app/aa|H /app|D /app/mm|H /app");
	check_events(&f, "D /app/b|H /app|D /q/e0000000005|H /q|D /app/aa|H /app|D /app/mm|H /app");
	CHECK_EQ(tree_digest(&f.s.tree), tree_digest(&e.s.tree));
	CHECK(!exists(&f, "/app/b"));
	CHECK(exists(&f, "/app/s3"));
	/* resends answered from the reloaded caches */
	CHECK_EQ(xreq(&f, S1, q.xid, 0, "/bin", COORD_OP_CREATE), COORD_OK);
	CHECK_EQ(f.out.dup, 1);
	CHECK_EQ(xreq(&e, S1, q.xid, 0, "/bin", COORD_OP_CREATE), COORD_OK);
	CHECK_EQ(e.out.reply_len, f.out.reply_len);
	CHECK(!memcmp(e.out.reply, f.out.reply, e.out.reply_len));
	/* new work gets the same inode numbers and sequence numbers on both */
	CHECK_EQ(mkfile(&e, "/q/item", "x"), COORD_OK);
	CHECK_EQ(mkfile(&f, "/q/item", "x"), COORD_OK);
	CHECK(slice_eq(f.rep.path, "/q/item0000000008"));
	CHECK(slice_eq(e.rep.path, "/q/item0000000008"));
	CHECK_EQ(N(&e, "/q/item0000000008")->ino, N(&f, "/q/item0000000008")->ino);
	CHECK_EQ(tree_digest(&f.s.tree), tree_digest(&e.s.tree));
	env_free(&f);
	env_free(&e);
}

static void test_snapshot_bad(void)
{
	struct env e;
	setup(&e);
	CHECK_EQ(mkdir_(&e, "/a"), COORD_OK);
	CHECK_EQ(create(&e, S2, "/a/e", "", COORD_CREATE_EPHEMERAL, 0), COORD_OK);
	struct records r = {0};
	CHECK_EQ(state_save(&e.s, put_record, &r), COORD_OK);
	/* records: /, /a, /a/e, two sessions, end */
	CHECK_EQ(r.n, 6);
	struct state s;
	/* no closing record */
	CHECK_EQ(state_init(&s, MAXDATA), COORD_OK);
	for (size_t i = 0; i + 1 < r.n; i++)
		CHECK_EQ(state_load_record(&s, r.p[i], r.len[i]), COORD_OK);
	CHECK_EQ(state_load_done(&s), COORD_EPROTO);
	state_free(&s);
	/* a node before its parent */
	CHECK_EQ(state_init(&s, MAXDATA), COORD_OK);
	CHECK_EQ(state_load_record(&s, r.p[0], r.len[0]), COORD_OK);
	CHECK_EQ(state_load_record(&s, r.p[2], r.len[2]), COORD_EPROTO);
	state_free(&s);
	/* a node twice */
	CHECK_EQ(state_init(&s, MAXDATA), COORD_OK);
	CHECK_EQ(state_load_record(&s, r.p[1], r.len[1]), COORD_OK);
	CHECK_EQ(state_load_record(&s, r.p[1], r.len[1]), COORD_EPROTO);
	state_free(&s);
	/* an ephemeral whose session is missing */
	CHECK_EQ(state_init(&s, MAXDATA), COORD_OK);
	for (size_t i = 0; i < 3; i++)
		CHECK_EQ(state_load_record(&s, r.p[i], r.len[i]), COORD_OK);
	CHECK_EQ(state_load_record(&s, r.p[5], r.len[5]), COORD_OK);
	CHECK_EQ(state_load_done(&s), COORD_EPROTO);
	state_free(&s);
	/* a session twice, truncated records, unknown record type, trailing bytes */
	CHECK_EQ(state_init(&s, MAXDATA), COORD_OK);
	CHECK_EQ(state_load_record(&s, r.p[3], r.len[3]), COORD_OK);
	CHECK_EQ(state_load_record(&s, r.p[3], r.len[3]), COORD_EPROTO);
	state_free(&s);
	for (size_t i = 0; i < r.n; i++) {
		for (size_t cut = 0; cut < r.len[i]; cut++) {
			CHECK_EQ(state_init(&s, MAXDATA), COORD_OK);
			if (i == 2)
				CHECK_EQ(state_load_record(&s, r.p[1], r.len[1]), COORD_OK);
			int rc = state_load_record(&s, r.p[i], cut);
			CHECK(rc != COORD_OK);
			state_free(&s);
		}
		uint8_t *longer = malloc(r.len[i] + 1);
		memcpy(longer, r.p[i], r.len[i]);
		longer[r.len[i]] = 0;
		CHECK_EQ(state_init(&s, MAXDATA), COORD_OK);
		if (i == 2)
			CHECK_EQ(state_load_record(&s, r.p[1], r.len[1]), COORD_OK);
		CHECK(state_load_record(&s, longer, r.len[i] + 1) != COORD_OK);
		state_free(&s);
		free(longer);
	}
	CHECK_EQ(state_init(&s, MAXDATA), COORD_OK);
	CHECK_EQ(state_load_record(&s, (const uint8_t *)"Q", 1), COORD_EPROTO);
	state_free(&s);
	records_free(&r);
	/* inode number 0 (0 marks a free slot of the tree's history table) */
	tree_lookup(&e.s.tree, "/a", 2)->ino = 0;
	memset(&r, 0, sizeof(r));
	CHECK_EQ(state_save(&e.s, put_record, &r), COORD_OK);
	CHECK_EQ(state_init(&s, MAXDATA), COORD_OK);
	CHECK_EQ(state_load_record(&s, r.p[0], r.len[0]), COORD_OK);
	CHECK_EQ(state_load_record(&s, r.p[1], r.len[1]), COORD_EPROTO);
	state_free(&s);
	records_free(&r);
	env_free(&e);
}

/* ---- determinism ---- */

static uint64_t rng;
static uint64_t seed = 0x2545F4914F6CDD1DULL; /* `test_state determinism SEED` tries another */
static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static unsigned R(unsigned n) { return (unsigned)(rnd() % n); }

static const char *const PATHS[] = {
	"/a", "/b", "/c", "/a/x", "/a/y", "/b/x", "/b/y", "/c/x", "/a/x/p", "/a/x/q", "/b/x/p", "/a/y/p",
	"/a/", "/b/", "/c/x/", "/",
};
#define NPATHS (sizeof(PATHS) / sizeof(PATHS[0]))

static const char *rpath(void)
{
	/* mostly the plain ones; the trailing-slash ones only make sense for sequential creates */
	return PATHS[R(NPATHS - 4)];
}

static int32_t rversion(void) { return R(3) ? -1 : (int32_t)R(4); }

/* ACLs of the random run: mostly permissive, some that refuse the anonymous sessions or one
 * principal, one that does not parse. Sessions 1, 4, 7 are principal p1, 2, 5 are p2. */
static const char *const ACLS[] = {
	"world:anyone:rwcda", "world:anyone:ra", "world:anyone:rcda,key:p1:rwcda", "key:p2:rwcda,world:anyone:wa",
	"world:anyone:cdra", "world:anyone:rwcd", "bogus",
};
static const char *racl(void) { return R(3) ? ACLS[0] : ACLS[R(sizeof(ACLS) / sizeof(ACLS[0]))]; }
static const char *sess_principal(unsigned si) { return si % 3 == 1 ? "p1" : si % 3 == 2 ? "p2" : ""; }

static const char *const DATA[] = {"", "x", "hello", "0123456789abcdef", "zz\n"};
static const char *rdata(void) { return DATA[R(5)]; }

#define NSESS 5
static uint64_t sess_id(unsigned i) { return 0x0700000000000000ULL + 17 * (i + 1); }

struct gen {
	uint64_t xid[NSESS];     /* last xid sent per session */
	uint64_t ack[NSESS];
	uint8_t *prev[NSESS];    /* a previous request frame of each session, for resends */
	size_t prevlen[NSESS];
	int alive[NSESS];
	int64_t now;
};

static uint32_t rflags(void)
{
	uint32_t f = 0;
	if (R(3) == 0)
		f |= COORD_CREATE_DIR;
	if (R(4) == 0)
		f |= COORD_CREATE_EPHEMERAL;
	if (R(8) == 0)
		f |= COORD_CREATE_SEQUENTIAL;
	return f;
}

static void gen_subop(struct coord_subop *o)
{
	memset(o, 0, sizeof(*o));
	switch (R(4)) {
	case 0: {
		o->op = COORD_OP_CREATE;
		o->flags = rflags();
		o->path = slice_str((o->flags & COORD_CREATE_SEQUENTIAL) ? PATHS[R(NPATHS)] : rpath());
		o->data = slice_str(rdata());
		if (R(5) == 0) {
			o->flags |= COORD_CREATE_ACL;
			o->acl = slice_str(racl());
		}
		break;
	}
	case 1:
		o->op = COORD_OP_SET;
		o->path = slice_str(rpath());
		o->data = slice_str(rdata());
		o->version = rversion();
		break;
	case 2:
		o->op = COORD_OP_DELETE;
		o->path = slice_str(rpath());
		o->version = rversion();
		break;
	default:
		o->op = COORD_OP_CHECK;
		o->path = slice_str(rpath());
		o->version = rversion();
		break;
	}
}

/* One random txn, encoded. */
static void gen_txn(struct gen *g, struct buf *out)
{
	g->now += R(50);
	unsigned k = R(100);
	/* mostly sessions the generator believes alive; now and then a dead one */
	unsigned si = R(NSESS);
	for (int tries = 0; tries < 8 && !g->alive[si] && (k < 3 || R(10)); tries++)
		si = R(NSESS);
	if (k < 3)
		for (int tries = 0; tries < 8 && g->alive[si]; tries++)
			si = R(NSESS);
	uint64_t sid = sess_id(si);
	struct txn t = {.term = 1, .time_ms = g->now, .session_id = sid};
	struct buf rb;
	buf_init(&rb);
	if (k < 3) {
		t.type = TXN_CREATE_SESSION;
		for (int i = 0; i < COORD_PASSWD_LEN; i++)
			t.passwd[i] = (uint8_t)rnd();
		t.timeout_ms = 1000 + R(5000);
		snprintf(t.principal, sizeof(t.principal), "%s", sess_principal(si));
		if (!g->alive[si]) {
			g->xid[si] = g->ack[si] = 0;
			free(g->prev[si]);
			g->prev[si] = NULL;
		}
		g->alive[si] = 1;
	} else if (k < 4) {
		t.type = TXN_CLOSE_SESSION;
		t.reason = TXN_CLOSE_EXPIRED;
		g->alive[si] = 0;
	} else if (k < 5) {
		t.type = TXN_NOOP;
	} else if (k < 10 && g->prev[si]) {
		/* a resend of an earlier request of this session */
		t.type = TXN_REQUEST;
		buf_put(&rb, g->prev[si], g->prevlen[si]);
	} else {
		t.type = TXN_REQUEST;
		struct coord_req q = {0};
		struct coord_subop ops[6];
		q.xid = ++g->xid[si];
		if (R(4) == 0)
			g->ack[si] = q.xid - R(3);
		q.ack = g->ack[si];
		unsigned op = R(100);
		if (op < 25) {
			q.op = COORD_OP_CREATE;
			q.flags = rflags();
			q.path = slice_str((q.flags & COORD_CREATE_SEQUENTIAL) ? PATHS[R(NPATHS)] : rpath());
			q.data = slice_str(rdata());
			if ((q.flags & COORD_CREATE_DIR) && R(6) == 0)
				q.policy = (uint8_t)(1 + R(3));
			if (R(6) == 0) {
				q.flags |= COORD_CREATE_ACL;
				q.acl = slice_str(racl());
			}
		} else if (op < 40) {
			q.op = COORD_OP_SET;
			q.path = slice_str(R(20) ? rpath() : "/");
			q.data = slice_str(rdata());
			q.version = rversion();
		} else if (op < 55) {
			q.op = COORD_OP_DELETE;
			q.path = slice_str(rpath());
			q.version = rversion();
		} else if (op < 65) {
			q.op = COORD_OP_APPEND;
			q.path = slice_str(rpath());
			q.data = slice_str(R(3) ? rdata() : "a forty-byte line of appended text.....\n");
			q.version = rversion();
		} else if (op < 77) {
			q.op = COORD_OP_RENAME;
			q.path = slice_str(rpath());
			q.path2 = slice_str(rpath());
			q.version = rversion();
			unsigned f = R(6);
			q.flags = f == 0 ? COORD_RENAME_NOREPLACE : f == 1 ? COORD_RENAME_EXCHANGE : 0;
		} else if (op < 92) {
			q.op = COORD_OP_MULTI;
			q.nops = R(6) + 1;
			q.ops = ops;
			for (uint32_t i = 0; i < q.nops; i++)
				gen_subop(&ops[i]);
		} else if (op < 93) {
			q.op = COORD_OP_SETACL;
			q.path = slice_str(rpath());
			if (q.path.len == 1) /* keep "/" open, or the run would soon refuse most creates */
				q.path = slice_str("/a");
			q.acl = slice_str(racl());
			q.version = rversion();
			if (q.path.len == 2 && R(2)) /* and the top directories mostly open */
				q.acl = slice_str(ACLS[0]);
		} else if (op < 95) {
			q.op = COORD_OP_SETPOLICY;
			q.path = slice_str(rpath());
			q.policy = (uint8_t)R(4);
		} else if (op < 96) {
			q.op = COORD_OP_CLOSE;
			g->alive[si] = 0;
		} else {
			q.op = COORD_OP_GET; /* not a write: refused, but still a txn */
			q.path = slice_str(rpath());
		}
		CHECK_EQ(coord_req_encode(&rb, &q), COORD_OK);
		if (R(3) == 0) {
			free(g->prev[si]);
			g->prev[si] = malloc(rb.len);
			memcpy(g->prev[si], rb.p, rb.len);
			g->prevlen[si] = rb.len;
		}
	}
	t.req = slice_of(rb.p, rb.len);
	CHECK_EQ(txn_encode(out, &t), COORD_OK);
	buf_free(&rb);
}

static void apply_bytes(struct state *s, uint64_t zxid, const struct buf *tb, struct apply_out *out)
{
	struct txn t;
	CHECK_EQ(txn_decode(tb->p, tb->len, &t), COORD_OK);
	memset(out, 0, sizeof(*out));
	state_apply(s, zxid, &t, out);
}

static void same_out(const struct apply_out *a, const struct apply_out *b)
{
	CHECK_EQ(a->reply_len, b->reply_len);
	CHECK(a->reply_len == 0 || !memcmp(a->reply, b->reply, a->reply_len));
	CHECK_EQ(a->err, b->err);
	CHECK_EQ(a->dup, b->dup);
	CHECK_EQ(a->created_session, b->created_session);
	CHECK_EQ(a->closed_session, b->closed_session);
	CHECK_EQ(a->nev, b->nev);
	for (size_t i = 0; i < a->nev; i++) {
		CHECK_EQ(a->ev[i].type, b->ev[i].type);
		CHECK_STR(a->ev[i].path, b->ev[i].path);
	}
}

static void test_determinism(void)
{
	enum { TXNS = 20000, EVERY = 1000 };
	rng = seed;
	struct state a, b, c;
	CHECK_EQ(state_init(&a, MAXDATA), COORD_OK);
	CHECK_EQ(state_init(&b, MAXDATA), COORD_OK);
	CHECK_EQ(state_init(&c, MAXDATA), COORD_OK);
	struct gen g;
	memset(&g, 0, sizeof(g));
	g.now = T0;
	struct buf tb, fp_before, fp_after;
	buf_init(&tb);
	buf_init(&fp_before);
	buf_init(&fp_after);
	size_t failed_unchanged = 0;
	size_t errs[COORD_ERR_COUNT] = {0}, dups = 0, events = 0, decoded = 0, maxnodes = 0;
	for (uint64_t i = 1; i <= TXNS; i++) {
		buf_reset(&tb);
		gen_txn(&g, &tb);
		uint64_t zxid = (1ULL << 32) | i;
		struct apply_out oa, ob, oc;
		apply_bytes(&a, zxid, &tb, &oa);
		/* b: a request that fails, or is a resend, changes nothing but the reply cache */
		buf_reset(&fp_before);
		fingerprint(&b, &fp_before, 0);
		apply_bytes(&b, zxid, &tb, &ob);
		if (ob.reply && (ob.err || ob.dup)) {
			buf_reset(&fp_after);
			fingerprint(&b, &fp_after, 0);
			CHECK(same_fp(&fp_before, &fp_after));
			CHECK_EQ(ob.nev, 0);
			failed_unchanged++;
		}
		apply_bytes(&c, zxid, &tb, &oc);
		same_out(&oa, &ob);
		same_out(&oa, &oc); /* c was loaded from a snapshot at the last multiple of EVERY */
		if (oa.reply) {
			/* every reply decodes */
			struct txn t;
			CHECK_EQ(txn_decode(tb.p, tb.len, &t), COORD_OK);
			uint8_t kind, op;
			uint64_t xid;
			CHECK_EQ(coord_reply_peek(oa.reply, oa.reply_len, &kind, &xid, &op), COORD_OK);
			struct coord_reply r;
			char why[200];
			if (coord_reply_decode(oa.reply, oa.reply_len, op, &r, why, sizeof(why))) {
				fprintf(stderr, "txn %" PRIu64 ": reply does not decode: %s\n", i, why);
				CHECK(0);
			}
			if (r.err >= 0 && r.err < COORD_ERR_COUNT)
				errs[r.err]++;
			coord_reply_clear(&r);
			decoded++;
		}
		dups += (size_t)oa.dup;
		events += oa.nev;
		apply_out_reset(&oa);
		apply_out_reset(&ob);
		apply_out_reset(&oc);
		if (a.tree.count > maxnodes)
			maxnodes = a.tree.count;
		if (i % 37 == 0) {
			check_tree_invariants(&a);
			check_tree_invariants(&c);
		}
		if (i % EVERY == 0) {
			CHECK_EQ(tree_digest(&a.tree), tree_digest(&b.tree));
			struct buf fa, fb;
			buf_init(&fa);
			buf_init(&fb);
			fingerprint(&a, &fa, 1);
			fingerprint(&b, &fb, 1);
			CHECK(same_fp(&fa, &fb));
			buf_reset(&fb);
			fingerprint(&c, &fb, 1);
			CHECK(same_fp(&fa, &fb));
			buf_free(&fa);
			buf_free(&fb);
			state_free(&c);
			snapshot_copy(&a, &c);
		}
	}
	CHECK_EQ(tree_digest(&a.tree), tree_digest(&b.tree));
	CHECK_EQ(tree_digest(&a.tree), tree_digest(&c.tree));
	fprintf(stderr, "    %zu replies (%zu ok, %zu dup), %zu events, up to %zu nodes; errors:", decoded,
		errs[COORD_OK], dups, events, maxnodes);
	for (int i = 1; i < COORD_ERR_COUNT; i++)
		if (errs[i])
			fprintf(stderr, " %s %zu", coord_errname(i), errs[i]);
	fprintf(stderr, "\n");
	/* the run exercised what it should */
	CHECK(decoded > TXNS / 2);
	CHECK(dups > 100);
	CHECK(events > TXNS / 4);
	CHECK(errs[COORD_OK] > 2000);
	CHECK(errs[COORD_ENONODE] > 100);
	CHECK(errs[COORD_ENODEEXISTS] > 100);
	CHECK(errs[COORD_EBADVERSION] > 100);
	CHECK(errs[COORD_ENOTEMPTY] > 10);
	CHECK(errs[COORD_ESESSIONEXPIRED] > 10);
	CHECK(errs[COORD_EDUPLICATE] > 10);
	CHECK(errs[COORD_ETOOLARGE] > 3);
	CHECK(errs[COORD_ENOAUTH] > 10);
	CHECK(maxnodes > 10);
	for (int i = 0; i < NSESS; i++)
		free(g.prev[i]);
	CHECK(failed_unchanged > TXNS / 4);
	buf_free(&tb);
	buf_free(&fp_before);
	buf_free(&fp_after);
	state_free(&a);
	state_free(&b);
	state_free(&c);
}

/* `test_state NAME` runs only the tests whose name contains NAME */
#define T(x)                                    \
	do {                                    \
		if (!only || strstr(#x, only))  \
			RUN(x);                 \
	} while (0)

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	if (argc > 2)
		seed = strtoull(argv[2], NULL, 0);
	T(test_create);
	T(test_create_errors);
	T(test_sequential);
	T(test_counter_wrap);
	T(test_ephemeral_and_policy);
	T(test_delete);
	T(test_set);
	T(test_append);
	T(test_rename_plain);
	T(test_rename_replace_exchange);
	T(test_rename_errors);
	T(test_multi_ok);
	T(test_multi_rollback);
	T(test_sessions);
	T(test_exactly_once);
	T(test_exactly_once_window);
	T(test_reads);
	T(test_snapshot);
	T(test_snapshot_bad);
	T(test_determinism);
	return 0;
}
