/*
 * coordctl: the command line for a coordfs ensemble, zkCli's commands in a Unix shape.
 *
 *   coordctl [-s HOST:PORT[,...]] [-t SESSION_TIMEOUT_MS] COMMAND ARGS
 *
 * One process is one session (opened lazily, closed cleanly on exit so ephemeral nodes go at
 * once). Output is made for scripts: data raw, one name or path per line, nothing chatty on
 * stdout; errors on stderr as "coordctl: COMMAND PATH: reason (server's detail)"; and an exit
 * code per class of failure (listed in `coordctl --help`) so a script can tell "no such node"
 * from "server down" without parsing text.
 *
 * It uses only the public client library (client.h), like any other program would.
 * Options stop at the first operand (POSIX order), so data that starts with '-' can follow the
 * path; `--` ends options too.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "client.h"
#include "curve.h"
#include "err.h"
#include "log.h"
#include "wire.h"

#define DEFAULT_SERVERS "127.0.0.1:2181"
#define DEFAULT_TIMEOUT_MS 10000
#define ADMIN_TIMEOUT_MS 5000

/* exit codes: the contract with scripts (also in usage()) */
enum {
	EX_OK = 0,
	EX_NONODE = 1,
	EX_USAGE = 2,
	EX_EXISTS = 3,
	EX_BADVERSION = 4,
	EX_NOTEMPTY = 5,
	EX_INVALID = 6,
	EX_CONN = 7,
	EX_SERVER = 8,
	EX_NOAUTH = 9,
};

static const char *servers;
static int session_timeout_ms = DEFAULT_TIMEOUT_MS;
static int timeout_given;
static const char *cmd_name = "";

/* Set from the I/O thread, read by the main loops. */
static int state_pipe[2] = {-1, -1};
static int sig_pipe[2] = {-1, -1};

/* ------------------------------------------------------------------ usage */

struct command {
	const char *name;
	const char *synopsis;
	const char *help;
	int (*run)(int argc, char **argv);
};

static const struct command *find_command(const char *name);
static const struct command commands[];

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coordctl [-s HOST:PORT[,HOST:PORT...]] [-t SESSION_TIMEOUT_MS] [--key FILE --server-key FILE]\n"
		"                COMMAND [ARGS]\n"
		"\n"
		"  -s SERVERS          the ensemble (default: $COORD_SERVERS, else " DEFAULT_SERVERS ")\n"
		"  -t MS               session timeout to ask for (default %d; the server clamps it)\n"
		"  --key FILE          this client's CURVE key pair (NAME.key; default: $COORD_KEY)\n"
		"  --server-key FILE   the ensemble's public key (default: $COORD_SERVER_KEY); without\n"
		"                      both keys coordctl talks plaintext (servers with auth=none)\n"
		"\n"
		"commands:\n",
		DEFAULT_TIMEOUT_MS);
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %s\n", c->synopsis);
	fprintf(f,
		"\n"
		"`coordctl COMMAND --help` explains one command.\n"
		"\n"
		"exit status:\n"
		"  0  success (exists: the node exists)\n"
		"  1  no such node (exists: it does not)\n"
		"  2  usage error (unknown command or option, bad number)\n"
		"  3  node already exists\n"
		"  4  version mismatch\n"
		"  5  node has children\n"
		"  6  invalid input: bad path, name too long, data too large, bad argument,\n"
		"     ephemeral parent, parent is a file, child policy refused\n"
		"  7  connection lost, timed out, or session expired\n"
		"  8  server-side error (I/O error, disk full, not ready, anything else)\n"
		"  9  not authorised (also: the server refused our key)\n");
}

static void command_usage(FILE *f, const struct command *c)
{
	fprintf(f, "usage: coordctl [-s SERVERS] [-t MS] %s\n\n%s", c->synopsis, c->help);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "coordctl: ");
	if (*cmd_name)
		fprintf(stderr, "%s: ", cmd_name);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	const struct command *c = find_command(cmd_name);
	if (c)
		command_usage(stderr, c);
	else
		usage(stderr);
	return EX_USAGE;
}

/* ------------------------------------------------------------------ errors */

static int exit_code(int err)
{
	switch (err) {
	case COORD_OK:
		return EX_OK;
	case COORD_ENONODE:
		return EX_NONODE;
	case COORD_ENODEEXISTS:
		return EX_EXISTS;
	case COORD_EBADVERSION:
		return EX_BADVERSION;
	case COORD_ENOTEMPTY:
		return EX_NOTEMPTY;
	case COORD_EEPHEMERAL:
	case COORD_ENOTDIR:
	case COORD_EBADPATH:
	case COORD_ENAMETOOLONG:
	case COORD_ETOOLARGE:
	case COORD_EBADARG:
	case COORD_EPOLICY:
	case COORD_EISDIR:
		return EX_INVALID;
	case COORD_ECONNLOSS:
	case COORD_ETIMEOUT:
	case COORD_ESESSIONEXPIRED:
	case COORD_ECLOSING:
		return EX_CONN;
	case COORD_ENOAUTH:
		return EX_NOAUTH;
	default:
		return EX_SERVER;
	}
}

/* "coordctl: create /a/b: no such node (parent /a does not exist)" */
static int report(const char *path, int err, const char *msg)
{
	const char *text = coord_strerror(err);
	fprintf(stderr, "coordctl: %s%s%s: %s", cmd_name, path ? " " : "", path ? path : "", text);
	if (msg && *msg && strcmp(msg, text) != 0)
		fprintf(stderr, " (%s)", msg);
	fprintf(stderr, "\n");
	return exit_code(err);
}

static int report_last(const char *path, int err) { return report(path, err, coord_last_error()); }

/* ------------------------------------------------------------------ small helpers */

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_version(const char *s, int32_t *v)
{
	long x;
	if (parse_int(s, -1, INT32_MAX, &x))
		return usage_error("'%s' is not a version (an integer >= -1)", s);
	*v = (int32_t)x;
	return 0;
}

static int parse_policy(const char *s, uint8_t *policy)
{
	if (strcmp(s, "ephemeral") == 0)
		*policy = COORD_POLICY_EPHEMERAL;
	else if (strcmp(s, "sequential") == 0)
		*policy = COORD_POLICY_SEQUENTIAL;
	else if (strcmp(s, "ephemeral,sequential") == 0 || strcmp(s, "sequential,ephemeral") == 0)
		*policy = COORD_POLICY_EPHEMERAL | COORD_POLICY_SEQUENTIAL;
	else
		return usage_error("--children: '%s' is not ephemeral, sequential or ephemeral,sequential", s);
	return 0;
}

static const char *policy_name(uint8_t p)
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

