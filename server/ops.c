/*
 * ops.c: create, delete, set, append, check, rename, set-policy and session close on the tree,
 * ZooKeeper's semantics for the Stat (a create bumps the parent's cversion and pzxid, a data
 * change bumps version and mzxid) and the events each change triggers.
 */
#include "ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "err.h"
#include "log.h"
#include "path.h"

enum undo_kind { UNDO_CREATE, UNDO_DELETE, UNDO_SET };

struct undo {
	enum undo_kind kind;
	struct znode *node;
	struct znode *parent;
	int64_t parent_pzxid;
	int32_t parent_cversion;
	/* UNDO_SET */
	uint8_t *old_data;
	uint32_t old_len;
	int32_t old_version;
	int64_t old_mzxid, old_mtime;
};

void ops_oom(void)
{
	LOG_ERROR("out of memory while applying a transaction; stopping rather than diverging from the ensemble");
	abort();
}

void ops_emit(struct apply_out *out, uint8_t type, const char *path, size_t len)
{
	if (out->nev == out->cev) {
		size_t c = out->cev ? out->cev * 2 : 8;
		struct state_event *e = realloc(out->ev, c * sizeof(*e));
		if (!e)
			ops_oom();
		out->ev = e;
		out->cev = c;
	}
	char *p = malloc(len + 1);
	if (!p)
		ops_oom();
	memcpy(p, path, len);
	p[len] = 0;
	out->ev[out->nev++] = (struct state_event){type, p};
}

static void emit_node(struct apply_out *out, uint8_t type, const struct znode *n)
{
	char path[COORD_MAX_PATH + 16];
	size_t len = tree_path(n, path, sizeof(path));
	ops_emit(out, type, path, len);
}

void op_begin(struct op_ctx *c, struct state *s, uint64_t zxid, int64_t time, uint64_t session,
	      struct apply_out *out, int multi)
{
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->zxid = zxid;
	c->time = time;
	c->session = session;
	c->out = out;
	c->ev_mark = out->nev;
	c->multi = multi;
}

static void undo_push(struct op_ctx *c, const struct undo *u)
{
	if (!c->multi)
		return;
	if (c->nundo == c->cundo) {
		size_t n = c->cundo ? c->cundo * 2 : 8;
		struct undo *p = realloc(c->undo, n * sizeof(*p));
		if (!p)
			ops_oom();
		c->undo = p;
		c->cundo = n;
	}
	c->undo[c->nundo++] = *u;
}

static int fail(struct op_ctx *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct op_ctx *c, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return err;
}

#define P(sl) (int)(sl).len, (const char *)(sl).p

static int check_path(struct op_ctx *c, struct slice p, int sequential)
{
	char why[200];
	int err = coord_path_check((const char *)p.p, p.len, sequential, why, sizeof(why));
	if (err)
		return fail(c, err, "%.*s: %s", P(p), why);
	return COORD_OK;
}

static struct znode *lookup(struct op_ctx *c, struct slice p)
{
	return tree_lookup(&c->s->tree, (const char *)p.p, p.len);
}

static int check_version(struct op_ctx *c, const struct znode *n, struct slice p, int32_t version)
{
	if (version != -1 && version != n->version)
		return fail(c, COORD_EBADVERSION, "%.*s: expected version %d, the node is at version %d",
			    P(p), version, n->version);
	return COORD_OK;
}

/* The session may do perm on n (path: n's path, plen bytes), else ENOAUTH naming both. */
static int need(struct op_ctx *c, const struct znode *n, const char *path, size_t plen, unsigned perm)
{
	if (!c->principal)
		return COORD_OK;
	return state_acl_check(c->s, n, path, plen, c->principal, perm, c->msg, sizeof(c->msg));
}

