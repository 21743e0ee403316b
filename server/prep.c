/*
 * prep.c: request -> txn, with the static checks that keep bad input out of the log.
 */
#include "prep.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "err.h"
#include "path.h"
#include "txn.h"

int64_t prep_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int check_path(struct slice p, int seq, char *msg, size_t msglen)
{
	char why[200];
	int err = coord_path_check((const char *)p.p, p.len, seq, why, sizeof(why));
	if (err)
		snprintf(msg, msglen, "%.*s: %s", (int)(p.len > 200 ? 200 : p.len), p.p ? (const char *)p.p : "", why);
	return err;
}

static int check_data(const struct prep_limits *lim, struct slice p, struct slice d, char *msg, size_t msglen)
{
	if (d.len <= lim->max_data)
		return COORD_OK;
	snprintf(msg, msglen, "%.*s: %u bytes of data, over the server's maxDataBytes (%u)",
		 (int)(p.len > 200 ? 200 : p.len), p.p ? (const char *)p.p : "", d.len, lim->max_data);
	return COORD_ETOOLARGE;
}

static int check_one(const struct prep_limits *lim, uint8_t op, struct slice path, struct slice path2,
		     struct slice data, uint32_t flags, char *msg, size_t msglen)
{
	int err;
	switch (op) {
	case COORD_OP_CREATE:
		if ((err = check_path(path, (flags & COORD_CREATE_SEQUENTIAL) != 0, msg, msglen)))
			return err;
		return check_data(lim, path, data, msg, msglen);
	case COORD_OP_SET:
	case COORD_OP_APPEND:
		if ((err = check_path(path, 0, msg, msglen)))
			return err;
		return check_data(lim, path, data, msg, msglen);
	case COORD_OP_RENAME:
		if ((err = check_path(path, 0, msg, msglen)))
			return err;
		return check_path(path2, 0, msg, msglen);
	case COORD_OP_DELETE:
	case COORD_OP_CHECK:
	case COORD_OP_SETPOLICY:
	case COORD_OP_SETACL: /* the ACL text is checked in apply, with the node's */
		return check_path(path, 0, msg, msglen);
	case COORD_OP_CLOSE:
		return COORD_OK;
	default:
		snprintf(msg, msglen, "%s is not a write", coord_op_name(op));
		return COORD_EBADARG;
	}
}

int prep_request(const struct prep_limits *lim, uint64_t session, const struct coord_req *req,
		 const void *frame, size_t len, struct buf *out, char *msg, size_t msglen)
{
	int err;
	if (req->op == COORD_OP_MULTI) {
		for (uint32_t i = 0; i < req->nops; i++) {
			const struct coord_subop *o = &req->ops[i];
			char why[400];
			struct slice none = {0};
			if (o->op != COORD_OP_CREATE && o->op != COORD_OP_SET && o->op != COORD_OP_DELETE &&
			    o->op != COORD_OP_CHECK) {
				snprintf(msg, msglen, "multi operation %u: %s cannot be part of a multi", i, coord_op_name(o->op));
				return COORD_EBADARG;
			}
			if ((err = check_one(lim, o->op, o->path, none, o->data, o->flags, why, sizeof(why)))) {
				snprintf(msg, msglen, "multi operation %u: %s", i, why);
				return err;
			}
		}
	} else if ((err = check_one(lim, req->op, req->path, req->path2, req->data, req->flags, msg, msglen))) {
		return err;
	}
	struct txn t = {.type = TXN_REQUEST, .time_ms = prep_now_ms(), .session_id = session,
			.req = slice_of(frame, len)};
	return txn_encode(out, &t);
}

int prep_new_session(const struct prep_limits *lim, uint32_t requested_ms, uint64_t *session,
		     uint8_t passwd[COORD_PASSWD_LEN], uint32_t *timeout_ms)
{
	uint64_t id = 0;
	/* ZooKeeper's shape: the member's id in the top byte keeps members' draws apart. */
	while ((id & 0x00ffffffffffffffULL) == 0) {
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			return COORD_EIO;
	}
	*session = ((uint64_t)(lim->server_id & 0xff) << 56) | (id & 0x00ffffffffffffffULL);
	if (getrandom(passwd, COORD_PASSWD_LEN, 0) != COORD_PASSWD_LEN)
		return COORD_EIO;
	uint32_t to = requested_ms;
	if (to < (uint32_t)lim->min_timeout_ms)
		to = (uint32_t)lim->min_timeout_ms;
	if (to > (uint32_t)lim->max_timeout_ms)
		to = (uint32_t)lim->max_timeout_ms;
	*timeout_ms = to;
	return COORD_OK;
}

int prep_create_session(const struct prep_limits *lim, uint64_t session, const uint8_t passwd[COORD_PASSWD_LEN],
			uint32_t timeout_ms, const char *principal, struct buf *out)
{
	(void)lim;
	struct txn t = {.type = TXN_CREATE_SESSION, .time_ms = prep_now_ms(), .session_id = session,
			.timeout_ms = timeout_ms};
	memcpy(t.passwd, passwd, COORD_PASSWD_LEN);
	if (principal && strlen(principal) > COORD_PRINCIPAL_MAX)
		return COORD_EBADARG;
	if (principal)
		memcpy(t.principal, principal, strlen(principal) + 1);
	return txn_encode(out, &t);
}

int prep_expire_session(uint64_t session, struct buf *out)
{
	struct txn t = {.type = TXN_CLOSE_SESSION, .time_ms = prep_now_ms(), .session_id = session,
			.reason = TXN_CLOSE_EXPIRED};
	return txn_encode(out, &t);
}
