/*
 * prep.h: the leader-side step that turns a client request into a txn.
 *
 * It stamps what must not be computed on each member (wall-clock time, a new session's id and
 * password, the negotiated timeout) and refuses what no member could apply (malformed paths,
 * data over maxDataBytes, bad flags) before anything reaches the log. Everything that depends on
 * the tree (existence, versions, sequence numbers) is checked by state_apply, deterministically.
 */
#ifndef COORD_PREP_H
#define COORD_PREP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wire.h"

struct prep_limits {
	uint32_t max_data;
	int min_timeout_ms, max_timeout_ms;
	int server_id;
};

/* A write request from a session: COORD_OK and the txn in out, or an error and a message. */
int prep_request(const struct prep_limits *lim, uint64_t session, const struct coord_req *req,
		 const void *frame, size_t len, struct buf *out, char *msg, size_t msglen);
/* A new session, at the member the client reached: draws id and password, clamps the timeout. */
int prep_new_session(const struct prep_limits *lim, uint32_t requested_ms, uint64_t *session,
		     uint8_t passwd[COORD_PASSWD_LEN], uint32_t *timeout_ms);
/* The leader's txn creating that session. */
int prep_create_session(const struct prep_limits *lim, uint64_t session, const uint8_t passwd[COORD_PASSWD_LEN],
			uint32_t timeout_ms, const char *principal, struct buf *out);
/* The leader's decision that a session expired. */
int prep_expire_session(uint64_t session, struct buf *out);
/* Wall-clock milliseconds since the epoch (only ever read here, never in apply). */
int64_t prep_now_ms(void);

#endif