/* The existing node at a valid path that the session may do perm on, in *out; else the error. */
static int node_for(struct op_ctx *c, struct slice path, unsigned perm, struct znode **out)
{
	*out = NULL; /* gcc -O3 cannot see that fail() never returns COORD_OK */
	int err = check_path(c, path, 0);
	if (err)
		return err;
	struct znode *n = lookup(c, path);
	if (!n)
		return fail(c, COORD_ENONODE, "%.*s does not exist", P(path));
	if ((err = need(c, n, (const char *)path.p, path.len, perm)))
		return err;
	*out = n;
	return COORD_OK;
}

/* A node leaves the tree for good: its ACL loses a user. */
static void release_acl(struct op_ctx *c, const struct znode *n) { acls_unref(&c->s->acls, n->acl); }

/* The 32-bit counters wrap as ZooKeeper's do (signed overflow would be undefined behaviour). */
static int32_t inc32(int32_t v) { return (int32_t)((uint32_t)v + 1u); }

static void touch_parent(struct op_ctx *c, struct znode *parent, struct undo *u)
{
	u->parent = parent;
	u->parent_pzxid = parent->pzxid;
	u->parent_cversion = parent->cversion;
	parent->cversion = inc32(parent->cversion);
	parent->pzxid = (int64_t)c->zxid;
}

int op_create(struct op_ctx *c, struct slice path, struct slice data, uint32_t flags, uint8_t policy,
	      struct slice acl_text)
{
	int err = check_path(c, path, (flags & COORD_CREATE_SEQUENTIAL) != 0);
	if (err)
		return err;
	/* "/" itself always exists; a sequential "/" makes "/0000000042" as "/q/" makes "/q/0000000042" */
	if (path.len == 1 && !(flags & COORD_CREATE_SEQUENTIAL))
		return fail(c, COORD_ENODEEXISTS, "/: the root always exists");
	if (flags & ~(COORD_CREATE_EPHEMERAL | COORD_CREATE_SEQUENTIAL | COORD_CREATE_DIR | COORD_CREATE_ACL))
		return fail(c, COORD_EBADARG, "%.*s: unknown create flags 0x%x", P(path), flags);
	if (policy & ~(COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL))
		return fail(c, COORD_EBADARG, "%.*s: unknown child policy 0x%x", P(path), policy);
	if (policy && !(flags & COORD_CREATE_DIR))
		return fail(c, COORD_EBADARG, "%.*s: only a directory can have a child policy", P(path));
	if (data.len > COORD_MAX_DATA)
		return fail(c, COORD_ETOOLARGE, "%.*s: %u bytes of data", P(path), data.len);
	struct coord_acl acl;
	if (flags & COORD_CREATE_ACL) {
		char why[300];
		if (coord_acl_parse((const char *)acl_text.p, acl_text.len, &acl, why, sizeof(why)))
			return fail(c, COORD_EBADARG, "%.*s: %s", P(path), why);
	}
	size_t plen = coord_path_parent_len((const char *)path.p, path.len);
	struct znode *parent = tree_lookup(&c->s->tree, (const char *)path.p, plen);
	if (!parent)
		return fail(c, COORD_ENONODE, "%.*s: parent %.*s does not exist", P(path), (int)plen,
			    (const char *)path.p);
	if (znode_owner(parent))
		return fail(c, COORD_EEPHEMERAL, "%.*s: parent %.*s is ephemeral and cannot have children",
			    P(path), (int)plen, (const char *)path.p);
	if (parent->kind != COORD_KIND_DIR)
		return fail(c, COORD_ENOTDIR, "%.*s: parent %.*s is a file; files have no children",
			    P(path), (int)plen, (const char *)path.p);
	if ((err = need(c, parent, (const char *)path.p, plen, COORD_PERM_CREATE)))
		return err;
	if (!(flags & COORD_CREATE_DIR)) {
		if (parent->policy & COORD_POLICY_EPHEMERAL)
			flags |= COORD_CREATE_EPHEMERAL;
		if (parent->policy & COORD_POLICY_SEQUENTIAL)
			flags |= COORD_CREATE_SEQUENTIAL;
	}
	/* The name, with the sequence suffix from the parent's cversion as ZooKeeper makes it. */
	memcpy(c->path, path.p, path.len);
	c->path_len = path.len;
	if (flags & COORD_CREATE_SEQUENTIAL) {
		size_t base = coord_path_base_off((const char *)path.p, path.len);
		if (path.len - base + 10 > COORD_MAX_NAME || path.len + 10 > COORD_MAX_PATH)
			return fail(c, COORD_ENAMETOOLONG, "%.*s: no room for the 10-digit sequence suffix", P(path));
		/* Read as unsigned, the suffix is always 10 digits (a negative cversion after the wrap
		 * would print 11 characters, "-2147483648", overrunning the room kept for it). */
		c->path_len += (size_t)snprintf(c->path + path.len, 11, "%010u", (uint32_t)parent->cversion);
	}
	c->path[c->path_len] = 0;
	size_t boff = coord_path_base_off(c->path, c->path_len);
	if (tree_child(parent, c->path + boff, c->path_len - boff))
		return fail(c, COORD_ENODEEXISTS, "%s already exists", c->path);
	struct session *se = NULL;
	if (flags & COORD_CREATE_EPHEMERAL) {
		se = sessions_find(&c->s->sessions, c->session);
		if (!se)
			return fail(c, COORD_ESESSIONEXPIRED, "%s: the session of this ephemeral node has ended", c->path);
	}
	uint8_t kind = (flags & COORD_CREATE_DIR) ? COORD_KIND_DIR : COORD_KIND_FILE;
	struct znode *n = tree_add(&c->s->tree, parent, c->path + boff, c->path_len - boff, data.p, data.len, kind,
				   se ? se->id : 0);
	if (!n)
		ops_oom();
	n->czxid = n->mzxid = n->pzxid = (int64_t)c->zxid;
	n->ctime = n->mtime = c->time;
	n->policy = policy;
	if (flags & COORD_CREATE_ACL) {
		if (acls_intern(&c->s->acls, &acl, &n->acl))
			ops_oom();
	} else { /* absent: the parent's ACL (ZooKeeper makes it mandatory) */
		n->acl = parent->acl;
		acls_ref(&c->s->acls, n->acl);
	}
	if (se && session_eph_add(se, n))
		ops_oom();
	struct undo u = {.kind = UNDO_CREATE, .node = n};
	touch_parent(c, parent, &u);
	undo_push(c, &u);
	ops_emit(c->out, COORD_EV_CREATED, c->path, c->path_len);
	ops_emit(c->out, COORD_EV_CHILDREN, c->path, boff > 1 ? boff - 1 : 1);
	tree_stat(n, &c->stat);
	return COORD_OK;
}