/* DATA from an argument, or all of stdin for "-". */
static int read_data(const char *arg, char **data, size_t *len, int *allocated)
{
	*allocated = 0;
	if (strcmp(arg, "-") != 0) {
		*data = (char *)arg;
		*len = strlen(arg);
		return 0;
	}
	size_t cap = 65536, n = 0;
	char *b = malloc(cap);
	if (!b) {
		fprintf(stderr, "coordctl: %s: out of memory\n", cmd_name);
		return EX_SERVER;
	}
	for (;;) {
		if (n == cap) {
			if (cap > COORD_MAX_DATA) { /* the server would refuse it anyway */
				free(b);
				return report("(stdin)", COORD_ETOOLARGE, "more data on stdin than the protocol can carry");
			}
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				fprintf(stderr, "coordctl: %s: out of memory\n", cmd_name);
				return EX_SERVER;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t r = read(STDIN_FILENO, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "coordctl: %s: reading stdin: %s\n", cmd_name, strerror(errno));
			free(b);
			return EX_INVALID;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*data = b;
	*len = n;
	*allocated = 1;
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int stdout_failed(void)
{
	if (fflush(stdout) == 0)
		return 0;
	if (errno == EPIPE) /* the reader went away (`| head`): not our failure */
		return EX_OK;
	fprintf(stderr, "coordctl: %s: writing output: %s\n", cmd_name, strerror(errno));
	return EX_SERVER;
}

static void on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;
	if (write(sig_pipe[1], &b, 1) < 0) {
		/* full pipe: a signal is already pending */
	}
	errno = saved;
}

/*
 * The library keeps a request pending across reconnects for as long as it takes (a mount must
 * never get an ambiguous answer). A command line must end, though: once no server has answered
 * for a whole session timeout the server has expired the session anyway, so the watchdog gives
 * up with exit 7 and says the last operation may or may not have taken effect.
 */
static _Atomic int64_t lost_since; /* CLOCK_MONOTONIC ms when the session lost its server; 0: connected */
static int negotiated_ms;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watchdog(void *arg)
{
	for (;;) {
		usleep(100 * 1000);
		int64_t t = lost_since;
		if (t && mono_ms() - t > negotiated_ms) {
			char msg[512];
			int n = snprintf(msg, sizeof(msg),
					 "coordctl: %s: connection lost: no server answered for %d ms; the session "
					 "has expired (an operation in progress may or may not have taken effect)\n",
					 cmd_name, negotiated_ms);
			fflush(stdout);
			if (write(STDERR_FILENO, msg, n > 0 && (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1) < 0) {
				/* nothing more to say it with */
			}
			_exit(EX_CONN);
		}
	}
	return NULL;
}

static void on_state(void *arg, int state)
{
	if (state == COORD_STATE_CONNECTING) {
		if (!lost_since)
			lost_since = mono_ms();
	} else {
		lost_since = 0;
	}
	unsigned char b = (unsigned char)state;
	if (state_pipe[1] >= 0 && write(state_pipe[1], &b, 1) < 0) {
		/* full: the main loop is behind; the state is read again there */
	}
}

static int make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0)
		return 0;
	fprintf(stderr, "coordctl: pipe: %s\n", strerror(errno));
	return -1;
}

/* SIGINT/SIGTERM end --hold and watch cleanly (the session is closed, not left to expire). */
static int catch_signals(void)
{
	if (make_pipe(sig_pipe))
		return -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	return 0;
}

/* ------------------------------------------------------------------ the session */

static struct coord_client *client;

static void (*event_handler)(void *arg, const struct coord_event *ev);

static int connect_session(struct coord_client **out)
{
	if (client) {
		*out = client;
		return 0;
	}
	if (make_pipe(state_pipe))
		return EX_SERVER;
	struct coord_client_opts o;
	memset(&o, 0, sizeof(o));
	o.hosts = servers;
	o.session_timeout_ms = session_timeout_ms;
	o.connect_timeout_ms = session_timeout_ms;
	o.on_event = event_handler;
	o.on_state = on_state;
	char err[512];
	int rc = coord_client_open(&o, &client, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "coordctl: %s: cannot open a session with %s: %s\n", cmd_name, servers, err);
		return rc == COORD_EBADARG ? EX_USAGE : exit_code(rc);
	}
	negotiated_ms = coord_client_timeout_ms(client);
	pthread_t t;
	if (pthread_create(&t, NULL, watchdog, NULL) == 0)
		pthread_detach(t);
	*out = client;
	return 0;
}

static void close_session(void)
{
	if (client)
		coord_client_close(client);
	client = NULL;
}

/* ------------------------------------------------------------------ getopt plumbing */

#define OPT_DIR 1000
#define OPT_CHILDREN 1001
#define OPT_HOLD 1002
#define OPT_NOREPLACE 1003
#define OPT_EXCHANGE 1004
#define OPT_HELP 1005
#define OPT_ACL 1006

/* Shared prologue: "--help" prints the command's usage; unknown options are usage errors. */
static int getopt_cmd(int argc, char **argv, const char *shortopts, const struct option *longopts,
		      int *help)
{
	int c = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (c == OPT_HELP)
		*help = 1;
	return c;
}

static char **cur_argv; /* the running command's argv, for naming a bad option */

static int help_or_bad(int c, int help)
{
	if (help) {
		command_usage(stdout, find_command(cmd_name));
		return EX_OK;
	}
	if (c == '?' || c == ':') {
		if (optopt && optopt < OPT_DIR)
			return usage_error("bad option '-%c' (unknown, or missing its argument)", optopt);
		return usage_error("bad option '%s' (unknown, or missing its argument)",
				   optind > 0 ? cur_argv[optind - 1] : "?");
	}
	return -1;
}

/* The options of a command whose one option is -v/--version N: -1 to go on, else its exit code. */
static int version_opts(int argc, char **argv, int32_t *version)
{
	static const struct option lo[] = {{"version", required_argument, NULL, 'v'},
					   {"help", no_argument, NULL, OPT_HELP},
					   {NULL, 0, NULL, 0}};
	int c, help = 0;
	*version = -1;
	while ((c = getopt_cmd(argc, argv, "+v:", lo, &help)) != -1) {
		if (c == 'v') {
			if (parse_version(optarg, version))
				return EX_USAGE;
			continue;
		}
		int rc = help_or_bad(c, help);
		if (rc >= 0)
			return rc;
	}
	return -1;
}

static const struct option help_only[] = {{"help", no_argument, NULL, OPT_HELP}, {NULL, 0, NULL, 0}};

/* Commands that take exactly `n` operands and no options. */
static int simple_args(int argc, char **argv, int nmin, int nmax)
{
	int c, help = 0;
	while ((c = getopt_cmd(argc, argv, "+", help_only, &help)) != -1) {
		int rc = help_or_bad(c, help);
		if (rc >= 0)
			return rc;
	}
	int n = argc - optind;
	if (n < nmin)
		return usage_error("missing operand");
	if (n > nmax)
		return usage_error("too many operands");
	return -1;
}

/* ------------------------------------------------------------------ commands */

/* Wait until SIGINT/SIGTERM, stdin's EOF (unless stdin is /dev/null or already used), or the
 * session's death. Returns the exit code. */
static int hold(const char *path, int watch_stdin)
{
	struct stat in, dn;
	/* A background job in a script gets /dev/null as stdin: treat that as "no stdin", or
	 * `coordctl create -e --hold /lock &` would let go at once. */
	if (watch_stdin && fstat(STDIN_FILENO, &in) == 0 && stat("/dev/null", &dn) == 0 && S_ISCHR(in.st_mode) &&
	    in.st_rdev == dn.st_rdev)
		watch_stdin = 0;
	if (watch_stdin && fcntl(STDIN_FILENO, F_GETFD) < 0)
		watch_stdin = 0;
	for (;;) {
		struct pollfd p[3] = {{sig_pipe[0], POLLIN, 0}, {state_pipe[0], POLLIN, 0},
				      {watch_stdin ? STDIN_FILENO : -1, POLLIN, 0}};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return EX_SERVER;
		}
		if (p[0].revents)
			return EX_OK;
		if (p[1].revents) {
			unsigned char st;
			while (read(state_pipe[0], &st, 1) == 1) {
			}
			if (coord_client_state(client) == COORD_STATE_EXPIRED)
				return report(path, COORD_ESESSIONEXPIRED, "the session expired while holding");
		}
		if (p[2].revents) {
			char buf[4096];
			ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
				return EX_OK;
		}
	}
}

