/*
 * test_log.c: the log record format, the level threshold, COORD_LOG_LEVEL, truncation, and whole
 * lines from many threads. Each case runs in a child process whose stderr is a temporary file,
 * because the level and the environment are read once per process.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static char out[4 << 20];

/* Run fn in a child with stderr sent to a file; return what it wrote (in `out`). */
static const char *capture(void (*fn)(void), const char *env_level)
{
	char path[] = "/tmp/coord-log-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (env_level)
			setenv("COORD_LOG_LEVEL", env_level, 1);
		else
			unsetenv("COORD_LOG_LEVEL");
		dup2(fd, STDERR_FILENO);
		fcntl(STDERR_FILENO, F_SETFL, O_APPEND | O_WRONLY);
		fn();
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ssize_t n = pread(fd, out, sizeof out - 1, 0);
	CHECK(n >= 0 && (size_t)n < sizeof out - 1); /* all of it fitted */
	out[n] = '\0';
	close(fd);
	return out;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* "YYYY-MM-DD HH:MM:SS.mmm PROG[PID] LEVEL " at the start of line; returns what follows, or NULL. */
static const char *after_prefix(const char *line, const char *prog, const char *level)
{
	const char *pat = "dddd-dd-dd dd:dd:dd.ddd ";
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? (line[i] < '0' || line[i] > '9') : line[i] != pat[i])
			return NULL;
	}
	line += strlen(pat);
	size_t pl = strlen(prog);
	if (strncmp(line, prog, pl) != 0 || line[pl] != '[')
		return NULL;
	line += pl + 1;
	if (*line < '1' || *line > '9')
		return NULL;
	while (*line >= '0' && *line <= '9')
		line++;
	if (*line++ != ']' || *line++ != ' ')
		return NULL;
	size_t ll = strlen(level);
	if (strncmp(line, level, ll) != 0 || line[ll] != ' ')
		return NULL;
	return line + ll + 1;
}

static void case_format(void)
{
	coord_log_init("/usr/sbin/coordd", COORD_LOG_INFO);
	LOG_WARN("disk %s is %d%% full", "/var", 93);
}

static void test_format(void)
{
	const char *s = capture(case_format, NULL);
	const char *rest = after_prefix(s, "coordd", "WARN");
	CHECK(rest != NULL);
	CHECK_STR(rest, "disk /var is 93% full\n");
}

static void case_levels(void)
{
	LOG_DEBUG("d1"); /* default threshold before init: INFO */
	LOG_INFO("i1");
	coord_log_init("coordd", COORD_LOG_WARN);
	LOG_DEBUG("d2");
	LOG_INFO("i2");
	LOG_WARN("w2");
	LOG_ERROR("e2");
	coord_log_init("coordd", COORD_LOG_DEBUG);
	LOG_DEBUG("d3");
}

static void test_levels(void)
{
	const char *s = capture(case_levels, NULL);
	CHECK_EQ(count_lines(s), 4);
	CHECK(strstr(s, " INFO i1\n") != NULL);
	CHECK(strstr(s, " WARN w2\n") != NULL);
	CHECK(strstr(s, " ERROR e2\n") != NULL);
	CHECK(strstr(s, " DEBUG d3\n") != NULL);
	CHECK(strstr(s, "d1") == NULL && strstr(s, "d2") == NULL && strstr(s, "i2") == NULL);
}

static void case_env(void)
{
	coord_log_init("coordd", COORD_LOG_DEBUG); /* the environment wins */
	LOG_DEBUG("d");
	LOG_INFO("i");
	LOG_WARN("w");
	LOG_ERROR("e");
}

static void test_env(void)
{
	const char *s = capture(case_env, "error");
	CHECK_EQ(count_lines(s), 1);
	CHECK(strstr(s, " ERROR e\n") != NULL);
	s = capture(case_env, "DEBUG");
	CHECK_EQ(count_lines(s), 4);
	s = capture(case_env, "warn");
	CHECK_EQ(count_lines(s), 2);
	/* a value that is not a level is reported and ignored */
	s = capture(case_env, "loud");
	CHECK(strstr(s, "COORD_LOG_LEVEL='loud' is not a level") != NULL);
	CHECK(strstr(s, " DEBUG d\n") != NULL);
}

static void case_long(void)
{
	static char big[10000];
	memset(big, 'x', sizeof big - 1);
	LOG_INFO("start %s end", big);
	LOG_INFO("two\nlines\r\n");
	errno = ENOENT;
	LOG_INFO("errno %m");
	if (errno != ENOENT)
		_exit(3); /* coord_log must keep errno */
}

static void test_long_and_control(void)
{
	const char *s = capture(case_long, NULL);
	CHECK_EQ(count_lines(s), 3);
	const char *nl = strchr(s, '\n');
	CHECK(nl - s + 1 <= 4096);
	CHECK(strncmp(nl - 3, "...", 3) == 0);
	CHECK(strstr(s, " INFO start xxx") != NULL);
	CHECK(strstr(s, " INFO two lines\n") != NULL);
	CHECK(strstr(s, " INFO errno No such file or directory\n") != NULL);
}

#define NTHREADS 8
#define NRECORDS 500

static void *logger(void *arg)
{
	long t = (long)arg;
	char pad[300];
	memset(pad, 'a' + (int)t, sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	for (int i = 0; i < NRECORDS; i++)
		LOG_INFO("thread %ld record %d %s", t, i, pad);
	return NULL;
}

static void case_threads(void)
{
	coord_log_init("coordd", COORD_LOG_INFO);
	pthread_t th[NTHREADS];
	for (long t = 0; t < NTHREADS; t++)
		if (pthread_create(&th[t], NULL, logger, (void *)t) != 0)
			_exit(2);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
}

static void test_threads(void)
{
	const char *s = capture(case_threads, NULL);
	CHECK_EQ(count_lines(s), NTHREADS * NRECORDS);
	/* every line is whole: the prefix, then one thread's record with only its own letter */
	for (const char *line = s; *line;) {
		const char *end = strchr(line, '\n');
		CHECK(end != NULL);
		const char *rest = after_prefix(line, "coordd", "INFO");
		CHECK(rest != NULL);
		long t;
		int i, used = 0;
		CHECK(sscanf(rest, "thread %ld record %d %n", &t, &i, &used) == 2 && used > 0);
		CHECK(t >= 0 && t < NTHREADS);
		CHECK_EQ(end - (rest + used), 299);
		for (const char *p = rest + used; p < end; p++)
			CHECK(*p == 'a' + t);
		line = end + 1;
	}
}

int main(void)
{
	RUN(test_format);
	RUN(test_levels);
	RUN(test_env);
	RUN(test_long_and_control);
	RUN(test_threads);
	return 0;
}
