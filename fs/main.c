/*
 * main.c: coordfs HOST:PORT[,HOST:PORT...] MOUNTPOINT [-o OPTIONS] [-f] [-d]
 *
 * Options, connecting, mounting, serving, and a clean end. In the background (the default), the
 * process forks before any thread exists; the parent waits until the child has its session and
 * its mount, so `coordfs ...` (and `mount -t coordfs`, through mount.coordfs) returns only when
 * the mount works, or fails with the reason on stderr. On unmount (umount, fusermount3 -u) or
 * SIGTERM/SIGINT the session is closed cleanly: the mount's ephemeral nodes go at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "fs.h"
#include "history.h"
#include "inode.h"
#include "inval.h"
#include "log.h"
#include "loop.h"
#include "ops.h"
#include "pollfile.h"
#include "session.h"

#define DEFAULT_SESSION_TIMEOUT_S 10

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coordfs HOST:PORT[,HOST:PORT...] MOUNTPOINT [-o OPTION[,OPTION...]] [-f] [-d]\n"
		"\n"
		"Mounts the coordfs namespace served by the ensemble at MOUNTPOINT; one mount is one session.\n"
		"\n"
		"  -o session_timeout=SECONDS  session timeout to ask for (default %d; the server clamps it);\n"
		"                              the mount's ephemeral files go this long after it dies\n"
		"  -o logfile=PATH             log here when running in the background (default: nowhere)\n"
		"  -o key=FILE                 this mount's CURVE key pair (NAME.key from coordctl keygen)\n"
		"  -o serverkey=FILE           the ensemble's public key; without both keys: plaintext\n"
		"  -o allow_other              let other users see the mount\n"
		"  -o OPTION                   any other FUSE mount option (see below)\n"
		"  -f                          stay in the foreground, log to stderr\n"
		"  -d                          FUSE debug output (implies -f)\n"
		"  -h, --help                  this text\n"
		"  -V, --version               the version\n"
		"\n"
		"Unmount with `umount MOUNTPOINT` or `fusermount3 -u MOUNTPOINT`.\n"
		"\n"
		"FUSE options:\n",
		DEFAULT_SESSION_TIMEOUT_S);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("coordfs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* Mount options that mean something to mount(8) or fstab, not to us or FUSE. */
static int mount_only(const char *o)
{
	static const char *const drop[] = {"rw", "defaults", "auto", "noauto", "user", "nouser", "users",
					   "_netdev", "nofail", "exec", "noexec", "suid", "nosuid",
					   "dev", "nodev", "async", "atime", "noatime", "relatime", NULL};
	for (int i = 0; drop[i]; i++)
		if (!strcmp(o, drop[i]))
			return 1;
	return !strncmp(o, "x-", 2) || !strncmp(o, "comment=", 8);
}

/* Append s to the FUSE option string, escaping commas (fuse_opt splits on unescaped ones). */
static void fuse_opt_append(char **acc, const char *s)
{
	size_t old = *acc ? strlen(*acc) : 0;
	size_t n = strlen(s);
	char *p = realloc(*acc, old + 2 * n + 2);
	if (!p)
		die("out of memory");
	size_t k = old;
	if (old)
		p[k++] = ',';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ',' || s[i] == '\\')
			p[k++] = '\\';
		p[k++] = s[i];
	}
	p[k] = 0;
	*acc = p;
}

static void parse_o(struct fs_opts *o, char *list, char **fuse_o)
{
	char *save = NULL;
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "session_timeout=", 16)) {
			char *end;
			double v = strtod(tok + 16, &end);
			if (end == tok + 16 || *end || !(v > 0) || v > 86400)
				die("session_timeout: '%s' is not a number of seconds (for example 10, or 2.5)", tok + 16);
			o->session_timeout_ms = (int)(v * 1000 + 0.5);
		} else if (!strncmp(tok, "logfile=", 8)) {
			o->logfile = tok + 8;
		} else if (!strncmp(tok, "key=", 4)) {
			o->key_file = tok + 4;
		} else if (!strncmp(tok, "serverkey=", 10)) {
			o->server_key_file = tok + 10;
		} else if (!mount_only(tok)) {
			fuse_opt_append(fuse_o, tok);
		}
	}
}

