/*
 * curve.h: CurveZMQ key files and the authorised-keys list (the server's and the clients' side).
 *
 * A key file is text: '#' comment lines, blank lines, and "public-key = Z85" / "secret-key = Z85"
 * lines (40 Z85 characters each, 32 bytes decoded). A NAME.key file (mode 0600) holds both, a
 * NAME.pub file only the public key. An authorised-keys file has one "NAME Z85KEY" per line
 * (principal names, or server.N for the members' file), '#' comments and blank lines; reading is
 * all or nothing, and the first bad line is named as FILE:LINE. Nothing here allocates except the
 * list of an authorised-keys file, which the caller frees with coord_authkeys_free.
 */
#ifndef COORD_CURVE_H
#define COORD_CURVE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define COORD_KEY_Z85_LEN 40
#define COORD_KEY_BIN_LEN 32

struct coord_keypair {
	char public_z85[COORD_KEY_Z85_LEN + 1];
	char secret_z85[COORD_KEY_Z85_LEN + 1]; /* "" when the file holds only a public key */
};

struct coord_authkey {
	char name[COORD_PRINCIPAL_MAX + 1];
	char z85[COORD_KEY_Z85_LEN + 1];
	uint8_t key[COORD_KEY_BIN_LEN];
};

struct coord_authkeys {
	struct coord_authkey *v;
	size_t n;
};

/* Check one Z85 key text: COORD_OK, or COORD_EBADARG with what is wrong in err; bin may be NULL. */
int coord_key_z85_check(const char *z85, size_t len, uint8_t bin[COORD_KEY_BIN_LEN], char *err, size_t errlen);
/*
 * Read a key file. need_secret: the file must hold a secret key (a server's or a client's own key);
 * when it holds both, they must belong together. COORD_OK or COORD_EBADCONFIG with a message
 * naming the file (and the line).
 */
int coord_key_load(const char *file, int need_secret, struct coord_keypair *kp, char *err, size_t errlen);
/* Parse the text of a key file (for coord_key_load and tests); `file` only names it in messages. */
int coord_key_parse(const char *text, size_t len, const char *file, int need_secret, struct coord_keypair *kp,
		    char *err, size_t errlen);
/*
 * Make a new key pair and write NAME.key (0600) and NAME.pub next to each other. Refuses to
 * overwrite unless force. COORD_OK, or COORD_ENODEEXISTS / COORD_EIO with a message.
 */
int coord_key_generate(const char *name, int force, char *keyfile, char *pubfile, size_t pathlen, char *err,
		       size_t errlen);

/* Read an authorised-keys file (all or nothing). COORD_OK or COORD_EBADCONFIG with FILE:LINE: why. */
int coord_authkeys_load(const char *file, struct coord_authkeys *out, char *err, size_t errlen);
int coord_authkeys_parse(const char *text, size_t len, const char *file, struct coord_authkeys *out, char *err,
			 size_t errlen);
void coord_authkeys_free(struct coord_authkeys *ak);
/* The entry for a 32-byte public key, or NULL. */
const struct coord_authkey *coord_authkeys_find(const struct coord_authkeys *ak, const uint8_t *key);

#endif
