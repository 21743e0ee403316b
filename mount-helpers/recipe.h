/*
 * recipe.h: what the recipe tools share (coord-lock, coord-elect, coord-watch, coord-register,
 * coord-pick). They work through a coordfs mount only, as a script could: a path is resolved to
 * its mount and its znode path; a queue is a directory with the ephemeral,sequential child policy;
 * waiting is a .watch instance read under poll(2), next to a signalfd. No tool polls on a timer.
 *
 * Header only: CMake makes one executable of each C file in mount-helpers/, so each tool compiles its
 * own copy of these static functions (RX_FN marks them unused-ok).
 *
 * Ownership: a node a tool creates belongs to the mount's session, not to the tool's process. So
 * each tool that creates one starts a guard (rx_guard_*): a child process that holds the read end
 * of a pipe and, when the tool ends without cleaning up (kill -9 included), signals the tool's
 * command and deletes the node. A tool that ends normally cleans up itself; the guard then
 * sees end of file with nothing to do.
 */
#ifndef COORD_RECIPE_H
#define COORD_RECIPE_H

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define RX_FN static __attribute__((unused))

/* Exit statuses the tools share (README: "Recipes"). */
#define RX_EX_USAGE 64   /* bad arguments (flock(1) and sysexits.h) */
#define RX_EX_SETUP 69   /* not a coordfs mount, the directory cannot be made, bad policy */
#define RX_EX_LOST 75    /* the session was lost while the command held the lock or led */
#define RX_EX_NOEXEC 126 /* the command cannot be run */
#define RX_EX_NOTFOUND 127

#define RX_SEQ_DIGITS 10
#define RX_LINE_MAX (PATH_MAX + 64)

static const char *rx_prog = "coord-recipe";

RX_FN void rx_vmsg(const char *fmt, va_list ap)
{
	char buf[2 * PATH_MAX];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One write: lines of concurrent tools sharing a log do not interleave. */
	dprintf(STDERR_FILENO, "%s: %s\n", rx_prog, buf);
}

RX_FN __attribute__((format(printf, 1, 2))) void rx_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rx_vmsg(fmt, ap);
	va_end(ap);
}

RX_FN __attribute__((format(printf, 2, 3), noreturn)) void rx_die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rx_vmsg(fmt, ap);
	va_end(ap);
	exit(status);
}

RX_FN int64_t rx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2", "0.5": seconds as milliseconds; -1 when it is not a number of seconds. */
RX_FN int64_t rx_parse_seconds(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= 0) || v > 100000000)
		return -1;
	return (int64_t)(v * 1000 + 0.5);
}

/* Copy a string into dst[size], cut if need be; returns 1 when it was cut. */
RX_FN int rx_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	int cut = n >= size;
	if (cut)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
	return cut;
}

/* ---- paths: a file on this host -> its mount and znode path ---- */

struct rx_mount {
	char root[PATH_MAX];  /* the mount point, e.g. /coord */
	char fpath[PATH_MAX]; /* the path on this host, absolute and canonical, e.g. /coord/locks/x */
	char zpath[PATH_MAX]; /* the znode path, e.g. /locks/x */
};

/* Undo /proc/self/mountinfo's octal escapes (\040 for a space) in place. */
RX_FN void rx_unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
		    p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
}

/* Make path absolute and canonical: the longest prefix that exists goes through realpath(3), the
 * rest (names still to be created) is appended as written. Returns 0 or an errno. */
RX_FN int rx_canonical(const char *path, char *out, size_t outlen)
{
	char abs[PATH_MAX];
	if (path[0] == '/') {
		if (snprintf(abs, sizeof(abs), "%s", path) >= (int)sizeof(abs))
			return ENAMETOOLONG;
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)))
			return errno;
		if (snprintf(abs, sizeof(abs), "%s/%s", cwd, path) >= (int)sizeof(abs))
			return ENAMETOOLONG;
	}
	size_t n = strlen(abs);
	while (n > 1 && abs[n - 1] == '/')
		abs[--n] = 0;
	char head[PATH_MAX], real[PATH_MAX];
	memcpy(head, abs, n + 1);
	const char *rest = ""; /* the part that does not exist, inside abs */
	for (;;) {
		if (realpath(head, real)) {
			const char *sep = (*rest && strcmp(real, "/") != 0) ? "/" : "";
			if (snprintf(out, outlen, "%s%s%s", real, sep, rest) >= (int)outlen)
				return ENAMETOOLONG;
			return 0;
		}
		if (errno != ENOENT)
			return errno;
		char *slash = strrchr(head, '/');
		if (!slash)
			return ENOENT;
		rest = abs + (slash - head) + 1;
		if (slash == head)
			head[1] = 0; /* "/" exists */
		else
			*slash = 0;
		/* "." and ".." in a part that does not exist cannot be resolved. */
		for (const char *p = rest; *p;) {
			size_t l = strcspn(p, "/");
			if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
				return ENOENT;
			p += l;
			while (*p == '/')
				p++;
		}
	}
}

