/*
 * state.c: the replicated state machine: applying txns (with the exactly-once reply cache),
 * answering reads from the current state, and saving/loading the state as snapshot records.
 */
#include "state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "err.h"
#include "log.h"
#include "ops.h"
#include "path.h"

#define LIST_DEFAULT_PAGE 4096

int state_init(struct state *s, uint32_t max_data)
{
	memset(s, 0, sizeof(*s));
	s->max_data = max_data;
	state_set_history(s, 10, 1u << 20);
	if (tree_init(&s->tree))
		return COORD_ENOMEM;
	if (sessions_init(&s->sessions)) {
		tree_free(&s->tree);
		return COORD_ENOMEM;
	}
	if (acls_init(&s->acls)) {
		tree_free(&s->tree);
		sessions_free(&s->sessions);
		return COORD_ENOMEM;
	}
	return COORD_OK;
}

void state_set_super_user(struct state *s, const char *principal)
{
	snprintf(s->super_user, sizeof(s->super_user), "%s", principal ? principal : "");
}

uint64_t state_digest(const struct state *s)
{
	uint64_t d[2] = {tree_digest(&s->tree), acls_digest(&s->acls)};
	return XXH64(d, sizeof(d), 0);
}

int state_acl_check(const struct state *s, const struct znode *n, const char *path, size_t plen,
		    const char *principal, unsigned perm, char *msg, size_t msglen)
{
	if (!principal)
		principal = "";
	if (principal[0] && !strcmp(principal, s->super_user))
		return COORD_OK;
	if (acls_perms(&s->acls, n->acl, principal) & perm)
		return COORD_OK;
	if (msg && msglen) {
		char who[COORD_PRINCIPAL_MAX + 32];
		if (principal[0])
			snprintf(who, sizeof(who), "principal '%s'", principal);
		else
			snprintf(who, sizeof(who), "an anonymous session");
		snprintf(msg, msglen, "%.*s: %s permission needed, which %s does not have (ACL %s)", (int)plen, path,
			 coord_perm_name(perm), who, acls_text(&s->acls, n->acl));
	}
	return COORD_ENOAUTH;
}

void state_set_history(struct state *s, int depth, uint64_t bytes)
{
	s->hist_keep = depth > 0 ? (uint32_t)depth - 1 : 0;
	s->hist_bytes = depth > 0 ? bytes : 0;
	s->hist_depth = depth > 0 ? depth : 0;
}

void state_free(struct state *s)
{
	tree_free(&s->tree);
	sessions_free(&s->sessions);
	acls_free(&s->acls);
}

void apply_out_reset(struct apply_out *out)
{
	free(out->reply);
	for (size_t i = 0; i < out->nev; i++)
		free(out->ev[i].path);
	free(out->ev);
	memset(out, 0, sizeof(*out));
}

static void reply_init(struct coord_reply *r, const struct coord_req *req, uint64_t zxid, int err, const char *msg)
{
	memset(r, 0, sizeof(*r));
	r->kind = COORD_MSG_REPLY;
	r->op = req->op;
	r->err = err;
	r->xid = req->xid;
	r->zxid = zxid;
	if (err)
		r->msg = slice_str(msg && *msg ? msg : coord_strerror(err));
	r->fail_index = -1;
}

void state_error_frame(struct buf *out, const struct coord_req *req, uint64_t zxid, int err, const char *msg)
{
	struct coord_reply r;
	reply_init(&r, req, zxid, err, msg);
	coord_reply_encode(out, &r);
}

static void out_take(struct apply_out *out, struct buf *b, int err)
{
	if (b->oom)
		ops_oom();
	out->reply = buf_take(b, &out->reply_len);
	out->err = err;
}