/* An ACL argument is checked here first, so a typo gets its precise message without a round trip. */
static int check_acl(const char *acl)
{
	struct coord_acl a;
	char why[300];
	if (coord_acl_parse(acl, strlen(acl), &a, why, sizeof(why)) == COORD_OK)
		return 0;
	report(NULL, COORD_EBADARG, why);
	return 1;
}

static int cmd_create(int argc, char **argv)
{
	static const struct option lo[] = {{"dir", no_argument, NULL, OPT_DIR},
					   {"children", required_argument, NULL, OPT_CHILDREN},
					   {"hold", no_argument, NULL, OPT_HOLD},
					   {"ephemeral", no_argument, NULL, 'e'},
					   {"sequential", no_argument, NULL, 's'},
					   {"acl", required_argument, NULL, OPT_ACL},
					   {"help", no_argument, NULL, OPT_HELP},
					   {NULL, 0, NULL, 0}};
	uint32_t flags = 0;
	uint8_t policy = 0;
	const char *acl = NULL;
	int c, help = 0, hold_it = 0, have_policy = 0;
	while ((c = getopt_cmd(argc, argv, "+es", lo, &help)) != -1) {
		switch (c) {
		case 'e': flags |= COORD_CREATE_EPHEMERAL; break;
		case 's': flags |= COORD_CREATE_SEQUENTIAL; break;
		case OPT_DIR: flags |= COORD_CREATE_DIR; break;
		case OPT_HOLD: hold_it = 1; break;
		case OPT_ACL: acl = optarg; break;
		case OPT_CHILDREN:
			if (parse_policy(optarg, &policy))
				return EX_USAGE;
			have_policy = 1;
			break;
		default: {
			int rc = help_or_bad(c, help);
			if (rc >= 0)
				return rc;
		}
		}
	}
	if (have_policy && !(flags & COORD_CREATE_DIR))
		return usage_error("--children applies to directories: add --dir");
	if (acl && check_acl(acl))
		return EX_INVALID;
	int n = argc - optind;
	if (n < 1 || n > 2)
		return usage_error(n < 1 ? "missing PATH" : "too many operands");
	const char *path = argv[optind];
	char *data = NULL;
	size_t len = 0;
	int allocated = 0, from_stdin = n == 2 && strcmp(argv[optind + 1], "-") == 0;
	if (n == 2) {
		int rc = read_data(argv[optind + 1], &data, &len, &allocated);
		if (rc)
			return rc;
	}
	if (hold_it && catch_signals()) {
		if (allocated)
			free(data);
		return EX_SERVER;
	}
	struct coord_client *cl;
	int rc = connect_session(&cl);
	if (rc) {
		if (allocated)
			free(data);
		return rc;
	}
	char *created = NULL;
	int err = coord_create_acl(cl, path, data, len, flags, policy, acl, &created, NULL);
	if (allocated)
		free(data);
	if (err)
		return report_last(path, err);
	printf("%s\n", created);
	rc = stdout_failed();
	if (hold_it && rc == EX_OK)
		rc = hold(created, !from_stdin);
	free(created);
	return rc;
}

static int mkdir_one(struct coord_client *cl, const char *path, uint8_t policy, int exist_ok)
{
	int err = coord_create(cl, path, NULL, 0, COORD_CREATE_DIR, policy, NULL, NULL);
	if (err == COORD_ENODEEXISTS && exist_ok)
		return EX_OK;
	return err ? report_last(path, err) : EX_OK;
}

static int cmd_mkdir(int argc, char **argv)
{
	static const struct option lo[] = {{"parents", no_argument, NULL, 'p'},
					   {"children", required_argument, NULL, OPT_CHILDREN},
					   {"help", no_argument, NULL, OPT_HELP},
					   {NULL, 0, NULL, 0}};
	int c, help = 0, parents = 0;
	uint8_t policy = 0;
	while ((c = getopt_cmd(argc, argv, "+p", lo, &help)) != -1) {
		switch (c) {
		case 'p': parents = 1; break;
		case OPT_CHILDREN:
			if (parse_policy(optarg, &policy))
				return EX_USAGE;
			break;
		default: {
			int rc = help_or_bad(c, help);
			if (rc >= 0)
				return rc;
		}
		}
	}
	if (argc - optind < 1)
		return usage_error("missing PATH");
	struct coord_client *cl;
	int rc = connect_session(&cl);
	if (rc)
		return rc;
	for (int i = optind; i < argc && rc == EX_OK; i++) {
		const char *path = argv[i];
		if (parents) {
			/* Every ancestor, shortest first; an existing one is fine, as mkdir -p. */
			size_t len = strlen(path);
			char *buf = strdup(path);
			if (!buf)
				return EX_SERVER;
			for (size_t k = 1; k < len && rc == EX_OK; k++) {
				if (path[k] != '/')
					continue;
				buf[k] = '\0';
				rc = mkdir_one(cl, buf, 0, 1);
				buf[k] = '/';
			}
			free(buf);
			if (rc == EX_OK && strcmp(path, "/") != 0)
				rc = mkdir_one(cl, path, policy, 1);
		} else {
			rc = mkdir_one(cl, path, policy, 0);
		}
	}
	return rc;
}

static int cmd_get(int argc, char **argv)
{
	int32_t version;
	int orc = version_opts(argc, argv, &version);
	if (orc >= 0)
		return orc;
	if (optind + 1 != argc)
		return usage_error("get: expected one PATH");
	const char *path = argv[optind];
	struct coord_client *cl;
	int rc;
	if ((rc = connect_session(&cl)))
		return rc;
	void *data = NULL;
	size_t len = 0;
	int err = version >= 0 ? coord_get_version(cl, path, version, &data, &len, NULL)
			       : coord_get(cl, path, 0, &data, &len, NULL);
	if (err)
		return report_last(path, err);
	if (write_all(STDOUT_FILENO, data, len) && errno != EPIPE) {
		fprintf(stderr, "coordctl: get %s: writing output: %s\n", path, strerror(errno));
		rc = EX_SERVER;
	} else {
		rc = EX_OK;
	}
	free(data);
	return rc;
}