/* Detach (multi) or free a node and everything that points at it. */
static void drop_node(struct op_ctx *c, struct znode *n, struct undo *u)
{
	if (znode_owner(n)) {
		struct session *se = sessions_find(&c->s->sessions, znode_owner(n));
		if (se)
			session_eph_del(se, n);
	}
	emit_node(c->out, COORD_EV_DELETED, n);
	emit_node(c->out, COORD_EV_CHILDREN, n->parent);
	u->kind = UNDO_DELETE;
	u->node = n;
	touch_parent(c, n->parent, u);
	if (c->multi) {
		tree_detach(&c->s->tree, n);
		undo_push(c, u);
	} else {
		release_acl(c, n);
		tree_remove(&c->s->tree, n);
	}
}

int op_delete(struct op_ctx *c, struct slice path, int32_t version)
{
	int err = check_path(c, path, 0);
	if (err)
		return err;
	if (path.len == 1)
		return fail(c, COORD_EBADARG, "/: the root cannot be deleted");
	struct znode *n = lookup(c, path);
	if (!n)
		return fail(c, COORD_ENONODE, "%.*s does not exist", P(path));
	if ((err = need(c, n->parent, (const char *)path.p, coord_path_parent_len((const char *)path.p, path.len),
			COORD_PERM_DELETE)))
		return err;
	if ((err = check_version(c, n, path, version)))
		return err;
	if (znode_nkids(n))
		return fail(c, COORD_ENOTEMPTY, "%.*s has %u children", P(path), znode_nkids(n));
	struct undo u = {0};
	drop_node(c, n, &u);
	return COORD_OK;
}

