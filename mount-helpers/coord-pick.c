/*
 * coord-pick: choose one live member of a registry directory (see coord-register).
 *
 *   coord-pick [--key KEY] [--sync] [--name | --data] DIR
 *
 * Prints "NAME DATA" of one member of DIR: a uniformly random one, or with --key the one with
 * the highest rendezvous score xxh64(NAME, seed xxh64(KEY)) (highest random weight hashing): the
 * same KEY gets the same member while it lives, and a member's death moves only the keys it had,
 * each to the member that scored next for it. A member whose file is empty (being registered)
 * or disappears while it is read is passed over for the next candidate.
 *
 * The list is the mount's: it never holds a member whose deletion this mount has seen. With
 * --sync the mount first syncs with the leader (one round trip), so no member deleted before
 * coord-pick started is returned. Exit status: 0; 1 no live member; 64 usage; 69 not a coordfs
 * mount or DIR unreadable.
 */
#include <getopt.h>
#include <sys/random.h>
#include <xxhash.h>

#include "recipe.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coord-pick [--key KEY] [--sync] [--name | --data] DIR\n"
		"\n"
		"Prints the NAME and DATA of one live member registered in DIR (coord-register): a random\n"
		"one, or the one KEY maps to (rendezvous hashing: a member's death moves only its keys).\n"
		"\n"
		"  -k, --key KEY   pick by KEY instead of at random\n"
		"  -s, --sync      sync the mount with the leader first (no member deleted before the\n"
		"                  call is picked)\n"
		"      --name      print NAME only\n"
		"      --data      print DATA only\n"
		"  -h, --help      this text\n"
		"\n"
		"exit status: 0; 1 no live member; 64 usage; 69 not a coordfs mount or DIR unreadable\n");
}

struct cand {
	char *name;
	uint64_t score;
};

static int by_score(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return strcmp(x->name, y->name);
}

static uint64_t random64(void)
{
	uint64_t v;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = XXH64(&ts, sizeof(ts), (uint64_t)getpid());
	}
	return v;
}

int main(int argc, char **argv)
{
	rx_prog = "coord-pick";
	const char *key = NULL;
	int sync = 0, what = 0; /* 0 both, 1 name, 2 data */
	static const struct option longopts[] = {
		{"key", required_argument, NULL, 'k'},
		{"sync", no_argument, NULL, 's'},
		{"name", no_argument, NULL, 'N'},
		{"data", no_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "k:sh", longopts, NULL)) != -1) {
		switch (o) {
		case 'k':
			key = optarg;
			break;
		case 's':
			sync = 1;
			break;
		case 'N':
			what = 1;
			break;
		case 'D':
			what = 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return RX_EX_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return RX_EX_USAGE;
	}
	struct rx_mount m;
	const char *why;
	int rc = rx_resolve(argv[optind], &m, &why);
	if (rc)
		rx_die(RX_EX_SETUP, "%s: %s", argv[optind], why);
	struct rx_names ns;
	rc = rx_list(m.fpath, sync, &ns);
	if (rc == ENOENT) {
		rx_msg("no live member: %s does not exist", m.fpath);
		return 1;
	}
	if (rc)
		rx_die(RX_EX_SETUP, "cannot list %s: %s", m.fpath, strerror(rc));
	struct cand *c = calloc(ns.n ? ns.n : 1, sizeof(*c));
	if (!c)
		rx_die(RX_EX_SETUP, "out of memory");
	/* Scores: rendezvous weights for a key; for a random pick, random weights (a shuffle). */
	uint64_t seed = key ? XXH64(key, strlen(key), 0) : 0;
	for (size_t i = 0; i < ns.n; i++) {
		c[i].name = ns.v[i];
		c[i].score = key ? XXH64(ns.v[i], strlen(ns.v[i]), seed) : random64();
	}
	qsort(c, ns.n, sizeof(*c), by_score);
	for (size_t i = 0; i < ns.n; i++) {
		char path[PATH_MAX], *data = NULL;
		size_t len = 0;
		rx_join(path, m.fpath, c[i].name);
		rc = rx_read_file(path, &data, &len);
		if (rc == ENOENT || rc == EISDIR || (!rc && len == 0)) {
			free(data);
			continue; /* gone meanwhile, not a registration, or one being made */
		}
		if (rc)
			rx_die(RX_EX_SETUP, "cannot read %s: %s", path, strerror(rc));
		if (len && data[len - 1] == '\n')
			data[--len] = 0;
		if (what == 1)
			printf("%s\n", c[i].name);
		else if (what == 2)
			printf("%s\n", data);
		else
			printf("%s %s\n", c[i].name, data);
		free(data);
		free(c);
		rx_names_free(&ns);
		return fflush(stdout) ? RX_EX_SETUP : 0;
	}
	free(c);
	rx_names_free(&ns);
	rx_msg("no live member in %s", m.fpath);
	return 1;
}
