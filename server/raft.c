/*
 * raft.c: the Raft core. Every decision of the protocol lives here and nothing else does: no
 * I/O, no clock, no global state. Comments cite the rule they keep (thesis section or the
 * paper's figure) where the reason is not obvious.
 */
#include "raft.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "err.h"

enum pr_state { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };

#define MAX_INFLIGHT_CAP 1024
#define ENTRY_OVERHEAD 16 /* what an entry adds to an append besides its data (peerwire.h: term, type, length) */

struct progress {
	int id;
	int voter;
	uint64_t match, next;
	int state;
	int paused;               /* PROBE: one append is out, wait for its answer or a heartbeat */
	int active;               /* heard from in this election period (check-quorum) */
	int was_active;           /* heard from in the one before (what raft_status reports, with active) */
	int acked;                /* its match moved since the last heartbeat */
	int stalled;              /* heartbeat periods without an answer while a snapshot is out */
	uint64_t pending_snapshot;
	uint64_t inflight[MAX_INFLIGHT_CAP]; /* last index of each append in flight, oldest first */
	uint32_t ninflight, inflight_head;
	int vote;                 /* 0 unknown, 1 granted, 2 refused (current campaign) */
	uint64_t read_ack;        /* the newest read round this follower answered in our term */
	uint64_t durable_sent;    /* the highest durable index we told it in our term */
};

struct read_wait {
	uint64_t ctx;
	int from;                 /* RAFT_NONE: our own shell */
	uint64_t seq;             /* the heartbeat round that must confirm us (0: waiting for a commit in this term) */
	uint64_t index;           /* the commit index when the round started */
};

struct msgq {
	struct raft_msg *m;
	size_t n, cap;
};

/*
 * Entry payloads up to LOG_SMALL bytes live in chunks of LOG_CHUNK bytes filled in log order,
 * mapped and unmapped whole: a chunk goes back to the system once compaction has dropped every
 * entry ever stored in it. Freed one by one with malloc, a few hundred thousand payloads that
 * lived between the znodes made while they were in the log left about 45 B of heap holes per
 * znode behind them (RSS 370 B per znode after loading 1,000,000, 270 B after a restart).
 */
#define LOG_CHUNK (256u << 10)
#define LOG_SMALL (LOG_CHUNK / 8)

struct log_chunk {
	struct log_chunk *next;
	size_t used;
	uint64_t last;            /* the highest index ever stored here */
	uint8_t mem[];
};

struct raft {
	struct raft_config cfg;
	int voter;
	int role;
	uint64_t term;
	int vote;
	int leader;
	int hard_dirty;
	uint64_t hard_commit;     /* the commit last handed out for persistence */

	/* log: entries snap_index+1 .. snap_index+nlog live at log[off .. off+nlog) */
	struct raft_entry *log;
	size_t off, nlog, cap;
	struct log_chunk *chunks, *tail; /* small payloads, oldest chunk first */
	uint64_t snap_index, snap_term;
	uint64_t stable;          /* last durable index */
	int truncate;
	uint64_t truncate_after;
	uint64_t commit, applied;

	int election_elapsed, heartbeat_elapsed, randomized;
	uint64_t rng;

	struct progress pr[RAFT_MAX_MEMBERS];
	int npr;

	int transferee;
	int transfer_elapsed;

	struct msgq now, after;
	struct raft_read *reads;
	size_t nreads, creads;
	struct read_wait *waits;  /* leader: reads waiting to be confirmed */
	size_t nwaits, cwaits;
	uint64_t read_seq;        /* leader: heartbeat rounds started for reads (carried in appends' ctx) */

	int install;
	uint64_t install_index, install_term;

	/* the leader's connection dropped and no leader is known since: a failed campaign tries
	 * again after a short random wait, not a whole election timeout (see raft_peer_lost) */
	int quick;

	/* follower: this term's leader's log and ours match up to leader_match, and its disk holds
	 * its log up to leader_durable (early commit, see follower_commit) */
	uint64_t leader_match, leader_durable;

	/* what the last ready handed out */
	uint64_t rd_persist_to, rd_apply_to;
	int rd_install, rd_truncate;
};

/* ---- small helpers ---- */

