/*
 * clients.c: the member's session bookkeeping, hashed both by session id and by routing id.
 */
#include "clients.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "err.h"

static size_t id_bucket(const struct clients *cs, uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 32) & (cs->nbuckets - 1);
}

static size_t route_bucket(const struct clients *cs, const void *route, size_t len)
{
	return (size_t)XXH64(route, len, 0) & (cs->nbuckets - 1);
}

int clients_init(struct clients *cs)
{
	cs->nbuckets = 1024;
	cs->count = 0;
	cs->by_id = calloc(cs->nbuckets, sizeof(*cs->by_id));
	cs->by_route = calloc(cs->nbuckets, sizeof(*cs->by_route));
	if (!cs->by_id || !cs->by_route) {
		clients_free(cs);
		return COORD_ENOMEM;
	}
	return COORD_OK;
}

static void op_free(struct client_op *op)
{
	free(op->req);
	free(op->reply);
	free(op);
}

struct client_op *client_op_push(struct client *c, uint8_t kind, uint64_t xid, const void *req, size_t len,
				 int64_t now_ns)
{
	struct client_op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	if (len) {
		op->req = malloc(len);
		if (!op->req) {
			free(op);
			return NULL;
		}
		memcpy(op->req, req, len);
		op->req_len = len;
	}
	op->kind = kind;
	op->xid = xid;
	op->recv_ns = now_ns;
	if (c->tail)
		c->tail->next = op;
	else
		c->head = op;
	c->tail = op;
	c->nops++;
	return op;
}

void client_op_pop(struct client *c)
{
	struct client_op *op = c->head;
	if (!op)
		return;
	c->head = op->next;
	if (!c->head)
		c->tail = NULL;
	c->nops--;
	op_free(op);
}

static void client_free(struct client *c)
{
	while (c->head)
		client_op_pop(c);
	for (uint32_t i = 0; i < c->ring_n; i++)
		free(c->ring[(c->ring_head + i) % CLIENT_RING_EVENTS].frame);
	free(c->ring);
	free(c);
}

void clients_free(struct clients *cs)
{
	if (cs->by_id) {
		for (size_t i = 0; i < cs->nbuckets; i++) {
			struct client *c = cs->by_id[i];
			while (c) {
				struct client *next = c->next_id;
				client_free(c);
				c = next;
			}
		}
	}
	free(cs->by_id);
	free(cs->by_route);
	memset(cs, 0, sizeof(*cs));
}

struct client *clients_get(const struct clients *cs, uint64_t session)
{
	for (struct client *c = cs->by_id[id_bucket(cs, session)]; c; c = c->next_id)
		if (c->session == session)
			return c;
	return NULL;
}

struct client *clients_add(struct clients *cs, uint64_t session, uint32_t timeout_ms, int64_t now_ns)
{
	struct client *c = clients_get(cs, session);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->session = session;
	c->timeout_ms = timeout_ms;
	c->last_heard_ns = now_ns;
	size_t b = id_bucket(cs, session);
	c->next_id = cs->by_id[b];
	cs->by_id[b] = c;
	cs->count++;
	return c;
}

static void detach_route(struct clients *cs, struct client *c)
{
	if (!c->route_len)
		return;
	struct client **pp = &cs->by_route[route_bucket(cs, c->route, c->route_len)];
	while (*pp && *pp != c)
		pp = &(*pp)->next_route;
	if (*pp)
		*pp = c->next_route;
	c->route_len = 0;
	c->next_route = NULL;
}

void clients_remove(struct clients *cs, uint64_t session)
{
	struct client **pp = &cs->by_id[id_bucket(cs, session)];
	while (*pp && (*pp)->session != session)
		pp = &(*pp)->next_id;
	struct client *c = *pp;
	if (!c)
		return;
	detach_route(cs, c);
	*pp = c->next_id;
	cs->count--;
	client_free(c);
}

struct client *clients_by_route(const struct clients *cs, const void *route, size_t len)
{
	for (struct client *c = cs->by_route[route_bucket(cs, route, len)]; c; c = c->next_route)
		if (c->route_len == len && !memcmp(c->route, route, len))
			return c;
	return NULL;
}

void clients_detach(struct clients *cs, struct client *c) { detach_route(cs, c); }

void clients_attach(struct clients *cs, struct client *c, const void *route, size_t len)
{
	if (len == 0 || len > CLIENT_ROUTE_MAX)
		return;
	/* One connection serves one session: a peer that opens a second session drops the first link. */
	struct client *other = clients_by_route(cs, route, len);
	if (other)
		detach_route(cs, other);
	detach_route(cs, c);
	memcpy(c->route, route, len);
	c->route_len = (uint8_t)len;
	size_t b = route_bucket(cs, route, len);
	c->next_route = cs->by_route[b];
	cs->by_route[b] = c;
}

static void ring_drop_oldest(struct client *c)
{
	struct client_event *old = &c->ring[c->ring_head];
	c->ring_dropped_zxid = old->zxid;
	free(old->frame);
	c->ring_head = (c->ring_head + 1) % CLIENT_RING_EVENTS;
	c->ring_n--;
}

void client_ring_push(struct client *c, uint64_t zxid, const void *frame, size_t len, int64_t now_ns)
{
	int64_t horizon = now_ns - 2 * (int64_t)c->timeout_ms * 1000000;
	while (c->ring_n && c->ring[c->ring_head].at_ns < horizon)
		ring_drop_oldest(c);
	if (!c->ring) {
		c->ring = calloc(CLIENT_RING_EVENTS, sizeof(*c->ring));
		if (!c->ring) {
			c->ring_dropped_zxid = zxid;
			return;
		}
	}
	uint8_t *f = malloc(len);
	if (!f) {
		c->ring_dropped_zxid = zxid;
		return;
	}
	memcpy(f, frame, len);
	if (c->ring_n == CLIENT_RING_EVENTS)
		ring_drop_oldest(c);
	c->ring[(c->ring_head + c->ring_n) % CLIENT_RING_EVENTS] = (struct client_event){zxid, now_ns, f, (uint32_t)len};
	c->ring_n++;
}

void clients_each(const struct clients *cs, void (*cb)(void *arg, struct client *c), void *arg)
{
	for (size_t i = 0; i < cs->nbuckets; i++)
		for (struct client *c = cs->by_id[i]; c; c = c->next_id)
			cb(arg, c);
}
