/*
 * peerlink.c: the peer port's greeting, hello, key agreement and frame sealing (see peerlink.h).
 */
#include "peerlink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curve.h"
#include "err.h"
#include "recfile.h"

#define MAGIC "CFPEER"
#define MAGIC_LEN 6
#define LABEL "coordfs peer link v1"

static const uint8_t *member_key(const struct peerlink_keys *k, int id)
{
	for (int i = 0; i < k->n; i++)
		if (k->member[i].id == id)
			return k->member[i].pub;
	return NULL;
}

/* Members' keys: "server.N KEY" lines, one per server line, no strangers. */
static int check_members(const struct coord_authkeys *ak, const struct coord_config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < ak->n; i++) {
		int id = 0;
		char extra;
		if (sscanf(ak->v[i].name, "server.%d%c", &id, &extra) != 1) {
			snprintf(err, errlen, "%s: '%s' is not a member name (expected server.N KEY lines)",
				 cfg->member_keys_file, ak->v[i].name);
			return COORD_EBADCONFIG;
		}
		int found = 0;
		for (int m = 0; m < cfg->nmembers; m++)
			found |= cfg->members[m].id == id;
		for (size_t j = 0; j < i; j++)
			if (strcmp(ak->v[j].name, ak->v[i].name) == 0)
				found = -1;
		if (found != 1) {
			snprintf(err, errlen, "%s: %s %s", cfg->member_keys_file, ak->v[i].name,
				 found ? "has two keys (expected one per member)" : "has no server line in the config");
			return COORD_EBADCONFIG;
		}
	}
	for (int m = 0; m < cfg->nmembers; m++) {
		char name[32];
		snprintf(name, sizeof(name), "server.%d", cfg->members[m].id);
		int found = 0;
		for (size_t i = 0; i < ak->n; i++)
			found |= strcmp(ak->v[i].name, name) == 0;
		if (!found) {
			snprintf(err, errlen, "%s: no key for %s (expected a line '%s KEY' for every member)",
				 cfg->member_keys_file, name, name);
			return COORD_EBADCONFIG;
		}
	}
	return COORD_OK;
}

int peerlink_keys_load(struct peerlink_keys *k, const struct coord_config *cfg, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	struct coord_keypair kp;
	struct coord_authkeys members = {0};
	int rc = coord_key_load(cfg->secret_key_file, 1, &kp, err, errlen);
	if (!rc)
		rc = coord_authkeys_load(cfg->member_keys_file, &members, err, errlen);
	if (rc)
		return rc;
	if (coord_key_z85_check(kp.public_z85, COORD_KEY_Z85_LEN, k->pub, NULL, 0) ||
	    coord_key_z85_check(kp.secret_z85, COORD_KEY_Z85_LEN, k->sec, NULL, 0)) {
		snprintf(err, errlen, "%s: not a key pair", cfg->secret_key_file);
		rc = COORD_EBADCONFIG;
	}
	if (!rc)
		rc = check_members(&members, cfg, err, errlen);
	for (size_t i = 0; !rc && i < members.n; i++) {
		int id = atoi(members.v[i].name + strlen("server."));
		if (id == cfg->my_id && memcmp(members.v[i].key, k->pub, PEERLINK_KEY) != 0) {
			snprintf(err, errlen, "%s: the key of %s is not the public half of secretKeyFile %s",
				 cfg->member_keys_file, members.v[i].name, cfg->secret_key_file);
			rc = COORD_EBADCONFIG;
		}
		k->member[k->n].id = id;
		memcpy(k->member[k->n].pub, members.v[i].key, PEERLINK_KEY);
		k->n++;
	}
	coord_authkeys_free(&members);
	sodium_memzero(kp.secret_z85, sizeof(kp.secret_z85));
	if (rc) {
		sodium_memzero(k, sizeof(*k));
		return rc;
	}
	k->curve = 1;
	return COORD_OK;
}