static uint64_t rnd(struct raft *r)
{
	/* splitmix64: deterministic from the configured seed */
	uint64_t z = (r->rng += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static void reset_randomized(struct raft *r)
{
	int e = r->cfg.election_ticks;
	r->randomized = e + (int)(rnd(r) % (uint64_t)e);
}

static uint64_t first_index(const struct raft *r) { return r->snap_index + 1; }

uint64_t raft_last_index(const struct raft *r) { return r->snap_index + r->nlog; }

static struct raft_entry *entry_at(const struct raft *r, uint64_t index)
{
	if (index < first_index(r) || index > raft_last_index(r))
		return NULL;
	return &r->log[r->off + (index - first_index(r))];
}

const struct raft_entry *raft_entry(const struct raft *r, uint64_t index) { return entry_at(r, index); }

uint64_t raft_term_at(const struct raft *r, uint64_t index)
{
	if (index == 0)
		return 0;
	if (index == r->snap_index)
		return r->snap_term;
	const struct raft_entry *e = entry_at(r, index);
	return e ? e->term : 0;
}

static uint64_t last_term(const struct raft *r) { return raft_term_at(r, raft_last_index(r)); }

static struct progress *progress(struct raft *r, int id)
{
	for (int i = 0; i < r->npr; i++)
		if (r->pr[i].id == id)
			return &r->pr[i];
	return NULL;
}

static int nvoters(const struct raft *r)
{
	int n = 0;
	for (int i = 0; i < r->npr; i++)
		n += r->pr[i].voter;
	return n;
}

static int quorum(const struct raft *r) { return nvoters(r) / 2 + 1; }

static void send(struct raft *r, int after, struct raft_msg m)
{
	struct msgq *q = after ? &r->after : &r->now;
	if (q->n == q->cap) {
		size_t c = q->cap ? q->cap * 2 : 16;
		struct raft_msg *p = realloc(q->m, c * sizeof(*p));
		if (!p)
			return; /* a lost message: Raft survives it (retries on heartbeat/timeout) */
		q->m = p;
		q->cap = c;
	}
	m.from = r->cfg.id;
	if ((m.type == RAFT_MSG_APPEND || m.type == RAFT_MSG_DURABLE) && r->role == RAFT_LEADER) {
		m.durable = r->stable;
		struct progress *pr = progress(r, m.to);
		if (pr && pr->durable_sent < m.durable)
			pr->durable_sent = m.durable;
	}
	if (!m.term)
		m.term = r->term;
	q->m[q->n++] = m;
}

static void add_read(struct raft *r, uint64_t ctx, uint64_t index, int ok)
{
	if (r->nreads == r->creads) {
		size_t c = r->creads ? r->creads * 2 : 8;
		struct raft_read *p = realloc(r->reads, c * sizeof(*p));
		if (!p)
			return; /* the shell times the read out and asks again */
		r->reads = p;
		r->creads = c;
	}
	r->reads[r->nreads++] = (struct raft_read){ctx, index, ok};
}

static int committed_in_term(const struct raft *r) { return raft_term_at(r, r->commit) == r->term; }

/* Drop queued appends and snapshots: they were made by a leader we no longer are. */
static void drop_leader_msgs(struct raft *r)
{
	struct msgq *qs[2] = {&r->now, &r->after};
	for (int k = 0; k < 2; k++) {
		size_t j = 0;
		for (size_t i = 0; i < qs[k]->n; i++) {
			uint8_t t = qs[k]->m[i].type;
			if (t != RAFT_MSG_APPEND && t != RAFT_MSG_SNAPSHOT && t != RAFT_MSG_TIMEOUT_NOW)
				qs[k]->m[j++] = qs[k]->m[i];
		}
		qs[k]->n = j;
	}
}

static void fail_waits(struct raft *r)
{
	for (size_t i = 0; i < r->nwaits; i++) {
		if (r->waits[i].from == RAFT_NONE)
			add_read(r, r->waits[i].ctx, 0, 0);
		else
			send(r, 0, (struct raft_msg){.type = RAFT_MSG_READ_INDEX_RESP, .to = r->waits[i].from,
						     .ctx = r->waits[i].ctx, .reject = 1});
	}
	r->nwaits = 0;
}

/* ---- log ---- */

static uint8_t *payload_alloc(struct raft *r, size_t len, uint64_t index)
{
	if (len > LOG_SMALL)
		return malloc(len);
	size_t need = (len + 7) & ~(size_t)7;
	struct log_chunk *c = r->tail;
	if (!c || c->used + need > LOG_CHUNK - sizeof(*c)) {
		void *m = mmap(NULL, LOG_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		c = m;
		c->next = NULL;
		c->used = 0;
		c->last = 0;
		if (r->tail)
			r->tail->next = c;
		else
			r->chunks = c;
		r->tail = c;
	}
	uint8_t *p = c->mem + c->used;
	c->used += need;
	if (index > c->last)
		c->last = index;
	return p;
}

static void payload_free(struct raft_entry *e)
{
	if (e->len > LOG_SMALL)
		free(e->data);
	e->data = NULL;
}

/* Unmap the chunks whose entries are all at or below index (all of them when index is 0); the
 * chunk being filled is emptied for reuse instead, so compacting often costs no mmap. */
static void chunks_release(struct raft *r, uint64_t index)
{
	struct log_chunk **pp = &r->chunks, *prev = NULL;
	while (*pp) {
		struct log_chunk *c = *pp;
		if (index && c->last > index) {
			prev = c;
			pp = &c->next;
			continue;
		}
		if (index && c == r->tail && c == r->chunks) {
			c->used = 0;
			c->last = 0;
			return;
		}
		*pp = c->next;
		if (r->tail == c)
			r->tail = prev;
		munmap(c, LOG_CHUNK);
	}
}

static int log_append(struct raft *r, uint64_t term, uint8_t type, const void *data, size_t len)
{
	if (r->off + r->nlog == r->cap) {
		if (r->off > r->cap / 2) {
			memmove(r->log, r->log + r->off, r->nlog * sizeof(*r->log));
			r->off = 0;
		} else {
			size_t c = r->cap ? r->cap * 2 : 1024;
			struct raft_entry *p = realloc(r->log, c * sizeof(*p));
			if (!p)
				return COORD_ENOMEM;
			r->log = p;
			r->cap = c;
		}
	}
	struct raft_entry e = {term, type, (uint32_t)len, NULL};
	if (len) {
		e.data = payload_alloc(r, len, raft_last_index(r) + 1);
		if (!e.data)
			return COORD_ENOMEM;
		memcpy(e.data, data, len);
	}
	r->log[r->off + r->nlog++] = e;
	return COORD_OK;
}

/* Remove every entry after index (a conflicting suffix; never committed ones). */
static void log_truncate_after(struct raft *r, uint64_t index)
{
	while (raft_last_index(r) > index) {
		struct raft_entry *e = &r->log[r->off + r->nlog - 1];
		payload_free(e);
		r->nlog--;
	}
	if (r->leader_match > index)
		r->leader_match = index;
	if (r->stable > index) {
		r->stable = index;
		if (!r->truncate || r->truncate_after > index) {
			r->truncate = 1;
			r->truncate_after = index;
		}
	}
}

static void log_reset(struct raft *r, uint64_t index, uint64_t term)
{
	for (size_t i = 0; i < r->nlog; i++)
		payload_free(&r->log[r->off + i]);
	r->off = r->nlog = 0;
	chunks_release(r, 0);
	r->leader_match = 0;
	r->snap_index = index;
	r->snap_term = term;
}

static int up_to_date(const struct raft *r, uint64_t index, uint64_t term)
{
	uint64_t lt = last_term(r);
	return term > lt || (term == lt && index >= raft_last_index(r));
}

/* ---- roles ---- */

static void reset_term(struct raft *r, uint64_t term)
{
	if (term != r->term) {
		r->term = term;
		r->vote = RAFT_NONE;
		r->hard_dirty = 1;
		r->leader_match = r->leader_durable = 0;
	}
	r->leader = RAFT_NONE;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	reset_randomized(r);
	r->transferee = RAFT_NONE;
	for (int i = 0; i < r->npr; i++)
		r->pr[i].vote = 0;
}

static void become_follower(struct raft *r, uint64_t term, int leader)
{
	int was_leader = r->role == RAFT_LEADER;
	reset_term(r, term);
	r->role = RAFT_FOLLOWER;
	r->leader = leader;
	if (was_leader) {
		drop_leader_msgs(r);
		fail_waits(r);
	}
}

static void bcast_append(struct raft *r, int commit_changed);
static void send_append(struct raft *r, struct progress *pr, int heartbeat, int commit_only);

static void become_leader(struct raft *r)
{
	reset_term(r, r->term);
	r->role = RAFT_LEADER;
	r->leader = r->cfg.id;
	r->quick = 0;
	for (int i = 0; i < r->npr; i++) {
		struct progress *pr = &r->pr[i];
		pr->next = raft_last_index(r) + 1;
		pr->match = pr->id == r->cfg.id ? r->stable : 0;
		pr->durable_sent = 0;
		pr->state = PR_PROBE;
		pr->paused = 0;
		pr->active = 1; /* a new leader gives everyone one election period (check-quorum) */
		pr->was_active = 0;
		pr->ninflight = pr->inflight_head = 0;
		pr->pending_snapshot = 0;
		pr->read_ack = 0;
	}
	r->read_seq = 0;
	/* A no-op of the new term: committing it commits every earlier entry (thesis 3.6.2). */
	if (log_append(r, r->term, RAFT_ENTRY_NOOP, NULL, 0) == COORD_OK) {
		struct progress *self = progress(r, r->cfg.id);
		self->next = raft_last_index(r) + 1;
	}
	bcast_append(r, 0);
}

static void maybe_commit(struct raft *r);

static int tally(struct raft *r, int *granted, int *refused)
{
	*granted = *refused = 0;
	for (int i = 0; i < r->npr; i++) {
		if (!r->pr[i].voter)
			continue;
		*granted += r->pr[i].vote == 1;
		*refused += r->pr[i].vote == 2;
	}
	return quorum(r);
}

static void campaign(struct raft *r, int pre, int transfer)
{
	if (!r->voter)
		return;
	uint64_t term;
	if (pre) {
		reset_term(r, r->term);
		r->role = RAFT_PRE_CANDIDATE;
		term = r->term + 1; /* asked about, not taken: a partitioned member does not inflate terms */
	} else {
		reset_term(r, r->term + 1);
		r->role = RAFT_CANDIDATE;
		r->vote = r->cfg.id;
		r->hard_dirty = 1;
		term = r->term;
	}
	if (r->quick) {
		/* Two followers that saw the same drop may both ask at once and split the vote: each
		 * tries again after its own short random wait (20 ms to about 0.2 s), not after the
		 * election timeout (4 to 8 s with tickTime=2000). */
		r->randomized = 2 + (int)(rnd(r) % 20);
	}
	progress(r, r->cfg.id)->vote = 1;
	int g, f, q = tally(r, &g, &f);
	if (g >= q) {
		if (pre)
			campaign(r, 0, 0);
		else
			become_leader(r);
		return;
	}
	for (int i = 0; i < r->npr; i++) {
		struct progress *pr = &r->pr[i];
		if (!pr->voter || pr->id == r->cfg.id)
			continue;
		struct raft_msg m = {.type = pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, .to = pr->id, .term = term,
				     .index = raft_last_index(r), .log_term = last_term(r), .ctx = (uint64_t)transfer};
		/* A vote request leaves only after our term and self-vote are durable. */
		send(r, !pre, m);
	}
}

/* ---- leader: replication ---- */

static int inflight_full(const struct raft *r, const struct progress *pr)
{
	uint32_t max = r->cfg.max_inflight ? r->cfg.max_inflight : 256;
	if (max > MAX_INFLIGHT_CAP)
		max = MAX_INFLIGHT_CAP;
	return pr->ninflight >= max;
}

static void inflight_add(struct progress *pr, uint64_t last)
{
	pr->inflight[(pr->inflight_head + pr->ninflight) % MAX_INFLIGHT_CAP] = last;
	pr->ninflight++;
}

static void inflight_free_to(struct progress *pr, uint64_t index)
{
	while (pr->ninflight && pr->inflight[pr->inflight_head] <= index) {
		pr->inflight_head = (pr->inflight_head + 1) % MAX_INFLIGHT_CAP;
		pr->ninflight--;
	}
}

static void become_probe(struct progress *pr)
{
	pr->state = PR_PROBE;
	pr->stalled = 0;
	pr->next = pr->match + 1;
	pr->paused = 0;
	pr->ninflight = pr->inflight_head = 0;
}

static void become_replicate(struct progress *pr)
{
	pr->state = PR_REPLICATE;
	pr->stalled = 0;
	pr->next = pr->match + 1;
	pr->paused = 0;
	pr->ninflight = pr->inflight_head = 0;
}

/*
 * Send what pr needs. heartbeat: an empty append anchored at what the follower is known to hold
 * (it always matches), carrying the commit index up to that point.
 */
static void send_append(struct raft *r, struct progress *pr, int heartbeat, int commit_only)
{
	if (pr->id == r->cfg.id)
		return;
	if (heartbeat) {
		uint64_t at = pr->match;
		if (at < r->snap_index)
			at = 0; /* below our log: anchor at 0, which everyone holds */
		send(r, 0, (struct raft_msg){.type = RAFT_MSG_APPEND, .to = pr->id, .index = at,
					     .log_term = raft_term_at(r, at),
					     .commit = r->commit < at ? r->commit : at, .ctx = r->read_seq});
		return;
	}
	if (pr->state == PR_SNAPSHOT || (pr->state == PR_PROBE && pr->paused) ||
	    (pr->state == PR_REPLICATE && inflight_full(r, pr)))
		return;
	uint64_t prev = pr->next - 1;
	if (pr->next < first_index(r) && r->snap_index) {
		/* The entries it needs are compacted: it gets the snapshot instead (thesis 5). */
		pr->state = PR_SNAPSHOT;
		pr->pending_snapshot = r->snap_index;
		send(r, 0, (struct raft_msg){.type = RAFT_MSG_SNAPSHOT, .to = pr->id, .index = r->snap_index,
					     .log_term = r->snap_term});
		return;
	}
	uint64_t last = raft_last_index(r);
	uint32_t max = r->cfg.max_batch ? r->cfg.max_batch : 256;
	uint64_t n = last > prev ? last - prev : 0;
	if (n > max)
		n = max;
	if (r->cfg.max_batch_bytes) { /* and at most that many bytes, but always one entry */
		uint64_t k = 0, bytes = 0;
		while (k < n) {
			uint64_t size = (uint64_t)entry_at(r, prev + 1 + k)->len + ENTRY_OVERHEAD;
			if (k && bytes + size > r->cfg.max_batch_bytes)
				break;
			bytes += size;
			k++;
		}
		n = k;
	}
	if (n == 0) {
		/* Nothing new: only a new commit index may need to travel; not to a voter that will
		 * commit it by itself (follower_commit: it knows our disk holds it). */
		if (commit_only && pr->state == PR_REPLICATE &&
		    !(pr->voter && quorum(r) == 2 && pr->durable_sent >= r->commit))
			send(r, 0, (struct raft_msg){.type = RAFT_MSG_APPEND, .to = pr->id, .index = prev,
						     .log_term = raft_term_at(r, prev), .commit = r->commit,
						     .ctx = r->read_seq});
		return;
	}
	struct raft_msg m = {.type = RAFT_MSG_APPEND, .to = pr->id, .index = prev,
			     .log_term = raft_term_at(r, prev), .commit = r->commit, .nentries = (uint32_t)n,
			     .ctx = r->read_seq};
	send(r, 0, m);
	if (pr->state == PR_REPLICATE && n) {
		pr->next = prev + n + 1;
		inflight_add(pr, prev + n);
	} else if (pr->state == PR_PROBE) {
		pr->paused = 1;
	}
}

/* Send new entries to everyone; with commit_changed, also an empty append to those up to date. */
static void bcast_append(struct raft *r, int commit_changed)
{
	for (int i = 0; i < r->npr; i++)
		send_append(r, &r->pr[i], 0, commit_changed);
}

static void bcast_heartbeat(struct raft *r)
{
	for (int i = 0; i < r->npr; i++) {
		struct progress *pr = &r->pr[i];
		if (pr->id == r->cfg.id)
			continue;
		send_append(r, pr, 1, 0);
		/* A probe or a pipeline that heard nothing for a heartbeat period may have lost a
		 * message: send again from what the follower is known to hold. */
		if (pr->state == PR_PROBE)
			pr->paused = 0;
		else if (pr->state == PR_REPLICATE && !pr->acked && pr->match < raft_last_index(r))
			become_probe(pr);
		else if (pr->state == PR_SNAPSHOT && ++pr->stalled * r->cfg.heartbeat_ticks >= 2 * r->cfg.election_ticks)
			become_probe(pr); /* the snapshot or its answer was lost: offer it again */
		pr->acked = 0;
		send_append(r, pr, 0, 0);
	}
}

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

static void release_read(struct raft *r, const struct read_wait *w)
{
	if (w->from == RAFT_NONE)
		add_read(r, w->ctx, w->index, 1);
	else
		send(r, 0, (struct raft_msg){.type = RAFT_MSG_READ_INDEX_RESP, .to = w->from, .ctx = w->ctx,
					     .index = w->index});
}

/*
 * Read index (thesis 6.4): a read may be answered at the commit index of the moment (here: the
 * higher of it and our stable index, see start_reads) only once a quorum has answered a heartbeat
 * sent after it, proving no newer leader had been elected. Every
 * append carries the newest round in ctx and followers echo it; a round is confirmed when a
 * quorum echoed it.
 */
static void confirm_reads(struct raft *r)
{
	if (!r->nwaits)
		return;
	uint64_t acks[RAFT_MAX_MEMBERS];
	int n = 0;
	for (int i = 0; i < r->npr; i++)
		if (r->pr[i].voter)
			acks[n++] = r->pr[i].id == r->cfg.id ? r->read_seq : r->pr[i].read_ack;
	qsort(acks, (size_t)n, sizeof(acks[0]), cmp_u64_desc);
	uint64_t confirmed = acks[quorum(r) - 1];
	size_t j = 0;
	for (size_t i = 0; i < r->nwaits; i++) {
		if (r->waits[i].seq && r->waits[i].seq <= confirmed)
			release_read(r, &r->waits[i]);
		else
			r->waits[j++] = r->waits[i];
	}
	r->nwaits = j;
}

/* Give waiting reads a heartbeat round (once this term has committed an entry). */
static void start_reads(struct raft *r)
{
	if (!committed_in_term(r))
		return;
	int started = 0;
	for (size_t i = 0; i < r->nwaits; i++) {
		if (!r->waits[i].seq) {
			if (!started)
				r->read_seq++;
			started = 1;
			r->waits[i].seq = r->read_seq;
			/* Not only our commit index: a follower may have applied (and answered its
			 * client) an entry of this term that it and we hold on disk before we counted
			 * its acknowledgement (follower_commit). Every such entry is within our stable
			 * index, so a read waits for that, which covers every acknowledged write. */
			r->waits[i].index = r->commit > r->stable ? r->commit : r->stable;
		}
	}
	if (started)
		for (int i = 0; i < r->npr; i++)
			send_append(r, &r->pr[i], 1, 0);
	confirm_reads(r);
}

static void add_wait(struct raft *r, uint64_t ctx, int from)
{
	if (r->nwaits == r->cwaits) {
		size_t c = r->cwaits ? r->cwaits * 2 : 8;
		struct read_wait *p = realloc(r->waits, c * sizeof(*p));
		if (!p) {
			if (from == RAFT_NONE)
				add_read(r, ctx, 0, 0);
			return; /* a follower's request is simply lost: it asks again */
		}
		r->waits = p;
		r->cwaits = c;
	}
	r->waits[r->nwaits++] = (struct read_wait){ctx, from, 0, 0};
	start_reads(r);
}

static void maybe_commit(struct raft *r)
{
	uint64_t m[RAFT_MAX_MEMBERS];
	int n = 0;
	for (int i = 0; i < r->npr; i++)
		if (r->pr[i].voter)
			m[n++] = r->pr[i].id == r->cfg.id ? r->stable : r->pr[i].match;
	if (!n)
		return;
	qsort(m, (size_t)n, sizeof(m[0]), cmp_u64_desc);
	uint64_t q = m[quorum(r) - 1];
	/* Only an entry of the current term commits by counting (Figure 8, thesis 3.6.2). */
	if (q > r->commit && raft_term_at(r, q) == r->term) {
		r->commit = q;
		bcast_append(r, 1);
		start_reads(r);
	}
}

/* ---- message handlers ---- */

/*
 * Early commit on a follower of a two- or three-voter ensemble: the leader and this member are a
 * quorum, so an entry of the current term that both hold on disk is committed (thesis 3.6: an
 * entry of its term stored on a majority), and this member may apply it without waiting for the
 * leader to count the acknowledgements and say so: that saves two message delays on every
 * write answered by a follower. Only entries known to match the leader's log count (up to
 * leader_match, from appends of this term that succeeded), and the leader's disk is what it said
 * in its appends (leader_durable: its own stable index when it sent them).
 */
static void follower_commit(struct raft *r)
{
	if (r->role != RAFT_FOLLOWER || !r->voter || quorum(r) != 2 || r->leader == RAFT_NONE)
		return;
	uint64_t q = r->leader_durable < r->leader_match ? r->leader_durable : r->leader_match;
	if (q > r->stable)
		q = r->stable;
	if (q > r->commit && raft_term_at(r, q) == r->term)
		r->commit = q;
}

static void handle_append(struct raft *r, const struct raft_msg *m)
{
	r->election_elapsed = 0;
	r->leader = m->from;
	r->quick = 0;
	if (m->durable > r->leader_durable)
		r->leader_durable = m->durable;
	struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from, .ctx = m->ctx};
	if (m->index < r->commit) {
		/* Everything up to our commit matches the leader's log already (Log Matching). */
		resp.index = r->commit;
		send(r, 1, resp);
		follower_commit(r);
		return;
	}
	uint64_t t = raft_term_at(r, m->index);
	if (m->index > raft_last_index(r) || (m->index && t != m->log_term && m->index != r->snap_index) ||
	    (m->index == r->snap_index && m->index && r->snap_term != m->log_term)) {
		resp.reject = 1;
		resp.index = m->index;
		resp.commit = raft_last_index(r) < m->index ? raft_last_index(r) : m->index - 1; /* hint */
		send(r, 1, resp);
		return;
	}
	for (uint32_t i = 0; i < m->nentries; i++) {
		uint64_t idx = m->index + 1 + i;
		const struct raft_entry *e = &m->entries[i];
		if (idx <= raft_last_index(r)) {
			if (raft_term_at(r, idx) == e->term)
				continue;
			if (idx <= r->commit)
				return; /* cannot happen with a correct leader; refuse to break safety */
			log_truncate_after(r, idx - 1);
		}
		if (log_append(r, e->term, e->type, e->data, e->len))
			return; /* out of memory: no answer, the leader retries */
	}
	uint64_t last_new = m->index + m->nentries;
	uint64_t c = m->commit < last_new ? m->commit : last_new;
	if (c > r->commit)
		r->commit = c;
	if (last_new > r->leader_match)
		r->leader_match = last_new;
	follower_commit(r);
	resp.index = last_new;
	send(r, 1, resp);
}

static void handle_append_resp(struct raft *r, const struct raft_msg *m)
{
	struct progress *pr = progress(r, m->from);
	if (!pr)
		return;
	pr->active = 1;
	if (m->ctx > pr->read_ack && m->ctx <= r->read_seq) {
		pr->read_ack = m->ctx; /* it still follows us: reads of that round may be answered */
		confirm_reads(r);
	}
	if (m->reject) {
		uint64_t rejected = m->index, hint = m->commit;
		if (pr->state == PR_REPLICATE) {
			if (rejected <= pr->match)
				return; /* stale */
			become_probe(pr);
		} else if (pr->state == PR_PROBE) {
			if (rejected != pr->next - 1)
				return; /* stale */
		} else {
			return;
		}
		uint64_t next = hint + 1 < rejected ? hint + 1 : rejected;
		if (next < pr->match + 1)
			next = pr->match + 1;
		if (next < 1)
			next = 1;
		pr->next = next;
		pr->paused = 0;
		send_append(r, pr, 0, 0);
		return;
	}
	int advanced = 0;
	if (m->index > pr->match) {
		pr->match = m->index;
		pr->acked = advanced = 1;
	}
	if (pr->next < m->index + 1)
		pr->next = m->index + 1;
	if (pr->state == PR_PROBE)
		become_replicate(pr);
	else if (pr->state == PR_SNAPSHOT) {
		if (pr->match >= pr->pending_snapshot) {
			pr->pending_snapshot = 0;
			become_replicate(pr);
		}
	} else
		inflight_free_to(pr, m->index);
	if (advanced)
		maybe_commit(r);
	send_append(r, pr, 0, 0);
	if (pr->id == r->transferee && pr->match == raft_last_index(r))
		send(r, 0, (struct raft_msg){.type = RAFT_MSG_TIMEOUT_NOW, .to = pr->id});
}

static void handle_vote(struct raft *r, const struct raft_msg *m)
{
	int pre = m->type == RAFT_MSG_PREVOTE;
	struct progress *from = progress(r, m->from);
	int can = pre ? m->term > r->term
		      : (r->vote == m->from || (r->vote == RAFT_NONE && r->leader == RAFT_NONE));
	struct raft_msg resp = {.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, .to = m->from};
	if (r->voter && from && from->voter && can && up_to_date(r, m->index, m->log_term)) {
		resp.term = m->term;
		if (!pre) {
			r->vote = m->from;
			r->hard_dirty = 1;
			r->election_elapsed = 0;
		}
	} else {
		resp.reject = 1;
		resp.term = r->term;
	}
	send(r, !pre, resp); /* a granted vote must be durable before it is known */
}

static void handle_vote_resp(struct raft *r, const struct raft_msg *m)
{
	int pre = m->type == RAFT_MSG_PREVOTE_RESP;
	if ((pre && r->role != RAFT_PRE_CANDIDATE) || (!pre && r->role != RAFT_CANDIDATE))
		return;
	struct progress *pr = progress(r, m->from);
	if (!pr || !pr->voter)
		return;
	if (!pr->vote)
		pr->vote = m->reject ? 2 : 1;
	int g, f, q = tally(r, &g, &f);
	if (g >= q) {
		if (pre)
			campaign(r, 0, 0);
		else
			become_leader(r);
	} else if (f >= q) {
		become_follower(r, r->term, RAFT_NONE);
	}
}

static void handle_snapshot(struct raft *r, const struct raft_msg *m)
{
	r->election_elapsed = 0;
	r->leader = m->from;
	r->quick = 0;
	struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
	if (m->index <= r->commit) {
		resp.index = r->commit;
	} else if (raft_term_at(r, m->index) == m->log_term && m->index <= raft_last_index(r)) {
		/* We hold that entry: the snapshot says it is committed. */
		r->commit = m->index;
		resp.index = m->index;
	} else {
		log_reset(r, m->index, m->log_term);
		r->commit = r->applied = r->stable = m->index;
		r->truncate = 0;
		r->install = 1;
		r->install_index = m->index;
		r->install_term = m->log_term;
		resp.index = m->index;
	}
	send(r, 1, resp);
}

static void handle_read_index(struct raft *r, const struct raft_msg *m)
{
	if (r->role != RAFT_LEADER) {
		send(r, 0, (struct raft_msg){.type = RAFT_MSG_READ_INDEX_RESP, .to = m->from, .ctx = m->ctx, .reject = 1});
		return;
	}
	add_wait(r, m->ctx, m->from);
}

static int in_lease(const struct raft *r)
{
	return r->leader != RAFT_NONE && r->election_elapsed < r->cfg.election_ticks;
}

void raft_step(struct raft *r, const struct raft_msg *m)
{
	if (m->type == 0 || m->type >= RAFT_MSG_TYPE_MAX || m->to != r->cfg.id || !progress(r, m->from) ||
	    m->from == r->cfg.id)
		return;
	if (m->term > r->term) {
		int vote_req = m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE;
		/* Leader lease: while we hear from a leader, a member that only lost its link to it
		 * must not disrupt the ensemble (thesis 4.2.3). A transfer is the leader's own wish. */
		if (vote_req && in_lease(r) && !(m->type == RAFT_MSG_VOTE && m->ctx == 1))
			return;
		if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
			/* asked about a term, nobody took it yet */
		} else if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT) {
			become_follower(r, m->term, m->from);
		} else if (m->type == RAFT_MSG_READ_INDEX || m->type == RAFT_MSG_READ_INDEX_RESP) {
			return; /* read-index traffic carries no authority */
		} else {
			become_follower(r, m->term, RAFT_NONE);
		}
	} else if (m->term < r->term) {
		if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT) {
			/* A stale leader: tell it the term so it steps down. */
			send(r, 0, (struct raft_msg){.type = RAFT_MSG_APPEND_RESP, .to = m->from, .reject = 1,
						     .index = 0, .commit = 0});
		} else if (m->type == RAFT_MSG_PREVOTE) {
			send(r, 0, (struct raft_msg){.type = RAFT_MSG_PREVOTE_RESP, .to = m->from, .reject = 1});
		}
		if (m->type != RAFT_MSG_READ_INDEX && m->type != RAFT_MSG_READ_INDEX_RESP)
			return;
	}
	switch (m->type) {
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
		handle_vote(r, m);
		break;
	case RAFT_MSG_PREVOTE_RESP:
	case RAFT_MSG_VOTE_RESP:
		handle_vote_resp(r, m);
		break;
	case RAFT_MSG_APPEND:
		if (r->role == RAFT_LEADER)
			return; /* two leaders in one term cannot happen */
		if (r->role != RAFT_FOLLOWER)
			become_follower(r, r->term, m->from);
		handle_append(r, m);
		break;
	case RAFT_MSG_APPEND_RESP:
		if (r->role == RAFT_LEADER)
			handle_append_resp(r, m);
		break;
	case RAFT_MSG_DURABLE:
		if (r->role == RAFT_FOLLOWER && r->leader == m->from) {
			if (m->durable > r->leader_durable)
				r->leader_durable = m->durable;
			follower_commit(r);
		}
		break;
	case RAFT_MSG_SNAPSHOT:
		if (r->role == RAFT_LEADER)
			return;
		if (r->role != RAFT_FOLLOWER)
			become_follower(r, r->term, m->from);
		handle_snapshot(r, m);
		break;
	case RAFT_MSG_TIMEOUT_NOW:
		if (r->role != RAFT_LEADER && r->voter)
			campaign(r, 0, 1);
		break;
	case RAFT_MSG_READ_INDEX:
		handle_read_index(r, m);
		break;
	case RAFT_MSG_READ_INDEX_RESP:
		add_read(r, m->ctx, m->index, !m->reject);
		break;
	}
}

