/* err.h — explicit error objects (crun style): library functions return int
 * (0 ok, negative on failure) and fill a struct err with a code and a
 * human-readable message. Nothing below main() prints or exits. */
#ifndef GPUNODE_ERR_H
#define GPUNODE_ERR_H

#include <stddef.h>

enum err_code {
	ERR_OK = 0,
	ERR_INVALID,      /* bad input from a caller: HTTP 400 */
	ERR_UNAUTHORIZED, /* missing or unknown token: 401 */
	ERR_FORBIDDEN,    /* token valid but not allowed: 403 */
	ERR_NOT_FOUND,    /* 404 */
	ERR_CONFLICT,     /* illegal state transition, duplicate: 409 */
	ERR_TOO_LARGE,    /* request body over the limit: 413 */
	ERR_UNAVAILABLE,  /* shutting down, store failed: 503 */
	ERR_INTERNAL,     /* a bug or an I/O failure: 500 */
};

struct err {
	enum err_code code;
	char msg[256];
};

/* Sets code and a printf-style message; returns -1 so callers can write
 * `return err_set(e, ERR_INVALID, "...")`. e may be NULL. */
int err_set(struct err *e, enum err_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Stable machine-readable name used in API errors: "invalid_argument"... */
const char *err_code_name(enum err_code code);

/* HTTP status for an error code. */
unsigned err_http_status(enum err_code code);

#endif