static void apply_multi(struct state *s, uint64_t zxid, const struct txn *t, const struct coord_req *req,
			struct apply_out *out, struct buf *b)
{
	struct op_ctx c;
	op_begin(&c, s, zxid, t->time_ms, t->session_id, out, 1);
	const struct session *se = sessions_find(&s->sessions, t->session_id);
	c.principal = se ? se->principal : "";
	struct coord_subresult *res = calloc(req->nops ? req->nops : 1, sizeof(*res));
	char **paths = calloc(req->nops ? req->nops : 1, sizeof(*paths));
	if (!res || !paths)
		ops_oom();
	int err = COORD_OK;
	uint32_t i;
	for (i = 0; i < req->nops && !err; i++) {
		const struct coord_subop *o = &req->ops[i];
		res[i].op = o->op;
		switch (o->op) {
		case COORD_OP_CREATE:
			err = op_create(&c, o->path, o->data, o->flags, o->policy, o->acl);
			if (!err) {
				paths[i] = strdup(c.path);
				if (!paths[i])
					ops_oom();
				res[i].path = slice_str(paths[i]);
			}
			break;
		case COORD_OP_SET:
			err = op_set(&c, o->path, o->data, o->version);
			break;
		case COORD_OP_DELETE:
			err = op_delete(&c, o->path, o->version);
			break;
		case COORD_OP_CHECK:
			err = op_check(&c, o->path, o->version);
			break;
		default:
			err = COORD_EBADARG;
			snprintf(c.msg, sizeof(c.msg), "multi: operation %u (%s) cannot be part of a multi", i,
				 coord_op_name(o->op));
		}
		res[i].err = err;
		res[i].stat = c.stat;
	}
	struct coord_reply r;
	char msg[600]; /* r.msg points here until the reply is encoded */
	if (err) {
		op_rollback(&c);
		uint32_t failed = i - 1;
		/* Ops after the failing one never ran: give them their op too, or the reply would
		 * carry sub-op 0, which no decoder accepts. */
		for (uint32_t j = 0; j < req->nops; j++) {
			res[j].op = req->ops[j].op;
			if (j != failed)
				res[j].err = COORD_EROLLEDBACK;
		}
		snprintf(msg, sizeof(msg), "multi operation %u failed: %s", failed, c.msg);
		reply_init(&r, req, zxid, err, msg);
		r.fail_index = (int32_t)failed;
	} else {
		op_commit(&c);
		reply_init(&r, req, zxid, COORD_OK, NULL);
	}
	r.nops = req->nops;
	r.ops = res;
	coord_reply_encode(b, &r);
	for (uint32_t j = 0; j < req->nops; j++)
		free(paths[j]);
	free(paths);
	free(res);
	out_take(out, b, err);
}

