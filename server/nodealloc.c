/*
 * nodealloc.c: size classes every 8 bytes carved from 1 MiB slabs. A znode of 204 bytes costs 208,
 * where malloc would take 224 (its 8-byte header, then 16-byte rounding): at a million znodes that
 * is the difference that matters (issue 7). Under AddressSanitizer free chunks are poisoned, so a
 * use of a freed znode is still reported.
 */
#include "nodealloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define NA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NA_ASAN 1
#endif
#endif
#ifdef NA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct nodeslab {
	struct nodeslab *next;
	uint64_t pad; /* chunks start 16-byte aligned */
	char mem[];
};

void nodealloc_init(struct nodealloc *a) { memset(a, 0, sizeof(*a)); }

void nodealloc_free(struct nodealloc *a)
{
	struct nodeslab *s = a->slabs;
	while (s) {
		struct nodeslab *next = s->next;
		UNPOISON(s, NODEALLOC_SLAB);
		free(s);
		s = next;
	}
	nodealloc_init(a);
}

static void push(struct nodealloc *a, void *p, size_t size)
{
	void **slot = &a->free[size / 8];
	UNPOISON(p, sizeof(void *)); /* a slab's unused tail is poisoned too */
	memcpy(p, slot, sizeof(void *)); /* the chunk's first word links to the next free one */
	*slot = p;
	POISON(p, size);
}

static void *pop(struct nodealloc *a, size_t size)
{
	void **slot = &a->free[size / 8];
	void *p = *slot;
	if (p) {
		UNPOISON(p, size);
		memcpy(slot, p, sizeof(void *));
	}
	return p;
}

void *nodealloc_get(struct nodealloc *a, size_t size, size_t *got)
{
	if (!size || size > NODEALLOC_MAX)
		return NULL;
	size = (size + 7) & ~(size_t)7;
	for (size_t s = size; s <= size + NODEALLOC_SLACK && s <= NODEALLOC_MAX; s += 8) {
		void *p = pop(a, s);
		if (p) {
			*got = s;
			return p;
		}
	}
	if (a->left < size) {
		/* Before taking more memory from the system, reuse any larger free chunk (the node
		 * keeps its chunk's size, so it goes back to that list): memory freed by nodes of one
		 * size then serves smaller ones instead of staying idle. */
		for (size_t s = size + NODEALLOC_SLACK + 8; s <= NODEALLOC_MAX; s += 8) {
			void *p = pop(a, s);
			if (p) {
				*got = s;
				return p;
			}
		}
		if (a->left >= 8)
			push(a, a->cur, a->left); /* the old slab's tail is a free chunk of its own size */
		struct nodeslab *s = malloc(NODEALLOC_SLAB);
		if (!s)
			return NULL;
		s->next = a->slabs;
		a->slabs = s;
		a->slab_bytes += NODEALLOC_SLAB;
		a->cur = s->mem;
		a->left = NODEALLOC_SLAB - offsetof(struct nodeslab, mem);
		POISON(a->cur, a->left);
	}
	void *p = a->cur;
	a->cur += size;
	a->left -= size;
	UNPOISON(p, size);
	*got = size;
	return p;
}

void nodealloc_put(struct nodealloc *a, void *p, size_t got)
{
	if (p)
		push(a, p, got);
}