/* The replaced contents of n become a kept earlier version (or are freed). */
static void keep_version(struct op_ctx *c, struct znode *n, const struct undo *u)
{
	struct zver v = {u->old_version, u->old_mzxid, u->old_mtime, u->old_len, u->old_data};
	if (tree_hist_push(&c->s->tree, n, &v, c->s->hist_keep, c->s->hist_bytes))
		ops_oom();
}

/* Give n the `len` bytes at `data` as its new contents: a new data version. */
static void replace_data(struct op_ctx *c, struct znode *n, uint8_t *data, uint32_t len)
{
	struct undo u = {.kind = UNDO_SET, .node = n, .old_version = n->version,
			 .old_mzxid = n->mzxid, .old_mtime = n->mtime};
	u.old_data = tree_swap_data(&c->s->tree, n, data, len, &u.old_len);
	if (c->multi)
		undo_push(c, &u); /* kept as a version only when the multi commits */
	else
		keep_version(c, n, &u);
	n->version = inc32(n->version);
	n->mzxid = (int64_t)c->zxid;
	n->mtime = c->time;
	emit_node(c->out, COORD_EV_CHANGED, n);
	tree_stat(n, &c->stat);
}

static uint8_t *copy_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen + blen == 0)
		return NULL;
	uint8_t *p = malloc(alen + blen);
	if (!p)
		ops_oom();
	if (alen)
		memcpy(p, a, alen);
	if (blen)
		memcpy(p + alen, b, blen);
	return p;
}

int op_set(struct op_ctx *c, struct slice path, struct slice data, int32_t version)
{
	struct znode *n;
	int err = node_for(c, path, COORD_PERM_WRITE, &n);
	if (err)
		return err;
	if ((err = check_version(c, n, path, version)))
		return err;
	if (data.len > COORD_MAX_DATA)
		return fail(c, COORD_ETOOLARGE, "%.*s: %u bytes of data", P(path), data.len);
	replace_data(c, n, copy_bytes(data.p, data.len, NULL, 0), data.len);
	return COORD_OK;
}

int op_append(struct op_ctx *c, struct slice path, struct slice data, int32_t version)
{
	struct znode *n;
	int err = node_for(c, path, COORD_PERM_WRITE, &n);
	if (err)
		return err;
	if ((err = check_version(c, n, path, version)))
		return err;
	uint64_t total = (uint64_t)n->data_len + data.len;
	if (total > c->s->max_data)
		return fail(c, COORD_ETOOLARGE, "%.*s: appending %u bytes would make it %llu bytes, over maxDataBytes (%u)",
			    P(path), data.len, (unsigned long long)total, c->s->max_data);
	replace_data(c, n, copy_bytes(znode_data(n), n->data_len, data.p, data.len), (uint32_t)total);
	return COORD_OK;
}

/* A multi's version check needs read permission, as ZooKeeper's (it tells the node's version). */
int op_check(struct op_ctx *c, struct slice path, int32_t version)
{
	struct znode *n;
	int err = node_for(c, path, COORD_PERM_READ, &n);
	return err ? err : check_version(c, n, path, version);
}

