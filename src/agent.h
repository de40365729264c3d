/* agent.h — the agent: lives on a GPU host, dials out to the node, runs
 * what it is told on the GPUs it was given, reports back. It executes only
 * typed commands (start task, stop task); there is no "run this" escape.
 *
 * Threads: a poller (long-polls commands, starts and stops tasks), a reaper
 * (waits for task exits), a reporter (ships logs, sends reports and
 * heartbeats, re-registers when the node asks) and a janitor (removes the
 * files of delivered tasks, or keeps them empty in spare/ for the next ones:
 * agent_spares.h). On disk, under state_dir: tasks/ID/ is a task's scratch
 * dir, logs/ID.log its output, and exits.journal gets a line when it ends. An agent that crashes and restarts reports the exits it had not yet
 * delivered, and kills the orphans it can no longer account for.
 */
#ifndef GPUNODE_AGENT_H
#define GPUNODE_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "gpu_monitor.h"
#include "pool.h"

struct agent_config {
	char node_url[256];
	char token[128];
	char host[TASK_HOST_MAX];
	char state_dir[512];
	struct gpu *gpus; /* borrowed for the agent's life */
	int n_gpus;
	int64_t cpu_milli, mem_mb;
	int stop_grace_ms; /* SIGTERM to SIGKILL; default 5,000 */
	/* GPU health (gpu_monitor.h): kernel log to watch (NULL: none), boot id
	 * file (NULL: the kernel's), where readings come from. */
	const char *kmsg_path;
	const char *boot_id_path;
	enum gpu_readings readings;
	/* Executor (agent_exec.h): "docker", "oci", "process"; "": pick one.
	 * process_shared lets the process executor run more than one client's
	 * tasks (it isolates nothing). */
	char executor[16];
	bool process_shared;
};

struct agent;

/* Recovers state_dir, registers with the node (retrying while it is not
 * reachable, up to register_timeout_ms), starts the threads. */
int agent_start(const struct agent_config *cfg, int64_t register_timeout_ms, struct agent **out, struct err *e);
/* Stops the threads and every task it runs (they are requeued by the node
 * when this host registers again or is declared lost). */
void agent_stop(struct agent *a);

#endif