static int cmd_history(int argc, char **argv)
{
	int rc = simple_args(argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	const char *path = argv[optind];
	struct coord_client *cl;
	if ((rc = connect_session(&cl)))
		return rc;
	struct coord_hist *h = NULL;
	uint32_t n = 0;
	int err = coord_history(cl, path, &h, &n, NULL);
	if (err)
		return report_last(path, err);
	for (uint32_t i = 0; i < n; i++) {
		char when[64];
		time_t t = (time_t)(h[i].mtime / 1000);
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", localtime_r(&t, &tm));
		printf("%d 0x%llx %s.%03d %u\n", h[i].version, (unsigned long long)h[i].mzxid, when,
		       (int)(h[i].mtime % 1000), h[i].size);
	}
	free(h);
	return EX_OK;
}

static int cmd_getacl(int argc, char **argv)
{
	int rc = simple_args(argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	const char *path = argv[optind];
	struct coord_client *cl;
	if ((rc = connect_session(&cl)))
		return rc;
	char *acl = NULL;
	struct coord_stat st;
	int err = coord_getacl(cl, path, &acl, NULL, &st);
	if (err)
		return report_last(path, err);
	printf("%s\n", acl);
	free(acl);
	return stdout_failed();
}

static int cmd_setacl(int argc, char **argv)
{
	int32_t aversion;
	int orc = version_opts(argc, argv, &aversion);
	if (orc >= 0)
		return orc;
	if (argc - optind != 2)
		return usage_error(argc - optind < 2 ? "need PATH and ACL" : "too many operands");
	const char *path = argv[optind], *acl = argv[optind + 1];
	if (check_acl(acl))
		return EX_INVALID;
	struct coord_client *cl;
	int rc = connect_session(&cl);
	if (rc)
		return rc;
	int err = coord_setacl(cl, path, acl, aversion, NULL);
	return err ? report_last(path, err) : EX_OK;
}

static int cmd_set(int argc, char **argv)
{
	int32_t version;
	int orc = version_opts(argc, argv, &version);
	if (orc >= 0)
		return orc;
	if (argc - optind != 2)
		return usage_error(argc - optind < 2 ? "need PATH and DATA (or - for stdin)" : "too many operands");
	const char *path = argv[optind];
	char *data;
	size_t len;
	int allocated;
	int rc = read_data(argv[optind + 1], &data, &len, &allocated);
	if (rc)
		return rc;
	struct coord_client *cl;
	if ((rc = connect_session(&cl)) == 0) {
		int err = coord_set(cl, path, data, len, version, NULL);
		rc = err ? report_last(path, err) : EX_OK;
	}
	if (allocated)
		free(data);
	return rc;
}

static int cmd_append(int argc, char **argv)
{
	int rc = simple_args(argc, argv, 2, 2);
	if (rc >= 0)
		return rc;
	const char *path = argv[optind];
	char *data;
	size_t len;
	int allocated;
	if ((rc = read_data(argv[optind + 1], &data, &len, &allocated)))
		return rc;
	struct coord_client *cl;
	if ((rc = connect_session(&cl)) == 0) {
		int err = coord_append(cl, path, data, len, NULL);
		rc = err ? report_last(path, err) : EX_OK;
	}
	if (allocated)
		free(data);
	return rc;
}

static void print_time(const char *label, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[64];
	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%a %b %d %H:%M:%S %Z %Y", &tm);
	printf("%s = %s\n", label, buf);
}

static int cmd_stat(int argc, char **argv)
{
	int rc = simple_args(argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	const char *path = argv[optind];
	struct coord_client *cl;
	if ((rc = connect_session(&cl)))
		return rc;
	struct coord_stat st;
	int err = coord_exists(cl, path, 0, &st);
	if (err)
		return report_last(path, err);
	/* ZooKeeper zkCli's layout, so habits and parsers carry over; coordfs's fields after. */
	printf("cZxid = 0x%" PRIx64 "\n", (uint64_t)st.czxid);
	print_time("ctime", st.ctime);
	printf("mZxid = 0x%" PRIx64 "\n", (uint64_t)st.mzxid);
	print_time("mtime", st.mtime);
	printf("pZxid = 0x%" PRIx64 "\n", (uint64_t)st.pzxid);
	printf("cversion = %" PRId32 "\n", st.cversion);
	printf("dataVersion = %" PRId32 "\n", st.version);
	printf("aclVersion = %" PRId32 "\n", st.aversion);
	printf("ephemeralOwner = 0x%" PRIx64 "\n", (uint64_t)st.ephemeral_owner);
	printf("dataLength = %" PRId32 "\n", st.data_length);
	printf("numChildren = %" PRId32 "\n", st.num_children);
	printf("kind = %s\n", st.kind == COORD_KIND_DIR ? "dir" : "file");
	printf("children = %s\n", policy_name(st.policy));
	printf("ino = %" PRIu64 "\n", st.ino);
	return stdout_failed();
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Many independent requests at once (ls -l's EXISTS per child, rm -r's DELETE per child): all
 * in flight together, at most BATCH_WINDOW at a time, so a big directory costs a few round trips
 * of pipelined requests instead of one round trip (and, for writes, one fsync wait) per name.
 */
#define BATCH_WINDOW 1000

struct batch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t inflight;
	struct coord_stat *st;
	int *err;
};

struct batch_slot {
	struct batch *b;
	size_t i;
};

static void batch_done(void *arg, struct coord_result *res)
{
	struct batch_slot *s = arg;
	struct batch *b = s->b;
	pthread_mutex_lock(&b->mu);
	b->err[s->i] = res->err;
	if (res->err == COORD_OK && b->st)
		b->st[s->i] = res->rep.stat;
	b->inflight--;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	coord_result_free(res);
	free(res);
}

/* Run `op` (EXISTS or DELETE, any version) on each path; errs[i] gets each result, st[i] each
 * stat (st may be NULL). Returns 0, or -1 when out of memory. */
static int run_batch(struct coord_client *cl, uint8_t op, char **paths, size_t n, int *errs,
		     struct coord_stat *st)
{
	struct batch b;
	struct batch_slot *slots = calloc(n ? n : 1, sizeof(*slots));
	if (!slots)
		return -1;
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	b.inflight = 0;
	b.st = st;
	b.err = errs;
	for (size_t i = 0; i < n; i++) {
		if (!paths[i]) {
			errs[i] = COORD_ENOMEM;
			continue;
		}
		struct coord_req req;
		memset(&req, 0, sizeof(req));
		req.op = op;
		req.path = slice_str(paths[i]);
		req.version = -1;
		slots[i].b = &b;
		slots[i].i = i;
		pthread_mutex_lock(&b.mu);
		while (b.inflight >= BATCH_WINDOW)
			pthread_cond_wait(&b.cv, &b.mu);
		b.inflight++;
		pthread_mutex_unlock(&b.mu);
		int err = coord_submit(cl, &req, batch_done, &slots[i]);
		if (err) {
			pthread_mutex_lock(&b.mu);
			b.inflight--;
			errs[i] = err;
			pthread_mutex_unlock(&b.mu);
		}
	}
	pthread_mutex_lock(&b.mu);
	while (b.inflight > 0)
		pthread_cond_wait(&b.cv, &b.mu);
	pthread_mutex_unlock(&b.mu);
	pthread_mutex_destroy(&b.mu);
	pthread_cond_destroy(&b.cv);
	free(slots);
	return 0;
}

static char *child_path(const char *parent, const char *name)
{
	size_t pl = strlen(parent), nl = strlen(name);
	int root = pl == 1 && parent[0] == '/';
	char *p = malloc(pl + nl + 2);
	if (!p)
		return NULL;
	memcpy(p, parent, pl);
	size_t k = root ? pl : pl + 1;
	if (!root)
		p[pl] = '/';
	memcpy(p + k, name, nl + 1);
	return p;
}

static char **child_paths(const char *parent, char **names, size_t n)
{
	char **paths = calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; paths && i < n; i++)
		paths[i] = child_path(parent, names[i]); /* NULL is reported per path by run_batch */
	return paths;
}

static void free_paths(char **paths, size_t n)
{
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
}

static int ls_long(struct coord_client *cl, const char *path, char **names, size_t n)
{
	struct coord_stat *st = calloc(n ? n : 1, sizeof(*st));
	int *errs = calloc(n ? n : 1, sizeof(*errs));
	char **paths = child_paths(path, names, n);
	int rc = EX_OK;
	if (!st || !errs || !paths || run_batch(cl, COORD_OP_EXISTS, paths, n, errs, st)) {
		fprintf(stderr, "coordctl: ls: out of memory\n");
		rc = EX_SERVER;
	}
	for (size_t i = 0; i < n && rc == EX_OK; i++) {
		if (errs[i] == COORD_ENONODE) /* deleted since the listing: it is gone, say nothing */
			continue;
		if (errs[i]) {
			rc = report(paths[i] ? paths[i] : names[i], errs[i], NULL);
			continue;
		}
		printf("%-4s %10" PRId32 " %6" PRId32 " %s\n", st[i].kind == COORD_KIND_DIR ? "dir" : "file",
		       st[i].data_length, st[i].version, names[i]);
	}
	free_paths(paths, n);
	free(st);
	free(errs);
	return rc;
}

static int cmd_ls(int argc, char **argv)
{
	static const struct option lo[] = {{"long", no_argument, NULL, 'l'},
					   {"help", no_argument, NULL, OPT_HELP},
					   {NULL, 0, NULL, 0}};
	int c, help = 0, longfmt = 0;
	while ((c = getopt_cmd(argc, argv, "+l", lo, &help)) != -1) {
		if (c == 'l') {
			longfmt = 1;
			continue;
		}
		int rc = help_or_bad(c, help);
		if (rc >= 0)
			return rc;
	}
	if (argc - optind != 1)
		return usage_error(argc - optind < 1 ? "missing PATH" : "too many operands");
	const char *path = argv[optind];
	struct coord_client *cl;
	int rc = connect_session(&cl);
	if (rc)
		return rc;
	char **names = NULL;
	size_t n = 0;
	int err = coord_list(cl, path, 0, &names, &n, NULL);
	if (err)
		return report_last(path, err);
	qsort(names, n, sizeof(char *), cmp_names);
	if (longfmt) {
		rc = ls_long(cl, path, names, n);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", names[i]);
	}
	coord_names_free(names, n);
	int orc = stdout_failed();
	return rc ? rc : orc;
}

/* rm -r: children first, all of a directory's children deleted at once (pipelined); those that
 * have children of their own (ENOTEMPTY) are emptied recursively and deleted then. Another
 * client may add or remove children meanwhile: a child already gone is fine, and a node that
 * gained one is emptied again (a few times, then give up). */
static int rm_tree(struct coord_client *cl, const char *path, int32_t version, int top)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		char **names = NULL;
		size_t n = 0;
		int err = coord_list(cl, path, 0, &names, &n, NULL);
		if (err == COORD_ENONODE && !top)
			return EX_OK;
		if (err)
			return report_last(path, err);
		char **paths = child_paths(path, names, n);
		int *errs = calloc(n ? n : 1, sizeof(*errs));
		coord_names_free(names, n);
		int rc = EX_OK;
		if (!paths || !errs || run_batch(cl, COORD_OP_DELETE, paths, n, errs, NULL)) {
			fprintf(stderr, "coordctl: rm: out of memory\n");
			rc = EX_SERVER;
		}
		for (size_t i = 0; i < n && rc == EX_OK; i++) {
			if (errs[i] == COORD_ENOTEMPTY)
				rc = rm_tree(cl, paths[i], -1, 0);
			else if (errs[i] && errs[i] != COORD_ENONODE)
				rc = report(paths[i], errs[i], NULL);
		}
		free_paths(paths, n);
		free(errs);
		if (rc)
			return rc;
		if (strcmp(path, "/") == 0)
			return EX_OK; /* the root itself stays */
		err = coord_delete(cl, path, version);
		if (err == COORD_OK || (err == COORD_ENONODE && !top))
			return EX_OK;
		if (err != COORD_ENOTEMPTY)
			return report_last(path, err);
	}
	return report(path, COORD_ENOTEMPTY, "children keep appearing");
}

