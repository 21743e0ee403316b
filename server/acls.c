/*
 * acls.c: the interned, reference-counted ACL table (see acls.h).
 */
#include "acls.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "err.h"

#define NONE UINT32_MAX

static uint64_t text_hash(const char *text, size_t len) { return XXH64(text, len, 0x61636c); }

static void bucket_link(struct acls *t, uint32_t id)
{
	uint32_t b = (uint32_t)(t->v[id].hash % t->nbuckets);
	t->v[id].next = t->buckets[b];
	t->buckets[b] = id;
}

static int rehash(struct acls *t, uint32_t nb)
{
	uint32_t *bk = malloc(nb * sizeof(*bk));
	if (!bk)
		return COORD_ENOMEM;
	for (uint32_t i = 0; i < nb; i++)
		bk[i] = NONE;
	free(t->buckets);
	t->buckets = bk;
	t->nbuckets = nb;
	for (uint32_t id = 0; id < t->n; id++)
		if (t->v[id].text)
			bucket_link(t, id);
	return COORD_OK;
}

/* Fill slot id (free, below cap) with acl and its text. */
static int slot_fill(struct acls *t, uint32_t id, const struct coord_acl *acl, const char *text, size_t len)
{
	struct acl_slot *s = &t->v[id];
	memset(s, 0, sizeof(*s));
	s->text = malloc(len + 1);
	s->e = malloc((acl->n ? acl->n : 1) * sizeof(*s->e));
	if (!s->text || !s->e) {
		free(s->text);
		free(s->e);
		memset(s, 0, sizeof(*s));
		return COORD_ENOMEM;
	}
	memcpy(s->text, text, len);
	s->text[len] = 0;
	memcpy(s->e, acl->e, acl->n * sizeof(*s->e));
	s->n = acl->n;
	s->hash = text_hash(text, len);
	if (id >= t->n)
		t->n = id + 1;
	t->live++;
	bucket_link(t, id);
	if (t->live > t->nbuckets * 2)
		rehash(t, t->nbuckets * 4); /* a failed grow only makes chains longer */
	return COORD_OK;
}

static int grow(struct acls *t, uint32_t need)
{
	if (need <= t->cap)
		return COORD_OK;
	uint32_t c = t->cap ? t->cap : 16;
	while (c < need)
		c *= 2;
	struct acl_slot *v = realloc(t->v, c * sizeof(*v));
	if (!v)
		return COORD_ENOMEM;
	memset(v + t->cap, 0, (c - t->cap) * sizeof(*v));
	t->v = v;
	t->cap = c;
	return COORD_OK;
}

int acls_init(struct acls *t)
{
	memset(t, 0, sizeof(*t));
	if (grow(t, 16) || rehash(t, 16)) {
		acls_free(t);
		return COORD_ENOMEM;
	}
	struct coord_acl def = {.n = 1};
	def.e[0] = (struct coord_acl_entry){.scheme = COORD_ACL_WORLD, .perms = COORD_PERM_ALL, .id = "anyone"};
	char text[64];
	size_t len = coord_acl_format(&def, text, sizeof(text));
	if (slot_fill(t, ACL_DEFAULT_ID, &def, text, len)) {
		acls_free(t);
		return COORD_ENOMEM;
	}
	t->free_hint = 1;
	return COORD_OK;
}

