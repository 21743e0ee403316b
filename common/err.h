/*
 * err.h: the one list of coordfs error codes.
 *
 * Every function that can fail returns one of these (0 is success). Each code has a short text
 * and the errno a filesystem user expects; both tables live in err.c. Codes travel on the wire as
 * their numeric value, so values are fixed once assigned: append, never renumber.
 */
#ifndef COORD_ERR_H
#define COORD_ERR_H

#include <stddef.h>

enum coord_err {
	COORD_OK = 0,
	COORD_ENONODE = 1,        /* the node does not exist (ENOENT) */
	COORD_ENODEEXISTS = 2,    /* the node already exists (EEXIST) */
	COORD_EBADVERSION = 3,    /* expected version does not match (ESTALE) */
	COORD_ENOTEMPTY = 4,      /* the node has children (ENOTEMPTY) */
	COORD_EEPHEMERAL = 5,     /* ephemeral nodes cannot have children (ENOTDIR) */
	COORD_ENOTDIR = 6,        /* the parent is a file; files have no children (ENOTDIR) */
	COORD_EBADPATH = 7,       /* the path breaks the path rules (EINVAL) */
	COORD_ENAMETOOLONG = 8,   /* a path or name is too long (ENAMETOOLONG) */
	COORD_ETOOLARGE = 9,      /* data over maxDataBytes (EFBIG) */
	COORD_EBADARG = 10,       /* a malformed or contradictory argument (EINVAL) */
	COORD_ESESSIONEXPIRED = 11, /* the session has expired or was closed (ETIMEDOUT) */
	COORD_ECONNLOSS = 12,     /* no server could be reached in time (ENOTCONN) */
	COORD_ETIMEOUT = 13,      /* the operation timed out (ETIMEDOUT) */
	COORD_EPROTO = 14,        /* malformed message on the wire (EPROTO) */
	COORD_EUNIMPL = 15,       /* operation not implemented by this server (ENOSYS) */
	COORD_ENOMEM = 16,        /* out of memory (ENOMEM) */
	COORD_EIO = 17,           /* a disk or system call failed (EIO) */
	COORD_ENOSPC = 18,        /* the disk is full: writes stop, nothing acknowledged is lost (ENOSPC) */
	COORD_ELIMIT = 19,        /* a per-session or per-client limit was hit (EAGAIN) */
	COORD_ENOAUTH = 20,       /* not authorised for this operation (EACCES) */
	COORD_EBADCONFIG = 21,    /* the configuration is invalid (EINVAL) */
	COORD_EPOLICY = 22,       /* the child policy is already set or the node is not a directory (EPERM) */
	COORD_EISDIR = 23,        /* a directory where a file was required (EISDIR) */
	COORD_ENOTREADY = 24,     /* the server is not serving yet (no quorum, recovering) (EAGAIN) */
	COORD_ECLOSING = 25,      /* the client is closing (ESHUTDOWN) */
	COORD_EDUPLICATE = 26,    /* a resent request older than the session's acknowledged window (EPROTO) */
	COORD_EROLLEDBACK = 27,   /* not applied: another operation of the same multi failed (ECANCELED) */
	COORD_ERR_COUNT
};

/* Short, stable description of a code ("no such node"). Never NULL. */
const char *coord_strerror(int err);
/* Write a formatted message into err (nothing when err is NULL or errlen 0). */
void coord_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The errno a filesystem or shell user expects for a code (ENOENT for COORD_ENONODE, ...). */
int coord_errno(int err);
/* The stable identifier of a code ("ENONODE"), for logs and the wire document. */
const char *coord_errname(int err);

#endif
