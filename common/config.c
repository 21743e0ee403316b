/*
 * config.c: read and check a zoo.cfg-style configuration (see config.h).
 *
 * The file is read line by line: blank lines and lines whose first non-blank character is '#'
 * are skipped; every other line is "key=value" with blanks trimmed around both. Only whole-line
 * comments exist (as in ZooKeeper, whose Properties reader also keeps a trailing "# ..." in the
 * value): "tickTime=2000 # ms" is an error that shows the whole value. A key given twice is an
 * error that names both lines. Everything is parsed into a scratch copy and handed to the caller
 * only when the whole file, the derived defaults and dataDir/myid check out.
 *
 * Host names are stored without IPv6 brackets ("[::1]" is kept as "::1", as getaddrinfo wants
 * it); whoever builds an endpoint string from them puts the brackets back.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "acl.h"
#include "err.h"
#include "log.h"

enum kind {
	K_INT,      /* int field, whole number in [min, max] */
	K_LONG,     /* long field */
	K_U32,      /* uint32_t field */
	K_PRINCIPAL, /* char[COORD_PRINCIPAL_MAX + 1] field, a principal name */
	K_DIR,      /* char[COORD_DIR_MAX] field, non-empty */
	K_HOST,     /* char[COORD_HOST_MAX] field, a host name or address */
	K_PEERTYPE, /* peerType=participant|observer: checked against the member's own line */
	K_IGNORED,  /* a ZooKeeper key coordfs accepts and does not use */
	K_AUTH,     /* auth=none|curve */
};

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	long long min, max;
	const char *expect; /* what a good value looks like, for messages */
};

#define F(field) offsetof(struct coord_config, field)

