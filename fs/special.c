/*
 * special.c: names, attributes and contents of .watch, .session and .cluster (see special.h).
 *
 * .cluster is, for now, the `srvr` answer of the server the mount is connected to (mode, zxid,
 * counts); with replication it becomes the ensemble's view.
 */
#include "special.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "session.h"

static const char *const names[SPECIAL_COUNT] = {NULL, ".watch", ".session", ".cluster", ".history"};

int special_lookup(const char *name)
{
	for (int i = 1; i < SPECIAL_COUNT; i++)
		if (!strcmp(name, names[i]))
			return i;
	return 0;
}

const char *special_name(int id) { return id > 0 && id < SPECIAL_COUNT ? names[id] : NULL; }

void special_attr(struct coordfs *fs, int id, struct stat *st)
{
	static time_t started;
	if (!started)
		started = time(NULL);
	memset(st, 0, sizeof(*st));
	st->st_ino = special_ino(id);
	st->st_mode = S_IFREG | (id == SPECIAL_WATCH ? 0666 : 0444);
	st->st_nlink = 1;
	if (id == SPECIAL_HISTORY) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	}
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_atime = st->st_mtime = st->st_ctime = started;
}

int special_text(struct coordfs *fs, int id, char **text, size_t *len)
{
	if (id == SPECIAL_SESSION) {
		char buf[1024];
		size_t n = session_describe(fs, buf, sizeof(buf));
		*text = malloc(n + 1);
		if (!*text)
			return -ENOMEM;
		memcpy(*text, buf, n + 1);
		*len = n;
		return 0;
	}
	if (id == SPECIAL_CLUSTER) {
		char *t = NULL;
		int rc = remote_admin(fs, "srvr", &t);
		if (rc)
			return -coord_errno(rc);
		size_t n = strlen(t);
		if (n && t[n - 1] != '\n') {
			char *t2 = realloc(t, n + 2);
			if (!t2) {
				free(t);
				return -ENOMEM;
			}
			t = t2;
			t[n++] = '\n';
			t[n] = 0;
		}
		*text = t;
		*len = n;
		return 0;
	}
	return -EINVAL;
}