/* Find the coordfs mount that holds path. Returns 0, or an errno with *why set. */
RX_FN int rx_resolve(const char *path, struct rx_mount *m, const char **why)
{
	int rc = rx_canonical(path, m->fpath, sizeof(m->fpath));
	if (rc) {
		*why = "cannot resolve the path";
		return rc;
	}
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		*why = "cannot read /proc/self/mountinfo";
		return errno;
	}
	/* id parent major:minor root MOUNTPOINT options [optional fields...] - FSTYPE source superopts */
	char line[3 * PATH_MAX];
	size_t best = 0;
	m->root[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		char *tok[64], *save = NULL;
		int nt = 0;
		for (char *t = strtok_r(line, " \n", &save); t && nt < 64; t = strtok_r(NULL, " \n", &save))
			tok[nt++] = t;
		int dash = 6;
		while (dash < nt && strcmp(tok[dash], "-") != 0)
			dash++;
		if (dash + 1 >= nt || strcmp(tok[dash + 1], "fuse.coordfs") != 0)
			continue;
		char *mp = tok[4];
		rx_unescape(mp);
		size_t l = strlen(mp);
		int under = !strcmp(mp, "/") ||
			    (!strncmp(m->fpath, mp, l) && (m->fpath[l] == 0 || m->fpath[l] == '/'));
		if (under && l >= best) {
			best = l;
			rx_copy(m->root, sizeof(m->root), mp);
		}
	}
	fclose(f);
	if (!m->root[0]) {
		*why = "not on a coordfs mount (mount one first: coordfs HOSTS MOUNTPOINT, or mount-helpers/coord-up)";
		return ENOENT;
	}
	const char *z = strcmp(m->root, "/") ? m->fpath + strlen(m->root) : m->fpath;
	rx_copy(m->zpath, sizeof(m->zpath), *z ? z : "/");
	return 0;
}

/* dir/name into out (PATH_MAX); 1 when it did not fit (then cut). */
RX_FN int rx_join(char *out, const char *dir, const char *name)
{
	size_t d = strlen(dir), n = strlen(name);
	if (d == 1 && dir[0] == '/')
		d = 0;
	if (d + 1 + n >= PATH_MAX) {
		rx_copy(out, PATH_MAX, dir);
		return 1;
	}
	memcpy(out, dir, d);
	out[d] = '/';
	memcpy(out + d + 1, name, n + 1);
	return 0;
}

/* mkdir -p of an absolute path; 0 or an errno. */
RX_FN int rx_mkdirs(const char *path)
{
	char p[PATH_MAX];
	rx_copy(p, sizeof(p), path);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0755) && errno != EEXIST)
				return errno;
			*s = c;
			if (!c)
				break;
		}
	}
	struct stat st;
	if (stat(path, &st))
		return errno;
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

/* Make dir (mkdir -p) and give it the child policy `policy` ("ephemeral,sequential"); a directory
 * that already has it is fine, one with another policy is an error (*why says which). */
RX_FN int rx_policy_dir(const char *dir, const char *policy, char *why, size_t whylen)
{
	int rc = rx_mkdirs(dir);
	if (rc) {
		snprintf(why, whylen, "cannot make the directory %s: %s", dir, strerror(rc));
		return rc;
	}
	char cur[64];
	ssize_t n = getxattr(dir, "user.coord.children", cur, sizeof(cur) - 1);
	if (n < 0) {
		snprintf(why, whylen, "cannot read the child policy of %s: %s", dir, strerror(errno));
		return errno;
	}
	cur[n] = 0;
	if (!strcmp(cur, "none")) {
		/* Set once: of two tools racing here one sets it, the other finds it set (EPERM). */
		if (setxattr(dir, "user.coord.children", policy, strlen(policy), 0) && errno != EPERM) {
			snprintf(why, whylen, "cannot set the child policy of %s: %s", dir, strerror(errno));
			return errno;
		}
		n = getxattr(dir, "user.coord.children", cur, sizeof(cur) - 1);
		if (n < 0) {
			snprintf(why, whylen, "cannot read the child policy of %s: %s", dir, strerror(errno));
			return errno;
		}
		cur[n] = 0;
	}
	if (strcmp(cur, policy) != 0) {
		snprintf(why, whylen, "%s has the child policy '%s', not '%s': give a directory of its own", dir,
			 cur, policy);
		return EPERM;
	}
	return 0;
}

/* The sequence number of a sequential name (its last 10 characters), or -1. */
RX_FN int64_t rx_seq_of(const char *name)
{
	size_t n = strlen(name);
	if (n < RX_SEQ_DIGITS)
		return -1;
	int64_t v = 0;
	for (size_t i = n - RX_SEQ_DIGITS; i < n; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (name[i] - '0');
	}
	return v;
}

