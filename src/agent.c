/* agent.c — see agent.h for the threads and the on-disk layout. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_exec.h"
#include "agent_spares.h"
#include "client.h"
#include "exec.h"
#include "gpu_monitor.h"
#include "image_store_fs.h"
#include "util.h"

#define LOG_CHUNK (1u << 20)
#define LOG_SHIP_MS 1000
#define POLL_WAIT_MS 20000

struct agent_task {
	char id[TASK_ID_LEN + 1];
	char dir[600];
	long long shipped;     /* log bytes the node has */
	int64_t last_ship_ms;
	bool started, running_reported;
	bool start_failed;
	char message[256];
	char reason[EXEC_REASON_MAX]; /* start_failed: why (start_failed, image_not_found) */
	/* Between the command and the backend's answer: the start runs with no
	 * lock held (a pull may take long), and a stop that comes meanwhile is
	 * applied when it returns. */
	bool starting, stop_requested;
	int stop_grace_ms;
	json_t *spec;          /* the start command, held while starting */
	bool exited, exit_reported;
	struct exec_exit exit;
	bool forget;           /* the node moved it away: stop, report nothing */
	int attempt;           /* the node's attempt number of this run, echoed in reports */
	json_t *restart;       /* forgotten, and placed here again: start spec for when the old run ends */
	bool reclaimed;        /* placed here again after its earlier run was handed to the janitor */
	struct agent_task *next;
};

struct agent {
	struct agent_config cfg;
	struct exec_backend *exec;
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* the reporter waits here for work */
	struct agent_task *tasks;
	bool stopping, dirty;
	uint64_t after;        /* commands handled through this seq */
	int journal_fd;        /* exits.journal, O_APPEND */
	long long journal_bytes;
	int64_t heartbeat_ms;
	pthread_mutex_t reg_mu;
	unsigned reg_gen;      /* bumped by each registration */
	pthread_t poller, reaper, reporter, janitor;
	struct gpu_monitor *gpu_mon;
	char process_client[TASK_CLIENT_MAX]; /* the one client the process executor serves */
	uint64_t gpu_reported;  /* monitor version the node has heard */
	/* Directories of delivered tasks, removed by the janitor thread: on
	 * filesystems that discard on delete, removal costs milliseconds, which
	 * must not sit between one task's end and the next one's start. */
	pthread_cond_t janitor_cv; /* trash to remove; also broadcast when a removal is done */
	char removing[TASK_ID_LEN + 1]; /* the task whose files the janitor removes now */
	char (*trash)[TASK_ID_LEN + 1];
	size_t n_trash, cap_trash;
	struct spares *spares; /* delivered tasks' dirs and logs, reused */
};

/* --- on-disk layout: tasks/ID is a task's scratch dir (its cwd),
 * logs/ID.log its output, exits.journal one line per exit, spare/ the
 * emptied dirs and logs that the next tasks reuse. Few inode creations per
 * task matter: a trivial task is cheaper than a create on some
 * filesystems. --- */

#define JOURNAL_COMPACT_BYTES (1 << 20)

static void task_dir(const struct agent *a, const char *id, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/tasks/%.20s", a->cfg.state_dir, id);
}

static void task_log_path(const struct agent *a, const char *id, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/logs/%.20s.log", a->cfg.state_dir, id);
}

/* Removes a task's files: its log and its scratch dir whole (symlinks in it
 * are removed, never followed). */
static void remove_task_files(const struct agent *a, const char *id)
{
	char path[700];
	task_log_path(a, id, path, sizeof path);
	if (!spares_keep_log(a->spares, path))
		unlink(path);
	task_dir(a, id, path, sizeof path);
	if (spares_keep_dir(a->spares, path))
		return;
	/* Most scratch dirs are empty: one rmdir instead of a walk (open,
	 * getdents, stat, close) spares the janitor half its syscalls. */
	if (rmdir(path) == 0 || errno == ENOENT)
		return;
	fs_remove_tree(path);
}

/* "ID CODE SIGNAL CPU_S PEAK_BYTES REASON MESSAGE", REASON "-" when none;
 * the message is the rest of the line. */
static void format_exit(const struct exec_exit *x, char *buf, size_t cap)
{
	char msg[EXEC_MESSAGE_MAX];
	str_copy(msg, sizeof msg, x->failure_message);
	msg[strcspn(msg, "\n")] = '\0';
	snprintf(buf, cap, "%s %d %d %.6f %lld %s %s\n", x->task_id, x->exit_code, x->signal, x->usage.cpu_seconds,
		 (long long)x->usage.peak_mem_bytes, x->failure_reason[0] ? x->failure_reason : "-", msg);
}

/* Parses a journal line; false for a torn one. */
static bool parse_exit(const char *line, struct exec_exit *x)
{
	long long peak;
	int used = 0;
	memset(x, 0, sizeof *x);
	if (sscanf(line, "%20s %d %d %lf %lld %n", x->task_id, &x->exit_code, &x->signal, &x->usage.cpu_seconds,
		   &peak, &used) < 5 ||
	    !task_id_valid(x->task_id) || !used || !strchr(line, '\n'))
		return false;
	x->usage.peak_mem_bytes = peak;
	char reason[EXEC_REASON_MAX] = "";
	int rest = 0;
	if (sscanf(line + used, "%31s %n", reason, &rest) == 1 && strcmp(reason, "-") != 0) {
		str_copy(x->failure_reason, sizeof x->failure_reason, reason);
		str_copy(x->failure_message, sizeof x->failure_message, line + used + rest);
		x->failure_message[strcspn(x->failure_message, "\n")] = '\0';
	}
	return true;
}

