/* Unit tests of tokens: format, hashing, lookup through a real store, and
 * that only the hash is stored. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "util.h"

static char dir[64];
static struct store *st;

static void setup(void)
{
	strcpy(dir, "/tmp/gpunode-auth-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof path, "%s/db", dir);
	struct err e;
	cr_assert_eq(store_open(path, &st, &e), 0, "%s", e.msg);
	auth_cache_clear();
}

static void teardown(void)
{
	store_close(st);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(auth, .init = setup, .fini = teardown);

Test(auth, tokens_are_random_and_well_formed)
{
	char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1];
	struct err e;
	cr_assert_eq(auth_token_new(a, sizeof a, &e), 0);
	cr_assert_eq(auth_token_new(b, sizeof b, &e), 0);
	cr_assert_eq(strlen(a), AUTH_TOKEN_LEN);
	cr_assert_eq(strncmp(a, "gpn_", 4), 0);
	cr_assert_str_neq(a, b);
}

Test(auth, hash_is_sha256_hex)
{
	char h[AUTH_HASH_HEX];
	auth_token_hash("abc", h);
	cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(auth, created_tokens_resolve_to_their_client_and_role)
{
	char tok[AUTH_TOKEN_LEN + 1];
	struct err e;
	struct auth_identity id;
	cr_assert_eq(auth_create(st, "alice", AUTH_CLIENT, tok, sizeof tok, &e), 0, "%s", e.msg);
	cr_assert_eq(auth_lookup(st, tok, &id, &e), 0, "%s", e.msg);
	cr_assert_str_eq(id.client, "alice");
	cr_assert_eq(id.role, AUTH_CLIENT);
	tok[10] ^= 1; /* one bit off: unknown */
	cr_assert_eq(auth_lookup(st, tok, &id, &e), -1);
	cr_assert_eq(e.code, ERR_UNAUTHORIZED);
	cr_assert_eq(auth_lookup(st, "", &id, &e), -1);
	cr_assert_eq(e.code, ERR_UNAUTHORIZED);
}

Test(auth, admin_token_file_is_private_and_stable)
{
	struct err e;
	char given[AUTH_TOKEN_LEN + 1];
	cr_assert_eq(auth_ensure_admin_token(st, dir, given, sizeof given, &e), 0, "%s", e.msg);
	char path[128], first[128], second[128];
	snprintf(path, sizeof path, "%s/admin.token", dir);
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	FILE *f = fopen(path, "r");
	cr_assert(fgets(first, sizeof first, f));
	fclose(f);
	cr_assert_eq(auth_ensure_admin_token(st, dir, given, sizeof given, &e), 0);
	f = fopen(path, "r");
	cr_assert(fgets(second, sizeof second, f));
	fclose(f);
	cr_assert_str_eq(first, second);
	first[strcspn(first, "\n")] = '\0';
	cr_assert_str_eq(given, first, "the token handed back is the one in the file");
	struct auth_identity id;
	cr_assert_eq(auth_lookup(st, first, &id, &e), 0, "%s", e.msg);
	cr_assert_eq(id.role, AUTH_ADMIN);
	/* The database holds the hash, never the token itself. */
	char cmd[512];
	snprintf(cmd, sizeof cmd, "grep -c '%s' %s/db* >/dev/null 2>&1", first, dir);
	cr_assert_neq(system(cmd), 0, "the token appears in the database files");
}