/* A directory's children. Entries are malloc'd; free with rx_names_free. With fresh set, the
 * directory is fsync'd first: the mount syncs with the leader, so the list is not older than any
 * write that completed anywhere before the call. */
struct rx_names {
	char **v;
	size_t n;
};

RX_FN void rx_names_free(struct rx_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	ns->v = NULL;
	ns->n = 0;
}

RX_FN int rx_list(const char *dir, int fresh, struct rx_names *ns)
{
	ns->v = NULL;
	ns->n = 0;
	/* Sync first, on a descriptor of its own: a directory's open takes the list it will read. */
	if (fresh) {
		int sfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sfd < 0)
			return errno;
		if (fsync(sfd)) {
			int e = errno;
			close(sfd);
			return e;
		}
		close(sfd);
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	/* Drop the kernel's cached listing of the directory first, so the read goes to the daemon.
	 * coordfs (fs/ops.c op_opendir) lets the kernel keep a listing that a readdir filled from a
	 * handle opened before the last change, and later opens keep it (keep_cache): the kernel
	 * can then miss entries indefinitely, and a queue recipe must never miss one. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return e;
	}
	size_t cap = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue; /* ".", "..", and the special files at a mount's root */
		if (ns->n == cap) {
			cap = cap ? 2 * cap : 16;
			char **v = realloc(ns->v, cap * sizeof(*v));
			if (!v) {
				closedir(d);
				rx_names_free(ns);
				return ENOMEM;
			}
			ns->v = v;
		}
		if (!(ns->v[ns->n] = strdup(de->d_name))) {
			closedir(d);
			rx_names_free(ns);
			return ENOMEM;
		}
		ns->n++;
		errno = 0;
	}
	int e = errno;
	closedir(d);
	if (e) {
		rx_names_free(ns);
		return e;
	}
	return 0;
}

/* Read a whole (small) file into a malloc'd, NUL-terminated buffer; 0 or an errno. */
RX_FN int rx_read_file(const char *path, char **out, size_t *outlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return ENOMEM;
	}
	for (;;) {
		if (len == cap) {
			char *b = realloc(buf, 2 * cap + 1);
			if (!b) {
				free(buf);
				close(fd);
				return ENOMEM;
			}
			buf = b;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	*out = buf;
	if (outlen)
		*outlen = len;
	return 0;
}

/* A user.coord.* hex attribute ("0x1f") as a number; 0 or an errno. */
RX_FN int rx_xattr_hex(const char *path, const char *name, uint64_t *v)
{
	char buf[64];
	ssize_t n = getxattr(path, name, buf, sizeof(buf) - 1);
	if (n < 0)
		return errno;
	buf[n] = 0;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(buf, &end, 16);
	if (errno || end == buf)
		return EPROTO;
	*v = x;
	return 0;
}

/* The mount's session: id (hex) and timeout in ms, from ROOT/.session. */
RX_FN int rx_session(const struct rx_mount *m, uint64_t *id, int64_t *timeout_ms)
{
	char path[PATH_MAX], *text = NULL;
	rx_join(path, m->root, ".session");
	int rc = rx_read_file(path, &text, NULL);
	if (rc)
		return rc;
	*id = 0;
	*timeout_ms = 10000;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "session ", 8))
			*id = strtoull(l + 8, NULL, 16);
		else if (!strncmp(l, "timeout_ms ", 11))
			*timeout_ms = strtoll(l + 11, NULL, 10);
	}
	free(text);
	return 0;
}

/* ---- .watch: one instance, read under poll() ---- */

struct rx_watch {
	int fd;
	char buf[RX_LINE_MAX * 4];
	size_t len; /* bytes in buf; lines are taken from the front */
};

/* What a .watch line says. Session lines (disconnected, reconnected, expired, overflow) have
 * no path and no zxid. */
struct rx_event {
	char kind[16];
	char path[PATH_MAX];
	char zxid[24];
};

RX_FN int rx_watch_open(struct rx_watch *w, const struct rx_mount *m)
{
	char path[PATH_MAX];
	rx_join(path, m->root, ".watch");
	w->len = 0;
	w->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	return w->fd < 0 ? errno : 0;
}

