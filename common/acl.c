/*
 * acl.c: parsing and printing ACLs in their text form, and evaluating them for a principal.
 */
#include "acl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static const char perm_letters[] = "rwcda";

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return COORD_EBADARG;
}

int coord_principal_valid(const char *name, size_t len)
{
	if (len == 0 || len > COORD_PRINCIPAL_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("._@+=-", ch)))
			return 0;
	}
	return 1;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

/* One entry "scheme:id:perms" of n bytes (blanks trimmed). */
static int parse_entry(const char *p, size_t n, struct coord_acl_entry *e, char *err, size_t errlen)
{
	const char *c1 = memchr(p, ':', n);
	const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - p)) : NULL;
	if (!c1 || !c2)
		return bad(err, errlen, "'%.*s' is not SCHEME:ID:PERMS (e.g. world:anyone:r or key:web:rwcd)",
			   (int)n, p);
	size_t slen = (size_t)(c1 - p), ilen = (size_t)(c2 - c1 - 1), plen = n - (size_t)(c2 + 1 - p);
	const char *id = c1 + 1, *perms = c2 + 1;
	memset(e, 0, sizeof(*e));
	if (slen == 5 && !memcmp(p, "world", 5)) {
		e->scheme = COORD_ACL_WORLD;
		if (ilen != 6 || memcmp(id, "anyone", 6))
			return bad(err, errlen, "'%.*s': the world scheme has only the id 'anyone'", (int)n, p);
	} else if (slen == 3 && !memcmp(p, "key", 3)) {
		e->scheme = COORD_ACL_KEY;
		if (!coord_principal_valid(id, ilen))
			return bad(err, errlen,
				   "'%.*s': bad principal '%.*s' (1..%d characters of A-Z a-z 0-9 . _ @ + = -)",
				   (int)n, p, (int)ilen, id, COORD_PRINCIPAL_MAX);
	} else {
		return bad(err, errlen, "'%.*s': unknown scheme '%.*s' (world or key)", (int)n, p, (int)slen, p);
	}
	memcpy(e->id, id, ilen);
	e->id[ilen] = 0;
	if (plen == 0)
		return bad(err, errlen, "'%.*s': no permissions (give some of r w c d a)", (int)n, p);
	for (size_t i = 0; i < plen; i++) {
		const char *l = memchr(perm_letters, perms[i], 5);
		if (!l || !perms[i])
			return bad(err, errlen, "'%.*s': bad permission '%c' (r read, w write, c create, d delete, a admin)",
				   (int)n, p, perms[i] >= 0x20 && perms[i] < 0x7f ? perms[i] : '?');
		e->perms |= (uint8_t)(1u << (l - perm_letters));
	}
	return COORD_OK;
}

int coord_acl_parse(const char *text, size_t len, struct coord_acl *acl, char *err, size_t errlen)
{
	memset(acl, 0, sizeof(*acl));
	if (len > COORD_ACL_TEXT_MAX)
		return bad(err, errlen, "ACL is %zu bytes, longer than %d", len, COORD_ACL_TEXT_MAX);
	if (memchr(text, 0, len))
		return bad(err, errlen, "ACL contains a NUL byte");
	size_t all = 0;
	while (all < len && is_blank(text[all]))
		all++;
	if (all == len)
		return bad(err, errlen, "ACL is empty (give at least one entry, e.g. world:anyone:r)");
	for (size_t i = 0;;) {
		size_t end = i;
		while (end < len && text[end] != ',')
			end++;
		size_t a = i, b = end;
		while (a < b && is_blank(text[a]))
			a++;
		while (b > a && is_blank(text[b - 1]))
			b--;
		if (a == b)
			return bad(err, errlen, "ACL has an empty entry (at byte %zu)", a);
		struct coord_acl_entry e;
		int rc = parse_entry(text + a, b - a, &e, err, errlen);
		if (rc)
			return rc;
		uint32_t j;
		for (j = 0; j < acl->n; j++)
			if (acl->e[j].scheme == e.scheme && !strcmp(acl->e[j].id, e.id))
				break;
		if (j < acl->n) {
			acl->e[j].perms |= e.perms;
		} else {
			if (acl->n == COORD_ACL_MAX_ENTRIES)
				return bad(err, errlen, "ACL has more than %d entries", COORD_ACL_MAX_ENTRIES);
			acl->e[acl->n++] = e;
		}
		if (end == len)
			break;
		i = end + 1;
	}
	if (acl->n == 0)
		return bad(err, errlen, "ACL is empty (give at least one entry, e.g. world:anyone:r)");
	return COORD_OK;
}

const char *coord_perms_format(unsigned perms, char *buf)
{
	size_t k = 0;
	for (int i = 0; i < 5; i++)
		if (perms & (1u << i))
			buf[k++] = perm_letters[i];
	buf[k] = 0;
	return buf;
}

const char *coord_perm_name(unsigned perm)
{
	switch (perm) {
	case COORD_PERM_READ: return "read";
	case COORD_PERM_WRITE: return "write";
	case COORD_PERM_CREATE: return "create";
	case COORD_PERM_DELETE: return "delete";
	case COORD_PERM_ADMIN: return "admin";
	default: return "?";
	}
}

size_t coord_acl_format(const struct coord_acl *acl, char *buf, size_t len)
{
	size_t k = 0;
	if (!len)
		return 0;
	buf[0] = 0;
	for (uint32_t i = 0; i < acl->n; i++) {
		char perms[8];
		const struct coord_acl_entry *e = &acl->e[i];
		int w = snprintf(buf + k, len - k, "%s%s:%s:%s", i ? "," : "",
				 e->scheme == COORD_ACL_WORLD ? "world" : "key", e->id,
				 coord_perms_format(e->perms, perms));
		if (w < 0 || (size_t)w >= len - k) {
			buf[0] = 0;
			return 0;
		}
		k += (size_t)w;
	}
	return k;
}

unsigned coord_acl_perms_for(const struct coord_acl *acl, const char *principal)
{
	unsigned p = 0;
	for (uint32_t i = 0; i < acl->n; i++) {
		const struct coord_acl_entry *e = &acl->e[i];
		if (e->scheme == COORD_ACL_WORLD ||
		    (e->scheme == COORD_ACL_KEY && principal && principal[0] && !strcmp(e->id, principal)))
			p |= e->perms;
	}
	return p;
}
