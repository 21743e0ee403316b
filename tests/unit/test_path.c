/*
 * test_path.c: the path rules (common/path.c): which paths are accepted, which are refused with
 * which code and which reason, and the parent/base/under helpers.
 */
#include <string.h>

#include "check.h"
#include "err.h"
#include "path.h"
#include "wire.h"

static char why[256];

static int check_n(const char *p, size_t len, int seq)
{
	why[0] = 'X';
	why[1] = '\0';
	int rc = coord_path_check(p, len, seq, why, sizeof(why));
	if (rc == COORD_OK)
		CHECK_STR(why, "");
	else
		CHECK(why[0] != '\0' && strcmp(why, "X") != 0);
	return rc;
}

static int check(const char *p, int seq) { return check_n(p, strlen(p), seq); }

#define CHECK_HAS(hay, needle)                                                                \
	do {                                                                                  \
		if (!strstr((hay), (needle))) {                                               \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,  \
				__LINE__, (hay), (needle));                                   \
			exit(1);                                                              \
		}                                                                             \
	} while (0)

/* A path made of `ncomp` components of `n` bytes each ('a'...), plus `extra` appended. */
static const char *long_path(size_t ncomp, size_t n, const char *extra)
{
	static char p[3 * COORD_MAX_PATH];
	size_t o = 0;
	for (size_t c = 0; c < ncomp; c++) {
		p[o++] = '/';
		memset(p + o, 'a', n);
		o += n;
	}
	strcpy(p + o, extra);
	return p;
}

static void test_good_paths_are_accepted(void)
{
	static const char *good[] = {
		"/", "/a", "/a/b", "/app/config", "/a.b", "/a/.hidden", "/a/..b", "/a/b..", "/a/...",
		"/with space", "/dash-and_under", "/caf\xc3\xa9",       /* é */
		"/\xe2\x82\xac", "/\xf0\x9f\x98\x80", "/\xf4\x8f\xbf\xbf", /* €, emoji, U+10FFFF */
		"/\xed\x9f\xbf", "/\xee\x80\x80",                        /* around the surrogates */
		"/0000000042", "/locks/deploy",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (check(good[i], 0) != COORD_OK) {
			fprintf(stderr, "refused %s: %s\n", good[i], why);
			exit(1);
		}
		CHECK_EQ(check(good[i], 1), COORD_OK);
	}
}

static void test_relative_and_empty_paths_are_refused(void)
{
	CHECK_EQ(check("", 0), COORD_EBADPATH);
	CHECK_STR(why, "the path is empty");
	CHECK_EQ(check("a/b", 0), COORD_EBADPATH);
	CHECK_STR(why, "the path must start with '/'");
	CHECK_EQ(check("./a", 1), COORD_EBADPATH);
}

static void test_empty_components_are_refused_with_their_position(void)
{
	CHECK_EQ(check("/a//b", 0), COORD_EBADPATH);
	CHECK_STR(why, "empty component at byte 3");
	CHECK_EQ(check("//", 0), COORD_EBADPATH);
	CHECK_STR(why, "empty component at byte 1");
	CHECK_EQ(check("//a", 1), COORD_EBADPATH);
	CHECK_STR(why, "empty component at byte 1");
	CHECK_EQ(check("/a//", 1), COORD_EBADPATH);
	CHECK_STR(why, "empty component at byte 3");
}

static void test_trailing_slash_only_for_sequential(void)
{
	CHECK_EQ(check("/a/", 0), COORD_EBADPATH);
	CHECK_HAS(why, "trailing '/' at byte 2");
	CHECK_EQ(check("/q/", 1), COORD_OK);
	CHECK_EQ(check("/a/b/", 1), COORD_OK);
	CHECK_EQ(check("/", 1), COORD_OK);
}

static void test_dot_components_are_refused(void)
{
	CHECK_EQ(check("/a/..", 0), COORD_EBADPATH);
	CHECK_HAS(why, "component '..' is not allowed");
	CHECK_HAS(why, "byte 3");
	CHECK_EQ(check("/a/./b", 0), COORD_EBADPATH);
	CHECK_HAS(why, "component '.' is not allowed");
	CHECK_EQ(check("/..", 0), COORD_EBADPATH);
	CHECK_HAS(why, "component '..' is not allowed");
	CHECK_EQ(check("/.", 1), COORD_EBADPATH);
	CHECK_EQ(check("/a/../", 1), COORD_EBADPATH);
}