static int cmd_rm(int argc, char **argv)
{
	static const struct option lo[] = {{"recursive", no_argument, NULL, 'r'},
					   {"version", required_argument, NULL, 'v'},
					   {"help", no_argument, NULL, OPT_HELP},
					   {NULL, 0, NULL, 0}};
	int c, help = 0, recursive = 0;
	int32_t version = -1;
	while ((c = getopt_cmd(argc, argv, "+rRv:", lo, &help)) != -1) {
		switch (c) {
		case 'r':
		case 'R': recursive = 1; break;
		case 'v':
			if (parse_version(optarg, &version))
				return EX_USAGE;
			break;
		default: {
			int rc = help_or_bad(c, help);
			if (rc >= 0)
				return rc;
		}
		}
	}
	if (argc - optind < 1)
		return usage_error("missing PATH");
	struct coord_client *cl;
	int rc = connect_session(&cl);
	for (int i = optind; i < argc && rc == EX_OK; i++) {
		const char *path = argv[i];
		if (recursive) {
			rc = rm_tree(cl, path, version, 1);
		} else {
			int err = coord_delete(cl, path, version);
			rc = err ? report_last(path, err) : EX_OK;
		}
	}
	return rc;
}

static int cmd_mv(int argc, char **argv)
{
	static const struct option lo[] = {{"noreplace", no_argument, NULL, OPT_NOREPLACE},
					   {"exchange", no_argument, NULL, OPT_EXCHANGE},
					   {"help", no_argument, NULL, OPT_HELP},
					   {NULL, 0, NULL, 0}};
	int c, help = 0;
	uint32_t flags = 0;
	while ((c = getopt_cmd(argc, argv, "+", lo, &help)) != -1) {
		switch (c) {
		case OPT_NOREPLACE: flags |= COORD_RENAME_NOREPLACE; break;
		case OPT_EXCHANGE: flags |= COORD_RENAME_EXCHANGE; break;
		default: {
			int rc = help_or_bad(c, help);
			if (rc >= 0)
				return rc;
		}
		}
	}
	if (flags == (COORD_RENAME_NOREPLACE | COORD_RENAME_EXCHANGE))
		return usage_error("--noreplace and --exchange exclude each other");
	if (argc - optind != 2)
		return usage_error(argc - optind < 2 ? "need FROM and TO" : "too many operands");
	struct coord_client *cl;
	int rc = connect_session(&cl);
	if (rc)
		return rc;
	int err = coord_rename(cl, argv[optind], argv[optind + 1], flags, NULL);
	if (err) {
		char both[2 * COORD_MAX_PATH + 8];
		snprintf(both, sizeof(both), "%s %s", argv[optind], argv[optind + 1]);
		return report_last(both, err);
	}
	return EX_OK;
}

