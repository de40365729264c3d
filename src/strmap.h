/* strmap.h — an open-addressing map from a string to a pointer. The key is
 * not copied: it must live as long as its entry (it is usually a field of
 * the value itself: a task's id, a host's id). Linear probing; deletion by
 * backward shift, so lookups never step over tombstones. Not thread-safe. */
#ifndef GPUNODE_STRMAP_H
#define GPUNODE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
	const char *key; /* NULL: empty */
	uint64_t hash;
	void *val;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap; /* power of two */
	size_t len;
};

void strmap_init(struct strmap *m);
/* Frees the slots (not the values). */
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces. */
void strmap_put(struct strmap *m, const char *key, void *val);
/* Removes key when it maps to val (NULL: whatever it maps to). */
void strmap_del(struct strmap *m, const char *key, const void *val);
/* FNV-1a with a final mix: short keys, good spread, no dependencies. */
uint64_t strmap_hash(const char *s);

/* Iterate with: for (size_t i = 0; i < m.cap; i++) if (m.slots[i].key) ... */

#endif
