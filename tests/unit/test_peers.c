/*
 * test_peers.c: the peer links (server/peers.c) between real sockets on loopback, two or three
 * members in one process driven by a poll loop like the server's: messages arrive whole and in
 * order each way (plaintext and with CURVE keys), large ones too; a member that goes away is
 * reported lost and linked again when it is back; a snapshot streams in chunks with the
 * messages sent meanwhile behind it; strangers and a member with the wrong auth are refused
 * without disturbing the links.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "peers.h"
#include "peerwire.h"

#define N 3

static struct peers ps[N];
static int open_[N];
static struct coord_config cfg[N];
static struct peerlink_keys keys[N];
static char dirs[N][64];

/* What each member received, as "from:len:first-bytes" records and in full for checks. */
struct got {
	int from;
	size_t len;
	uint8_t *data;
};
static struct got got[N][4096];
static int ngot[N];
static int lost_count[N][N + 1];

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(a);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &sl) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void on_lost(void *arg, int id)
{
	int me = (int)(long)arg;
	lost_count[me][id]++;
}

/* Three members on loopback; curve: with keys. Members are not opened yet. */
static void setup(int curve)
{
	char err[300];
	int port[N];
	for (int i = 0; i < N; i++)
		port[i] = free_port();
	uint8_t pub[N][32], sec[N][32];
	for (int i = 0; i < N; i++)
		crypto_box_keypair(pub[i], sec[i]);
	for (int i = 0; i < N; i++) {
		coord_config_defaults(&cfg[i]);
		for (int j = 0; j < N; j++) {
			char line[100];
			snprintf(line, sizeof line, "server.%d=127.0.0.1:%d:%d", j + 1, port[j], port[j] + 1);
			CHECK_EQ(coord_config_line(&cfg[i], line, err, sizeof err), COORD_OK);
		}
		cfg[i].my_id = i + 1;
		snprintf(dirs[i], sizeof dirs[i], "/tmp/test_peers.XXXXXX");
		CHECK(mkdtemp(dirs[i]));
		snprintf(cfg[i].data_dir, sizeof cfg[i].data_dir, "%s", dirs[i]);
		memset(&keys[i], 0, sizeof(keys[i]));
		keys[i].curve = curve;
		memcpy(keys[i].pub, pub[i], 32);
		memcpy(keys[i].sec, sec[i], 32);
		keys[i].n = N;
		for (int j = 0; j < N; j++) {
			keys[i].member[j].id = j + 1;
			memcpy(keys[i].member[j].pub, pub[j], 32);
		}
		ngot[i] = 0;
		memset(lost_count[i], 0, sizeof(lost_count[i]));
	}
}

static void member_open(int i)
{
	char err[300];
	CHECK_EQ(peers_open(&ps[i], &cfg[i], keys[i].curve ? &keys[i] : NULL, err, sizeof err), COORD_OK);
	open_[i] = 1;
}

static void member_close(int i)
{
	peers_close(&ps[i]);
	open_[i] = 0;
}

static void clear_got(void)
{
	for (int i = 0; i < N; i++) {
		for (int k = 0; k < ngot[i]; k++)
			free(got[i][k].data);
		ngot[i] = 0;
	}
}

static void teardown(void)
{
	for (int i = 0; i < N; i++) {
		if (open_[i])
			member_close(i);
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dirs[i]);
		CHECK(system(cmd) == 0);
	}
	clear_got();
}

