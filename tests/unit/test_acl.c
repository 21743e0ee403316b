/*
 * test_acl.c: per-znode ACLs. The text form's parser and printer (common/acl.c); the interned,
 * reference-counted table (server/acls.c); and the state machine enforcing every permission for
 * anonymous sessions, world:anyone and key:PRINCIPAL entries and the superUser, with inheritance
 * at create, setACL with an expected aversion, all-or-nothing multis, snapshots and the digest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "acls.h"
#include "buf.h"
#include "check.h"
#include "err.h"
#include "state.h"
#include "txn.h"
#include "wire.h"

/* ---- parser and printer ---- */

static const char *canon(const char *text)
{
	static char out[COORD_ACL_TEXT_MAX + 1];
	struct coord_acl a;
	char why[300];
	if (coord_acl_parse(text, strlen(text), &a, why, sizeof(why)) != COORD_OK) {
		fprintf(stderr, "parse of '%s' failed: %s\n", text, why);
		CHECK(0);
	}
	CHECK(coord_acl_format(&a, out, sizeof(out)) > 0);
	return out;
}

static const char *refused(const char *text)
{
	static char why[300];
	struct coord_acl a;
	why[0] = 0;
	CHECK_EQ(coord_acl_parse(text, strlen(text), &a, why, sizeof(why)), COORD_EBADARG);
	CHECK(why[0]);
	return why;
}