static void apply_request(struct state *s, uint64_t zxid, const struct txn *t, struct apply_out *out)
{
	struct buf b;
	buf_init(&b);
	struct coord_req req;
	char why[256];
	if (coord_req_decode(t->req.p, t->req.len, &req, why, sizeof(why))) {
		struct coord_req none = {0};
		state_error_frame(&b, &none, zxid, COORD_EPROTO, why);
		out_take(out, &b, COORD_EPROTO);
		return;
	}
	struct session *se = sessions_find(&s->sessions, t->session_id);
	if (!se) {
		snprintf(why, sizeof(why), "session 0x%016" PRIx64 " has expired or was closed", t->session_id);
		state_error_frame(&b, &req, zxid, COORD_ESESSIONEXPIRED, why);
		out_take(out, &b, COORD_ESESSIONEXPIRED);
		coord_req_clear(&req);
		return;
	}
	session_cache_prune(se, req.ack);
	if (req.xid <= se->last_xid) {
		/* A resend: answer with the first reply, apply nothing. */
		const struct cached_reply *cr = session_cache_find(se, req.xid);
		if (cr) {
			struct coord_reply hdr;
			buf_put(&b, cr->frame, cr->len);
			out->dup = 1;
			int err = coord_reply_decode(cr->frame, cr->len, req.op, &hdr, NULL, 0) ? COORD_EPROTO : hdr.err;
			coord_reply_clear(&hdr);
			out_take(out, &b, err);
		} else {
			snprintf(why, sizeof(why), "request %" PRIu64 " was already applied and its reply acknowledged", req.xid);
			state_error_frame(&b, &req, zxid, COORD_EDUPLICATE, why);
			out_take(out, &b, COORD_EDUPLICATE);
		}
		coord_req_clear(&req);
		return;
	}
	se->last_xid = req.xid;
	if (req.op == COORD_OP_MULTI) {
		apply_multi(s, zxid, t, &req, out, &b);
		if (session_cache_put(se, req.xid, out->reply, out->reply_len))
			ops_oom();
		coord_req_clear(&req);
		return;
	}
	struct op_ctx c;
	op_begin(&c, s, zxid, t->time_ms, se->id, out, 0);
	c.principal = se->principal;
	int err;
	int has_stat = 1;
	switch (req.op) {
	case COORD_OP_CREATE:
		err = op_create(&c, req.path, req.data, req.flags, req.policy, req.acl);
		break;
	case COORD_OP_DELETE:
		err = op_delete(&c, req.path, req.version);
		has_stat = 0;
		break;
	case COORD_OP_SET:
		err = op_set(&c, req.path, req.data, req.version);
		break;
	case COORD_OP_APPEND:
		err = op_append(&c, req.path, req.data, req.version);
		break;
	case COORD_OP_RENAME:
		err = op_rename(&c, req.path, req.path2, req.version, req.flags);
		break;
	case COORD_OP_SETPOLICY:
		err = op_setpolicy(&c, req.path, req.policy);
		has_stat = 0;
		break;
	case COORD_OP_SETACL:
		err = op_setacl(&c, req.path, req.acl, req.version);
		break;
	case COORD_OP_CLOSE:
		op_close_session(&c, se);
		se = NULL; /* freed: nothing to cache, a resent close finds no session */
		out->closed_session = t->session_id;
		err = COORD_OK;
		has_stat = 0;
		break;
	default:
		err = COORD_EBADARG;
		snprintf(c.msg, sizeof(c.msg), "%s is not a write operation", coord_op_name(req.op));
	}
	struct coord_reply r;
	reply_init(&r, &req, zxid, err, c.msg);
	if (!err && has_stat)
		r.stat = c.stat;
	if (!err && req.op == COORD_OP_CREATE)
		r.path = slice_of(c.path, c.path_len);
	coord_reply_encode(&b, &r);
	out_take(out, &b, err);
	if (se && session_cache_put(se, req.xid, out->reply, out->reply_len))
		ops_oom();
	coord_req_clear(&req);
}

void state_apply(struct state *s, uint64_t zxid, const struct txn *t, struct apply_out *out)
{
	s->last_zxid = zxid;
	s->last_term = t->term;
	switch (t->type) {
	case TXN_CREATE_SESSION:
		if (sessions_find(&s->sessions, t->session_id)) {
			out->err = COORD_ENODEEXISTS; /* the leader drew an id in use: the client retries */
		} else {
			if (!sessions_add(&s->sessions, t->session_id, t->passwd, t->timeout_ms, t->principal))
				ops_oom();
			out->created_session = t->session_id;
		}
		break;
	case TXN_CLOSE_SESSION: {
		struct session *se = sessions_find(&s->sessions, t->session_id);
		if (se) {
			struct op_ctx c;
			op_begin(&c, s, zxid, t->time_ms, t->session_id, out, 0);
			op_close_session(&c, se);
			out->closed_session = t->session_id;
		}
		break;
	}
	case TXN_REQUEST:
		apply_request(s, zxid, t, out);
		break;
	default:
		break;
	}
}

static void add_name(void *arg, const struct znode *child)
{
	struct buf *b = arg;
	buf_put(b, child->name, child->name_len);
	buf_u8(b, 0);
}

