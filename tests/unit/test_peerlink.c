/*
 * test_peerlink.c: the peer port's greeting, hello and sealing (server/peerlink.c): members with
 * their keys link and their frames arrive intact and in order; a stranger's key, a member's key
 * claiming another member's number, a replayed hello, a changed, reordered or replayed frame, a
 * mode, version or address mismatch are all refused with a message that says which.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "curve.h"
#include "err.h"
#include "peerlink.h"

/* Members 1..3 with fresh keys; keys[i] is member i+1's view (its own pair, everyone's public). */
static struct peerlink_keys keys[3];

static void make_keys(void)
{
	uint8_t pub[3][32], sec[3][32];
	for (int i = 0; i < 3; i++)
		crypto_box_keypair(pub[i], sec[i]);
	for (int i = 0; i < 3; i++) {
		memset(&keys[i], 0, sizeof(keys[i]));
		keys[i].curve = 1;
		memcpy(keys[i].pub, pub[i], 32);
		memcpy(keys[i].sec, sec[i], 32);
		keys[i].n = 3;
		for (int j = 0; j < 3; j++) {
			keys[i].member[j].id = j + 1;
			memcpy(keys[i].member[j].pub, pub[j], 32);
		}
	}
}

/* Member `from` (its keys kf) links to member `to` (keys kt): 0 with tx/rx set, or the error. */
static int link_up(const struct peerlink_keys *kf, int from, const struct peerlink_keys *kt, int to,
		   struct peerlink_tx *tx, struct peerlink_rx *rx, char *err, uint8_t *hello, size_t *hlen)
{
	struct peerlink_greeting g;
	peerlink_greeting_make(kt, to, &g);
	CHECK_EQ(peerlink_greeting_len(g.bytes, g.len), (long)g.len);
	int rc = peerlink_hello_make(kf, from, to, g.bytes, g.len, hello, hlen, tx, err, 300);
	if (rc)
		return rc;
	CHECK_EQ(peerlink_hello_len(hello, *hlen), (long)*hlen);
	int who = 0;
	rc = peerlink_hello_take(kt, to, &g, hello, *hlen, &who, rx, err, 300);
	if (!rc)
		CHECK_EQ(who, from);
	return rc;
}

static void test_plaintext_link_names_both_members_and_passes_frames_as_they_are(void)
{
	struct peerlink_keys plain = {0};
	struct peerlink_tx tx;
	struct peerlink_rx rx;
	uint8_t hello[PEERLINK_HELLO_MAX], out[16];
	size_t hlen;
	char err[300];
	CHECK_EQ(link_up(&plain, 2, &plain, 1, &tx, &rx, err, hello, &hlen), COORD_OK);
	CHECK_EQ(hlen, PEERLINK_HELLO_PLAIN);
	CHECK_EQ(peerlink_overhead(0), 0);
	peerlink_seal(&tx, out, (const uint8_t *)"abc", 3);
	CHECK(memcmp(out, "abc", 3) == 0);
	uint8_t back[3];
	CHECK_EQ(peerlink_open(&rx, back, out, 3), 0);
	CHECK(memcmp(back, "abc", 3) == 0);
}