static void test_control_characters_are_refused(void)
{
	CHECK_EQ(check("/abc\x01", 0), COORD_EBADPATH);
	CHECK_STR(why, "control character 0x01 at byte 4");
	CHECK_EQ(check("/a\x7f", 0), COORD_EBADPATH);
	CHECK_STR(why, "control character 0x7f at byte 2");
	CHECK_EQ(check("/a\nb", 0), COORD_EBADPATH);
	CHECK_STR(why, "control character 0x0a at byte 2");
	CHECK_EQ(check("/a/b\x1f", 1), COORD_EBADPATH);
	/* an embedded NUL: the length says where the path ends, not the terminator */
	CHECK_EQ(check_n("/a\0b", 4, 0), COORD_EBADPATH);
	CHECK_STR(why, "control character 0x00 at byte 2");
}

static void test_invalid_utf8_is_refused(void)
{
	static const struct {
		const char *p, *reason;
	} bad[] = {
		{"/\xc0\xaf", "overlong"},            /* '/' in two bytes */
		{"/\xc1\xbf", "overlong"},
		{"/\xe0\x80\xaf", "overlong"},        /* '/' in three bytes */
		{"/\xf0\x80\x80\xaf", "overlong"},    /* '/' in four bytes */
		{"/\xed\xa0\x80", "surrogate"},       /* U+D800 */
		{"/\xed\xbf\xbf", "surrogate"},       /* U+DFFF */
		{"/\xf4\x90\x80\x80", "U+10FFFF"},    /* U+110000 */
		{"/\xf7\xbf\xbf\xbf", "U+10FFFF"},
		{"/\xf8\x88\x80\x80\x80", "lead byte"},
		{"/\xff", "lead byte"},
		{"/\x80", "continuation"},
		{"/a\xc3", "truncated"},
		{"/a\xe2\x82/b", "truncated"},
		{"/\xe2\x82", "truncated"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(check(bad[i].p, 0), COORD_EBADPATH);
		CHECK_HAS(why, "invalid UTF-8 at byte");
		CHECK_HAS(why, bad[i].reason);
	}
	CHECK_EQ(check("/ab\xed\xa0\x80", 0), COORD_EBADPATH);
	CHECK_HAS(why, "at byte 3");
}

static void test_reserved_root_names_are_refused(void)
{
	CHECK_EQ(check("/.watch", 0), COORD_EBADPATH);
	CHECK_STR(why, "names starting with '.' at the root are reserved for the mount's special files");
	CHECK_EQ(check("/.history/a", 0), COORD_EBADPATH);
	CHECK_EQ(check("/.q", 1), COORD_EBADPATH);
	CHECK_EQ(check("/.x/", 1), COORD_EBADPATH);
	/* deeper down a leading '.' is an ordinary name */
	CHECK_EQ(check("/a/.watch", 0), COORD_OK);
}

static void test_component_length_limit(void)
{
	CHECK_EQ(check(long_path(1, COORD_MAX_NAME, ""), 0), COORD_OK);
	CHECK_EQ(check(long_path(1, COORD_MAX_NAME + 1, ""), 0), COORD_ENAMETOOLONG);
	CHECK_STR(why, "component at byte 1 is 256 bytes, the limit is 255");
	CHECK_EQ(check(long_path(3, COORD_MAX_NAME + 1, ""), 0), COORD_ENAMETOOLONG);
	CHECK_HAS(why, "component at byte 1 ");
	/* a multi-byte character counts by its bytes */
	char p[COORD_MAX_NAME + 4];
	p[0] = '/';
	for (int i = 0; i < 128; i++)
		memcpy(p + 1 + 2 * i, "\xc3\xa9", 2);
	p[257] = '\0';
	CHECK_EQ(check(p, 0), COORD_ENAMETOOLONG);
}

static void test_sequential_last_component_leaves_room_for_the_suffix(void)
{
	size_t room = COORD_MAX_NAME - 10;
	CHECK_EQ(check(long_path(1, room, ""), 1), COORD_OK);
	CHECK_EQ(check(long_path(1, room + 1, ""), 1), COORD_ENAMETOOLONG);
	CHECK_HAS(why, "the limit is 245");
	CHECK_HAS(why, "10-digit");
	/* only the last component: a parent may use the whole limit */
	CHECK_EQ(check(long_path(2, COORD_MAX_NAME, ""), 1), COORD_ENAMETOOLONG);
	char p[2 * COORD_MAX_NAME];
	strcpy(p, long_path(1, COORD_MAX_NAME, "/job"));
	CHECK_EQ(check(p, 1), COORD_OK);
	strcpy(p, long_path(1, COORD_MAX_NAME, "/"));
	CHECK_EQ(check(p, 1), COORD_OK);
	/* without sequential the full limit holds */
	CHECK_EQ(check(long_path(1, room + 1, ""), 0), COORD_OK);
}

static void test_whole_path_length_limit(void)
{
	/* 16 components of 255 plus '/' = 4096 bytes exactly */
	const char *p = long_path(16, COORD_MAX_NAME, "");
	CHECK_EQ(strlen(p), COORD_MAX_PATH);
	CHECK_EQ(check(p, 0), COORD_OK);
	p = long_path(16, COORD_MAX_NAME, "/");
	CHECK_EQ(check(p, 0), COORD_ENAMETOOLONG);
	CHECK_STR(why, "the path is 4097 bytes, the limit is 4096");
	/* sequential: the created path must fit, suffix included */
	p = long_path(16, COORD_MAX_NAME - 1, "/abcdefghi");
	CHECK_EQ(strlen(p), 4090);
	CHECK_EQ(check(p, 0), COORD_OK);
	CHECK_EQ(check(p, 1), COORD_ENAMETOOLONG);
	CHECK_HAS(why, "the path is 4090 bytes, the limit is 4086");
	p = long_path(16, COORD_MAX_NAME - 1, "/abcde"); /* 4086 */
	CHECK_EQ(check(p, 1), COORD_OK);
	/* far too long and also broken: the length is reported */
	p = long_path(40, 200, "//");
	CHECK_EQ(check(p, 0), COORD_ENAMETOOLONG);
}

static void test_first_fault_is_reported(void)
{
	CHECK_EQ(check("/a//b/\x01", 0), COORD_EBADPATH);
	CHECK_STR(why, "empty component at byte 3");
	CHECK_EQ(check("/a\x01//b", 0), COORD_EBADPATH);
	CHECK_STR(why, "control character 0x01 at byte 2");
}

static void test_null_error_buffer_is_allowed(void)
{
	CHECK_EQ(coord_path_check("/a//b", 5, 0, NULL, 0), COORD_EBADPATH);
	CHECK_EQ(coord_path_check("/a", 2, 0, NULL, 0), COORD_OK);
	char tiny[6];
	CHECK_EQ(coord_path_check("/a//b", 5, 0, tiny, sizeof(tiny)), COORD_EBADPATH);
	CHECK_STR(tiny, "empty");
}

static void test_check_stops_at_the_given_length(void)
{
	/* the bytes after len are not part of the path */
	CHECK_EQ(check_n("/ab//", 3, 0), COORD_OK);
	CHECK_EQ(check_n("/a/b", 2, 0), COORD_OK);
	CHECK_EQ(check_n("/a/b", 3, 0), COORD_EBADPATH);
}

static size_t parent(const char *p) { return coord_path_parent_len(p, strlen(p)); }
static size_t base(const char *p) { return coord_path_base_off(p, strlen(p)); }

static void test_parent_and_base(void)
{
	CHECK_EQ(parent("/a/b"), 2);
	CHECK_EQ(parent("/a"), 1);
	CHECK_EQ(parent("/"), 0);
	CHECK_EQ(parent("/app/config/x"), 11);
	CHECK_EQ(parent("/q/"), 2); /* a sequential create's parent */
	CHECK_EQ(base("/a/b"), 3);
	CHECK_EQ(base("/a"), 1);
	CHECK_EQ(base("/"), 1);
	CHECK_EQ(base("/app/config"), 5);
	CHECK_EQ(base("/q/"), 3); /* empty base: the suffix alone */
}

static int under(const char *p, const char *prefix)
{
	return coord_path_under(p, strlen(p), prefix, strlen(prefix));
}

static void test_under(void)
{
	CHECK(under("/a/b", "/a"));
	CHECK(under("/a", "/a"));
	CHECK(under("/a/b/c", "/a/b"));
	CHECK(under("/a", "/"));
	CHECK(under("/", "/"));
	CHECK(!under("/ab", "/a"));
	CHECK(!under("/a", "/a/b"));
	CHECK(!under("/b/a", "/a"));
	CHECK(!under("/", "/a"));
}

int main(void)
{
	RUN(test_good_paths_are_accepted);
	RUN(test_relative_and_empty_paths_are_refused);
	RUN(test_empty_components_are_refused_with_their_position);
	RUN(test_trailing_slash_only_for_sequential);
	RUN(test_dot_components_are_refused);
	RUN(test_control_characters_are_refused);
	RUN(test_invalid_utf8_is_refused);
	RUN(test_reserved_root_names_are_refused);
	RUN(test_component_length_limit);
	RUN(test_sequential_last_component_leaves_room_for_the_suffix);
	RUN(test_whole_path_length_limit);
	RUN(test_first_fault_is_reported);
	RUN(test_null_error_buffer_is_allowed);
	RUN(test_check_stops_at_the_given_length);
	RUN(test_parent_and_base);
	RUN(test_under);
	fprintf(stderr, "test_path: all passed\n");
	return 0;
}