#define CHECK_HAS(hay, needle)                                                                        \
	do {                                                                                          \
		const char *_h = (hay);                                                               \
		if (!strstr(_h, (needle))) {                                                          \
			fprintf(stderr, "%s:%d: \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, _h, (needle)); \
			exit(1);                                                                      \
		}                                                                                     \
	} while (0)

static void test_text_form_round_trips(void)
{
	CHECK_STR(canon("world:anyone:rwcda"), "world:anyone:rwcda");
	CHECK_STR(canon("world:anyone:r,key:web:rwcd"), "world:anyone:r,key:web:rwcd");
	CHECK_STR(canon("key:web:adcwr"), "key:web:rwcda");            /* perms print in rwcda order */
	CHECK_STR(canon(" world:anyone:r , key:a.b@c-d_e+f=g:w\n"), "world:anyone:r,key:a.b@c-d_e+f=g:w");
	CHECK_STR(canon("key:web:r,key:web:w,world:anyone:c"), "key:web:rw,world:anyone:c"); /* merged */
	CHECK_STR(canon("key:web:rr"), "key:web:r");
	char max[COORD_PRINCIPAL_MAX + 16];
	snprintf(max, sizeof(max), "key:%0*d:r", COORD_PRINCIPAL_MAX, 7);
	CHECK_STR(canon(max), max);
	/* printing what was parsed and parsing it again gives the same */
	struct coord_acl a, b;
	const char *t = "key:x:a,world:anyone:rd,key:y:wc";
	CHECK_EQ(coord_acl_parse(t, strlen(t), &a, NULL, 0), COORD_OK);
	char buf[200];
	size_t n = coord_acl_format(&a, buf, sizeof(buf));
	CHECK_EQ(coord_acl_parse(buf, n, &b, NULL, 0), COORD_OK);
	CHECK_EQ(memcmp(&a, &b, sizeof(a)), 0);
	CHECK_EQ(coord_acl_format(&a, buf, 5), 0); /* does not fit */
}

static void test_bad_text_is_refused_with_a_reason(void)
{
	CHECK_HAS(refused(""), "empty");
	CHECK_HAS(refused("  \n"), "empty");
	CHECK_HAS(refused("digest:bob:pw:r"), "unknown scheme 'digest'");
	CHECK_HAS(refused("ip:10.0.0.1:r"), "unknown scheme");
	CHECK_HAS(refused("world:anyone:rx"), "bad permission 'x'");
	CHECK_HAS(refused("world:anyone:"), "no permissions");
	CHECK_HAS(refused("world:everyone:r"), "only the id 'anyone'");
	CHECK_HAS(refused("key::r"), "bad principal");
	CHECK_HAS(refused("key:a/b:r"), "bad principal");
	CHECK_HAS(refused("key:a b:r"), "bad principal");
	CHECK_HAS(refused("world:anyone"), "SCHEME:ID:PERMS");
	CHECK_HAS(refused("world:anyone:r,"), "empty entry");
	CHECK_HAS(refused(",world:anyone:r"), "empty entry");
	CHECK_HAS(refused("world:anyone:r,,key:a:r"), "empty entry");
	char longp[COORD_PRINCIPAL_MAX + 16];
	snprintf(longp, sizeof(longp), "key:%0*d:r", COORD_PRINCIPAL_MAX + 1, 7);
	CHECK_HAS(refused(longp), "bad principal");
	char many[1024] = "";
	for (int i = 0; i < 17; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%skey:p%d:r", i ? "," : "", i);
	CHECK_HAS(refused(many), "more than 16 entries");
	char huge[COORD_ACL_TEXT_MAX + 8];
	memset(huge, 'r', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = 0;
	CHECK_HAS(refused(huge), "longer than 1024");
	struct coord_acl a;
	CHECK_EQ(coord_acl_parse("world:anyone:r\0x", 16, &a, NULL, 0), COORD_EBADARG); /* NUL inside */
}

static void test_permissions_of_a_principal(void)
{
	struct coord_acl a;
	const char *t = "world:anyone:r,key:web:wc,key:ops:a";
	CHECK_EQ(coord_acl_parse(t, strlen(t), &a, NULL, 0), COORD_OK);
	CHECK_EQ(coord_acl_perms_for(&a, ""), COORD_PERM_READ);
	CHECK_EQ(coord_acl_perms_for(&a, NULL), COORD_PERM_READ);
	CHECK_EQ(coord_acl_perms_for(&a, "web"), COORD_PERM_READ | COORD_PERM_WRITE | COORD_PERM_CREATE);
	CHECK_EQ(coord_acl_perms_for(&a, "ops"), COORD_PERM_READ | COORD_PERM_ADMIN);
	CHECK_EQ(coord_acl_perms_for(&a, "webx"), COORD_PERM_READ);
	const char *k = "key:web:rwcda";
	CHECK_EQ(coord_acl_parse(k, strlen(k), &a, NULL, 0), COORD_OK);
	CHECK_EQ(coord_acl_perms_for(&a, ""), 0); /* anonymous matches only world:anyone */
	char p[8];
	CHECK_STR(coord_perms_format(COORD_PERM_ALL, p), "rwcda");
	CHECK_STR(coord_perm_name(COORD_PERM_DELETE), "delete");
}

/* ---- the interned table ---- */

static uint32_t intern(struct acls *t, const char *text)
{
	struct coord_acl a;
	CHECK_EQ(coord_acl_parse(text, strlen(text), &a, NULL, 0), COORD_OK);
	uint32_t id;
	CHECK_EQ(acls_intern(t, &a, &id), COORD_OK);
	return id;
}

static void test_table_interns_counts_and_reuses_the_lowest_id(void)
{
	struct acls t;
	CHECK_EQ(acls_init(&t), COORD_OK);
	CHECK_STR(acls_text(&t, ACL_DEFAULT_ID), "world:anyone:rwcda");
	CHECK_EQ(intern(&t, "world:anyone:rwcda"), ACL_DEFAULT_ID);
	uint32_t r = intern(&t, "world:anyone:r");
	CHECK_EQ(r, 1);
	CHECK_EQ(intern(&t, " world:anyone:r"), 1); /* the same list, however written */
	uint32_t w = intern(&t, "key:web:rw");
	CHECK_EQ(w, 2);
	CHECK_EQ(t.v[1].refs, 2);
	CHECK_EQ(t.live, 3);
	acls_unref(&t, 1);
	CHECK(acls_valid(&t, 1));
	acls_unref(&t, 1);
	CHECK(!acls_valid(&t, 1)); /* the last user gone: freed */
	CHECK_EQ(t.live, 2);
	CHECK_EQ(intern(&t, "key:new:r"), 1); /* the lowest free id, the same on every member */
	CHECK_EQ(intern(&t, "key:other:r"), 3);
	acls_unref(&t, ACL_DEFAULT_ID); /* the default is never freed */
	CHECK(acls_valid(&t, ACL_DEFAULT_ID));
	CHECK_EQ(acls_perms(&t, w, "web"), COORD_PERM_READ | COORD_PERM_WRITE);
	CHECK_EQ(acls_perms(&t, w, ""), 0);
	CHECK_EQ(acls_perms(&t, 99, "web"), 0);
	/* many distinct lists: the hash index grows and still finds each */
	for (int i = 0; i < 300; i++) {
		char b[64];
		snprintf(b, sizeof(b), "key:u%d:rw", i);
		uint32_t id = intern(&t, b);
		CHECK_EQ(intern(&t, b), id);
		CHECK_STR(acls_text(&t, id), b);
	}
	uint64_t d = acls_digest(&t);
	acls_ref(&t, 3);
	CHECK(acls_digest(&t) != d);
	acls_free(&t);
}

/* ---- the state machine ---- */

#define ANON 0x11
#define WEB 0x22
#define OPS 0x33
#define ADMIN 0x44

struct env {
	struct state s;
	uint64_t zxid;
	uint64_t xid;
	struct apply_out out;
	struct coord_reply rep;
	char msg[600];
};

static void apply(struct env *e, const struct txn *t)
{
	apply_out_reset(&e->out);
	struct buf b;
	buf_init(&b);
	CHECK_EQ(txn_encode(&b, t), COORD_OK);
	struct txn d;
	CHECK_EQ(txn_decode(b.p, b.len, &d), COORD_OK);
	state_apply(&e->s, ++e->zxid, &d, &e->out);
	buf_free(&b);
}

static void session(struct env *e, uint64_t sid, const char *principal)
{
	struct txn t = {.type = TXN_CREATE_SESSION, .term = 1, .time_ms = 1000, .session_id = sid, .timeout_ms = 10000};
	snprintf(t.principal, sizeof(t.principal), "%s", principal);
	apply(e, &t);
	CHECK_EQ(e->out.created_session, sid);
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	CHECK_EQ(state_init(&e->s, 1000), COORD_OK);
	state_set_super_user(&e->s, "admin");
	e->zxid = 1ull << 32;
	session(e, ANON, "");
	session(e, WEB, "web");
	session(e, OPS, "ops");
	session(e, ADMIN, "admin");
}

static void env_free(struct env *e)
{
	apply_out_reset(&e->out);
	coord_reply_clear(&e->rep);
	state_free(&e->s);
}

/* A write request as a txn of session sid; returns the reply's error (message in e->msg). */
static int req(struct env *e, uint64_t sid, struct coord_req *q)
{
	q->xid = ++e->xid;
	struct buf f;
	buf_init(&f);
	CHECK_EQ(coord_req_encode(&f, q), COORD_OK);
	struct txn t = {.type = TXN_REQUEST, .term = 1, .time_ms = 2000, .session_id = sid, .req = slice_of(f.p, f.len)};
	apply(e, &t);
	buf_free(&f);
	coord_reply_clear(&e->rep);
	CHECK(e->out.reply);
	CHECK_EQ(coord_reply_decode(e->out.reply, e->out.reply_len, q->op, &e->rep, NULL, 0), COORD_OK);
	snprintf(e->msg, sizeof(e->msg), "%.*s", (int)e->rep.msg.len, (const char *)e->rep.msg.p);
	return e->rep.err;
}

static int create_acl(struct env *e, uint64_t sid, const char *path, uint32_t flags, const char *acl)
{
	struct coord_req q = {.op = COORD_OP_CREATE, .path = slice_str(path), .flags = flags};
	if (acl) {
		q.flags |= COORD_CREATE_ACL;
		q.acl = slice_str(acl);
	}
	return req(e, sid, &q);
}

static int setacl(struct env *e, uint64_t sid, const char *path, const char *acl, int32_t aversion)
{
	struct coord_req q = {.op = COORD_OP_SETACL, .path = slice_str(path), .acl = slice_str(acl), .version = aversion};
	return req(e, sid, &q);
}

static int wr(struct env *e, uint64_t sid, uint8_t op, const char *path, const char *path2)
{
	struct coord_req q = {.op = op, .path = slice_str(path), .path2 = slice_str(path2 ? path2 : ""), .version = -1,
			      .data = slice_str("d"), .policy = COORD_POLICY_EPHEMERAL};
	return req(e, sid, &q);
}

/* A read through state_read_as; returns its error (message in e->msg). */
static int rd(struct env *e, uint64_t sid, uint8_t op, const char *path)
{
	const struct session *se = sessions_find(&e->s.sessions, sid);
	struct coord_req q = {.op = op, .xid = ++e->xid, .path = slice_str(path), .version = -1};
	struct buf b;
	buf_init(&b);
	int err = state_read_as(&e->s, &q, se->principal, &b);
	coord_reply_clear(&e->rep);
	CHECK_EQ(coord_reply_decode(b.p, b.len, op, &e->rep, NULL, 0), COORD_OK);
	CHECK_EQ(e->rep.err, err);
	snprintf(e->msg, sizeof(e->msg), "%.*s", (int)e->rep.msg.len, (const char *)e->rep.msg.p);
	/* e->rep's slices point into b: keep only what the tests read after */
	if (op == COORD_OP_GETACL && !err) {
		static char acl[COORD_ACL_TEXT_MAX + 1];
		snprintf(acl, sizeof(acl), "%.*s", (int)e->rep.acl.len, (const char *)e->rep.acl.p);
		e->rep.acl = slice_str(acl);
	}
	buf_free(&b);
	return err;
}

static const char *acl_of(struct env *e, const char *path)
{
	const struct znode *n = tree_lookup(&e->s.tree, path, strlen(path));
	CHECK(n);
	return acls_text(&e->s.acls, n->acl);
}

static void test_inheritance_at_create(void)
{
	struct env e;
	env_init(&e);
	CHECK_STR(acl_of(&e, "/"), "world:anyone:rwcda");
	CHECK_EQ(create_acl(&e, ANON, "/app", COORD_CREATE_DIR, NULL), COORD_OK);
	CHECK_STR(acl_of(&e, "/app"), "world:anyone:rwcda");
	CHECK_EQ(create_acl(&e, ANON, "/team", COORD_CREATE_DIR, "world:anyone:r,key:web:rwcda"), COORD_OK);
	CHECK_EQ(create_acl(&e, WEB, "/team/a", 0, NULL), COORD_OK);
	CHECK_EQ(create_acl(&e, WEB, "/team/sub", COORD_CREATE_DIR, "key:web:rwcd"), COORD_OK);
	CHECK_STR(acl_of(&e, "/team/a"), "world:anyone:r,key:web:rwcda");
	CHECK_STR(acl_of(&e, "/team/sub"), "key:web:rwcd");
	/* one interned copy, counted per node */
	const struct znode *a = tree_lookup(&e.s.tree, "/team/a", 7);
	CHECK_EQ(e.s.acls.v[a->acl].refs, 2);
	CHECK_EQ(e.s.acls.live, 3);
	/* a bad ACL at create is EBADARG and creates nothing */
	CHECK_EQ(create_acl(&e, ANON, "/bad", 0, "world:anyone:q"), COORD_EBADARG);
	CHECK(strstr(e.msg, "/bad: ") && strstr(e.msg, "bad permission"));
	CHECK(!tree_lookup(&e.s.tree, "/bad", 4));
	env_free(&e);
}

static void test_every_permission_for_anonymous_and_key_sessions(void)
{
	struct env e;
	env_init(&e);
	/* /d: anyone reads; web writes, creates, deletes; ops administers */
	CHECK_EQ(create_acl(&e, ANON, "/d", COORD_CREATE_DIR, "world:anyone:r,key:web:wcd,key:ops:a"), COORD_OK);
	CHECK_EQ(create_acl(&e, WEB, "/d/f", 0, NULL), COORD_OK);
	CHECK_EQ(create_acl(&e, WEB, "/d/g", 0, NULL), COORD_OK);
	CHECK_EQ(create_acl(&e, ANON, "/other", 0, NULL), COORD_OK);

	/* c on the parent */
	CHECK_EQ(create_acl(&e, ANON, "/d/x", 0, NULL), COORD_ENOAUTH);
	CHECK(strstr(e.msg, "/d: create permission needed") && strstr(e.msg, "anonymous"));
	CHECK_EQ(create_acl(&e, OPS, "/d/x", 0, NULL), COORD_ENOAUTH);
	CHECK(strstr(e.msg, "principal 'ops'"));
	/* w on the node */
	CHECK_EQ(wr(&e, ANON, COORD_OP_SET, "/d/f", NULL), COORD_ENOAUTH);
	CHECK(strstr(e.msg, "/d/f: write permission needed"));
	CHECK_EQ(wr(&e, ANON, COORD_OP_APPEND, "/d/f", NULL), COORD_ENOAUTH);
	CHECK_EQ(wr(&e, WEB, COORD_OP_SET, "/d/f", NULL), COORD_OK);
	CHECK_EQ(wr(&e, WEB, COORD_OP_APPEND, "/d/f", NULL), COORD_OK);
	/* d on the parent */
	CHECK_EQ(wr(&e, ANON, COORD_OP_DELETE, "/d/g", NULL), COORD_ENOAUTH);
	CHECK(strstr(e.msg, "/d: delete permission needed"));
	CHECK_EQ(wr(&e, OPS, COORD_OP_DELETE, "/d/g", NULL), COORD_ENOAUTH);
	/* rename: d on the source's parent, c on the destination's */
	CHECK_EQ(wr(&e, ANON, COORD_OP_RENAME, "/d/f", "/moved"), COORD_ENOAUTH);
	CHECK_EQ(wr(&e, ANON, COORD_OP_RENAME, "/other", "/d/other"), COORD_ENOAUTH);
	CHECK(strstr(e.msg, "/d: create permission"));
	CHECK_EQ(wr(&e, WEB, COORD_OP_RENAME, "/d/g", "/d/h"), COORD_OK);
	/* a: setACL and the child policy */
	CHECK_EQ(setacl(&e, WEB, "/d", "world:anyone:rwcda", -1), COORD_ENOAUTH);
	CHECK(strstr(e.msg, "/d: admin permission needed"));
	CHECK_EQ(wr(&e, WEB, COORD_OP_SETPOLICY, "/d", NULL), COORD_ENOAUTH);
	CHECK_EQ(wr(&e, OPS, COORD_OP_SETPOLICY, "/d", NULL), COORD_OK);
	/* r for reads; exists needs none; getacl needs r or a */
	CHECK_EQ(setacl(&e, OPS, "/d", "key:web:rwcd,key:ops:a", -1), COORD_OK);
	CHECK_EQ(rd(&e, ANON, COORD_OP_GET, "/d"), COORD_ENOAUTH);
	CHECK(strstr(e.msg, "/d: read permission needed"));
	CHECK_EQ(rd(&e, ANON, COORD_OP_LIST, "/d"), COORD_ENOAUTH);
	CHECK_EQ(rd(&e, ANON, COORD_OP_HISTORY, "/d"), COORD_ENOAUTH);
	CHECK_EQ(rd(&e, ANON, COORD_OP_EXISTS, "/d"), COORD_OK);
	CHECK_EQ(rd(&e, ANON, COORD_OP_GETACL, "/d"), COORD_ENOAUTH);
	CHECK_EQ(rd(&e, WEB, COORD_OP_LIST, "/d"), COORD_OK);
	CHECK_EQ(rd(&e, WEB, COORD_OP_GETACL, "/d"), COORD_OK);
	CHECK_EQ(e.rep.perms, COORD_PERM_ALL & ~COORD_PERM_ADMIN);
	CHECK_EQ(rd(&e, OPS, COORD_OP_GET, "/d"), COORD_ENOAUTH);
	CHECK_EQ(rd(&e, OPS, COORD_OP_GETACL, "/d"), COORD_OK); /* admin alone may read the ACL */
	CHECK(slice_eq(e.rep.acl, "key:web:rwcd,key:ops:a"));
	CHECK_EQ(e.rep.perms, COORD_PERM_ADMIN);
	CHECK_EQ(rd(&e, ANON, COORD_OP_GET, "/nope"), COORD_ENONODE);
	/* state_read reads as an anonymous session */
	struct coord_req q = {.op = COORD_OP_GET, .path = slice_str("/d")};
	struct buf b;
	buf_init(&b);
	CHECK_EQ(state_read(&e.s, &q, &b), COORD_ENOAUTH);
	buf_free(&b);
	/* the superUser passes every check */
	CHECK_EQ(rd(&e, ADMIN, COORD_OP_GET, "/d"), COORD_OK);
	CHECK_EQ(rd(&e, ADMIN, COORD_OP_GETACL, "/d"), COORD_OK);
	CHECK_EQ(e.rep.perms, COORD_PERM_ALL);
	CHECK_EQ(setacl(&e, ADMIN, "/d", "key:admin:r", -1), COORD_OK);
	CHECK_EQ(create_acl(&e, ADMIN, "/d/by-admin", 0, NULL), COORD_OK);
	CHECK_EQ(wr(&e, ADMIN, COORD_OP_DELETE, "/d/by-admin", NULL), COORD_OK);
	/* a principal named like the superUser's scheme but another name gets nothing */
	CHECK_EQ(create_acl(&e, WEB, "/d/x", 0, NULL), COORD_ENOAUTH);
	env_free(&e);
}

static void test_setacl_checks_and_bumps_the_aversion(void)
{
	struct env e;
	env_init(&e);
	CHECK_EQ(create_acl(&e, ANON, "/f", 0, NULL), COORD_OK);
	CHECK_EQ(setacl(&e, ANON, "/f", "world:anyone:rwa", 3), COORD_EBADVERSION);
	CHECK(strstr(e.msg, "expected ACL version (aversion) 3, the node is at 0"));
	CHECK_EQ(setacl(&e, ANON, "/f", "world:anyone:rwa", 0), COORD_OK);
	CHECK_EQ(e.rep.stat.aversion, 1);
	CHECK_EQ(e.rep.stat.version, 0);
	CHECK_EQ(e.out.nev, 1); /* "changed", so mounts drop what they cached */
	CHECK_EQ(e.out.ev[0].type, COORD_EV_CHANGED);
	CHECK_EQ(setacl(&e, ANON, "/f", "world:anyone:rw", -1), COORD_OK);
	CHECK_EQ(e.rep.stat.aversion, 2);
	CHECK_EQ(setacl(&e, ANON, "/f", "world:anyone:r", -1), COORD_ENOAUTH); /* no a any more */
	CHECK_EQ(setacl(&e, ANON, "/nope", "world:anyone:r", -1), COORD_ENONODE);
	CHECK_EQ(setacl(&e, ADMIN, "/f", "nonsense", -1), COORD_EBADARG);
	CHECK_STR(acl_of(&e, "/f"), "world:anyone:rw");
	/* the previous ACL's entry went with its last user */
	CHECK_EQ(e.s.acls.live, 2);
	env_free(&e);
}

static void test_refused_multi_changes_nothing(void)
{
	struct env e;
	env_init(&e);
	CHECK_EQ(create_acl(&e, ANON, "/open", COORD_CREATE_DIR, NULL), COORD_OK);
	CHECK_EQ(create_acl(&e, ANON, "/closed", COORD_CREATE_DIR, "world:anyone:r"), COORD_OK);
	CHECK_EQ(create_acl(&e, ANON, "/open/f", 0, NULL), COORD_OK);
	uint64_t digest = state_digest(&e.s);
	uint32_t live = e.s.acls.live;
	struct coord_subop ops[4] = {
		{.op = COORD_OP_CREATE, .path = slice_str("/open/a"), .flags = COORD_CREATE_ACL, .acl = slice_str("key:x:r")},
		{.op = COORD_OP_SET, .path = slice_str("/open/f"), .data = slice_str("v"), .version = -1},
		{.op = COORD_OP_CHECK, .path = slice_str("/closed"), .version = 0}, /* check needs r only */
		{.op = COORD_OP_CREATE, .path = slice_str("/closed/b")},
	};
	struct coord_req q = {.op = COORD_OP_MULTI, .nops = 4, .ops = ops};
	CHECK_EQ(req(&e, ANON, &q), COORD_ENOAUTH);
	CHECK_EQ(e.rep.fail_index, 3);
	CHECK_EQ(e.rep.ops[0].err, COORD_EROLLEDBACK);
	CHECK_EQ(e.rep.ops[3].err, COORD_ENOAUTH);
	CHECK(strstr(e.msg, "multi operation 3 failed: /closed: create permission needed"));
	CHECK_EQ(state_digest(&e.s), digest);
	CHECK_EQ(e.s.acls.live, live); /* the ACL interned by op 0 went with the rollback */
	CHECK_EQ(e.out.nev, 0);
	ops[3].path = slice_str("/open/b");
	CHECK_EQ(req(&e, ANON, &q), COORD_OK);
	CHECK_STR(acl_of(&e, "/open/a"), "key:x:r");
	/* a check needs read permission, as ZooKeeper's: the version is not told to who cannot read */
	CHECK_EQ(create_acl(&e, ANON, "/writeonly", 0, "world:anyone:w"), COORD_OK);
	struct coord_subop chk[2] = {
		{.op = COORD_OP_SET, .path = slice_str("/open/f"), .data = slice_str("w"), .version = -1},
		{.op = COORD_OP_CHECK, .path = slice_str("/writeonly"), .version = 0},
	};
	struct coord_req qc = {.op = COORD_OP_MULTI, .nops = 2, .ops = chk};
	digest = state_digest(&e.s);
	CHECK_EQ(req(&e, ANON, &qc), COORD_ENOAUTH);
	CHECK_EQ(e.rep.fail_index, 1);
	CHECK(strstr(e.msg, "/writeonly: read permission"));
	CHECK_EQ(state_digest(&e.s), digest);
	CHECK_EQ(req(&e, ADMIN, &qc), COORD_OK); /* the super user passes */
	env_free(&e);
}

static int put_record(void *arg, const void *p, size_t n)
{
	struct buf *b = arg;
	buf_u32(b, (uint32_t)n);
	buf_put(b, p, n);
	return b->oom ? COORD_ENOMEM : COORD_OK;
}

static void reload(const struct state *s, struct state *fresh)
{
	struct buf b;
	buf_init(&b);
	CHECK_EQ(state_save(s, put_record, &b), COORD_OK);
	CHECK_EQ(state_init(fresh, s->max_data), COORD_OK);
	struct rd r;
	rd_init(&r, b.p, b.len);
	while (rd_left(&r)) {
		uint32_t n = rd_u32(&r);
		CHECK_EQ(state_load_record(fresh, r.p, n), COORD_OK);
		r.p += n;
	}
	CHECK_EQ(state_load_done(fresh), COORD_OK);
	buf_free(&b);
}

static void test_snapshot_keeps_ids_counts_and_the_digest(void)
{
	struct env e;
	env_init(&e);
	CHECK_EQ(create_acl(&e, ANON, "/a", COORD_CREATE_DIR, "world:anyone:rwcd"), COORD_OK);
	CHECK_EQ(create_acl(&e, ANON, "/a/x", 0, NULL), COORD_OK);
	CHECK_EQ(create_acl(&e, ANON, "/b", 0, "key:web:rw"), COORD_OK);
	CHECK_EQ(create_acl(&e, ANON, "/c", 0, "key:gone:rw"), COORD_OK);
	CHECK_EQ(create_acl(&e, ANON, "/d", 0, "key:ops:r"), COORD_OK);
	CHECK_EQ(setacl(&e, ADMIN, "/", "world:anyone:rwcd,key:admin:a", -1), COORD_OK);
	CHECK_EQ(wr(&e, ANON, COORD_OP_DELETE, "/c", NULL), COORD_OK); /* frees id 3: a hole */
	CHECK(!acls_valid(&e.s.acls, 3));
	struct state s2;
	reload(&e.s, &s2);
	CHECK_EQ(state_digest(&s2), state_digest(&e.s));
	CHECK_EQ(tree_digest(&s2.tree), tree_digest(&e.s.tree));
	CHECK_EQ(s2.acls.live, e.s.acls.live);
	for (uint32_t id = 0; id < e.s.acls.n; id++) {
		CHECK_EQ(acls_valid(&s2.acls, id), acls_valid(&e.s.acls, id));
		if (acls_valid(&e.s.acls, id)) {
			CHECK_STR(acls_text(&s2.acls, id), acls_text(&e.s.acls, id));
			CHECK_EQ(s2.acls.v[id].refs, e.s.acls.v[id].refs);
		}
	}
	/* the next new ACL takes the same id on both */
	struct state orig = e.s;
	uint64_t zxid = e.zxid, xid = e.xid;
	CHECK_EQ(create_acl(&e, ANON, "/n", 0, "key:new:r"), COORD_OK);
	uint32_t id1 = tree_lookup(&e.s.tree, "/n", 2)->acl;
	orig = e.s;
	e.s = s2;
	e.zxid = zxid;
	e.xid = xid;
	CHECK_EQ(create_acl(&e, ANON, "/n", 0, "key:new:r"), COORD_OK);
	CHECK_EQ(tree_lookup(&e.s.tree, "/n", 2)->acl, id1);
	CHECK_EQ(id1, 3);
	CHECK_EQ(state_digest(&e.s), state_digest(&orig));
	state_free(&orig);
	env_free(&e);
}

static void test_digest_covers_the_acl(void)
{
	struct env a, b;
	env_init(&a);
	env_init(&b);
	CHECK_EQ(create_acl(&a, ANON, "/f", 0, NULL), COORD_OK);
	CHECK_EQ(create_acl(&b, ANON, "/f", 0, NULL), COORD_OK);
	CHECK_EQ(state_digest(&a.s), state_digest(&b.s));
	/* the same Stat (aversion 1) but another ACL: different digests */
	CHECK_EQ(setacl(&a, ANON, "/f", "world:anyone:r", -1), COORD_OK);
	CHECK_EQ(setacl(&b, ANON, "/f", "world:anyone:w", -1), COORD_OK);
	CHECK(state_digest(&a.s) != state_digest(&b.s));
	CHECK(tree_digest(&a.s.tree) == tree_digest(&b.s.tree)); /* same ids: the table tells them apart */
	env_free(&a);
	env_free(&b);
}

static void test_bad_snapshot_acl_records_are_refused(void)
{
	struct state s;
	CHECK_EQ(state_init(&s, 1000), COORD_OK);
	struct buf b;
	buf_init(&b);
	buf_u8(&b, 'A');
	buf_u32(&b, 0); /* the default's id */
	buf_bytes(&b, "key:x:r", 7);
	CHECK_EQ(state_load_record(&s, b.p, b.len), COORD_EPROTO);
	buf_reset(&b);
	buf_u8(&b, 'A');
	buf_u32(&b, 2);
	buf_bytes(&b, "key:x:rq", 8); /* does not parse */
	CHECK_EQ(state_load_record(&s, b.p, b.len), COORD_EPROTO);
	buf_reset(&b);
	buf_u8(&b, 'A');
	buf_u32(&b, 2);
	buf_bytes(&b, "key:x:wr", 8); /* not canonical */
	CHECK_EQ(state_load_record(&s, b.p, b.len), COORD_EPROTO);
	buf_reset(&b);
	buf_u8(&b, 'A');
	buf_u32(&b, 2);
	buf_bytes(&b, "world:anyone:rwcda", 18); /* the default, twice */
	CHECK_EQ(state_load_record(&s, b.p, b.len), COORD_EPROTO);
	buf_free(&b);
	state_free(&s);
}

int main(void)
{
	RUN(test_text_form_round_trips);
	RUN(test_bad_text_is_refused_with_a_reason);
	RUN(test_permissions_of_a_principal);
	RUN(test_table_interns_counts_and_reuses_the_lowest_id);
	RUN(test_inheritance_at_create);
	RUN(test_every_permission_for_anonymous_and_key_sessions);
	RUN(test_setacl_checks_and_bumps_the_aversion);
	RUN(test_refused_multi_changes_nothing);
	RUN(test_snapshot_keeps_ids_counts_and_the_digest);
	RUN(test_digest_covers_the_acl);
	RUN(test_bad_snapshot_acl_records_are_refused);
	printf("test_acl: all passed\n");
	return 0;
}