void peerlink_greeting_make(const struct peerlink_keys *k, int self, struct peerlink_greeting *g)
{
	memset(g, 0, sizeof(*g));
	memcpy(g->bytes, MAGIC, MAGIC_LEN);
	g->bytes[6] = PEERLINK_VERSION;
	g->bytes[7] = (uint8_t)(k->curve ? 1 : 0);
	rec_put32(g->bytes + 8, (uint32_t)self);
	g->len = PEERLINK_GREETING_PLAIN;
	if (k->curve) {
		crypto_box_keypair(g->bytes + PEERLINK_GREETING_PLAIN, g->esec);
		g->len += PEERLINK_KEY;
	}
}

static long start_len(const uint8_t *p, size_t n, long plain, long curve)
{
	size_t have = n < MAGIC_LEN ? n : MAGIC_LEN;
	if (memcmp(p, MAGIC, have) != 0)
		return -1;
	if (n < 8)
		return 0;
	return p[7] == 1 ? curve : plain; /* an unknown mode is refused once whole */
}

long peerlink_greeting_len(const uint8_t *p, size_t n)
{
	return start_len(p, n, PEERLINK_GREETING_PLAIN, PEERLINK_GREETING_MAX);
}

long peerlink_hello_len(const uint8_t *p, size_t n)
{
	return start_len(p, n, PEERLINK_HELLO_PLAIN, PEERLINK_HELLO_MAX);
}

/* Check version and mode of a greeting or hello against ours. */
static int check_start(const struct peerlink_keys *k, const uint8_t *p, const char *who, char *err, size_t errlen)
{
	if (p[6] != PEERLINK_VERSION) {
		snprintf(err, errlen, "%s speaks peer link version %u, this member %u (run one coordd version on "
			 "every member)", who, p[6], PEERLINK_VERSION);
		return COORD_EPROTO;
	}
	if (p[7] > 1) {
		snprintf(err, errlen, "%s asks for an unknown peer link mode %u", who, p[7]);
		return COORD_EPROTO;
	}
	if (p[7] != (k->curve ? 1 : 0)) {
		snprintf(err, errlen, "%s runs auth=%s, this member auth=%s (every member needs the same auth)", who,
			 p[7] ? "curve" : "none", k->curve ? "curve" : "none");
		return COORD_ENOAUTH;
	}
	return COORD_OK;
}

/*
 * The link's key: BLAKE2b(label | DH(eI,eR) | DH(sI,eR) | DH(eI,sR) | DH(sI,sR) | greeting |
 * hello's first part). Either end passes its own secrets with the other's public keys, in the
 * order that gives the same four values. -1 if a public key is a low-order point.
 */
static int link_key(uint8_t key[PEERLINK_KEY], const uint8_t dh_in[4][2][PEERLINK_KEY], const uint8_t *greet,
		    size_t glen, const uint8_t *hello, size_t hlen)
{
	uint8_t dh[4][PEERLINK_KEY];
	int bad = 0;
	for (int i = 0; i < 4; i++)
		bad |= crypto_scalarmult(dh[i], dh_in[i][0], dh_in[i][1]);
	crypto_generichash_state h;
	crypto_generichash_init(&h, NULL, 0, PEERLINK_KEY);
	crypto_generichash_update(&h, (const uint8_t *)LABEL, sizeof(LABEL) - 1);
	crypto_generichash_update(&h, &dh[0][0], sizeof(dh));
	crypto_generichash_update(&h, greet, glen);
	crypto_generichash_update(&h, hello, hlen);
	crypto_generichash_final(&h, key, PEERLINK_KEY);
	sodium_memzero(dh, sizeof(dh));
	return bad ? -1 : 0;
}

#define HELLO_SIGNED (PEERLINK_HELLO_PLAIN + PEERLINK_KEY) /* the part of the hello in the key */