void raft_tick(struct raft *r)
{
	r->election_elapsed++;
	if (r->role != RAFT_LEADER) {
		if (r->voter && r->election_elapsed >= r->randomized) {
			r->election_elapsed = 0;
			campaign(r, 1, 0);
		}
		return;
	}
	if (++r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		bcast_heartbeat(r);
	}
	if (r->transferee != RAFT_NONE && ++r->transfer_elapsed >= r->cfg.election_ticks)
		r->transferee = RAFT_NONE; /* the transfer did not happen in time: keep leading */
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		/* Check-quorum: a leader that cannot hear a quorum steps down (thesis 6.2). */
		int active = 0;
		for (int i = 0; i < r->npr; i++) {
			struct progress *pr = &r->pr[i];
			if (pr->voter && (pr->active || pr->id == r->cfg.id))
				active++;
			if (pr->id != r->cfg.id) {
				pr->was_active = pr->active;
				pr->active = 0;
			}
		}
		if (active < quorum(r))
			become_follower(r, r->term, RAFT_NONE);
	}
}

int raft_propose(struct raft *r, uint8_t type, const void *data, size_t len, uint64_t *index)
{
	if (r->role != RAFT_LEADER || r->transferee != RAFT_NONE)
		return COORD_ENOTREADY;
	int err = log_append(r, r->term, type, data, len);
	if (err)
		return err;
	if (index)
		*index = raft_last_index(r);
	bcast_append(r, 0);
	return COORD_OK;
}

