#include "strmap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

uint64_t strmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ^ (h >> 29);
}

void strmap_init(struct strmap *m)
{
	m->cap = 16;
	m->len = 0;
	m->slots = xcalloc(m->cap, sizeof *m->slots);
}

void strmap_free(struct strmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}

static struct strmap_slot *slot_of(const struct strmap *m, const char *key, uint64_t hash)
{
	size_t mask = m->cap - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct strmap_slot *s = &m->slots[i];
		if (!s->key || (s->hash == hash && strcmp(s->key, key) == 0))
			return s;
	}
}

void *strmap_get(const struct strmap *m, const char *key)
{
	if (!key || !m->cap)
		return NULL;
	struct strmap_slot *s = slot_of(m, key, strmap_hash(key));
	return s->key ? s->val : NULL;
}

static void grow(struct strmap *m)
{
	struct strmap old = *m;
	m->cap *= 2;
	m->slots = xcalloc(m->cap, sizeof *m->slots);
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key)
			*slot_of(m, old.slots[i].key, old.slots[i].hash) = old.slots[i];
	free(old.slots);
}

void strmap_put(struct strmap *m, const char *key, void *val)
{
	if (!m->cap)
		strmap_init(m);
	if ((m->len + 1) * 4 > m->cap * 3)
		grow(m);
	uint64_t hash = strmap_hash(key);
	struct strmap_slot *s = slot_of(m, key, hash);
	if (!s->key)
		m->len++;
	*s = (struct strmap_slot){.key = key, .hash = hash, .val = val};
}

void strmap_del(struct strmap *m, const char *key, const void *val)
{
	if (!m->cap)
		return;
	size_t mask = m->cap - 1;
	struct strmap_slot *s = slot_of(m, key, strmap_hash(key));
	if (!s->key || (val && s->val != val))
		return;
	/* Backward shift: pull later members of the probe run into the hole. */
	size_t hole = (size_t)(s - m->slots);
	for (size_t i = (hole + 1) & mask; m->slots[i].key; i = (i + 1) & mask) {
		size_t home = m->slots[i].hash & mask;
		bool movable = (i > hole) ? (home <= hole || home > i) : (home <= hole && home > i);
		if (movable) {
			m->slots[hole] = m->slots[i];
			hole = i;
		}
	}
	m->slots[hole] = (struct strmap_slot){0};
	m->len--;
}
