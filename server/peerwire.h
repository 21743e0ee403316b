/*
 * peerwire.h: the messages members exchange on the peer port, version 2.
 *
 * One message per peer-link frame (peers.h), little-endian, `bytes` = u32 length + bytes:
 *   u8 version | u8 kind | body
 *   PEER_RAFT:          u8 type | u32 from | u32 to | u64 term | u64 index | u64 log_term |
 *                       u64 commit | u64 ctx | u64 durable | u8 reject | u32 n | n x (u64 term | u8 type | bytes data)
 *   PEER_FORWARD:       u64 session | bytes request frame          (a client's write, to the leader)
 *   PEER_NEW_SESSION:   u64 session | 16 passwd | u32 timeout_ms [| bytes principal]   (a CONNECT, to the leader)
 *   PEER_REFUSED:       u64 session | bytes reply frame            (the leader refused a forwarded write)
 *   PEER_TOUCH:         u32 n | n x u64 session                    (sessions heard from, to the leader)
 *   PEER_SNAP_CHUNK:    u64 index | u64 term | u64 offset | u64 total | bytes chunk
 * The decoder checks every length against what is left and never reads outside the frame;
 * decoded slices and entries point into the frame (entries into a caller-sized array).
 */
#ifndef COORD_PEERWIRE_H
#define COORD_PEERWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "raft.h"
#include "wire.h"

#define PEER_WIRE_VERSION 2
#define PEER_MAX_ENTRIES 4096
#define PEER_MAX_TOUCH 100000

enum peer_kind {
	PEER_RAFT = 1,
	PEER_FORWARD = 2,
	PEER_NEW_SESSION = 3,
	PEER_REFUSED = 4,
	PEER_TOUCH = 5,
	PEER_SNAP_CHUNK = 6,
};

struct peer_msg {
	uint8_t kind;
	struct raft_msg raft;             /* PEER_RAFT (entries point into `ents`) */
	struct raft_entry *ents;          /* heap, owned: free with peer_msg_clear */
	uint64_t session;                 /* FORWARD, NEW_SESSION, REFUSED */
	struct slice frame;               /* FORWARD: request; REFUSED: reply */
	uint8_t passwd[16];
	uint32_t timeout_ms;
	char principal[COORD_PRINCIPAL_MAX + 1]; /* NEW_SESSION: "" when anonymous */
	uint32_t ntouch;                  /* TOUCH */
	const uint8_t *touch;             /* ntouch x u64, little-endian, in the frame */
	uint64_t index, term, offset, total; /* SNAP_CHUNK */
	struct slice chunk;
};

int peer_encode_raft(struct buf *b, const struct raft_msg *m);
int peer_encode_forward(struct buf *b, uint8_t kind, uint64_t session, const void *frame, size_t len);
int peer_encode_new_session(struct buf *b, uint64_t session, const uint8_t passwd[16], uint32_t timeout_ms,
			    const char *principal);
int peer_encode_touch(struct buf *b, const uint64_t *sessions, uint32_t n);
int peer_encode_chunk(struct buf *b, uint64_t index, uint64_t term, uint64_t offset, uint64_t total,
		      const void *chunk, size_t len);
/* COORD_OK or COORD_EPROTO with a reason in err. */
int peer_decode(const void *frame, size_t len, struct peer_msg *m, char *err, size_t errlen);
void peer_msg_clear(struct peer_msg *m);
uint64_t peer_touch_at(const struct peer_msg *m, uint32_t i);

#endif