int peerlink_hello_make(const struct peerlink_keys *k, int self, int to, const uint8_t *greeting, size_t glen,
			uint8_t hello[PEERLINK_HELLO_MAX], size_t *hlen, struct peerlink_tx *tx, char *err, size_t errlen)
{
	char who[48];
	snprintf(who, sizeof(who), "the peer port of server.%d", to);
	memset(tx, 0, sizeof(*tx));
	if (glen < PEERLINK_GREETING_PLAIN || peerlink_greeting_len(greeting, glen) != (long)glen) {
		snprintf(err, errlen, "%s does not speak coordfs's peer protocol (another program on that port?)", who);
		return COORD_EPROTO;
	}
	int rc = check_start(k, greeting, who, err, errlen);
	if (rc)
		return rc;
	uint32_t id = rec_le32(greeting + 8);
	if (id != (uint32_t)to) {
		snprintf(err, errlen, "%s is member %u's (check the server.N lines: each must name its member's "
			 "address and peer port)", who, id);
		return COORD_EBADCONFIG;
	}
	memcpy(hello, MAGIC, MAGIC_LEN);
	hello[6] = PEERLINK_VERSION;
	hello[7] = (uint8_t)(k->curve ? 1 : 0);
	rec_put32(hello + 8, (uint32_t)self);
	rec_put32(hello + 12, (uint32_t)to);
	*hlen = PEERLINK_HELLO_PLAIN;
	if (!k->curve)
		return COORD_OK;
	const uint8_t *spub = member_key(k, to);
	if (!spub) {
		snprintf(err, errlen, "no key for server.%d in memberKeysFile", to);
		return COORD_EBADCONFIG;
	}
	const uint8_t *epub_r = greeting + PEERLINK_GREETING_PLAIN;
	uint8_t esec[PEERLINK_KEY], key[PEERLINK_KEY];
	crypto_box_keypair(hello + PEERLINK_HELLO_PLAIN, esec);
	uint8_t in[4][2][PEERLINK_KEY];
	memcpy(in[0][0], esec, PEERLINK_KEY), memcpy(in[0][1], epub_r, PEERLINK_KEY);   /* eI . eR */
	memcpy(in[1][0], k->sec, PEERLINK_KEY), memcpy(in[1][1], epub_r, PEERLINK_KEY); /* sI . eR */
	memcpy(in[2][0], esec, PEERLINK_KEY), memcpy(in[2][1], spub, PEERLINK_KEY);     /* eI . sR */
	memcpy(in[3][0], k->sec, PEERLINK_KEY), memcpy(in[3][1], spub, PEERLINK_KEY);   /* sI . sR */
	int bad = link_key(key, (const uint8_t(*)[2][PEERLINK_KEY])in, greeting, glen, hello, HELLO_SIGNED);
	sodium_memzero(in, sizeof(in));
	sodium_memzero(esec, sizeof(esec));
	if (bad) {
		sodium_memzero(key, sizeof(key));
		snprintf(err, errlen, "%s sent an unusable ephemeral key", who);
		return COORD_ENOAUTH;
	}
	crypto_secretstream_xchacha20poly1305_init_push(&tx->st, hello + HELLO_SIGNED, key);
	sodium_memzero(key, sizeof(key));
	tx->curve = 1;
	size_t at = HELLO_SIGNED + crypto_secretstream_xchacha20poly1305_HEADERBYTES;
	peerlink_seal(tx, hello + at, hello + 8, 8); /* from | to, sealed: proves our key at once */
	*hlen = at + 8 + PEERLINK_ABYTES;
	return COORD_OK;
}

