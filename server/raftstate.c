/*
 * raftstate.c: two alternating checksummed slots of hard state.
 */
#include "raftstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "buf.h"
#include "err.h"
#include "log.h"

#define SLOT 64
#define MAGIC 0x52534443u /* "CDSR" */

struct raftstate {
	int fd;
	char path[1100];
	uint64_t seq;
};

static void encode(uint8_t slot[SLOT], uint64_t seq, const struct raft_hard *hs)
{
	struct buf b;
	buf_init(&b);
	buf_u32(&b, MAGIC);
	buf_u64(&b, seq);
	buf_u64(&b, hs->term);
	buf_u32(&b, (uint32_t)hs->vote);
	buf_u64(&b, hs->commit);
	buf_u64(&b, XXH64(b.p, b.len, 0));
	memset(slot, 0, SLOT);
	if (!b.oom)
		memcpy(slot, b.p, b.len);
	buf_free(&b);
}

static int decode(const uint8_t slot[SLOT], uint64_t *seq, struct raft_hard *hs)
{
	struct rd r;
	rd_init(&r, slot, SLOT);
	if (rd_u32(&r) != MAGIC)
		return -1;
	*seq = rd_u64(&r);
	hs->term = rd_u64(&r);
	hs->vote = (int)rd_u32(&r);
	hs->commit = rd_u64(&r);
	size_t body = (size_t)(r.p - slot);
	uint64_t sum = rd_u64(&r);
	return r.bad || sum != XXH64(slot, body, 0) ? -1 : 0;
}

int raftstate_open(const char *dir, struct raftstate **out, struct raft_hard *hs, char *err, size_t errlen)
{
	struct raftstate *rs = calloc(1, sizeof(*rs));
	if (!rs) {
		snprintf(err, errlen, "out of memory");
		return COORD_ENOMEM;
	}
	snprintf(rs->path, sizeof(rs->path), "%s/raftstate", dir);
	rs->fd = open(rs->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (rs->fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", rs->path, strerror(errno));
		free(rs);
		return COORD_EIO;
	}
	uint8_t slots[2][SLOT];
	memset(slots, 0, sizeof(slots));
	ssize_t n = pread(rs->fd, slots, sizeof(slots), 0);
	memset(hs, 0, sizeof(*hs));
	int have = 0;
	for (int i = 0; n > 0 && i < 2; i++) {
		uint64_t seq;
		struct raft_hard h;
		if (decode(slots[i], &seq, &h) == 0 && (!have || seq > rs->seq)) {
			rs->seq = seq;
			*hs = h;
			have = 1;
		}
	}
	if (n > 0 && !have) {
		/* Both slots bad: voting again could elect two leaders in one term. */
		snprintf(err, errlen, "%s is damaged (no valid slot); this member's vote is unknown: restore it from "
				      "a backup, or remove the member's whole dataDir and let it rejoin empty",
			 rs->path);
		close(rs->fd);
		free(rs);
		return COORD_EIO;
	}
	*out = rs;
	return COORD_OK;
}

int raftstate_save(struct raftstate *rs, const struct raft_hard *hs)
{
	uint8_t slot[SLOT];
	uint64_t seq = rs->seq + 1;
	encode(slot, seq, hs);
	off_t at = (off_t)(seq % 2) * SLOT;
	if (pwrite(rs->fd, slot, SLOT, at) != SLOT || fdatasync(rs->fd) != 0) {
		int e = errno;
		LOG_ERROR("cannot write %s: %s", rs->path, strerror(e));
		return e == ENOSPC ? COORD_ENOSPC : COORD_EIO;
	}
	rs->seq = seq;
	return COORD_OK;
}

void raftstate_close(struct raftstate *rs)
{
	if (!rs)
		return;
	close(rs->fd);
	free(rs);
}
