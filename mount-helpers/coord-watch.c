/*
 * coord-watch: run a command once per change of a node (or a subtree) in a coordfs mount.
 *
 *   coord-watch [-r] [-n COUNT] [-v] PATH COMMAND [ARG...]
 *
 * One .watch instance watches PATH (with -r its whole subtree); for every event line COMMAND runs
 * once, to its end, with the event in COORD_EVENT (created, deleted, changed, children),
 * COORD_PATH (the znode path), COORD_FILE (the same node as a path on this host) and COORD_ZXID
 * (the change's zxid, 0x... as the line says). Events that come while COMMAND runs wait their turn
 * in the mount (up to 1 MiB of lines). When events may have been missed, COMMAND runs once with
 * COORD_EVENT=overflow (the mount could not keep every line) or expired (the session expired;
 * what changed meanwhile was not announced), COORD_PATH and COORD_FILE naming the watched PATH and
 * COORD_ZXID empty: it should read everything again. disconnected/reconnected lines run nothing:
 * no event is lost across a reconnect.
 *
 * After reading a line, reading the node through the mount gives data at least as new as the
 * event. SIGTERM, SIGINT or SIGHUP end coord-watch with status 0 (after the running COMMAND,
 * which gets the signal too). Exit status: 0; 64 usage; 69 not a coordfs mount; 75 the mount went
 * away.
 */
#include <getopt.h>

#include "recipe.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coord-watch [-r] [-n COUNT] [-v] PATH COMMAND [ARG...]\n"
		"\n"
		"Runs COMMAND once per change of PATH (a node in a coordfs mount: its data, its existence,\n"
		"its list of children; with -r every node below it), with COORD_EVENT, COORD_PATH,\n"
		"COORD_FILE and COORD_ZXID set. COORD_EVENT=overflow or expired: events may have been\n"
		"missed, read everything again.\n"
		"\n"
		"  -r, --recursive     watch the whole subtree\n"
		"  -n, --count COUNT   exit after COUNT runs of COMMAND\n"
		"  -v, --verbose       say when the watch is armed, and the session's ups and downs\n"
		"  -h, --help          this text\n"
		"\n"
		"exit status: 0; 64 usage; 69 not a coordfs mount; 75 the mount went away\n");
}

/* Run cmd to its end with the event in the environment; returns 1 if a stop signal came. */
static int run(char **cmd, struct rx_signals *s, const struct rx_mount *m, const struct rx_event *ev,
	       const char *watched_z)
{
	struct rx_guard none = {.fd = -1};
	const char *zpath = ev->path[0] ? ev->path : watched_z;
	char file[PATH_MAX];
	if (!strcmp(zpath, "/"))
		rx_copy(file, sizeof(file), m->root);
	else
		rx_join(file, m->root, zpath + 1);
	setenv("COORD_EVENT", ev->kind, 1);
	setenv("COORD_PATH", zpath, 1);
	setenv("COORD_FILE", file, 1);
	setenv("COORD_ZXID", ev->zxid, 1);
	struct rx_child c;
	memset(&c, 0, sizeof(c));
	int rc = rx_spawn(&c, cmd, s, &none);
	if (rc)
		rx_die(RX_EX_NOEXEC, "cannot start %s: %s", cmd[0], strerror(rc));
	int stop = 0;
	while (c.pid > 0) {
		if (!rx_wait(NULL, s, -1))
			continue;
		int from_tty, sg;
		while ((sg = rx_signals_take(s, &from_tty))) {
			if (sg == SIGCHLD)
				continue;
			stop = 1;
			if (!(from_tty && !c.own_group))
				rx_child_signal(&c, sg);
		}
		rx_child_reap(&c, &none);
	}
	if (c.status != 0 && !stop)
		rx_msg("%s exited with status %d (event %s %s %s)", cmd[0], c.status, ev->kind, zpath, ev->zxid);
	return stop;
}

int main(int argc, char **argv)
{
	rx_prog = "coord-watch";
	int recursive = 0, verbose = 0;
	long count = -1;
	static const struct option longopts[] = {
		{"recursive", no_argument, NULL, 'r'},
		{"count", required_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "+rn:vh", longopts, NULL)) != -1) {
		switch (o) {
		case 'r':
			recursive = 1;
			break;
		case 'n': {
			char *end;
			count = strtol(optarg, &end, 10);
			if (end == optarg || *end || count < 1)
				rx_die(RX_EX_USAGE, "-n: '%s' is not a positive count", optarg);
			break;
		}
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
	const char *path = argv[optind];
	char **cmd = argv + optind + 1;

	struct rx_mount m;
	const char *why;
	int rc = rx_resolve(path, &m, &why);
	if (rc)
		rx_die(RX_EX_SETUP, "%s: %s", path, why);
	struct rx_signals s;
	rx_signals_init(&s);
	struct rx_watch w;
	if ((rc = rx_watch_open(&w, &m)))
		rx_die(RX_EX_SETUP, "cannot open %s/.watch: %s", m.root, strerror(rc));
	if ((rc = rx_watch_add(&w, m.zpath, recursive)))
		rx_die(RX_EX_SETUP, "cannot watch %s: %s", m.zpath, strerror(rc));
	if (verbose)
		rx_msg("watching %s%s", m.zpath, recursive ? " recursive" : "");

	long runs = 0;
	for (;;) {
		int r = rx_wait(&w, &s, -1);
		if (r & RX_READY_SIGNAL) {
			int sg;
			while ((sg = rx_signals_take(&s, NULL)))
				if (sg != SIGCHLD)
					return 0;
		}
		if (!(r & RX_READY_WATCH))
			continue;
		if ((rc = rx_watch_fill(&w)))
			rx_die(RX_EX_LOST, "the mount %s is gone (%s)", m.root, strerror(rc));
		struct rx_event ev;
		while (rx_watch_next(&w, &ev)) {
			if (!strcmp(ev.kind, "disconnected") || !strcmp(ev.kind, "reconnected")) {
				if (verbose)
					rx_msg("the mount %s", ev.kind);
				continue;
			}
			if (!strcmp(ev.kind, "overflow") || !strcmp(ev.kind, "expired"))
				rx_msg("%s: events may have been missed; running %s once for them", ev.kind, cmd[0]);
			if (run(cmd, &s, &m, &ev, m.zpath))
				return 0;
			if (count > 0 && ++runs >= count)
				return 0;
		}
	}
}