static void parse_args(int argc, char **argv, struct fs_opts *o, char **fuse_o)
{
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			fuse_lowlevel_help();
			exit(0);
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("coordfs 0.1.0 (libfuse %s)\n", fuse_pkgversion());
			exit(0);
		} else if (!strcmp(a, "-f")) {
			o->foreground = 1;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			o->foreground = 1;
			o->debug = 1;
		} else if (!strcmp(a, "-o")) {
			if (++i >= argc)
				die("-o needs a list of options");
			parse_o(o, argv[i], fuse_o);
		} else if (!strncmp(a, "-o", 2)) {
			parse_o(o, argv[i] + 2, fuse_o);
		} else if (a[0] == '-' && a[1]) {
			die("unknown option '%s' (see coordfs --help)", a);
		} else if (npos == 0) {
			o->hosts = argv[i];
			npos++;
		} else if (npos == 1) {
			o->mountpoint = argv[i];
			npos++;
		} else {
			die("unexpected argument '%s' (see coordfs --help)", a);
		}
	}
	if (npos < 2) {
		usage(stderr);
		exit(2);
	}
}

static int fs_init(struct coordfs *fs)
{
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* The invalidation thread's barrier must not starve behind a stream of requests. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->reply_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&fs->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fs->commit_cv, &ca);
	pthread_condattr_destroy(&ca);
	fs->uid = getuid();
	fs->gid = getgid();
	fs->epoch = 1;
	fs->it = itable_new();
	fs->watch = pollset_new(fs);
	fs->hist = history_new();
	if (!fs->it || !fs->watch || !fs->hist || inval_init(fs))
		return -ENOMEM;
	struct inode *root = inode_obtain(fs->it, FUSE_ROOT_ID_VALUE, COORD_KIND_DIR);
	if (!root)
		return -ENOMEM;
	root->nlookup = 1; /* the kernel never forgets the root */
	return 0;
}

static void fs_fini(struct coordfs *fs)
{
	itable_free(fs->it);
	pollset_free(fs->watch);
	history_free(fs->hist);
	pthread_mutex_destroy(&fs->mu);
	pthread_cond_destroy(&fs->commit_cv);
	pthread_rwlock_destroy(&fs->reply_lock);
}

/* Background: the parent waits for one byte from the child (0 = mounted) and exits with it. */
static int daemon_fd = -1;

static void fork_background(void)
{
	int p[2];
	if (pipe(p))
		die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0) {
		close(p[1]);
		unsigned char st = 1;
		ssize_t n;
		do
			n = read(p[0], &st, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? st : 1);
	}
	close(p[0]);
	daemon_fd = p[1];
	setsid();
}

static void tell_parent(unsigned char status)
{
	if (daemon_fd < 0)
		return;
	ssize_t n;
	do
		n = write(daemon_fd, &status, 1);
	while (n < 0 && errno == EINTR);
	close(daemon_fd);
	daemon_fd = -1;
}

static void detach_stdio(const char *logfile)
{
	int null = open("/dev/null", O_RDWR);
	int log = logfile ? open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
	if (logfile && log < 0)
		LOG_WARN("cannot open log file %s: %s", logfile, strerror(errno));
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
	}
	if (log >= 0)
		dup2(log, STDERR_FILENO);
	else if (null >= 0)
		dup2(null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
	if (log > STDERR_FILENO)
		close(log);
	if (chdir("/")) {
		/* nothing: / always exists */
	}
}

