/*
 * test_config.c: coord_config_load and coord_config_line on good and bad files.
 *
 * Every file is written under a mkdtemp directory that is removed at the end. Bad files assert
 * the error code and the "FILE:LINE: KEY: ..." message, line number included.
 */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "err.h"

static char tmp[256];      /* the test directory */
static char cfgfile[512];  /* tmp/coord.cfg */
static char datadir[512];  /* tmp/data */
static char err[1024];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
}

static void set_myid(const char *text)
{
	char p[600];
	snprintf(p, sizeof p, "%s/myid", datadir);
	if (text) {
		write_file(p, text);
	} else {
		unlink(p);
	}
}

/*
 * Write the config (printf-style; "@DATA@" is replaced by the data directory) and load it.
 */
static int load(struct coord_config *cfg, const char *fmt, ...)
{
	char text[8192], out[16384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	size_t o = 0;
	for (const char *p = text; *p;) {
		if (strncmp(p, "@DATA@", 6) == 0) {
			o += (size_t)snprintf(out + o, sizeof out - o, "%s", datadir);
			p += 6;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	write_file(cfgfile, out);
	err[0] = '\0';
	return coord_config_load(cfgfile, cfg, err, sizeof err);
}

/* A call that must succeed; on failure the error message is shown. */
#define CHECK_OK(expr)                                                     \
	do {                                                               \
		int _rc = (expr);                                          \
		if (_rc != COORD_OK)                                       \
			fprintf(stderr, "unexpected error: %s\n", err);     \
		CHECK_EQ(_rc, COORD_OK);                                   \
	} while (0)

/* The message must be exactly "cfgfile:" + rest. */
static void check_msg(const char *rest)
{
	char want[2048];
	snprintf(want, sizeof want, "%s:%s", cfgfile, rest);
	CHECK_STR(err, want);
}

/* The message must start with "cfgfile:" + rest. */
static void check_msg_prefix(const char *rest)
{
	char want[2048];
	snprintf(want, sizeof want, "%s:%s", cfgfile, rest);
	if (strncmp(err, want, strlen(want)) != 0) {
		fprintf(stderr, "message \"%s\"\n  does not start with \"%s\"\n", err, want);
		CHECK(0);
	}
}

/* A bad file: fails with COORD_EBADCONFIG and a message starting "cfgfile:LINE: rest". */
#define BAD(line, rest, ...)                                               \
	do {                                                               \
		struct coord_config _c;                                    \
		CHECK_EQ(load(&_c, __VA_ARGS__), COORD_EBADCONFIG);         \
		char _w[512];                                              \
		snprintf(_w, sizeof _w, "%d: %s", (line), (rest));         \
		check_msg_prefix(_w);                                      \
	} while (0)

static void test_defaults(void)
{
	struct coord_config c;
	coord_config_defaults(&c);
	CHECK_STR(c.data_dir, "");
	CHECK_EQ(c.client_port, 2181);
	CHECK_STR(c.client_addr, "0.0.0.0");
	CHECK_EQ(c.tick_time, 2000);
	CHECK_EQ(c.min_session_timeout, 4000);
	CHECK_EQ(c.max_session_timeout, 40000);
	CHECK_EQ(c.init_limit, 10);
	CHECK_EQ(c.sync_limit, 5);
	CHECK_EQ(c.snap_count, 100000);
	CHECK_EQ(c.max_data_bytes, 1024 * 1024);
	CHECK_EQ(c.history_depth, 10);
	CHECK_EQ(c.history_bytes, 1024 * 1024);
	CHECK_EQ(c.max_client_cnxns, 60);
	CHECK_EQ(c.my_id, 0);
	CHECK_EQ(c.nmembers, 0);
	CHECK(coord_config_self(&c) == NULL);
}

static void test_standalone_minimal(void)
{
	struct coord_config c;
	CHECK_OK(load(&c, "dataDir=@DATA@\n"));
	CHECK_STR(err, "");
	CHECK_STR(c.path, cfgfile);
	CHECK_STR(c.data_dir, datadir);
	CHECK_STR(c.data_log_dir, datadir); /* defaults to dataDir */
	CHECK_EQ(c.client_port, 2181);
	CHECK_EQ(c.tick_time, 2000);
	CHECK_EQ(c.min_session_timeout, 4000);
	CHECK_EQ(c.max_session_timeout, 40000);
	CHECK_EQ(c.my_id, 0);
	CHECK_EQ(c.nmembers, 0);
	CHECK(coord_config_self(&c) == NULL);
}

static void test_derived_timeouts(void)
{
	struct coord_config c;
	CHECK_OK(load(&c, "tickTime=500\ndataDir=@DATA@\n"));
	CHECK_EQ(c.min_session_timeout, 1000);
	CHECK_EQ(c.max_session_timeout, 10000);
	/* one given, the other derived */
	CHECK_OK(load(&c, "tickTime=500\ndataDir=@DATA@\nminSessionTimeout=3000\n"));
	CHECK_EQ(c.min_session_timeout, 3000);
	CHECK_EQ(c.max_session_timeout, 10000);
	CHECK_OK(load(&c, "tickTime=500\ndataDir=@DATA@\nmaxSessionTimeout=60000\n"));
	CHECK_EQ(c.min_session_timeout, 1000);
	CHECK_EQ(c.max_session_timeout, 60000);
	/* derivation uses the final tickTime whatever the order of lines */
	CHECK_OK(load(&c, "dataDir=@DATA@\ntickTime=100\n"));
	CHECK_EQ(c.min_session_timeout, 200);
	CHECK_EQ(c.max_session_timeout, 2000);
	/* min == max is allowed */
	CHECK_OK(load(&c, "dataDir=@DATA@\nminSessionTimeout=5000\nmaxSessionTimeout=5000\n"));
}

static void test_every_key(void)
{
	struct coord_config c;
	int rc = load(&c,
		      "# every key coordfs knows\n"
		      "\n"
		      "   \t\n"
		      "  # an indented comment\n"
		      "dataDir = @DATA@  \n"
		      "\tdataLogDir=\t/var/log/coord \n"
		      "clientPort=3181\n"
		      "clientPortAddress=127.0.0.1\n"
		      "tickTime=1000\n"
		      "minSessionTimeout=1500\n"
		      "maxSessionTimeout=90000\n"
		      "initLimit=20\n"
		      "syncLimit=7\n"
		      "snapCount=2\n"
		      "maxDataBytes=1024\n"
		      "historyDepth=0\n"
		      "historyBytes=0\n"
		      "maxClientCnxns=0\n");
	CHECK_OK(rc);
	CHECK_STR(c.data_dir, datadir);
	CHECK_STR(c.data_log_dir, "/var/log/coord");
	CHECK_EQ(c.client_port, 3181);
	CHECK_STR(c.client_addr, "127.0.0.1");
	CHECK_EQ(c.tick_time, 1000);
	CHECK_EQ(c.min_session_timeout, 1500);
	CHECK_EQ(c.max_session_timeout, 90000);
	CHECK_EQ(c.init_limit, 20);
	CHECK_EQ(c.sync_limit, 7);
	CHECK_EQ(c.snap_count, 2);
	CHECK_EQ(c.max_data_bytes, 1024);
	CHECK_EQ(c.history_depth, 0);
	CHECK_EQ(c.history_bytes, 0);
	CHECK_EQ(c.max_client_cnxns, 0);

	/* upper bounds are inclusive */
	rc = load(&c, "dataDir=@DATA@\nmaxDataBytes=67108864\nhistoryDepth=1000\nclientPort=65535\n"
		      "tickTime=0003600000\n");
	CHECK_OK(rc);
	CHECK_EQ(c.max_data_bytes, 64 * 1024 * 1024);
	CHECK_EQ(c.history_depth, 1000);
	CHECK_EQ(c.client_port, 65535);
	CHECK_EQ(c.tick_time, 3600000);
}

/* auth=: plaintext must be said, key files imply curve, curve needs its files, no contradictions. */
static void test_auth(void)
{
	struct coord_config c;
	CHECK_OK(load(&c, "dataDir=@DATA@\n"));
	CHECK_EQ(c.auth, COORD_AUTH_UNSET);
	CHECK_EQ(coord_config_check_auth(&c, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "auth=none") && strstr(err, "clientSecretKeyFile") && strstr(err, "authorizedKeysFile"));
	CHECK_OK(load(&c, "dataDir=@DATA@\nauth=none\n"));
	CHECK_EQ(c.auth, COORD_AUTH_NONE);
	CHECK_OK(coord_config_check_auth(&c, err, sizeof err));
	CHECK_OK(load(&c, "dataDir=@DATA@\nclientSecretKeyFile=/k/s.key\nauthorizedKeysFile=/k/ak\n"));
	CHECK_EQ(c.auth, COORD_AUTH_CURVE);
	CHECK_STR(c.client_secret_key_file, "/k/s.key");
	CHECK_STR(c.authorized_keys_file, "/k/ak");
	CHECK_OK(coord_config_check_auth(&c, err, sizeof err));
	CHECK_OK(load(&c, "dataDir=@DATA@\nauth=curve\nclientSecretKeyFile=/k/s.key\n"));
	CHECK_EQ(coord_config_check_auth(&c, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "authorizedKeysFile"));
	BAD(3, "auth: 'none' contradicts clientSecretKeyFile on line 2",
	    "dataDir=@DATA@\nclientSecretKeyFile=/k/s.key\nauth=none\n");
	BAD(2, "auth: 'yes' is not an authentication (expected none or curve)", "dataDir=@DATA@\nauth=yes\n");
	BAD(2, "secretKeyFile: set without server lines", "dataDir=@DATA@\nsecretKeyFile=/k/m.key\nauth=curve\n");
	/* an ensemble needs its members' keys too */
	set_myid("1");
	CHECK_OK(load(&c, "dataDir=@DATA@\nclientSecretKeyFile=/k/s.key\nauthorizedKeysFile=/k/ak\n"
			  "server.1=127.0.0.1:2888:3888\n"));
	CHECK_EQ(coord_config_check_auth(&c, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "secretKeyFile"));
	CHECK_OK(load(&c, "dataDir=@DATA@\nclientSecretKeyFile=/k/s.key\nauthorizedKeysFile=/k/ak\n"
			  "secretKeyFile=/k/m1.key\nmemberKeysFile=/k/members\nserver.1=127.0.0.1:2888:3888\n"));
	CHECK_OK(coord_config_check_auth(&c, err, sizeof err));
	/* the limits */
	CHECK_OK(load(&c, "dataDir=@DATA@\nauth=none\n"));
	CHECK_EQ(c.max_session_requests, 10000);
	CHECK_EQ(c.max_session_watches, 100000);
	CHECK_OK(load(&c, "dataDir=@DATA@\nmaxSessionRequests=5\nmaxSessionWatches=7\n"));
	CHECK_EQ(c.max_session_requests, 5);
	CHECK_EQ(c.max_session_watches, 7);
	BAD(2, "maxSessionRequests: '0' is not a positive integer", "dataDir=@DATA@\nmaxSessionRequests=0\n");
}

static void test_line_endings(void)
{
	struct coord_config c;
	/* CRLF line endings, a UTF-8 byte order mark, no newline at the end of the file */
	CHECK_OK(load(&c, "\xef\xbb\xbf# made on Windows\r\ndataDir=@DATA@\r\ntickTime=3000"));
	CHECK_STR(c.data_dir, datadir);
	CHECK_EQ(c.tick_time, 3000);
}

/* ZooKeeper 3.8's conf/zoo_sample.cfg plus the usual extras must load. */
static void test_real_zoo_cfg(void)
{
	struct coord_config c;
	set_myid("1\n");
	int rc = load(&c,
		      "# The number of milliseconds of each tick\n"
		      "tickTime=2000\n"
		      "# The number of ticks that the initial \n"
		      "# synchronization phase can take\n"
		      "initLimit=10\n"
		      "# The number of ticks that can pass between \n"
		      "# sending a request and getting an acknowledgement\n"
		      "syncLimit=5\n"
		      "dataDir=@DATA@\n"
		      "clientPort=2181\n"
		      "#maxClientCnxns=60\n"
		      "#autopurge.snapRetainCount=3\n"
		      "autopurge.snapRetainCount=3\n"
		      "autopurge.purgeInterval=1\n"
		      "## Metrics Providers\n"
		      "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"
		      "4lw.commands.whitelist=srvr, mntr, ruok\n"
		      "admin.enableServer=false\n"
		      "admin.serverPort=8080\n"
		      "standaloneEnabled=false\n"
		      "reconfigEnabled=false\n"
		      "preAllocSize=65536\n"
		      "globalOutstandingLimit=1000\n"
		      "forceSync=yes\n"
		      "electionAlg=3\n"
		      "quorumListenOnAllIPs=true\n"
		      "secureClientPort=\n"
		      "server.1=zoo1:2888:3888\n"
		      "server.2=zoo2:2888:3888\n"
		      "server.3=zoo3:2888:3888\n");
	CHECK_OK(rc);
	CHECK_EQ(c.init_limit, 10);
	CHECK_EQ(c.sync_limit, 5);
	CHECK_EQ(c.client_port, 2181);
	CHECK_EQ(c.nmembers, 3);
	CHECK_EQ(c.my_id, 1);
	CHECK_STR(coord_config_self(&c)->host, "zoo1");
}

static void test_three_members(void)
{
	struct coord_config c;
	set_myid("2");
	int rc = load(&c,
		      "dataDir=@DATA@\n"
		      "server.1=127.0.0.1:2888:3888\n"
		      "server.2=127.0.0.1:2889:3889\n"
		      "server.3 = 127.0.0.1:2890:3890:participant\n");
	CHECK_OK(rc);
	CHECK_EQ(c.nmembers, 3);
	CHECK_EQ(c.my_id, 2);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(c.members[i].id, i + 1);
		CHECK_STR(c.members[i].host, "127.0.0.1");
		CHECK_EQ(c.members[i].peer_port, 2888 + i);
		CHECK_EQ(c.members[i].election_port, 3888 + i);
		CHECK_EQ(c.members[i].client_port, 0);
		CHECK_STR(c.members[i].client_addr, "");
		CHECK_EQ(c.members[i].observer, 0);
	}
	const struct coord_member *self = coord_config_self(&c);
	CHECK(self != NULL);
	CHECK_EQ(self->id, 2);
	CHECK_EQ(self->peer_port, 2889);
	CHECK_EQ(c.client_port, 2181); /* no client port anywhere: the default */
}

static void test_observer(void)
{
	struct coord_config c;
	set_myid("4\n");
	int rc = load(&c,
		      "dataDir=@DATA@\n"
		      "peerType=observer\n"
		      "server.1=a.example:2888:3888\n"
		      "server.2=b.example:2888:3888\n"
		      "server.3=c.example:2888:3888\n"
		      "server.4=d.example:2888:3888:observer\n");
	CHECK_OK(rc);
	CHECK_EQ(c.nmembers, 4);
	CHECK_EQ(c.members[3].observer, 1);
	CHECK_EQ(c.members[0].observer, 0);
	CHECK_EQ(coord_config_self(&c)->observer, 1);
	/* peerType that contradicts the member's own line */
	set_myid("1\n");
	BAD(2, "peerType: 'observer' contradicts server.1 on line 3 (expected participant)",
	    "dataDir=@DATA@\n"
	    "peerType=observer\n"
	    "server.1=a.example:2888:3888\n"
	    "server.2=b.example:2888:3888:observer\n");
	BAD(1, "peerType: 'leader' is not a peer type (expected participant or observer)", "peerType=leader\n");
	BAD(2, "peerType: set without server lines", "dataDir=@DATA@\npeerType=participant\n");
	/* an ensemble of observers only has nobody to vote */
	struct coord_config d;
	CHECK_EQ(load(&d, "dataDir=@DATA@\nserver.1=a:1:2:observer\n"), COORD_EBADCONFIG);
	char want[600];
	snprintf(want, sizeof want, "%s: every server line is an observer (expected at least one participant)",
		 cfgfile);
	CHECK_STR(err, want);
}

/* ZooKeeper 3.5's form: ";clientPort" and ";clientAddr:clientPort" on the server lines. */
static void test_zk35_client_port(void)
{
	struct coord_config c;
	set_myid("3");
	int rc = load(&c,
		      "tickTime=2000\n"
		      "dataDir=@DATA@\n"
		      "server.1=127.0.0.1:2888:3888;2181\n"
		      "server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n"
		      "server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\n"
		      "server.4=127.0.0.1:2891:3891:observer;[::1]:2184\n");
	CHECK_OK(rc);
	CHECK_EQ(c.members[0].client_port, 2181);
	CHECK_STR(c.members[0].client_addr, "");
	CHECK_EQ(c.members[1].client_port, 2182);
	CHECK_STR(c.members[1].client_addr, "127.0.0.1");
	CHECK_EQ(c.members[3].client_port, 2184);
	CHECK_STR(c.members[3].client_addr, "::1");
	CHECK_EQ(c.members[3].observer, 1);
	/* the member's own line gives clientPort and clientPortAddress when the keys are absent */
	CHECK_EQ(c.client_port, 2183);
	CHECK_STR(c.client_addr, "0.0.0.0");
	set_myid("2");
	CHECK_OK(load(&c, "dataDir=@DATA@\nserver.1=h:1:2;2181\nserver.2=h:3:4;127.0.0.2:2182\n"));
	CHECK_EQ(c.client_port, 2182);
	CHECK_STR(c.client_addr, "127.0.0.2");
	/* clientPort= that agrees with the line is fine, one that disagrees is not */
	CHECK_OK(load(&c, "dataDir=@DATA@\nclientPort=2182\nserver.1=h:1:2;2181\nserver.2=h:3:4;2182\n"));
	CHECK_EQ(c.client_port, 2182);
	BAD(2, "clientPort: 2999 differs from the client port 2182 on this member's server.2 line (line 4)",
	    "dataDir=@DATA@\nclientPort=2999\nserver.1=h:1:2;2181\nserver.2=h:3:4;2182\n");
	BAD(2, "clientPortAddress: '10.0.0.1' differs from the client address '127.0.0.2'",
	    "dataDir=@DATA@\nclientPortAddress=10.0.0.1\nserver.2=h:3:4;127.0.0.2:2182\n");
	/* only the member's own line matters: another member's client port is not mine */
	CHECK_OK(load(&c, "dataDir=@DATA@\nserver.1=h:1:2;2500\nserver.2=h:3:4\n"));
	CHECK_EQ(c.client_port, 2181);
}

static void test_ipv6(void)
{
	struct coord_config c;
	set_myid("1");
	CHECK_OK(load(&c, "dataDir=@DATA@\nclientPortAddress=[::]\n"));
	CHECK_STR(c.client_addr, "::");
	CHECK_OK(load(&c, "dataDir=@DATA@\n"
			  "server.1=[::1]:2888:3888;[::1]:2181\nserver.2=[fe80::1%%eth0]:2888:3888:observer\n"));
	CHECK_STR(c.client_addr, "::1"); /* from the member's own line */
	CHECK_EQ(c.client_port, 2181);
	CHECK_STR(c.members[0].host, "::1");
	CHECK_EQ(c.members[0].peer_port, 2888);
	CHECK_EQ(c.members[0].election_port, 3888);
	CHECK_EQ(c.members[0].client_port, 2181);
	CHECK_STR(c.members[0].client_addr, "::1");
	CHECK_STR(c.members[1].host, "fe80::1%eth0");
	CHECK_EQ(c.members[1].observer, 1);
}

static void test_bad_syntax(void)
{
	BAD(3, "unknown key 'tickTim' (did you mean 'tickTime'?)", "dataDir=@DATA@\n\ntickTim=2000\n");
	BAD(1, "unknown key 'DATADIR' (did you mean 'dataDir'?)", "DATADIR=/x\n");
	BAD(2, "unknown key 'jute.maxbuffer'", "dataDir=@DATA@\njute.maxbuffer=1000000\n");
	BAD(2, "'tickTime 2000' is not a setting (expected key=value)", "dataDir=@DATA@\ntickTime 2000\n");
	BAD(2, "'=2000' has no key before '=' (expected key=value)", "dataDir=@DATA@\n  =2000\n");
	BAD(2, "tickTime: the value is missing (expected milliseconds", "dataDir=@DATA@\ntickTime=\n");
	BAD(2, "dataDir: the value is missing", "# x\ndataDir =  \n");
	BAD(3, "tickTime: set again (first set on line 1; give each key once)",
	    "tickTime=1000\ndataDir=@DATA@\ntickTime=2000\n");
	/* a trailing comment is part of the value, as in ZooKeeper */
	BAD(1, "tickTime: '2000 # ms' is not a positive integer", "tickTime=2000 # ms\n");
	/* the first bad line is the one reported */
	BAD(2, "clientPort: 'x' is not a positive integer", "dataDir=@DATA@\nclientPort=x\nbogus=1\n");
}

static void test_bad_numbers(void)
{
	/* the example messages of config.h and the brief, verbatim */
	BAD(7, "tickTime: 'abc' is not a positive integer", "dataDir=@DATA@\n#\n#\n#\n#\n#\ntickTime=abc\n");
	BAD(7, "tickTime: '0' is not a positive integer", "dataDir=@DATA@\n\n\n\n\n\ntickTime=0\n");
	BAD(2, "tickTime: '-5' is not a positive integer", "dataDir=@DATA@\ntickTime=-5\n");
	BAD(2, "tickTime: '+5' is not a positive integer", "dataDir=@DATA@\ntickTime=+5\n");
	BAD(2, "tickTime: '2.5' is not a positive integer", "dataDir=@DATA@\ntickTime=2.5\n");
	BAD(2, "tickTime: '0x10' is not a positive integer", "dataDir=@DATA@\ntickTime=0x10\n");
	BAD(2, "tickTime: '20 00' is not a positive integer", "dataDir=@DATA@\ntickTime=20 00\n");
	BAD(2, "tickTime: '3600001' is out of range (expected milliseconds, 1..3600000)",
	    "dataDir=@DATA@\ntickTime=3600001\n");
	BAD(2, "tickTime: '99999999999999999999999' is out of range", "dataDir=@DATA@\ntickTime=99999999999999999999999\n");
	BAD(2, "snapCount: '1' is out of range (expected transactions, 2..1000000000)", "dataDir=@DATA@\nsnapCount=1\n");
	BAD(2, "maxDataBytes: '1023' is out of range (expected bytes, 1024 (1 KiB)..67108864 (64 MiB))",
	    "dataDir=@DATA@\nmaxDataBytes=1023\n");
	BAD(2, "maxDataBytes: '67108865' is out of range", "dataDir=@DATA@\nmaxDataBytes=67108865\n");
	BAD(2, "maxDataBytes: '1M' is not a positive integer", "dataDir=@DATA@\nmaxDataBytes=1M\n");
	BAD(2, "historyDepth: '1001' is out of range (expected versions, 0..1000 (0 = off))",
	    "dataDir=@DATA@\nhistoryDepth=1001\n");
	BAD(2, "historyDepth: '-1' is not a whole number", "dataDir=@DATA@\nhistoryDepth=-1\n");
	BAD(2, "clientPort: '0' is not a positive integer (expected a TCP port, 1..65535)", "dataDir=@DATA@\nclientPort=0\n");
	BAD(2, "clientPort: '65536' is out of range (expected a TCP port, 1..65535)", "dataDir=@DATA@\nclientPort=65536\n");
	BAD(2, "minSessionTimeout: '0' is not a positive integer", "dataDir=@DATA@\nminSessionTimeout=0\n");
	BAD(2, "maxSessionTimeout: '2147483648' is out of range", "dataDir=@DATA@\nmaxSessionTimeout=2147483648\n");
	BAD(2, "initLimit: '0' is not a positive integer", "dataDir=@DATA@\ninitLimit=0\n");
	BAD(2, "syncLimit: 'five' is not a positive integer", "dataDir=@DATA@\nsyncLimit=five\n");
	BAD(2, "maxClientCnxns: '-1' is not a whole number", "dataDir=@DATA@\nmaxClientCnxns=-1\n");
	BAD(2, "historyBytes: '1073741825' is out of range", "dataDir=@DATA@\nhistoryBytes=1073741825\n");
	BAD(2, "clientPortAddress: 'a b' is not a host name or address", "dataDir=@DATA@\nclientPortAddress=a b\n");
	BAD(2, "clientPortAddress: '[::1' is not a bracketed IPv6 address", "dataDir=@DATA@\nclientPortAddress=[::1\n");
}

static void test_bad_session_timeouts(void)
{
	/* both given: the later line is blamed */
	BAD(3, "maxSessionTimeout: 4000 is smaller than minSessionTimeout 5000 "
	       "(expected minSessionTimeout <= maxSessionTimeout)",
	    "minSessionTimeout=5000\ndataDir=@DATA@\nmaxSessionTimeout=4000\n");
	BAD(3, "minSessionTimeout: 5000 is larger than maxSessionTimeout 4000 "
	       "(expected minSessionTimeout <= maxSessionTimeout)",
	    "maxSessionTimeout=4000\ndataDir=@DATA@\nminSessionTimeout=5000\n");
	/* only min given: it is checked against max = 20 * tickTime */
	BAD(2, "minSessionTimeout: 50000 is larger than maxSessionTimeout 40000 (expected minSessionTimeout "
	       "<= maxSessionTimeout; maxSessionTimeout defaults to 20 * tickTime)",
	    "dataDir=@DATA@\nminSessionTimeout=50000\n");
	/* only max given: checked against min = 2 * tickTime, after tickTime is known */
	BAD(1, "maxSessionTimeout: 3000 is smaller than minSessionTimeout 20000 (expected minSessionTimeout "
	       "<= maxSessionTimeout; minSessionTimeout defaults to 2 * tickTime)",
	    "maxSessionTimeout=3000\ndataDir=@DATA@\ntickTime=10000\n");
}

static void test_bad_server_lines(void)
{
	set_myid("1");
	BAD(2, "server.0: '0' is not a member number (expected server.N with N in 1..255)",
	    "dataDir=@DATA@\nserver.0=h:1:2\n");
	BAD(2, "server.256: '256' is not a member number", "dataDir=@DATA@\nserver.256=h:1:2\n");
	BAD(2, "server.x: 'x' is not a member number", "dataDir=@DATA@\nserver.x=h:1:2\n");
	BAD(2, "server.: '' is not a member number", "dataDir=@DATA@\nserver.=h:1:2\n");
	BAD(3, "server.1: member 1 is already defined on line 2 (member numbers must be unique)",
	    "dataDir=@DATA@\nserver.1=h:1:2\nserver.1=h2:1:2\n");
	BAD(2, "server.1: the host is empty", "dataDir=@DATA@\nserver.1=:2888:3888\n");
	BAD(2, "server.1: 'h' lacks the peer port", "dataDir=@DATA@\nserver.1=h\n");
	BAD(2, "server.1: 'h:2888' lacks the election port (expected server.N=host:peerPort:electionPort",
	    "dataDir=@DATA@\nserver.1=h:2888\n");
	BAD(2, "server.1: peerPort 'x' is not a port (expected 1..65535)", "dataDir=@DATA@\nserver.1=h:x:3888\n");
	BAD(2, "server.1: electionPort '0' is not a port", "dataDir=@DATA@\nserver.1=h:2888:0\n");
	BAD(2, "server.1: electionPort '70000' is not a port", "dataDir=@DATA@\nserver.1=h:2888:70000\n");
	BAD(2, "server.1: 'leader' is not a role (expected participant or observer)",
	    "dataDir=@DATA@\nserver.1=h:2888:3888:leader\n");
	BAD(2, "server.1: 'observer:x' is not a role", "dataDir=@DATA@\nserver.1=h:2888:3888:observer:x\n");
	BAD(2, "server.1: clientPort 'abc' is not a port", "dataDir=@DATA@\nserver.1=h:2888:3888;abc\n");
	BAD(2, "server.1: clientPort '' is not a port", "dataDir=@DATA@\nserver.1=h:2888:3888;\n");
	BAD(2, "server.1: clientPort '' is not a port", "dataDir=@DATA@\nserver.1=h:2888:3888;0.0.0.0:\n");
	BAD(2, "server.1: the host is empty", "dataDir=@DATA@\nserver.1=h:2888:3888;:2181\n");
	BAD(2, "server.1: more than one ';'", "dataDir=@DATA@\nserver.1=h:2888:3888;2181;2182\n");
	BAD(2, "server.1: 'h/x' is not a host name or address", "dataDir=@DATA@\nserver.1=h/x:2888:3888\n");
	BAD(2, "server.1: '[::1:2888:3888' is not a bracketed IPv6 address", "dataDir=@DATA@\nserver.1=[::1:2888:3888\n");
	BAD(2, "server.1: the value is missing", "dataDir=@DATA@\nserver.1=\n");
	BAD(3, "server.2: port 3888 on h is already used by server.1 (members on one host need their own ports)",
	    "dataDir=@DATA@\nserver.1=h:2888:3888\nserver.2=h:3888:3889\n");

	/* COORD_MAX_MEMBERS lines are fine, one more is not */
	char text[8192];
	size_t o = (size_t)snprintf(text, sizeof text, "dataDir=@DATA@\n");
	for (int i = 1; i <= COORD_MAX_MEMBERS; i++)
		o += (size_t)snprintf(text + o, sizeof text - o, "server.%d=h%d:2888:3888\n", i, i);
	struct coord_config c;
	CHECK_OK(load(&c, "%s", text));
	CHECK_EQ(c.nmembers, COORD_MAX_MEMBERS);
	snprintf(text + o, sizeof text - o, "server.200=h200:2888:3888\n");
	BAD(COORD_MAX_MEMBERS + 2, "server.200: too many server lines (at most 32 members)", "%s", text);
}

static void test_data_dir(void)
{
	struct coord_config c;
	CHECK_EQ(load(&c, "# nothing\ntickTime=2000\n"), COORD_EBADCONFIG);
	check_msg(" dataDir: missing (required: the directory for snapshots and myid)");
	CHECK_EQ(load(&c, ""), COORD_EBADCONFIG);
	check_msg(" dataDir: missing (required: the directory for snapshots and myid)");
	char big[COORD_DIR_MAX + 16];
	memset(big, 'a', sizeof big - 1);
	big[0] = '/';
	big[sizeof big - 1] = '\0';
	BAD(1, "dataDir: the path is 1039 bytes long (expected at most 1023)", "dataDir=%s\n", big);
}

static void test_missing_file(void)
{
	struct coord_config c;
	char path[600];
	snprintf(path, sizeof path, "%s/nope.cfg", tmp);
	CHECK_EQ(coord_config_load(path, &c, err, sizeof err), COORD_EBADCONFIG);
	char want[700];
	snprintf(want, sizeof want, "cannot read %s: No such file or directory", path);
	CHECK_STR(err, want);
	/* a NULL error buffer is allowed */
	CHECK_EQ(coord_config_load(path, &c, NULL, 0), COORD_EBADCONFIG);
	/* a directory is not a file */
	CHECK_EQ(coord_config_load(tmp, &c, err, sizeof err), COORD_EBADCONFIG);
	snprintf(want, sizeof want, "cannot read %s: Is a directory", tmp);
	CHECK_STR(err, want);
}

static void test_myid(void)
{
	struct coord_config c;
	const char *three = "dataDir=@DATA@\nserver.1=h1:2888:3888\nserver.2=h2:2888:3888\nserver.3=h3:2888:3888\n";
	char want[1200];

	set_myid(" \t3 \n\n");
	CHECK_OK(load(&c, "%s", three));
	CHECK_EQ(c.my_id, 3);
	CHECK_STR(coord_config_self(&c)->host, "h3");

	set_myid(NULL);
	CHECK_EQ(load(&c, "%s", three), COORD_EBADCONFIG);
	snprintf(want, sizeof want, "cannot read %s/myid: No such file or directory (the server lines in %s "
		 "need this member's number there)", datadir, cfgfile);
	CHECK_STR(err, want);

	set_myid("two\n");
	CHECK_EQ(load(&c, "%s", three), COORD_EBADCONFIG);
	snprintf(want, sizeof want, "%s/myid: 'two' is not a member number (expected the N of this member's "
		 "server.N line, 1..255)", datadir);
	CHECK_STR(err, want);

	set_myid("");
	CHECK_EQ(load(&c, "%s", three), COORD_EBADCONFIG);
	snprintf(want, sizeof want, "%s/myid: '' is not a member number", datadir);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	set_myid("1 2\n");
	CHECK_EQ(load(&c, "%s", three), COORD_EBADCONFIG);
	snprintf(want, sizeof want, "%s/myid: '1 2' is not a member number", datadir);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	set_myid("0");
	CHECK_EQ(load(&c, "%s", three), COORD_EBADCONFIG);
	snprintf(want, sizeof want, "%s/myid: '0' is not a member number", datadir);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	char huge[200];
	memset(huge, '1', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	set_myid(huge);
	CHECK_EQ(load(&c, "%s", three), COORD_EBADCONFIG);
	snprintf(want, sizeof want, "%s/myid: the file is too long for a member number", datadir);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	set_myid("7\n");
	CHECK_EQ(load(&c, "%s", three), COORD_EBADCONFIG);
	snprintf(want, sizeof want, "%s/myid: member 7 has no server.7 line in %s (expected one of 1, 2, 3)",
		 datadir, cfgfile);
	CHECK_STR(err, want);

	/* standalone: myid is not read, whatever it holds */
	set_myid("garbage");
	CHECK_OK(load(&c, "dataDir=@DATA@\n"));
	CHECK_EQ(c.my_id, 0);
	set_myid(NULL);
}

/* A failed load leaves the caller's struct as it was. */
static void test_all_or_nothing(void)
{
	struct coord_config c;
	memset(&c, 0x5a, sizeof c);
	struct coord_config before = c;
	CHECK_EQ(load(&c, "dataDir=@DATA@\ntickTime=100\nclientPort=99999\n"), COORD_EBADCONFIG);
	CHECK(memcmp(&c, &before, sizeof c) == 0);
	set_myid(NULL);
	CHECK_EQ(load(&c, "dataDir=@DATA@\nserver.1=h:1:2\n"), COORD_EBADCONFIG);
	CHECK(memcmp(&c, &before, sizeof c) == 0);
}

/* superUser: a principal that passes every ACL check; none by default. */
static void test_super_user(void)
{
	struct coord_config c;
	coord_config_defaults(&c);
	CHECK_STR(c.super_user, "");
	CHECK_EQ(coord_config_line(&c, "superUser=ops.admin@site", err, sizeof err), COORD_OK);
	CHECK_STR(c.super_user, "ops.admin@site");
	CHECK_EQ(coord_config_line(&c, "superUser=bad name", err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "superUser: 'bad name' is not a principal name") != NULL);
	CHECK_EQ(coord_config_line(&c, "superUser=a/b", err, sizeof err), COORD_EBADCONFIG);
	char longer[100];
	snprintf(longer, sizeof longer, "superUser=%065d", 1);
	CHECK_EQ(coord_config_line(&c, longer, err, sizeof err), COORD_EBADCONFIG);
	CHECK_STR(c.super_user, "ops.admin@site");
}

/* coord_config_line on its own: one setting at a time, no file, no line number. */
static void test_config_line(void)
{
	struct coord_config c;
	coord_config_defaults(&c);
	CHECK_EQ(coord_config_line(&c, "tickTime=250", err, sizeof err), COORD_OK);
	CHECK_EQ(c.tick_time, 250);
	CHECK_EQ(coord_config_line(&c, "dataDir = /d", err, sizeof err), COORD_OK);
	CHECK_STR(c.data_dir, "/d");
	CHECK_EQ(coord_config_line(&c, "server.5=host:1:2:observer;3", err, sizeof err), COORD_OK);
	CHECK_EQ(c.nmembers, 1);
	CHECK_EQ(c.members[0].id, 5);
	CHECK_EQ(c.members[0].client_port, 3);
	CHECK_EQ(coord_config_line(&c, "server.5=other:1:2", err, sizeof err), COORD_EBADCONFIG);
	CHECK_STR(err, "server.5: member 5 is already defined (member numbers must be unique)");
	CHECK_EQ(coord_config_line(&c, "tickTime=abc", err, sizeof err), COORD_EBADCONFIG);
	CHECK_STR(err, "tickTime: 'abc' is not a positive integer (expected milliseconds, 1..3600000)");
	CHECK_EQ(c.tick_time, 250); /* unchanged by the bad line */
	CHECK_EQ(coord_config_line(&c, "tickTim=1", err, sizeof err), COORD_EBADCONFIG);
	CHECK_STR(err, "unknown key 'tickTim' (did you mean 'tickTime'?)");
	CHECK_EQ(coord_config_line(&c, "forceSync=no", err, sizeof err), COORD_OK);
	/* a small error buffer truncates, never overflows */
	char small[8];
	CHECK_EQ(coord_config_line(&c, "tickTime=abc", small, sizeof small), COORD_EBADCONFIG);
	CHECK_STR(small, "tickTim");
	CHECK_EQ(coord_config_line(&c, "tickTime=abc", NULL, 0), COORD_EBADCONFIG);
	/* control characters in a value are shown as '?', long values are cut */
	CHECK_EQ(coord_config_line(&c, "tickTime=a\x01" "b", err, sizeof err), COORD_EBADCONFIG);
	CHECK_STR(err, "tickTime: 'a?b' is not a positive integer (expected milliseconds, 1..3600000)");
	char longv[300] = "tickTime=";
	memset(longv + 9, 'x', 250);
	longv[259] = '\0';
	CHECK_EQ(coord_config_line(&c, longv, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "xxx...' is not a positive integer") != NULL);
	CHECK(strlen(err) < 200);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	if (tmp[0])
		nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	snprintf(tmp, sizeof tmp, "%s/coord-config-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	CHECK(mkdtemp(tmp) != NULL);
	atexit(cleanup); /* a failed CHECK exits: the directory goes then too */
	snprintf(cfgfile, sizeof cfgfile, "%s/coord.cfg", tmp);
	snprintf(datadir, sizeof datadir, "%s/data", tmp);
	CHECK(mkdir(datadir, 0700) == 0);

	RUN(test_defaults);
	RUN(test_super_user);
	RUN(test_standalone_minimal);
	RUN(test_derived_timeouts);
	RUN(test_every_key);
	RUN(test_line_endings);
	RUN(test_auth);
	RUN(test_real_zoo_cfg);
	RUN(test_three_members);
	RUN(test_observer);
	RUN(test_zk35_client_port);
	RUN(test_ipv6);
	RUN(test_bad_syntax);
	RUN(test_bad_numbers);
	RUN(test_bad_session_timeouts);
	RUN(test_bad_server_lines);
	RUN(test_data_dir);
	RUN(test_missing_file);
	RUN(test_myid);
	RUN(test_all_or_nothing);
	RUN(test_config_line);

	CHECK(nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS) == 0);
	tmp[0] = '\0';
	return 0;
}
