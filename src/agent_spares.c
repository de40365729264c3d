/* agent_spares.c — see agent_spares.h. */
#include "agent_spares.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image_store_fs.h"
#include "util.h"

/* One kind (dirs or logs): slot numbers that hold a spare, and those free. */
struct spare_kind {
	char letter; /* spare/d12, spare/l12 */
	int kept[SPARES_MAX], n_kept;
	int free[SPARES_MAX], n_free;
};

struct spares {
	char dir[600];
	pthread_mutex_t mu;
	struct spare_kind dirs, logs;
	bool off; /* the filesystem has no RENAME_NOREPLACE: keep nothing */
};

static void kind_init(struct spare_kind *k, char letter)
{
	k->letter = letter;
	k->n_kept = 0;
	k->n_free = SPARES_MAX;
	for (int i = 0; i < SPARES_MAX; i++)
		k->free[i] = SPARES_MAX - 1 - i;
}

static void slot_path(const struct spares *s, const struct spare_kind *k, int slot, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%c%d", s->dir, k->letter, slot);
}

/* Pops a slot from the kept (want_kept) or free stack; -1 when empty. */
static int take_slot(struct spares *s, struct spare_kind *k, bool want_kept)
{
	pthread_mutex_lock(&s->mu);
	int slot = -1;
	if (want_kept && k->n_kept)
		slot = k->kept[--k->n_kept];
	else if (!want_kept && k->n_free)
		slot = k->free[--k->n_free];
	pthread_mutex_unlock(&s->mu);
	return slot;
}

static void put_slot(struct spares *s, struct spare_kind *k, int slot, bool kept)
{
	pthread_mutex_lock(&s->mu);
	if (kept)
		k->kept[k->n_kept++] = slot;
	else
		k->free[k->n_free++] = slot;
	pthread_mutex_unlock(&s->mu);
}

struct spares *spares_open(const char *state_dir, struct err *e)
{
	struct spares *s = xcalloc(1, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "%s/spare", state_dir);
	/* Never trust what an earlier run left: start from an empty pool. */
	fs_remove_tree(s->dir);
	if (mkdir(s->dir, 0700) < 0) {
		err_set(e, ERR_INTERNAL, "cannot create %s: %s", s->dir, strerror(errno));
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	kind_init(&s->dirs, 'd');
	kind_init(&s->logs, 'l');
	return s;
}

void spares_close(struct spares *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Ours alone, as a fresh one would be: owner, one name, no ACL or label. */
static bool plain_and_ours(int fd, const struct stat *st, nlink_t links)
{
	return st->st_uid == geteuid() && st->st_gid == getegid() && st->st_nlink == links &&
	       flistxattr(fd, NULL, 0) == 0;
}

/* Nothing but "." and "..". */
static bool dir_empty(int fd)
{
	char buf[512];
	long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
	int entries = 0;
	for (long off = 0; off < n;) {
		struct dirent64 *d = (struct dirent64 *)(buf + off);
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			return false;
		entries++;
		off += d->d_reclen;
	}
	return n > 0 && entries == 2 && syscall(SYS_getdents64, fd, buf, sizeof buf) == 0;
}

static bool clean_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	bool ok = fstat(fd, &st) == 0 && plain_and_ours(fd, &st, 2) && dir_empty(fd) && fchmod(fd, 0700) == 0;
	close(fd);
	return ok;
}

/* Emptied and closed for good: a write lease is granted only while no
 * other descriptor of the file is open anywhere, so no process of the
 * finished task can still write into what becomes the next task's log. */
static bool clean_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && plain_and_ours(fd, &st, 1) &&
		  fcntl(fd, F_SETLEASE, F_WRLCK) == 0;
	if (ok) {
		ok = ftruncate(fd, 0) == 0 && fchmod(fd, 0640) == 0;
		fcntl(fd, F_SETLEASE, F_UNLCK);
	}
	close(fd);
	return ok;
}

static bool pool_off(struct spares *s)
{
	pthread_mutex_lock(&s->mu);
	bool off = s->off;
	pthread_mutex_unlock(&s->mu);
	return off;
}

static bool keep(struct spares *s, struct spare_kind *k, const char *path, bool (*clean)(const char *))
{
	if (pool_off(s) || !clean(path))
		return false;
	int slot = take_slot(s, k, false);
	if (slot < 0)
		return false;
	char to[700];
	slot_path(s, k, slot, to, sizeof to);
	bool kept = rename(path, to) == 0;
	put_slot(s, k, slot, kept);
	return kept;
}

bool spares_keep_dir(struct spares *s, const char *path)
{
	return keep(s, &s->dirs, path, clean_dir);
}

bool spares_keep_log(struct spares *s, const char *path)
{
	return keep(s, &s->logs, path, clean_log);
}

/* RENAME_NOREPLACE: a path that exists (a task placed here again whose
 * files were never removed) is left as it is, and the spare stays kept. */
static bool reuse(struct spares *s, struct spare_kind *k, const char *path)
{
	int slot = take_slot(s, k, true);
	if (slot < 0)
		return false;
	char from[700];
	slot_path(s, k, slot, from, sizeof from);
	if (renameat2(AT_FDCWD, from, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
		put_slot(s, k, slot, false);
		return true;
	}
	bool still_there = errno == EEXIST;
	if (errno == EINVAL) {
		pthread_mutex_lock(&s->mu);
		s->off = true;
		pthread_mutex_unlock(&s->mu);
	}
	if (!still_there)
		remove(from);
	put_slot(s, k, slot, still_there);
	return false;
}

bool spares_reuse_dir(struct spares *s, const char *path)
{
	return reuse(s, &s->dirs, path);
}

bool spares_reuse_log(struct spares *s, const char *path)
{
	return reuse(s, &s->logs, path);
}