static int cmd_exists(int argc, char **argv)
{
	int rc = simple_args(argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	struct coord_client *cl;
	if ((rc = connect_session(&cl)))
		return rc;
	int err = coord_exists(cl, argv[optind], 0, NULL);
	if (err == COORD_OK)
		return EX_OK;
	if (err == COORD_ENONODE)
		return EX_NONODE; /* silent: the answer is the exit status */
	return report_last(argv[optind], err);
}

static int cmd_sync(int argc, char **argv)
{
	int rc = simple_args(argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	struct coord_client *cl;
	if ((rc = connect_session(&cl)))
		return rc;
	int err = coord_sync(cl, argv[optind]);
	return err ? report_last(argv[optind], err) : EX_OK;
}

/* ---- watch: events arrive on the I/O thread, which must not block on a slow stdout, so they
 * queue here and the main thread prints them. */

struct evq_item {
	struct evq_item *next;
	char line[];
};

static pthread_mutex_t evq_mu = PTHREAD_MUTEX_INITIALIZER;
static struct evq_item *evq_head, *evq_tail;
static int ev_pipe[2] = {-1, -1};

static const char *event_name(int type)
{
	switch (type) {
	case COORD_EV_CREATED: return "created";
	case COORD_EV_DELETED: return "deleted";
	case COORD_EV_CHANGED: return "changed";
	case COORD_EV_CHILDREN: return "children";
	case COORD_EV_OVERFLOW: return "overflow";
	default: return "unknown";
	}
}

static void on_watch_event(void *arg, const struct coord_event *ev)
{
	size_t n = strlen(ev->path) + 64;
	struct evq_item *it = malloc(sizeof(*it) + n);
	if (!it)
		return;
	snprintf(it->line, n, "%s %s 0x%" PRIx64 "\n", event_name(ev->type), ev->path, ev->zxid);
	it->next = NULL;
	pthread_mutex_lock(&evq_mu);
	if (evq_tail)
		evq_tail->next = it;
	else
		evq_head = it;
	evq_tail = it;
	pthread_mutex_unlock(&evq_mu);
	unsigned char b = 1;
	if (write(ev_pipe[1], &b, 1) < 0) {
		/* full: the main thread has wake-ups pending already */
	}
}

static void evq_free(void)
{
	pthread_mutex_lock(&evq_mu);
	while (evq_head) {
		struct evq_item *next = evq_head->next;
		free(evq_head);
		evq_head = next;
	}
	evq_tail = NULL;
	pthread_mutex_unlock(&evq_mu);
}

static int cmd_watch(int argc, char **argv)
{
	static const struct option lo[] = {{"recursive", no_argument, NULL, 'r'},
					   {"count", required_argument, NULL, 'n'},
					   {"help", no_argument, NULL, OPT_HELP},
					   {NULL, 0, NULL, 0}};
	int c, help = 0, recursive = 0;
	long count = -1;
	while ((c = getopt_cmd(argc, argv, "+rn:", lo, &help)) != -1) {
		switch (c) {
		case 'r': recursive = 1; break;
		case 'n':
			if (parse_int(optarg, 1, LONG_MAX, &count))
				return usage_error("-n: '%s' is not a positive count", optarg);
			break;
		default: {
			int rc = help_or_bad(c, help);
			if (rc >= 0)
				return rc;
		}
		}
	}
	if (argc - optind != 1)
		return usage_error(argc - optind < 1 ? "missing PATH" : "too many operands");
	const char *path = argv[optind];
	if (make_pipe(ev_pipe) || catch_signals())
		return EX_SERVER;
	event_handler = on_watch_event;
	struct coord_client *cl;
	int rc = connect_session(&cl);
	if (rc)
		return rc;
	int err = coord_addwatch(cl, path, recursive ? COORD_WATCH_PERSISTENT_RECURSIVE : COORD_WATCH_PERSISTENT);
	if (err)
		return report_last(path, err);
	fprintf(stderr, "watching %s\n", path);
	fflush(stderr);
	long seen = 0;
	rc = -1;
	while (rc < 0) {
		struct pollfd p[3] = {{sig_pipe[0], POLLIN, 0}, {state_pipe[0], POLLIN, 0}, {ev_pipe[0], POLLIN, 0}};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = EX_SERVER;
			break;
		}
		if (p[2].revents) {
			unsigned char b[256];
			while (read(ev_pipe[0], b, sizeof(b)) > 0) {
			}
			for (;;) {
				pthread_mutex_lock(&evq_mu);
				struct evq_item *it = evq_head;
				if (it) {
					evq_head = it->next;
					if (!evq_head)
						evq_tail = NULL;
				}
				pthread_mutex_unlock(&evq_mu);
				if (!it)
					break;
				fputs(it->line, stdout);
				free(it);
				if (fflush(stdout) != 0) {
					/* A reader that went away (`| head -1`) ends the watch quietly. */
					rc = errno == EPIPE ? EX_OK : stdout_failed();
					break;
				}
				if (count > 0 && ++seen >= count) {
					rc = EX_OK;
					break;
				}
			}
		}
		if (rc >= 0)
			break;
		if (p[1].revents) {
			unsigned char st;
			while (read(state_pipe[0], &st, 1) == 1) {
			}
			if (coord_client_state(cl) == COORD_STATE_EXPIRED)
				rc = report(path, COORD_ESESSIONEXPIRED, "the session expired: events may have been lost");
		}
		if (p[0].revents && rc < 0)
			rc = EX_OK;
	}
	close_session(); /* before freeing the queue: no more callbacks after this */
	evq_free();
	return rc;
}

/* ---- multi: each argument is one op, "create [-e] [-s] [--dir] PATH [DATA]", "set [-v V] PATH
 * DATA", "delete [-v V] PATH", "check -v V PATH". DATA is the rest of the argument after PATH
 * and one run of blanks, so it may hold spaces. */

static const char *skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Next blank-separated word into a malloc'd string; *s moves past it. */
static char *next_word(const char **s)
{
	const char *p = skip_blanks(*s), *e = p;
	while (*e && *e != ' ' && *e != '\t')
		e++;
	if (e == p)
		return NULL;
	char *w = strndup(p, (size_t)(e - p));
	*s = e;
	return w;
}

struct multi_op {
	struct coord_subop op;
	char *path;
	char *acl; /* create --acl=ACL */
	const char *data;
};

static int parse_multi_op(const char *arg, int idx, struct multi_op *m)
{
	const char *s = arg;
	char *verb = next_word(&s);
	if (!verb)
		return usage_error("op %d is empty", idx + 1);
	memset(m, 0, sizeof(*m));
	m->op.version = -1;
	if (strcmp(verb, "create") == 0)
		m->op.op = COORD_OP_CREATE;
	else if (strcmp(verb, "set") == 0)
		m->op.op = COORD_OP_SET;
	else if (strcmp(verb, "delete") == 0 || strcmp(verb, "rm") == 0)
		m->op.op = COORD_OP_DELETE;
	else if (strcmp(verb, "check") == 0)
		m->op.op = COORD_OP_CHECK;
	else {
		int rc = usage_error("op %d: '%s' is not create, set, delete or check", idx + 1, verb);
		free(verb);
		return rc;
	}
	int have_version = 0;
	for (;;) {
		char *w = next_word(&s);
		if (!w) {
			free(verb);
			return usage_error("op %d (%s): missing PATH", idx + 1, arg);
		}
		if (w[0] != '-' || strcmp(w, "-") == 0) {
			m->path = w;
			break;
		}
		int bad = 0;
		if (m->op.op == COORD_OP_CREATE && strcmp(w, "-e") == 0)
			m->op.flags |= COORD_CREATE_EPHEMERAL;
		else if (m->op.op == COORD_OP_CREATE && strcmp(w, "-s") == 0)
			m->op.flags |= COORD_CREATE_SEQUENTIAL;
		else if (m->op.op == COORD_OP_CREATE && (strcmp(w, "-es") == 0 || strcmp(w, "-se") == 0))
			m->op.flags |= COORD_CREATE_EPHEMERAL | COORD_CREATE_SEQUENTIAL;
		else if (m->op.op == COORD_OP_CREATE && strcmp(w, "--dir") == 0)
			m->op.flags |= COORD_CREATE_DIR;
		else if (m->op.op == COORD_OP_CREATE && strncmp(w, "--acl=", 6) == 0 && !m->acl) {
			if (check_acl(w + 6)) {
				free(w);
				free(verb);
				return EX_INVALID;
			}
			m->acl = strdup(w + 6);
			if (!m->acl)
				bad = 1;
			m->op.flags |= COORD_CREATE_ACL;
			m->op.acl = slice_str(m->acl);
		}
		else if (m->op.op != COORD_OP_CREATE && strcmp(w, "-v") == 0) {
			char *v = next_word(&s);
			long x;
			if (!v || parse_int(v, -1, INT32_MAX, &x))
				bad = 1;
			else {
				m->op.version = (int32_t)x;
				have_version = 1;
			}
			free(v);
		} else {
			bad = 1;
		}
		if (bad) {
			int rc = usage_error("op %d (%s): bad option '%s'", idx + 1, arg, w);
			free(w);
			free(verb);
			return rc;
		}
		free(w);
	}
	free(verb);
	const char *rest = skip_blanks(s);
	if (m->op.op == COORD_OP_CHECK && !have_version) {
		free(m->path);
		m->path = NULL;
		return usage_error("op %d (%s): check needs -v VERSION", idx + 1, arg);
	}
	if ((m->op.op == COORD_OP_DELETE || m->op.op == COORD_OP_CHECK) && *rest) {
		free(m->path);
		m->path = NULL;
		return usage_error("op %d (%s): unexpected '%s' after PATH", idx + 1, arg, rest);
	}
	if (m->op.op == COORD_OP_SET && !*rest) {
		free(m->path);
		m->path = NULL;
		return usage_error("op %d (%s): set needs DATA", idx + 1, arg);
	}
	m->data = rest;
	m->op.path = slice_str(m->path);
	m->op.data = slice_str(rest);
	return 0;
}

static int cmd_multi(int argc, char **argv)
{
	int rc = simple_args(argc, argv, 1, COORD_MAX_MULTI);
	if (rc >= 0)
		return rc;
	int n = argc - optind;
	struct multi_op *ms = calloc((size_t)n, sizeof(*ms));
	struct coord_subop *ops = calloc((size_t)n, sizeof(*ops));
	if (!ms || !ops) {
		free(ms);
		free(ops);
		return EX_SERVER;
	}
	rc = EX_OK;
	for (int i = 0; i < n && rc == EX_OK; i++) {
		int prc = parse_multi_op(argv[optind + i], i, &ms[i]);
		if (prc)
			rc = prc == EX_INVALID ? EX_INVALID : EX_USAGE;
		else
			ops[i] = ms[i].op;
	}
	struct coord_client *cl;
	if (rc == EX_OK)
		rc = connect_session(&cl);
	if (rc == EX_OK) {
		struct coord_req req;
		struct coord_result res;
		memset(&req, 0, sizeof(req));
		req.op = COORD_OP_MULTI;
		req.nops = (uint32_t)n;
		req.ops = ops;
		int err = coord_call(cl, &req, &res);
		if (err) {
			int fi = res.rep.fail_index;
			int operr = err;
			if (fi >= 0 && fi < n && (uint32_t)fi < res.rep.nops && res.rep.ops[fi].err)
				operr = res.rep.ops[fi].err;
			if (fi >= 0 && fi < n) {
				char what[COORD_MAX_PATH + 64];
				snprintf(what, sizeof(what), "op %d (%s %s)", fi + 1, coord_op_name(ops[fi].op),
					 ms[fi].path);
				rc = report(what, operr, res.msg);
			} else {
				rc = report(NULL, err, res.msg);
			}
		} else {
			/* Say what each create made (a sequential name is news to the caller). */
			for (uint32_t i = 0; i < res.rep.nops; i++)
				if (res.rep.ops[i].op == COORD_OP_CREATE)
					printf("%.*s\n", (int)res.rep.ops[i].path.len, (const char *)res.rep.ops[i].path.p);
			rc = stdout_failed();
		}
		coord_result_free(&res);
	}
	for (int i = 0; i < n; i++) {
		free(ms[i].path);
		free(ms[i].acl);
	}
	free(ms);
	free(ops);
	return rc;
}

static int cmd_admin(int argc, char **argv)
{
	int rc = simple_args(argc, argv, 0, 0);
	if (rc >= 0)
		return rc;
	char *text = NULL, err[512];
	int tmo = timeout_given && session_timeout_ms < ADMIN_TIMEOUT_MS ? session_timeout_ms : ADMIN_TIMEOUT_MS;
	int e = coord_admin_oneshot(servers, cmd_name, tmo, &text, err, sizeof(err));
	if (e) {
		fprintf(stderr, "coordctl: %s: %s\n", cmd_name, err[0] ? err : coord_strerror(e));
		return e == COORD_EBADARG ? EX_USAGE : exit_code(e);
	}
	fputs(text, stdout);
	free(text);
	return stdout_failed();
}

#define OPT_FORCE 1100

static int cmd_keygen(int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, NULL, OPT_HELP},
					   {"force", no_argument, NULL, OPT_FORCE},
					   {NULL, 0, NULL, 0}};
	int c, help = 0, force = 0;
	while ((c = getopt_cmd(argc, argv, "+f", lo, &help)) != -1) {
		if (c == OPT_FORCE || c == 'f') {
			force = 1;
			continue;
		}
		int rc = help_or_bad(c, help);
		if (rc >= 0)
			return rc;
	}
	if (argc - optind != 1)
		return usage_error(argc - optind < 1 ? "missing NAME" : "too many operands");
	const char *name = argv[optind];
	char keyfile[4096], pubfile[4096], err[600];
	if (!*name)
		return usage_error("NAME is empty");
	int rc = coord_key_generate(name, force, keyfile, pubfile, sizeof(keyfile), err, sizeof(err));
	if (rc) {
		fprintf(stderr, "coordctl: keygen: %s\n", err);
		return rc == COORD_ENODEEXISTS ? EX_EXISTS : rc == COORD_EBADARG ? EX_USAGE : EX_SERVER;
	}
	struct coord_keypair kp;
	if (coord_key_load(pubfile, 0, &kp, err, sizeof(err)) == COORD_OK)
		printf("%s %s\n", pubfile, kp.public_z85);
	return stdout_failed();
}