static void test_members_with_their_keys_link_and_frames_arrive_intact_in_order(void)
{
	struct peerlink_tx tx;
	struct peerlink_rx rx;
	uint8_t hello[PEERLINK_HELLO_MAX];
	size_t hlen;
	char err[300];
	CHECK_EQ(link_up(&keys[1], 2, &keys[0], 1, &tx, &rx, err, hello, &hlen), COORD_OK);
	CHECK_EQ(hlen, PEERLINK_HELLO_MAX);
	const char *msgs[] = {"", "one", "a longer message, sealed on its own"};
	uint8_t c[3][64], m[64];
	for (int i = 0; i < 3; i++)
		peerlink_seal(&tx, c[i], (const uint8_t *)msgs[i], strlen(msgs[i]));
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(msgs[i]);
		CHECK(n == 0 || memcmp(c[i], msgs[i], n) != 0); /* not readable on the wire */
		CHECK_EQ(peerlink_open(&rx, m, c[i], n + PEERLINK_ABYTES), 0);
		CHECK(memcmp(m, msgs[i], n) == 0);
	}
	/* a large frame too */
	size_t big = 3u << 20;
	uint8_t *bm = malloc(big), *bc = malloc(big + PEERLINK_ABYTES), *bo = malloc(big);
	CHECK(bm && bc && bo);
	for (size_t i = 0; i < big; i++)
		bm[i] = (uint8_t)(i * 7);
	peerlink_seal(&tx, bc, bm, big);
	CHECK_EQ(peerlink_open(&rx, bo, bc, big + PEERLINK_ABYTES), 0);
	CHECK(memcmp(bm, bo, big) == 0);
	free(bm);
	free(bc);
	free(bo);
}

static void test_changed_reordered_dropped_or_replayed_frames_do_not_open(void)
{
	struct peerlink_tx tx;
	struct peerlink_rx rx;
	uint8_t hello[PEERLINK_HELLO_MAX], c[3][32], m[32];
	size_t hlen, n = 5 + PEERLINK_ABYTES;
	char err[300];
	CHECK_EQ(link_up(&keys[1], 2, &keys[0], 1, &tx, &rx, err, hello, &hlen), COORD_OK);
	for (int i = 0; i < 3; i++)
		peerlink_seal(&tx, c[i], (const uint8_t *)"hello", 5);
	/* one bit changed */
	uint8_t bad[32];
	memcpy(bad, c[0], n);
	bad[3] ^= 1;
	struct peerlink_rx copy = rx;
	CHECK_EQ(peerlink_open(&copy, m, bad, n), -1);
	/* the second before the first (or the first dropped) */
	copy = rx;
	CHECK_EQ(peerlink_open(&copy, m, c[1], n), -1);
	/* in order they open; the first again (a replay within the link) does not */
	CHECK_EQ(peerlink_open(&rx, m, c[0], n), 0);
	CHECK_EQ(peerlink_open(&rx, m, c[1], n), 0);
	copy = rx;
	CHECK_EQ(peerlink_open(&copy, m, c[1], n), -1);
	CHECK_EQ(peerlink_open(&rx, m, c[2], n), 0);
	/* too short to be sealed */
	CHECK_EQ(peerlink_open(&rx, m, c[2], PEERLINK_ABYTES - 1), -1);
}

static void test_a_stranger_or_a_member_claiming_another_number_is_refused(void)
{
	struct peerlink_tx tx;
	struct peerlink_rx rx;
	uint8_t hello[PEERLINK_HELLO_MAX];
	size_t hlen;
	char err[300];
	/* a stranger: its own key pair, claiming to be member 2 */
	struct peerlink_keys stranger = keys[1];
	crypto_box_keypair(stranger.pub, stranger.sec);
	CHECK_EQ(link_up(&stranger, 2, &keys[0], 1, &tx, &rx, err, hello, &hlen), COORD_ENOAUTH);
	CHECK(strstr(err, "does not hold server.2's key"));
	/* member 3 with its real key, claiming to be member 2 */
	CHECK_EQ(link_up(&keys[2], 2, &keys[0], 1, &tx, &rx, err, hello, &hlen), COORD_ENOAUTH);
	CHECK(strstr(err, "does not hold server.2's key"));
	/* member 1's own key pair, claiming to be member 2 to member 1 */
	CHECK_EQ(link_up(&keys[0], 2, &keys[0], 1, &tx, &rx, err, hello, &hlen), COORD_ENOAUTH);
	/* a member number nobody has, or our own */
	CHECK_EQ(link_up(&keys[1], 7, &keys[0], 1, &tx, &rx, err, hello, &hlen), COORD_ENOAUTH);
	CHECK(strstr(err, "no such member"));
	CHECK_EQ(link_up(&keys[0], 1, &keys[0], 1, &tx, &rx, err, hello, &hlen), COORD_ENOAUTH);
}

