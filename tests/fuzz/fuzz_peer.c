/*
 * fuzz_peer.c: libFuzzer target for what reaches a member on its peer port (server/peerlink.c,
 * server/peerwire.c): anyone may connect, so the greeting and hello checks, the opening of a
 * sealed frame and the decoding of a member's message must refuse any bytes cleanly.
 *
 * Each input is tried as a hello (to a plaintext member and to one with keys, after its
 * greeting), as a greeting (by a connecting member, plaintext and with keys), as a refusal, as a
 * sealed frame of an established link, and as a peer message; whatever decodes as a peer message must survive a
 * round trip through its encoder when it is a raft message. Seeds: tests/fuzz/corpus_peer/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "peerlink.h"
#include "peerwire.h"

static struct peerlink_keys plain_keys, curve_keys[2];
static struct peerlink_rx rx_link;
static int ready;

static void die(const char *what)
{
	fprintf(stderr, "fuzz_peer: %s\n", what);
	abort();
}

/* Two members (1 and 2) with fixed keys, and a link from 2 to 1 to open frames on. */
static void setup(void)
{
	if (sodium_init() < 0)
		die("sodium_init");
	uint8_t seed[crypto_box_SEEDBYTES];
	for (int i = 0; i < 2; i++) {
		memset(seed, 0x11 * (i + 1), sizeof(seed));
		crypto_box_seed_keypair(curve_keys[i].pub, curve_keys[i].sec, seed);
	}
	for (int i = 0; i < 2; i++) {
		curve_keys[i].curve = 1;
		curve_keys[i].n = 2;
		for (int j = 0; j < 2; j++) {
			curve_keys[i].member[j].id = j + 1;
			memcpy(curve_keys[i].member[j].pub, curve_keys[j].pub, PEERLINK_KEY);
		}
		plain_keys.member[i].id = i + 1;
	}
	plain_keys.n = 2;
	struct peerlink_greeting g;
	struct peerlink_tx tx;
	uint8_t hello[PEERLINK_HELLO_MAX];
	size_t hlen;
	char err[300];
	int from;
	peerlink_greeting_make(&curve_keys[0], 1, &g);
	if (peerlink_hello_make(&curve_keys[1], 2, 1, g.bytes, g.len, hello, &hlen, &tx, err, sizeof(err)) ||
	    peerlink_hello_take(&curve_keys[0], 1, &g, hello, hlen, &from, &rx_link, err, sizeof(err)))
		die("the fixed members cannot link");
	ready = 1;
}

static void try_hello(const struct peerlink_keys *k, const uint8_t *data, size_t size)
{
	struct peerlink_greeting g;
	struct peerlink_rx rx;
	char err[300] = "";
	int from = 0;
	(void)peerlink_hello_len(data, size);
	peerlink_greeting_make(k, 1, &g);
	int rc = peerlink_hello_take(k, 1, &g, data, size, &from, &rx, err, sizeof(err));
	if (rc == COORD_OK && (from < 1 || from == 1))
		die("a hello was taken from an impossible member");
	if (rc != COORD_OK && !err[0])
		die("a hello was refused without a reason");
	if (rc == COORD_OK && k->curve)
		die("random bytes passed for a member's key"); /* would need member 2's secret key */
}

static void try_greeting(const struct peerlink_keys *k, const uint8_t *data, size_t size)
{
	uint8_t hello[PEERLINK_HELLO_MAX];
	size_t hlen = 0;
	struct peerlink_tx tx;
	char err[300] = "";
	(void)peerlink_greeting_len(data, size);
	int rc = peerlink_hello_make(k, 2, 1, data, size, hello, &hlen, &tx, err, sizeof(err));
	if (rc != COORD_OK && !err[0])
		die("a greeting was refused without a reason");
	if (rc == COORD_OK && (hlen < PEERLINK_HELLO_PLAIN || hlen > PEERLINK_HELLO_MAX))
		die("a hello of an impossible length");
}

static void try_frame(const uint8_t *data, size_t size)
{
	uint8_t *out = malloc(size ? size : 1);
	struct peerlink_rx copy = rx_link; /* every input on the link as it is after its hello */
	if (peerlink_open(&copy, out, data, size) == 0)
		die("random bytes opened as a sealed frame");
	free(out);
}

static void try_message(const uint8_t *data, size_t size)
{
	struct peer_msg m;
	char why[256] = "";
	int rc = peer_decode(data, size, &m, why, sizeof(why));
	if (rc != COORD_OK) {
		if (!why[0])
			die("peer_decode failed without a reason");
		return;
	}
	if (m.kind == PEER_RAFT) {
		struct buf b;
		buf_init(&b);
		if (peer_encode_raft(&b, &m.raft) == COORD_OK && !b.oom) {
			struct peer_msg m2;
			if (peer_decode(b.p, b.len, &m2, why, sizeof(why)) != COORD_OK)
				die("a re-encoded raft message does not decode");
			if (m2.raft.type != m.raft.type || m2.raft.term != m.raft.term || m2.raft.index != m.raft.index ||
			    m2.raft.nentries != m.raft.nentries)
				die("a raft message changed in a round trip");
			peer_msg_clear(&m2);
		}
		buf_free(&b);
	}
	peer_msg_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	try_hello(&plain_keys, data, size);
	try_hello(&curve_keys[0], data, size);
	try_greeting(&plain_keys, data, size);
	try_greeting(&curve_keys[1], data, size);
	try_frame(data, size);
	try_message(data, size);
	char why[PEERLINK_REFUSAL_MAX + 64];
	if (peerlink_refusal_text(data, size, why, sizeof(why)) == 0 && strlen(why) >= sizeof(why))
		die("a refusal's text overran");
	return 0;
}
