/*
 * client.h: one session with a coordfs ensemble, shared by coordfs and coordctl.
 *
 * Each client runs one I/O thread that owns its ZeroMQ DEALER socket; every function here is
 * thread-safe and may be called from any thread but the I/O thread (callbacks run on it and must
 * not block or call the sync functions). Requests are pipelined: many may be in flight, and they
 * take effect in the order submitted. The I/O thread heartbeats the server; when a server stops
 * answering (no reply within a third of the session timeout) it moves to the next host (names
 * resolved again each time), resumes the session with its id and password, refuses members behind
 * the last zxid it saw, and resends every unanswered request with its original xid, which the
 * server applies at most once. A session the server declares expired is reported (on_state with
 * COORD_STATE_EXPIRED) and every pending request fails with COORD_ESESSIONEXPIRED.
 */
#ifndef COORD_CLIENT_H
#define COORD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct coord_client;

enum coord_state {
	COORD_STATE_CONNECTING = 0,   /* looking for a server (session still valid) */
	COORD_STATE_CONNECTED = 1,
	COORD_STATE_EXPIRED = 2,      /* the server declared the session dead: open a new client */
	COORD_STATE_CLOSED = 3,
};

struct coord_event {
	uint8_t type;                 /* enum coord_event_type */
	const char *path;             /* NUL-terminated, valid during the callback only */
	uint64_t zxid;
};

struct coord_client_opts {
	const char *hosts;            /* "host:port[,host:port...]" */
	int session_timeout_ms;       /* requested; the server clamps it */
	int connect_timeout_ms;       /* coord_client_open gives up after this (default: session timeout) */
	uint64_t session_id;          /* nonzero: resume this session */
	uint8_t passwd[COORD_PASSWD_LEN];
	/* Called on the I/O thread. */
	void (*on_event)(void *arg, const struct coord_event *ev);
	void (*on_state)(void *arg, int state);
	void *arg;
	/* CurveZMQ: this client's key pair file (NAME.key) and the ensemble's public key file; both
	 * NULL: the keys of coord_client_set_keys, else plaintext (for servers with auth=none). */
	const char *key_file;
	const char *server_key_file;
};

/*
 * Process-wide keys for clients opened without their own and for coord_admin_oneshot (call once,
 * before opening clients). Both NULL: plaintext. COORD_OK, or COORD_EBADARG with a message naming
 * the file. A server that refuses the key makes coord_client_open fail with COORD_ENOAUTH ("server
 * refused our key (not authorised)"), or COORD_ELIMIT when it refuses the connection for
 * maxClientCnxns, once every host refused, instead of waiting out the timeout.
 */
int coord_client_set_keys(const char *key_file, const char *server_key_file, char *err, size_t errlen);

/* A reply with its own memory: rep's slices point into frame. err is rep.err. */
struct coord_result {
	int err;
	struct coord_reply rep;
	void *frame;
	size_t len;
	char msg[256];                /* a person-readable error text, "" when err == 0 */
};
void coord_result_free(struct coord_result *res);

/*
 * Connect and open (or resume) a session; blocks until connected or connect_timeout_ms passes.
 * Returns COORD_OK, COORD_ECONNLOSS (no server answered), COORD_ESESSIONEXPIRED (resume of a dead
 * session), COORD_EBADARG (unparsable hosts, bad key files), COORD_ENOAUTH (every server refused the
 * handshake: key not authorised, or keys missing or not expected) with a message in err.
 */
int coord_client_open(const struct coord_client_opts *opts, struct coord_client **out,
		      char *err, size_t errlen);
/* Close the session (its ephemeral nodes go at once), stop the thread, free. */
void coord_client_close(struct coord_client *c);
/* Stop the thread and free without closing the session (it will expire), as a crash would. */
void coord_client_abandon(struct coord_client *c);

/*
 * Send a request; done(arg, res) runs on the I/O thread when the reply comes (res is then the
 * callback's to free with coord_result_free and free()). The xid and ack fields are assigned here.
 */
typedef void (*coord_done_fn)(void *arg, struct coord_result *res);
int coord_submit(struct coord_client *c, const struct coord_req *req, coord_done_fn done, void *arg);
/* Send a request and wait for its reply. Returns res->err. Free res with coord_result_free. */
int coord_call(struct coord_client *c, const struct coord_req *req, struct coord_result *res);

