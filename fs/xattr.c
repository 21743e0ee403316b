/*
 * xattr.c: the znode's Stat and more as user.coord.* extended attributes.
 *
 * Read-only: czxid, mzxid, pzxid (hex zxids), version, cversion, aversion, ephemeralOwner (hex
 * session id, 0x0 for persistent nodes), dataLength, numChildren, ctime, mtime (ms since the
 * epoch), kind (file|dir), ino, name (the node's own name: on a descriptor from a sequential
 * create, the name the server gave it). Directories also have children (their child policy:
 * none|ephemeral|sequential|ephemeral,sequential; set once with setfattr) and data (the
 * directory's own data, read and written whole). Every node has acl: its ACL in text form
 * (world:anyone:r,key:web:rwcd), asked from the server at each read (never cached: a setACL fires
 * no event), replaced by setfattr whatever its aversion. Any other attribute is not supported.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "cache.h"
#include "err.h"
#include "inode.h"
#include "ops.h"
#include "session.h"
#include "history.h"
#include "special.h"

#define PREFIX "user.coord."
#define PREFIX_LEN (sizeof(PREFIX) - 1)

static const char *const stat_names[] = {
	"czxid", "mzxid", "pzxid", "version", "cversion", "aversion", "ephemeralOwner", "dataLength",
	"numChildren", "ctime", "mtime", "kind", "ino", "name",
};
#define NSTAT (sizeof(stat_names) / sizeof(stat_names[0]))

static const char *policy_text(uint8_t p)
{
	switch (p & (COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL)) {
	case COORD_POLICY_EPHEMERAL:
		return "ephemeral";
	case COORD_POLICY_SEQUENTIAL:
		return "sequential";
	case COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL:
		return "ephemeral,sequential";
	default:
		return "none";
	}
}

static int parse_policy(const char *v, size_t n, uint8_t *out)
{
	char buf[64];
	while (n && (v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\0'))
		n--;
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, n);
	buf[n] = 0;
	uint8_t p = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (!strcmp(tok, "ephemeral"))
			p |= COORD_POLICY_EPHEMERAL;
		else if (!strcmp(tok, "sequential"))
			p |= COORD_POLICY_SEQUENTIAL;
		else
			return -EINVAL;
	}
	if (!p)
		return -EINVAL;
	*out = p;
	return 0;
}

static void reply_value(fuse_req_t req, const char *v, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, len);
}

void xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct coordfs *fs = fs_of(req);
	if ((ino & FS_SPECIAL_BIT) || strncmp(name, PREFIX, PREFIX_LEN) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	const char *key = name + PREFIX_LEN;
	char path[COORD_MAX_PATH + 2];
	struct coord_stat st;
	int rc = ops_node_stat(fs, ino, &st, path, sizeof(path));
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	char v[COORD_MAX_NAME + 64];
	int n = -1;
	if (!strcmp(key, "czxid"))
		n = snprintf(v, sizeof(v), "0x%" PRIx64, (uint64_t)st.czxid);
	else if (!strcmp(key, "mzxid"))
		n = snprintf(v, sizeof(v), "0x%" PRIx64, (uint64_t)st.mzxid);
	else if (!strcmp(key, "pzxid"))
		n = snprintf(v, sizeof(v), "0x%" PRIx64, (uint64_t)st.pzxid);
	else if (!strcmp(key, "version"))
		n = snprintf(v, sizeof(v), "%" PRId32, st.version);
	else if (!strcmp(key, "cversion"))
		n = snprintf(v, sizeof(v), "%" PRId32, st.cversion);
	else if (!strcmp(key, "aversion"))
		n = snprintf(v, sizeof(v), "%" PRId32, st.aversion);
	else if (!strcmp(key, "ephemeralOwner"))
		n = snprintf(v, sizeof(v), "0x%" PRIx64, (uint64_t)st.ephemeral_owner);
	else if (!strcmp(key, "dataLength"))
		n = snprintf(v, sizeof(v), "%" PRId32, st.data_length);
	else if (!strcmp(key, "numChildren"))
		n = snprintf(v, sizeof(v), "%" PRId32, st.num_children);
	else if (!strcmp(key, "ctime"))
		n = snprintf(v, sizeof(v), "%" PRId64, st.ctime);
	else if (!strcmp(key, "mtime"))
		n = snprintf(v, sizeof(v), "%" PRId64, st.mtime);
	else if (!strcmp(key, "kind"))
		n = snprintf(v, sizeof(v), "%s", st.kind == COORD_KIND_DIR ? "dir" : "file");
	else if (!strcmp(key, "ino"))
		n = snprintf(v, sizeof(v), "%" PRIu64, st.ino);
	else if (!strcmp(key, "name")) {
		const char *b = strrchr(path, '/');
		n = snprintf(v, sizeof(v), "%s", b && b[1] ? b + 1 : "/");
	} else if (!strcmp(key, "children") && st.kind == COORD_KIND_DIR)
		n = snprintf(v, sizeof(v), "%s", policy_text(st.policy));
	else if (!strcmp(key, "acl")) {
		char *acl = NULL;
		int arc = remote_getacl(fs, path, &acl, NULL);
		if (arc) {
			fuse_reply_err(req, coord_errno(arc));
			return;
		}
		reply_value(req, acl, strlen(acl), size);
		free(acl);
		return;
	} else if (!strcmp(key, "data") && st.kind == COORD_KIND_DIR) {
		void *data = NULL;
		size_t len = 0;
		struct snap s;
		int grc = remote_get(fs, path, &data, &len, &st, &s);
		if (grc) {
			fuse_reply_err(req, coord_errno(grc));
			return;
		}
		reply_value(req, data, len, size);
		free(data);
		return;
	}
	if (n < 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	reply_value(req, v, (size_t)n, size);
}

void xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct coordfs *fs = fs_of(req);
	if (ino & FS_SPECIAL_BIT) {
		reply_value(req, "", 0, size);
		return;
	}
	struct coord_stat st;
	int rc = ops_node_stat(fs, ino, &st, NULL, 0);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	char buf[1024];
	size_t len = 0;
	for (size_t i = 0; i < NSTAT; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, PREFIX "%s", stat_names[i]) + 1;
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, PREFIX "acl") + 1;
	if (st.kind == COORD_KIND_DIR) {
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, PREFIX "children") + 1;
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, PREFIX "data") + 1;
	}
	reply_value(req, buf, len, size);
}

void xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags)
{
	struct coordfs *fs = fs_of(req);
	if (history_owns(ino)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (special_of(ino) || strncmp(name, PREFIX, PREFIX_LEN) != 0) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	const char *key = name + PREFIX_LEN;
	char path[COORD_MAX_PATH + 2];
	int n = ops_path(fs, ino, path, sizeof(path));
	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	int rc;
	if (!strcmp(key, "children")) {
		uint8_t policy;
		int prc = parse_policy(value, size, &policy);
		if (prc) {
			fuse_reply_err(req, -prc);
			return;
		}
		rc = remote_setpolicy(fs, path, policy);
	} else if (!strcmp(key, "acl")) {
		size_t len = size;
		while (len && value[len - 1] == '\0') /* setfattr -v may count a terminator */
			len--;
		struct coord_acl acl;
		if (coord_acl_parse(value, len, &acl, NULL, 0)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		rc = remote_setacl(fs, path, value, len);
	} else if (!strcmp(key, "data")) {
		struct coord_stat st;
		int src = ops_node_stat(fs, ino, &st, NULL, 0);
		if (src) {
			fuse_reply_err(req, -src);
			return;
		}
		if (st.kind != COORD_KIND_DIR) {
			fuse_reply_err(req, EPERM); /* a file's data is its contents */
			return;
		}
		rc = remote_set(fs, path, value, size, -1, &st);
	} else {
		fuse_reply_err(req, EPERM); /* the Stat is the server's */
		return;
	}
	fuse_reply_err(req, rc ? coord_errno(rc) : 0);
}

void xattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (history_owns(ino))
		fuse_reply_err(req, EROFS);
	else if (!special_of(ino) && !strncmp(name, PREFIX, PREFIX_LEN))
		fuse_reply_err(req, EPERM);
	else
		fuse_reply_err(req, ENOTSUP);
}