/* Appends an exit to the journal with one write(): it must outlive a crash
 * of the agent process (the page cache does), not a power loss; after a
 * power loss the task is simply requeued. No fsync per task. Lock held. */
static void journal_append(struct agent *a, const struct exec_exit *x)
{
	char line[EXEC_MESSAGE_MAX + 160];
	format_exit(x, line, sizeof line);
	ssize_t n = write(a->journal_fd, line, strlen(line));
	if (n > 0)
		a->journal_bytes += n;
}

/* Reads every exit in the journal (last one wins per task). */
static struct exec_exit *journal_load(const struct agent *a, size_t *n)
{
	char path[600], line[EXEC_MESSAGE_MAX + 160];
	snprintf(path, sizeof path, "%s/exits.journal", a->cfg.state_dir);
	*n = 0;
	size_t cap = 0;
	struct exec_exit *out = NULL;
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof line, f)) {
		struct exec_exit x;
		if (!parse_exit(line, &x))
			continue; /* a torn last line after a crash */
		if (*n == cap)
			out = xrealloc(out, (cap = cap ? cap * 2 : 64) * sizeof *out);
		out[(*n)++] = x;
	}
	fclose(f);
	return out;
}

/* Rewrites the journal with only the exits not yet delivered, and reopens
 * it for appending. Lock held. */
static int journal_rewrite(struct agent *a, const struct agent_task *tasks, struct err *e)
{
	char path[600], tmp[620], line[EXEC_MESSAGE_MAX + 160];
	snprintf(path, sizeof path, "%s/exits.journal", a->cfg.state_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return err_set(e, ERR_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
	for (const struct agent_task *t = tasks; t; t = t->next)
		if (t->exited && !t->exit_reported) {
			format_exit(&t->exit, line, sizeof line);
			fputs(line, f);
		}
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	fclose(f);
	if (!ok || rename(tmp, path) < 0)
		return err_set(e, ERR_INTERNAL, "cannot replace %s: %s", path, strerror(errno));
	if (a->journal_fd >= 0)
		close(a->journal_fd);
	a->journal_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	a->journal_bytes = 0;
	return a->journal_fd < 0 ? err_set(e, ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno)) : 0;
}

static struct agent_task *find_task(struct agent *a, const char *id)
{
	for (struct agent_task *t = a->tasks; t; t = t->next)
		if (strcmp(t->id, id) == 0)
			return t;
	return NULL;
}

static struct agent_task *add_task(struct agent *a, const char *id)
{
	struct agent_task *t = xcalloc(1, sizeof *t);
	str_copy(t->id, sizeof t->id, id);
	task_dir(a, id, t->dir, sizeof t->dir);
	t->next = a->tasks;
	a->tasks = t;
	return t;
}

/* Takes a task off the list and frees it; its files stay. Lock held. */
static void unlink_task(struct agent *a, struct agent_task *t)
{
	for (struct agent_task **p = &a->tasks; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	json_decref(t->restart);
	json_decref(t->spec);
	free(t);
}

/* Forgets a task and hands its directory to the janitor. Lock held. */
static void drop_task(struct agent *a, struct agent_task *t)
{
	if (a->n_trash == a->cap_trash) {
		a->cap_trash = a->cap_trash ? a->cap_trash * 2 : 64;
		a->trash = xrealloc(a->trash, a->cap_trash * sizeof *a->trash);
	}
	memcpy(a->trash[a->n_trash++], t->id, sizeof t->id);
	pthread_cond_signal(&a->janitor_cv);
	unlink_task(a, t);
}

/* A task id is about to run here again: its files must not be trashed.
 * True when an earlier run was handed to the janitor (reclaim_from_janitor). */
static bool untrash(struct agent *a, const char *id)
{
	if (strcmp(a->removing, id) == 0)
		return true;
	for (size_t i = 0; i < a->n_trash; i++)
		if (strcmp(a->trash[i], id) == 0) {
			memmove(a->trash[i], a->trash[i + 1], (a->n_trash - i - 1) * sizeof *a->trash);
			a->n_trash--;
			return true;
		}
	return false;
}

/* Removes trashed directories until stopping and the trash is empty. */
static void *janitor_main(void *arg)
{
	struct agent *a = arg;
	char id[TASK_ID_LEN + 1];
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->n_trash && !a->stopping)
			pthread_cond_wait(&a->janitor_cv, &a->mu);
		if (!a->n_trash)
			break;
		memcpy(id, a->trash[--a->n_trash], sizeof id);
		memcpy(a->removing, id, sizeof id);
		pthread_mutex_unlock(&a->mu);
		a->exec->cleanup(a->exec, id);
		remove_task_files(a, id);
		pthread_mutex_lock(&a->mu);
		a->removing[0] = '\0';
		pthread_cond_broadcast(&a->janitor_cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* --- recovery after a crash --- */

static const struct exec_exit *find_exit(const struct exec_exit *exits, size_t n, const char *id)
{
	const struct exec_exit *found = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(exits[i].task_id, id) == 0)
			found = &exits[i]; /* the last line wins */
	return found;
}

/* A run the executor found again after the restart. Lock held. */
static void apply_adopted(struct agent *a, struct agent_task *t, const struct exec_adopt *r)
{
	if (r->state == EXEC_ADOPT_RUNNING) {
		t->started = true;
		log_msg("info", "agent", "task=%s still runs in its %s container: adopted", t->id, a->exec->name);
	} else if (r->state == EXEC_ADOPT_EXITED) {
		t->exit = r->exit;
		t->started = t->exited = true; /* journal_rewrite records it */
		log_msg("info", "agent", "task=%s ended while the agent was away: code=%d", t->id, t->exit.exit_code);
	} else {
		log_msg("warn", "agent", "task=%s was running when the agent stopped; dropped (node requeues it)", t->id);
		drop_task(a, t);
	}
}

/* Asks the executor about the task dirs without a recorded exit: it takes
 * back what still runs, reports what ended, and removes every other run
 * labelled for this host (orphans). Lock held. */
static int adopt_runs(struct agent *a, struct agent_task **pending, size_t n, struct err *e)
{
	struct exec_adopt *runs = xcalloc(n + 1, sizeof *runs);
	char(*logs)[700] = xcalloc(n + 1, sizeof *logs);
	for (size_t i = 0; i < n; i++) {
		str_copy(runs[i].task_id, sizeof runs[i].task_id, pending[i]->id);
		task_log_path(a, pending[i]->id, logs[i], sizeof logs[i]);
		runs[i].log_path = logs[i];
	}
	int rc = a->exec->adopt(a->exec, a->cfg.host, runs, (int)n, e);
	for (size_t i = 0; i < n; i++)
		apply_adopted(a, pending[i], rc == 0 ? &runs[i] : &(struct exec_adopt){.state = EXEC_ADOPT_GONE});
	free(runs);
	free(logs);
	return rc;
}

/* Exits in the journal whose task dir still exists were not delivered:
 * report them again. Task dirs without an exit are the executor's to adopt
 * (adopt_runs); what it cannot take back is forgotten and the node requeues
 * it. Then the journal is rewritten with what is still owed. Lock held. */
static int recover_tasks(struct agent *a, struct err *e)
{
	size_t n_exits, n_pending = 0, cap = 16;
	struct exec_exit *exits = journal_load(a, &n_exits);
	struct agent_task **pending = xcalloc(cap, sizeof *pending);
	char path[600];
	snprintf(path, sizeof path, "%s/tasks", a->cfg.state_dir);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!task_id_valid(de->d_name))
			continue;
		struct agent_task *t = add_task(a, de->d_name);
		const struct exec_exit *x = find_exit(exits, n_exits, t->id);
		if (x) {
			t->exit = *x;
			t->started = t->exited = t->running_reported = true;
			log_msg("info", "agent", "task=%s recovered exit code=%d", t->id, x->exit_code);
			continue;
		}
		if (n_pending == cap)
			pending = xrealloc(pending, (cap *= 2) * sizeof *pending);
		pending[n_pending++] = t;
	}
	if (d)
		closedir(d);
	free(exits);
	struct err ae;
	if (adopt_runs(a, pending, n_pending, &ae) < 0)
		log_msg("warn", "agent", "%s could not look for its runs: %s", a->exec->name, ae.msg);
	free(pending);
	return journal_rewrite(a, a->tasks, e);
}

