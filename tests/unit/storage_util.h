/*
 * storage_util.h: helpers for the storage unit tests (test_txnlog.c, test_snapshot.c): scratch
 * directories, file pokes, and running a test body on a tiny tmpfs to provoke ENOSPC.
 *
 * Everything is static: each test program includes this once.
 */
#ifndef COORD_STORAGE_UTIL_H
#define COORD_STORAGE_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static inline void rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* A fresh directory under /tmp; the caller rm_rf's it. */
static char *scratch_dir(const char *tag)
{
	static char buf[8][256];
	static int next;
	char *d = buf[next++ % 8];
	snprintf(d, sizeof(buf[0]), "/tmp/coordfs-%s-XXXXXX", tag);
	CHECK(mkdtemp(d) != NULL);
	return d;
}

static inline int file_exists(const char *dir, const char *name)
{
	char p[8200];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static inline long long file_size(const char *dir, const char *name)
{
	char p[8200];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* Whole file into a malloc'd buffer (*n bytes). */
static uint8_t *read_file(const char *dir, const char *name, size_t *n)
{
	char p[8200];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "rb");
	CHECK(f != NULL);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
	CHECK(b != NULL);
	CHECK(fread(b, 1, (size_t)sz, f) == (size_t)sz);
	fclose(f);
	*n = (size_t)sz;
	return b;
}

/* Replace a file's contents with p[0..n). */
static inline void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[8200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, p, n) == (ssize_t)n);
	close(fd);
}

/* XOR one byte of a file. */
static inline void flip_byte(const char *dir, const char *name, long long off)
{
	char path[8200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	uint8_t c;
	CHECK(pread(fd, &c, 1, off) == 1);
	c ^= 0x5a;
	CHECK(pwrite(fd, &c, 1, off) == 1);
	close(fd);
}

static inline void truncate_file(const char *dir, const char *name, long long len)
{
	char path[8200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK(truncate(path, len) == 0);
}

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Run body(dir) in a child process with dir a fresh tmpfs of `bytes`, so it can fill the disk.
 * The parent unmounts and removes the directory whatever happens in the child (a failed CHECK
 * exits it, a crash kills it), then fails if the child did. Without the right to mount (not
 * root, no CAP_SYS_ADMIN), the test is skipped with a note instead.
 */
static inline void on_small_tmpfs(const char *tag, size_t bytes, void (*body)(const char *dir))
{
	char *d = scratch_dir(tag);
	char opts[64];
	snprintf(opts, sizeof(opts), "size=%zu", bytes);
	if (mount("tmpfs", d, "tmpfs", 0, opts) < 0) {
		fprintf(stderr, "    SKIPPED: cannot mount a tmpfs on %s (%s); ENOSPC not tested\n", d, strerror(errno));
		rmdir(d);
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		umount2(d, MNT_DETACH);
		rmdir(d);
		CHECK(pid >= 0);
	}
	if (pid == 0) {
		body(d);
		exit(0);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (umount2(d, MNT_DETACH) < 0)
		fprintf(stderr, "    warning: umount %s: %s\n", d, strerror(errno));
	rmdir(d);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

#endif
