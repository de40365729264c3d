/* Tests of the OCI backend against the real runtimes: every test runs under
 * runc and under crun (setup applies scripts/crun_cgroup_fix.sh), with a real busybox image imported into the real image
 * store and simulated GPUs' stand-in device nodes. Needs root. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_oci.h"
#include "exec_oci_impl.h"
#include "gpu_devnodes.h"
#include "image_store.h"
#include "util.h"

static char dir[64], state[128], standins[160];

static void setup(void)
{
	log_set_quiet(true);
	strcpy(dir, "/tmp/gpunode-oci-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(state, sizeof state, "%s/agent", dir);
	snprintf(standins, sizeof standins, "%s/devnodes", state);
	const char *src = getenv("GPUNODE_SRC");
	cr_assert_not_null(src, "GPUNODE_SRC must name the source tree (meson sets it)");
	char cmd[512];
	/* crun refuses hybrid cgroup hosts until the fix (idempotent) ran. */
	snprintf(cmd, sizeof cmd, "%s/scripts/crun_cgroup_fix.sh", src);
	cr_assert_eq(system(cmd), 0, "crun cannot run on this host's cgroups");
	snprintf(cmd, sizeof cmd, "%s/tests/images/make_busybox_images.sh %s/img", src, dir);
	cr_assert_eq(system(cmd), 0);
	char store[256], tar[256];
	struct err e;
	image_store_dir(state, store, sizeof store);
	snprintf(tar, sizeof tar, "%s/img/oci-layout.tar", dir);
	cr_assert_eq(image_import(store, tar, "busybox:local", NULL, NULL, NULL, &e), 0, "%s", e.msg);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	system(cmd);
}

/* Parameters are indexes: Criterion's workers do not share the runner's
 * address space, so a pointer parameter would dangle. */
static const char *const runtime_names[] = {"runc", "crun"};
static int runtime_ids[] = {0, 1};
#define RUNTIME_PARAMS(name) \
	ParameterizedTestParameters(oci, name) { return cr_make_param_array(int, runtime_ids, 2); }

RUNTIME_PARAMS(runs)

static struct exec_backend *backend(const char *runtime)
{
	struct err e;
	struct exec_backend *b = exec_oci_new(state, runtime, &e);
	cr_assert_not_null(b, "%s", e.msg);
	return b;
}

struct run {
	char id[TASK_ID_LEN + 1];
	char log[256], scratch[256];
	char *argv[4];
	struct exec_spec s;
};

static const char uuids[2][TASK_GPU_UUID_MAX] = {"GPU-sim-0", "GPU-sim-1"};

static void run_init(struct run *r, int n, const char *script)
{
	snprintf(r->id, sizeof r->id, "00000000000a%08d", n);
	snprintf(r->log, sizeof r->log, "%s/%s.log", dir, r->id);
	snprintf(r->scratch, sizeof r->scratch, "%s/scratch-%s", dir, r->id);
	cr_assert_eq(mkdir(r->scratch, 0700), 0);
	r->argv[0] = "sh";
	r->argv[1] = "-c";
	r->argv[2] = (char *)script;
	r->argv[3] = NULL;
	r->s = (struct exec_spec){.task_id = r->id, .host = "test-host", .argv = r->argv, .argc = 3,
				  .workdir = r->scratch, .log_path = r->log, .image = "busybox:local"};
}

static int start(struct exec_backend *b, struct run *r, struct err *e)
{
	char reason[EXEC_REASON_MAX] = "";
	if (b->prepare(b, &r->s, reason, e) < 0 || b->start(b, &r->s, reason, e) < 0)
		return -1;
	return 0;
}

static void wait_one(struct exec_backend *b, struct exec_exit *x)
{
	cr_assert_eq(b->wait_exit(b, 30000, x), 1, "no exit within 30 s");
}

