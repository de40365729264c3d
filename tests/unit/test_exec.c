/* Unit tests of the process executor: the real posix_spawn + pidfd path. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "util.h"

static char dir[64];
static struct exec_backend *b;

static void setup(void)
{
	strcpy(dir, "/tmp/gpunode-exec-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	struct err e;
	b = exec_process_new(&e);
	cr_assert_not_null(b, "%s", e.msg);
}

static void teardown(void)
{
	b->destroy(b);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(exec, .init = setup, .fini = teardown);

static const char uuids[2][TASK_GPU_UUID_MAX] = {"GPU-aaaa", "GPU-bbbb"};

static int start_timed(const char *id, const char *script, int n_gpus, char **env, int n_env, int64_t timeout_ms,
		       struct err *e)
{
	char log[128], reason[EXEC_REASON_MAX] = "";
	snprintf(log, sizeof log, "%s/%s.log", dir, id);
	char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
	struct exec_spec s = {.task_id = id, .argv = argv, .argc = 3, .env = env, .n_env = n_env,
			      .gpu_uuids = uuids, .n_gpus = n_gpus, .milli = 1000, .workdir = dir, .log_path = log,
			      .timeout_ms = timeout_ms, .stop_grace_ms = 200};
	return b->start(b, &s, reason, e);
}

static int start(const char *id, const char *script, int n_gpus, char **env, int n_env, struct err *e)
{
	return start_timed(id, script, n_gpus, env, n_env, 0, e);
}

static struct exec_exit wait_one(void)
{
	struct exec_exit x;
	cr_assert_eq(b->wait_exit(b, 10000, &x), 1, "no exit within 10 s");
	return x;
}

static void read_log(const char *id, char *buf, size_t cap)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s.log", dir, id);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

Test(exec, exit_code_and_output_reach_the_log)
{
	struct err e;
	cr_assert_eq(start("t1", "echo out; echo err >&2; exit 7", 1, NULL, 0, &e), 0, "%s", e.msg);
	struct exec_exit x = wait_one();
	cr_assert_str_eq(x.task_id, "t1");
	cr_assert_eq(x.exit_code, 7);
	cr_assert_eq(x.signal, 0);
	char log[256];
	read_log("t1", log, sizeof log);
	cr_assert_str_eq(log, "out\nerr\n");
}

Test(exec, gpus_are_named_exactly_and_cannot_be_overridden)
{
	struct err e;
	char *env[] = {"CUDA_VISIBLE_DEVICES=all", "MINE=1"};
	cr_assert_eq(start("t2", "echo $CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES $MINE $GPUNODE_TASK_ID", 2, env, 2,
			   &e),
		     0);
	cr_assert_eq(wait_one().exit_code, 0);
	char log[256];
	read_log("t2", log, sizeof log);
	cr_assert_str_eq(log, "GPU-aaaa,GPU-bbbb GPU-aaaa,GPU-bbbb 1 t2\n");
}

Test(exec, the_agents_environment_is_not_passed_on)
{
	setenv("GPUNODE_TOKEN", "secret", 1);
	struct err e;
	cr_assert_eq(start("t3", "echo \"[$GPUNODE_TOKEN]\"", 1, NULL, 0, &e), 0);
	cr_assert_eq(wait_one().exit_code, 0);
	char log[64];
	read_log("t3", log, sizeof log);
	cr_assert_str_eq(log, "[]\n");
}

Test(exec, a_task_gets_default_signals_and_an_empty_mask_whatever_the_agent_has)
{
	/* An agent under nohup, in a process that ignores SIGPIPE and blocks
	 * SIGTERM for sigwait (gpunode up). */
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	struct err e;
	/* exec: grep reads its own state as the task got it, not the shell's
	 * (dash blocks every signal while it forks a child). */
	cr_assert_eq(start("t9", "exec grep -E '^Sig(Blk|Ign)' /proc/self/status", 1, NULL, 0, &e), 0, "%s", e.msg);
	cr_assert_eq(wait_one().exit_code, 0);
	char log[256];
	read_log("t9", log, sizeof log);
	unsigned long long blocked, ignored;
	cr_assert_eq(sscanf(log, "SigBlk: %llx SigIgn: %llx", &blocked, &ignored), 2, "%s", log);
	cr_assert_eq(blocked, 0, "%s", log);
	/* Bits 31 and 32 are glibc's own signals 32 and 33: its posix_spawn
	 * leaves them ignored whatever one asks; glibc programs take them back. */
	cr_assert_eq(ignored & ~(3ULL << 31), 0, "%s", log);
}

