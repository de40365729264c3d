/* strbuf.h — a growable byte buffer for building responses. */
#ifndef GPUNODE_STRBUF_H
#define GPUNODE_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len, cap;
};

void strbuf_append(struct strbuf *b, const char *s, size_t n);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the buffer (NUL-terminated) and leaves b empty; caller frees. */
char *strbuf_take(struct strbuf *b, size_t *len);
void strbuf_free(struct strbuf *b);

#endif