static int cmd_session(int argc, char **argv)
{
	int rc = simple_args(argc, argv, 0, 0);
	if (rc >= 0)
		return rc;
	struct coord_client *cl;
	if ((rc = connect_session(&cl)))
		return rc;
	char server[512];
	coord_client_server(cl, server, sizeof(server));
	printf("session_id = 0x%" PRIx64 "\n", coord_client_session_id(cl));
	printf("timeout = %d ms\n", coord_client_timeout_ms(cl));
	printf("server = %s\n", server);
	printf("last_zxid = 0x%" PRIx64 "\n", coord_client_last_zxid(cl));
	printf("max_data = %" PRIu32 "\n", coord_client_max_data(cl));
	return stdout_failed();
}

static int cmd_help(int argc, char **argv)
{
	if (argc > 1) {
		const struct command *c = find_command(argv[1]);
		if (!c) {
			fprintf(stderr, "coordctl: help: no command '%s'\n", argv[1]);
			usage(stderr);
			return EX_USAGE;
		}
		command_usage(stdout, c);
		return EX_OK;
	}
	usage(stdout);
	return EX_OK;
}

static const struct command commands[] = {
	{"create", "create [-e] [-s] [--dir] [--children=POLICY] [--acl=ACL] [--hold] PATH [DATA|-]",
	 "Create a znode and print its path (with a sequential node's suffix).\n"
	 "  -e              ephemeral: it goes when this session ends\n"
	 "  -s              sequential: a 10-digit suffix from the parent's cversion\n"
	 "  --dir           a directory znode (default: a file)\n"
	 "  --children=P    (with --dir) every file created in it is P: ephemeral, sequential\n"
	 "                  or ephemeral,sequential\n"
	 "  --acl=ACL       the node's ACL (see setacl); default: its parent's ACL\n"
	 "  --hold          keep the session (and an ephemeral node) until SIGINT/SIGTERM/SIGHUP\n"
	 "                  or EOF on stdin, then close it cleanly; stdin that is /dev/null, or\n"
	 "                  was the DATA, is not watched. kill -9 leaves the node until the\n"
	 "                  session times out. Exit 7 if the session expires meanwhile.\n"
	 "  DATA            the data, as given (no newline added); - reads it from stdin\n",
	 cmd_create},
	{"mkdir", "mkdir [-p] [--children=POLICY] PATH...",
	 "Create directory znodes.\n"
	 "  -p              create missing parents too; an existing directory is no error\n"
	 "  --children=P    the new directory's child policy (ephemeral, sequential,\n"
	 "                  ephemeral,sequential)\n",
	 cmd_mkdir},
	{"get", "get [-v VERSION] PATH",
	 "Write the node's data to stdout, raw (no newline added).\n"
	 "  -v VERSION      an earlier version still kept (see history); exit 1 if it is not\n",
	 cmd_get},
	{"history", "history PATH",
	 "List the versions of the node's data the server still keeps, oldest first, the current\n"
	 "one last: VERSION MZXID MTIME SIZE per line (historyDepth and historyBytes bound them).\n",
	 cmd_history},
	{"set", "set [-v VERSION] PATH DATA|-",
	 "Replace the node's data. -v: only if its data version is VERSION (else exit 4).\n"
	 "DATA is used as given (no newline added); - reads it from stdin.\n",
	 cmd_set},
	{"getacl", "getacl PATH",
	 "Print the node's ACL in its text form, e.g. world:anyone:r,key:web:rwcd.\n"
	 "Needs read or admin permission on the node (exit 9 without).\n",
	 cmd_getacl},
	{"setacl", "setacl [-v AVERSION] PATH ACL",
	 "Replace the node's ACL; needs admin permission on the node (exit 9 without).\n"
	 "  -v AVERSION     only if its ACL version (stat's aclVersion) is AVERSION (else exit 4)\n"
	 "  ACL             entries SCHEME:ID:PERMS separated by commas; schemes world:anyone and\n"
	 "                  key:PRINCIPAL; PERMS some of r (read: get, ls), w (write: set, append),\n"
	 "                  c (create children), d (delete children), a (admin: setacl, child policy)\n",
	 cmd_setacl},
	{"append", "append PATH DATA|-",
	 "Append DATA to the node's data in one atomic server-side step (no newline added).\n", cmd_append},
	{"stat", "stat PATH",
	 "Print the node's Stat as zkCli does (cZxid, ctime, mZxid, mtime, pZxid, cversion,\n"
	 "dataVersion, aclVersion, ephemeralOwner, dataLength, numChildren), then kind = file|dir,\n"
	 "children = POLICY|none and ino.\n",
	 cmd_stat},
	{"ls", "ls [-l] PATH",
	 "List the node's children, one name per line, sorted.\n"
	 "  -l              each line is: kind (file|dir), data length, data version, name\n",
	 cmd_ls},
	{"rm", "rm [-r] [-v VERSION] PATH...",
	 "Delete nodes (exit 5 if one has children).\n"
	 "  -r              delete the whole subtree, children first\n"
	 "  -v VERSION      only if the node's data version is VERSION (with -r: the top node)\n",
	 cmd_rm},
	{"mv", "mv [--noreplace|--exchange] FROM TO",
	 "Rename a node in one atomic step; an existing TO is replaced.\n"
	 "  --noreplace     fail (exit 3) if TO exists\n"
	 "  --exchange      swap FROM and TO (both must exist)\n",
	 cmd_mv},
	{"exists", "exists PATH", "Exit 0 if the node exists, 1 if not; print nothing.\n", cmd_exists},
	{"watch", "watch [-r] [-n COUNT] PATH",
	 "Watch the node (its data and its child list), or with -r its whole subtree, and print\n"
	 "each event as a line \"EVENT PATH ZXID\" (EVENT: created, deleted, changed, children;\n"
	 "ZXID in hex as 0x...), flushed at once. \"watching PATH\" goes to stderr when the\n"
	 "watch is armed. Runs until SIGINT/SIGTERM (exit 0), COUNT events with -n (exit 0), or\n"
	 "the session's expiry (exit 7). Reconnects to other members keep the watch.\n",
	 cmd_watch},
	{"sync", "sync PATH", "Bring the connected member up to date with the leader.\n", cmd_sync},
	{"multi", "multi 'OP ARGS'...",
	 "Apply all the ops or none. Each argument is one op:\n"
	 "  'create [-e] [-s] [--dir] [--acl=ACL] PATH [DATA]'   'set [-v V] PATH DATA'\n"
	 "  'delete [-v V] PATH'                      'check -v V PATH'\n"
	 "DATA is the rest of the argument after PATH. Prints each created path. On failure,\n"
	 "says which op failed and why, and the exit status is that op's.\n",
	 cmd_multi},
	{"ruok", "ruok", "Ask the first answering server \"are you ok\" (it says imok).\n", cmd_admin},
	{"srvr", "srvr", "Print the first answering server's status (as ZooKeeper's srvr).\n", cmd_admin},
	{"mntr", "mntr", "Print the first answering server's metrics (as ZooKeeper's mntr).\n", cmd_admin},
	{"cons", "cons", "List the first answering server's sessions (with each one's principal).\n", cmd_admin},
	{"conf", "conf", "Print the first answering server's configuration.\n", cmd_admin},
	{"session", "session", "Open a session and print its id, timeout, server and last zxid.\n",
	 cmd_session},
	{"keygen", "keygen [--force] NAME",
	 "Make a CURVE key pair: NAME.key (public and secret key, mode 0600) and NAME.pub (the\n"
	 "public key), as Z85 text; print \"NAME.pub PUBLICKEY\". An existing file is kept unless\n"
	 "--force. A client's public key goes into the servers' authorizedKeysFile as a line\n"
	 "\"PRINCIPAL PUBLICKEY\"; see README.md, Security.\n",
	 cmd_keygen},
	{"help", "help [COMMAND]", "Print the usage, or one command's.\n", cmd_help},
	{NULL, NULL, NULL, NULL},
};