static const struct key keys[] = {
	{"dataDir", K_DIR, F(data_dir), 0, 0, "a directory for snapshots and myid"},
	{"dataLogDir", K_DIR, F(data_log_dir), 0, 0, "a directory for the transaction log"},
	{"clientPort", K_INT, F(client_port), 1, 65535, "a TCP port, 1..65535"},
	{"clientPortAddress", K_HOST, F(client_addr), 0, 0, "a host name or IP address to listen on"},
	{"tickTime", K_INT, F(tick_time), 1, 3600000, "milliseconds, 1..3600000"},
	{"minSessionTimeout", K_INT, F(min_session_timeout), 1, INT_MAX, "milliseconds, 1..2147483647"},
	{"maxSessionTimeout", K_INT, F(max_session_timeout), 1, INT_MAX, "milliseconds, 1..2147483647"},
	{"initLimit", K_INT, F(init_limit), 1, 1000000, "ticks, 1..1000000"},
	{"syncLimit", K_INT, F(sync_limit), 1, 1000000, "ticks, 1..1000000"},
	{"snapCount", K_LONG, F(snap_count), 2, 1000000000, "transactions, 2..1000000000"},
	{"maxDataBytes", K_U32, F(max_data_bytes), 1024, 64 * 1024 * 1024,
	 "bytes, 1024 (1 KiB)..67108864 (64 MiB)"},
	{"historyDepth", K_INT, F(history_depth), 0, 1000, "versions, 0..1000 (0 = off)"},
	{"historyBytes", K_U32, F(history_bytes), 0, 1024LL * 1024 * 1024,
	 "bytes, 0..1073741824 (1 GiB)"},
	{"maxClientCnxns", K_INT, F(max_client_cnxns), 0, 1000000, "connections, 0..1000000 (0 = unlimited)"},
	{"maxSessionRequests", K_INT, F(max_session_requests), 1, 10000000, "requests, 1..10000000"},
	{"maxSessionWatches", K_INT, F(max_session_watches), 1, 100000000, "watches, 1..100000000"},
	{"auth", K_AUTH, F(auth), 0, 0, "none or curve"},
	{"clientSecretKeyFile", K_DIR, F(client_secret_key_file), 0, 0, "the ensemble's client key pair file"},
	{"authorizedKeysFile", K_DIR, F(authorized_keys_file), 0, 0, "a file of 'PRINCIPAL Z85KEY' lines"},
	{"secretKeyFile", K_DIR, F(secret_key_file), 0, 0, "this member's key pair file"},
	{"memberKeysFile", K_DIR, F(member_keys_file), 0, 0, "a file of 'server.N Z85KEY' lines"},
	{"peerType", K_PEERTYPE, 0, 0, 0, "participant or observer"},
	{"superUser", K_PRINCIPAL, F(super_user), 0, 0, "a principal name, 1..64 characters of A-Z a-z 0-9 . _ @ + = -"},
	{"autopurge.snapRetainCount", K_IGNORED, 0, 0, 0, NULL},
	{"autopurge.purgeInterval", K_IGNORED, 0, 0, 0, NULL},
	{"4lw.commands.whitelist", K_IGNORED, 0, 0, 0, NULL},
	{"admin.enableServer", K_IGNORED, 0, 0, 0, NULL},
	{"admin.serverPort", K_IGNORED, 0, 0, 0, NULL},
	{"standaloneEnabled", K_IGNORED, 0, 0, 0, NULL},
	{"reconfigEnabled", K_IGNORED, 0, 0, 0, NULL},
	{"preAllocSize", K_IGNORED, 0, 0, 0, NULL},
	{"globalOutstandingLimit", K_IGNORED, 0, 0, 0, NULL},
	{"forceSync", K_IGNORED, 0, 0, 0, NULL},
	{"electionAlg", K_IGNORED, 0, 0, 0, NULL},
	{"quorumListenOnAllIPs", K_IGNORED, 0, 0, 0, NULL},
	{"secureClientPort", K_IGNORED, 0, 0, 0, NULL},
	{"metricsProvider.className", K_IGNORED, 0, 0, 0, NULL},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
#define SERVER_EXPECT \
	"expected server.N=host:peerPort:electionPort[:participant|:observer][;[clientAddr:]clientPort]"

/* What load knows that a single line does not: where things were said. */
struct ctx {
	int line;                             /* the line being parsed */
	int key_line[NKEYS];                  /* line each key was set on, 0 = not set */
	int member_line[COORD_MAX_MEMBERS];   /* line of each members[] entry */
	int peer_type;                        /* -1 not given, 0 participant, 1 observer */
	int last_key;                         /* index of the key the last line set, -1 for server.N */
};

/* A value as it is shown in a message: at most 64 bytes, control characters as '?'. */
static const char *show(const char *s, char *out, size_t outlen)
{
	size_t n = 0, len = strlen(s);
	for (size_t i = 0; i < len && n + 4 < outlen; i++) {
		if (n >= 64) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		unsigned char c = (unsigned char)s[i];
		out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[n] = '\0';
	return out;
}

/* Parse a whole decimal number (digits only, no sign) into *v. 0 ok, -1 not a number, -2 too big. */
static int parse_whole(const char *s, long long *v)
{
	if (!*s)
		return -1;
	long long x = 0;
	int big = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (x > (LLONG_MAX - 9) / 10)
			big = 1;
		else
			x = x * 10 + (*p - '0');
	}
	if (big)
		return -2;
	*v = x;
	return 0;
}

/* Check a whole number against [min, max]; on error write "KEY: 'v' is ... (expect)". */
static int number(const char *key, const char *val, long long min, long long max, const char *expect,
		  long long *out, char *err, size_t errlen)
{
	char sv[80];
	long long v = 0;
	int r = parse_whole(val, &v);
	if (r == -1 || (r == 0 && v == 0 && min >= 1)) {
		coord_seterr(err, errlen, "%s: '%s' is not a %s (expected %s)", key, show(val, sv, sizeof sv),
		       min >= 1 ? "positive integer" : "whole number", expect);
		return COORD_EBADCONFIG;
	}
	if (r == -2 || v < min || v > max) {
		coord_seterr(err, errlen, "%s: '%s' is out of range (expected %s)", key, show(val, sv, sizeof sv), expect);
		return COORD_EBADCONFIG;
	}
	*out = v;
	return COORD_OK;
}

/*
 * A host name or address: non-empty, shorter than COORD_HOST_MAX, letters, digits and ".-_";
 * an IPv6 address in brackets ("[::1]", "[fe80::1%eth0]") is stored without them.
 */
static int host(const char *what, const char *val, char *out, char *err, size_t errlen)
{
	char sv[80];
	size_t len = strlen(val);
	const char *p = val;
	int v6 = 0;
	if (len == 0) {
		coord_seterr(err, errlen, "%s: the host is empty (expected a host name or IP address)", what);
		return COORD_EBADCONFIG;
	}
	if (val[0] == '[') {
		if (len < 3 || val[len - 1] != ']') {
			coord_seterr(err, errlen, "%s: '%s' is not a bracketed IPv6 address (expected [addr])", what,
			       show(val, sv, sizeof sv));
			return COORD_EBADCONFIG;
		}
		p = val + 1;
		len -= 2;
		v6 = 1;
	}
	if (len >= COORD_HOST_MAX) {
		coord_seterr(err, errlen, "%s: the host is %zu bytes long (expected at most %d)", what, len,
		       COORD_HOST_MAX - 1);
		return COORD_EBADCONFIG;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		int ok = isalnum(c) || c == '.' || c == '-' || c == '_' || (v6 && (c == ':' || c == '%'));
		if (!ok) {
			coord_seterr(err, errlen, "%s: '%s' is not a host name or address (expected letters, digits, "
			       "'.', '-', '_', or an IPv6 address in brackets)", what, show(val, sv, sizeof sv));
			return COORD_EBADCONFIG;
		}
	}
	memcpy(out, p, len);
	out[len] = '\0';
	return COORD_OK;
}

/* Split s at the first ':' outside brackets; returns the rest or NULL, and NUL-terminates s. */
static char *split_colon(char *s)
{
	char *p = s;
	if (*p == '[') {
		p = strchr(p, ']');
		if (!p)
			return NULL;
	}
	p = strchr(p, ':');
	if (!p)
		return NULL;
	*p = '\0';
	return p + 1;
}

/* The port of "[addr:]port" (addr possibly bracketed): the ':' that is last and outside brackets. */
static char *last_colon(char *s)
{
	char *close = strrchr(s, ']');
	char *c = strrchr(close ? close : s, ':');
	return c;
}

static int port(const char *key, const char *what, const char *val, int *out, char *err, size_t errlen)
{
	char sv[80];
	long long v;
	int r = parse_whole(val, &v);
	if (r != 0 || v < 1 || v > 65535) {
		coord_seterr(err, errlen, "%s: %s '%s' is not a port (expected 1..65535)", key, what, show(val, sv, sizeof sv));
		return COORD_EBADCONFIG;
	}
	*out = (int)v;
	return COORD_OK;
}

/* "server.N=host:peerPort:electionPort[:participant|:observer][;[clientAddr:]clientPort]" */
static int server_line(struct coord_config *cfg, struct ctx *ctx, const char *key, const char *val,
		       char *err, size_t errlen)
{
	char sv[80];
	long long id;
	const char *num = key + strlen("server.");
	if (parse_whole(num, &id) != 0 || id < 1 || id > 255) {
		coord_seterr(err, errlen, "%s: '%s' is not a member number (expected server.N with N in 1..255)", key,
		       show(num, sv, sizeof sv));
		return COORD_EBADCONFIG;
	}
	for (int i = 0; i < cfg->nmembers; i++) {
		if (cfg->members[i].id != id)
			continue;
		if (ctx && ctx->member_line[i])
			coord_seterr(err, errlen, "%s: member %lld is already defined on line %d (member numbers must be unique)",
			       key, id, ctx->member_line[i]);
		else
			coord_seterr(err, errlen, "%s: member %lld is already defined (member numbers must be unique)", key, id);
		return COORD_EBADCONFIG;
	}
	if (cfg->nmembers >= COORD_MAX_MEMBERS) {
		coord_seterr(err, errlen, "%s: too many server lines (at most %d members)", key, COORD_MAX_MEMBERS);
		return COORD_EBADCONFIG;
	}

	struct coord_member m;
	memset(&m, 0, sizeof m);
	m.id = (int)id;
	size_t len = strlen(val);
	char *buf = malloc(len + 1);
	if (!buf) {
		coord_seterr(err, errlen, "%s: out of memory", key);
		return COORD_ENOMEM;
	}
	memcpy(buf, val, len + 1);
	int rc = COORD_EBADCONFIG;

	/* ";[clientAddr:]clientPort" */
	char *client = strchr(buf, ';');
	if (client) {
		*client++ = '\0';
		if (strchr(client, ';')) {
			coord_seterr(err, errlen, "%s: more than one ';' in '%s' (%s)", key, show(val, sv, sizeof sv), SERVER_EXPECT);
			goto out;
		}
		char *c = last_colon(client);
		const char *cport = client;
		if (c) {
			*c = '\0';
			cport = c + 1;
			if (host(key, client, m.client_addr, err, errlen) != COORD_OK)
				goto out;
		}
		if (port(key, "clientPort", cport, &m.client_port, err, errlen) != COORD_OK)
			goto out;
	}

	/* "host:peerPort:electionPort[:role]" */
	char *h = buf;
	if (h[0] == '[' && !strchr(h, ']')) {
		host(key, h, m.host, err, errlen); /* says what is wrong with the brackets */
		goto out;
	}
	char *peer = split_colon(h);
	char *elect = peer ? split_colon(peer) : NULL;
	if (!peer || !elect) {
		coord_seterr(err, errlen, "%s: '%s' lacks %s (%s)", key, show(val, sv, sizeof sv),
		       peer ? "the election port" : "the peer port", SERVER_EXPECT);
		goto out;
	}
	char *role = strchr(elect, ':');
	if (role) {
		*role++ = '\0';
		if (strcmp(role, "observer") == 0) {
			m.observer = 1;
		} else if (strcmp(role, "participant") != 0) {
			coord_seterr(err, errlen, "%s: '%s' is not a role (expected participant or observer)", key,
			       show(role, sv, sizeof sv));
			goto out;
		}
	}
	if (host(key, h, m.host, err, errlen) != COORD_OK ||
	    port(key, "peerPort", peer, &m.peer_port, err, errlen) != COORD_OK ||
	    port(key, "electionPort", elect, &m.election_port, err, errlen) != COORD_OK)
		goto out;

	/* Two members on one host cannot listen on one port. */
	for (int i = 0; i < cfg->nmembers; i++) {
		const struct coord_member *o = &cfg->members[i];
		if (strcmp(o->host, m.host) != 0)
			continue;
		int mine[2] = {m.peer_port, m.election_port}, theirs[2] = {o->peer_port, o->election_port};
		for (int a = 0; a < 2; a++)
			for (int b = 0; b < 2; b++)
				if (mine[a] == theirs[b]) {
					coord_seterr(err, errlen, "%s: port %d on %s is already used by server.%d "
					       "(members on one host need their own ports)", key, mine[a], m.host, o->id);
					goto out;
				}
	}

	if (ctx)
		ctx->member_line[cfg->nmembers] = ctx->line;
	cfg->members[cfg->nmembers++] = m;
	rc = COORD_OK;
out:
	free(buf);
	return rc;
}

static int find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Levenshtein distance ignoring case, for "did you mean". Both strings are short keys. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return SIZE_MAX;
	size_t row[64];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
			size_t best = diag + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static int unknown_key(const char *name, char *err, size_t errlen)
{
	char sv[80];
	const char *best = NULL;
	size_t bestd = SIZE_MAX;
	for (size_t i = 0; i < NKEYS; i++) {
		size_t d = distance(name, keys[i].name);
		if (d < bestd) {
			bestd = d;
			best = keys[i].name;
		}
	}
	if (best && bestd <= 2 && bestd * 3 <= strlen(name))
		coord_seterr(err, errlen, "unknown key '%s' (did you mean '%s'?)", show(name, sv, sizeof sv), best);
	else
		coord_seterr(err, errlen, "unknown key '%s' (see the Configuration section of README.md)",
		       show(name, sv, sizeof sv));
	return COORD_EBADCONFIG;
}

static void trim(char **s)
{
	char *p = *s;
	while (*p && isspace((unsigned char)*p))
		p++;
	size_t n = strlen(p);
	while (n && isspace((unsigned char)p[n - 1]))
		p[--n] = '\0';
	*s = p;
}

/* Parse one line (already known not to be blank or a comment). */
static int parse_line(struct coord_config *cfg, struct ctx *ctx, const char *line, char *err, size_t errlen)
{
	char sv[80];
	size_t len = strlen(line);
	char *copy = malloc(len + 1);
	if (!copy) {
		coord_seterr(err, errlen, "out of memory");
		return COORD_ENOMEM;
	}
	memcpy(copy, line, len + 1);
	int rc = COORD_EBADCONFIG;
	if (ctx)
		ctx->last_key = -1;

	char *eq = strchr(copy, '=');
	if (!eq) {
		coord_seterr(err, errlen, "'%s' is not a setting (expected key=value)", show(line, sv, sizeof sv));
		goto out;
	}
	*eq = '\0';
	char *key = copy, *val = eq + 1;
	trim(&key);
	trim(&val);
	if (!*key) {
		coord_seterr(err, errlen, "'%s' has no key before '=' (expected key=value)", show(line, sv, sizeof sv));
		goto out;
	}

	if (strncmp(key, "server.", 7) == 0) {
		if (!*val) {
			coord_seterr(err, errlen, "%s: the value is missing (%s)", key, SERVER_EXPECT);
			goto out;
		}
		rc = server_line(cfg, ctx, key, val, err, errlen);
		goto out;
	}
	int k = find_key(key);
	if (k < 0) {
		rc = unknown_key(key, err, errlen);
		goto out;
	}
	const struct key *K = &keys[k];
	if (ctx) {
		ctx->last_key = k;
		if (ctx->key_line[k]) {
			coord_seterr(err, errlen, "%s: set again (first set on line %d; give each key once)", key,
			       ctx->key_line[k]);
			goto out;
		}
	}
	if (!*val && K->kind != K_IGNORED) {
		coord_seterr(err, errlen, "%s: the value is missing (expected %s)", key, K->expect);
		goto out;
	}

	char *field = (char *)cfg + K->off;
	long long v;
	switch (K->kind) {
	case K_INT:
		if (number(key, val, K->min, K->max, K->expect, &v, err, errlen) != COORD_OK)
			goto out;
		*(int *)field = (int)v;
		break;
	case K_LONG:
		if (number(key, val, K->min, K->max, K->expect, &v, err, errlen) != COORD_OK)
			goto out;
		*(long *)field = (long)v;
		break;
	case K_U32:
		if (number(key, val, K->min, K->max, K->expect, &v, err, errlen) != COORD_OK)
			goto out;
		*(uint32_t *)field = (uint32_t)v;
		break;
	case K_PRINCIPAL:
		if (!coord_principal_valid(val, strlen(val))) {
			coord_seterr(err, errlen, "%s: '%s' is not a principal name (expected %s)", key, show(val, sv, sizeof sv),
			       K->expect);
			goto out;
		}
		strcpy(field, val);
		break;
	case K_DIR:
		if (strlen(val) >= COORD_DIR_MAX) {
			coord_seterr(err, errlen, "%s: the path is %zu bytes long (expected at most %d)", key, strlen(val),
			       COORD_DIR_MAX - 1);
			goto out;
		}
		strcpy(field, val);
		break;
	case K_HOST:
		if (host(key, val, field, err, errlen) != COORD_OK)
			goto out;
		break;
	case K_PEERTYPE:
		if (strcmp(val, "observer") != 0 && strcmp(val, "participant") != 0) {
			coord_seterr(err, errlen, "%s: '%s' is not a peer type (expected participant or observer)", key,
			       show(val, sv, sizeof sv));
			goto out;
		}
		if (ctx)
			ctx->peer_type = strcmp(val, "observer") == 0;
		break;
	case K_IGNORED:
		if (!ctx)
			LOG_INFO("%s ignored (a ZooKeeper setting coordfs does not use)", key);
		break;
	case K_AUTH:
		if (strcmp(val, "none") == 0) {
			*(int *)field = COORD_AUTH_NONE;
		} else if (strcmp(val, "curve") == 0) {
			*(int *)field = COORD_AUTH_CURVE;
		} else {
			coord_seterr(err, errlen, "%s: '%s' is not an authentication (expected none or curve)", key,
			       show(val, sv, sizeof sv));
			goto out;
		}
		break;
	}
	if (ctx)
		ctx->key_line[k] = ctx->line;
	rc = COORD_OK;
out:
	free(copy);
	return rc;
}

void coord_config_defaults(struct coord_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->client_port = 2181;
	strcpy(cfg->client_addr, "0.0.0.0");
	cfg->tick_time = 2000;
	cfg->min_session_timeout = 2 * 2000;
	cfg->max_session_timeout = 20 * 2000;
	cfg->init_limit = 10;
	cfg->sync_limit = 5;
	cfg->snap_count = 100000;
	cfg->max_data_bytes = 1024 * 1024;
	cfg->history_depth = 10;
	cfg->history_bytes = 1024 * 1024;
	cfg->max_client_cnxns = 60;
	cfg->max_session_requests = 10000;
	cfg->max_session_watches = 100000;
}

int coord_config_line(struct coord_config *cfg, const char *line, char *err, size_t errlen)
{
	return parse_line(cfg, NULL, line, err, errlen);
}

int coord_config_check_auth(const struct coord_config *cfg, char *err, size_t errlen)
{
	const char *f = cfg->path[0] ? cfg->path : "the configuration";
	if (cfg->auth == COORD_AUTH_UNSET) {
		coord_seterr(err, errlen, "%s: no authentication is configured: add 'auth=none' to serve in plaintext "
		       "(whoever reaches the ports can read and change everything), or give key files for CurveZMQ: "
		       "clientSecretKeyFile= and authorizedKeysFile=%s (see README.md, Security)", f,
		       cfg->nmembers ? ", and secretKeyFile= and memberKeysFile= for the peer port" : "");
		return COORD_EBADCONFIG;
	}
	if (cfg->auth != COORD_AUTH_CURVE)
		return COORD_OK;
	const char *missing = !cfg->client_secret_key_file[0] ? "clientSecretKeyFile (the ensemble's client key pair)"
			    : !cfg->authorized_keys_file[0] ? "authorizedKeysFile (the clients' 'PRINCIPAL KEY' list)"
			    : cfg->nmembers && !cfg->secret_key_file[0] ? "secretKeyFile (this member's key pair)"
			    : cfg->nmembers && !cfg->member_keys_file[0] ? "memberKeysFile (the members' 'server.N KEY' list)"
			    : NULL;
	if (missing) {
		coord_seterr(err, errlen, "%s: auth=curve needs %s (see README.md, Security)", f, missing);
		return COORD_EBADCONFIG;
	}
	return COORD_OK;
}

const struct coord_member *coord_config_self(const struct coord_config *cfg)
{
	for (int i = 0; i < cfg->nmembers; i++)
		if (cfg->members[i].id == cfg->my_id)
			return &cfg->members[i];
	return NULL;
}

/* Read dataDir/myid into cfg->my_id and check it names a member. */
static int read_myid(struct coord_config *cfg, const char *file, char *err, size_t errlen)
{
	char sv[80];
	char path[COORD_DIR_MAX + 8];
	snprintf(path, sizeof path, "%s/myid", cfg->data_dir);
	FILE *f = fopen(path, "r");
	if (!f) {
		coord_seterr(err, errlen, "cannot read %s: %s (the server lines in %s need this member's number there)",
		       path, strerror(errno), file);
		return COORD_EBADCONFIG;
	}
	char buf[64];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	int rerr = ferror(f);
	int more = !rerr && n == sizeof buf - 1 && fgetc(f) != EOF;
	fclose(f);
	if (rerr) {
		coord_seterr(err, errlen, "cannot read %s: I/O error", path);
		return COORD_EBADCONFIG;
	}
	buf[n] = '\0';
	int nul = memchr(buf, '\0', n) != NULL;
	char *p = buf;
	trim(&p);
	long long id;
	if (more) {
		coord_seterr(err, errlen, "%s: the file is too long for a member number (expected the N of this "
		       "member's server.N line, 1..255)", path);
		return COORD_EBADCONFIG;
	}
	if (nul || parse_whole(p, &id) != 0 || id < 1 || id > 255) {
		coord_seterr(err, errlen, "%s: '%s' is not a member number (expected the N of this member's "
		       "server.N line, 1..255)", path, show(p, sv, sizeof sv));
		return COORD_EBADCONFIG;
	}
	cfg->my_id = (int)id;
	if (!coord_config_self(cfg)) {
		char ids[200] = "";
		size_t o = 0;
		for (int i = 0; i < cfg->nmembers && o + 8 < sizeof ids; i++)
			o += (size_t)snprintf(ids + o, sizeof ids - o, "%s%d", i ? ", " : "", cfg->members[i].id);
		coord_seterr(err, errlen, "%s: member %lld has no server.%lld line in %s (expected one of %s)", path, id,
		       id, file, ids);
		return COORD_EBADCONFIG;
	}
	return COORD_OK;
}

/* Derived defaults and checks across keys, after the whole file was read. */
static int finish(struct coord_config *c, struct ctx *ctx, const char *file, char *err, size_t errlen)
{
	int kmin = find_key("minSessionTimeout"), kmax = find_key("maxSessionTimeout");
	int kdata = find_key("dataDir"), klog = find_key("dataLogDir"), kport = find_key("clientPort");
	int kaddr = find_key("clientPortAddress"), kpeer = find_key("peerType");

	if (!ctx->key_line[kdata]) {
		coord_seterr(err, errlen, "%s: dataDir: missing (required: the directory for snapshots and myid)", file);
		return COORD_EBADCONFIG;
	}
	if (!ctx->key_line[klog])
		strcpy(c->data_log_dir, c->data_dir);
	if (!ctx->key_line[kmin])
		c->min_session_timeout = 2 * c->tick_time;
	if (!ctx->key_line[kmax])
		c->max_session_timeout = 20 * c->tick_time;
	if (c->min_session_timeout > c->max_session_timeout) {
		/* blame the later of the two lines that were given */
		int lmin = ctx->key_line[kmin], lmax = ctx->key_line[kmax];
		const char *hint = !lmax ? "; maxSessionTimeout defaults to 20 * tickTime"
				 : !lmin ? "; minSessionTimeout defaults to 2 * tickTime" : "";
		if (lmin > lmax)
			coord_seterr(err, errlen, "%s:%d: minSessionTimeout: %d is larger than maxSessionTimeout %d "
			       "(expected minSessionTimeout <= maxSessionTimeout%s)", file, lmin,
			       c->min_session_timeout, c->max_session_timeout, hint);
		else
			coord_seterr(err, errlen, "%s:%d: maxSessionTimeout: %d is smaller than minSessionTimeout %d "
			       "(expected minSessionTimeout <= maxSessionTimeout%s)", file, lmax,
			       c->max_session_timeout, c->min_session_timeout, hint);
		return COORD_EBADCONFIG;
	}

	int kauth = find_key("auth");
	int keyfiles[] = {find_key("clientSecretKeyFile"), find_key("authorizedKeysFile"), find_key("secretKeyFile"),
			  find_key("memberKeysFile")};
	int first_key = 0;
	for (size_t i = 0; i < sizeof(keyfiles) / sizeof(keyfiles[0]); i++)
		if (ctx->key_line[keyfiles[i]] && !first_key)
			first_key = keyfiles[i] + 1;
	if (first_key && c->auth == COORD_AUTH_NONE) {
		coord_seterr(err, errlen, "%s:%d: auth: 'none' contradicts %s on line %d (expected auth=curve with key files, "
		       "or auth=none without them)", file, ctx->key_line[kauth], keys[first_key - 1].name,
		       ctx->key_line[first_key - 1]);
		return COORD_EBADCONFIG;
	}
	if (first_key && c->auth == COORD_AUTH_UNSET)
		c->auth = COORD_AUTH_CURVE;
	if (c->nmembers == 0) {
		int kpk = find_key("secretKeyFile"), kmk = find_key("memberKeysFile");
		if (ctx->key_line[kpk] || ctx->key_line[kmk]) {
			int k = ctx->key_line[kpk] ? kpk : kmk;
			coord_seterr(err, errlen, "%s:%d: %s: set without server lines (the peer port's keys are for an ensemble)",
			       file, ctx->key_line[k], keys[k].name);
			return COORD_EBADCONFIG;
		}
		if (ctx->key_line[kpeer]) {
			coord_seterr(err, errlen, "%s:%d: peerType: set without server lines (expected only in an ensemble)",
			       file, ctx->key_line[kpeer]);
			return COORD_EBADCONFIG;
		}
		c->my_id = 0;
		return COORD_OK;
	}

	int voters = 0;
	for (int i = 0; i < c->nmembers; i++)
		voters += !c->members[i].observer;
	if (!voters) {
		coord_seterr(err, errlen, "%s: every server line is an observer (expected at least one participant)", file);
		return COORD_EBADCONFIG;
	}

	int rc = read_myid(c, file, err, errlen);
	if (rc != COORD_OK)
		return rc;
	const struct coord_member *self = coord_config_self(c);
	int self_line = ctx->member_line[self - c->members];

	if (ctx->key_line[kpeer] && ctx->peer_type != self->observer) {
		coord_seterr(err, errlen, "%s:%d: peerType: '%s' contradicts server.%d on line %d (expected %s)", file,
		       ctx->key_line[kpeer], ctx->peer_type ? "observer" : "participant", self->id, self_line,
		       self->observer ? "observer" : "participant");
		return COORD_EBADCONFIG;
	}
	if (self->client_port) {
		if (!ctx->key_line[kport]) {
			c->client_port = self->client_port;
		} else if (c->client_port != self->client_port) {
			coord_seterr(err, errlen, "%s:%d: clientPort: %d differs from the client port %d on this member's "
			       "server.%d line (line %d) (expected the same port, or only one of them)", file,
			       ctx->key_line[kport], c->client_port, self->client_port, self->id, self_line);
			return COORD_EBADCONFIG;
		}
	}
	if (self->client_addr[0]) {
		if (!ctx->key_line[kaddr]) {
			strcpy(c->client_addr, self->client_addr);
		} else if (strcmp(c->client_addr, self->client_addr) != 0) {
			coord_seterr(err, errlen, "%s:%d: clientPortAddress: '%s' differs from the client address '%s' on "
			       "this member's server.%d line (line %d) (expected the same address, or only one of them)",
			       file, ctx->key_line[kaddr], c->client_addr, self->client_addr, self->id, self_line);
			return COORD_EBADCONFIG;
		}
	}
	return COORD_OK;
}

int coord_config_load(const char *file, struct coord_config *cfg, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	FILE *f = fopen(file, "r");
	if (!f) {
		coord_seterr(err, errlen, "cannot read %s: %s", file, strerror(errno));
		return COORD_EBADCONFIG;
	}
	struct coord_config *c = malloc(sizeof *c);
	struct ctx *ctx = calloc(1, sizeof *ctx);
	if (!c || !ctx) {
		free(c);
		free(ctx);
		fclose(f);
		coord_seterr(err, errlen, "%s: out of memory", file);
		return COORD_ENOMEM;
	}
	coord_config_defaults(c);
	ctx->peer_type = -1;
	int rc = COORD_OK;
	if (strlen(file) >= sizeof c->path) {
		coord_seterr(err, errlen, "%s: the file name is too long (expected at most %d bytes)", file, COORD_DIR_MAX - 1);
		rc = COORD_EBADCONFIG;
		goto out;
	}
	strcpy(c->path, file);

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	char msg[512];
	while ((n = getline(&line, &cap, f)) >= 0) {
		ctx->line++;
		if ((size_t)n != strlen(line)) {
			coord_seterr(err, errlen, "%s:%d: the line contains a NUL byte (expected text)", file, ctx->line);
			rc = COORD_EBADCONFIG;
			break;
		}
		char *p = line;
		if (ctx->line == 1 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
			p += 3; /* a UTF-8 byte order mark some editors write */
		trim(&p);
		if (!*p || *p == '#')
			continue;
		rc = parse_line(c, ctx, p, msg, sizeof msg);
		if (rc != COORD_OK) {
			coord_seterr(err, errlen, "%s:%d: %s", file, ctx->line, msg);
			break;
		}
		if (ctx->last_key >= 0 && keys[ctx->last_key].kind == K_IGNORED)
			LOG_INFO("%s:%d: %s ignored (a ZooKeeper setting coordfs does not use)", file, ctx->line,
				 keys[ctx->last_key].name);
	}
	if (rc == COORD_OK && ferror(f)) {
		coord_seterr(err, errlen, "cannot read %s: %s", file, strerror(errno));
		rc = COORD_EBADCONFIG;
	}
	free(line);
	if (rc == COORD_OK)
		rc = finish(c, ctx, file, err, errlen);
	if (rc == COORD_OK)
		*cfg = *c;
out:
	fclose(f);
	free(c);
	free(ctx);
	return rc;
}
