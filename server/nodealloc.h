/*
 * nodealloc.h: a header-less allocator for znodes (tree.c).
 *
 * Contract: chunks of up to NODEALLOC_MAX bytes, 8-byte aligned, sizes rounded up to 8 bytes,
 * carved from large slabs; no per-chunk header, so the caller must hand back the size it was
 * given (nodealloc_get's *got) with the chunk. A freed chunk goes on its size's free list and is
 * reused for a request of that size or up to NODEALLOC_SLACK bytes smaller, or of any smaller
 * size before a new slab is taken; chunks are never split or merged, so memory freed by small
 * nodes serves only small ones. Slabs are only released all at once by nodealloc_free. Not thread-safe; one per tree. Deterministic: no
 * clocks or randomness (addresses never reach the replicated state).
 */
#ifndef COORD_NODEALLOC_H
#define COORD_NODEALLOC_H

#include <stddef.h>

#define NODEALLOC_MAX 1024
#define NODEALLOC_SLACK 32
#define NODEALLOC_SLAB (1u << 20)

struct nodeslab;

struct nodealloc {
	void *free[NODEALLOC_MAX / 8 + 1]; /* per size/8: singly-linked free chunks */
	char *cur;                         /* unused tail of the newest slab */
	size_t left;
	struct nodeslab *slabs;
	size_t slab_bytes;                 /* held from the system */
};

void nodealloc_init(struct nodealloc *a);
/* Release every slab (every chunk ever handed out becomes invalid). */
void nodealloc_free(struct nodealloc *a);
/* An uninitialised chunk of at least size bytes (1..NODEALLOC_MAX); *got = its real size. NULL on ENOMEM. */
void *nodealloc_get(struct nodealloc *a, size_t size, size_t *got);
/* Give back a chunk with the size nodealloc_get reported for it. */
void nodealloc_put(struct nodealloc *a, void *p, size_t got);

#endif
