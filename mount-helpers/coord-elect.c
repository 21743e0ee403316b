/*
 * coord-elect: leader election through a coordfs mount.
 *
 *   coord-elect [-k SECONDS] [-v] DIR NAME COMMAND [ARG...]   stand as candidate NAME; run
 *                                                             COMMAND while leading
 *   coord-elect --who DIR                                     print the current leader's NAME
 *
 * The lock recipe (recipe.h) on DIR, a directory with ephemeral,sequential children: each
 * candidate creates DIR/NAME-NNNNNNNNNN; the lowest number leads; every other candidate watches
 * only the entry before its own. The leader runs COMMAND with COORD_FENCING_TOKEN (the czxid of
 * its entry: it grows with every new leader) and COORD_ELECTION_NODE. When leadership is lost
 * (the session expired, the entry was deleted, the mount was cut off from the ensemble for a
 * quarter of the session timeout) COMMAND's process group gets SIGTERM (SIGKILL after -k SECONDS)
 * and, once it ended, the candidate queues again at the back. When COMMAND ends by itself the
 * candidate resigns and coord-elect exits with COMMAND's status.
 *
 * Exit status: COMMAND's (128+N if signal N ended it); 1 (--who) no leader; 64 usage; 69 not a
 * coordfs mount or DIR unusable; 75 the mount went away; 128+N when signal N stopped a candidate
 * that was not leading.
 */
#include <getopt.h>

#include "recipe.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coord-elect [-k SECONDS] [-v] DIR NAME COMMAND [ARG...]\n"
		"       coord-elect --who DIR\n"
		"\n"
		"Stands as candidate NAME in the election DIR (a directory in a coordfs mount, made if\n"
		"missing) and runs COMMAND while this candidate leads; stops COMMAND (SIGTERM) when the\n"
		"leadership is lost, and stands again. COMMAND gets COORD_FENCING_TOKEN.\n"
		"\n"
		"  --who                       print the current leader's NAME (exit 1 if there is none)\n"
		"  -k, --kill-after SECONDS    SIGKILL a COMMAND that still runs this long after SIGTERM\n"
		"                              (default 10)\n"
		"  -v, --verbose               say when leadership is won and lost\n"
		"  -h, --help                  this text\n"
		"\n"
		"exit status: COMMAND's when it ends by itself; 1 --who found no leader; 64 usage;\n"
		"69 not a coordfs mount or DIR unusable; 75 the mount went away\n");
}

/* A name that fits in a node name next to "-NNNNNNNNNN" and reads back unchanged. */
static int valid_name(const char *n)
{
	size_t l = strlen(n);
	if (!l || l > 200 || n[0] == '.')
		return 0;
	for (const unsigned char *p = (const unsigned char *)n; *p; p++)
		if (*p == '/' || *p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

/* The candidate's NAME from its entry's name: NAME-NNNNNNNNNN. */
static void name_of_entry(const char *entry, char *out, size_t outlen)
{
	size_t l = strlen(entry);
	size_t n = l > RX_SEQ_DIGITS + 1 ? l - RX_SEQ_DIGITS - 1 : 0;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, entry, n);
	out[n] = 0;
}

static int who(const char *dir)
{
	struct rx_mount m;
	const char *why;
	int rc = rx_resolve(dir, &m, &why);
	if (rc)
		rx_die(RX_EX_SETUP, "%s: %s", dir, why);
	struct rx_names ns;
	rc = rx_list(m.fpath, 1, &ns);
	if (rc == ENOENT) {
		rx_msg("no leader: %s does not exist", m.fpath);
		return 1;
	}
	if (rc)
		rx_die(RX_EX_SETUP, "cannot list %s: %s", m.fpath, strerror(rc));
	const char *best = NULL;
	for (size_t i = 0; i < ns.n; i++)
		if (rx_seq_of(ns.v[i]) >= 0 && (!best || rx_seq_of(ns.v[i]) < rx_seq_of(best)))
			best = ns.v[i];
	if (!best) {
		rx_names_free(&ns);
		rx_msg("no leader in %s", m.fpath);
		return 1;
	}
	char name[NAME_MAX + 1];
	name_of_entry(best, name, sizeof(name));
	rx_names_free(&ns);
	printf("%s\n", name);
	return fflush(stdout) ? RX_EX_SETUP : 0;
}

int main(int argc, char **argv)
{
	rx_prog = "coord-elect";
	int64_t kill_after_ms = 10000;
	int verbose = 0, who_mode = 0;
	static const struct option longopts[] = {
		{"who", no_argument, NULL, 'W'},
		{"kill-after", required_argument, NULL, 'k'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "+k:vh", longopts, NULL)) != -1) {
		switch (o) {
		case 'W':
			who_mode = 1;
			break;
		case 'k':
			if ((kill_after_ms = rx_parse_seconds(optarg)) < 0)
				rx_die(RX_EX_USAGE, "-k: '%s' is not a number of seconds", optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return RX_EX_USAGE;
		}
	}
	if (who_mode) {
		if (argc - optind != 1) {
			usage(stderr);
			return RX_EX_USAGE;
		}
		return who(argv[optind]);
	}
	if (argc - optind < 3) {
		usage(stderr);
		return RX_EX_USAGE;
	}
	const char *dir = argv[optind], *name = argv[optind + 1];
	char **cmd = argv + optind + 2;
	if (!valid_name(name))
		rx_die(RX_EX_USAGE, "NAME '%s' must be 1..200 characters without '/', blanks or control "
				    "characters, and not start with '.'", name);

	char prefix[256], data[256];
	snprintf(prefix, sizeof(prefix), "%s-", name);
	snprintf(data, sizeof(data), "%s\n", name);
	struct rx_signals s;
	rx_signals_init(&s);
	struct rx_queue q;
	rx_queue_init(&q, dir, prefix, data);

	for (;;) {
		int sig = 0, err = 0;
		switch (rx_queue_wait_first(&q, &s, 0, -1, &sig, &err)) {
		case RX_Q_FIRST:
			break;
		case RX_Q_SIGNAL:
			return 128 + sig;
		default:
			rx_die(RX_EX_LOST, "cannot stand in %s any more: %s", q.m.fpath, strerror(err));
		}
		uint64_t token = rx_queue_token(&q);
		char tok[32];
		snprintf(tok, sizeof(tok), "%" PRIu64, token);
		setenv("COORD_FENCING_TOKEN", tok, 1);
		setenv("COORD_ELECTION_NODE", q.own_path, 1);
		if (verbose)
			rx_msg("%s leads %s (token %s)", name, q.m.fpath, tok);
		struct rx_child c;
		memset(&c, 0, sizeof(c));
		int rc = rx_spawn(&c, cmd, &s, &q.g);
		if (rc) {
			rx_queue_leave(&q);
			rx_die(RX_EX_NOEXEC, "cannot start %s: %s", cmd[0], strerror(rc));
		}
		char why[PATH_MAX + 200] = "";
		if (rx_queue_hold(&q, &s, &c, kill_after_ms, &sig, why, sizeof(why)) == RX_H_ENDED) {
			/* The command ended by itself (or after a signal we passed on): resign. */
			rx_queue_leave(&q);
			if (verbose)
				rx_msg("%s resigned: the command ended with status %d", name, c.status);
			return c.status;
		}
		rx_msg("%s lost the leadership of %s: %s; the command ended with status %d", name, q.m.fpath, why,
		       c.status);
		if (sig)
			return 128 + sig; /* told to stop meanwhile */
	}
}
