/*
 * log.c: one-line log records on stderr (see log.h).
 *
 * "2026-11-25 08:20:02.123 coordd[1234] WARN message\n", local time. Each record is formatted
 * into a stack buffer and written with one write(2), so records from many threads and processes
 * sharing the file do not interleave. A message longer than the buffer ends in "..."; newlines
 * and other control characters inside a message become spaces so one record is one line.
 * The threshold is INFO until coord_log_init; the environment variable COORD_LOG_LEVEL
 * (debug|info|warn|error) overrides both. errno is preserved across coord_log.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_RECORD_MAX 4096
#define PROG_MAX 64

static _Atomic int min_level = COORD_LOG_INFO;
static _Atomic int env_level = -1; /* from COORD_LOG_LEVEL, -1 = not set or not understood */
static char prog[PROG_MAX];
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static int parse_level(const char *s)
{
	if (!s)
		return -1;
	if (strcasecmp(s, "debug") == 0)
		return COORD_LOG_DEBUG;
	if (strcasecmp(s, "info") == 0)
		return COORD_LOG_INFO;
	if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		return COORD_LOG_WARN;
	if (strcasecmp(s, "error") == 0)
		return COORD_LOG_ERROR;
	return -1;
}

static void read_env(void)
{
	const char *s = getenv("COORD_LOG_LEVEL");
	int l = parse_level(s);
	atomic_store(&env_level, l);
	if (l >= 0)
		atomic_store(&min_level, l);
	if (!prog[0]) {
		snprintf(prog, sizeof prog, "%s", program_invocation_short_name);
	}
	if (s && *s && l < 0) {
		char msg[160];
		int n = snprintf(msg, sizeof msg, "%s: COORD_LOG_LEVEL='%.40s' is not a level "
				 "(expected debug, info, warn or error); using info\n", prog, s);
		if (n > 0 && write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0) {
			/* nothing to do: stderr is gone */
		}
	}
}

void coord_log_init(const char *name, int level)
{
	if (name && *name) {
		const char *slash = strrchr(name, '/');
		snprintf(prog, sizeof prog, "%s", slash ? slash + 1 : name);
	}
	pthread_once(&env_once, read_env);
	if (level < COORD_LOG_DEBUG)
		level = COORD_LOG_DEBUG;
	if (level > COORD_LOG_ERROR)
		level = COORD_LOG_ERROR;
	int env = atomic_load(&env_level);
	atomic_store(&min_level, env >= 0 ? env : level);
}

/* Append s to buf at *n, at most cap - *n bytes; returns 1 if it did not all fit. */
static int put(char *buf, size_t *n, size_t cap, const char *s, size_t len)
{
	size_t room = cap - *n;
	size_t k = len < room ? len : room;
	memcpy(buf + *n, s, k);
	*n += k;
	return k < len;
}

void coord_log(int level, const char *fmt, ...)
{
	int saved = errno;
	pthread_once(&env_once, read_env);
	if (level < COORD_LOG_DEBUG)
		level = COORD_LOG_DEBUG;
	if (level > COORD_LOG_ERROR)
		level = COORD_LOG_ERROR;
	if (level < atomic_load(&min_level)) {
		errno = saved;
		return;
	}

	char buf[LOG_RECORD_MAX];
	size_t n = 0;
	/* room for "...\n" kept back so truncation can always be shown */
	const size_t cap = sizeof buf - 4;

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	time_t sec = ts.tv_sec;
	localtime_r(&sec, &tm);
	int h = snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s[%ld] %s ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			 prog[0] ? prog : "coord", (long)getpid(), level_names[level]);
	if (h < 0)
		h = 0;
	n = (size_t)h < cap ? (size_t)h : cap;

	size_t start = n;
	va_list ap;
	va_start(ap, fmt);
	errno = saved; /* so %m in fmt names the caller's errno */
	int m = vsnprintf(buf + n, cap - n + 1, fmt, ap);
	va_end(ap);
	int truncated = 0;
	if (m < 0) {
		truncated = put(buf, &n, cap, "(bad log format)", 16);
	} else if ((size_t)m > cap - n) {
		n = cap;
		truncated = 1;
	} else {
		n += (size_t)m;
	}
	/* one record, one line: drop trailing newlines, blank out control characters */
	while (n > start && (buf[n - 1] == '\n' || buf[n - 1] == '\r') && !truncated)
		n--;
	for (size_t i = start; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 && buf[i] != '\t')
			buf[i] = ' ';
	if (truncated) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n++] = '\n';

	size_t off = 0;
	while (off < n) {
		ssize_t w = write(STDERR_FILENO, buf + off, n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
	errno = saved;
}