RX_FN void rx_watch_close(struct rx_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

RX_FN int rx_watch_write(struct rx_watch *w, const char *a, const char *b, const char *c)
{
	char line[RX_LINE_MAX];
	int n = snprintf(line, sizeof(line), "%s%s%s\n", a, b, c);
	if (n < 0 || n >= (int)sizeof(line))
		return ENAMETOOLONG;
	ssize_t k;
	do
		k = write(w->fd, line, (size_t)n);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return errno;
	return k == n ? 0 : EIO;
}

/* Watch a node and its list of children (or, recursive, its whole subtree); 0 or an errno. */
RX_FN int rx_watch_add(struct rx_watch *w, const char *zpath, int recursive)
{
	return rx_watch_write(w, "", zpath, recursive ? " recursive" : "");
}

/* Drop a watch; 0 or an errno (ENOENT: there was none). */
RX_FN int rx_watch_drop(struct rx_watch *w, const char *zpath)
{
	return rx_watch_write(w, "-", zpath, "");
}

/* Read what is there (never blocks): 0 (something or nothing read), or an errno when the watch is
 * unusable (the mount is gone: ENOTCONN, ECONNABORTED, ...). */
RX_FN int rx_watch_fill(struct rx_watch *w)
{
	if (w->len == sizeof(w->buf))
		return 0;
	ssize_t n = read(w->fd, w->buf + w->len, sizeof(w->buf) - w->len);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		return errno;
	}
	if (n == 0)
		return ENOTCONN; /* a live .watch never ends */
	w->len += (size_t)n;
	return 0;
}

/* Take the next whole line, parsed; 1 if there was one, 0 if not. */
RX_FN int rx_watch_next(struct rx_watch *w, struct rx_event *ev)
{
	char *nl = memchr(w->buf, '\n', w->len);
	if (!nl) {
		if (w->len == sizeof(w->buf))
			w->len = 0; /* a line longer than any event line: drop it */
		return 0;
	}
	size_t l = (size_t)(nl - w->buf);
	char line[RX_LINE_MAX];
	size_t c = l < sizeof(line) - 1 ? l : sizeof(line) - 1;
	memcpy(line, w->buf, c);
	line[c] = 0;
	memmove(w->buf, nl + 1, w->len - l - 1);
	w->len -= l + 1;
	ev->kind[0] = ev->path[0] = ev->zxid[0] = 0;
	/* EVENT PATH ZXID: the path may hold spaces, the zxid is the last word. */
	char *sp = strchr(line, ' ');
	if (!sp) {
		rx_copy(ev->kind, sizeof(ev->kind), line);
		return 1;
	}
	*sp = 0;
	rx_copy(ev->kind, sizeof(ev->kind), line);
	char *path = sp + 1;
	char *last = strrchr(path, ' ');
	if (last) {
		*last = 0;
		rx_copy(ev->zxid, sizeof(ev->zxid), last + 1);
	}
	rx_copy(ev->path, sizeof(ev->path), path);
	return 1;
}

/* ---- signals: TERM, INT, HUP, QUIT and CHLD arrive on a signalfd ---- */

struct rx_signals {
	int fd;
	sigset_t orig; /* the mask to give a command */
};

RX_FN void rx_signals_init(struct rx_signals *s)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, &s->orig))
		rx_die(RX_EX_SETUP, "sigprocmask: %s", strerror(errno));
	s->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->fd < 0)
		rx_die(RX_EX_SETUP, "signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
}

/* The next pending signal (0 when none); *from_tty set when the terminal sent it to the group. */
RX_FN int rx_signals_take(struct rx_signals *s, int *from_tty)
{
	struct signalfd_siginfo si;
	ssize_t n = read(s->fd, &si, sizeof(si));
	if (n != (ssize_t)sizeof(si))
		return 0;
	if (from_tty)
		*from_tty = si.ssi_code == SI_KERNEL;
	return (int)si.ssi_signo;
}

/* Wait for the watch (when w) or a signal, until deadline (ms on the monotonic clock; <0: none).
 * Returns a mask of RX_READY_WATCH and RX_READY_SIGNAL, 0 on timeout. */
#define RX_READY_WATCH 1
#define RX_READY_SIGNAL 2

RX_FN int rx_wait(struct rx_watch *w, struct rx_signals *s, int64_t deadline)
{
	struct pollfd p[2];
	int n = 0, wi = -1;
	p[n].fd = s->fd;
	p[n].events = POLLIN;
	n++;
	if (w && w->fd >= 0) {
		wi = n;
		p[n].fd = w->fd;
		p[n].events = POLLIN;
		n++;
	}
	for (;;) {
		int t = -1;
		if (deadline >= 0) {
			int64_t left = deadline - rx_now_ms();
			t = left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
		}
		int k = poll(p, (nfds_t)n, t);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			rx_die(RX_EX_SETUP, "poll: %s", strerror(errno));
		}
		int r = 0;
		if (p[0].revents)
			r |= RX_READY_SIGNAL;
		if (wi >= 0 && p[wi].revents)
			r |= RX_READY_WATCH;
		if (r || k == 0)
			return r;
	}
}

/* ---- the guard: cleans up after a tool that ends without doing it (kill -9) ---- */

struct rx_guard {
	int fd; /* write end; -1 when there is no guard */
};