/*
 * Synchronous conveniences. Out-pointers may be NULL; strings and data are malloc'd for the
 * caller. Each returns an enum coord_err; coord_last_error() gives this thread's last message.
 */
int coord_create(struct coord_client *c, const char *path, const void *data, size_t len,
		 uint32_t flags, uint8_t policy, char **created, struct coord_stat *st);
/* The same with an ACL in its text form ("world:anyone:r,key:web:rwcd"); NULL = the parent's. */
int coord_create_acl(struct coord_client *c, const char *path, const void *data, size_t len,
		     uint32_t flags, uint8_t policy, const char *acl, char **created, struct coord_stat *st);
/* A node's ACL in its canonical text form (malloc'd), the permissions this session holds on it
 * (COORD_PERM_* bits) and its Stat (aversion). Needs read or admin. */
int coord_getacl(struct coord_client *c, const char *path, char **acl, unsigned *perms, struct coord_stat *st);
/* Replace a node's ACL if its aversion is still `aversion` (-1 = any; else COORD_EBADVERSION).
 * Needs admin. */
int coord_setacl(struct coord_client *c, const char *path, const char *acl, int32_t aversion,
		 struct coord_stat *st);
int coord_get(struct coord_client *c, const char *path, int watch, void **data, size_t *len,
	      struct coord_stat *st);
int coord_set(struct coord_client *c, const char *path, const void *data, size_t len,
	      int32_t version, struct coord_stat *st);
int coord_append(struct coord_client *c, const char *path, const void *data, size_t len,
		 struct coord_stat *st);
int coord_delete(struct coord_client *c, const char *path, int32_t version);
int coord_exists(struct coord_client *c, const char *path, int watch, struct coord_stat *st);
/* Every child name, sorted, fetched page by page; free with coord_names_free. */
int coord_list(struct coord_client *c, const char *path, int watch, char ***names, size_t *count,
	       struct coord_stat *st);
void coord_names_free(char **names, size_t count);
/* Versioned reads: the versions of path still kept, oldest first, the current one last (none when
 * the server keeps no history); *hist is malloc'd. */
int coord_history(struct coord_client *c, const char *path, struct coord_hist **hist, uint32_t *n,
		  struct coord_stat *st);
/* One kept version's data (malloc'd, NUL-terminated, len not counting it). COORD_ENONODE when it
 * is no longer kept. */
int coord_get_version(struct coord_client *c, const char *path, int32_t version, void **data, size_t *len,
		      struct coord_hist *h);
int coord_rename(struct coord_client *c, const char *from, const char *to, uint32_t flags,
		 struct coord_stat *st);
int coord_setpolicy(struct coord_client *c, const char *path, uint8_t policy);
int coord_sync(struct coord_client *c, const char *path);
int coord_addwatch(struct coord_client *c, const char *path, int mode);
int coord_removewatch(struct coord_client *c, const char *path, int mode);
int coord_admin(struct coord_client *c, const char *word, char **text);
const char *coord_last_error(void);

/*
 * One admin word without a session (ruok/srvr/mntr as ZooKeeper's four-letter words): connects to
 * the first answering host, asks, returns the text. For coordctl's admin commands.
 */
int coord_admin_oneshot(const char *hosts, const char *word, int timeout_ms, char **text,
			char *err, size_t errlen);

int coord_client_state(struct coord_client *c);
uint64_t coord_client_session_id(struct coord_client *c);
void coord_client_passwd(struct coord_client *c, uint8_t passwd[COORD_PASSWD_LEN]);
int coord_client_timeout_ms(struct coord_client *c);   /* negotiated */
uint64_t coord_client_last_zxid(struct coord_client *c);
uint32_t coord_client_max_data(struct coord_client *c);
/* The principal the server authenticated this session as, from the connect reply ("" = anonymous). */
void coord_client_principal(struct coord_client *c, char *buf, size_t len);
/* "host:port" of the connected server, copied into buf ("" when not connected). */
void coord_client_server(struct coord_client *c, char *buf, size_t len);

#endif