/* HISTORY: the kept versions of a node, oldest first, the current one last; or one version. */
static int read_history(const struct state *s, const struct coord_req *req, struct buf *out)
{
	char why[COORD_MAX_PATH + 200];
	const struct znode *n = tree_lookup(&s->tree, (const char *)req->path.p, req->path.len);
	if (!n) {
		snprintf(why, sizeof(why), "%.*s does not exist", (int)req->path.len, (const char *)req->path.p);
		state_error_frame(out, req, s->last_zxid, COORD_ENONODE, why);
		return COORD_ENONODE;
	}
	struct coord_reply r;
	reply_init(&r, req, s->last_zxid, COORD_OK, NULL);
	tree_stat(n, &r.stat);
	struct buf recs;
	buf_init(&recs);
	const struct zhist *hist = s->hist_depth ? tree_hist(&s->tree, n) : NULL;
	uint32_t nh = hist ? hist->n : 0;
	struct coord_hist cur = {n->version, n->mzxid, n->mtime, n->data_len};
	if (req->version == -1) {
		for (uint32_t i = 0; i < nh; i++) {
			const struct zver *v = &hist->v[i];
			struct coord_hist h = {v->version, v->mzxid, v->mtime, v->len};
			coord_hist_put(&recs, &h);
		}
		if (s->hist_depth)
			coord_hist_put(&recs, &cur);
		r.nhist = nh + (s->hist_depth > 0);
	} else {
		const struct zver *v = s->hist_depth ? tree_hist_find(&s->tree, n, req->version) : NULL;
		if (s->hist_depth && req->version == n->version) {
			coord_hist_put(&recs, &cur);
			r.data = slice_of(znode_data(n), n->data_len);
		} else if (v) {
			struct coord_hist h = {v->version, v->mzxid, v->mtime, v->len};
			coord_hist_put(&recs, &h);
			r.data = slice_of(v->data, v->len);
		} else {
			buf_free(&recs);
			if (!s->hist_depth)
				snprintf(why, sizeof(why), "%.*s: versions are not kept (historyDepth=0)", (int)req->path.len,
					 (const char *)req->path.p);
			else
				snprintf(why, sizeof(why), "%.*s: version %d is not kept (kept: %d to %d)", (int)req->path.len,
					 (const char *)req->path.p, req->version, nh ? hist->v[0].version : n->version,
					 n->version);
			state_error_frame(out, req, s->last_zxid, COORD_ENONODE, why);
			return COORD_ENONODE;
		}
		r.nhist = 1;
	}
	r.hist = slice_of(recs.p, recs.len);
	coord_reply_encode(out, &r);
	buf_free(&recs);
	return out->oom ? COORD_ENOMEM : COORD_OK;
}

int state_read(const struct state *s, const struct coord_req *req, struct buf *out)
{
	return state_read_as(s, req, "", out);
}

/* GET, LIST, HISTORY need read; GETACL read or admin (as ZooKeeper 3.8); EXISTS and SYNC nothing. */
static int read_allowed(const struct state *s, const struct coord_req *req, const struct znode *n,
			const char *principal, struct buf *out)
{
	char why[COORD_MAX_PATH + 400];
	unsigned need = req->op == COORD_OP_GETACL ? COORD_PERM_READ | COORD_PERM_ADMIN
			: req->op == COORD_OP_EXISTS	? 0
							: COORD_PERM_READ;
	if (!need || !state_acl_check(s, n, (const char *)req->path.p, req->path.len, principal, need, why,
				      sizeof(why)))
		return COORD_OK;
	if (req->op == COORD_OP_GETACL)
		state_acl_check(s, n, (const char *)req->path.p, req->path.len, principal, COORD_PERM_READ, why,
				sizeof(why));
	state_error_frame(out, req, s->last_zxid, COORD_ENOAUTH, why);
	return COORD_ENOAUTH;
}