RX_FN void rx_guard_say(struct rx_guard *g, const char *what, const char *arg)
{
	if (g->fd < 0)
		return;
	char line[RX_LINE_MAX];
	int n = snprintf(line, sizeof(line), "%s%s%s\n", what, arg ? " " : "", arg ? arg : "");
	if (n > 0 && n < (int)sizeof(line) && write(g->fd, line, (size_t)n) != n)
		rx_msg("cannot talk to the guard process: %s", strerror(errno));
}

/* The guard's life: lines "node PATH" (delete PATH if the tool dies), "-node", "cmd PID" (signal
 * PID, a process group when negative, with SIGTERM if the tool dies), "-cmd", "drop PATH" (delete
 * PATH now: a release that may wait for the ensemble, done here so the tool need not wait). */
RX_FN __attribute__((noreturn)) void rx_guard_main(int rfd)
{
	char node[PATH_MAX] = "";
	pid_t cmd = 0;
	char buf[RX_LINE_MAX * 2];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(rfd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		char *nl;
		while ((nl = memchr(buf, '\n', len))) {
			*nl = 0;
			if (!strncmp(buf, "node ", 5))
				rx_copy(node, sizeof(node), buf + 5);
			else if (!strcmp(buf, "-node"))
				node[0] = 0;
			else if (!strncmp(buf, "cmd ", 4))
				cmd = (pid_t)strtol(buf + 4, NULL, 10);
			else if (!strcmp(buf, "-cmd"))
				cmd = 0;
			else if (!strncmp(buf, "drop ", 5))
				unlink(buf + 5);
			size_t used = (size_t)(nl - buf) + 1;
			memmove(buf, nl + 1, len - used);
			len -= used;
		}
		if (len == sizeof(buf))
			len = 0;
	}
	/* The tool is gone. Stop its command first: it no longer holds anything. */
	if (cmd)
		kill(cmd, SIGTERM);
	if (node[0])
		unlink(node);
	_exit(0);
}

RX_FN void rx_guard_start(struct rx_guard *g)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		rx_die(RX_EX_SETUP, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		rx_die(RX_EX_SETUP, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Signals that end the tool must not end its guard. */
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		signal(SIGCHLD, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Hold nothing of the tool's: no descriptor (a pipe a caller reads to its end), no
		 * working directory inside a mount. */
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		int rfd = p[0];
		if (rfd != 3) {
			dup2(rfd, 3);
			rfd = 3;
		}
		if (close_range(4, ~0U, 0)) {
			long max = sysconf(_SC_OPEN_MAX);
			for (int fd = 4; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
				close(fd);
		}
		if (chdir("/")) {
			/* nothing to do: the guard only unlinks absolute paths */
		}
		rx_guard_main(rfd);
	}
	close(p[0]);
	g->fd = p[1];
}

/* ---- the command ---- */

struct rx_child {
	pid_t pid;    /* 0 when none runs */
	pid_t target; /* where signals go: -pgid when it has a group of its own, else pid */
	int own_group;
	int status;   /* exit status as a shell shows it (128+N for signal N), once it ended */
};

/* Start argv. In the foreground of a terminal the command stays in our process group (job
 * control and ^C work as with flock(1)); otherwise it gets a group of its own, so a signal
 * reaches every process the command started. */
RX_FN int rx_spawn(struct rx_child *c, char *const argv[], struct rx_signals *s, struct rx_guard *g)
{
	int interactive = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		if (!interactive)
			setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &s->orig, NULL);
		execvp(argv[0], argv);
		int e = errno;
		rx_msg("cannot run %s: %s", argv[0], strerror(e));
		_exit(e == ENOENT ? RX_EX_NOTFOUND : RX_EX_NOEXEC);
	}
	if (!interactive)
		setpgid(pid, pid); /* also here: no window in which a signal would miss the group */
	c->pid = pid;
	c->own_group = !interactive;
	c->target = interactive ? pid : -pid;
	c->status = -1;
	char t[32];
	snprintf(t, sizeof(t), "%d", (int)c->target);
	rx_guard_say(g, "cmd", t);
	return 0;
}

RX_FN void rx_child_signal(struct rx_child *c, int sig)
{
	if (c->pid > 0)
		kill(c->target, sig);
}

/* After SIGCHLD: 1 when the command has ended (c->status set, the guard told first, then
 * reaped, so the guard never signals a reused pid), 0 if it still runs. */
RX_FN int rx_child_reap(struct rx_child *c, struct rx_guard *g)
{
	if (c->pid <= 0)
		return 1;
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) || si.si_pid == 0)
		return 0;
	rx_guard_say(g, "-cmd", NULL);
	int st;
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	c->status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
	c->pid = 0;
	/* Reap anything else (grandchildren reparented to us never happen; be safe). */
	while (waitpid(-1, &st, WNOHANG) > 0)
		;
	return 1;
}

