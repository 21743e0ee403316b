/*
 * test_curve.c: key files and authorised-keys lists (common/curve.c): what is accepted, and that
 * every refusal names the file and line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "check.h"
#include "curve.h"
#include "err.h"

static char pub[41], sec[41], pub2[41], sec2[41];

static int parse_key(const char *text, int need_secret, struct coord_keypair *kp, char *err)
{
	return coord_key_parse(text, strlen(text), "k.key", need_secret, kp, err, 300);
}

static void test_key_file_pair_and_public(void)
{
	char text[400], err[300];
	struct coord_keypair kp;
	snprintf(text, sizeof text, "# comment\n\n  public-key = %s  \nsecret-key=%s\n", pub, sec);
	CHECK_EQ(parse_key(text, 1, &kp, err), COORD_OK);
	CHECK_STR(kp.public_z85, pub);
	CHECK_STR(kp.secret_z85, sec);
	snprintf(text, sizeof text, "public-key = %s\n", pub);
	CHECK_EQ(parse_key(text, 0, &kp, err), COORD_OK);
	CHECK_STR(kp.public_z85, pub);
	CHECK_STR(kp.secret_z85, "");
	/* a secret key alone: the public half is derived */
	snprintf(text, sizeof text, "secret-key = %s\n", sec);
	CHECK_EQ(parse_key(text, 1, &kp, err), COORD_OK);
	CHECK_STR(kp.public_z85, pub);
}

static void test_key_file_refusals_name_the_line(void)
{
	char text[400], err[300];
	struct coord_keypair kp;
	snprintf(text, sizeof text, "public-key = %s\n", pub);
	CHECK_EQ(parse_key(text, 1, &kp, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "k.key") && strstr(err, "no secret-key"));
	CHECK_EQ(parse_key("# x\npublic-key = short\n", 0, &kp, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "k.key:2:") && strstr(err, "40"));
	/* 40 characters, but not Z85 (a quote is outside the alphabet) */
	CHECK_EQ(parse_key("public-key = \"bcdefghijklmnopqrstuvwxyzabcdefghijklmno\n", 0, &kp, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "k.key:1:") && strstr(err, "Z85"));
	CHECK_EQ(parse_key("hello\n", 0, &kp, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "k.key:1:"));
	snprintf(text, sizeof text, "private = %s\n", pub);
	CHECK_EQ(parse_key(text, 0, &kp, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "unknown key"));
	snprintf(text, sizeof text, "public-key = %s\npublic-key = %s\n", pub, pub);
	CHECK_EQ(parse_key(text, 0, &kp, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "k.key:2:") && strstr(err, "twice"));
	snprintf(text, sizeof text, "public-key = %s\nsecret-key = %s\n", pub2, sec);
	CHECK_EQ(parse_key(text, 1, &kp, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "does not belong"));
	CHECK_EQ(parse_key("# nothing\n", 0, &kp, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "no public-key"));
}