/* One round of every open member's loop, as server_run does it. */
static void pump_once(int wait_ms)
{
	struct pollfd pf[N][PEERS_POLL_MAX];
	int n[N] = {0}, all = 0;
	struct pollfd flat[N * PEERS_POLL_MAX];
	for (int i = 0; i < N; i++) {
		if (!open_[i])
			continue;
		peers_flush(&ps[i]);
		long t = wait_ms;
		n[i] = peers_pollfds(&ps[i], pf[i], &t);
		memcpy(flat + all, pf[i], (size_t)n[i] * sizeof(struct pollfd));
		all += n[i];
	}
	poll(flat, (nfds_t)all, wait_ms);
	all = 0;
	for (int i = 0; i < N; i++) {
		if (!open_[i])
			continue;
		memcpy(pf[i], flat + all, (size_t)n[i] * sizeof(struct pollfd));
		all += n[i];
		peers_io(&ps[i], pf[i], n[i], on_lost, (void *)(long)i);
		int from;
		const uint8_t *msg;
		size_t len;
		while (peers_recv(&ps[i], &from, &msg, &len)) {
			CHECK(ngot[i] < 4096);
			struct got *g = &got[i][ngot[i]++];
			g->from = from;
			g->len = len;
			g->data = malloc(len ? len : 1);
			memcpy(g->data, msg, len);
		}
	}
}

/* Pump until pred() or timeout_ms (then fail with what). */
static void pump_until(int (*pred)(void), int timeout_ms, const char *what)
{
	int64_t end = now_ms() + timeout_ms;
	while (!pred()) {
		if (now_ms() > end) {
			fprintf(stderr, "timed out waiting for %s\n", what);
			exit(1);
		}
		pump_once(5);
	}
}

static int all_linked(void)
{
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			if (i != j && open_[i] && open_[j] && !peers_up(&ps[i], j + 1))
				return 0;
	return 1;
}

static int want_msgs;
static int enough_msgs(void)
{
	for (int i = 0; i < N; i++)
		if (open_[i] && ngot[i] < want_msgs)
			return 0;
	return 1;
}

/* A message of member `from`, number k: "from k" then a pattern up to len bytes. */
static size_t make_msg(uint8_t *buf, int from, int k, size_t len)
{
	int h = snprintf((char *)buf, len, "%d %d ", from, k);
	for (size_t i = (size_t)h; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + (size_t)k);
	return len < (size_t)h ? (size_t)h : len;
}

static void check_in_order(int me, int count_per_sender)
{
	int next[N + 1] = {0};
	uint8_t buf[70000];
	for (int k = 0; k < ngot[me]; k++) {
		struct got *g = &got[me][k];
		CHECK(g->from >= 1 && g->from <= N && g->from != me + 1);
		int kk = next[g->from]++;
		size_t len = make_msg(buf, g->from, kk, (size_t)(kk * 37) % 65000 + 8);
		CHECK_EQ(g->len, len);
		CHECK(memcmp(g->data, buf, len) == 0);
	}
	for (int j = 1; j <= N; j++)
		if (j != me + 1)
			CHECK_EQ(next[j], count_per_sender);
}

static void exchange(int curve)
{
	setup(curve);
	for (int i = 0; i < N; i++)
		member_open(i);
	pump_until(all_linked, 5000, "every member to link to every other");
	/* 500 messages from each member to each other, sizes 8 B .. 65 KB, sent in bursts */
	uint8_t buf[70000];
	int per = 500;
	for (int k = 0; k < per; k++) {
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++)
				if (i != j)
					peers_send(&ps[i], j + 1, buf, make_msg(buf, i + 1, k, (size_t)(k * 37) % 65000 + 8));
		if (k % 50 == 0)
			pump_once(0);
	}
	want_msgs = per * (N - 1);
	pump_until(enough_msgs, 10000, "every message to arrive");
	for (int i = 0; i < N; i++)
		check_in_order(i, per);
	for (int i = 0; i < N; i++)
		for (int j = 1; j <= N; j++)
			CHECK_EQ(lost_count[i][j], 0);
	/* one large message (partial writes, POLLOUT); with keys, one over the queue's cap (a 64 MiB
	 * znode's append): a message alone in the queue always goes */
	clear_got();
	size_t big = curve ? PEERS_QUEUE_MAX + (1u << 20) : 8u << 20;
	uint8_t *bm = malloc(big);
	for (size_t i = 0; i < big; i++)
		bm[i] = (uint8_t)(i ^ (i >> 9));
	peers_send(&ps[0], 2, bm, big);
	want_msgs = 0;
	int64_t end = now_ms() + 10000;
	while (ngot[1] < 1 && now_ms() < end)
		pump_once(5);
	CHECK_EQ(ngot[1], 1);
	CHECK_EQ(got[1][0].len, big);
	CHECK(memcmp(got[1][0].data, bm, big) == 0);
	free(bm);
	teardown();
}

