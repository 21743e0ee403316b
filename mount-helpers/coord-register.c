/*
 * coord-register: keep an ephemeral registration alive while this host's mount lives.
 *
 *   coord-register [-v] DIR NAME DATA
 *
 * DIR (made if missing) gets the child policy "ephemeral"; DIR/NAME is created with DATA and
 * belongs to the mount's session: it goes when the host, its mount or its network goes (after the
 * session timeout), or at once when coord-register is stopped (SIGTERM, SIGINT, SIGHUP). While it
 * runs, coord-register watches the registration through the mount's .watch file and creates it
 * again whenever it is gone while the mount lives: after a session expiry (the mount opens a new
 * session by itself) or an `rm`. If NAME is held by another session (a registration of an earlier
 * boot of this host, not yet expired), it waits for that one to go.
 *
 * Pair it with coord-pick. Exit status: 0 stopped by a signal (the registration deleted); 64
 * usage; 69 not a coordfs mount or DIR unusable; 75 the mount went away.
 */
#include <getopt.h>

#include "recipe.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coord-register [-v] DIR NAME DATA\n"
		"\n"
		"Registers NAME with DATA (an address, say) in DIR, a directory of ephemeral files in a\n"
		"coordfs mount, and keeps it registered while the mount lives (again after a session\n"
		"expiry). Runs until stopped; SIGTERM deletes the registration.\n"
		"\n"
		"  -v, --verbose   say when the registration is made and made again\n"
		"  -h, --help      this text\n"
		"\n"
		"exit status: 0 stopped; 64 usage; 69 not a coordfs mount or DIR unusable; 75 the mount\n"
		"went away\n");
}

