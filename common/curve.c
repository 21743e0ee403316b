/*
 * curve.c: CurveZMQ key files and authorised-keys lists (see curve.h).
 *
 * Both formats are line based and read all or nothing: a half-understood key list could admit
 * someone it should not, or lock everyone out, so the first bad line stops the reading and is
 * named as FILE:LINE with what was expected.
 */
#include "curve.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "log.h"

#define KEYFILE_MAX (64u << 10)
#define AUTHFILE_MAX (16u << 20)

int coord_key_z85_check(const char *z85, size_t len, uint8_t bin[COORD_KEY_BIN_LEN], char *err, size_t errlen)
{
	if (len != COORD_KEY_Z85_LEN) {
		coord_seterr(err, errlen, "a key is %d Z85 characters, this one has %zu", COORD_KEY_Z85_LEN, len);
		return COORD_EBADARG;
	}
	char txt[COORD_KEY_Z85_LEN + 1];
	memcpy(txt, z85, len);
	txt[len] = '\0';
	uint8_t tmp[COORD_KEY_BIN_LEN];
	if (!zmq_z85_decode(tmp, txt)) {
		coord_seterr(err, errlen, "'%s' is not Z85 text (expected 40 characters of 0-9a-zA-Z.-:+=^!/*?&<>()[]{}@%%$#)",
		       txt);
		return COORD_EBADARG;
	}
	if (bin)
		memcpy(bin, tmp, sizeof(tmp));
	return COORD_OK;
}

/* Read a whole small file into a NUL-terminated malloc'd buffer. */
static int slurp(const char *file, size_t max, char **out, size_t *len, char *err, size_t errlen)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		coord_seterr(err, errlen, "cannot read %s: %s", file, strerror(errno));
		return COORD_EBADCONFIG;
	}
	char *buf = malloc(max + 1);
	size_t n = 0;
	ssize_t r = 0;
	while (buf && n <= max && (r = read(fd, buf + n, max + 1 - n)) > 0)
		n += (size_t)r;
	int e = errno;
	close(fd);
	if (!buf) {
		coord_seterr(err, errlen, "%s: out of memory", file);
		return COORD_ENOMEM;
	}
	if (r < 0) {
		free(buf);
		coord_seterr(err, errlen, "cannot read %s: %s", file, strerror(e));
		return COORD_EBADCONFIG;
	}
	if (n > max) {
		free(buf);
		coord_seterr(err, errlen, "%s: the file is larger than %zu bytes (is it the right file?)", file, max);
		return COORD_EBADCONFIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return COORD_OK;
}