int main(int argc, char **argv)
{
	struct coordfs fs;
	memset(&fs, 0, sizeof(fs));
	fs.opts.session_timeout_ms = DEFAULT_SESSION_TIMEOUT_S * 1000;
	char *fuse_o = NULL;
	parse_args(argc, argv, &fs.opts, &fuse_o);
	coord_log_init("coordfs", COORD_LOG_INFO);

	char mnt[PATH_MAX];
	struct stat sb;
	if (!realpath(fs.opts.mountpoint, mnt) || stat(mnt, &sb))
		die("mount point %s: %s", fs.opts.mountpoint, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		die("mount point %s is not a directory", fs.opts.mountpoint);
	fs.opts.mountpoint = mnt;
	if (fs.opts.logfile && fs.opts.logfile[0] != '/') {
		/* The daemon changes to /: keep the log where the user meant it. */
		char *cwd = getcwd(NULL, 0);
		char *abs_log = NULL;
		if (!cwd || asprintf(&abs_log, "%s/%s", cwd, fs.opts.logfile) < 0)
			die("out of memory");
		free(cwd);
		fs.opts.logfile = abs_log;
	}

	if (fs.opts.key_file || fs.opts.server_key_file) {
		/* Read now, before the daemon changes to /: relative names mean what the user meant. */
		char kerr[700];
		if (coord_client_set_keys(fs.opts.key_file, fs.opts.server_key_file, kerr, sizeof(kerr)))
			die("%s (-o key=FILE,serverkey=FILE)", kerr);
	}

	if (!fs.opts.foreground) {
		fork_background();
		/* Until the mount is up, the terminal hears only of trouble. */
		coord_log_init("coordfs", COORD_LOG_WARN);
	}

	if (fs_init(&fs))
		die("out of memory");
	char err[1200];
	if (session_start(&fs, err, sizeof(err)))
		die("%s", err);

	/* FUSE's arguments: the source shown in /proc/mounts is the server list. */
	char *opts = NULL;
	char *fsname = malloc(strlen(fs.opts.hosts) + 8);
	if (!fsname)
		die("out of memory");
	sprintf(fsname, "fsname=%s", fs.opts.hosts);
	fuse_opt_append(&opts, fsname);
	free(fsname);
	size_t ol = strlen(opts) + (fuse_o ? strlen(fuse_o) : 0) + 32;
	char *all = malloc(ol);
	if (!all)
		die("out of memory");
	snprintf(all, ol, "%s,subtype=coordfs%s%s", opts, fuse_o ? "," : "", fuse_o ? fuse_o : "");
	free(opts);
	free(fuse_o);
	char *fargv[] = {argv[0], "-o", all, fs.opts.debug ? "-d" : NULL, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(fs.opts.debug ? 4 : 3, fargv);

	fs.se = fuse_session_new(&args, &coordfs_ops, sizeof(coordfs_ops), &fs);
	if (!fs.se) {
		session_stop(&fs);
		die("cannot start FUSE (see the message above)");
	}
	if (fuse_set_signal_handlers(fs.se)) {
		session_stop(&fs);
		die("cannot set signal handlers");
	}
	if (fuse_session_mount(fs.se, mnt)) {
		session_stop(&fs);
		die("cannot mount on %s (see the message above)", mnt);
	}
	if (inval_start(&fs)) {
		fuse_session_unmount(fs.se);
		session_stop(&fs);
		die("cannot start the invalidation thread");
	}
	LOG_INFO("mounted %s on %s", fs.opts.hosts, mnt);
	tell_parent(0);
	if (!fs.opts.foreground) {
		detach_stdio(fs.opts.logfile);
		coord_log_init("coordfs", COORD_LOG_INFO);
		LOG_INFO("mounted %s on %s", fs.opts.hosts, mnt);
	}

	int rc = loop_run(&fs);
	LOG_INFO("unmounting %s (%s)", mnt, rc == 0 ? "unmounted" : rc > 0 ? strsignal(rc) : strerror(-rc));

	/* Close the session first: the mount's ephemeral nodes go now, not at the session timeout. */
	session_stop(&fs);
	loop_join(&fs);
	fuse_session_unmount(fs.se);
	inval_stop(&fs);
	fuse_remove_signal_handlers(fs.se);
	fuse_session_destroy(fs.se);
	fuse_opt_free_args(&args);
	free(all);
	fs_fini(&fs);
	return rc < 0 ? 1 : 0;
}
