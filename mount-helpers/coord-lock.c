/*
 * coord-lock: run a command while holding a lock kept in a coordfs mount, shaped like flock(1).
 *
 *   coord-lock [-w SECONDS] [-n] [-E CODE] [-k SECONDS] [-v] LOCKDIR COMMAND [ARG...]
 *   coord-lock [OPTIONS] LOCKDIR -c 'SHELL COMMAND'
 *
 * ZooKeeper's lock recipe: LOCKDIR is a directory whose children are ephemeral and sequential
 * (made so if needed). A contender creates LOCKDIR/lock-NNNNNNNNNN; the lowest number holds the
 * lock; every other contender watches only the entry just before its own through the mount's
 * .watch file and looks again when that one goes, so the lock passes in order of arrival and a
 * release wakes one waiter. The command gets COORD_FENCING_TOKEN (the czxid of the holder's entry,
 * in decimal: it grows with every new holder) and COORD_LOCK_NODE (the entry's path).
 *
 * If the lock is lost while the command runs (the mount's session expired, the entry was deleted,
 * the mount was cut off from the ensemble for a quarter of the session timeout, or the mount is
 * gone), the command's process group gets SIGTERM (SIGKILL after -k SECONDS, default 10) and
 * coord-lock exits with 75 once it has ended.
 *
 * Exit status: the command's (128+N if signal N ended it); 1 (or -E CODE) when -n or -w gave up;
 * 64 bad usage; 69 no lock could be taken (not a coordfs mount, LOCKDIR unusable, the mount went
 * away while waiting); 75 the lock was lost while the command ran; 126/127 the command could not
 * be run; 128+N when signal N stopped coord-lock while it waited.
 */
#include <getopt.h>

#include "recipe.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coord-lock [-w SECONDS] [-n] [-E CODE] [-k SECONDS] [-v] LOCKDIR COMMAND [ARG...]\n"
		"       coord-lock [OPTIONS] LOCKDIR -c 'SHELL COMMAND'\n"
		"\n"
		"Runs COMMAND while holding the lock LOCKDIR, a directory in a coordfs mount (made if\n"
		"missing, with ephemeral,sequential children). Waiters are served in order of arrival.\n"
		"COMMAND gets COORD_FENCING_TOKEN (grows with every holder) and COORD_LOCK_NODE.\n"
		"\n"
		"  -w, --wait, --timeout SECONDS  give up after SECONDS (decimals allowed; exit 1)\n"
		"  -n, --nonblock                 give up at once if the lock is held (exit 1)\n"
		"  -E, --conflict-exit-code CODE  exit with CODE instead of 1 when giving up\n"
		"  -k, --kill-after SECONDS       after the lock is lost and COMMAND got SIGTERM, send\n"
		"                                 SIGKILL this much later (default 10)\n"
		"  -v, --verbose                  say when the lock is taken and released\n"
		"  -h, --help                     this text\n"
		"\n"
		"exit status: COMMAND's; 1 (or CODE) gave up; 64 usage; 69 no lock could be taken;\n"
		"75 the lock was lost while COMMAND ran (COMMAND got SIGTERM); 126/127 COMMAND cannot run\n");
}

int main(int argc, char **argv)
{
	rx_prog = "coord-lock";
	int64_t wait_ms = -1, kill_after_ms = 10000;
	int nonblock = 0, verbose = 0, conflict = 1;
	static const struct option longopts[] = {
		{"wait", required_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 'w'},
		{"nonblock", no_argument, NULL, 'n'},
		{"conflict-exit-code", required_argument, NULL, 'E'},
		{"kill-after", required_argument, NULL, 'k'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "+w:nE:k:vh", longopts, NULL)) != -1) {
		switch (o) {
		case 'w':
			if ((wait_ms = rx_parse_seconds(optarg)) < 0)
				rx_die(RX_EX_USAGE, "-w: '%s' is not a number of seconds", optarg);
			break;
		case 'n':
			nonblock = 1;
			break;
		case 'E': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (end == optarg || *end || v < 0 || v > 255)
				rx_die(RX_EX_USAGE, "-E: '%s' is not an exit status (0..255)", optarg);
			conflict = (int)v;
			break;
		}
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
	if (argc - optind < 2) {
		usage(stderr);
		return RX_EX_USAGE;
	}
	const char *lockdir = argv[optind];
	char **cmd = argv + optind + 1;
	char *shell_argv[] = {"/bin/sh", "-c", NULL, NULL};
	if (!strcmp(cmd[0], "-c") || !strcmp(cmd[0], "--command")) {
		if (argc - optind != 3)
			rx_die(RX_EX_USAGE, "-c takes one shell command (quote it)");
		shell_argv[2] = cmd[1];
		cmd = shell_argv;
	}

	char host[256] = "?", data[320];
	gethostname(host, sizeof(host) - 1);
	snprintf(data, sizeof(data), "%s %d\n", host, (int)getpid());

	struct rx_signals s;
	rx_signals_init(&s);
	struct rx_queue q;
	rx_queue_init(&q, lockdir, "lock-", data);

	int64_t t0 = rx_now_ms();
	int64_t deadline = wait_ms >= 0 ? t0 + wait_ms : -1;
	int sig = 0, err = 0;
	switch (rx_queue_wait_first(&q, &s, nonblock || wait_ms == 0, deadline, &sig, &err)) {
	case RX_Q_FIRST:
		break;
	case RX_Q_BUSY:
	case RX_Q_TIMEOUT:
		if (verbose)
			rx_msg("%s is held: giving up", q.m.fpath);
		return conflict;
	case RX_Q_SIGNAL:
		return 128 + sig;
	default:
		rx_die(RX_EX_SETUP, "cannot take the lock %s: %s", q.m.fpath, strerror(err));
	}

	uint64_t token = rx_queue_token(&q);
	char tok[32];
	snprintf(tok, sizeof(tok), "%" PRIu64, token);
	setenv("COORD_FENCING_TOKEN", tok, 1);
	setenv("COORD_LOCK_NODE", q.own_path, 1);
	if (verbose)
		rx_msg("took %s (token %s) after %lld ms", q.own_path, tok, (long long)(rx_now_ms() - t0));

	struct rx_child c;
	memset(&c, 0, sizeof(c));
	int rc = rx_spawn(&c, cmd, &s, &q.g);
	if (rc) {
		rx_queue_leave(&q);
		rx_die(RX_EX_NOEXEC, "cannot start %s: %s", cmd[0], strerror(rc));
	}
	char why[PATH_MAX + 200] = "";
	if (rx_queue_hold(&q, &s, &c, kill_after_ms, &sig, why, sizeof(why)) == RX_H_LOST) {
		rx_msg("lost the lock %s: %s; the command ended with status %d", q.m.fpath, why, c.status);
		return RX_EX_LOST;
	}
	rx_queue_leave(&q);
	if (verbose)
		rx_msg("released %s (the command ended with status %d)", q.m.fpath, c.status);
	return c.status;
}
