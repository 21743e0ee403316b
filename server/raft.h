/*
 * raft.h: the replication protocol as a pure, deterministic state machine (Raft, after Ongaro's
 * thesis and etcd's raft package). Messages and ticks go in; what to persist, what to send and
 * what to apply comes out of raft_ready. No sockets, clocks, files or global randomness inside:
 * a seeded generator in the struct draws election timeouts, so one seed replays one history.
 *
 * It implements: leader election with pre-vote and leader lease (a member that heard from a
 * leader within the election timeout refuses to elect another), check-quorum (a leader that has
 * not heard from a quorum for an election timeout steps down), a no-op entry at the start of each
 * term and commitment only of entries of the current term by counting (Figure 8), term and vote
 * persisted before any vote or response leaves (ready.hard + msgs_after_persist), log
 * truncation of conflicting suffixes (never below commit), pipelined replication with flow
 * control, snapshot install for members behind the compacted log, leadership transfer
 * (TIMEOUT_NOW), non-voting observers (learners), and read-index requests for `sync`.
 *
 * The log's entries [first_index, last_index] are kept in memory, owned by the core; a zxid is a
 * log index, so it only grows. Membership is static (from the configuration).
 */
#ifndef COORD_RAFT_H
#define COORD_RAFT_H

#include <stddef.h>
#include <stdint.h>

#define RAFT_MAX_MEMBERS 32
#define RAFT_NONE 0

enum raft_role { RAFT_FOLLOWER = 0, RAFT_PRE_CANDIDATE = 1, RAFT_CANDIDATE = 2, RAFT_LEADER = 3 };

enum raft_entry_type { RAFT_ENTRY_NORMAL = 0, RAFT_ENTRY_NOOP = 1 };

enum raft_msg_type {
	RAFT_MSG_PREVOTE = 1,
	RAFT_MSG_PREVOTE_RESP = 2,
	RAFT_MSG_VOTE = 3,
	RAFT_MSG_VOTE_RESP = 4,
	RAFT_MSG_APPEND = 5,        /* entries (possibly none: a heartbeat) */
	RAFT_MSG_APPEND_RESP = 6,
	RAFT_MSG_SNAPSHOT = 7,      /* leader -> follower: the shell attaches its snapshot at (index, log_term) */
	RAFT_MSG_TIMEOUT_NOW = 8,   /* leadership transfer: campaign now */
	RAFT_MSG_READ_INDEX = 9,    /* follower -> leader: what is your commit index? (ctx) */
	RAFT_MSG_READ_INDEX_RESP = 10,
	RAFT_MSG_DURABLE = 11,      /* leader -> follower: its disk holds its log up to `durable`; no answer */
	RAFT_MSG_TYPE_MAX
};

struct raft_entry {
	uint64_t term;
	uint8_t type;
	uint32_t len;
	uint8_t *data;
};

struct raft_msg {
	uint8_t type;
	int from, to;
	uint64_t term;
	uint64_t index;       /* APPEND: prev index; *_RESP: match or hint; VOTE: last log index;
				 SNAPSHOT: snapshot index; READ_INDEX_RESP: the commit index */
	uint64_t log_term;    /* APPEND: prev term; VOTE: last log term; SNAPSHOT: snapshot term */
	uint64_t commit;      /* APPEND: leader's commit */
	uint64_t ctx;         /* READ_INDEX*: the request's id; VOTE: 1 when a leadership transfer */
	uint64_t durable;     /* APPEND, DURABLE: how far the leader's own disk holds its log (see raft.c) */
	uint8_t reject;       /* *_RESP: 1 = refused */
	uint32_t nentries;
	const struct raft_entry *entries; /* APPEND; point into the sender's log until the next call */
};

struct raft_member {
	int id;
	int voter;            /* 0: observer (learner) */
};

struct raft_config {
	int id;
	int nmembers;
	struct raft_member members[RAFT_MAX_MEMBERS];
	int election_ticks;   /* base election timeout; each wait is drawn from [e, 2e) */
	int heartbeat_ticks;
	uint64_t seed;
	uint32_t max_batch;   /* entries per append message */
	uint32_t max_batch_bytes; /* and bytes of entries per append (0: no limit; one entry always goes) */
	uint32_t max_inflight;/* append messages in flight per follower */
};