int op_setpolicy(struct op_ctx *c, struct slice path, uint8_t policy)
{
	int err = check_path(c, path, 0);
	if (err)
		return err;
	if (!policy || (policy & ~(COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL)))
		return fail(c, COORD_EBADARG, "%.*s: child policy must be ephemeral, sequential or both", P(path));
	struct znode *n = lookup(c, path);
	if (!n)
		return fail(c, COORD_ENONODE, "%.*s does not exist", P(path));
	if ((err = need(c, n, (const char *)path.p, path.len, COORD_PERM_ADMIN)))
		return err;
	if (n->kind != COORD_KIND_DIR)
		return fail(c, COORD_EPOLICY, "%.*s is a file; only directories have a child policy", P(path));
	if (n->policy == policy)
		return COORD_OK;
	if (n->policy)
		return fail(c, COORD_EPOLICY, "%.*s already has a child policy; it can be set once", P(path));
	n->policy = policy;
	emit_node(c->out, COORD_EV_CHANGED, n);
	tree_stat(n, &c->stat);
	return COORD_OK;
}

int op_setacl(struct op_ctx *c, struct slice path, struct slice acl_text, int32_t aversion)
{
	struct znode *n;
	int err = node_for(c, path, COORD_PERM_ADMIN, &n);
	if (err)
		return err;
	if (aversion != -1 && aversion != n->aversion)
		return fail(c, COORD_EBADVERSION, "%.*s: expected ACL version (aversion) %d, the node is at %d",
			    P(path), aversion, n->aversion);
	struct coord_acl acl;
	char why[300];
	if (coord_acl_parse((const char *)acl_text.p, acl_text.len, &acl, why, sizeof(why)))
		return fail(c, COORD_EBADARG, "%.*s: %s", P(path), why);
	uint32_t id;
	if (acls_intern(&c->s->acls, &acl, &id))
		ops_oom();
	acls_unref(&c->s->acls, n->acl);
	n->acl = id;
	n->aversion = inc32(n->aversion);
	/* Not in ZooKeeper: a "changed" event, so caches of the node (a mount's) are dropped and
	 * what the new ACL forbids is asked again. */
	emit_node(c->out, COORD_EV_CHANGED, n);
	tree_stat(n, &c->stat);
	return COORD_OK;
}

static struct znode *rename_node(struct op_ctx *c, struct znode *n, const char *name, size_t len)
{
	struct znode *m = tree_rename_node(&c->s->tree, n, name, len);
	if (!m)
		ops_oom();
	if (znode_owner(m)) {
		struct session *se = sessions_find(&c->s->sessions, znode_owner(m));
		if (se)
			session_eph_replace(se, n, m);
	}
	return m;
}