static void test_a_recorded_hello_does_not_open_a_new_connection(void)
{
	struct peerlink_tx tx;
	struct peerlink_rx rx;
	uint8_t hello[PEERLINK_HELLO_MAX], c[32];
	size_t hlen;
	char err[300];
	CHECK_EQ(link_up(&keys[1], 2, &keys[0], 1, &tx, &rx, err, hello, &hlen), COORD_OK);
	peerlink_seal(&tx, c, (const uint8_t *)"append", 6);
	/* the listener greets the replaying connection with a fresh ephemeral key */
	struct peerlink_greeting g2;
	peerlink_greeting_make(&keys[0], 1, &g2);
	int who = 0;
	CHECK_EQ(peerlink_hello_take(&keys[0], 1, &g2, hello, hlen, &who, &rx, err, sizeof err), COORD_ENOAUTH);
	CHECK_EQ(who, 0);
}

static void test_mismatches_are_named(void)
{
	struct peerlink_keys plain = {0};
	struct peerlink_greeting g;
	struct peerlink_tx tx;
	struct peerlink_rx rx;
	uint8_t hello[PEERLINK_HELLO_MAX];
	size_t hlen;
	char err[300];
	int who;
	/* a connector with keys, a listener in plaintext, and the other way round */
	peerlink_greeting_make(&plain, 1, &g);
	CHECK_EQ(peerlink_hello_make(&keys[1], 2, 1, g.bytes, g.len, hello, &hlen, &tx, err, sizeof err), COORD_ENOAUTH);
	CHECK(strstr(err, "auth=none") && strstr(err, "auth=curve"));
	peerlink_greeting_make(&keys[0], 1, &g);
	CHECK_EQ(peerlink_hello_make(&plain, 2, 1, g.bytes, g.len, hello, &hlen, &tx, err, sizeof err), COORD_ENOAUTH);
	CHECK_EQ(peerlink_hello_make(&plain, 2, 1, g.bytes, PEERLINK_GREETING_PLAIN, hello, &hlen, &tx, err, sizeof err),
		 COORD_EPROTO); /* cut short */
	/* a plaintext hello to a listener with keys */
	struct peerlink_greeting gp;
	peerlink_greeting_make(&plain, 1, &gp);
	CHECK_EQ(peerlink_hello_make(&plain, 2, 1, gp.bytes, gp.len, hello, &hlen, &tx, err, sizeof err), COORD_OK);
	CHECK_EQ(peerlink_hello_take(&keys[0], 1, &g, hello, hlen, &who, &rx, err, sizeof err), COORD_ENOAUTH);
	CHECK(strstr(err, "auth=none"));
	/* the port answers as another member */
	peerlink_greeting_make(&plain, 3, &g);
	CHECK_EQ(peerlink_hello_make(&plain, 2, 1, g.bytes, g.len, hello, &hlen, &tx, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "member 3's"));
	/* a hello meant for member 3 arriving at member 1 */
	CHECK_EQ(peerlink_hello_make(&plain, 2, 3, g.bytes, g.len, hello, &hlen, &tx, err, sizeof err), COORD_OK);
	peerlink_greeting_make(&plain, 1, &g);
	CHECK_EQ(peerlink_hello_take(&plain, 1, &g, hello, hlen, &who, &rx, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "dialled member 3"));
	/* another version */
	peerlink_greeting_make(&plain, 1, &g);
	g.bytes[6] = PEERLINK_VERSION + 1;
	CHECK_EQ(peerlink_hello_make(&plain, 2, 1, g.bytes, g.len, hello, &hlen, &tx, err, sizeof err), COORD_EPROTO);
	CHECK(strstr(err, "version"));
	/* not the protocol at all */
	CHECK_EQ(peerlink_greeting_len((const uint8_t *)"GET / HTTP/1.0\r\n", 16), -1);
	CHECK_EQ(peerlink_hello_len((const uint8_t *)"CFP", 3), 0);
	CHECK_EQ(peerlink_hello_len((const uint8_t *)"SSH-2.0", 7), -1);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f);
	fputs(text, f);
	fclose(f);
}