static char *read_log(const struct run *r)
{
	static char buf[8192];
	FILE *f = fopen(r->log, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

ParameterizedTest(int *rt_id, oci, runs, .init = setup, .fini = teardown)
{
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	struct run r;
	run_init(&r, 1, "echo hello from $GPUNODE_TASK_ID; echo $IMAGE_VAR; pwd; touch /work/out; "
			"grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; exit 3");
	struct err e;
	cr_assert_eq(start(b, &r, &e), 0, "%s", e.msg);
	struct exec_exit x;
	wait_one(b, &x);
	cr_assert_str_eq(x.task_id, r.id);
	cr_assert_eq(x.exit_code, 3);
	cr_assert_str_eq(x.failure_reason, "");
	char *log = read_log(&r);
	cr_assert_not_null(strstr(log, "hello from 00000000000a00000001"), "%s", log);
	cr_assert_not_null(strstr(log, "from-image"), "the image's env reaches the task: %s", log);
	cr_assert_not_null(strstr(log, "/work\n"), "cwd is the scratch dir: %s", log);
	cr_assert_not_null(strstr(log, "CapEff:\t00000000000004fb"), "%s", log);
	cr_assert_not_null(strstr(log, "NoNewPrivs:\t1"), "%s", log);
	char out[300];
	snprintf(out, sizeof out, "%s/out", r.scratch);
	cr_assert_eq(access(out, F_OK), 0, "the scratch dir is the host's");
	b->cleanup(b, r.id);
	char bundle[256];
	snprintf(bundle, sizeof bundle, "%s/oci/bundles/%s", state, r.id);
	cr_assert_neq(access(bundle, F_OK), 0, "cleanup removed the bundle");
	b->destroy(b);
}

RUNTIME_PARAMS(seccomp_and_isolation)
ParameterizedTest(int *rt_id, oci, seccomp_and_isolation, .init = setup, .fini = teardown)
{
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	struct run r;
	/* mount and unshare are denied by seccomp; no network but loopback;
	 * the host's processes are invisible; the root is the image's. */
	run_init(&r, 2, "mount -t tmpfs x /mnt 2>&1; unshare -n true 2>&1; ls /sys/class/net; "
			"echo pid1=$(cat /proc/1/comm); ls /etc/layer2");
	struct err e;
	cr_assert_eq(start(b, &r, &e), 0, "%s", e.msg);
	struct exec_exit x;
	wait_one(b, &x);
	char *log = read_log(&r);
	cr_assert_not_null(strstr(log, "mount: permission denied"), "%s", log);
	cr_assert_not_null(strstr(log, "unshare: unshare(0x40000000): Operation not permitted"), "%s", log);
	cr_assert_not_null(strstr(log, "lo\n"), "%s", log);
	cr_assert_null(strstr(log, "eth"), "no host interface in the container: %s", log);
	cr_assert_not_null(strstr(log, "pid1=sh"), "its own pid namespace: %s", log);
	cr_assert_not_null(strstr(log, "/etc/layer2"), "%s", log);
	b->destroy(b);
}

RUNTIME_PARAMS(memory_limit_oom)
ParameterizedTest(int *rt_id, oci, memory_limit_oom, .init = setup, .fini = teardown)
{
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	struct run r;
	/* dd's 64 MiB buffer is filled from /dev/zero: 64 MiB touched. */
	run_init(&r, 3, "dd if=/dev/zero of=/dev/null bs=64M count=2");
	r.s.memory_bytes = 16 << 20;
	struct err e;
	cr_assert_eq(start(b, &r, &e), 0, "%s", e.msg);
	struct exec_exit x;
	wait_one(b, &x);
	cr_assert_str_eq(x.failure_reason, "oom", "code %d: %s", x.exit_code, read_log(&r));
	cr_assert_eq(x.exit_code, 137);
	cr_assert_gt(x.usage.peak_mem_bytes, 8 << 20);
	cr_assert_leq(x.usage.peak_mem_bytes, 16 << 20);
	b->destroy(b);
}

RUNTIME_PARAMS(timeout_then_kill)
ParameterizedTest(int *rt_id, oci, timeout_then_kill, .init = setup, .fini = teardown)
{
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	struct run r;
	/* sh as pid 1 ignores SIGTERM: only the SIGKILL after the grace ends it. */
	run_init(&r, 4, "sleep 60");
	r.s.timeout_ms = 300;
	r.s.stop_grace_ms = 200;
	struct err e;
	cr_assert_eq(start(b, &r, &e), 0, "%s", e.msg);
	struct exec_exit x;
	wait_one(b, &x);
	cr_assert_str_eq(x.failure_reason, "timeout");
	cr_assert_eq(x.signal, SIGKILL);
	b->destroy(b);
}

RUNTIME_PARAMS(gpu_devices)
ParameterizedTest(int *rt_id, oci, gpu_devices, .init = setup, .fini = teardown)
{
	struct gpu gpus[2] = {{.index = 0, .simulated = true}, {.index = 1, .simulated = true}};
	str_copy(gpus[0].uuid, sizeof gpus[0].uuid, uuids[0]);
	str_copy(gpus[1].uuid, sizeof gpus[1].uuid, uuids[1]);
	struct err e;
	cr_assert_eq(gpu_devnodes_create_standins(standins, "test-host", gpus, 2, &e), 0, "%s", e.msg);
	struct gpu_devnode nodes[GPU_DEVNODES_MAX];
	int n;
	cr_assert_eq(gpu_devnodes_for_task(gpus, 2, &uuids[1], 1, "test-host", standins, NULL, nodes, &n, &e), 0);
	unsigned major, mine, other;
	gpu_devnodes_standin_numbers("test-host", 1, &major, &mine);
	gpu_devnodes_standin_numbers("test-host", 0, &major, &other);
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	struct run r;
	run_init(&r, 5, "ls /dev; echo $NVIDIA_VISIBLE_DEVICES; cat /dev/nvidia1; mknod /tmp/x c 120 1 2>&1; "
			"sleep 30");
	r.s.gpu_uuids = &uuids[1];
	r.s.n_gpus = 1;
	r.s.devnodes = nodes;
	r.s.n_devnodes = n;
	cr_assert_eq(start(b, &r, &e), 0, "%s", e.msg);
	/* CAP_MKNOD is given back to one exec'd process, so that only the
	 * device cgroup stands between it and the other GPU's node. In /dev:
	 * the rootfs is mounted nodev. */
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "%s --root %s/oci/root exec --cap CAP_MKNOD %s sh -c 'mknod /dev/mine c %u %u && "
		 "cat /dev/mine; mknod /dev/other c %u %u && cat /dev/other' > %s/exec.out 2>&1",
		 runtime_names[*rt_id], state, r.id, major, mine, major, other, dir);
	system(cmd);
	b->stop(b, r.id, 0);
	struct exec_exit x;
	wait_one(b, &x);
	char *log = read_log(&r);
	cr_assert_not_null(strstr(log, "nvidia1\n"), "%s", log);
	cr_assert_null(strstr(log, "nvidia0"), "another GPU's node is visible: %s", log);
	cr_assert_null(strstr(log, "nvidiactl"), "%s", log);
	cr_assert_not_null(strstr(log, "GPU-sim-1\n"), "%s", log);
	cr_assert_not_null(strstr(log, "No such device or address"), "its own node opens (no driver): %s", log);
	cr_assert_not_null(strstr(log, "mknod: /tmp/x: Operation not permitted"), "no CAP_MKNOD: %s", log);
	struct run out = {0};
	snprintf(out.log, sizeof out.log, "%s/exec.out", dir);
	char *exec_out = read_log(&out);
	cr_assert_not_null(strstr(exec_out, "cat: can't open '/dev/mine': No such device or address"), "%s",
			   exec_out);
	cr_assert_not_null(strstr(exec_out, "/dev/other"), "%s", exec_out);
	cr_assert_not_null(strstr(exec_out, "Operation not permitted"), "the cgroup refuses the other GPU: %s",
			   exec_out);
	b->destroy(b);
}

RUNTIME_PARAMS(image_not_found)
ParameterizedTest(int *rt_id, oci, image_not_found, .init = setup, .fini = teardown)
{
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	struct run r;
	run_init(&r, 6, "true");
	r.s.image = "nosuch:1";
	char reason[EXEC_REASON_MAX] = "";
	struct err e;
	cr_assert_eq(b->prepare(b, &r.s, reason, &e), -1);
	cr_assert_str_eq(reason, "image_not_found");
	cr_assert_not_null(strstr(e.msg, "nosuch:1"), "%s", e.msg);
	/* A command the image does not have: start_failed, the runtime's words in the log. */
	run_init(&r, 7, "true");
	r.argv[0] = "/no/such/binary";
	cr_assert_eq(b->prepare(b, &r.s, reason, &e), 0, "%s", e.msg);
	cr_assert_eq(b->start(b, &r.s, reason, &e), -1);
	cr_assert_str_eq(reason, "start_failed");
	cr_assert_not_null(strstr(read_log(&r), "/no/such/binary"), "%s", read_log(&r));
	cr_assert_eq(b->running(b), 0);
	b->destroy(b);
}

/* An "agent" in a child process builds a backend, does work (which
 * _exits 1 when it fails) and is then SIGKILLed, as in a crash. */
static void agent_killed_after(const char *runtime, void (*work)(struct exec_backend *b, void *arg), void *arg)
{
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t agent = fork();
	if (agent == 0) {
		work(backend(runtime), arg);
		write(ready[1], "k", 1);
		pause();
		_exit(0);
	}
	char c;
	cr_assert_eq(read(ready[0], &c, 1), 1, "the first agent could not start its runs");
	kill(agent, SIGKILL);
	waitpid(agent, NULL, 0);
	close(ready[0]);
	close(ready[1]);
}

static void start_three(struct exec_backend *b, void *arg)
{
	struct run *runs = arg;
	struct err e;
	for (int i = 0; i < 3; i++)
		if (start(b, &runs[i], &e) < 0)
			_exit(1);
}

/* An "agent" in a child process starts three runs and is SIGKILLed; a new
 * backend adopts: the running one comes back (and can be stopped), the one
 * that ended meanwhile reports its exit code, the unclaimed one is removed. */
RUNTIME_PARAMS(adopt_after_kill)
ParameterizedTest(int *rt_id, oci, adopt_after_kill, .init = setup, .fini = teardown)
{
	struct run runs[3];
	run_init(&runs[0], 10, "echo first; sleep 60");
	run_init(&runs[1], 11, "sleep 1; exit 7");
	run_init(&runs[2], 12, "sleep 60");
	agent_killed_after(runtime_names[*rt_id], start_three, runs);
	/* Run 1 ends while no agent watches: its shim leaves the exit file. */
	char exit_file[300];
	snprintf(exit_file, sizeof exit_file, "%s/oci/bundles/%s/exit", state, runs[1].id);
	for (int i = 0; i < 3000 && access(exit_file, F_OK) != 0; i++)
		usleep(10000);
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	struct exec_adopt adopt[2] = {0};
	str_copy(adopt[0].task_id, sizeof adopt[0].task_id, runs[0].id);
	str_copy(adopt[1].task_id, sizeof adopt[1].task_id, runs[1].id);
	struct err e;
	cr_assert_eq(b->adopt(b, "test-host", adopt, 2, &e), 0, "%s", e.msg);
	cr_assert_eq(adopt[0].state, EXEC_ADOPT_RUNNING);
	cr_assert_eq(adopt[1].state, EXEC_ADOPT_EXITED);
	cr_assert_eq(adopt[1].exit.exit_code, 7, "%s: code %d signal %d %s", runtime_names[*rt_id], adopt[1].exit.exit_code,
		     adopt[1].exit.signal,
		     adopt[1].exit.failure_message);
	char bundle[256];
	snprintf(bundle, sizeof bundle, "%s/oci/bundles/%s", state, runs[2].id);
	cr_assert_neq(access(bundle, F_OK), 0, "the orphan's bundle is gone");
	cr_assert_eq(b->running(b), 1);
	cr_assert_eq(b->stop(b, runs[0].id, 0), 0);
	struct exec_exit x;
	wait_one(b, &x);
	cr_assert_str_eq(x.task_id, runs[0].id);
	cr_assert_eq(x.signal, SIGKILL);
	b->cleanup(b, runs[1].id);
	b->destroy(b);
}

/* --- the shims started ahead of need -------------------------------- */

/* The test process's children that are shims. */
static int child_shims(pid_t *out, int max)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char path[300], cmd[256];
		snprintf(path, sizeof path, "/proc/self/task/%s/children", de->d_name);
		FILE *f = de->d_name[0] == '.' ? NULL : fopen(path, "r");
		long pid;
		while (f && n < max && fscanf(f, "%ld", &pid) == 1) {
			snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
			FILE *c = fopen(path, "r");
			size_t len = c ? fread(cmd, 1, sizeof cmd - 1, c) : 0;
			cmd[len] = 0;
			if (c)
				fclose(c);
			if (strstr(cmd, "gpunode-shim"))
				out[n++] = (pid_t)pid;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

/* The number of open fds of pid, -1 if it is gone. */
static int fd_count(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The one spare shim once it waits for its task (it closed what it does
 * not keep: fds 0-4 are left); -1 if none does within 10 s. */
static pid_t waiting_spare(void)
{
	for (int i = 0; i < 1000; i++, usleep(10000)) {
		pid_t shims[4];
		if (child_shims(shims, 4) == 1 && fd_count(shims[0]) == 5)
			return shims[0];
	}
	return -1;
}

static bool gone_within(pid_t pid, int ms)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d", (int)pid);
	for (int i = 0; i < ms / 10 && access(path, F_OK) == 0; i++)
		usleep(10000);
	return access(path, F_OK) != 0;
}

/* A spare waits with nothing of the agent's but its pipes and the runtime's
 * sealed copy, and ends with the agent: killed agents leak no shims. */
RUNTIME_PARAMS(spare_shim)
ParameterizedTest(int *rt_id, oci, spare_shim, .init = setup, .fini = teardown)
{
	int report[2];
	cr_assert_eq(pipe(report), 0);
	pid_t agent = fork();
	if (agent == 0) {
		int leak = open("/dev/null", O_RDONLY); /* not close-on-exec, as a careless library's */
		struct exec_backend *b = backend(runtime_names[*rt_id]);
		pid_t spare = waiting_spare();
		char fd4[64], leaked[64];
		snprintf(fd4, sizeof fd4, "/proc/%d/fd/4", (int)spare);
		snprintf(leaked, sizeof leaked, "/proc/%d/fd/%d", (int)spare, leak);
		int copy = open(fd4, O_RDONLY);
		bool sealed = copy >= 0 && fcntl(copy, F_GET_SEALS) == OCI_RUNTIME_SEALS;
		bool clean = access(leaked, F_OK) != 0;
		pid_t msg[3] = {spare, sealed, clean};
		write(report[1], msg, sizeof msg);
		pause();
		(void)b;
		_exit(0);
	}
	pid_t msg[3];
	cr_assert_eq(read(report[0], msg, sizeof msg), (ssize_t)sizeof msg);
	kill(agent, SIGKILL);
	waitpid(agent, NULL, 0);
	cr_assert_gt(msg[0], 0, "no spare shim waits with fds 0-4 alone");
	cr_assert(msg[1], "the spare holds the runtime's sealed copy as fd 4");
	cr_assert(msg[2], "the spare holds none of the agent's other fds");
	cr_assert(gone_within(msg[0], 10000), "the spare shim outlived its agent");
}

/* The runtime's copy follows its file: an upgraded runtime is what the
 * next spare runs. */
RUNTIME_PARAMS(runtime_copy_refreshed)
ParameterizedTest(int *rt_id, oci, runtime_copy_refreshed, .init = setup, .fini = teardown)
{
	char rt[128], cmd[700];
	snprintf(rt, sizeof rt, "%s/rt", dir);
	snprintf(cmd, sizeof cmd, "cp \"$(command -v %s || echo /usr/sbin/%s)\" %s", runtime_names[*rt_id],
		 runtime_names[*rt_id], rt);
	cr_assert_eq(system(cmd), 0);
	struct err e;
	struct exec_backend *b = exec_oci_new(state, rt, &e);
	cr_assert_not_null(b, "%s", e.msg);
	pid_t shim = waiting_spare();
	cr_assert_gt(shim, 0);
	char fd4[64];
	snprintf(fd4, sizeof fd4, "/proc/%d/fd/4", (int)shim);
	struct stat before, after;
	cr_assert_eq(stat(fd4, &before), 0);
	/* Replaced the way package managers do: a new file renamed over it. */
	snprintf(cmd, sizeof cmd, "cp %s %s.new && mv %s.new %s", rt, rt, rt, rt);
	cr_assert_eq(system(cmd), 0);
	struct run r;
	run_init(&r, 20, "true");
	cr_assert_eq(start(b, &r, &e), 0, "%s", e.msg);
	struct exec_exit x;
	wait_one(b, &x);
	cr_assert_eq(x.exit_code, 0);
	shim = waiting_spare();
	cr_assert_gt(shim, 0, "one spare after the start");
	snprintf(fd4, sizeof fd4, "/proc/%d/fd/4", (int)shim);
	cr_assert_eq(stat(fd4, &after), 0);
	cr_assert_neq(before.st_ino, after.st_ino, "the next spare runs the new file's copy");
	b->cleanup(b, r.id);
	b->destroy(b);
}

/* The agent's cgroup (parent of its runs') in the pids hierarchy (v1) or
 * the unified one (v2). */
static bool cgroup_exists(const char *cg)
{
	char path[512];
	bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
	snprintf(path, sizeof path, "/sys/fs/cgroup%s%s", v2 ? "" : "/pids", cg);
	return access(path, F_OK) == 0;
}

/* The agent's cgroup stays between runs (a start then makes one level, not
 * two) and goes when the agent stops. */
RUNTIME_PARAMS(agent_cgroup_kept)
ParameterizedTest(int *rt_id, oci, agent_cgroup_kept, .init = setup, .fini = teardown)
{
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	struct run r;
	run_init(&r, 21, "true");
	struct err e;
	cr_assert_eq(start(b, &r, &e), 0, "%s", e.msg);
	char config[300];
	snprintf(config, sizeof config, "%s/oci/bundles/%s/config.json", state, r.id);
	json_t *spec = json_load_file(config, 0, NULL);
	cr_assert_not_null(spec);
	char parent[256];
	str_copy(parent, sizeof parent,
		 json_string_value(json_object_get(json_object_get(spec, "linux"), "cgroupsPath")));
	json_decref(spec);
	*strrchr(parent, '/') = 0;
	struct exec_exit x;
	wait_one(b, &x);
	b->cleanup(b, r.id);
	cr_assert(cgroup_exists(parent), "%s removed while the agent runs", parent);
	b->destroy(b);
	cr_assert_not(cgroup_exists(parent), "%s left after the agent stopped", parent);
}

/* --- warm containers ------------------------------------------------ */

/* Runs script as client's warm task n and returns its log (static). */
static char *run_warm(struct exec_backend *b, int n, const char *client, const char *script)
{
	static struct run r;
	run_init(&r, n, script);
	r.s.client = client;
	r.s.reuse_warm = true;
	struct err e;
	cr_assert_eq(start(b, &r, &e), 0, "%s", e.msg);
	struct exec_exit x;
	wait_one(b, &x);
	cr_assert_str_eq(x.task_id, r.id);
	cr_assert_eq(x.exit_code, 0, "%s: %s", read_log(&r), x.failure_message);
	b->cleanup(b, r.id);
	return read_log(&r);
}

/* The warm containers on disk (STATE/oci/warm) and in the runtime. */
static int warm_count(const char *runtime)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "{ ls %s/oci/warm; %s --root %s/oci/root list -q 2>/dev/null | grep '^warm-'; } | wc -l",
		 state, runtime, state);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

#define PEEK "echo host=$(hostname); ls /work; touch /work/mark-$GPUNODE_TASK_ID; echo id=$(id -u)"

RUNTIME_PARAMS(warm_reuse)
ParameterizedTest(int *rt_id, oci, warm_reuse, .init = setup, .fini = teardown)
{
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	char a1[256], a2[256], b1[256];
	str_copy(a1, sizeof a1, run_warm(b, 30, "alice", PEEK));
	str_copy(a2, sizeof a2, run_warm(b, 31, "alice", PEEK));
	str_copy(b1, sizeof b1, run_warm(b, 32, "bob", PEEK));
	char *h1 = strstr(a1, "host=warm-"), *h2 = strstr(a2, "host=warm-"), *h3 = strstr(b1, "host=warm-");
	cr_assert(h1 && h2 && h3, "runs in warm containers: %s | %s | %s", a1, a2, b1);
	cr_assert_eq(strcspn(h1, "\n"), strcspn(h2, "\n"));
	cr_assert_eq(strncmp(h1, h2, strcspn(h1, "\n")), 0, "alice's second run reuses her container: %s | %s", a1, a2);
	cr_assert_neq(strncmp(h1, h3, strcspn(h1, "\n")), 0, "bob ran in alice's container: %s | %s", a1, b1);
	cr_assert_null(strstr(a2, "mark-"), "the scratch dir is wiped between runs: %s", a2);
	cr_assert_not_null(strstr(a1, "id=0"), "%s", a1);
	cr_assert_eq(warm_count(runtime_names[*rt_id]), 4, "two warm containers, on disk and in the runtime");
	b->destroy(b);
	cr_assert_eq(warm_count(runtime_names[*rt_id]), 0, "warm containers left after destroy");
}

/* A stopped run may leave processes behind: its container is not reused. */
RUNTIME_PARAMS(warm_stopped_discarded)
ParameterizedTest(int *rt_id, oci, warm_stopped_discarded, .init = setup, .fini = teardown)
{
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	char first[256];
	str_copy(first, sizeof first, run_warm(b, 33, "alice", PEEK));
	struct run r;
	run_init(&r, 34, "sleep 60");
	r.s.client = "alice";
	r.s.reuse_warm = true;
	struct err e;
	cr_assert_eq(start(b, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(b->stop(b, r.id, 0), 0);
	struct exec_exit x;
	wait_one(b, &x);
	cr_assert(x.signal == SIGTERM || x.signal == SIGKILL, "the stop reached the exec'd run (code %d)", x.exit_code);
	b->cleanup(b, r.id);
	char *after = run_warm(b, 35, "alice", PEEK);
	char *h1 = strstr(first, "host="), *h2 = strstr(after, "host=");
	cr_assert(h1 && h2);
	cr_assert_neq(strncmp(h1, h2, strcspn(h1, "\n")), 0, "the stopped run's container was reused");
	b->destroy(b);
}

/* An idle warm container goes after the idle time. */
RUNTIME_PARAMS(warm_idle_expiry)
ParameterizedTest(int *rt_id, oci, warm_idle_expiry, .init = setup, .fini = teardown)
{
	setenv("GPUNODE_OCI_WARM_IDLE_MS", "300", 1);
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	run_warm(b, 36, "alice", "true");
	cr_assert_eq(warm_count(runtime_names[*rt_id]), 2);
	struct exec_exit x;
	for (int i = 0; i < 100 && warm_count(runtime_names[*rt_id]) > 0; i++)
		cr_assert_eq(b->wait_exit(b, 100, &x), 0);
	cr_assert_eq(warm_count(runtime_names[*rt_id]), 0, "the idle warm container is still there after 10 s");
	b->destroy(b);
}

/* alice's warm run ends, bob's keeps running in its warm container. */
static void warm_runs_for_alice_and_bob(struct exec_backend *b, void *arg)
{
	run_warm(b, 37, "alice", "true");
	struct run r;
	run_init(&r, 38, "sleep 60");
	r.s.client = "bob";
	r.s.reuse_warm = true;
	struct err e;
	if (start(b, &r, &e) < 0)
		_exit(1);
}

/* A killed agent's warm containers (and a run in one) do not outlive the
 * next agent's adopt. */
RUNTIME_PARAMS(warm_after_agent_kill)
ParameterizedTest(int *rt_id, oci, warm_after_agent_kill, .init = setup, .fini = teardown)
{
	agent_killed_after(runtime_names[*rt_id], warm_runs_for_alice_and_bob, NULL);
	cr_assert_eq(warm_count(runtime_names[*rt_id]), 4);
	struct exec_backend *b = backend(runtime_names[*rt_id]);
	struct exec_adopt adopt[1] = {0};
	snprintf(adopt[0].task_id, sizeof adopt[0].task_id, "00000000000a%08d", 38);
	struct err e;
	cr_assert_eq(b->adopt(b, "test-host", adopt, 1, &e), 0, "%s", e.msg);
	cr_assert_eq(adopt[0].state, EXEC_ADOPT_GONE, "a run in a warm container is not taken back");
	cr_assert_eq(warm_count(runtime_names[*rt_id]), 0, "warm containers left after adopt");
	cr_assert_eq(b->running(b), 0);
	b->destroy(b);
}