/* Next line of text[*pos..len): trimmed, in out (NUL-terminated); 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, char *out, size_t outlen, int *too_long)
{
	if (*pos >= len)
		return 0;
	const char *s = text + *pos;
	const char *nl = memchr(s, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - s) : len - *pos;
	*pos += n + (nl ? 1 : 0);
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	*too_long = n >= outlen;
	if (*too_long)
		n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

int coord_key_parse(const char *text, size_t len, const char *file, int need_secret, struct coord_keypair *kp,
		    char *err, size_t errlen)
{
	memset(kp, 0, sizeof(*kp));
	char line[256], why[200];
	size_t pos = 0;
	int ln = 0, too_long;
	if (memchr(text, '\0', len)) {
		coord_seterr(err, errlen, "%s: not a text file (expected a coordfs key file from 'coordctl keygen')", file);
		return COORD_EBADCONFIG;
	}
	while (next_line(text, len, &pos, line, sizeof(line), &too_long)) {
		ln++;
		if (!line[0] || line[0] == '#')
			continue;
		char *eq = strchr(line, '=');
		if (too_long || !eq) {
			coord_seterr(err, errlen, "%s:%d: not a key line (expected 'public-key = Z85' or 'secret-key = Z85')",
			       file, ln);
			return COORD_EBADCONFIG;
		}
		*eq = '\0';
		char *k = line, *v = eq + 1;
		size_t kl = strlen(k);
		while (kl && isspace((unsigned char)k[kl - 1]))
			k[--kl] = '\0';
		while (isspace((unsigned char)*v))
			v++;
		char *dst;
		if (strcmp(k, "public-key") == 0)
			dst = kp->public_z85;
		else if (strcmp(k, "secret-key") == 0)
			dst = kp->secret_z85;
		else {
			coord_seterr(err, errlen, "%s:%d: unknown key '%.40s' (expected public-key or secret-key)", file, ln, k);
			return COORD_EBADCONFIG;
		}
		if (dst[0]) {
			coord_seterr(err, errlen, "%s:%d: %s given twice", file, ln, k);
			return COORD_EBADCONFIG;
		}
		if (coord_key_z85_check(v, strlen(v), NULL, why, sizeof(why))) {
			coord_seterr(err, errlen, "%s:%d: %s: %s", file, ln, k, why);
			return COORD_EBADCONFIG;
		}
		memcpy(dst, v, COORD_KEY_Z85_LEN + 1);
	}
	if (need_secret && !kp->secret_z85[0]) {
		coord_seterr(err, errlen, "%s: no secret-key line (this looks like a public key file: give the .key file "
		       "that 'coordctl keygen' wrote)", file);
		return COORD_EBADCONFIG;
	}
	if (kp->secret_z85[0]) {
		char pub[COORD_KEY_Z85_LEN + 1];
		if (zmq_curve_public(pub, kp->secret_z85) != 0) {
			coord_seterr(err, errlen, "%s: cannot derive the public key: %s", file, zmq_strerror(errno));
			return COORD_EBADCONFIG;
		}
		if (kp->public_z85[0] && strcmp(pub, kp->public_z85) != 0) {
			coord_seterr(err, errlen, "%s: public-key does not belong to secret-key (expected the pair written "
			       "by 'coordctl keygen')", file);
			return COORD_EBADCONFIG;
		}
		memcpy(kp->public_z85, pub, sizeof(pub));
	}
	if (!kp->public_z85[0]) {
		coord_seterr(err, errlen, "%s: no public-key line (expected a key file written by 'coordctl keygen')", file);
		return COORD_EBADCONFIG;
	}
	return COORD_OK;
}

int coord_key_load(const char *file, int need_secret, struct coord_keypair *kp, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = slurp(file, KEYFILE_MAX, &text, &len, err, errlen);
	if (rc)
		return rc;
	rc = coord_key_parse(text, len, file, need_secret, kp, err, errlen);
	free(text);
	struct stat st;
	if (rc == COORD_OK && kp->secret_z85[0] && stat(file, &st) == 0 && (st.st_mode & 077))
		LOG_WARN("%s holds a secret key and is readable by others (mode %03o): chmod 600 %s", file,
			 (unsigned)(st.st_mode & 0777), file);
	return rc;
}

static int write_file(const char *path, int mode, int force, const char *text, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), mode);
	if (fd < 0) {
		if (errno == EEXIST) {
			coord_seterr(err, errlen, "%s already exists (use --force to replace it)", path);
			return COORD_ENODEEXISTS;
		}
		coord_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return COORD_EIO;
	}
	size_t len = strlen(text);
	int ok = write(fd, text, len) == (ssize_t)len && fchmod(fd, (mode_t)mode) == 0 && fsync(fd) == 0;
	int e = errno;
	if (close(fd) != 0)
		ok = 0;
	if (!ok) {
		coord_seterr(err, errlen, "cannot write %s: %s", path, strerror(e));
		unlink(path);
		return COORD_EIO;
	}
	return COORD_OK;
}

int coord_key_generate(const char *name, int force, char *keyfile, char *pubfile, size_t pathlen, char *err,
		       size_t errlen)
{
	char pub[COORD_KEY_Z85_LEN + 1], sec[COORD_KEY_Z85_LEN + 1];
	if (zmq_curve_keypair(pub, sec) != 0) {
		coord_seterr(err, errlen, "cannot make a CURVE key pair: %s (is libzmq built with CURVE?)", zmq_strerror(errno));
		return COORD_EIO;
	}
	if ((size_t)snprintf(keyfile, pathlen, "%s.key", name) >= pathlen ||
	    (size_t)snprintf(pubfile, pathlen, "%s.pub", name) >= pathlen) {
		coord_seterr(err, errlen, "%s: the name is too long", name);
		return COORD_EBADARG;
	}
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	char text[512];
	if (!force) {
		struct stat st;
		if (stat(keyfile, &st) == 0 || stat(pubfile, &st) == 0) {
			coord_seterr(err, errlen, "%s already exists (use --force to replace it)",
			       stat(keyfile, &st) == 0 ? keyfile : pubfile);
			return COORD_ENODEEXISTS;
		}
	}
	snprintf(text, sizeof(text),
		 "# coordfs CURVE key pair '%s' (coordctl keygen). Keep this file secret (mode 0600).\n"
		 "# Its public half is in %s.pub.\n"
		 "public-key = %s\n"
		 "secret-key = %s\n", base, base, pub, sec);
	int rc = write_file(keyfile, 0600, force, text, err, errlen);
	if (rc)
		return rc;
	snprintf(text, sizeof(text),
		 "# coordfs CURVE public key '%s' (coordctl keygen). Not secret: give it to whoever must\n"
		 "# recognise this key (a client's goes in the servers' authorizedKeysFile as 'NAME KEY').\n"
		 "public-key = %s\n", base, pub);
	rc = write_file(pubfile, 0644, force, text, err, errlen);
	if (rc)
		unlink(keyfile);
	return rc;
}

static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > COORD_PRINCIPAL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != '@')
			return 0;
	}
	return 1;
}

int coord_authkeys_parse(const char *text, size_t len, const char *file, struct coord_authkeys *out, char *err,
			 size_t errlen)
{
	struct coord_authkeys ak = {NULL, 0};
	size_t cap = 0, pos = 0;
	char line[512], why[200];
	int ln = 0, too_long, rc = COORD_EBADCONFIG;
	if (memchr(text, '\0', len)) {
		coord_seterr(err, errlen, "%s: not a text file (expected lines 'PRINCIPAL Z85KEY')", file);
		return COORD_EBADCONFIG;
	}
	while (next_line(text, len, &pos, line, sizeof(line), &too_long)) {
		ln++;
		if (!line[0] || line[0] == '#')
			continue;
		char *sp = line;
		while (*sp && !isspace((unsigned char)*sp))
			sp++;
		size_t nl = (size_t)(sp - line);
		char *key = sp;
		while (*key && isspace((unsigned char)*key))
			key++;
		if (too_long || !*key || strpbrk(key, " \t")) {
			coord_seterr(err, errlen, "%s:%d: expected 'PRINCIPAL Z85KEY' (a name, blanks, a 40-character key)", file,
			       ln);
			goto fail;
		}
		if (!name_ok(line, nl)) {
			line[nl] = '\0';
			coord_seterr(err, errlen, "%s:%d: '%.64s' is not a principal name (expected 1..%d of A-Z a-z 0-9 . _ - @)",
			       file, ln, line, COORD_PRINCIPAL_MAX);
			goto fail;
		}
		struct coord_authkey e;
		memset(&e, 0, sizeof(e));
		memcpy(e.name, line, nl);
		if (strncmp(key, "public-key", 10) == 0 || coord_key_z85_check(key, strlen(key), e.key, why, sizeof(why))) {
			if (strncmp(key, "public-key", 10) == 0)
				snprintf(why, sizeof(why), "give the key itself (the text after 'public-key =' in the .pub file)");
			coord_seterr(err, errlen, "%s:%d: %s: %s", file, ln, e.name, why);
			goto fail;
		}
		memcpy(e.z85, key, COORD_KEY_Z85_LEN + 1);
		for (size_t i = 0; i < ak.n; i++)
			if (memcmp(ak.v[i].key, e.key, COORD_KEY_BIN_LEN) == 0) {
				coord_seterr(err, errlen, "%s:%d: %s: this key is already listed for '%s' (one key, one principal)",
				       file, ln, e.name, ak.v[i].name);
				goto fail;
			}
		if (ak.n == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct coord_authkey *v = realloc(ak.v, c * sizeof(*v));
			if (!v) {
				coord_seterr(err, errlen, "%s: out of memory", file);
				rc = COORD_ENOMEM;
				goto fail;
			}
			ak.v = v;
			cap = c;
		}
		ak.v[ak.n++] = e;
	}
	*out = ak;
	return COORD_OK;
fail:
	free(ak.v);
	return rc;
}

int coord_authkeys_load(const char *file, struct coord_authkeys *out, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = slurp(file, AUTHFILE_MAX, &text, &len, err, errlen);
	if (rc)
		return rc;
	rc = coord_authkeys_parse(text, len, file, out, err, errlen);
	free(text);
	return rc;
}

void coord_authkeys_free(struct coord_authkeys *ak)
{
	free(ak->v);
	ak->v = NULL;
	ak->n = 0;
}

const struct coord_authkey *coord_authkeys_find(const struct coord_authkeys *ak, const uint8_t *key)
{
	for (size_t i = 0; i < ak->n; i++)
		if (memcmp(ak->v[i].key, key, COORD_KEY_BIN_LEN) == 0)
			return &ak->v[i];
	return NULL;
}
