/*
 * wire.h: the coordfs client protocol, version 1 (documented in common/WIRE.md).
 *
 * One ZeroMQ frame is one message: a client (DEALER) sends requests, the server (ROUTER) sends
 * replies and watch events. All integers are little-endian; byte strings are u32 length + bytes.
 *
 * Decoders never read outside the frame and never crash on any input: a malformed frame gives
 * COORD_EPROTO and a message. Decoded slices point into the frame, so the frame must outlive the
 * decoded struct; the only heap memory a decoder allocates is the multi op array, freed by
 * coord_req_clear / coord_reply_clear.
 */
#ifndef COORD_WIRE_H
#define COORD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define COORD_WIRE_VERSION 1

/* Hard limits of the protocol itself (the server's configurable limits are smaller or equal). */
#define COORD_MAX_PATH 4096        /* bytes in a path, including the leading '/' */
#define COORD_MAX_NAME 255         /* bytes in one path component */
#define COORD_MAX_DATA (64u << 20) /* bytes of data the protocol can carry at all */
#define COORD_MAX_MULTI 1024       /* sub-operations in one multi */
#define COORD_MAX_LIST 10000       /* names in one list page */
#define COORD_PASSWD_LEN 16
/* An authenticated principal (the name given to a client key), at most this many bytes. */
#define COORD_PRINCIPAL_MAX 64
/* An ACL's text form on the wire ("world:anyone:r,key:web:rwcd"), at most this many bytes. */
#define COORD_MAX_ACL_TEXT 1024

enum coord_op {
	COORD_OP_CONNECT = 1,   /* open or resume a session; always the first message of a connection */
	COORD_OP_PING = 2,      /* heartbeat */
	COORD_OP_CLOSE = 3,     /* close the session: its ephemeral nodes go at once */
	COORD_OP_CREATE = 4,
	COORD_OP_DELETE = 5,
	COORD_OP_EXISTS = 6,
	COORD_OP_GET = 7,
	COORD_OP_SET = 8,
	COORD_OP_LIST = 9,      /* one page of a node's sorted child names */
	COORD_OP_APPEND = 10,   /* atomic server-side append to a node's data */
	COORD_OP_RENAME = 11,   /* atomic rename of a node without children */
	COORD_OP_MULTI = 12,    /* all-or-nothing list of create/set/delete/check */
	COORD_OP_SYNC = 13,     /* bring the serving member up to the leader's commit point */
	COORD_OP_ADDWATCH = 14, /* persistent (recursive) watch, ZooKeeper 3.6 addWatch */
	COORD_OP_REMOVEWATCH = 15,
	COORD_OP_SETPOLICY = 16, /* set a directory's child policy, once */
	COORD_OP_CHECK = 17,    /* only inside multi: the version must match */
	COORD_OP_ADMIN = 18,    /* four-letter words: ruok, srvr, mntr, stat, ... */
	COORD_OP_SETWATCHES = 19, /* re-arm watches after a reconnect, relative to a zxid */
	COORD_OP_HISTORY = 20,  /* a node's kept data versions (version -1), or one version's data */
	COORD_OP_SETACL = 21,   /* set a node's ACL, with its expected aversion */
	COORD_OP_GETACL = 22,   /* a node's ACL (text form) and Stat */
	COORD_OP_MAX
};

/* create flags */
#define COORD_CREATE_EPHEMERAL 0x1u
#define COORD_CREATE_SEQUENTIAL 0x2u
#define COORD_CREATE_DIR 0x4u      /* the znode is a directory (else a file) */
#define COORD_CREATE_ACL 0x8u      /* a `bytes acl` field follows the policy (else: the parent's ACL) */
/* rename flags, as rename(2) */
#define COORD_RENAME_NOREPLACE 0x1u
#define COORD_RENAME_EXCHANGE 0x2u

/* child policy of a directory: what files created in it are */
#define COORD_POLICY_EPHEMERAL 0x1u
#define COORD_POLICY_SEQUENTIAL 0x2u

enum coord_kind { COORD_KIND_FILE = 0, COORD_KIND_DIR = 1 };

