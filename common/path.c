/*
 * path.c: ZooKeeper's path rules (coord_path_check) and the few path manipulations coordfs needs.
 *
 * The check walks the path once, component by component, and stops at the first fault with a
 * message that names it and its byte offset, so a user who typed a bad name learns which part is
 * wrong. Nothing here allocates or needs a NUL terminator.
 */
#include "path.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "wire.h"

#define SEQ_DIGITS 10 /* the suffix a sequential create appends */

__attribute__((format(printf, 4, 5))) static int fail(int code, char *err, size_t errlen,
						       const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/*
 * Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 with *why saying what is wrong.
 * Rejects what RFC 3629 rejects: overlong forms, surrogates, code points above U+10FFFF.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, const char **why)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c < 0xc0) {
		*why = "unexpected continuation byte";
		return 0;
	} else if (c < 0xe0) {
		len = 2, cp = c & 0x1f, min = 0x80;
	} else if (c < 0xf0) {
		len = 3, cp = c & 0x0f, min = 0x800;
	} else if (c < 0xf8) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		*why = "invalid lead byte";
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if (i >= n || (s[i] & 0xc0) != 0x80) {
			*why = "truncated sequence";
			return 0;
		}
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min)
		*why = "overlong encoding";
	else if (cp >= 0xd800 && cp <= 0xdfff)
		*why = "UTF-16 surrogate";
	else if (cp > 0x10ffff)
		*why = "code point beyond U+10FFFF";
	else
		return len;
	return 0;
}

/* The characters of one component p[off..off+n): UTF-8, no control characters. */
static int check_chars(const char *p, size_t off, size_t n, char *err, size_t errlen)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = off, end = off + n;
	while (i < end) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return fail(COORD_EBADPATH, err, errlen, "control character 0x%02x at byte %zu",
				    s[i], i);
		const char *why = NULL;
		size_t k = utf8_seq(s + i, end - i, &why);
		if (k == 0)
			return fail(COORD_EBADPATH, err, errlen, "invalid UTF-8 at byte %zu (%s)", i, why);
		i += k;
	}
	return COORD_OK;
}

/* One component p[off..off+n), not the last one's trailing-slash case (handled by the caller). */
static int check_component(const char *p, size_t off, size_t n, int first, size_t max,
			   char *err, size_t errlen)
{
	if (n == 0)
		return fail(COORD_EBADPATH, err, errlen, "empty component at byte %zu", off);
	if ((n == 1 && p[off] == '.') || (n == 2 && p[off] == '.' && p[off + 1] == '.'))
		return fail(COORD_EBADPATH, err, errlen, "component '%.*s' is not allowed (at byte %zu)",
			    (int)n, p + off, off);
	int rc = check_chars(p, off, n, err, errlen);
	if (rc)
		return rc;
	if (n > max)
		return fail(COORD_ENAMETOOLONG, err, errlen,
			    "component at byte %zu is %zu bytes, the limit is %zu%s", off, n, max,
			    max < COORD_MAX_NAME ? " (room is kept for the 10-digit sequence suffix)" : "");
	if (first && p[off] == '.')
		return fail(COORD_EBADPATH, err, errlen,
			    "names starting with '.' at the root are reserved for the mount's special files");
	return COORD_OK;
}

int coord_path_check(const char *p, size_t len, int sequential, char *err, size_t errlen)
{
	size_t max_path = sequential ? COORD_MAX_PATH - SEQ_DIGITS : COORD_MAX_PATH;
	if (err && errlen)
		err[0] = '\0';
	if (len == 0)
		return fail(COORD_EBADPATH, err, errlen, "the path is empty");
	if (p[0] != '/')
		return fail(COORD_EBADPATH, err, errlen, "the path must start with '/'");
	if (len > max_path)
		return fail(COORD_ENAMETOOLONG, err, errlen, "the path is %zu bytes, the limit is %zu%s",
			    len, max_path, sequential ? " (room is kept for the 10-digit sequence suffix)" : "");
	if (len == 1)
		return COORD_OK;
	size_t off = 1;
	for (;;) {
		const char *slash = memchr(p + off, '/', len - off);
		size_t n = slash ? (size_t)(slash - (p + off)) : len - off;
		int last = !slash;
		if (last && n == 0) {
			/* a trailing '/': the server appends the suffix to make the name */
			if (sequential)
				return COORD_OK;
			return fail(COORD_EBADPATH, err, errlen,
				    "trailing '/' at byte %zu (only a sequential create may end in '/')",
				    off - 1);
		}
		size_t max = last && sequential ? COORD_MAX_NAME - SEQ_DIGITS : COORD_MAX_NAME;
		int rc = check_component(p, off, n, off == 1, max, err, errlen);
		if (rc || last)
			return rc;
		off += n + 1;
	}
}

static size_t last_slash(const char *p, size_t len)
{
	while (len > 0 && p[len - 1] != '/')
		len--;
	return len ? len - 1 : 0;
}

size_t coord_path_parent_len(const char *p, size_t len)
{
	if (len <= 1)
		return 0;
	size_t k = last_slash(p, len);
	return k == 0 ? 1 : k;
}

size_t coord_path_base_off(const char *p, size_t len)
{
	if (len == 0)
		return 0;
	return last_slash(p, len) + 1;
}

int coord_path_under(const char *p, size_t len, const char *prefix, size_t plen)
{
	if (plen == 1 && prefix[0] == '/')
		return len >= 1 && p[0] == '/';
	if (len < plen || memcmp(p, prefix, plen) != 0)
		return 0;
	return len == plen || p[plen] == '/';
}
