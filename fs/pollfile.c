/*
 * pollfile.c: .watch instances (see pollfile.h).
 *
 * An instance's output is a byte stream of whole lines: `q` holds what no read has taken yet;
 * `chunk` is what the last read returned, at file offset chunk_off. The next read or write at
 * offset `off` first "settles" the chunk: bytes of it before `off` were consumed, the rest go back
 * to the front of q. A plain reader (cat) reads at chunk_off + chunk_len and consumes everything;
 * bash's read builtin reads a block, takes one line and seeks back, so its next read gets the
 * other lines again. Writes of commands move the shared file offset too, which settles the same way.
 *
 * A blocked read is a kept fuse_req_t. Its interrupt callback runs on a FUSE worker with the
 * request's lock held, so it only marks the read and wakes the invalidation thread, which answers
 * (never from inside the callback: answering frees the request under libfuse's feet). Before any
 * kept request is answered, its interrupt callback is unregistered with no lock of ours held.
 */
#include "pollfile.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inval.h"
#include "path.h"

#define QUEUE_MAX (1u << 20)   /* bytes of unread lines before an instance overflows */
#define CMD_MAX (COORD_MAX_PATH + 32)

struct wspec {
	struct wspec *next;
	int recursive;
	size_t len;
	char path[];
};

struct pread {
	struct pread *next;
	fuse_req_t req;
	size_t size;
	off_t off;
	int interrupted;
	struct pollset *ps;
	/* the answer, once there is one */
	int err;
	char *data;
	size_t len;
};

struct pwatch {
	struct pwatch *prev, *next;
	struct wspec *specs;
	char *q;
	size_t qhead, qlen, qcap;      /* unread bytes are q[qhead .. qhead+qlen) */
	char *chunk;
	size_t chunk_len;
	off_t chunk_off;
	int has_chunk;
	char cmd[CMD_MAX];            /* a command line still missing its newline */
	size_t cmd_len;
	struct pread *reads;
	struct fuse_pollhandle *ph;
	char last_children[COORD_MAX_PATH + 32]; /* dedupe "children P Z" from one rename */
};

struct pollset {
	struct coordfs *fs;
	pthread_mutex_t mu;
	struct pwatch *all;
};

/* Kept reads answered under the lock, to be sent once it is let go (newest first), and pollers to wake. */
struct outbox {
	struct pread *reads;
	struct fuse_pollhandle **phs;
	size_t nph, cph;
};

struct pollset *pollset_new(struct coordfs *fs)
{
	struct pollset *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	ps->fs = fs;
	pthread_mutex_init(&ps->mu, NULL);
	return ps;
}

static void free_specs(struct wspec *s)
{
	while (s) {
		struct wspec *n = s->next;
		free(s);
		s = n;
	}
}

static void free_watch(struct pwatch *w)
{
	/* Kept reads still here: the mount is gone and nobody can be answered any more. */
	while (w->reads) {
		struct pread *pr = w->reads;
		w->reads = pr->next;
		free(pr);
	}
	free_specs(w->specs);
	free(w->q);
	free(w->chunk);
	if (w->ph)
		fuse_pollhandle_destroy(w->ph);
	free(w);
}

void pollset_free(struct pollset *ps)
{
	if (!ps)
		return;
	while (ps->all) {
		struct pwatch *w = ps->all;
		ps->all = w->next;
		free_watch(w);
	}
	pthread_mutex_destroy(&ps->mu);
	free(ps);
}

struct pwatch *pwatch_open(struct pollset *ps)
{
	struct pwatch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	pthread_mutex_lock(&ps->mu);
	w->next = ps->all;
	if (ps->all)
		ps->all->prev = w;
	ps->all = w;
	pthread_mutex_unlock(&ps->mu);
	return w;
}

void pwatch_release(struct pollset *ps, struct pwatch *w)
{
	pthread_mutex_lock(&ps->mu);
	if (w->prev)
		w->prev->next = w->next;
	else
		ps->all = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&ps->mu);
	free_watch(w);
}

