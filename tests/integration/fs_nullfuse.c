/*
 * fs_nullfuse.c: the smallest FUSE daemon that serves one 100-byte file "f" from memory, to measure
 * what the kernel's FUSE round trips cost without coordfs (README, "Caching"). A measurement
 * helper, not a test:
 *
 *   cc -O2 -o /tmp/nullfuse tests/integration/fs_nullfuse.c $(pkg-config --cflags --libs fuse3)
 *   ST=1 /tmp/nullfuse /mnt/x &                     OPEN answered (keep_cache, noflush), as coordfs
 *   ST=1 NOOPEN=1 FLUSH=1 /tmp/nullfuse /mnt/x &    OPEN answered ENOSYS (no-open), FLUSH handled
 *   ST=1 NOOPEN=1 /tmp/nullfuse /mnt/x &            no-open and FLUSH answered ENOSYS
 *   /tmp/fs_hotcat /mnt/x/f 20000 5; fusermount3 -u /mnt/x
 * Without ST=1 it runs libfuse's multi-threaded loop. At exit it prints the requests it saw.
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int noopen, doflush, nopen, nread, nflush, nrelease;
static char data[100];

static void attr(fuse_ino_t ino, struct stat *s)
{
	memset(s, 0, sizeof(*s));
	s->st_ino = ino;
	if (ino == 1) {
		s->st_mode = S_IFDIR | 0755;
		s->st_nlink = 2;
	} else {
		s->st_mode = S_IFREG | 0644;
		s->st_nlink = 1;
		s->st_size = sizeof(data);
	}
}

static void op_lookup(fuse_req_t q, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	if (parent != 1 || strcmp(name, "f")) {
		fuse_reply_err(q, ENOENT);
		return;
	}
	e.ino = 2;
	e.attr_timeout = e.entry_timeout = 86400;
	attr(2, &e.attr);
	fuse_reply_entry(q, &e);
}

static void op_getattr(fuse_req_t q, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat s;
	attr(ino, &s);
	fuse_reply_attr(q, &s, 86400);
}

static void op_open(fuse_req_t q, fuse_ino_t ino, struct fuse_file_info *fi)
{
	nopen++;
	if (noopen) {
		fuse_reply_err(q, ENOSYS);
		return;
	}
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(q, fi);
}

static void op_read(fuse_req_t q, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	nread++;
	size_t len = sizeof(data);
	if ((size_t)off >= len) {
		fuse_reply_buf(q, NULL, 0);
		return;
	}
	fuse_reply_buf(q, data + off, len - (size_t)off < size ? len - (size_t)off : size);
}

static void op_flush(fuse_req_t q, fuse_ino_t ino, struct fuse_file_info *fi)
{
	nflush++;
	fuse_reply_err(q, doflush ? 0 : ENOSYS);
}

static void op_release(fuse_req_t q, fuse_ino_t ino, struct fuse_file_info *fi)
{
	nrelease++;
	fuse_reply_err(q, 0);
}

static void op_destroy(void *u)
{
	fprintf(stderr, "requests: open %d, read %d, flush %d, release %d\n", nopen, nread, nflush, nrelease);
}

static void op_init(void *u, struct fuse_conn_info *c)
{
	if (c->capable & FUSE_CAP_NO_OPEN_SUPPORT)
		c->want |= FUSE_CAP_NO_OPEN_SUPPORT;
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init, .destroy = op_destroy, .lookup = op_lookup, .getattr = op_getattr,
	.open = op_open, .read = op_read, .flush = op_flush, .release = op_release,
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s MOUNTPOINT (see the comment at the top)\n", argv[0]);
		return 2;
	}
	memset(data, 'x', sizeof(data));
	noopen = getenv("NOOPEN") != NULL;
	doflush = getenv("FLUSH") != NULL;
	char *fargv[] = {argv[0], NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_set_signal_handlers(se) || fuse_session_mount(se, argv[1]))
		return 1;
	int rc;
	if (getenv("ST")) {
		rc = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		rc = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return rc ? 1 : 0;
}
