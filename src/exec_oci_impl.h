/* exec_oci_impl.h — what the OCI backend's files and its shim share. The
 * shim (exec_oci_shim.c) is its own small executable linked with only
 * exec_oci_shared.c and libc, so it starts fast and never carries the
 * agent's threads or libraries. */
#ifndef GPUNODE_EXEC_OCI_IMPL_H
#define GPUNODE_EXEC_OCI_IMPL_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Files in a bundle dir besides config.json and the overlay's dirs. */
#define OCI_FILE_SHIM_PID "shim.pid" /* the shim's pid, written by the agent */
#define OCI_FILE_INIT_PID "init.pid" /* the container's init, written by the runtime */
#define OCI_FILE_EXIT "exit"         /* "code signal oom_kills cpu_ns peak_bytes", by the shim */
#define OCI_FILE_TIMEOUT "timeout"   /* "DEADLINE_MS GRACE_MS" (wall clock), by the agent: kept across restarts */
#define OCI_FILE_PROCESS "process.json" /* a warm run's process, for `RUNTIME exec --process` */
#define OCI_FILE_WARM "warm"         /* a warm run's: the id of the warm container it runs in */

/* The shim writes one line to fd OCI_SHIM_READY_FD once the container runs
 * ("ok") or could not be started ("error: why"), then closes it. */
#define OCI_SHIM_READY_FD 3

/* Where the agent gives the shim its sealed copy of the runtime to exec
 * (exec_oci_spawn.c); absent: the shim execs the runtime's file. */
#define OCI_SHIM_RUNTIME_FD 4
#define OCI_SHIM_RUNTIME_FD_STR "4"
/* The seals that make runc and crun take a memfd as their own copy. */
#define OCI_RUNTIME_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* What a task's cgroup says about it. -1: not available. */
struct oci_cgroup_stats {
	int64_t oom_kills;
	int64_t peak_bytes;
	int64_t cpu_ns;
};

/* Reads the stats of cgroups_path ("/gpunode/HOST/ID") on cgroup v2 or v1
 * (memory and cpuacct hierarchies). Missing files give -1 fields. */
void oci_cgroup_read(const char *cgroups_path, struct oci_cgroup_stats *out);

/* Removes the per-agent parent of cgroups_path ("/gpunode/HOST.STATE") in
 * every hierarchy when no run of that agent is left in it, so that agents
 * come and go without leaving empty cgroups behind. */
void oci_cgroup_remove_parent(const char *cgroups_path);

/* The line of the exit file. */
struct oci_exit_record {
	int exit_code; /* 128 + signal when killed */
	int signal;
	struct oci_cgroup_stats stats;
};
int oci_exit_record_parse(const char *text, struct oci_exit_record *out);

/* Reads a pid file (OCI_FILE_SHIM_PID, OCI_FILE_INIT_PID) in the bundle;
 * -1 if absent. */
pid_t oci_pid_read(const char *bundle, const char *file);

#endif