/* ---- the byte queue ---- */

static int q_reserve(struct pwatch *w, size_t extra)
{
	if (w->qhead && w->qhead + w->qlen + extra > w->qcap) {
		memmove(w->q, w->q + w->qhead, w->qlen);
		w->qhead = 0;
	}
	if (w->qlen + extra <= w->qcap)
		return 0;
	size_t c = w->qcap ? w->qcap : 4096;
	while (c < w->qlen + extra)
		c *= 2;
	char *p = realloc(w->q, c);
	if (!p)
		return -1;
	w->q = p;
	w->qcap = c;
	return 0;
}

static void q_append(struct pwatch *w, const char *s, size_t n)
{
	if (w->qlen + n > QUEUE_MAX || q_reserve(w, n)) {
		/* The reader fell behind: what it missed is summed up in one line. */
		static const char ov[] = "overflow\n";
		w->qhead = 0;
		w->qlen = 0;
		if (q_reserve(w, sizeof(ov) - 1) == 0) {
			memcpy(w->q, ov, sizeof(ov) - 1);
			w->qlen = sizeof(ov) - 1;
		}
		return;
	}
	memcpy(w->q + w->qhead + w->qlen, s, n);
	w->qlen += n;
}

static void q_prepend(struct pwatch *w, const char *s, size_t n)
{
	if (w->qhead >= n) {
		w->qhead -= n;
	} else {
		if (q_reserve(w, n))
			return; /* cannot keep them: the reader loses the re-read, not the stream */
		memmove(w->q + w->qhead + n, w->q + w->qhead, w->qlen);
	}
	memcpy(w->q + w->qhead, s, n);
	w->qlen += n;
}

/* Bytes of the last chunk before `off` were consumed; the rest are unread again. */
static void settle(struct pwatch *w, off_t off)
{
	if (!w->has_chunk)
		return;
	size_t consumed = 0;
	if (off > w->chunk_off)
		consumed = (uint64_t)(off - w->chunk_off) > w->chunk_len ? w->chunk_len : (size_t)(off - w->chunk_off);
	if (consumed < w->chunk_len)
		q_prepend(w, w->chunk + consumed, w->chunk_len - consumed);
	w->has_chunk = 0;
	w->chunk_len = 0;
}

/* Take whole lines (at most size bytes; a first line longer than size is cut) as the new chunk. */
static size_t take(struct pwatch *w, size_t size, off_t off)
{
	const char *p = w->q + w->qhead;
	size_t n = 0;
	while (n < w->qlen) {
		const char *nl = memchr(p + n, '\n', w->qlen - n);
		size_t end = nl ? (size_t)(nl - p) + 1 : w->qlen;
		if (end > size)
			break;
		n = end;
	}
	if (n == 0)
		n = w->qlen < size ? w->qlen : size;
	char *c = realloc(w->chunk, n ? n : 1);
	if (!c)
		return 0;
	w->chunk = c;
	memcpy(c, p, n);
	w->chunk_len = n;
	w->chunk_off = off;
	w->has_chunk = 1;
	w->qhead += n;
	w->qlen -= n;
	if (!w->qlen)
		w->qhead = 0;
	return n;
}

static void box_answer(struct outbox *ob, struct pread *pr, int err, const char *data, size_t len)
{
	pr->err = err;
	pr->len = 0;
	pr->data = NULL;
	if (!err && len) {
		pr->data = malloc(len);
		if (pr->data) {
			memcpy(pr->data, data, len);
			pr->len = len;
		} else {
			pr->err = ENOMEM;
		}
	}
	pr->next = ob->reads;
	ob->reads = pr;
}