static void test_member_keys_file_is_checked_whole(void)
{
	char dir[] = "/tmp/test_peerlink.XXXXXX";
	CHECK(mkdtemp(dir));
	char kf[4][300], pf[4][300], name[300], err[600], pubs[4][41];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "%s/member%d", dir, i + 1);
		CHECK_EQ(coord_key_generate(name, 0, kf[i], pf[i], sizeof kf[i], err, sizeof err), COORD_OK);
		struct coord_keypair kp;
		CHECK_EQ(coord_key_load(kf[i], 1, &kp, err, sizeof err), COORD_OK);
		snprintf(pubs[i], sizeof pubs[i], "%s", kp.public_z85);
	}
	struct coord_config cfg;
	coord_config_defaults(&cfg);
	for (int i = 1; i <= 3; i++) {
		char line[100];
		snprintf(line, sizeof line, "server.%d=127.0.0.1:%d:%d", i, 3000 + i, 4000 + i);
		CHECK_EQ(coord_config_line(&cfg, line, err, sizeof err), COORD_OK);
	}
	cfg.my_id = 2;
	snprintf(cfg.secret_key_file, sizeof cfg.secret_key_file, "%s", kf[1]);
	snprintf(cfg.member_keys_file, sizeof cfg.member_keys_file, "%s/members", dir);
	char text[600];
	snprintf(text, sizeof text, "# members\nserver.1 %s\nserver.2 %s\nserver.3 %s\n", pubs[0], pubs[1], pubs[2]);
	write_file(cfg.member_keys_file, text);
	struct peerlink_keys k;
	CHECK_EQ(peerlink_keys_load(&k, &cfg, err, sizeof err), COORD_OK);
	CHECK_EQ(k.curve, 1);
	CHECK_EQ(k.n, 3);
	/* a member without a key */
	snprintf(text, sizeof text, "server.1 %s\nserver.2 %s\n", pubs[0], pubs[1]);
	write_file(cfg.member_keys_file, text);
	CHECK_EQ(peerlink_keys_load(&k, &cfg, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "no key for server.3"));
	CHECK_EQ(k.curve, 0);
	/* a stranger's line */
	snprintf(text, sizeof text, "server.1 %s\nserver.2 %s\nserver.3 %s\nserver.9 %s\n", pubs[0], pubs[1], pubs[2],
		 pubs[3]);
	write_file(cfg.member_keys_file, text);
	CHECK_EQ(peerlink_keys_load(&k, &cfg, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "server.9 has no server line"));
	/* our own line with another key than secretKeyFile's */
	snprintf(text, sizeof text, "server.1 %s\nserver.2 %s\nserver.3 %s\n", pubs[0], pubs[3], pubs[2]);
	write_file(cfg.member_keys_file, text);
	CHECK_EQ(peerlink_keys_load(&k, &cfg, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "not the public half of secretKeyFile"));
	/* a missing file is named */
	snprintf(cfg.member_keys_file, sizeof cfg.member_keys_file, "%s/nonexistent", dir);
	CHECK_EQ(peerlink_keys_load(&k, &cfg, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "nonexistent"));
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	CHECK(sodium_init() >= 0);
	make_keys();
	RUN(test_plaintext_link_names_both_members_and_passes_frames_as_they_are);
	RUN(test_members_with_their_keys_link_and_frames_arrive_intact_in_order);
	RUN(test_changed_reordered_dropped_or_replayed_frames_do_not_open);
	RUN(test_a_stranger_or_a_member_claiming_another_number_is_refused);
	RUN(test_a_recorded_hello_does_not_open_a_new_connection);
	RUN(test_mismatches_are_named);
	RUN(test_member_keys_file_is_checked_whole);
	return 0;
}
