/*
 * main.c: `coordd --config FILE`: read the config, recover, serve until SIGTERM/SIGINT.
 * Exit status: 0 after a clean stop, 2 for a bad command line or config, 1 for anything else.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "server.h"

static struct server *running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		server_stop(running);
}

static void on_hup(int sig)
{
	(void)sig;
	if (running)
		server_reload(running);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: coordd --config FILE\n"
		   "\n"
		   "Runs one member of a coordfs ensemble (standalone when FILE has no server.N lines).\n"
		   "FILE reads like ZooKeeper's zoo.cfg: dataDir, dataLogDir, clientPort, clientPortAddress,\n"
		   "tickTime, minSessionTimeout, maxSessionTimeout, snapCount, maxDataBytes, historyDepth,\n"
		   "historyBytes, server.N=host:peerPort:electionPort[:observer][;clientPort]; the member's\n"
		   "number is in dataDir/myid.\n"
		   "\n"
		   "  -c, --config FILE   the configuration file\n"
		   "  -h, --help          this text\n"
		   "\n"
		   "Authentication: auth=curve with clientSecretKeyFile, authorizedKeysFile (and secretKeyFile,\n"
		   "memberKeysFile in an ensemble), or auth=none for plaintext; see README.md, Security.\n"
		   "SIGHUP reads authorizedKeysFile again.\n"
		   "\n"
		   "Stops cleanly on SIGTERM or SIGINT. Exit status: 0 clean stop, 1 failure, 2 bad usage or config.\n"
		   "Environment: COORD_LOG_LEVEL=debug|info|warn|error.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!file || optind != argc) {
		usage(stderr);
		return 2;
	}
	coord_log_init("coordd", COORD_LOG_INFO);
	static struct coord_config cfg;
	char err[1024];
	if (coord_config_load(file, &cfg, err, sizeof(err)) || coord_config_check_auth(&cfg, err, sizeof(err))) {
		fprintf(stderr, "coordd: %s\n", err);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct server *s;
	if (server_open(&cfg, &s, err, sizeof(err))) {
		LOG_ERROR("%s", err);
		return 1;
	}
	running = s;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	LOG_INFO("coordd %s started (myid %d, dataDir %s)", cfg.nmembers ? "member" : "standalone", cfg.my_id,
		 cfg.data_dir);
	int rc = server_run(s);
	running = NULL;
	server_close(s);
	LOG_INFO("coordd stopped");
	return rc ? 1 : 0;
}