/* Answer the kept reads that can be answered now, and wake pollers. Lock held. */
static void serve(struct pwatch *w, struct outbox *ob)
{
	while (w->reads && w->qlen) {
		struct pread *pr = w->reads;
		w->reads = pr->next;
		settle(w, pr->off);
		size_t n = take(w, pr->size, pr->off);
		box_answer(ob, pr, 0, w->chunk, n);
	}
	if (w->qlen && w->ph) {
		if (ob->nph == ob->cph) {
			size_t c = ob->cph ? ob->cph * 2 : 8;
			struct fuse_pollhandle **p = realloc(ob->phs, c * sizeof(*p));
			if (!p)
				return;
			ob->phs = p;
			ob->cph = c;
		}
		ob->phs[ob->nph++] = w->ph;
		w->ph = NULL;
	}
}

/* Send what serve() prepared. No lock held. */
static void deliver(struct outbox *ob)
{
	struct pread *rev = NULL;
	while (ob->reads) {
		struct pread *pr = ob->reads;
		ob->reads = pr->next;
		pr->next = rev;
		rev = pr;
	}
	while (rev) {
		struct pread *pr = rev;
		rev = pr->next;
		/* No interrupt callback may run once the request is answered (and freed). */
		fuse_req_interrupt_func(pr->req, NULL, NULL);
		if (pr->err)
			fuse_reply_err(pr->req, pr->err);
		else
			fuse_reply_buf(pr->req, pr->data, pr->len);
		free(pr->data);
		free(pr);
	}
	for (size_t i = 0; i < ob->nph; i++) {
		fuse_lowlevel_notify_poll(ob->phs[i]);
		fuse_pollhandle_destroy(ob->phs[i]);
	}
	free(ob->phs);
}

/* ---- commands ---- */

struct cmd {
	int drop, recursive;
	const char *path;
	size_t len;
};

static int parse_cmd(const char *line, size_t n, struct cmd *c)
{
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
		n--;
	while (n && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	memset(c, 0, sizeof(*c));
	if (!n)
		return 1; /* blank: ignored */
	if (*line == '-') {
		c->drop = 1;
		line++;
		n--;
	}
	const char *sp = memchr(line, ' ', n);
	size_t plen = sp ? (size_t)(sp - line) : n;
	if (sp) {
		const char *w = sp;
		size_t rest = n - plen;
		while (rest && *w == ' ') {
			w++;
			rest--;
		}
		if (rest != 9 || memcmp(w, "recursive", 9) != 0)
			return -EINVAL;
		c->recursive = 1;
	}
	if (coord_path_check(line, plen, 0, NULL, 0) != 0)
		return plen > COORD_MAX_PATH ? -ENAMETOOLONG : -EINVAL;
	c->path = line;
	c->len = plen;
	return 0;
}

static int apply_cmd(struct pwatch *w, const struct cmd *c)
{
	for (struct wspec **pp = &w->specs; *pp; pp = &(*pp)->next) {
		struct wspec *s = *pp;
		if (s->len == c->len && !memcmp(s->path, c->path, c->len) && (c->drop || s->recursive == c->recursive)) {
			if (c->drop) {
				*pp = s->next;
				free(s);
			}
			return 0;
		}
	}
	if (c->drop)
		return -ENOENT;
	struct wspec *s = malloc(sizeof(*s) + c->len + 1);
	if (!s)
		return -ENOMEM;
	s->recursive = c->recursive;
	s->len = c->len;
	memcpy(s->path, c->path, c->len);
	s->path[c->len] = 0;
	s->next = w->specs;
	w->specs = s;
	return 0;
}

/* Check every complete line of buf (after the saved partial line), then apply them all. */
static int run_cmds(struct pwatch *w, const char *buf, size_t size, int final)
{
	char *all = malloc(w->cmd_len + size + 1);
	if (!all)
		return -ENOMEM;
	memcpy(all, w->cmd, w->cmd_len);
	memcpy(all + w->cmd_len, buf, size);
	size_t total = w->cmd_len + size;
	int rc = 0;
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		size_t start = 0;
		while (start < total) {
			const char *nl = memchr(all + start, '\n', total - start);
			if (!nl && !final)
				break;
			size_t end = nl ? (size_t)(nl - all) : total;
			struct cmd c;
			int prc = parse_cmd(all + start, end - start, &c);
			if (prc < 0) {
				rc = prc;
				break;
			}
			if (pass == 1 && prc == 0) {
				int arc = apply_cmd(w, &c);
				if (arc && rc == 0)
					rc = arc;
			}
			start = end + 1;
		}
		if (pass == 1 && rc >= 0) {
			size_t rest = start < total ? total - start : 0;
			if (rest > CMD_MAX) {
				rc = -ENAMETOOLONG;
				rest = 0;
			}
			memcpy(w->cmd, all + total - rest, rest);
			w->cmd_len = rest;
		}
	}
	free(all);
	return rc;
}