int state_read_as(const struct state *s, const struct coord_req *req, const char *principal, struct buf *out)
{
	uint64_t zxid = s->last_zxid;
	char why[COORD_MAX_PATH + 300];
	int err = coord_path_check((const char *)req->path.p, req->path.len, 0, why, sizeof(why));
	if (err) {
		char msg[COORD_MAX_PATH + 400];
		snprintf(msg, sizeof(msg), "%.*s: %s", (int)req->path.len, (const char *)req->path.p, why);
		state_error_frame(out, req, zxid, err, msg);
		return err;
	}
	struct coord_reply r;
	if (req->op == COORD_OP_SYNC) {
		reply_init(&r, req, zxid, COORD_OK, NULL);
		r.path = req->path;
		coord_reply_encode(out, &r);
		return COORD_OK;
	}
	if (req->op == COORD_OP_HISTORY) {
		const struct znode *h = tree_lookup(&s->tree, (const char *)req->path.p, req->path.len);
		if (h && (err = read_allowed(s, req, h, principal, out)))
			return err;
		return read_history(s, req, out);
	}
	if (req->op != COORD_OP_GET && req->op != COORD_OP_EXISTS && req->op != COORD_OP_LIST &&
	    req->op != COORD_OP_GETACL) {
		snprintf(why, sizeof(why), "%s is not a read operation", coord_op_name(req->op));
		state_error_frame(out, req, zxid, COORD_EBADARG, why);
		return COORD_EBADARG;
	}
	const struct znode *n = tree_lookup(&s->tree, (const char *)req->path.p, req->path.len);
	if (!n) {
		snprintf(why, sizeof(why), "%.*s does not exist", (int)req->path.len, (const char *)req->path.p);
		state_error_frame(out, req, zxid, COORD_ENONODE, why);
		return COORD_ENONODE;
	}
	if ((err = read_allowed(s, req, n, principal, out)))
		return err;
	reply_init(&r, req, zxid, COORD_OK, NULL);
	tree_stat(n, &r.stat);
	if (req->op == COORD_OP_GETACL) {
		r.acl = slice_str(acls_text(&s->acls, n->acl));
		r.perms = (uint8_t)(principal && principal[0] && !strcmp(principal, s->super_user)
					    ? COORD_PERM_ALL : acls_perms(&s->acls, n->acl, principal));
	}
	struct buf names;
	buf_init(&names);
	if (req->op == COORD_OP_GET) {
		r.data = slice_of(znode_data(n), n->data_len);
	} else if (req->op == COORD_OP_LIST) {
		size_t max = req->max ? req->max : LIST_DEFAULT_PAGE;
		if (max > COORD_MAX_LIST)
			max = COORD_MAX_LIST;
		int more = 0;
		r.count = (uint32_t)tree_children_after(n, (const char *)req->after.p, req->after.len, max,
							add_name, &names, &more);
		r.more = (uint8_t)more;
		r.names = slice_of(names.p, names.len);
	}
	coord_reply_encode(out, &r);
	buf_free(&names);
	return out->oom ? COORD_ENOMEM : COORD_OK;
}

/* ---- snapshots ---- */

enum { REC_ACL = 'A', REC_NODE = 'N', REC_SESSION = 'S', REC_END = 'Z' };

struct saver {
	const struct tree *t;
	struct buf b;
	int (*put)(void *, const void *, size_t);
	void *arg;
	int err;
};