/* watch kinds for get/exists/list (one-shot) and addwatch (persistent) */
enum coord_watch_mode {
	COORD_WATCH_NONE = 0,
	COORD_WATCH_ONESHOT = 1,             /* get/exists: data watch; list: child watch */
	COORD_WATCH_PERSISTENT = 2,          /* addwatch: this node's data and child list */
	COORD_WATCH_PERSISTENT_RECURSIVE = 3 /* addwatch: every node of the subtree */
};

enum coord_event_type {
	COORD_EV_CREATED = 1,
	COORD_EV_DELETED = 2,
	COORD_EV_CHANGED = 3,  /* data changed */
	COORD_EV_CHILDREN = 4, /* child list changed */
	COORD_EV_OVERFLOW = 5, /* events under this path may have been lost: re-read it */
};

/* ZooKeeper's Stat, plus the node id, kind and child policy. Times are ms since the epoch. */
struct coord_stat {
	int64_t czxid, mzxid, pzxid;
	int64_t ctime, mtime;
	int32_t version, cversion, aversion;
	int64_t ephemeral_owner; /* session id, 0 for persistent nodes */
	int32_t data_length, num_children;
	uint64_t ino;            /* unique for the node's lifetime, never reused */
	uint8_t kind;            /* enum coord_kind */
	uint8_t policy;          /* COORD_POLICY_* bits */
};
#define COORD_STAT_WIRE_SIZE 78

/* One operation inside a multi. Ops: CREATE, SET, DELETE, CHECK. */
struct coord_subop {
	uint8_t op;
	struct slice path;
	struct slice data;    /* CREATE, SET */
	int32_t version;      /* SET, DELETE, CHECK; -1 = any */
	uint32_t flags;       /* CREATE */
	uint8_t policy;       /* CREATE of a directory */
	struct slice acl;     /* CREATE with COORD_CREATE_ACL: the ACL's text form */
};

struct coord_req {
	uint8_t op;
	uint64_t xid;        /* session-scoped sequence number: strictly increasing per session */
	uint64_t ack;        /* every reply with xid < ack has been received by the client */
	/* by op, see WIRE.md */
	struct slice path;
	struct slice path2;  /* RENAME: the new path */
	struct slice data;   /* CREATE, SET, APPEND */
	struct slice after;  /* LIST: start after this name ("" = from the start) */
	struct slice word;   /* ADMIN: the four-letter word */
	int32_t version;     /* SET, DELETE, APPEND, RENAME(source), CHECK: -1 = any; SETACL: the aversion;
				HISTORY: the version to read, -1 = list the kept versions */
	uint32_t flags;      /* CREATE: COORD_CREATE_*; RENAME: COORD_RENAME_* */
	uint8_t policy;      /* CREATE of a directory, SETPOLICY */
	struct slice acl;    /* CREATE with COORD_CREATE_ACL, SETACL: the ACL's text form */
	uint8_t watch;       /* EXISTS, GET, LIST: COORD_WATCH_ONESHOT; ADDWATCH/REMOVEWATCH: mode */
	uint32_t max;        /* LIST: most names in this page (0 = server default) */
	/* CONNECT */
	uint64_t session_id; /* 0 = new session */
	uint8_t passwd[COORD_PASSWD_LEN];
	uint32_t timeout_ms;
	uint64_t last_zxid;  /* the newest zxid this client has seen: never attach to a member behind it */
	/* SETWATCHES: relative zxid in last_zxid; paths as NUL-separated lists */
	struct slice data_watches, child_watches, persistent, recursive;
	/* MULTI */
	uint32_t nops;
	struct coord_subop *ops; /* heap, owned by the struct */
};

/* A reply to one request, or a watch event. */
enum coord_msg_kind { COORD_MSG_REPLY = 1, COORD_MSG_EVENT = 2 };

struct coord_subresult {
	uint8_t op;
	int32_t err;
	struct slice path;     /* CREATE: the created path */
	struct coord_stat stat; /* CREATE, SET */
};