/* --- registration --- */


static json_t *register_body(struct agent *a)
{
	json_t *gpus = json_array(), *tasks = json_array();
	for (int i = 0; i < a->cfg.n_gpus; i++) {
		const struct gpu *g = &a->cfg.gpus[i];
		json_t *o = json_pack("{s:s, s:i, s:s, s:I, s:s, s:i, s:b, s:s}", "uuid", g->uuid, "index", g->index,
				      "model", g->model, "vram_mb", (json_int_t)g->vram_mb, "arch", g->arch,
				      "nvlink_group", g->nvlink_group, "simulated", g->simulated, "pci_bus_id",
				      g->pci_bus_id);
		if (a->gpu_mon)
			gpu_monitor_describe(a->gpu_mon, g->uuid, o);
		json_array_append_new(gpus, o);
	}
	for (struct agent_task *t = a->tasks; t; t = t->next)
		if (!t->forget && !t->start_failed)
			json_array_append_new(tasks, json_pack("{s:s, s:s}", "id", t->id, "state",
							       t->exited ? "exited" : "running"));
	return json_pack("{s:s, s:o, s:I, s:I, s:o}", "host", a->cfg.host, "gpus", gpus, "cpu_milli",
			 (json_int_t)a->cfg.cpu_milli, "mem_mb", (json_int_t)a->cfg.mem_mb, "tasks", tasks);
}

static void apply_stop_list(struct agent *a, json_t *stop)
{
	size_t i;
	json_t *v;
	json_array_foreach(stop, i, v) {
		struct agent_task *t = json_is_string(v) ? find_task(a, json_string_value(v)) : NULL;
		if (!t)
			continue;
		t->forget = true;
		if (!t->exited)
			a->exec->stop(a->exec, t->id, a->cfg.stop_grace_ms);
	}
}

