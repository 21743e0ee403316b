/*
 * handle.h: open files. A pointer to a struct handle is what fi->fh holds from open/create/opendir
 * until release.
 *
 * Whole-file semantics. A read-only open takes one version of the data (a shared blob) and serves
 * every read from it. A writable open collects writes in its own buffer and commits it as one
 * update at flush (close), fsync, or release at the latest, only if it was written to since the
 * last commit:
 *   O_TRUNC, a new file:  set, unconditionally (last writer wins);
 *   O_APPEND:             atomic server-side append of what was written;
 *   otherwise:            set, conditional on the version read at open; a change in between makes
 *                         the commit fail with ESTALE and nothing is written.
 * A write past the server's limit fails with EFBIG and poisons the handle: it commits nothing and
 * every later flush returns the same error. A failed commit is reported by close() and fsync().
 *
 * Which opens may use the kernel's page cache (handle_open decides): only read-only opens of the
 * version the daemon's cache holds, with no kernel notice about the inode still queued, and only
 * while every other page-cached open of the inode has that same version. Everything else is
 * direct I/O, so the kernel never mixes pages of two versions or caches uncommitted writes.
 */
#ifndef COORDFS_HANDLE_H
#define COORDFS_HANDLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs.h"

struct blob;
struct names;
struct pwatch;

enum handle_kind { H_FILE = 1, H_DIR, H_WATCH, H_TEXT, H_HDIR };
enum write_mode { W_SET = 1, W_CHECKED, W_APPEND };

struct handle {
	int kind;
	uint64_t ino;
	pthread_mutex_t mu;
	/* H_FILE */
	int readable, writable, mode;
	struct blob *blob;           /* read-only: the version read at open */
	char *buf;                   /* writable: the file as this open sees it (W_APPEND: what to append) */
	size_t len, cap;
	int32_t version;             /* W_CHECKED: the version the buffer came from */
	struct coord_stat st;        /* the stat at open (or after the last commit) */
	int dirty;                   /* changed since the last commit (an O_TRUNC open counts) */
	int wrote;                   /* write() or ftruncate() since the last commit */
	int err;                     /* sticky errno: a write or commit failed */
	int pc;                      /* counted in the inode's pc_handles */
	int counted;                 /* counted in the inode's nopen */
	uint32_t max;                /* the server's data limit */
	/* H_DIR: the child names; H_HDIR (a .history directory): its entries, the first hfiles of
	 * them version files, the rest subdirectories */
	struct names *kids;
	size_t hfiles;
	/* H_WATCH */
	struct pwatch *w;
	/* H_TEXT: generated contents */
	char *text;
	size_t text_len;
};

struct handle *handle_new(int kind, uint64_t ino);
/* Drops the handle's references (and its place among the inode's page-cached opens). */
void handle_free(struct coordfs *fs, struct handle *h);

/*
 * Open the file `ino` (known to the table) with open(2) flags: fetch what the open needs (the
 * data, unless the daemon's cache holds it or the open truncates or only appends). `created`
 * means this open just created it with stat *st (empty: nothing to fetch). Returns 0 with *out,
 * or -errno (-ESTALE when the name now leads to another node).
 */
int handle_open(struct coordfs *fs, uint64_t ino, int flags, int created, const struct coord_stat *st,
		struct handle **out);
/* Decide what the kernel may cache for this open and fill fi (fh, direct_io, keep_cache, noflush).
 * Call with fs->reply_lock read-held, and reply before letting it go. */
void handle_open_reply_flags(struct coordfs *fs, struct handle *h, struct fuse_file_info *fi);

/* Bytes at off into out; returns the count or -errno. */
ssize_t handle_read(struct handle *h, char *out, size_t size, off_t off);
ssize_t handle_write(struct handle *h, const char *buf, size_t size, off_t off);
/* ftruncate on a writable open: the buffer's new length (nothing is committed yet). */
int handle_truncate(struct handle *h, off_t size);
/*
 * Commit; returns 0 or a positive errno. `at_close` (flush) commits only what write() or
 * ftruncate() changed: a shell's `> f` opens, dup2()s and closes the first descriptor before
 * anything is written, and that close must not commit an empty file. Otherwise (fsync, release)
 * any change is committed, so `: > f` empties f when its last descriptor goes.
 */
int handle_commit(struct coordfs *fs, struct handle *h, int at_close);
/* Wait (a few seconds at most) until no commit of this mount to `in` is in flight. fs->mu held. */
struct inode;
void handle_wait_commits(struct coordfs *fs, struct inode *in);
/* The size this open sees (its version, or its buffer). */
off_t handle_size(struct handle *h);

#endif