void raft_campaign(struct raft *r)
{
	if (r->role != RAFT_LEADER)
		campaign(r, 1, 0);
}

void raft_peer_lost(struct raft *r, int id)
{
	if (r->role == RAFT_FOLLOWER && id != RAFT_NONE && id == r->leader && r->voter) {
		/* Our leader's connection dropped: no need to wait out a timeout to know it. Every
		 * follower saw the same drop, so each waits a short random while (a few ticks, at most a
		 * heartbeat period) before asking: the first to ask usually gets every vote, no split. */
		r->leader = RAFT_NONE;
		r->election_elapsed = 0;
		r->quick = 1;
		int spread = r->cfg.heartbeat_ticks + 1 < 5 ? r->cfg.heartbeat_ticks + 1 : 5;
		r->randomized = 1 + (int)(rnd(r) % (uint64_t)spread);
	}
}

void raft_read_index(struct raft *r, uint64_t ctx)
{
	if (r->role == RAFT_LEADER)
		add_wait(r, ctx, RAFT_NONE);
	else if (r->leader != RAFT_NONE)
		send(r, 0, (struct raft_msg){.type = RAFT_MSG_READ_INDEX, .to = r->leader, .ctx = ctx});
	else
		add_read(r, ctx, 0, 0);
}

int raft_transfer(struct raft *r, int to)
{
	if (r->role != RAFT_LEADER)
		return COORD_ENOTREADY;
	struct progress *pr = progress(r, to);
	if (!pr || !pr->voter || to == r->cfg.id)
		return COORD_EBADARG;
	r->transferee = to;
	r->transfer_elapsed = 0;
	if (pr->match == raft_last_index(r))
		send(r, 0, (struct raft_msg){.type = RAFT_MSG_TIMEOUT_NOW, .to = to});
	else
		send_append(r, pr, 0, 0);
	return COORD_OK;
}

