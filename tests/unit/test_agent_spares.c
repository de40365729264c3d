/* Unit tests of the agent's spare pool (agent_spares.c) on the real
 * filesystem under /tmp: what is kept, what is refused, and what a reuse
 * puts in place. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "agent_spares.h"

static char dir[64];
static struct spares *sp;

static void setup(void)
{
	strcpy(dir, "/tmp/gpunode-spares-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	struct err e;
	sp = spares_open(dir, &e);
	cr_assert_not_null(sp, "%s", e.msg);
}

static void teardown(void)
{
	spares_close(sp);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(spares, .init = setup, .fini = teardown);

static const char *path(const char *name)
{
	static char buf[4][128];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
	return buf[i];
}

static void make_dir(const char *name, mode_t mode)
{
	cr_assert_eq(mkdir(path(name), 0700), 0);
	cr_assert_eq(chmod(path(name), mode), 0);
}

static void make_file(const char *name, const char *content)
{
	FILE *f = fopen(path(name), "w");
	cr_assert_not_null(f);
	fputs(content, f);
	fclose(f);
}

static bool exists(const char *name)
{
	return access(path(name), F_OK) == 0;
}

static mode_t mode_of(const char *name)
{
	struct stat st;
	cr_assert_eq(stat(path(name), &st), 0, "%s", name);
	return st.st_mode & 07777;
}

Test(spares, an_empty_dir_is_kept_and_comes_back_with_a_fresh_mode)
{
	make_dir("t1", 0755); /* a task may chmod its own scratch dir */
	cr_assert(spares_keep_dir(sp, path("t1")));
	cr_assert_not(exists("t1"));
	cr_assert(spares_reuse_dir(sp, path("t2")));
	cr_assert(exists("t2"));
	cr_assert_eq(mode_of("t2"), 0700);
	cr_assert_not(spares_reuse_dir(sp, path("t3")), "the pool held one dir");
}

Test(spares, a_dir_with_anything_in_it_is_refused)
{
	make_dir("t1", 0700);
	make_file("t1/left-behind", "x");
	cr_assert_not(spares_keep_dir(sp, path("t1")));
	cr_assert(exists("t1/left-behind"), "a refused dir is left for the caller to remove");
	make_dir("t2", 0700);
	make_dir("t2/sub", 0700);
	cr_assert_not(spares_keep_dir(sp, path("t2")));
}

Test(spares, a_dir_or_log_with_an_extended_attribute_is_refused)
{
	make_dir("t1", 0700);
	make_file("l1", "");
	/* A default ACL set by the task would reach the next task's files. */
	cr_assert_eq(setxattr(path("t1"), "user.mark", "1", 1, 0), 0, "user xattrs on /tmp");
	cr_assert_eq(setxattr(path("l1"), "user.mark", "1", 1, 0), 0, "user xattrs on /tmp");
	cr_assert_not(spares_keep_dir(sp, path("t1")));
	cr_assert_not(spares_keep_log(sp, path("l1")));
}

Test(spares, a_log_is_kept_emptied_and_reused_with_its_mode)
{
	make_file("a.log", "the earlier task's output\n");
	cr_assert_eq(chmod(path("a.log"), 0666), 0);
	cr_assert(spares_keep_log(sp, path("a.log")));
	cr_assert_not(exists("a.log"));
	cr_assert(spares_reuse_log(sp, path("b.log")));
	struct stat st;
	cr_assert_eq(stat(path("b.log"), &st), 0);
	cr_assert_eq(st.st_size, 0, "the next task's log starts empty");
	cr_assert_eq(st.st_mode & 07777, 0640);
}

Test(spares, a_log_still_open_elsewhere_is_refused)
{
	make_file("a.log", "x");
	int fd = open(path("a.log"), O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_not(spares_keep_log(sp, path("a.log")), "a process could still write into the next task's log");
	close(fd);
	cr_assert(spares_keep_log(sp, path("a.log")));
}

Test(spares, a_log_with_a_second_name_is_refused)
{
	make_file("a.log", "x");
	cr_assert_eq(link(path("a.log"), path("elsewhere")), 0);
	cr_assert_not(spares_keep_log(sp, path("a.log")), "the other name would read the next task's log");
}

Test(spares, a_symlink_is_never_followed)
{
	make_dir("real", 0700);
	cr_assert_eq(symlink(path("real"), path("link")), 0);
	cr_assert_not(spares_keep_dir(sp, path("link")));
	make_file("real.log", "x");
	cr_assert_eq(symlink(path("real.log"), path("link.log")), 0);
	cr_assert_not(spares_keep_log(sp, path("link.log")));
	cr_assert(exists("real"));
}

Test(spares, reuse_never_replaces_what_exists_and_keeps_the_spare)
{
	make_dir("t1", 0700);
	cr_assert(spares_keep_dir(sp, path("t1")));
	make_dir("busy", 0700);
	make_file("busy/f", "x");
	cr_assert_not(spares_reuse_dir(sp, path("busy")));
	cr_assert(exists("busy/f"));
	cr_assert(spares_reuse_dir(sp, path("t2")), "the spare is still there for the next task");
}

Test(spares, the_pool_is_bounded)
{
	char name[32];
	for (int i = 0; i <= SPARES_MAX; i++) {
		snprintf(name, sizeof name, "t%d", i);
		make_dir(name, 0700);
		bool kept = spares_keep_dir(sp, path(name));
		cr_assert_eq(kept, i < SPARES_MAX, "dir %d", i);
	}
	cr_assert(exists(name), "the one over the bound is left to the caller");
}

Test(spares, what_an_earlier_agent_left_is_removed_on_open)
{
	make_dir("t1", 0700);
	cr_assert(spares_keep_dir(sp, path("t1")));
	spares_close(sp);
	struct err e;
	sp = spares_open(dir, &e);
	cr_assert_not_null(sp, "%s", e.msg);
	cr_assert_not(spares_reuse_dir(sp, path("t2")), "a new pool starts empty");
	cr_assert_eq(rmdir(path("spare")), 0, "spare/ is empty after open");
}