/* ---- the queue: ZooKeeper's lock recipe on a directory with ephemeral,sequential children ---- */

struct rx_queue {
	struct rx_mount m;         /* the queue directory */
	const char *prefix;        /* entry names: prefix + 10 digits */
	const char *data;          /* each entry's contents */
	char own[NAME_MAX + 1];    /* our entry's name; "" while we have none */
	char own_path[PATH_MAX];   /* ... as a path on this host */
	char own_zpath[PATH_MAX];  /* ... as a znode path (for .watch) */
	int64_t own_seq;
	int64_t presume_ms;        /* a mount cut off this long is presumed to have lost its session */
	struct rx_watch w;
	struct rx_guard g;
};

/* Resolve dir, make it a queue, open the watch instance and the guard. Dies on error. */
RX_FN void rx_queue_init(struct rx_queue *q, const char *dir, const char *prefix, const char *data)
{
	const char *why;
	int rc = rx_resolve(dir, &q->m, &why);
	if (rc)
		rx_die(RX_EX_SETUP, "%s: %s", dir, why);
	char err[PATH_MAX + 200];
	if (rx_policy_dir(q->m.fpath, "ephemeral,sequential", err, sizeof(err)))
		rx_die(RX_EX_SETUP, "%s", err);
	q->prefix = prefix;
	q->data = data;
	q->own[0] = 0;
	q->own_seq = -1;
	if ((rc = rx_watch_open(&q->w, &q->m)))
		rx_die(RX_EX_SETUP, "cannot open %s/.watch: %s", q->m.root, strerror(rc));
	uint64_t sid;
	int64_t timeout_ms;
	if (rx_session(&q->m, &sid, &timeout_ms))
		timeout_ms = 10000;
	/* A mount that lost its server says "disconnected" at once when the connection breaks, or
	 * after half the session timeout of silence; the server expires the session a full
	 * timeout after it last heard from it. Presuming the loss after a quarter of the timeout
	 * leaves a margin, and still lets a failover (milliseconds) go by unnoticed. */
	q->presume_ms = timeout_ms / 4 > 100 ? timeout_ms / 4 : 100;
	rx_guard_start(&q->g);
}

/* Enqueue: create our entry. 0, or an errno (the mount is gone, the directory cannot be made). */
RX_FN int rx_queue_enter(struct rx_queue *q)
{
	char path[PATH_MAX], err[PATH_MAX + 200];
	rx_join(path, q->m.fpath, q->prefix);
	for (int tries = 0;; tries++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 && errno == ENOENT && tries < 3) {
			/* The directory was removed under us: make it again. */
			if (rx_policy_dir(q->m.fpath, "ephemeral,sequential", err, sizeof(err)))
				rx_msg("%s", err);
			continue;
		}
		if (fd < 0)
			return errno;
		char name[NAME_MAX + 1];
		ssize_t n = fgetxattr(fd, "user.coord.name", name, sizeof(name) - 1);
		if (n < 0) {
			int e = errno;
			close(fd);
			return e;
		}
		name[n] = 0;
		if (rx_seq_of(name) < 0 || strncmp(name, q->prefix, strlen(q->prefix)) != 0) {
			close(fd);
			unlink(path);
			rx_die(RX_EX_SETUP, "%s made '%s', not a sequential node: is the child policy of %s still "
					    "ephemeral,sequential?", path, name, q->m.fpath);
		}
		rx_copy(q->own, sizeof(q->own), name);
		rx_join(q->own_path, q->m.fpath, name);
		rx_join(q->own_zpath, q->m.zpath, name);
		q->own_seq = rx_seq_of(name);
		rx_guard_say(&q->g, "node", q->own_path);
		size_t len = strlen(q->data);
		int werr = 0;
		if (len && write(fd, q->data, len) != (ssize_t)len)
			werr = errno;
		if (close(fd) && !werr)
			werr = errno;
		if (werr && werr != ENOENT && werr != ETIMEDOUT)
			rx_msg("writing %s: %s (the entry stays; only its contents are missing)", q->own_path,
			       strerror(werr));
		/* Our own entry's deletion (an expiry, someone's rm) must wake us. */
		rx_watch_add(&q->w, q->own_zpath, 0);
		return 0;
	}
}

/* Leave the queue now (a release: waits for the ensemble). */
RX_FN void rx_queue_leave(struct rx_queue *q)
{
	if (!q->own[0])
		return;
	if (unlink(q->own_path) && errno != ENOENT)
		rx_msg("cannot delete %s: %s", q->own_path, strerror(errno));
	rx_watch_drop(&q->w, q->own_zpath);
	rx_guard_say(&q->g, "-node", NULL);
	q->own[0] = 0;
}