static int save_node(void *arg, const struct znode *n)
{
	struct saver *sv = arg;
	char path[COORD_MAX_PATH + 16];
	size_t len = tree_path(n, path, sizeof(path));
	struct coord_stat st;
	tree_stat(n, &st);
	buf_reset(&sv->b);
	buf_u8(&sv->b, REC_NODE);
	buf_bytes(&sv->b, path, len);
	coord_stat_put(&sv->b, &st);
	buf_bytes(&sv->b, znode_data(n), n->data_len);
	const struct zhist *hist = tree_hist(sv->t, n);
	uint32_t nh = hist ? hist->n : 0;
	buf_u32(&sv->b, nh);
	for (uint32_t i = 0; i < nh; i++) {
		const struct zver *v = &hist->v[i];
		buf_u32(&sv->b, (uint32_t)v->version);
		buf_u64(&sv->b, (uint64_t)v->mzxid);
		buf_u64(&sv->b, (uint64_t)v->mtime);
		buf_bytes(&sv->b, v->data, v->len);
	}
	if (n->acl != ACL_DEFAULT_ID) /* absent: the default ACL (and snapshots from before ACLs) */
		buf_u32(&sv->b, n->acl);
	if (sv->b.oom)
		return sv->err = COORD_ENOMEM;
	return sv->err = sv->put(sv->arg, sv->b.p, sv->b.len);
}

static void save_session(void *arg, struct session *se)
{
	struct saver *sv = arg;
	if (sv->err)
		return;
	buf_reset(&sv->b);
	buf_u8(&sv->b, REC_SESSION);
	buf_u64(&sv->b, se->id);
	buf_put(&sv->b, se->passwd, COORD_PASSWD_LEN);
	buf_u32(&sv->b, se->timeout_ms);
	buf_u64(&sv->b, se->last_xid);
	buf_u32(&sv->b, se->ncache);
	for (uint32_t i = 0; i < se->ncache; i++) {
		buf_u64(&sv->b, se->cache[i].xid);
		buf_bytes(&sv->b, se->cache[i].frame, se->cache[i].len);
	}
	if (se->principal[0])
		buf_bytes(&sv->b, se->principal, strlen(se->principal));
	sv->err = sv->b.oom ? COORD_ENOMEM : sv->put(sv->arg, sv->b.p, sv->b.len);
}

int state_save(const struct state *s, int (*put)(void *arg, const void *p, size_t n), void *arg)
{
	struct saver sv = {.t = &s->tree, .put = put, .arg = arg};
	buf_init(&sv.b);
	/* The interned ACLs with their ids, before the nodes that refer to them. */
	for (uint32_t id = 1; id < s->acls.n && !sv.err; id++) {
		if (!acls_valid(&s->acls, id))
			continue;
		const char *text = acls_text(&s->acls, id);
		buf_reset(&sv.b);
		buf_u8(&sv.b, REC_ACL);
		buf_u32(&sv.b, id);
		buf_bytes(&sv.b, text, strlen(text));
		sv.err = sv.b.oom ? COORD_ENOMEM : put(arg, sv.b.p, sv.b.len);
	}
	if (!sv.err)
		tree_walk(s->tree.root, save_node, &sv);
	if (!sv.err)
		sessions_each(&s->sessions, save_session, &sv);
	if (!sv.err) {
		buf_reset(&sv.b);
		buf_u8(&sv.b, REC_END);
		buf_u64(&sv.b, s->last_zxid);
		buf_u64(&sv.b, s->tree.next_ino);
		buf_u64(&sv.b, s->last_term);
		sv.err = sv.b.oom ? COORD_ENOMEM : put(arg, sv.b.p, sv.b.len);
	}
	buf_free(&sv.b);
	return sv.err;
}

static void node_set_stat(struct znode *n, const struct coord_stat *st)
{
	n->czxid = st->czxid;
	n->mzxid = st->mzxid;
	n->pzxid = st->pzxid;
	n->ctime = st->ctime;
	n->mtime = st->mtime;
	n->version = st->version;
	n->cversion = st->cversion;
	n->aversion = st->aversion;
	n->ino = st->ino;
	n->policy = st->policy;
}