void raft_compact(struct raft *r, uint64_t index, uint64_t term)
{
	if (index <= r->snap_index || index > r->applied || raft_term_at(r, index) != term)
		return;
	uint64_t drop = index - r->snap_index;
	for (uint64_t i = 0; i < drop; i++)
		payload_free(&r->log[r->off + i]);
	r->off += drop;
	r->nlog -= drop;
	r->snap_index = index;
	r->snap_term = term;
	chunks_release(r, index);
	if (!r->nlog) {
		r->off = 0;
		if (r->cap > 65536) {
			/* A big empty array: give it back. */
			free(r->log);
			r->log = NULL;
			r->cap = 0;
		}
	}
}

/* ---- ready / advance ---- */

int raft_ready(struct raft *r, struct raft_ready *rd)
{
	memset(rd, 0, sizeof(*rd));
	if (r->commit != r->hard_commit && r->hard_dirty)
		r->hard_commit = r->commit;
	rd->has_hard = r->hard_dirty;
	rd->hard = (struct raft_hard){r->term, r->vote, r->hard_commit};
	rd->truncate = r->truncate;
	rd->truncate_after = r->truncate_after;
	rd->install_snapshot = r->install;
	rd->snap_index = r->install_index;
	rd->snap_term = r->install_term;
	uint64_t last = raft_last_index(r);
	if (last > r->stable) {
		rd->persist_from = r->stable + 1;
		rd->persist_to = last;
	}
	/* Messages carry ranges of our log: resolve them now that the log holds still. */
	for (size_t i = 0; i < r->now.n; i++) {
		struct raft_msg *m = &r->now.m[i];
		if (m->type == RAFT_MSG_APPEND && m->nentries)
			m->entries = entry_at(r, m->index + 1);
	}
	rd->msgs = r->now.m;
	rd->nmsgs = r->now.n;
	rd->msgs_after = r->after.m;
	rd->nafter = r->after.n;
	uint64_t durable = rd->persist_to ? rd->persist_to : r->stable;
	uint64_t to = r->commit < durable ? r->commit : durable;
	if (to > r->applied) {
		rd->apply_from = r->applied + 1;
		rd->apply_to = to;
	}
	rd->reads = r->reads;
	rd->nreads = r->nreads;
	r->rd_persist_to = rd->persist_to;
	r->rd_apply_to = rd->apply_to;
	return rd->has_hard || rd->truncate || rd->install_snapshot || rd->persist_to || rd->nmsgs || rd->nafter ||
	       rd->apply_to || rd->nreads;
}