int op_rename(struct op_ctx *c, struct slice from, struct slice to, int32_t version, uint32_t flags)
{
	int err;
	if ((err = check_path(c, from, 0)) || (err = check_path(c, to, 0)))
		return err;
	if (from.len == 1 || to.len == 1)
		return fail(c, COORD_EBADARG, "the root cannot be renamed or replaced");
	if ((flags & ~(COORD_RENAME_NOREPLACE | COORD_RENAME_EXCHANGE)) ||
	    (flags == (COORD_RENAME_NOREPLACE | COORD_RENAME_EXCHANGE)))
		return fail(c, COORD_EBADARG, "rename flags 0x%x: NOREPLACE and EXCHANGE exclude each other", flags);
	struct znode *n = lookup(c, from);
	if (!n)
		return fail(c, COORD_ENONODE, "%.*s does not exist", P(from));
	size_t splen = coord_path_parent_len((const char *)from.p, from.len);
	if ((err = need(c, n->parent, (const char *)from.p, splen, COORD_PERM_DELETE)))
		return err;
	if ((err = check_version(c, n, from, version)))
		return err;
	if (from.len == to.len && !memcmp(from.p, to.p, to.len)) {
		if (flags & COORD_RENAME_NOREPLACE) /* as Linux's renameat2: the target exists */
			return fail(c, COORD_ENODEEXISTS, "%.*s already exists", P(to));
		tree_stat(n, &c->stat);
		return COORD_OK; /* rename(2): same name, nothing to do */
	}
	if (znode_nkids(n))
		return fail(c, COORD_ENOTEMPTY, "%.*s has children: only nodes without children can be renamed", P(from));
	if (coord_path_under((const char *)to.p, to.len, (const char *)from.p, from.len))
		return fail(c, COORD_EBADARG, "cannot move %.*s into itself", P(from));
	size_t plen = coord_path_parent_len((const char *)to.p, to.len);
	struct znode *dparent = tree_lookup(&c->s->tree, (const char *)to.p, plen);
	if (!dparent)
		return fail(c, COORD_ENONODE, "%.*s: parent %.*s does not exist", P(to), (int)plen, (const char *)to.p);
	if (znode_owner(dparent))
		return fail(c, COORD_EEPHEMERAL, "%.*s: parent is ephemeral and cannot have children", P(to));
	if (dparent->kind != COORD_KIND_DIR)
		return fail(c, COORD_ENOTDIR, "%.*s: parent is a file; files have no children", P(to));
	if ((err = need(c, dparent, (const char *)to.p, plen, COORD_PERM_CREATE)))
		return err;
	size_t boff = coord_path_base_off((const char *)to.p, to.len);
	const char *name = (const char *)to.p + boff;
	size_t nlen = to.len - boff;
	struct znode *target = tree_child(dparent, name, nlen);
	struct znode *sparent = n->parent;
	struct undo u = {0};

	/* Replacing or exchanging takes the target's name away too: delete in its parent, and an
	 * exchange creates in the source's parent. */
	if (target && !(flags & COORD_RENAME_NOREPLACE) &&
	    (err = need(c, dparent, (const char *)to.p, plen, COORD_PERM_DELETE)))
		return err;
	if (target && (flags & COORD_RENAME_EXCHANGE) &&
	    (err = need(c, sparent, (const char *)from.p, splen, COORD_PERM_CREATE)))
		return err;
	if (flags & COORD_RENAME_EXCHANGE) {
		if (!target)
			return fail(c, COORD_ENONODE, "%.*s does not exist to exchange with", P(to));
		if (znode_nkids(target))
			return fail(c, COORD_ENOTEMPTY, "%.*s has children: only nodes without children can be exchanged", P(to));
		char sname[COORD_MAX_NAME + 1];
		size_t slen = n->name_len;
		memcpy(sname, n->name, slen);
		tree_detach(&c->s->tree, n);
		tree_detach(&c->s->tree, target);
		n = rename_node(c, n, name, nlen);
		target = rename_node(c, target, sname, slen);
		tree_attach(&c->s->tree, dparent, n);
		tree_attach(&c->s->tree, sparent, target);
		n->mzxid = target->mzxid = (int64_t)c->zxid;
		/* The data at both names changes: as for a replace, each name's version must move
		 * forward, or a compare-and-set holding the old version would succeed on the other
		 * node's data. */
		int32_t v = inc32(n->version > target->version ? n->version : target->version);
		n->version = target->version = v;
		touch_parent(c, sparent, &u);
		if (dparent != sparent)
			touch_parent(c, dparent, &u);
		ops_emit(c->out, COORD_EV_CHANGED, (const char *)from.p, from.len);
		ops_emit(c->out, COORD_EV_CHANGED, (const char *)to.p, to.len);
		tree_stat(n, &c->stat);
		return COORD_OK;
	}
	int replaced = 0;
	if (target) {
		if (flags & COORD_RENAME_NOREPLACE)
			return fail(c, COORD_ENODEEXISTS, "%.*s already exists", P(to));
		if (znode_nkids(target))
			return fail(c, COORD_ENOTEMPTY, "%.*s has children and cannot be replaced", P(to));
		if (n->kind == COORD_KIND_DIR && target->kind != COORD_KIND_DIR)
			return fail(c, COORD_ENOTDIR, "cannot replace file %.*s with directory %.*s", P(to), P(from));
		if (n->kind != COORD_KIND_DIR && target->kind == COORD_KIND_DIR)
			return fail(c, COORD_EISDIR, "cannot replace directory %.*s with file %.*s", P(to), P(from));
		/* The data at `to` changes: its version must move forward, or a compare-and-set
		 * holding the replaced node's version could succeed against the new one. */
		if (n->version <= target->version)
			n->version = inc32(target->version);
		if (znode_owner(target)) {
			struct session *se = sessions_find(&c->s->sessions, znode_owner(target));
			if (se)
				session_eph_del(se, target);
		}
		release_acl(c, target);
		tree_remove(&c->s->tree, target);
		replaced = 1;
	}
	tree_detach(&c->s->tree, n);
	n = rename_node(c, n, name, nlen);
	tree_attach(&c->s->tree, dparent, n);
	n->mzxid = (int64_t)c->zxid;
	touch_parent(c, sparent, &u);
	if (dparent != sparent)
		touch_parent(c, dparent, &u);
	ops_emit(c->out, COORD_EV_DELETED, (const char *)from.p, from.len);
	ops_emit(c->out, replaced ? COORD_EV_CHANGED : COORD_EV_CREATED, (const char *)to.p, to.len);
	emit_node(c->out, COORD_EV_CHILDREN, sparent);
	if (dparent != sparent)
		emit_node(c->out, COORD_EV_CHILDREN, dparent);
	tree_stat(n, &c->stat);
	return COORD_OK;
}