static int load_versions(struct state *s, struct znode *n, struct rd *r)
{
	uint32_t nh = rd_u32(r);
	for (uint32_t i = 0; i < nh && !r->bad; i++) {
		struct zver v;
		v.version = (int32_t)rd_u32(r);
		v.mzxid = (int64_t)rd_u64(r);
		v.mtime = (int64_t)rd_u64(r);
		struct slice d = rd_bytes(r, COORD_MAX_DATA);
		if (r->bad)
			break;
		v.len = d.len;
		v.data = NULL;
		if (d.len && !(v.data = malloc(d.len)))
			return COORD_ENOMEM;
		if (d.len)
			memcpy(v.data, d.p, d.len);
		if (tree_hist_push(&s->tree, n, &v, s->hist_keep, s->hist_bytes))
			return COORD_ENOMEM;
	}
	if (!r->bad && rd_left(r)) { /* the node's ACL id; absent = the default */
		uint32_t id = rd_u32(r);
		if (r->bad || id == ACL_DEFAULT_ID || !acls_valid(&s->acls, id))
			return COORD_EPROTO;
		n->acl = id;
		acls_ref(&s->acls, id);
	}
	return r->bad || rd_left(r) ? COORD_EPROTO : COORD_OK;
}

static int load_node(struct state *s, struct rd *r)
{
	struct slice path = rd_bytes(r, COORD_MAX_PATH);
	struct coord_stat st;
	coord_stat_get(r, &st);
	struct slice data = rd_bytes(r, COORD_MAX_DATA);
	if (r->bad || !path.len || path.p[0] != '/')
		return COORD_EPROTO;
	/* Kind and owner are fixed when a node is made (tree_add); the policy is two bits. */
	if (st.kind > COORD_KIND_DIR || (st.policy & ~(COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL)) ||
	    (path.len == 1 && (st.kind != COORD_KIND_DIR || st.ephemeral_owner))) {
		LOG_ERROR("snapshot: node %.*s has an unknown kind or policy", (int)path.len, (const char *)path.p);
		return COORD_EPROTO;
	}
	if (!st.ino) { /* inode numbers start at 1; 0 marks a free slot of the tree's history table */
		LOG_ERROR("snapshot: node %.*s has inode number 0", (int)path.len, (const char *)path.p);
		return COORD_EPROTO;
	}
	struct znode *n;
	if (path.len == 1) {
		/* The root can hold data too (set "/"): keep it. */
		uint8_t *d = NULL;
		if (data.len && !(d = malloc(data.len)))
			return COORD_ENOMEM;
		if (data.len)
			memcpy(d, data.p, data.len);
		uint32_t old_len;
		n = s->tree.root;
		free(tree_swap_data(&s->tree, n, d, data.len, &old_len));
	} else {
		size_t plen = coord_path_parent_len((const char *)path.p, path.len);
		size_t boff = coord_path_base_off((const char *)path.p, path.len);
		struct znode *parent = tree_lookup(&s->tree, (const char *)path.p, plen);
		if (!parent || tree_child(parent, (const char *)path.p + boff, path.len - boff)) {
			LOG_ERROR("snapshot: node %.*s comes before its parent or twice", (int)path.len, (const char *)path.p);
			return COORD_EPROTO;
		}
		if (parent->kind != COORD_KIND_DIR || znode_owner(parent)) {
			LOG_ERROR("snapshot: node %.*s is under a file or an ephemeral node",
				  (int)path.len, (const char *)path.p);
			return COORD_EPROTO;
		}
		n = tree_add(&s->tree, parent, (const char *)path.p + boff, path.len - boff, data.p, data.len, st.kind,
			     (uint64_t)st.ephemeral_owner);
		if (!n)
			return COORD_ENOMEM;
	}
	node_set_stat(n, &st);
	return load_versions(s, n, r);
}