void acls_free(struct acls *t)
{
	for (uint32_t i = 0; i < t->n; i++) {
		free(t->v[i].text);
		free(t->v[i].e);
	}
	free(t->v);
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

int acls_intern(struct acls *t, const struct coord_acl *acl, uint32_t *id)
{
	char text[COORD_ACL_MAX_ENTRIES * (COORD_PRINCIPAL_MAX + 16)];
	size_t len = coord_acl_format(acl, text, sizeof(text));
	uint64_t h = text_hash(text, len);
	for (uint32_t i = t->buckets[h % t->nbuckets]; i != NONE; i = t->v[i].next) {
		if (t->v[i].hash == h && !strcmp(t->v[i].text, text)) {
			acls_ref(t, i);
			*id = i;
			return COORD_OK;
		}
	}
	uint32_t i = t->free_hint;
	while (i < t->n && t->v[i].text)
		i++;
	if (grow(t, i + 1) || slot_fill(t, i, acl, text, len))
		return COORD_ENOMEM;
	t->free_hint = i + 1;
	t->v[i].refs = 1;
	*id = i;
	return COORD_OK;
}

int acls_valid(const struct acls *t, uint32_t id) { return id < t->n && t->v[id].text; }

void acls_ref(struct acls *t, uint32_t id)
{
	if (id != ACL_DEFAULT_ID && acls_valid(t, id))
		t->v[id].refs++;
}

static void slot_free(struct acls *t, uint32_t id)
{
	struct acl_slot *s = &t->v[id];
	uint32_t *pp = &t->buckets[s->hash % t->nbuckets];
	while (*pp != NONE && *pp != id)
		pp = &t->v[*pp].next;
	if (*pp == id)
		*pp = s->next;
	free(s->text);
	free(s->e);
	memset(s, 0, sizeof(*s));
	t->live--;
	if (id < t->free_hint)
		t->free_hint = id;
	while (t->n > 1 && !t->v[t->n - 1].text)
		t->n--;
}

void acls_unref(struct acls *t, uint32_t id)
{
	if (id == ACL_DEFAULT_ID || !acls_valid(t, id))
		return;
	if (--t->v[id].refs == 0)
		slot_free(t, id);
}

unsigned acls_perms(const struct acls *t, uint32_t id, const char *principal)
{
	if (!acls_valid(t, id))
		return 0;
	const struct acl_slot *s = &t->v[id];
	unsigned p = 0;
	for (uint32_t i = 0; i < s->n; i++)
		if (s->e[i].scheme == COORD_ACL_WORLD ||
		    (principal && principal[0] && !strcmp(s->e[i].id, principal)))
			p |= s->e[i].perms;
	return p;
}

const char *acls_text(const struct acls *t, uint32_t id) { return acls_valid(t, id) ? t->v[id].text : ""; }

uint64_t acls_digest(const struct acls *t)
{
	XXH64_state_t *h = XXH64_createState();
	if (!h)
		return 0;
	XXH64_reset(h, 0);
	for (uint32_t i = 0; i < t->n; i++) {
		if (!t->v[i].text)
			continue;
		XXH64_update(h, &i, sizeof(i));
		XXH64_update(h, &t->v[i].refs, sizeof(t->v[i].refs));
		XXH64_update(h, t->v[i].text, strlen(t->v[i].text));
	}
	uint64_t d = XXH64_digest(h);
	XXH64_freeState(h);
	return d;
}

int acls_load(struct acls *t, uint32_t id, const char *text, size_t len)
{
	struct coord_acl acl;
	if (id == ACL_DEFAULT_ID || id > (1u << 30) || coord_acl_parse(text, len, &acl, NULL, 0) || acls_valid(t, id))
		return COORD_EPROTO;
	char canon[COORD_ACL_MAX_ENTRIES * (COORD_PRINCIPAL_MAX + 16)];
	size_t clen = coord_acl_format(&acl, canon, sizeof(canon));
	if (clen != len || memcmp(canon, text, len))
		return COORD_EPROTO;
	for (uint32_t i = t->buckets[text_hash(canon, clen) % t->nbuckets]; i != NONE; i = t->v[i].next)
		if (!strcmp(t->v[i].text, canon))
			return COORD_EPROTO; /* interned twice */
	if (grow(t, id + 1))
		return COORD_ENOMEM;
	return slot_fill(t, id, &acl, canon, clen);
}

void acls_load_done(struct acls *t)
{
	for (uint32_t i = 1; i < t->n; i++)
		if (t->v[i].text && t->v[i].refs == 0)
			slot_free(t, i);
	t->free_hint = 1;
	while (t->free_hint < t->n && t->v[t->free_hint].text)
		t->free_hint++;
}