void raft_advance(struct raft *r, const struct raft_ready *rd)
{
	r->hard_dirty = 0;
	r->truncate = 0;
	r->install = 0;
	if (rd->persist_to > r->stable)
		r->stable = rd->persist_to;
	if (rd->apply_to > r->applied)
		r->applied = rd->apply_to;
	r->now.n = 0;
	r->after.n = 0;
	r->nreads = 0;
	if (r->role == RAFT_LEADER) {
		struct progress *self = progress(r, r->cfg.id);
		uint64_t was = self->match, commit = r->commit;
		self->match = r->stable;
		maybe_commit(r); /* our own write may complete a quorum */
		/* Tell the followers what our disk now holds (follower_commit), unless the commit
		 * just went out to all of them carrying it. */
		if (self->match > was && r->commit == commit && quorum(r) == 2)
			for (int i = 0; i < r->npr; i++)
				if (r->pr[i].voter && r->pr[i].id != r->cfg.id && r->pr[i].state == PR_REPLICATE)
					send(r, 0, (struct raft_msg){.type = RAFT_MSG_DURABLE, .to = r->pr[i].id,
								     .commit = r->commit});
	} else {
		follower_commit(r); /* our own write may complete a quorum with the leader's */
	}
}

/* ---- construction, status ---- */