/* Registers unless another thread already did since `seen_gen`. */
static int agent_register(struct agent *a, struct client *c, unsigned seen_gen, struct err *e)
{
	pthread_mutex_lock(&a->reg_mu);
	if (a->reg_gen != seen_gen) {
		pthread_mutex_unlock(&a->reg_mu);
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	json_t *body = register_body(a);
	pthread_mutex_unlock(&a->mu);
	json_t *resp = NULL;
	int rc = client_json(c, "POST", "/v1/agents/register", body, &resp, e);
	json_decref(body);
	if (rc == 0) {
		pthread_mutex_lock(&a->mu);
		a->after = (uint64_t)json_integer_value(json_object_get(resp, "commands_after"));
		json_int_t hb = json_integer_value(json_object_get(resp, "heartbeat_interval_ms"));
		a->heartbeat_ms = hb > 0 ? hb : 1000;
		apply_stop_list(a, json_object_get(resp, "stop"));
		a->dirty = true;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		a->reg_gen++;
		json_decref(resp);
	}
	pthread_mutex_unlock(&a->reg_mu);
	return rc;
}

static unsigned reg_gen(struct agent *a)
{
	pthread_mutex_lock(&a->reg_mu);
	unsigned g = a->reg_gen;
	pthread_mutex_unlock(&a->reg_mu);
	return g;
}

/* The node forgot us (restart) or declared us lost: register again. */
static bool needs_register(const struct err *e)
{
	return e->code == ERR_CONFLICT || e->code == ERR_NOT_FOUND;
}

/* --- the poller: commands --- */

/* Takes a start command under the lock: a duplicate is a no-op, a run that
 * must wait for its predecessor is parked on it; else the new entry is
 * returned, marked starting, for start_task_run. Lock held. */
static struct agent_task *start_task_claim(struct agent *a, json_t *spec)
{
	const char *id = json_string_value(json_object_get(spec, "id"));
	if (!id || !task_id_valid(id))
		return NULL;
	struct agent_task *old = find_task(a, id);
	if (old && !old->forget)
		return NULL; /* a duplicate start (resent command) is a no-op */
	long long shipped = 0;
	if (old) {
		/* Requeued (its GPU failed) and placed on this host again: the
		 * new run waits for the old one to end (the reaper starts it),
		 * then continues its log and scratch dir. */
		if (old->starting || (old->started && !old->exited)) {
			json_decref(old->restart);
			old->restart = json_incref(spec);
			return NULL;
		}
		shipped = old->shipped;
		unlink_task(a, old);
	}
	bool reclaimed = untrash(a, id);
	struct agent_task *t = add_task(a, id);
	t->reclaimed = reclaimed;
	t->shipped = shipped;
	t->attempt = (int)json_integer_value(json_object_get(spec, "attempt"));
	t->starting = true;
	t->spec = json_incref(spec);
	return t;
}

/* The task's earlier run on this host was handed to the janitor: wait
 * until it is done with the id if it is at it, clean the earlier run up in
 * the executor (its container) ourselves if it was not, and start the log
 * over if its file is gone. No lock held on entry. */
static void reclaim_from_janitor(struct agent *a, struct agent_task *t, const char *log)
{
	pthread_mutex_lock(&a->mu);
	bool removed = strcmp(a->removing, t->id) == 0;
	while (strcmp(a->removing, t->id) == 0)
		pthread_cond_wait(&a->janitor_cv, &a->mu);
	pthread_mutex_unlock(&a->mu);
	if (!removed)
		a->exec->cleanup(a->exec, t->id);
	if (access(log, F_OK) != 0) {
		pthread_mutex_lock(&a->mu);
		t->shipped = 0;
		pthread_mutex_unlock(&a->mu);
	}
}

/* Prepares and starts a claimed task with no lock held; the reporter does
 * not drop an entry while it is starting, so t stays valid. */
static void start_task_run(struct agent *a, struct agent_task *t)
{
	char log[700];
	task_log_path(a, t->id, log, sizeof log);
	struct agent_start_spec rs;
	struct err e;
	char reason[EXEC_REASON_MAX] = EXEC_REASON_START_FAILED;
	if (t->reclaimed)
		reclaim_from_janitor(a, t, log);
	int rc = agent_start_spec_fill(&rs, t->spec, &a->cfg, a->exec, t->dir, log, &e);
	pthread_mutex_lock(&a->mu);
	if (rc == 0 && !agent_exec_admits(a->exec, &a->cfg, a->process_client, sizeof a->process_client, rs.s.client, &e))
		rc = -1;
	pthread_mutex_unlock(&a->mu);
	if (rc == 0 && !spares_reuse_dir(a->spares, t->dir) && mkdir(t->dir, 0700) < 0 && errno != EEXIST)
		rc = err_set(&e, ERR_INTERNAL, "cannot create %s: %s", t->dir, strerror(errno));
	if (rc == 0)
		spares_reuse_log(a->spares, log); /* else the executor creates it */
	if (rc == 0)
		rc = a->exec->prepare(a->exec, &rs.s, reason, &e);
	if (rc == 0)
		rc = a->exec->start(a->exec, &rs.s, reason, &e);
	agent_start_spec_free(&rs);
	pthread_mutex_lock(&a->mu);
	t->starting = false;
	json_decref(t->spec);
	t->spec = NULL;
	if (rc == 0) {
		t->started = true;
		if (t->stop_requested)
			a->exec->stop(a->exec, t->id, t->stop_grace_ms);
	} else {
		t->start_failed = true;
		str_copy(t->reason, sizeof t->reason, reason);
		str_copy(t->message, sizeof t->message, e.msg);
		log_msg("warn", "agent", "task=%s start failed (%s): %s", t->id, reason, e.msg);
	}
	a->dirty = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

struct start_job {
	struct agent *a;
	struct agent_task *t;
};

static void *start_job_main(void *arg)
{
	struct start_job *j = arg;
	start_task_run(j->a, j->t);
	return NULL;
}

/* Starts a batch of claimed tasks side by side: a container start is
 * mostly waiting for the daemon, and the tasks placed in one scheduler
 * pass should not queue behind each other. Returns when all are started. */
static void start_tasks_run(struct agent *a, struct agent_task **ts, size_t n)
{
	if (n == 1) {
		start_task_run(a, ts[0]);
		return;
	}
	struct start_job *jobs = xcalloc(n + 1, sizeof *jobs);
	pthread_t *th = xcalloc(n + 1, sizeof *th);
	bool *made = xcalloc(n + 1, sizeof *made);
	for (size_t i = 0; i < n; i++) {
		jobs[i] = (struct start_job){a, ts[i]};
		made[i] = pthread_create(&th[i], NULL, start_job_main, &jobs[i]) == 0;
		if (!made[i])
			start_task_run(a, ts[i]);
	}
	for (size_t i = 0; i < n; i++)
		if (made[i])
			pthread_join(th[i], NULL);
	free(jobs);
	free(th);
	free(made);
}

/* grace_ms < 0: the agent's default. The node sends 0 when the task's GPU
 * failed: there is nothing to save, and its replacement waits. */
static void stop_task(struct agent *a, const char *id, int grace_ms, bool forget)
{
	struct agent_task *t = id ? find_task(a, id) : NULL;
	if (t && forget)
		t->forget = true; /* moved away: its end is not to be reported */
	int grace = grace_ms >= 0 ? grace_ms : a->cfg.stop_grace_ms;
	if (t && t->starting) {
		t->stop_requested = true;
		t->stop_grace_ms = grace;
	}
	if (t && t->started && !t->exited)
		a->exec->stop(a->exec, id, grace);
}

/* GPU drills and clears touch the monitor, which calls back into the
 * agent (wake_reporter): they run after handle_commands dropped a->mu. */
static void handle_gpu_command(struct agent *a, json_t *cmd)
{
	const char *type = json_string_value(json_object_get(cmd, "type"));
	const char *uuid = json_string_value(json_object_get(cmd, "gpu"));
	struct err e;
	int rc = 0;
	if (!uuid || !a->gpu_mon)
		return;
	if (strcmp(type, "gpu_fault") == 0)
		rc = gpu_monitor_inject(a->gpu_mon, uuid, (int)json_integer_value(json_object_get(cmd, "xid")), &e);
	else if (strcmp(type, "gpu_clear") == 0)
		rc = gpu_monitor_clear(a->gpu_mon, uuid, (unsigned)json_integer_value(json_object_get(cmd, "clear_gen")),
				       &e);
	if (rc < 0)
		log_msg("warn", "agent", "%s %s: %s", type, uuid, e.msg);
}

static void handle_commands(struct agent *a, json_t *cmds)
{
	size_t i, n_starts = 0;
	json_t *cmd, *gpu_cmds = json_array();
	struct agent_task **starts = xcalloc(json_array_size(cmds) + 1, sizeof *starts);
	pthread_mutex_lock(&a->mu);
	json_array_foreach(cmds, i, cmd) {
		uint64_t seq = (uint64_t)json_integer_value(json_object_get(cmd, "seq"));
		if (seq <= a->after)
			continue;
		const char *type = json_string_value(json_object_get(cmd, "type"));
		json_t *grace = json_object_get(cmd, "grace_ms");
		struct agent_task *claimed = NULL;
		if (type && strcmp(type, "start") == 0 && (claimed = start_task_claim(a, json_object_get(cmd, "task"))))
			starts[n_starts++] = claimed;
		else if (type && strcmp(type, "stop") == 0)
			stop_task(a, json_string_value(json_object_get(cmd, "task_id")),
				  json_is_integer(grace) ? (int)json_integer_value(grace) : -1,
				  json_is_true(json_object_get(cmd, "forget")));
		else if (type && strncmp(type, "gpu_", 4) == 0)
			json_array_append(gpu_cmds, cmd);
		a->after = seq;
	}
	a->dirty = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	start_tasks_run(a, starts, n_starts);
	free(starts);
	json_array_foreach(gpu_cmds, i, cmd)
		handle_gpu_command(a, cmd);
	json_decref(gpu_cmds);
}

static bool agent_stopping(struct agent *a)
{
	pthread_mutex_lock(&a->mu);
	bool s = a->stopping;
	pthread_mutex_unlock(&a->mu);
	return s;
}

static void *poller_main(void *arg)
{
	struct agent *a = arg;
	struct client c;
	struct err e;
	if (client_init(&c, a->cfg.node_url, a->cfg.token, &e) < 0)
		return NULL;
	while (!agent_stopping(a)) {
		char path[256];
		pthread_mutex_lock(&a->mu);
		snprintf(path, sizeof path, "/v1/agents/%s/commands?after=%llu&wait_ms=%d", a->cfg.host,
			 (unsigned long long)a->after, POLL_WAIT_MS);
		pthread_mutex_unlock(&a->mu);
		unsigned gen = reg_gen(a);
		json_t *resp = NULL;
		if (client_json(&c, "GET", path, NULL, &resp, &e) == 0) {
			handle_commands(a, json_object_get(resp, "commands"));
			json_decref(resp);
		} else if (needs_register(&e)) {
			agent_register(a, &c, gen, &e);
		} else if (!agent_stopping(a)) {
			usleep(500 * 1000); /* node unreachable: retry soon, without spinning */
		}
	}
	client_cleanup(&c);
	return NULL;
}

/* --- the reaper: exits --- */

static void *reaper_main(void *arg)
{
	struct agent *a = arg;
	while (!agent_stopping(a)) {
		struct exec_exit x;
		if (a->exec->wait_exit(a->exec, 200, &x) != 1)
			continue;
		pthread_mutex_lock(&a->mu);
		struct agent_task *t = find_task(a, x.task_id), *next_run = NULL;
		if (t && !a->stopping) {
			/* On disk first: a crash between here and the report must
			 * not lose the exit code. A forgotten run's exit is nobody's
			 * business, and must not pass for its successor's. */
			if (!t->forget)
				journal_append(a, &x);
			t->exit = x;
			t->exited = true;
			if (t->forget && t->restart) {
				json_t *spec = json_incref(t->restart);
				next_run = start_task_claim(a, spec);
				json_decref(spec);
			}
			a->dirty = true;
			pthread_cond_signal(&a->cv);
		}
		pthread_mutex_unlock(&a->mu);
		if (next_run)
			start_task_run(a, next_run);
	}
	return NULL;
}

/* --- the reporter: logs, reports, heartbeats --- */

/* Sends the log bytes the node does not have yet. Returns -1 on failure. */
static int ship_log(struct agent *a, struct client *c, struct agent_task *t, struct err *e)
{
	char path[700];
	task_log_path(a, t->id, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* nothing written yet */
	char *buf = xmalloc(LOG_CHUNK);
	int rc = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, LOG_CHUNK, t->shipped);
		if (n <= 0)
			break;
		char url[256];
		snprintf(url, sizeof url, "/v1/agents/%s/logs/%s?offset=%lld", a->cfg.host, t->id, t->shipped);
		struct client_response r = {0};
		if (client_request(c, "PUT", url, buf, (size_t)n, "application/octet-stream", 0, &r, e) < 0 ||
		    r.status != 200) {
			if (r.status)
				err_set(e, r.status == 409 ? ERR_CONFLICT : ERR_UNAVAILABLE, "log upload: HTTP %ld", r.status);
			client_response_free(&r);
			rc = -1;
			break;
		}
		client_response_free(&r);
		t->shipped += n;
	}
	free(buf);
	close(fd);
	t->last_ship_ms = now_ms();
	return rc;
}

/* The exited report: code, usage, and the failure the executor saw (oom,
 * timeout...) with its sentence, when there was one. */
static json_t *exit_report(const struct agent_task *t, const char *executor)
{
	json_t *r = json_pack("{s:s, s:s, s:i, s:i, s:f, s:I, s:s, s:i}", "task_id", t->id, "event", "exited",
			      "exit_code", t->exit.exit_code, "signal", t->exit.signal, "cpu_seconds",
			      t->exit.usage.cpu_seconds, "peak_mem_bytes", (json_int_t)t->exit.usage.peak_mem_bytes,
			      "executor", executor, "attempt", t->attempt);
	if (t->exit.failure_reason[0]) {
		json_object_set_new(r, "failure_reason", json_string(t->exit.failure_reason));
		json_object_set_new(r, "message", json_string(t->exit.failure_message));
	}
	return r;
}

/* Appends what the node has not heard about t yet, in the order it
 * happened: a task that ran is reported running before it is reported
 * exited, even when both go in one batch, so its history shows both. */
static void append_reports(json_t *reports, const struct agent_task *t, const char *executor)
{
	if (t->start_failed) {
		json_array_append_new(reports, json_pack("{s:s, s:s, s:s, s:s, s:i}", "task_id", t->id, "event",
							 "start_failed", "failure_reason", t->reason, "message", t->message,
							 "attempt", t->attempt));
		return;
	}
	if (!t->running_reported)
		json_array_append_new(reports,
				      json_pack("{s:s, s:s, s:s, s:i}", "task_id", t->id, "event", "running", "executor", executor,
						"attempt", t->attempt));
	if (t->exited)
		json_array_append_new(reports, exit_report(t, executor));
}

static bool needs_report(const struct agent_task *t)
{
	/* A fast task can exit before start_task_run marks it started: its
	 * exit waits until then, so that its log is shipped before it. */
	if (t->forget || t->starting)
		return false;
	return t->start_failed || (t->exited && !t->exit_reported) || (t->started && !t->running_reported);
}

/* One round: ship logs (all of an ended task's, the new bytes of running
 * ones every LOG_SHIP_MS), then one batched report. Entries are only ever
 * removed by this thread, so pointers stay valid while the lock is dropped. */
static int report_round(struct agent *a, struct client *c, struct err *e)
{
	int64_t now = now_ms();
	pthread_mutex_lock(&a->mu);
	size_t n = 0;
	for (struct agent_task *t = a->tasks; t; t = t->next)
		n++;
	struct agent_task **sent = xcalloc(n + 1, sizeof *sent), **logs = xcalloc(n + 1, sizeof *logs);
	/* What each report said: the reaper may mark a task exited while this
	 * round is in flight, and that exit must still be reported next round. */
	bool *sent_final = xcalloc(n + 1, sizeof *sent_final);
	size_t n_sent = 0, n_logs = 0;
	json_t *reports = json_array();
	for (struct agent_task *t = a->tasks; t; t = t->next) {
		if (t->started && !t->forget && (t->exited || now - t->last_ship_ms >= LOG_SHIP_MS))
			logs[n_logs++] = t;
		if (needs_report(t)) {
			append_reports(reports, t, a->exec->name);
			sent_final[n_sent] = t->exited || t->start_failed;
			sent[n_sent++] = t;
		}
	}
	pthread_mutex_unlock(&a->mu);
	int rc = 0;
	for (size_t i = 0; i < n_logs && rc == 0; i++)
		rc = ship_log(a, c, logs[i], e);
	if (rc == 0 && n_sent) {
		char path[128];
		snprintf(path, sizeof path, "/v1/agents/%s/reports", a->cfg.host);
		json_t *body = json_pack("{s:o}", "reports", reports), *resp = NULL;
		reports = NULL;
		rc = client_json(c, "POST", path, body, &resp, e);
		json_decref(body);
		json_decref(resp);
	}
	json_decref(reports);
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < n_sent && rc == 0; i++) {
		sent[i]->running_reported = true;
		if (sent_final[i])
			sent[i]->exit_reported = true;
	}
	/* Drop what is fully delivered, and what the node told us to forget. */
	for (struct agent_task *t = a->tasks, *next; t; t = next) {
		next = t->next;
		if (t->starting)
			continue; /* start_task_run still uses it */
		if ((t->exit_reported && (t->exited || t->start_failed)) || (t->forget && (t->exited || !t->started)))
			drop_task(a, t);
	}
	struct err je;
	if (a->journal_bytes > JOURNAL_COMPACT_BYTES && journal_rewrite(a, a->tasks, &je) < 0)
		log_msg("warn", "agent", "%s", je.msg);
	pthread_mutex_unlock(&a->mu);
	free(sent);
	free(sent_final);
	free(logs);
	return rc;
}

