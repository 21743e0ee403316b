/*
 * err.c: texts and errno mappings for enum coord_err.
 */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static const struct {
	const char *name;
	const char *text;
	int errnum;
} errs[COORD_ERR_COUNT] = {
	[COORD_OK] = {"OK", "success", 0},
	[COORD_ENONODE] = {"ENONODE", "no such node", ENOENT},
	[COORD_ENODEEXISTS] = {"ENODEEXISTS", "node already exists", EEXIST},
	[COORD_EBADVERSION] = {"EBADVERSION", "version mismatch: the node changed since it was read", ESTALE},
	[COORD_ENOTEMPTY] = {"ENOTEMPTY", "node has children", ENOTEMPTY},
	[COORD_EEPHEMERAL] = {"EEPHEMERAL", "ephemeral nodes cannot have children", ENOTDIR},
	[COORD_ENOTDIR] = {"ENOTDIR", "parent is a file and cannot have children", ENOTDIR},
	[COORD_EBADPATH] = {"EBADPATH", "invalid path", EINVAL},
	[COORD_ENAMETOOLONG] = {"ENAMETOOLONG", "path or name too long", ENAMETOOLONG},
	[COORD_ETOOLARGE] = {"ETOOLARGE", "data larger than the server's maxDataBytes", EFBIG},
	[COORD_EBADARG] = {"EBADARG", "invalid argument", EINVAL},
	[COORD_ESESSIONEXPIRED] = {"ESESSIONEXPIRED", "session expired", ETIMEDOUT},
	[COORD_ECONNLOSS] = {"ECONNLOSS", "no server reachable", ENOTCONN},
	[COORD_ETIMEOUT] = {"ETIMEOUT", "operation timed out", ETIMEDOUT},
	[COORD_EPROTO] = {"EPROTO", "malformed message", EPROTO},
	[COORD_EUNIMPL] = {"EUNIMPL", "operation not implemented", ENOSYS},
	[COORD_ENOMEM] = {"ENOMEM", "out of memory", ENOMEM},
	[COORD_EIO] = {"EIO", "I/O error", EIO},
	[COORD_ENOSPC] = {"ENOSPC", "no space left on the server's disk; writes are refused until space is freed", ENOSPC},
	[COORD_ELIMIT] = {"ELIMIT", "limit exceeded", EAGAIN},
	[COORD_ENOAUTH] = {"ENOAUTH", "not authorised", EACCES},
	[COORD_EBADCONFIG] = {"EBADCONFIG", "invalid configuration", EINVAL},
	[COORD_EPOLICY] = {"EPOLICY", "child policy already set, or node is not a directory", EPERM},
	[COORD_EISDIR] = {"EISDIR", "node is a directory", EISDIR},
	[COORD_ENOTREADY] = {"ENOTREADY", "server not ready to serve", EAGAIN},
	[COORD_ECLOSING] = {"ECLOSING", "client is closing", ESHUTDOWN},
	[COORD_EROLLEDBACK] = {"EROLLEDBACK", "not applied: another operation of the multi failed", ECANCELED},
	[COORD_EDUPLICATE] = {"EDUPLICATE", "resent request is older than the session's reply window", EPROTO},
};

static int valid(int err) { return err >= 0 && err < COORD_ERR_COUNT && errs[err].name; }

const char *coord_strerror(int err) { return valid(err) ? errs[err].text : "unknown error"; }

int coord_errno(int err) { return valid(err) ? errs[err].errnum : EIO; }

const char *coord_errname(int err) { return valid(err) ? errs[err].name : "EUNKNOWN"; }

void coord_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