int raft_new(const struct raft_config *cfg, const struct raft_hard *hs, uint64_t snap_index,
	     uint64_t snap_term, struct raft **out)
{
	if (cfg->nmembers < 1 || cfg->nmembers > RAFT_MAX_MEMBERS || cfg->election_ticks < 2 ||
	    cfg->heartbeat_ticks < 1 || cfg->heartbeat_ticks >= cfg->election_ticks)
		return COORD_EBADCONFIG;
	struct raft *r = calloc(1, sizeof(*r));
	if (!r)
		return COORD_ENOMEM;
	r->cfg = *cfg;
	r->rng = cfg->seed ^ ((uint64_t)cfg->id << 32);
	int found = 0;
	for (int i = 0; i < cfg->nmembers; i++) {
		r->pr[i].id = cfg->members[i].id;
		r->pr[i].voter = cfg->members[i].voter;
		if (cfg->members[i].id == cfg->id) {
			found = 1;
			r->voter = cfg->members[i].voter;
		}
	}
	r->npr = cfg->nmembers;
	if (!found || !nvoters(r)) {
		free(r);
		return COORD_EBADCONFIG;
	}
	r->term = hs ? hs->term : 0;
	r->vote = hs ? hs->vote : RAFT_NONE;
	r->snap_index = snap_index;
	r->snap_term = snap_term;
	r->commit = r->applied = r->stable = snap_index;
	r->hard_commit = hs ? hs->commit : 0;
	r->role = RAFT_FOLLOWER;
	reset_randomized(r);
	*out = r;
	return COORD_OK;
}

