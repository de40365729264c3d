#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int err_set(struct err *e, enum err_code code, const char *fmt, ...)
{
	if (!e)
		return -1;
	e->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

const char *err_code_name(enum err_code code)
{
	switch (code) {
	case ERR_OK: return "ok";
	case ERR_INVALID: return "invalid_argument";
	case ERR_UNAUTHORIZED: return "unauthorized";
	case ERR_FORBIDDEN: return "forbidden";
	case ERR_NOT_FOUND: return "not_found";
	case ERR_CONFLICT: return "conflict";
	case ERR_TOO_LARGE: return "payload_too_large";
	case ERR_UNAVAILABLE: return "unavailable";
	case ERR_INTERNAL: return "internal";
	}
	return "internal";
}

unsigned err_http_status(enum err_code code)
{
	switch (code) {
	case ERR_OK: return 200;
	case ERR_INVALID: return 400;
	case ERR_UNAUTHORIZED: return 401;
	case ERR_FORBIDDEN: return 403;
	case ERR_NOT_FOUND: return 404;
	case ERR_CONFLICT: return 409;
	case ERR_TOO_LARGE: return 413;
	case ERR_UNAVAILABLE: return 503;
	case ERR_INTERNAL: return 500;
	}
	return 500;
}
