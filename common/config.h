/*
 * config.h: the server's configuration, read from a zoo.cfg-style file.
 *
 * Keys as ZooKeeper's (dataDir, dataLogDir, clientPort, clientPortAddress, tickTime,
 * minSessionTimeout, maxSessionTimeout, snapCount, initLimit, syncLimit, maxClientCnxns) plus
 * coordfs's own (maxDataBytes, historyDepth, historyBytes), and one line per member
 * "server.N=host:peerPort:electionPort[:observer|:participant][;[addr:]clientPort]".
 * The member's own number comes from dataDir/myid. No server lines: standalone.
 * Parsing is all or nothing: an error names the file, the line and what is wrong.
 */
#ifndef COORD_CONFIG_H
#define COORD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define COORD_MAX_MEMBERS 32
#define COORD_HOST_MAX 256
#define COORD_DIR_MAX 1024

/* How clients and members prove who they are (README "Security"). */
enum coord_auth {
	COORD_AUTH_UNSET = 0,  /* neither auth= nor key files: coordd refuses to start */
	COORD_AUTH_NONE = 1,   /* auth=none: plaintext, anyone who reaches a port is trusted */
	COORD_AUTH_CURVE = 2,  /* CurveZMQ on both ports, ZAP admits listed keys only */
};

struct coord_member {
	int id;
	char host[COORD_HOST_MAX];
	int peer_port, election_port;
	int client_port;       /* 0 if the line gave none */
	char client_addr[COORD_HOST_MAX]; /* "" if the line gave none */
	int observer;          /* 1 for a non-voting observer */
};

struct coord_config {
	char path[COORD_DIR_MAX];          /* the file it was read from */
	char data_dir[COORD_DIR_MAX];      /* required */
	char data_log_dir[COORD_DIR_MAX];  /* default: data_dir */
	int client_port;                   /* default 2181 */
	char client_addr[COORD_HOST_MAX];  /* default "0.0.0.0" */
	int tick_time;                     /* ms, default 2000 */
	int min_session_timeout;           /* ms, default 2 * tickTime */
	int max_session_timeout;           /* ms, default 20 * tickTime */
	int init_limit, sync_limit;        /* ticks, defaults 10 and 5 */
	long snap_count;                   /* transactions between snapshots, default 100000 */
	uint32_t max_data_bytes;           /* default 1 MiB */
	int history_depth;                 /* versions kept per znode, default 10, 0 = off */
	uint32_t history_bytes;            /* bytes of history per znode, default 1 MiB */
	char super_user[65];               /* superUser (coordfs's own key): passes every ACL check; "" = none */
	int max_client_cnxns;              /* per client address, default 60, 0 = unlimited */
	int my_id;                         /* from dataDir/myid; 0 when standalone without myid */
	/* Authentication and limits (README "Security"): auth, clientSecretKeyFile,
	 * authorizedKeysFile, secretKeyFile, memberKeysFile, maxSessionRequests, maxSessionWatches. */
	int max_session_requests;          /* outstanding requests per session, default 10000 */
	int max_session_watches;           /* watches per session, default 100000 */
	int auth;                          /* enum coord_auth: auth=, or implied by the key files */
	char client_secret_key_file[COORD_DIR_MAX]; /* the ensemble's client-port key pair */
	char authorized_keys_file[COORD_DIR_MAX];   /* "PRINCIPAL Z85KEY" per line */
	char secret_key_file[COORD_DIR_MAX];        /* this member's own key pair (peer port) */
	char member_keys_file[COORD_DIR_MAX];       /* "server.N Z85KEY" per member */
	int nmembers;
	struct coord_member members[COORD_MAX_MEMBERS];
};

/* Defaults for every key (data_dir empty). */
void coord_config_defaults(struct coord_config *cfg);
/*
 * Read and validate `file`, then dataDir/myid when there are server lines. Returns COORD_OK or
 * COORD_EBADCONFIG with a message like "coord.cfg:7: tickTime: '0' is not a positive integer".
 */
int coord_config_load(const char *file, struct coord_config *cfg, char *err, size_t errlen);
/* Parse one "key=value" line (no comment, trimmed) into cfg; used by load and by tests. */
int coord_config_line(struct coord_config *cfg, const char *line, char *err, size_t errlen);
/*
 * coordd's rule for authentication: CURVE needs its key files, plaintext needs auth=none said
 * out loud. COORD_OK, or COORD_EBADCONFIG with a message that says what to add.
 */
int coord_config_check_auth(const struct coord_config *cfg, char *err, size_t errlen);
/* The member entry for my_id, or NULL (standalone). */
const struct coord_member *coord_config_self(const struct coord_config *cfg);

#endif