static void test_messages_arrive_whole_and_in_order_in_plaintext(void) { exchange(0); }
static void test_messages_arrive_whole_and_in_order_with_keys(void) { exchange(1); }

static int lost_2_at_1(void) { return lost_count[0][2] > 0; }
static int three_got_one(void) { return ngot[2] > 0; }
static int two_got_one(void) { return ngot[1] > 0; }
static int one_got_one(void) { return ngot[0] > 0; }

static void test_a_member_that_goes_away_is_reported_lost_and_linked_again(void)
{
	setup(1);
	for (int i = 0; i < N; i++)
		member_open(i);
	pump_until(all_linked, 5000, "every member to link");
	member_close(1);
	pump_until(lost_2_at_1, 2000, "member 1 to report member 2 lost");
	CHECK(!peers_up(&ps[0], 2));
	peers_send(&ps[0], 2, "dropped", 7); /* not linked: dropped, not queued */
	peers_send(&ps[0], 3, "kept", 4);   /* the other link is unaffected */
	pump_until(three_got_one, 2000, "member 3 to get its message");
	CHECK_EQ(got[2][0].from, 1);
	CHECK(got[2][0].len == 4 && memcmp(got[2][0].data, "kept", 4) == 0);
	member_open(1);
	pump_until(all_linked, 5000, "member 2 to be linked again");
	peers_send(&ps[0], 2, "again", 5);
	pump_until(two_got_one, 2000, "member 2 to get its message");
	CHECK_EQ(ngot[1], 1);
	CHECK(got[1][0].len == 5 && memcmp(got[1][0].data, "again", 5) == 0);
	teardown();
}


static void test_a_snapshot_streams_in_chunks_and_what_was_sent_meanwhile_follows_it(void)
{
	setup(1);
	member_open(0);
	member_open(1);
	open_[2] = 0;
	pump_until(all_linked, 5000, "members 1 and 2 to link");
	size_t total = (7u << 19) + 123; /* 3.5 MiB and a bit: four chunks */
	uint8_t *data = malloc(total);
	for (size_t i = 0; i < total; i++)
		data[i] = (uint8_t)(i * 13 + (i >> 12));
	char path[200];
	snprintf(path, sizeof path, "%s/snapshot.%016x", dirs[0], 0x42);
	FILE *f = fopen(path, "w");
	CHECK(f && fwrite(data, 1, total, f) == total);
	fclose(f);
	CHECK_EQ(peers_send_snapshot(&ps[0], 2, dirs[0], 0x42, 7), COORD_OK);
	peers_send(&ps[0], 2, "after", 5);
	int snap_done = 0;
	int64_t end = now_ms() + 10000;
	int chunks = 0, after_at = -1;
	while (!(snap_done && after_at >= 0) && now_ms() < end) {
		pump_once(5);
		for (; chunks + (after_at >= 0) < ngot[1];) {
			struct got *g = &got[1][chunks + (after_at >= 0)];
			if (g->len == 5 && memcmp(g->data, "after", 5) == 0) {
				after_at = chunks;
				continue;
			}
			struct peer_msg m;
			char why[200];
			CHECK_EQ(peer_decode(g->data, g->len, &m, why, sizeof why), COORD_OK);
			CHECK_EQ(m.kind, PEER_SNAP_CHUNK);
			CHECK(after_at < 0); /* no chunk after the message sent behind them */
			if (peers_recv_chunk(&ps[1], m.index, m.term, m.offset, m.total, m.chunk.p, m.chunk.len))
				snap_done = 1;
			peer_msg_clear(&m);
			chunks++;
		}
	}
	CHECK(snap_done);
	CHECK_EQ(chunks, 4);
	CHECK_EQ(after_at, 4);
	CHECK(peers_have_snapshot(&ps[1], 0x42, 7));
	CHECK_EQ(peers_keep_snapshot(&ps[1]), COORD_OK);
	snprintf(path, sizeof path, "%s/snapshot.%016x", dirs[1], 0x42);
	f = fopen(path, "r");
	CHECK(f);
	uint8_t *back = malloc(total + 1);
	CHECK_EQ(fread(back, 1, total + 1, f), total);
	fclose(f);
	CHECK(memcmp(back, data, total) == 0);
	free(back);
	free(data);
	/* a snapshot that cannot be read is refused without sending anything */
	CHECK(peers_send_snapshot(&ps[0], 2, dirs[0], 0x43, 7) != COORD_OK);
	teardown();
}