Test(exec, a_missing_program_fails_to_start_with_a_reason)
{
	char log[128];
	snprintf(log, sizeof log, "%s/t4.log", dir);
	char *argv[] = {"/no/such/program", NULL};
	struct exec_spec s = {.task_id = "t4", .argv = argv, .argc = 1, .workdir = dir, .log_path = log};
	struct err e;
	char reason[EXEC_REASON_MAX] = "";
	cr_assert_eq(b->start(b, &s, reason, &e), -1);
	cr_assert(strstr(e.msg, "/no/such/program"), "%s", e.msg);
	cr_assert_str_eq(reason, EXEC_REASON_START_FAILED);
}

/* Alive and not a zombie: an orphan's zombie waits for PID 1 to reap it,
 * and PID 1 in a container may be slow to. */
static bool process_alive(int pid)
{
	char path[64], state = 0;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	int r = fscanf(f, "%*d (%*[^)]) %c", &state);
	fclose(f);
	return r == 1 && state != 'Z';
}

Test(exec, stop_terminates_the_whole_process_group)
{
	struct err e;
	/* The child ignores TERM, so only the SIGKILL after the grace ends it;
	 * its own background child must die with it. */
	cr_assert_eq(start("t5", "trap '' TERM; sleep 300 & echo $! > child.pid; wait", 1, NULL, 0, &e), 0);
	char path[128];
	snprintf(path, sizeof path, "%s/child.pid", dir);
	for (int i = 0; i < 200 && access(path, F_OK) != 0; i++)
		usleep(10000);
	usleep(50000);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	int child = 0;
	cr_assert_eq(fscanf(f, "%d", &child), 1);
	fclose(f);
	cr_assert_eq(b->running(b), 1);
	cr_assert_eq(b->stop(b, "t5", 200), 0);
	struct exec_exit x = wait_one();
	cr_assert_eq(x.signal, SIGKILL, "signal %d", x.signal);
	cr_assert_eq(x.exit_code, 128 + SIGKILL);
	usleep(100000);
	cr_assert_not(process_alive(child), "the task's child %d survived", child);
	cr_assert_eq(b->running(b), 0);
	cr_assert_eq(b->stop(b, "t5", 0), -1);
}

Test(exec, many_tasks_are_all_reaped)
{
	struct err e;
	char id[16];
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof id, "m%d", i);
		cr_assert_eq(start(id, "exit 0", 1, NULL, 0, &e), 0);
	}
	for (int i = 0; i < 50; i++)
		cr_assert_eq(wait_one().exit_code, 0);
	struct exec_exit x;
	cr_assert_eq(b->wait_exit(b, 50, &x), 0);
}

Test(exec, a_task_past_its_timeout_is_stopped_with_reason_timeout)
{
	struct err e;
	cr_assert_eq(start_timed("t7", "sleep 30", 1, NULL, 0, 300, &e), 0, "%s", e.msg);
	struct exec_exit x = wait_one();
	cr_assert_str_eq(x.task_id, "t7");
	cr_assert_eq(x.signal, SIGTERM, "signal %d", x.signal);
	cr_assert_str_eq(x.failure_reason, EXEC_REASON_TIMEOUT);
}

Test(exec, a_task_that_ends_in_time_has_no_failure_reason_and_reports_usage)
{
	struct err e;
	cr_assert_eq(start_timed("t8", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done", 1, NULL, 0, 60000, &e), 0,
		     "%s", e.msg);
	struct exec_exit x = wait_one();
	cr_assert_eq(x.exit_code, 0);
	cr_assert_str_eq(x.failure_reason, "");
	cr_assert_gt(x.usage.peak_mem_bytes, 0);
	cr_assert_gt(x.usage.cpu_seconds, 0.0);
}
