#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* A small cache of resolved tokens: every request carries one, and the store
 * read would otherwise dominate cheap requests. Tokens are never revoked yet,
 * so entries never go stale; when revocation lands it must clear the cache. */
#define AUTH_CACHE_SLOTS 256

struct auth_cache_entry {
	char hash[AUTH_HASH_HEX];
	struct auth_identity id;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct auth_cache_entry cache[AUTH_CACHE_SLOTS];

static const char *const role_names[] = {"none", "client", "agent", "admin"};

const char *auth_role_name(enum auth_role r)
{
	return (unsigned)r <= AUTH_ADMIN ? role_names[r] : "none";
}

int auth_role_parse(const char *name, enum auth_role *out)
{
	for (int r = AUTH_CLIENT; r <= AUTH_ADMIN; r++)
		if (name && strcmp(name, role_names[r]) == 0) {
			*out = (enum auth_role)r;
			return 0;
		}
	return -1;
}

int auth_token_new(char *buf, size_t cap, struct err *e)
{
	if (cap < AUTH_TOKEN_LEN + 1)
		return err_set(e, ERR_INTERNAL, "token buffer too small");
	if (sodium_init() < 0)
		return err_set(e, ERR_INTERNAL, "libsodium failed to initialise");
	unsigned char raw[32];
	randombytes_buf(raw, sizeof raw);
	memcpy(buf, "gpn_", 4);
	sodium_bin2hex(buf + 4, cap - 4, raw, sizeof raw);
	sodium_memzero(raw, sizeof raw);
	return 0;
}

void auth_token_hash(const char *token, char out[AUTH_HASH_HEX])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
	sodium_bin2hex(out, AUTH_HASH_HEX, h, sizeof h);
}

static unsigned cache_slot(const char *hash)
{
	unsigned v = 0;
	for (int i = 0; i < 8; i++)
		v = v * 16 + (unsigned)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
	return v % AUTH_CACHE_SLOTS;
}

static bool cache_get(const char *hash, struct auth_identity *out)
{
	bool hit = false;
	pthread_mutex_lock(&cache_mu);
	struct auth_cache_entry *c = &cache[cache_slot(hash)];
	if (strcmp(c->hash, hash) == 0) {
		*out = c->id;
		hit = true;
	}
	pthread_mutex_unlock(&cache_mu);
	return hit;
}

static void cache_put(const char *hash, const struct auth_identity *id)
{
	pthread_mutex_lock(&cache_mu);
	struct auth_cache_entry *c = &cache[cache_slot(hash)];
	memcpy(c->hash, hash, AUTH_HASH_HEX);
	c->id = *id;
	pthread_mutex_unlock(&cache_mu);
}

void auth_cache_clear(void)
{
	pthread_mutex_lock(&cache_mu);
	memset(cache, 0, sizeof cache);
	pthread_mutex_unlock(&cache_mu);
}

int auth_create(struct store *s, const char *client, enum auth_role role, char *token, size_t cap, struct err *e)
{
	if (auth_token_new(token, cap, e) < 0)
		return -1;
	char hash[AUTH_HASH_HEX];
	auth_token_hash(token, hash);
	return store_wait(s, store_put_token(s, hash, client, auth_role_name(role)), e);
}

int auth_lookup(struct store *s, const char *token, struct auth_identity *out, struct err *e)
{
	if (!token || !*token)
		return err_set(e, ERR_UNAUTHORIZED, "missing bearer token (Authorization: Bearer <token>)");
	if (strlen(token) > 256)
		return err_set(e, ERR_UNAUTHORIZED, "unknown token");
	char hash[AUTH_HASH_HEX];
	auth_token_hash(token, hash);
	if (cache_get(hash, out))
		return 0;
	char role[16];
	struct err lookup_err;
	if (store_find_token(s, hash, out->client, sizeof out->client, role, sizeof role, &lookup_err) < 0) {
		if (lookup_err.code == ERR_NOT_FOUND)
			return err_set(e, ERR_UNAUTHORIZED, "unknown token");
		*e = lookup_err;
		return -1;
	}
	if (auth_role_parse(role, &out->role) < 0)
		return err_set(e, ERR_INTERNAL, "token has unknown role \"%s\"", role);
	cache_put(hash, out);
	return 0;
}

static int read_token_file(const char *path, char *token, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	bool ok = fgets(token, (int)cap, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	token[strcspn(token, "\r\n")] = '\0';
	return token[0] ? 0 : -1;
}

static int write_token_file(const char *path, const char *token, struct err *e)
{
	char tmp[640];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, ERR_INTERNAL, "cannot create %s: %s", tmp, strerror(errno));
	size_t len = strlen(token);
	bool ok = write(fd, token, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	close(fd);
	if (!ok || rename(tmp, path) < 0)
		return err_set(e, ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

int auth_ensure_admin_token(struct store *s, const char *data_dir, char *token, size_t cap, struct err *e)
{
	char path[600];
	snprintf(path, sizeof path, "%s/admin.token", data_dir);
	if (cap < AUTH_TOKEN_LEN + 1)
		return err_set(e, ERR_INTERNAL, "token buffer too small");
	if (read_token_file(path, token, cap) < 0) {
		if (auth_token_new(token, cap, e) < 0 || write_token_file(path, token, e) < 0)
			return -1;
	}
	chmod(path, 0600);
	char hash[AUTH_HASH_HEX];
	auth_token_hash(token, hash);
	return store_wait(s, store_put_token(s, hash, "admin", "admin"), e);
}