int peerlink_hello_take(const struct peerlink_keys *k, int self, const struct peerlink_greeting *g,
			const uint8_t *hello, size_t hlen, int *from, struct peerlink_rx *rx, char *err, size_t errlen)
{
	memset(rx, 0, sizeof(*rx));
	if (hlen < PEERLINK_HELLO_PLAIN || peerlink_hello_len(hello, hlen) != (long)hlen) {
		snprintf(err, errlen, "not coordfs's peer protocol");
		return COORD_EPROTO;
	}
	uint32_t id = rec_le32(hello + 8), to = rec_le32(hello + 12);
	char who[48];
	snprintf(who, sizeof(who), "a connection claiming to be member %u", id);
	int rc = check_start(k, hello, who, err, errlen);
	if (rc)
		return rc;
	if (to != (uint32_t)self) {
		snprintf(err, errlen, "%s dialled member %u, but this is member %d (check its server.N lines)", who, to,
			 self);
		return COORD_EBADCONFIG;
	}
	if (id == (uint32_t)self || id < 1 || id > 255) { /* member numbers are 1..255 (config.c) */
		snprintf(err, errlen, "%s: that is not another member's number", who);
		return COORD_ENOAUTH;
	}
	if (!k->curve) {
		*from = (int)id;
		return COORD_OK; /* the caller checks that id is a member */
	}
	const uint8_t *spub = member_key(k, (int)id);
	if (!spub) {
		snprintf(err, errlen, "%s: no such member in memberKeysFile", who);
		return COORD_ENOAUTH;
	}
	const uint8_t *epub_i = hello + PEERLINK_HELLO_PLAIN;
	uint8_t in[4][2][PEERLINK_KEY], key[PEERLINK_KEY];
	memcpy(in[0][0], g->esec, PEERLINK_KEY), memcpy(in[0][1], epub_i, PEERLINK_KEY); /* eR . eI */
	memcpy(in[1][0], g->esec, PEERLINK_KEY), memcpy(in[1][1], spub, PEERLINK_KEY);   /* eR . sI */
	memcpy(in[2][0], k->sec, PEERLINK_KEY), memcpy(in[2][1], epub_i, PEERLINK_KEY);  /* sR . eI */
	memcpy(in[3][0], k->sec, PEERLINK_KEY), memcpy(in[3][1], spub, PEERLINK_KEY);    /* sR . sI */
	int bad = link_key(key, (const uint8_t(*)[2][PEERLINK_KEY])in, g->bytes, g->len, hello, HELLO_SIGNED);
	sodium_memzero(in, sizeof(in));
	if (!bad)
		bad = crypto_secretstream_xchacha20poly1305_init_pull(&rx->st, hello + HELLO_SIGNED, key);
	sodium_memzero(key, sizeof(key));
	rx->curve = 1;
	uint8_t ids[8];
	size_t at = HELLO_SIGNED + crypto_secretstream_xchacha20poly1305_HEADERBYTES;
	if (bad || peerlink_open(rx, ids, hello + at, 8 + PEERLINK_ABYTES) != 0 || memcmp(ids, hello + 8, 8) != 0) {
		sodium_memzero(rx, sizeof(*rx));
		snprintf(err, errlen, "%s does not hold server.%u's key, or has another key for this member (check "
			 "memberKeysFile and secretKeyFile on both)", who, id);
		return COORD_ENOAUTH;
	}
	*from = (int)id;
	return COORD_OK;
}

size_t peerlink_refusal_make(uint8_t out[PEERLINK_REFUSAL_MAX], const char *why)
{
	size_t n = strlen(why);
	if (n > 255)
		n = 255;
	memcpy(out, "CFPNO", 5);
	out[5] = (uint8_t)n;
	memcpy(out + 6, why, n);
	return 6 + n;
}

int peerlink_refusal_text(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	if (n < 6 || memcmp(p, "CFPNO", 5) != 0)
		return -1;
	size_t len = p[5] < n - 6 ? p[5] : n - 6;
	char text[256];
	for (size_t i = 0; i < len; i++) /* printable only: it came from the network */
		text[i] = p[6 + i] >= 0x20 && p[6 + i] < 0x7f ? (char)p[6 + i] : '?';
	text[len] = '\0';
	snprintf(out, outlen, "it refused this member's link: %s", text);
	return 0;
}

size_t peerlink_overhead(int curve) { return curve ? PEERLINK_ABYTES : 0; }

void peerlink_seal(struct peerlink_tx *tx, uint8_t *out, const uint8_t *msg, size_t len)
{
	if (!tx->curve) {
		memcpy(out, msg, len);
		return;
	}
	crypto_secretstream_xchacha20poly1305_push(&tx->st, out, NULL, msg, len, NULL, 0,
						   crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
}

int peerlink_open(struct peerlink_rx *rx, uint8_t *out, const uint8_t *c, size_t clen)
{
	if (!rx->curve) {
		memcpy(out, c, clen);
		return 0;
	}
	unsigned char tag;
	if (clen < PEERLINK_ABYTES ||
	    crypto_secretstream_xchacha20poly1305_pull(&rx->st, out, NULL, &tag, c, clen, NULL, 0) != 0 ||
	    tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
		return -1;
	return 0;
}