static const struct command *find_command(const char *name)
{
	for (const struct command *c = commands; name && c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int main(int argc, char **argv)
{
	coord_log_init("coordctl", COORD_LOG_WARN);
	/* A write to a closed pipe is an error to handle, not a silent death mid-session. */
	signal(SIGPIPE, SIG_IGN);
	servers = getenv("COORD_SERVERS");
	if (!servers || !*servers)
		servers = DEFAULT_SERVERS;

	const char *key = getenv("COORD_KEY"), *server_key = getenv("COORD_SERVER_KEY");
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'},
					   {"servers", required_argument, NULL, 's'},
					   {"timeout", required_argument, NULL, 't'},
					   {"key", required_argument, NULL, 1101},
					   {"server-key", required_argument, NULL, 1102},
					   {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "+s:t:h", lo, NULL)) != -1) {
		switch (c) {
		case 's': servers = optarg; break;
		case 1101: key = optarg; break;
		case 1102: server_key = optarg; break;
		case 't': {
			long v;
			if (parse_int(optarg, 1, INT32_MAX, &v))
				return usage_error("-t: '%s' is not a timeout in milliseconds", optarg);
			session_timeout_ms = (int)v;
			timeout_given = 1;
			break;
		}
		case 'h': usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "coordctl: missing COMMAND\n");
		usage(stderr);
		return EX_USAGE;
	}
	const struct command *cmd = find_command(argv[optind]);
	if (!cmd) {
		fprintf(stderr, "coordctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	cmd_name = cmd->name;
	if (key && !*key)
		key = NULL;
	if (server_key && !*server_key)
		server_key = NULL;
	if (cmd->run != cmd_keygen && (key || server_key)) {
		char err[600];
		if (coord_client_set_keys(key, server_key, err, sizeof(err))) {
			fprintf(stderr, "coordctl: %s (--key/--server-key, $COORD_KEY/$COORD_SERVER_KEY)\n", err);
			return EX_USAGE;
		}
	}
	/* The command sees argv from its own name on; optind = 0 makes getopt start afresh. */
	int cargc = argc - optind;
	char **cargv = argv + optind;
	optind = 0;
	opterr = 0; /* help_or_bad says it, with the command's usage */
	cur_argv = cargv;
	int rc = cmd->run(cargc, cargv);
	close_session();
	return rc;
}
