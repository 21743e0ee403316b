/*
 * acl.h: per-znode access control lists: ZooKeeper's permissions for the schemes world:anyone and
 * key:PRINCIPAL, and their text form "world:anyone:r,key:web:rwcd" (the form on the wire, in
 * snapshots, in coordctl and in the mount's user.coord.acl xattr).
 *
 * Pure functions on caller-owned structs; no allocation. The server interns parsed lists
 * (server/acls.c); clients parse and print them.
 */
#ifndef COORD_ACL_H
#define COORD_ACL_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Permission bits, ZooKeeper's values. */
#define COORD_PERM_READ 0x01u
#define COORD_PERM_WRITE 0x02u
#define COORD_PERM_CREATE 0x04u
#define COORD_PERM_DELETE 0x08u
#define COORD_PERM_ADMIN 0x10u
#define COORD_PERM_ALL 0x1fu

#define COORD_ACL_MAX_ENTRIES 16   /* entries in one ACL */
#define COORD_ACL_TEXT_MAX 1024    /* bytes of an ACL's text form */

enum coord_acl_scheme { COORD_ACL_WORLD = 1, COORD_ACL_KEY = 2 };

struct coord_acl_entry {
	uint8_t scheme;                      /* enum coord_acl_scheme */
	uint8_t perms;                       /* COORD_PERM_* bits, never 0 */
	char id[COORD_PRINCIPAL_MAX + 1];    /* "anyone" for world; the principal for key */
};

struct coord_acl {
	uint32_t n;
	struct coord_acl_entry e[COORD_ACL_MAX_ENTRIES];
};

/*
 * Parse the text form (len bytes, need not be NUL-terminated): entries SCHEME:ID:PERMS separated
 * by commas; blanks around entries and a trailing newline are ignored; an entry naming the same
 * scheme and id as an earlier one adds its permissions to it. COORD_OK, or COORD_EBADARG with a
 * message (unknown scheme, bad perms, bad principal characters, empty, too many, too long).
 */
int coord_acl_parse(const char *text, size_t len, struct coord_acl *acl, char *err, size_t errlen);
/* The canonical text form into buf (NUL-terminated); returns its length (0 if it does not fit). */
size_t coord_acl_format(const struct coord_acl *acl, char *buf, size_t len);
/* Permission letters of bits ("rwcda" order) into buf (at least 6 bytes). */
const char *coord_perms_format(unsigned perms, char *buf);
/* A person's name for one permission bit: "read", "write", "create", "delete", "admin". */
const char *coord_perm_name(unsigned perm);
/* The permission bits principal ("" = anonymous, matches only world:anyone) holds. */
unsigned coord_acl_perms_for(const struct coord_acl *acl, const char *principal);
/* 1 if name is a valid principal: 1..COORD_PRINCIPAL_MAX bytes of [A-Za-z0-9._@+=-]. */
int coord_principal_valid(const char *name, size_t len);

#endif