static int heartbeat(struct agent *a, struct client *c, struct err *e)
{
	char path[128];
	snprintf(path, sizeof path, "/v1/agents/%s/heartbeat", a->cfg.host);
	json_t *body = json_object(), *resp = NULL;
	int rc = client_json(c, "POST", path, body, &resp, e);
	json_decref(body);
	json_decref(resp);
	return rc;
}

/* Sends the GPUs' health and readings when they changed since the node
 * last heard them (the register body carries them too). */
static int report_gpus(struct agent *a, struct client *c, struct err *e)
{
	if (!a->gpu_mon || gpu_monitor_version(a->gpu_mon) == a->gpu_reported)
		return 0;
	uint64_t version;
	json_t *body = gpu_monitor_report(a->gpu_mon, &version), *resp = NULL;
	char path[128];
	snprintf(path, sizeof path, "/v1/agents/%s/gpus", a->cfg.host);
	int rc = client_json(c, "POST", path, body, &resp, e);
	json_decref(body);
	json_decref(resp);
	if (rc == 0)
		a->gpu_reported = version;
	return rc;
}

/* The monitor's on_change: a GPU's health moved, tell the node now. */
static void wake_reporter(void *arg)
{
	struct agent *a = arg;
	pthread_mutex_lock(&a->mu);
	a->dirty = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void wait_for_work(struct agent *a, int64_t ms)
{
	struct timespec ts;
	deadline_in_ns(&ts, ms * 1000000L);
	pthread_mutex_lock(&a->mu);
	if (!a->dirty && !a->stopping)
		pthread_cond_timedwait(&a->cv, &a->mu, &ts);
	a->dirty = false;
	pthread_mutex_unlock(&a->mu);
}

static void *reporter_main(void *arg)
{
	struct agent *a = arg;
	struct client c;
	struct err e;
	if (client_init(&c, a->cfg.node_url, a->cfg.token, &e) < 0)
		return NULL;
	int64_t last_beat = 0;
	while (!agent_stopping(a)) {
		wait_for_work(a, a->heartbeat_ms < LOG_SHIP_MS ? a->heartbeat_ms : LOG_SHIP_MS);
		if (agent_stopping(a))
			break;
		unsigned gen = reg_gen(a);
		int rc = report_gpus(a, &c, &e);
		if (rc == 0)
			rc = report_round(a, &c, &e);
		if (rc == 0 && now_ms() - last_beat >= a->heartbeat_ms) {
			rc = heartbeat(a, &c, &e);
			if (rc == 0)
				last_beat = now_ms();
		}
		if (rc < 0 && needs_register(&e))
			agent_register(a, &c, gen, &e);
		else if (rc < 0)
			usleep(200 * 1000); /* node busy or unreachable: back off, keep everything for the retry */
	}
	client_cleanup(&c);
	return NULL;
}

/* --- start / stop --- */

static int make_dirs(const struct agent_config *cfg, struct err *e)
{
	char tasks[600], logs[600];
	snprintf(tasks, sizeof tasks, "%s/tasks", cfg->state_dir);
	snprintf(logs, sizeof logs, "%s/logs", cfg->state_dir);
	const char *dirs[] = {cfg->state_dir, tasks, logs};
	for (size_t i = 0; i < 3; i++)
		if (mkdir(dirs[i], 0700) < 0 && errno != EEXIST)
			return err_set(e, ERR_INTERNAL, "cannot create %s: %s", dirs[i], strerror(errno));
	return 0;
}

static int start_gpu_monitor(struct agent *a, struct err *e)
{
	char state[600];
	snprintf(state, sizeof state, "%s/gpu-health.json", a->cfg.state_dir);
	struct gpu_monitor_config mc = {
		.gpus = a->cfg.gpus, .n_gpus = a->cfg.n_gpus, .kmsg_path = a->cfg.kmsg_path,
		.boot_id_path = a->cfg.boot_id_path, .state_path = state, .readings = a->cfg.readings,
		.on_change = wake_reporter, .arg = a,
	};
	gpu_health_cfg_default(&mc.health);
	return gpu_monitor_start(&mc, &a->gpu_mon, e);
}

static int register_until(struct agent *a, int64_t timeout_ms, struct err *e)
{
	struct client c;
	if (client_init(&c, a->cfg.node_url, a->cfg.token, e) < 0)
		return -1;
	int64_t end = now_ms() + timeout_ms;
	int rc;
	bool told = false;
	while ((rc = agent_register(a, &c, reg_gen(a), e)) < 0 && e->code == ERR_UNAVAILABLE && now_ms() < end) {
		if (!told)
			log_msg("warn", "agent", "waiting for the node at %s: %s", a->cfg.node_url, e->msg);
		told = true;
		usleep(250 * 1000);
	}
	client_cleanup(&c);
	return rc;
}

int agent_start(const struct agent_config *cfg, int64_t register_timeout_ms, struct agent **out, struct err *e)
{
	if (make_dirs(cfg, e) < 0)
		return -1;
	struct agent *a = xcalloc(1, sizeof *a);
	a->cfg = *cfg;
	/* Absolute: container backends bind-mount the scratch dirs under it. */
	char abs_state[PATH_MAX];
	if (realpath(cfg->state_dir, abs_state))
		str_copy(a->cfg.state_dir, sizeof a->cfg.state_dir, abs_state);
	if (a->cfg.stop_grace_ms <= 0)
		a->cfg.stop_grace_ms = 5000;
	a->heartbeat_ms = 1000;
	a->journal_fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->reg_mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	pthread_cond_init(&a->janitor_cv, NULL);
	a->spares = spares_open(a->cfg.state_dir, e);
	if (!a->spares) {
		free(a);
		return -1;
	}
	pthread_create(&a->janitor, NULL, janitor_main, a);
	a->exec = agent_exec_open(&a->cfg, e);
	if (!a->exec || start_gpu_monitor(a, e) < 0)
		goto fail;
	pthread_mutex_lock(&a->mu);
	int recovered = recover_tasks(a, e);
	pthread_mutex_unlock(&a->mu);
	if (recovered < 0)
		goto fail;
	if (register_until(a, register_timeout_ms, e) < 0)
		goto fail;
	pthread_create(&a->reaper, NULL, reaper_main, a);
	pthread_create(&a->reporter, NULL, reporter_main, a);
	pthread_create(&a->poller, NULL, poller_main, a);
	log_msg("info", "agent", "host=%s executor=%s gpus=%d node=%s", cfg->host, a->exec->name, cfg->n_gpus,
		cfg->node_url);
	*out = a;
	return 0;
fail:
	gpu_monitor_stop(a->gpu_mon);
	if (a->exec)
		a->exec->destroy(a->exec);
	pthread_mutex_lock(&a->mu);
	while (a->tasks)
		drop_task(a, a->tasks);
	a->stopping = true;
	pthread_cond_signal(&a->janitor_cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->janitor, NULL);
	free(a->trash);
	spares_close(a->spares);
	if (a->journal_fd >= 0)
		close(a->journal_fd);
	free(a);
	return -1;
}

void agent_stop(struct agent *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stopping = true;
	pthread_cond_broadcast(&a->cv);
	pthread_cond_signal(&a->janitor_cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->reaper, NULL);
	pthread_join(a->reporter, NULL);
	pthread_join(a->janitor, NULL);
	/* Running tasks are killed without a journal line, so a restarted agent
	 * does not report them as failed: the node requeues them instead. */
	a->exec->destroy(a->exec);
	/* The poller may sit in a long poll; the node wakes it when it stops
	 * too (gpunode up), otherwise it ends within POLL_WAIT_MS. Do not wait. */
	struct timespec ts;
	deadline_in_ns(&ts, 2000000000L);
	if (pthread_timedjoin_np(a->poller, NULL, &ts) != 0) {
		pthread_detach(a->poller);
		return; /* the poller still uses a (and the GPU monitor): leave them to process exit */
	}
	gpu_monitor_stop(a->gpu_mon);
	while (a->tasks) {
		struct agent_task *t = a->tasks;
		a->tasks = t->next;
		json_decref(t->restart);
		json_decref(t->spec);
		free(t);
	}
	pthread_cond_destroy(&a->cv);
	pthread_cond_destroy(&a->janitor_cv);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->reg_mu);
	free(a->trash);
	spares_close(a->spares);
	if (a->journal_fd >= 0)
		close(a->journal_fd);
	free(a);
}
