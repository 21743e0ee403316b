/*
 * acls.h: the replicated table of interned ACLs (ZooKeeper's ReferenceCountedACLCache).
 *
 * Each distinct ACL is kept once, with a count of the znodes that use it; a znode holds only its
 * uint32_t id. Id 0 is always world:anyone:rwcda (the root's default), is never freed, and is what
 * a zeroed znode holds. A new ACL takes the lowest free id, so members that apply the same txns
 * (or load the same snapshot, which keeps the ids) assign the same ids. Part of the deterministic
 * state: no clocks, randomness or I/O. The table owns its entries.
 */
#ifndef COORD_ACLS_H
#define COORD_ACLS_H

#include <stddef.h>
#include <stdint.h>

#include "acl.h"

#define ACL_DEFAULT_ID 0u /* world:anyone:rwcda */

struct acl_slot {
	char *text;                    /* canonical text form; NULL for a free slot */
	struct coord_acl_entry *e;     /* n entries */
	uint32_t n;
	uint32_t refs;                 /* znodes using it (not counted for id 0) */
	uint32_t next;                 /* hash chain */
	uint64_t hash;
};

struct acls {
	struct acl_slot *v;
	uint32_t n, cap;               /* slots in use or freed below n */
	uint32_t live;                 /* slots holding an ACL */
	uint32_t free_hint;            /* no free slot below this id */
	uint32_t *buckets;             /* hash -> first id, UINT32_MAX = none */
	uint32_t nbuckets;
};

int acls_init(struct acls *t);
void acls_free(struct acls *t);
/* The id of acl, interned if new, with one reference taken. COORD_OK or COORD_ENOMEM. */
int acls_intern(struct acls *t, const struct coord_acl *acl, uint32_t *id);
void acls_ref(struct acls *t, uint32_t id);
/* Drop one reference; the last one frees the slot. */
void acls_unref(struct acls *t, uint32_t id);
/* The permission bits principal holds under ACL id ("" = anonymous). */
unsigned acls_perms(const struct acls *t, uint32_t id, const char *principal);
/* The canonical text of ACL id ("" for an unknown id). */
const char *acls_text(const struct acls *t, uint32_t id);
int acls_valid(const struct acls *t, uint32_t id);
/* xxh64 over every slot's id and text: equal on members holding equal tables. */
uint64_t acls_digest(const struct acls *t);
/* Snapshots: put text at id (no references yet; acls_ref as nodes load). COORD_OK, COORD_EPROTO
 * (bad text, id in use) or COORD_ENOMEM. */
int acls_load(struct acls *t, uint32_t id, const char *text, size_t len);
/* After a load: free slots nothing refers to. */
void acls_load_done(struct acls *t);

#endif