ssize_t pwatch_write(struct pollset *ps, struct pwatch *w, const char *buf, size_t size, off_t off)
{
	pthread_mutex_lock(&ps->mu);
	settle(w, off);
	int rc = run_cmds(w, buf, size, 0);
	pthread_mutex_unlock(&ps->mu);
	return rc < 0 ? rc : (ssize_t)size;
}

int pwatch_flush(struct pollset *ps, struct pwatch *w)
{
	pthread_mutex_lock(&ps->mu);
	int rc = 0;
	if (w->cmd_len) {
		rc = run_cmds(w, "", 0, 1);
		w->cmd_len = 0;
	}
	pthread_mutex_unlock(&ps->mu);
	return rc < 0 ? -rc : 0;
}

/* ---- reads and polls ---- */

static void on_interrupt(fuse_req_t req, void *data)
{
	struct pread *pr = data;
	struct pollset *ps = pr->ps;
	pthread_mutex_lock(&ps->mu);
	pr->interrupted = 1;
	pthread_mutex_unlock(&ps->mu);
	inval_kick(ps->fs);
}

void pwatch_read(struct pollset *ps, struct pwatch *w, fuse_req_t req, size_t size, off_t off, int nonblock)
{
	pthread_mutex_lock(&ps->mu);
	settle(w, off);
	if (w->qlen) {
		size_t n = take(w, size, off);
		char *copy = malloc(n ? n : 1);
		if (copy)
			memcpy(copy, w->chunk, n);
		pthread_mutex_unlock(&ps->mu);
		if (copy)
			fuse_reply_buf(req, copy, n);
		else
			fuse_reply_err(req, ENOMEM);
		free(copy);
		return;
	}
	pthread_mutex_unlock(&ps->mu);
	if (nonblock) {
		fuse_reply_err(req, EAGAIN);
		return;
	}
	struct pread *pr = calloc(1, sizeof(*pr));
	if (!pr) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pr->req = req;
	pr->size = size;
	pr->off = off;
	pr->ps = ps;
	/* Register before anyone else can see pr: an interrupt that already came calls back now. */
	fuse_req_interrupt_func(req, on_interrupt, pr);
	pthread_mutex_lock(&ps->mu);
	if (!pr->interrupted && !w->qlen) {
		struct pread **pp = &w->reads;
		while (*pp)
			pp = &(*pp)->next;
		*pp = pr;
		pthread_mutex_unlock(&ps->mu);
		return;
	}
	/* Interrupted already, or a line came meanwhile. */
	struct outbox ob;
	memset(&ob, 0, sizeof(ob));
	if (pr->interrupted) {
		box_answer(&ob, pr, EINTR, NULL, 0);
	} else {
		pr->next = w->reads;
		w->reads = pr;
		serve(w, &ob);
	}
	pthread_mutex_unlock(&ps->mu);
	deliver(&ob);
}

