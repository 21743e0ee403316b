/*
 * peerlink.h: how a peer-port connection starts, and its sealing, with no sockets (peers.c moves
 * the bytes).
 *
 * The listener speaks first, the connector answers, then only the connector sends:
 *   greeting (listener):  "CFPEER" | u8 version | u8 mode | u32 id       [| 32 ephemeral public key]
 *   hello (connector):    "CFPEER" | u8 version | u8 mode | u32 from | u32 to
 *                         [| 32 ephemeral public key | 24 stream header | sealed(u32 from | u32 to)]
 *   then frames:          u32 length | message            (mode 1: the message sealed)
 * A listener that refuses a hello answers "CFPNO" | u8 n | n bytes of why, then closes, so the
 * refused member's log says why too (a stranger learns nothing it did not send).
 * mode 0 is plaintext (auth=none); mode 1 (auth=curve) authenticates and encrypts with the members'
 * CURVE keys (X25519, as CurveZMQ; the same key files). Both ends mix four X25519 results, as
 * Noise's KK pattern does: ephemeral-ephemeral (forward secrecy), connector's static with the
 * listener's ephemeral (only the member holding `from`'s secret key can make the link, even to
 * someone who stole the listener's key), connector's ephemeral with the listener's static (only
 * `to` can read it), and static-static; the key is BLAKE2b of them and of everything both said.
 * Frames are then a libsodium secretstream (XChaCha20-Poly1305): a frame changed, dropped,
 * reordered or replayed from another connection fails to open. The hello's sealed ids prove the
 * connector's key at once. Members' ids and keys come from memberKeysFile (server.N KEY).
 */
#ifndef COORD_PEERLINK_H
#define COORD_PEERLINK_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define PEERLINK_VERSION 1
#define PEERLINK_KEY 32
#define PEERLINK_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define PEERLINK_GREETING_PLAIN 12
#define PEERLINK_GREETING_MAX (PEERLINK_GREETING_PLAIN + PEERLINK_KEY)
#define PEERLINK_HELLO_PLAIN 16
#define PEERLINK_HELLO_MAX (PEERLINK_HELLO_PLAIN + PEERLINK_KEY + crypto_secretstream_xchacha20poly1305_HEADERBYTES + \
			    PEERLINK_ABYTES + 8)
#define PEERLINK_FRAME_MAX 0x7fffffffu  /* a frame's length field, largest accepted */

struct peerlink_keys {
	int curve;                      /* 0: plaintext, the rest unused */
	uint8_t pub[PEERLINK_KEY], sec[PEERLINK_KEY]; /* this member's */
	int n;
	struct {
		int id;
		uint8_t pub[PEERLINK_KEY];
	} member[COORD_MAX_MEMBERS];
};

/* What the listener said, kept until the hello comes. */
struct peerlink_greeting {
	uint8_t bytes[PEERLINK_GREETING_MAX];
	size_t len;
	uint8_t esec[PEERLINK_KEY];     /* its ephemeral secret (mode 1) */
};

struct peerlink_tx {
	int curve;
	crypto_secretstream_xchacha20poly1305_state st;
};

struct peerlink_rx {
	int curve;
	crypto_secretstream_xchacha20poly1305_state st;
};

/* Load this member's key pair and memberKeysFile into k (auth=curve). COORD_OK or an error. */
int peerlink_keys_load(struct peerlink_keys *k, const struct coord_config *cfg, char *err, size_t errlen);
/* The listener's greeting, made at accept (a fresh ephemeral key pair with auth=curve). */
void peerlink_greeting_make(const struct peerlink_keys *k, int self, struct peerlink_greeting *g);
/* How long the greeting or hello starting at p is, once its first 8 bytes are there (else 0);
 * -1 if they are not a coordfs peer link's. */
long peerlink_greeting_len(const uint8_t *p, size_t n);
long peerlink_hello_len(const uint8_t *p, size_t n);
/*
 * The connector, given the whole greeting from the member it dialled (`to`): checks it and makes
 * the hello and the sealing state. COORD_OK, or an error with a message naming what differs
 * (another member on that port, a mode or version mismatch).
 */
int peerlink_hello_make(const struct peerlink_keys *k, int self, int to, const uint8_t *greeting, size_t glen,
			uint8_t hello[PEERLINK_HELLO_MAX], size_t *hlen, struct peerlink_tx *tx, char *err, size_t errlen);
/*
 * The listener, given the whole hello: checks it (addressed to us, from a member, and with
 * auth=curve sealed by that member's key) and makes the opening state. COORD_OK with *from, or
 * an error with a message.
 */
int peerlink_hello_take(const struct peerlink_keys *k, int self, const struct peerlink_greeting *g,
			const uint8_t *hello, size_t hlen, int *from, struct peerlink_rx *rx, char *err, size_t errlen);
#define PEERLINK_REFUSAL_MAX (6 + 255)
/* The refusal message for why (truncated to 255 bytes) into out; returns its length. */
size_t peerlink_refusal_make(uint8_t out[PEERLINK_REFUSAL_MAX], const char *why);
/* If p[0..n) is a refusal, its text as "member refused this link: WHY" into out; 0, else -1. */
int peerlink_refusal_text(const uint8_t *p, size_t n, char *out, size_t outlen);
/* Bytes sealing adds to a message (0 in plaintext). */
size_t peerlink_overhead(int curve);
/* Seal msg into out (len + overhead bytes; out may not overlap msg). */
void peerlink_seal(struct peerlink_tx *tx, uint8_t *out, const uint8_t *msg, size_t len);
/* Open a sealed frame into out (clen - overhead bytes). 0, or -1 if it was not sealed for this link. */
int peerlink_open(struct peerlink_rx *rx, uint8_t *out, const uint8_t *c, size_t clen);

#endif