struct coord_reply {
	uint8_t kind;        /* enum coord_msg_kind */
	uint8_t op;          /* the request's op (echoed) or 0 for events */
	int32_t err;         /* enum coord_err */
	uint64_t xid;        /* the request's xid */
	uint64_t zxid;       /* the server's last applied zxid when it replied */
	struct slice msg;    /* error detail for a person (may be empty) */
	/* by op */
	struct coord_stat stat; /* CREATE, EXISTS, GET, SET, LIST (the parent), APPEND, RENAME, SETACL, GETACL */
	struct slice data;      /* GET; ADMIN: the text */
	struct slice path;      /* CREATE: the created path; SYNC: the path */
	struct slice names;     /* LIST: names, each NUL-terminated, sorted */
	uint32_t count;         /* LIST: number of names */
	uint8_t more;           /* LIST: more names follow the last one */
	/* CONNECT */
	uint64_t session_id;
	uint8_t passwd[COORD_PASSWD_LEN];
	uint32_t timeout_ms;    /* the negotiated timeout */
	uint32_t server_id;
	uint32_t max_data;      /* the server's maxDataBytes */
	uint8_t watches_kept;   /* 1: this server still holds the session's watches (no re-arm needed) */
	struct slice principal; /* the session's authenticated principal; empty = anonymous (then absent on the wire) */
	/* GETACL: the ACL's text form, and the permissions the asking session holds on the node
	 * (COORD_PERM_* bits of acl.h; all of them for the superUser) */
	struct slice acl;
	uint8_t perms;
	/* HISTORY: nhist records of COORD_HIST_WIRE_SIZE bytes (read them with coord_hist_at);
	 * asking for one version also gives its bytes in data */
	uint32_t nhist;
	struct slice hist;
	/* MULTI */
	int32_t fail_index;     /* index of the op that failed, -1 if none */
	uint32_t nops;
	struct coord_subresult *ops; /* heap, owned by the struct */
	/* EVENT */
	uint8_t ev_type;        /* enum coord_event_type */
	struct slice ev_path;
};

/* Encode into b (appending). Returns 0, or COORD_ENOMEM. */
int coord_req_encode(struct buf *b, const struct coord_req *req);
int coord_reply_encode(struct buf *b, const struct coord_reply *rep);

/*
 * Decode one frame. On error returns COORD_EPROTO (or COORD_ENOMEM) and, when errbuf is given,
 * writes a one-line reason; the struct is then cleared. coord_reply_decode takes the op the
 * client sent for this xid (events carry none and need none: pass 0).
 */
int coord_req_decode(const void *frame, size_t len, struct coord_req *req, char *errbuf, size_t errlen);
int coord_reply_decode(const void *frame, size_t len, uint8_t op, struct coord_reply *rep,
		       char *errbuf, size_t errlen);
/* Peek at a reply frame's kind, xid and op without decoding the body. Returns 0 or COORD_EPROTO. */
int coord_reply_peek(const void *frame, size_t len, uint8_t *kind, uint64_t *xid, uint8_t *op);

void coord_req_clear(struct coord_req *req);
void coord_reply_clear(struct coord_reply *rep);

/* Stat: fixed 78-byte encoding, shared by replies, snapshots and the log. */
void coord_stat_put(struct buf *b, const struct coord_stat *st);
void coord_stat_get(struct rd *r, struct coord_stat *st);

/* One kept version of a node's data (HISTORY): i32 version | i64 mzxid | i64 mtime | u32 size. */
struct coord_hist {
	int32_t version;
	int64_t mzxid, mtime;
	uint32_t size;
};
#define COORD_HIST_WIRE_SIZE 24
void coord_hist_put(struct buf *b, const struct coord_hist *h);
/* The i-th record of a HISTORY reply; COORD_OK or COORD_EBADARG when i is out of range. */
int coord_hist_at(const struct coord_reply *rep, uint32_t i, struct coord_hist *h);

const char *coord_op_name(int op);
/* 1 if the op changes state (goes through the log), else 0 */
int coord_op_is_write(int op);

/* slice helpers */
static inline struct slice slice_of(const void *p, size_t n)
{
	struct slice s = {(const uint8_t *)p, (uint32_t)n};
	return s;
}
struct slice slice_str(const char *s);
int slice_eq(struct slice a, const char *s);
/* malloc'd NUL-terminated copy, NULL on ENOMEM */
char *slice_dup(struct slice s);

#endif