static uint64_t want_refused;
static int refused_at_1(void) { return ps[0].refused >= want_refused; }

static void test_strangers_and_a_member_with_the_wrong_auth_are_refused(void)
{
	setup(1);
	member_open(0);
	member_open(1);
	open_[2] = 0;
	pump_until(all_linked, 5000, "members 1 and 2 to link");
	/* a stranger speaking something else */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((uint16_t)cfg[0].members[0].peer_port)};
	CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(write(fd, "GET / HTTP/1.0\r\n\r\n", 18) == 18);
	want_refused = 1;
	pump_until(refused_at_1, 2000, "the stranger to be refused");
	char b[64];
	ssize_t r;
	while ((r = read(fd, b, sizeof b)) > 0) /* the greeting, then the close */
		;
	CHECK_EQ(r, 0);
	close(fd);
	/* member 3 in plaintext while the others run with keys: never linked, refused each time */
	keys[2].curve = 0;
	member_open(2);
	want_refused = ps[0].refused + 2;
	pump_until(refused_at_1, 3000, "member 3 in plaintext to be refused twice");
	CHECK(!peers_up(&ps[2], 1) && !peers_up(&ps[0], 3));
	/* the members' own link never noticed */
	peers_send(&ps[1], 1, "still", 5);
	pump_until(one_got_one, 2000, "member 1 to get its message");
	CHECK(ngot[0] == 1 && got[0][0].len == 5 && memcmp(got[0][0].data, "still", 5) == 0);
	CHECK_EQ(lost_count[0][2], 0);
	/* member 3 with keys, but not the key the others know as server.3's: its hello is refused
	 * after its link was up for a moment, and that is a refusal, never a lost member (which would
	 * make it forget its leader), however often it tries */
	member_close(2);
	keys[2].curve = 1;
	crypto_box_keypair(keys[2].pub, keys[2].sec);
	for (int j = 0; j < N; j++)
		if (keys[2].member[j].id == 3)
			memcpy(keys[2].member[j].pub, keys[2].pub, 32);
	want_refused = ps[0].refused + 2; /* twice: its link was up, then refused, at least twice */
	member_open(2);
	pump_until(refused_at_1, 3000, "member 3 with a stranger's key to be refused twice");
	CHECK(!peers_up(&ps[0], 3));
	CHECK_EQ(lost_count[2][1], 0);
	CHECK_EQ(lost_count[2][2], 0);
	teardown();
}

int main(void)
{
	coord_log_init("test_peers", COORD_LOG_WARN);
	RUN(test_messages_arrive_whole_and_in_order_in_plaintext);
	RUN(test_messages_arrive_whole_and_in_order_with_keys);
	RUN(test_a_member_that_goes_away_is_reported_lost_and_linked_again);
	RUN(test_a_snapshot_streams_in_chunks_and_what_was_sent_meanwhile_follows_it);
	RUN(test_strangers_and_a_member_with_the_wrong_auth_are_refused);
	return 0;
}
