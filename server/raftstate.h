/*
 * raftstate.h: the member's durable Raft hard state (term, vote, commit) in dataDir/raftstate.
 *
 * Raft's safety needs the term and the vote on disk before any vote or answer leaves the member.
 * The file holds two checksummed slots written in turn (pwrite + fdatasync), so a torn write
 * leaves the other slot intact; reading takes the valid slot with the higher sequence number.
 */
#ifndef COORD_RAFTSTATE_H
#define COORD_RAFTSTATE_H

#include <stddef.h>

#include "raft.h"

struct raftstate;

/* Open or create; *hs gets what is stored (zeros when new). COORD_OK or COORD_EIO with a message. */
int raftstate_open(const char *dir, struct raftstate **out, struct raft_hard *hs, char *err, size_t errlen);
/* Durable on return: COORD_OK, COORD_ENOSPC or COORD_EIO. */
int raftstate_save(struct raftstate *rs, const struct raft_hard *hs);
void raftstate_close(struct raftstate *rs);

#endif