/* Forget our entry and let the guard delete it (it may have to wait for the ensemble). */
RX_FN void rx_queue_abandon(struct rx_queue *q)
{
	if (!q->own[0])
		return;
	rx_guard_say(&q->g, "drop", q->own_path);
	rx_guard_say(&q->g, "-node", NULL);
	q->own[0] = 0;
}

RX_FN int rx_cmp_seq(const void *a, const void *b)
{
	int64_t x = rx_seq_of(*(char *const *)a), y = rx_seq_of(*(char *const *)b);
	return x < y ? -1 : x > y;
}

/* The entries of the queue in order (names that are not sequential are left out). */
RX_FN int rx_queue_list(struct rx_queue *q, struct rx_names *ns)
{
	int rc = rx_list(q->m.fpath, 1, ns);
	if (rc)
		return rc;
	size_t k = 0;
	for (size_t i = 0; i < ns->n; i++) {
		if (rx_seq_of(ns->v[i]) >= 0)
			ns->v[k++] = ns->v[i];
		else
			free(ns->v[i]);
	}
	ns->n = k;
	qsort(ns->v, ns->n, sizeof(*ns->v), rx_cmp_seq);
	return 0;
}

/* Outcomes of rx_queue_wait_first. */
#define RX_Q_FIRST 0   /* our entry is the first: we hold it */
#define RX_Q_BUSY 1    /* nonblock, and someone else is first (our entry is gone again) */
#define RX_Q_TIMEOUT 2 /* the deadline passed (our entry is gone again) */
#define RX_Q_SIGNAL 3  /* a signal came (*sig); our entry is gone again */
#define RX_Q_GONE 4    /* the mount is unusable (*err) */

/* Is a watch line about our entry or the session saying our entry is gone? */
RX_FN int rx_queue_own_gone(struct rx_queue *q, const struct rx_event *ev)
{
	return !strcmp(ev->kind, "expired") || (!strcmp(ev->kind, "deleted") && !strcmp(ev->path, q->own_zpath));
}

RX_FN int rx_queue_wait_first(struct rx_queue *q, struct rx_signals *s, int nonblock, int64_t deadline,
			      int *sig, int *err)
{
	int unseen = 0; /* entries made that the very next listing did not show */
	for (;;) {
		int rc, entered = 0;
		if (!q->own[0]) {
			if ((rc = rx_queue_enter(q))) {
				*err = rc;
				return RX_Q_GONE;
			}
			entered = 1;
		}
		struct rx_names ns;
		if ((rc = rx_queue_list(q, &ns))) {
			*err = rc;
			return RX_Q_GONE;
		}
		size_t i;
		for (i = 0; i < ns.n && strcmp(ns.v[i], q->own); i++)
			;
		if (i == ns.n) {
			/* Our entry is gone (the session expired, or someone removed it): queue again,
			 * at the back. Delete it in case the listing was wrong and it is still there. */
			rx_names_free(&ns);
			if (entered && ++unseen >= 5)
				rx_die(RX_EX_SETUP, "the listing of %s keeps missing the entry just made (%s): the "
						    "mount does not read its own writes", q->m.fpath, q->own);
			rx_queue_leave(q);
			continue;
		}
		if (i == 0) {
			rx_names_free(&ns);
			return RX_Q_FIRST;
		}
		if (nonblock) {
			rx_names_free(&ns);
			rx_queue_leave(q);
			return RX_Q_BUSY;
		}
		/* Watch only the entry just before ours (no herd): arm the watch, then look. The
		 * mount tells its caches before its .watch lines, so either the look sees the entry
		 * gone or a line will say so. */
		char pred_z[PATH_MAX], pred_f[PATH_MAX];
		rx_join(pred_z, q->m.zpath, ns.v[i - 1]);
		rx_join(pred_f, q->m.fpath, ns.v[i - 1]);
		rx_names_free(&ns);
		if ((rc = rx_watch_add(&q->w, pred_z, 0))) {
			*err = rc;
			return RX_Q_GONE;
		}
		struct stat st;
		int wait = stat(pred_f, &st) == 0;
		int outcome = -1;
		while (wait && outcome < 0) {
			int r = rx_wait(&q->w, s, deadline);
			if (r == 0) {
				outcome = RX_Q_TIMEOUT;
				break;
			}
			if (r & RX_READY_SIGNAL) {
				int from_tty, sg;
				while ((sg = rx_signals_take(s, &from_tty)))
					if (sg != SIGCHLD) {
						*sig = sg;
						outcome = RX_Q_SIGNAL;
					}
				if (outcome >= 0)
					break;
			}
			if (r & RX_READY_WATCH) {
				if ((rc = rx_watch_fill(&q->w))) {
					*err = rc;
					return RX_Q_GONE;
				}
				struct rx_event ev;
				while (rx_watch_next(&q->w, &ev)) {
					if (!strcmp(ev.kind, "deleted") && !strcmp(ev.path, pred_z))
						wait = 0;
					else if (!strcmp(ev.kind, "overflow"))
						wait = 0; /* look again */
					else if (rx_queue_own_gone(q, &ev)) {
						wait = 0;
						rx_guard_say(&q->g, "-node", NULL);
						q->own[0] = 0;
					}
				}
			}
		}
		if (rx_watch_drop(&q->w, pred_z) == ENOTCONN) {
			*err = ENOTCONN;
			return RX_Q_GONE;
		}
		if (outcome >= 0) {
			rx_queue_leave(q);
			return outcome;
		}
	}
}