static void test_keygen_writes_loadable_files_and_refuses_to_overwrite(void)
{
	char dir[] = "/tmp/test_curve.XXXXXX";
	CHECK(mkdtemp(dir));
	char name[100], kf[200], pf[200], err[300];
	snprintf(name, sizeof name, "%s/admin", dir);
	CHECK_EQ(coord_key_generate(name, 0, kf, pf, sizeof kf, err, sizeof err), COORD_OK);
	struct stat st;
	CHECK(stat(kf, &st) == 0 && (st.st_mode & 0777) == 0600);
	struct coord_keypair a, b;
	CHECK_EQ(coord_key_load(kf, 1, &a, err, sizeof err), COORD_OK);
	CHECK_EQ(coord_key_load(pf, 0, &b, err, sizeof err), COORD_OK);
	CHECK_STR(a.public_z85, b.public_z85);
	CHECK_EQ(coord_key_load(pf, 1, &b, err, sizeof err), COORD_EBADCONFIG);
	CHECK_EQ(coord_key_generate(name, 0, kf, pf, sizeof kf, err, sizeof err), COORD_ENODEEXISTS);
	CHECK(strstr(err, "--force"));
	CHECK_EQ(coord_key_generate(name, 1, kf, pf, sizeof kf, err, sizeof err), COORD_OK);
	CHECK_EQ(coord_key_load(kf, 1, &b, err, sizeof err), COORD_OK);
	CHECK(strcmp(a.public_z85, b.public_z85) != 0);
	snprintf(name, sizeof name, "%s/nodir/x", dir);
	CHECK_EQ(coord_key_generate(name, 0, kf, pf, sizeof kf, err, sizeof err), COORD_EIO);
	CHECK(strstr(err, "cannot write"));
	CHECK_EQ(coord_key_load("/nonexistent/k.key", 1, &a, err, sizeof err), COORD_EBADCONFIG);
	CHECK(strstr(err, "/nonexistent/k.key"));
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

static int parse_ak(const char *text, struct coord_authkeys *ak, char *err)
{
	return coord_authkeys_parse(text, strlen(text), "authorized_keys", ak, err, 300);
}

static void test_authorized_keys(void)
{
	char text[600], err[300];
	struct coord_authkeys ak;
	snprintf(text, sizeof text, "# who may connect\n\nadmin %s\n  web.1@host\t%s  \n# end\n", pub, pub2);
	CHECK_EQ(parse_ak(text, &ak, err), COORD_OK);
	CHECK_EQ(ak.n, 2);
	CHECK_STR(ak.v[0].name, "admin");
	CHECK_STR(ak.v[1].name, "web.1@host");
	uint8_t bin[32];
	CHECK(zmq_z85_decode(bin, pub2));
	const struct coord_authkey *k = coord_authkeys_find(&ak, bin);
	CHECK(k && strcmp(k->name, "web.1@host") == 0);
	bin[0] ^= 1;
	CHECK(!coord_authkeys_find(&ak, bin));
	coord_authkeys_free(&ak);
	/* empty file: nobody */
	CHECK_EQ(parse_ak("", &ak, err), COORD_OK);
	CHECK_EQ(ak.n, 0);
	coord_authkeys_free(&ak);
}

static void test_authorized_keys_refusals_name_the_line(void)
{
	char text[600], err[300];
	struct coord_authkeys ak;
	snprintf(text, sizeof text, "admin %s\nbroken\n", pub);
	CHECK_EQ(parse_ak(text, &ak, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "authorized_keys:2:") && strstr(err, "PRINCIPAL Z85KEY"));
	snprintf(text, sizeof text, "\n\nbad/name %s\n", pub);
	CHECK_EQ(parse_ak(text, &ak, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "authorized_keys:3:") && strstr(err, "principal name"));
	CHECK_EQ(parse_ak("admin tooshort\n", &ak, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "authorized_keys:1:") && strstr(err, "admin"));
	snprintf(text, sizeof text, "a %s\nb %s\n", pub, pub);
	CHECK_EQ(parse_ak(text, &ak, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "authorized_keys:2:") && strstr(err, "already listed for 'a'"));
	snprintf(text, sizeof text, "a %s extra\n", pub);
	CHECK_EQ(parse_ak(text, &ak, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "authorized_keys:1:"));
	snprintf(text, sizeof text, "admin public-key = %s\n", pub);
	CHECK_EQ(parse_ak(text, &ak, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "authorized_keys:1:"));
	char longname[100];
	memset(longname, 'x', 65);
	longname[65] = 0;
	snprintf(text, sizeof text, "%s %s\n", longname, pub);
	CHECK_EQ(parse_ak(text, &ak, err), COORD_EBADCONFIG);
	CHECK(strstr(err, "principal name"));
}

int main(void)
{
	CHECK(zmq_curve_keypair(pub, sec) == 0);
	CHECK(zmq_curve_keypair(pub2, sec2) == 0);
	RUN(test_key_file_pair_and_public);
	RUN(test_key_file_refusals_name_the_line);
	RUN(test_keygen_writes_loadable_files_and_refuses_to_overwrite);
	RUN(test_authorized_keys);
	RUN(test_authorized_keys_refusals_name_the_line);
	return 0;
}