int raft_load(struct raft *r, uint64_t term, uint8_t type, const void *data, size_t len)
{
	int err = log_append(r, term, type, data, len);
	if (err)
		return err;
	r->stable = raft_last_index(r);
	/* The persisted commit index says how much of the durable log may be applied at once; the
	 * sole voter of an ensemble of one committed everything it made durable. */
	uint64_t c = r->hard_commit < r->stable ? r->hard_commit : r->stable;
	if (r->voter && nvoters(r) == 1)
		c = r->stable;
	if (c > r->commit)
		r->commit = c;
	return COORD_OK;
}

void raft_set_applied(struct raft *r, uint64_t index)
{
	r->applied = index;
	if (r->commit < index)
		r->commit = index;
}

void raft_free(struct raft *r)
{
	if (!r)
		return;
	log_reset(r, 0, 0);
	free(r->log);
	free(r->now.m);
	free(r->after.m);
	free(r->reads);
	free(r->waits);
	free(r);
}

void raft_status(const struct raft *r, struct raft_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = r->cfg.id;
	st->role = r->role;
	st->leader = r->leader;
	st->term = r->term;
	st->commit = r->commit;
	st->applied = r->applied;
	st->first_index = first_index(r);
	st->last_index = raft_last_index(r);
	st->persisted = r->stable;
	st->voter = r->voter;
	for (int i = 0; i < r->npr; i++) {
		st->peers[i].id = r->pr[i].id;
		st->peers[i].match = r->pr[i].id == r->cfg.id ? r->stable : r->pr[i].match;
		st->peers[i].next = r->pr[i].next;
		/* Heard from within the last one to two election periods: check-quorum clears `active` at
		 * the start of each, so alone it would call every member silent for a moment each time. */
		st->peers[i].active = r->pr[i].active || r->pr[i].was_active;
	}
	st->npeers = r->npr;
}

int raft_role(const struct raft *r) { return r->role; }
int raft_transferring(const struct raft *r) { return r->role == RAFT_LEADER && r->transferee != RAFT_NONE; }
int raft_leader(const struct raft *r) { return r->leader; }
uint64_t raft_term(const struct raft *r) { return r->term; }
uint64_t raft_commit(const struct raft *r) { return r->commit; }

const char *raft_role_name(int role)
{
	static const char *names[] = {"follower", "pre-candidate", "candidate", "leader"};
	return role >= 0 && role <= RAFT_LEADER ? names[role] : "unknown";
}

const char *raft_msg_name(int type)
{
	static const char *names[] = {"?", "prevote", "prevote-resp", "vote", "vote-resp", "append",
				      "append-resp", "snapshot", "timeout-now", "read-index", "read-index-resp", "durable"};
	return type > 0 && type < RAFT_MSG_TYPE_MAX ? names[type] : "unknown";
}