/* The czxid of our entry: the fencing token. */
RX_FN uint64_t rx_queue_token(struct rx_queue *q)
{
	uint64_t z = 0;
	int rc = rx_xattr_hex(q->own_path, "user.coord.czxid", &z);
	if (rc)
		rx_msg("cannot read the czxid of %s: %s", q->own_path, strerror(rc));
	return z;
}

/* Outcomes of rx_queue_hold. */
#define RX_H_ENDED 0 /* the command ended by itself (or after a forwarded signal): c->status */
#define RX_H_LOST 1  /* the entry is lost (why): the command was stopped, c->status set */

/* Run while the command runs: forward TERM/INT/HUP/QUIT to it (*sig keeps the last one), and
 * when the entry is lost (the session expired, the entry was deleted, the mount was cut off for
 * presume_ms or is gone) send the command SIGTERM, SIGKILL after kill_after_ms, and wait for it. */
RX_FN int rx_queue_hold(struct rx_queue *q, struct rx_signals *s, struct rx_child *c, int64_t kill_after_ms,
			int *sig, char *why, size_t whylen)
{
	int64_t cut_since = -1, kill_at = -1;
	int lost = 0;
	for (;;) {
		int64_t deadline = kill_at >= 0 ? kill_at : (!lost && cut_since >= 0) ? cut_since + q->presume_ms : -1;
		int r = rx_wait(lost ? NULL : &q->w, s, deadline);
		if (r == 0) {
			if (kill_at >= 0 && rx_now_ms() >= kill_at) {
				rx_msg("the command still runs %lld ms after SIGTERM: sending SIGKILL",
				       (long long)kill_after_ms);
				rx_child_signal(c, SIGKILL);
				kill_at = -1;
			} else if (!lost && cut_since >= 0 && rx_now_ms() >= cut_since + q->presume_ms) {
				snprintf(why, whylen, "the mount has been cut off from the ensemble for %lld ms (a "
						      "quarter of the session timeout): the session may expire",
					 (long long)q->presume_ms);
				lost = 1;
			}
		}
		if (r & RX_READY_SIGNAL) {
			int from_tty, sg;
			while ((sg = rx_signals_take(s, &from_tty))) {
				if (sg == SIGCHLD)
					continue;
				*sig = sg;
				/* A terminal already signalled the command when it shares our group. */
				if (!(from_tty && !c->own_group))
					rx_child_signal(c, sg);
			}
			if (rx_child_reap(c, &q->g))
				return lost ? RX_H_LOST : RX_H_ENDED;
		}
		if (!lost && (r & RX_READY_WATCH)) {
			int rc = rx_watch_fill(&q->w);
			if (rc) {
				snprintf(why, whylen, "the mount is gone (%s)", strerror(rc));
				lost = 1;
			}
			struct rx_event ev;
			while (!lost && rx_watch_next(&q->w, &ev)) {
				if (!strcmp(ev.kind, "expired")) {
					snprintf(why, whylen, "the session expired");
					lost = 1;
				} else if (!strcmp(ev.kind, "deleted") && !strcmp(ev.path, q->own_zpath)) {
					snprintf(why, whylen, "%s was deleted", q->own_path);
					lost = 1;
				} else if (!strcmp(ev.kind, "disconnected")) {
					if (cut_since < 0)
						cut_since = rx_now_ms();
				} else if (!strcmp(ev.kind, "reconnected")) {
					cut_since = -1;
				} else if (!strcmp(ev.kind, "overflow")) {
					struct stat st;
					if (stat(q->own_path, &st) && errno == ENOENT) {
						snprintf(why, whylen, "%s is gone", q->own_path);
						lost = 1;
					}
				}
			}
		}
		if (lost && kill_at < 0 && c->pid > 0 && c->status < 0) {
			rx_msg("%s: sending SIGTERM to the command", why);
			rx_child_signal(c, SIGTERM);
			kill_at = rx_now_ms() + kill_after_ms;
			/* The entry is not ours to count on any more; the guard deletes it if it is
			 * still there (it may have to wait for the ensemble). */
			rx_queue_abandon(q);
		}
		if (c->pid <= 0 && lost)
			return RX_H_LOST;
	}
}

#endif