struct raft_hard {
	uint64_t term;
	int vote;
	uint64_t commit;      /* a lower bound of the commit index: entries up to it may be applied at restart */
};

struct raft_read {
	uint64_t ctx;
	uint64_t index;       /* apply up to here, then the read may be answered */
	int ok;               /* 0: no leader could confirm; ask again */
};

struct raft_ready {
	int has_hard;
	struct raft_hard hard;       /* persist before sending msgs_after */
	int truncate;                /* cut the durable log after truncate_after first (keep <= it) */
	uint64_t truncate_after;
	uint64_t persist_from, persist_to; /* entries to make durable (0,0 = none) */
	int install_snapshot;        /* load the snapshot received at (snap_index, snap_term) and drop
				      * the whole durable log; before anything else in this ready */
	uint64_t snap_index, snap_term;
	struct raft_msg *msgs;       /* send now */
	size_t nmsgs;
	struct raft_msg *msgs_after; /* send only after hard state and entries are durable */
	size_t nafter;
	uint64_t apply_from, apply_to; /* committed entries to apply now (0,0 = none) */
	struct raft_read *reads;
	size_t nreads;
};

struct raft_status {
	int id, role, leader;
	uint64_t term, commit, applied, first_index, last_index, persisted;
	int voter;
	struct {
		int id;
		uint64_t match, next;
		int active;  /* heard from within the last one to two election timeouts (leader's view) */
	} peers[RAFT_MAX_MEMBERS];
	int npeers;
};

struct raft;

/*
 * A member restarting from durable state: hard state, its snapshot (index, term; 0,0 if none)
 * and then every durable entry after it via raft_load. COORD_OK or COORD_EBADCONFIG/ENOMEM.
 */
int raft_new(const struct raft_config *cfg, const struct raft_hard *hs, uint64_t snap_index,
	     uint64_t snap_term, struct raft **out);
void raft_free(struct raft *r);
/* Append a durable entry at restart (index = last + 1); also sets applied/commit bounds. */
int raft_load(struct raft *r, uint64_t term, uint8_t type, const void *data, size_t len);
/* The state machine already holds everything up to index (the snapshot's, or all replayed). */
void raft_set_applied(struct raft *r, uint64_t index);

void raft_tick(struct raft *r);
/* A message from a peer. Bad messages (unknown sender, type) are dropped. */
void raft_step(struct raft *r, const struct raft_msg *m);
/* Leader only: append an entry. COORD_OK with its index, COORD_ENOTREADY if not the leader. */
int raft_propose(struct raft *r, uint8_t type, const void *data, size_t len, uint64_t *index);
/* Start an election now (a single-voter ensemble at start-up, an operator's request). */
void raft_campaign(struct raft *r);
/* The shell saw the connection to a peer drop. If it was our leader, start an election now. */
void raft_peer_lost(struct raft *r, int id);
/* Ask for a read index (sync): answered in a later ready's reads. */
void raft_read_index(struct raft *r, uint64_t ctx);
/* Leader: hand leadership to `to` (COORD_ENOTREADY if not leader, COORD_EBADARG if not a voter). */
int raft_transfer(struct raft *r, int to);
/* The shell has a durable snapshot at (index, term) and removed log entries up to it. */
void raft_compact(struct raft *r, uint64_t index, uint64_t term);

/*
 * Is there anything to do? Fill rd (pointers valid until raft_advance). The shell then, in this
 * order: installs the snapshot, truncates, persists hard state and entries, sends msgs (these may
 * go before persisting), sends msgs_after, applies, answers reads, and calls raft_advance. No
 * other raft call may come between raft_ready and raft_advance.
 */
int raft_ready(struct raft *r, struct raft_ready *rd);
/* The shell did what rd asked. */
void raft_advance(struct raft *r, const struct raft_ready *rd);

const struct raft_entry *raft_entry(const struct raft *r, uint64_t index);
uint64_t raft_term_at(const struct raft *r, uint64_t index); /* 0 if unknown */
void raft_status(const struct raft *r, struct raft_status *st);
int raft_role(const struct raft *r);
/* The leader is handing leadership over: proposals are refused meanwhile. */
int raft_transferring(const struct raft *r);
int raft_leader(const struct raft *r);
uint64_t raft_term(const struct raft *r);
uint64_t raft_commit(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);

const char *raft_role_name(int role);
const char *raft_msg_name(int type);

#endif