void pwatch_poll(struct pollset *ps, struct pwatch *w, fuse_req_t req, struct fuse_pollhandle *ph)
{
	struct fuse_pollhandle *old = NULL;
	pthread_mutex_lock(&ps->mu);
	unsigned revents = POLLOUT | POLLWRNORM;
	if (w->qlen)
		revents |= POLLIN | POLLRDNORM;
	if (ph) {
		old = w->ph;
		w->ph = ph;
	}
	pthread_mutex_unlock(&ps->mu);
	if (old)
		fuse_pollhandle_destroy(old);
	fuse_reply_poll(req, revents);
}

void pollset_reap(struct pollset *ps)
{
	struct outbox ob;
	memset(&ob, 0, sizeof(ob));
	pthread_mutex_lock(&ps->mu);
	for (struct pwatch *w = ps->all; w; w = w->next) {
		struct pread **pp = &w->reads;
		while (*pp) {
			struct pread *pr = *pp;
			if (pr->interrupted) {
				*pp = pr->next;
				box_answer(&ob, pr, EINTR, NULL, 0);
			} else {
				pp = &pr->next;
			}
		}
	}
	pthread_mutex_unlock(&ps->mu);
	deliver(&ob);
}

/* ---- events ---- */

static const char *ev_name(uint8_t type)
{
	switch (type) {
	case COORD_EV_CREATED:
		return "created";
	case COORD_EV_DELETED:
		return "deleted";
	case COORD_EV_CHANGED:
		return "changed";
	case COORD_EV_CHILDREN:
		return "children";
	default:
		return NULL;
	}
}

static int same_path(const struct wspec *s, const char *p, size_t len)
{
	return s->len == len && !memcmp(s->path, p, len);
}

void pollset_event(struct pollset *ps, uint8_t type, const char *path, uint64_t zxid)
{
	const char *name = ev_name(type);
	if (!name)
		return;
	size_t len = strlen(path);
	size_t plen = coord_path_parent_len(path, len);
	char line[COORD_MAX_PATH + 64], kids[COORD_MAX_PATH + 64];
	int ln = snprintf(line, sizeof(line), "%s %s 0x%llx\n", name, path, (unsigned long long)zxid);
	if (ln < 0 || (size_t)ln >= sizeof(line))
		return;
	struct outbox ob;
	memset(&ob, 0, sizeof(ob));
	pthread_mutex_lock(&ps->mu);
	for (struct pwatch *w = ps->all; w; w = w->next) {
		int own = 0, parent = 0;
		for (const struct wspec *s = w->specs; s; s = s->next) {
			if (s->recursive) {
				if (coord_path_under(path, len, s->path, s->len))
					own = 1;
				continue;
			}
			if (same_path(s, path, len))
				own = 1;
			if (type == COORD_EV_CHILDREN && same_path(s, path, len))
				own = 1;
			if ((type == COORD_EV_CREATED || type == COORD_EV_DELETED) && len > 1 && same_path(s, path, plen))
				parent = 1;
		}
		if (own)
			q_append(w, line, (size_t)ln);
		if (parent) {
			int kn = snprintf(kids, sizeof(kids), "children %.*s 0x%llx\n", (int)plen, path,
					  (unsigned long long)zxid);
			if (kn > 0 && (size_t)kn < sizeof(kids) && strcmp(kids, w->last_children) != 0) {
				q_append(w, kids, (size_t)kn);
				memcpy(w->last_children, kids, (size_t)kn + 1);
			}
		}
		if (own || parent)
			serve(w, &ob);
	}
	pthread_mutex_unlock(&ps->mu);
	deliver(&ob);
}

void pollset_line(struct pollset *ps, const char *text)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%s\n", text);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	struct outbox ob;
	memset(&ob, 0, sizeof(ob));
	pthread_mutex_lock(&ps->mu);
	for (struct pwatch *w = ps->all; w; w = w->next) {
		q_append(w, line, (size_t)n);
		w->last_children[0] = 0;
		serve(w, &ob);
	}
	pthread_mutex_unlock(&ps->mu);
	deliver(&ob);
}
