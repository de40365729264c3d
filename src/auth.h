/* auth.h — bearer tokens. A token is "gpn_" + 64 hex digits of randomness;
 * the node keeps only its SHA-256 (hex), so a stolen database holds no
 * usable secret. Lookups are cached in memory (tokens are few and read on
 * every request). */
#ifndef GPUNODE_AUTH_H
#define GPUNODE_AUTH_H

#include <stddef.h>

#include "err.h"
#include "store.h"

#define AUTH_TOKEN_LEN 68
#define AUTH_HASH_HEX 65

enum auth_role { AUTH_NONE, AUTH_CLIENT, AUTH_AGENT, AUTH_ADMIN };

struct auth_identity {
	enum auth_role role;
	char client[64];
};

/* Fills buf (>= AUTH_TOKEN_LEN + 1) with a new random token. */
int auth_token_new(char *buf, size_t cap, struct err *e);
/* SHA-256 of the token as 64 lowercase hex digits. */
void auth_token_hash(const char *token, char out[AUTH_HASH_HEX]);

const char *auth_role_name(enum auth_role r);
int auth_role_parse(const char *name, enum auth_role *out);

/* Creates a token for client with role, stores its hash (durably). */
int auth_create(struct store *s, const char *client, enum auth_role role, char *token, size_t cap, struct err *e);
/* Resolves a bearer token: ERR_UNAUTHORIZED if unknown. */
int auth_lookup(struct store *s, const char *token, struct auth_identity *out, struct err *e);
/* Reads DATA/admin.token, or creates it (0600) with a new admin token;
 * makes sure its hash is in the store either way, and copies the token into
 * token (cap >= AUTH_TOKEN_LEN + 1) for the local agent. */
int auth_ensure_admin_token(struct store *s, const char *data_dir, char *token, size_t cap, struct err *e);
void auth_cache_clear(void);

#endif