void op_close_session(struct op_ctx *c, struct session *se)
{
	/* Ephemeral nodes go in creation order; the session's list is not edited while we walk it. */
	for (uint32_t i = 0; i < se->neph; i++) {
		struct znode *n = se->eph[i];
		struct undo u = {0};
		emit_node(c->out, COORD_EV_DELETED, n);
		emit_node(c->out, COORD_EV_CHILDREN, n->parent);
		touch_parent(c, n->parent, &u);
		release_acl(c, n);
		tree_remove(&c->s->tree, n);
	}
	se->neph = 0;
	sessions_remove(&c->s->sessions, se);
}

void op_commit(struct op_ctx *c)
{
	for (size_t i = 0; i < c->nundo; i++) {
		struct undo *u = &c->undo[i];
		if (u->kind == UNDO_DELETE) {
			release_acl(c, u->node);
			tree_node_free(&c->s->tree, u->node);
		}
		else if (u->kind == UNDO_SET)
			keep_version(c, u->node, u);
	}
	free(c->undo);
	c->undo = NULL;
	c->nundo = c->cundo = 0;
}

void op_rollback(struct op_ctx *c)
{
	for (size_t i = c->nundo; i-- > 0;) {
		struct undo *u = &c->undo[i];
		struct znode *n = u->node;
		switch (u->kind) {
		case UNDO_CREATE:
			if (znode_owner(n)) {
				struct session *se = sessions_find(&c->s->sessions, znode_owner(n));
				if (se)
					session_eph_del(se, n);
			}
			release_acl(c, n);
			tree_remove(&c->s->tree, n);
			break;
		case UNDO_DELETE:
			tree_attach(&c->s->tree, u->parent, n);
			if (znode_owner(n)) {
				struct session *se = sessions_find(&c->s->sessions, znode_owner(n));
				if (se && session_eph_add(se, n))
					ops_oom();
			}
			break;
		case UNDO_SET: {
			uint32_t len;
			free(tree_swap_data(&c->s->tree, n, u->old_data, u->old_len, &len));
			n->version = u->old_version;
			n->mzxid = u->old_mzxid;
			n->mtime = u->old_mtime;
			continue; /* no parent to restore */
		}
		}
		u->parent->pzxid = u->parent_pzxid;
		u->parent->cversion = u->parent_cversion;
	}
	free(c->undo);
	c->undo = NULL;
	c->nundo = c->cundo = 0;
	for (size_t i = c->ev_mark; i < c->out->nev; i++)
		free(c->out->ev[i].path);
	c->out->nev = c->ev_mark;
}