static int load_session(struct state *s, struct rd *r)
{
	uint64_t id = rd_u64(r);
	uint8_t passwd[COORD_PASSWD_LEN];
	rd_raw(r, passwd, sizeof(passwd));
	uint32_t timeout = rd_u32(r);
	uint64_t last_xid = rd_u64(r);
	uint32_t ncache = rd_u32(r);
	if (r->bad || ncache > SESSION_MAX_CACHED_REPLIES || sessions_find(&s->sessions, id))
		return COORD_EPROTO;
	struct session *se = sessions_add(&s->sessions, id, passwd, timeout, NULL);
	if (!se)
		return COORD_ENOMEM;
	se->last_xid = last_xid;
	for (uint32_t i = 0; i < ncache; i++) {
		uint64_t xid = rd_u64(r);
		struct slice f = rd_bytes(r, COORD_MAX_DATA);
		if (r->bad)
			return COORD_EPROTO;
		if (session_cache_put(se, xid, f.p, f.len))
			return COORD_ENOMEM;
	}
	if (rd_left(r)) { /* the principal; absent for an anonymous session */
		struct slice pr = rd_bytes(r, COORD_PRINCIPAL_MAX);
		if (r->bad || pr.len == 0 || memchr(pr.p, 0, pr.len))
			return COORD_EPROTO;
		memcpy(se->principal, pr.p, pr.len);
		se->principal[pr.len] = 0;
	}
	return rd_left(r) ? COORD_EPROTO : COORD_OK;
}

int state_load_record(struct state *s, const uint8_t *p, size_t n)
{
	struct rd r;
	rd_init(&r, p, n);
	switch (rd_u8(&r)) {
	case REC_ACL: {
		uint32_t id = rd_u32(&r);
		struct slice text = rd_bytes(&r, COORD_MAX_ACL_TEXT);
		if (r.bad || rd_left(&r))
			return COORD_EPROTO;
		return acls_load(&s->acls, id, (const char *)text.p, text.len);
	}
	case REC_NODE:
		return load_node(s, &r);
	case REC_SESSION:
		return load_session(s, &r);
	case REC_END:
		s->last_zxid = rd_u64(&r);
		s->tree.next_ino = rd_u64(&r);
		s->last_term = rd_u64(&r);
		if (r.bad || rd_left(&r))
			return COORD_EPROTO;
		s->loaded_header = 1;
		return COORD_OK;
	default:
		return COORD_EPROTO;
	}
}

struct eph_nodes {
	struct znode **v;
	size_t n, cap;
};

static int collect_ephemeral(void *arg, const struct znode *cn)
{
	struct eph_nodes *e = arg;
	if (!znode_owner(cn))
		return 0;
	if (e->n == e->cap) {
		size_t c = e->cap ? e->cap * 2 : 64;
		struct znode **p = realloc(e->v, c * sizeof(*p));
		if (!p)
			return COORD_ENOMEM;
		e->v = p;
		e->cap = c;
	}
	e->v[e->n++] = (struct znode *)cn;
	return 0;
}

static int by_ino(const void *a, const void *b)
{
	uint64_t x = (*(struct znode *const *)a)->ino, y = (*(struct znode *const *)b)->ino;
	return x < y ? -1 : x > y;
}

int state_load_done(struct state *s)
{
	if (!s->loaded_header) {
		LOG_ERROR("snapshot: the closing record is missing");
		return COORD_EPROTO;
	}
	acls_load_done(&s->acls);
	/* Re-link each session's ephemeral nodes in creation (inode) order, the order the members
	 * that never restarted hold them in, so a close deletes them in the same order everywhere. */
	struct eph_nodes e = {0};
	int rc = tree_walk(s->tree.root, collect_ephemeral, &e);
	if (!rc && e.n)
		qsort(e.v, e.n, sizeof(*e.v), by_ino);
	for (size_t i = 0; !rc && i < e.n; i++) {
		struct znode *n = e.v[i];
		struct session *se = sessions_find(&s->sessions, znode_owner(n));
		if (!se) {
			char path[COORD_MAX_PATH + 16];
			tree_path(n, path, sizeof(path));
			LOG_ERROR("snapshot: ephemeral node %s belongs to session 0x%016" PRIx64 ", which is not in the snapshot",
				  path, znode_owner(n));
			rc = COORD_EPROTO;
		} else {
			rc = session_eph_add(se, n);
		}
	}
	free(e.v);
	return rc;
}