static int valid_name(const char *n)
{
	size_t l = strlen(n);
	if (!l || l > 255 || n[0] == '.')
		return 0;
	for (const unsigned char *p = (const unsigned char *)n; *p; p++)
		if (*p == '/' || *p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

struct reg {
	struct rx_mount m;
	char path[PATH_MAX];  /* DIR/NAME on this host */
	char zpath[PATH_MAX]; /* ... as a znode path */
	const char *data;
	int registered;       /* we made it, in the current session */
	int verbose;
	struct rx_guard g;
};

/* Is the node at r->path this mount's (the current session's)? */
static int ours(struct reg *r)
{
	uint64_t owner = 0, sid = 0;
	int64_t t;
	if (rx_xattr_hex(r->path, "user.coord.ephemeralOwner", &owner))
		return 0;
	if (rx_session(&r->m, &sid, &t))
		return 0;
	return owner == sid;
}

/* Create the registration; returns 0 (made, or already ours), EEXIST (another session holds
 * NAME), or another errno (the mount is gone: ENOTCONN...). */
static int make(struct reg *r, const char *again)
{
	char err[PATH_MAX + 200];
	for (int tries = 0;; tries++) {
		int fd = open(r->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 && errno == ENOENT && tries < 3) {
			if (rx_policy_dir(r->m.fpath, "ephemeral", err, sizeof(err)))
				rx_msg("%s", err);
			continue;
		}
		if (fd < 0 && errno == EEXIST) {
			if (ours(r)) {
				r->registered = 1;
				return 0;
			}
			return EEXIST;
		}
		if (fd < 0)
			return errno;
		rx_guard_say(&r->g, "node", r->path);
		size_t len = strlen(r->data);
		int werr = 0;
		if (write(fd, r->data, len) != (ssize_t)len)
			werr = errno;
		if (close(fd) && !werr)
			werr = errno;
		if (werr == ENOENT || werr == ETIMEDOUT)
			continue; /* deleted under us, or the session expired meanwhile: again */
		if (werr)
			rx_msg("writing %s: %s", r->path, strerror(werr));
		r->registered = 1;
		if (again || r->verbose)
			rx_msg("registered %s%s", r->path, again ? again : "");
		return 0;
	}
}

/* Make sure the registration is there; 0, or an errno when the mount is gone. */
static int ensure(struct reg *r, const char *again)
{
	int rc = make(r, again);
	if (rc == EEXIST) {
		if (r->registered || r->verbose)
			rx_msg("%s is registered by another session; waiting for it to go", r->path);
		r->registered = 0;
		return 0;
	}
	return rc;
}

int main(int argc, char **argv)
{
	rx_prog = "coord-register";
	struct reg r;
	memset(&r, 0, sizeof(r));
	static const struct option longopts[] = {
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "+vh", longopts, NULL)) != -1) {
		switch (o) {
		case 'v':
			r.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return RX_EX_USAGE;
		}
	}
	if (argc - optind != 3) {
		usage(stderr);
		return RX_EX_USAGE;
	}
	const char *dir = argv[optind], *name = argv[optind + 1];
	r.data = argv[optind + 2];
	if (!valid_name(name))
		rx_die(RX_EX_USAGE, "NAME '%s' must be 1..255 characters without '/', blanks or control "
				    "characters, and not start with '.'", name);
	if (!r.data[0])
		rx_die(RX_EX_USAGE, "DATA must not be empty (coord-pick takes an empty file for a "
				    "registration being made)");

	const char *why;
	int rc = rx_resolve(dir, &r.m, &why);
	if (rc)
		rx_die(RX_EX_SETUP, "%s: %s", dir, why);
	char err[PATH_MAX + 200];
	if (rx_policy_dir(r.m.fpath, "ephemeral", err, sizeof(err)))
		rx_die(RX_EX_SETUP, "%s", err);
	rx_join(r.path, r.m.fpath, name);
	rx_join(r.zpath, r.m.zpath, name);

	struct rx_signals s;
	rx_signals_init(&s);
	struct rx_watch w;
	if ((rc = rx_watch_open(&w, &r.m)))
		rx_die(RX_EX_SETUP, "cannot open %s/.watch: %s", r.m.root, strerror(rc));
	/* Watch first, then create: a deletion between the two cannot go unseen. */
	if ((rc = rx_watch_add(&w, r.zpath, 0)))
		rx_die(RX_EX_SETUP, "cannot watch %s: %s", r.zpath, strerror(rc));
	rx_guard_start(&r.g);
	if ((rc = ensure(&r, NULL)))
		rx_die(RX_EX_SETUP, "cannot register %s: %s", r.path, strerror(rc));

	for (;;) {
		int rd = rx_wait(&w, &s, -1);
		if (rd & RX_READY_SIGNAL) {
			int sg, stop = 0;
			while ((sg = rx_signals_take(&s, NULL)))
				if (sg != SIGCHLD)
					stop = 1;
			if (stop) {
				if (r.registered && ours(&r) && unlink(r.path) && errno != ENOENT)
					rx_msg("cannot delete %s: %s", r.path, strerror(errno));
				rx_guard_say(&r.g, "-node", NULL);
				if (r.verbose)
					rx_msg("unregistered %s", r.path);
				return 0;
			}
		}
		if (!(rd & RX_READY_WATCH))
			continue;
		if ((rc = rx_watch_fill(&w)))
			rx_die(RX_EX_LOST, "the mount %s is gone (%s)", r.m.root, strerror(rc));
		struct rx_event ev;
		const char *again = NULL;
		int check = 0;
		while (rx_watch_next(&w, &ev)) {
			if (!strcmp(ev.kind, "expired")) {
				r.registered = 0;
				again = " again (the session had expired)";
				check = 1;
			} else if (!strcmp(ev.kind, "deleted") && !strcmp(ev.path, r.zpath)) {
				if (r.registered)
					again = " again (it had been deleted)";
				r.registered = 0;
				check = 1;
			} else if (!strcmp(ev.kind, "overflow")) {
				check = 1;
			}
		}
		if (!check)
			continue;
		struct stat st;
		if (r.registered && stat(r.path, &st) == 0)
			continue; /* still there */
		if (r.registered) {
			again = " again (it was gone)";
			r.registered = 0;
		}
		if ((rc = ensure(&r, again ? again : "")))
			rx_die(RX_EX_LOST, "cannot register %s again: %s", r.path, strerror(rc));
	}
}
