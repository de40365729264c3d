/* node_agents.c — the node's side of the agent protocol: registration and
 * reconciliation, per-host command outboxes with long polling, reports, and
 * host liveness. Every function that ends in _locked expects n->mu held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "task_json.h"
#include "util.h"

struct agent_cmd {
	uint64_t seq;
	uint64_t ticket; /* visible to the agent once this store write committed */
	json_t *json;
};

struct host_link {
	char host[TASK_HOST_MAX];
	struct agent_cmd *cmds; /* ascending seq */
	size_t n_cmds, cap_cmds;
	uint64_t next_seq;      /* seq of the next command */
	int64_t last_seen_ms;
	bool registered;        /* false: unknown since restart, or declared lost */
	struct host_link *next;
};

static bool host_id_valid(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len >= TASK_HOST_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_' || *p == '.'))
			return false;
	return true;
}

struct host_link *node_link_find(struct node *n, const char *host, bool create)
{
	for (struct host_link *l = n->links; l; l = l->next)
		if (strcmp(l->host, host) == 0)
			return l;
	if (!create)
		return NULL;
	struct host_link *l = xcalloc(1, sizeof *l);
	str_copy(l->host, sizeof l->host, host);
	l->next_seq = 1;
	l->last_seen_ms = now_ms();
	l->next = n->links;
	n->links = l;
	return l;
}

static uint64_t link_push(struct host_link *l, json_t *cmd, uint64_t ticket)
{
	if (l->n_cmds == l->cap_cmds) {
		l->cap_cmds = l->cap_cmds ? l->cap_cmds * 2 : 64;
		l->cmds = xrealloc(l->cmds, l->cap_cmds * sizeof *l->cmds);
	}
	uint64_t seq = l->next_seq++;
	json_object_set_new(cmd, "seq", json_integer((json_int_t)seq));
	l->cmds[l->n_cmds++] = (struct agent_cmd){seq, ticket, cmd};
	return seq;
}

uint64_t node_link_push_start(struct node *n, struct host_link *l, const struct task *t, uint64_t ticket)
{
	return link_push(l, json_pack("{s:s, s:o}", "type", "start", "task", task_start_spec(t)), ticket);
}

uint64_t node_link_push_stop(struct node *n, struct host_link *l, const char *task_id, uint64_t ticket)
{
	return link_push(l, json_pack("{s:s, s:s}", "type", "stop", "task_id", task_id), ticket);
}

uint64_t node_link_push_stop_now(struct node *n, struct host_link *l, const char *task_id, uint64_t ticket)
{
	return link_push(l, json_pack("{s:s, s:s, s:i, s:b}", "type", "stop", "task_id", task_id, "grace_ms", 0, "forget", 1),
			 ticket);
}

uint64_t node_link_push_cmd(struct node *n, struct host_link *l, json_t *cmd, uint64_t ticket)
{
	uint64_t seq = link_push(l, cmd, ticket);
	if (ticket == 0 && n->commands_hook)
		n->commands_hook(n->commands_hook_arg);
	return seq;
}

bool node_link_registered(const struct host_link *l)
{
	return l->registered;
}

static void link_drop_through(struct host_link *l, uint64_t seq)
{
	size_t k = 0;
	while (k < l->n_cmds && l->cmds[k].seq <= seq)
		json_decref(l->cmds[k++].json);
	if (k == 0)
		return;
	memmove(l->cmds, l->cmds + k, (l->n_cmds - k) * sizeof *l->cmds);
	l->n_cmds -= k;
}

void node_links_free(struct node *n)
{
	struct host_link *l = n->links;
	while (l) {
		struct host_link *next = l->next;
		link_drop_through(l, UINT64_MAX);
		free(l->cmds);
		free(l);
		l = next;
	}
	n->links = NULL;
}

/* --- registration --- */

static int parse_gpu(json_t *g, size_t i, struct gpu *out, struct err *e)
{
	const char *uuid = NULL, *model = NULL, *arch = "";
	json_int_t index = (json_int_t)i, vram = 0, nvlink = -1;
	int simulated = 0;
	json_error_t je;
	if (json_unpack_ex(g, &je, 0, "{s:s, s?I, s:s, s?I, s?s, s?I, s?b}", "uuid", &uuid, "index", &index, "model",
			   &model, "vram_mb", &vram, "arch", &arch, "nvlink_group", &nvlink, "simulated", &simulated) < 0)
		return err_set(e, ERR_INVALID, "gpus[%zu]: %s", i, je.text);
	memset(out, 0, sizeof *out);
	/* Same charset as host ids: these go into metric labels and tables. */
	if (!str_copy(out->uuid, sizeof out->uuid, uuid) || !host_id_valid(uuid) ||
	    !str_copy(out->model, sizeof out->model, model) || !host_id_valid(model))
		return err_set(e, ERR_INVALID, "gpus[%zu]: uuid (up to 63) and model (up to 47) must be characters of [A-Za-z0-9._-]", i);
	str_copy(out->arch, sizeof out->arch, arch);
	out->index = (int)index;
	out->vram_mb = vram;
	out->nvlink_group = (int)nvlink;
	out->simulated = simulated;
	const char *pci = json_string_value(json_object_get(g, "pci_bus_id"));
	str_copy(out->pci_bus_id, sizeof out->pci_bus_id, pci ? pci : "");
	char where[32];
	snprintf(where, sizeof where, "gpus[%zu]", i);
	return node_gpu_parse_status(g, where, &out->health, &out->status, &out->clear_gen, e);
}

static int parse_register(json_t *req, const char **host, struct gpu **gpus, size_t *n_gpus, json_t **tasks,
			  json_int_t *cpu, json_int_t *mem, struct err *e)
{
	json_t *gpu_arr = NULL;
	*tasks = NULL;
	*cpu = *mem = 0;
	json_error_t je;
	if (json_unpack_ex(req, &je, JSON_STRICT, "{s:s, s:o, s?I, s?I, s?o}", "host", host, "gpus", &gpu_arr, "cpu_milli",
			   cpu, "mem_mb", mem, "tasks", tasks) < 0)
		return err_set(e, ERR_INVALID, "register: %s", je.text);
	if (!host_id_valid(*host))
		return err_set(e, ERR_INVALID, "host: 1..63 characters of [A-Za-z0-9._-]");
	/* The scheduler places on at most TASK_MAX_GPUS GPUs of a host: refuse
	 * more rather than leave some silently unused. */
	if (!json_is_array(gpu_arr) || json_array_size(gpu_arr) > TASK_MAX_GPUS)
		return err_set(e, ERR_INVALID, "gpus: must be an array of at most %d GPUs", TASK_MAX_GPUS);
	if (*tasks && !json_is_array(*tasks))
		return err_set(e, ERR_INVALID, "tasks: must be an array");
	*n_gpus = json_array_size(gpu_arr);
	*gpus = xcalloc(*n_gpus, sizeof **gpus);
	for (size_t i = 0; i < *n_gpus; i++)
		if (parse_gpu(json_array_get(gpu_arr, i), i, &(*gpus)[i], e) < 0) {
			free(*gpus);
			return -1;
		}
	return 0;
}

static bool agent_holds(json_t *tasks, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(tasks, i, v) {
		const char *tid = json_string_value(json_object_get(v, "id"));
		if (tid && strcmp(tid, id) == 0)
			return true;
	}
	return false;
}

/* Reconciles the node's view of a host with what its agent says it holds:
 * tasks it no longer has are requeued; tasks it has that the node moved
 * elsewhere (or ended) are listed for the agent to stop. */
static uint64_t reconcile_host_locked(struct node *n, const char *host, json_t *held, json_t *stop)
{
	uint64_t ticket = 0, t;
	size_t cap = n->active.len + 1;
	struct active_task **mine = xcalloc(cap, sizeof *mine);
	size_t k = node_active_on_host(n, host, mine, cap);
	for (size_t i = 0; i < k; i++) {
		struct task *task = node_active_task(mine[i]);
		if (held && agent_holds(held, task->id))
			t = node_claim_placement_locked(n, mine[i]);
		else
			t = node_requeue_locked(n, mine[i], "agent restarted without it");
		if (t > ticket)
			ticket = t;
	}
	free(mine);
	size_t i;
	json_t *v;
	json_array_foreach(held, i, v) {
		const char *tid = json_string_value(json_object_get(v, "id"));
		if (!tid)
			continue;
		struct active_task *a = node_active_find(n, tid);
		if (!a || strcmp(node_active_task(a)->host, host) != 0)
			json_array_append_new(stop, json_string(tid));
	}
	return ticket;
}

int node_agent_register(struct node *n, json_t *req, json_t **resp, struct err *e)
{
	const char *host = NULL;
	struct gpu *gpus = NULL;
	size_t n_gpus = 0;
	json_t *held = NULL;
	json_int_t cpu, mem;
	if (parse_register(req, &host, &gpus, &n_gpus, &held, &cpu, &mem, e) < 0)
		return -1;
	json_t *stop = json_array();
	pthread_mutex_lock(&n->mu);
	struct host *h = pool_upsert_host(n->pool, host, gpus, (int)n_gpus, cpu, mem);
	pool_set_online(n->pool, h, true);
	h->last_seen_ms = now_ms();
	struct host_link *l = node_link_find(n, host, true);
	/* A (re)starting agent forgets its place in the outbox; what it still
	 * runs is in `held`, and the rest is requeued below. */
	link_drop_through(l, UINT64_MAX);
	l->registered = true;
	l->last_seen_ms = h->last_seen_ms;
	uint64_t ticket = reconcile_host_locked(n, host, held, stop);
	node_gpu_apply_drains_locked(n, h);
	for (int i = 0; i < h->n_gpus; i++) {
		uint64_t t = node_gpu_set_health_locked(n, &h->gpus[i], h->gpus[i].health);
		if (t > ticket)
			ticket = t;
	}
	*resp = json_pack("{s:s, s:I, s:I, s:o}", "host", host, "heartbeat_interval_ms",
			  (json_int_t)n->cfg.heartbeat_interval_ms, "commands_after", (json_int_t)(l->next_seq - 1),
			  "stop", stop);
	node_kick_locked(n);
	pthread_mutex_unlock(&n->mu);
	free(gpus);
	log_msg("info", "node", "host=%s registered gpus=%zu", host, n_gpus);
	if (ticket && store_wait(n->store, ticket, e) < 0) {
		json_decref(*resp);
		return -1;
	}
	return 0;
}

/* Lock held. A registered link, or an error saying why not. */
struct host_link *node_registered_link(struct node *n, const char *host, struct err *e)
{
	struct host_link *l = node_link_find(n, host, false);
	if (!l) {
		err_set(e, ERR_NOT_FOUND, "unknown host \"%.63s\": register first", host);
		return NULL;
	}
	if (!l->registered) {
		err_set(e, ERR_CONFLICT, "host \"%.63s\" must register again (it was declared lost or the node restarted)",
			host);
		return NULL;
	}
	l->last_seen_ms = now_ms();
	struct host *h = pool_find_host(n->pool, host);
	if (h)
		h->last_seen_ms = l->last_seen_ms;
	return l;
}

int node_agent_heartbeat(struct node *n, const char *host, struct err *e)
{
	pthread_mutex_lock(&n->mu);
	struct host_link *l = node_registered_link(n, host, e);
	pthread_mutex_unlock(&n->mu);
	return l ? 0 : -1;
}

/* Commands after `after` whose store write has committed. Lock held. */
static bool link_has_ready(const struct node *n, const struct host_link *l, uint64_t after, uint64_t decided)
{
	for (size_t i = 0; i < l->n_cmds && l->cmds[i].ticket <= decided; i++)
		if (l->cmds[i].seq > after)
			return true;
	return false;
}

bool node_agent_commands_ready(struct node *n, const char *host, uint64_t after)
{
	uint64_t decided = store_decided(n->store);
	pthread_mutex_lock(&n->mu);
	struct host_link *l = node_link_find(n, host, false);
	bool ready = n->stopping || !l || !l->registered || link_has_ready(n, l, after, decided);
	pthread_mutex_unlock(&n->mu);
	return ready;
}

int node_agent_commands(struct node *n, const char *host, uint64_t after, json_t **resp, struct err *e)
{
	uint64_t decided = store_decided(n->store);
	pthread_mutex_lock(&n->mu);
	struct host_link *l = node_registered_link(n, host, e);
	if (!l) {
		pthread_mutex_unlock(&n->mu);
		return -1;
	}
	link_drop_through(l, after);
	json_t *cmds = json_array();
	/* In seq order, and only up to the first one not yet durable, so an
	 * agent never acknowledges past a command it has not seen. */
	for (size_t i = 0; i < l->n_cmds && l->cmds[i].ticket <= decided; i++)
		if (l->cmds[i].seq > after)
			json_array_append(cmds, l->cmds[i].json);
	pthread_mutex_unlock(&n->mu);
	*resp = json_pack("{s:o}", "commands", cmds);
	return 0;
}

/* --- reports --- */

static uint64_t apply_running(struct node *n, struct active_task *a, json_t *r)
{
	struct task *t = node_active_task(a);
	if (t->state != TASK_ASSIGNED || !node_move_locked(t, TASK_RUNNING))
		return 0;
	const char *executor = json_string_value(json_object_get(r, "executor"));
	str_copy(t->executor, sizeof t->executor, executor ? executor : "");
	t->started_ms = now_ms();
	char detail[64];
	snprintf(detail, sizeof detail, "started by executor %s", t->executor);
	return store_update_task(n->store, t, TASK_ASSIGNED, detail);
}

static uint64_t apply_exited(struct node *n, struct active_task *a, json_t *r)
{
	struct task *t = node_active_task(a);
	json_t *code = json_object_get(r, "exit_code");
	const char *executor = json_string_value(json_object_get(r, "executor"));
	if (!t->executor[0] && executor)
		str_copy(t->executor, sizeof t->executor, executor);
	if (!t->started_ms)
		t->started_ms = now_ms();
	t->has_exit_code = true;
	t->exit_code = json_is_integer(code) ? (int)json_integer_value(code) : -1;
	const char *reason = task_report_apply(t, r, NULL);
	if (t->exit_code == 0 && !reason)
		return node_finish_locked(n, a, TASK_SUCCEEDED, NULL, NULL, "exited with code 0");
	char msg[300];
	const char *why = json_string_value(json_object_get(r, "message"));
	snprintf(msg, sizeof msg, "%s", why ? why : "");
	if (!why)
		snprintf(msg, sizeof msg, "exited with code %d", t->exit_code);
	reason = reason ? reason : "nonzero_exit";
	return node_finish_locked(n, a, TASK_FAILED, reason, msg, msg);
}

static uint64_t apply_start_failed(struct node *n, struct active_task *a, json_t *r)
{
	const char *why = json_string_value(json_object_get(r, "message"));
	char msg[300];
	snprintf(msg, sizeof msg, "could not start: %s", why ? why : "unknown error");
	const char *reason = task_report_apply(node_active_task(a), r, "start_failed");
	return node_finish_locked(n, a, TASK_FAILED, reason, msg, msg);
}

static uint64_t apply_report_locked(struct node *n, const char *host, json_t *r)
{
	const char *id = json_string_value(json_object_get(r, "task_id"));
	const char *event = json_string_value(json_object_get(r, "event"));
	if (!id || !event)
		return 0;
	struct active_task *a = node_active_find(n, id);
	/* Late or repeated reports (task ended, cancelled, or moved to another
	 * host) are ignored: agents resend until acknowledged. */
	if (!a || strcmp(node_active_task(a)->host, host) != 0 || node_active_task(a)->state == TASK_QUEUED)
		return 0;
	/* A report of an earlier run of the task on this same host (its GPU
	 * failed and it was placed here again) says nothing about this one.
	 * Attempt 0: not known (an exit recovered from the agent's journal). */
	json_int_t attempt = json_integer_value(json_object_get(r, "attempt"));
	if (attempt > 0 && attempt != node_active_task(a)->attempts)
		return 0;
	if (strcmp(event, "running") == 0)
		return apply_running(n, a, r);
	if (strcmp(event, "exited") == 0)
		return apply_exited(n, a, r);
	if (strcmp(event, "start_failed") == 0)
		return apply_start_failed(n, a, r);
	return 0;
}

int node_agent_reports(struct node *n, const char *host, json_t *reports, uint64_t *ticket_out, struct err *e)
{
	if (!json_is_array(reports))
		return err_set(e, ERR_INVALID, "reports: must be an array");
	size_t i;
	json_t *r;
	json_array_foreach(reports, i, r) {
		if (!json_is_object(r) || !json_is_string(json_object_get(r, "task_id")) ||
		    !json_is_string(json_object_get(r, "event")))
			return err_set(e, ERR_INVALID, "reports[%zu]: needs task_id and event strings", i);
	}
	uint64_t ticket = 0;
	pthread_mutex_lock(&n->mu);
	if (!node_registered_link(n, host, e)) {
		pthread_mutex_unlock(&n->mu);
		return -1;
	}
	json_array_foreach(reports, i, r) {
		uint64_t t = apply_report_locked(n, host, r);
		if (t > ticket)
			ticket = t;
	}
	pthread_mutex_unlock(&n->mu);
	*ticket_out = ticket;
	return 0;
}

/* --- liveness --- */

static uint64_t declare_host_lost_locked(struct node *n, struct host_link *l)
{
	log_msg("warn", "node", "host=%s lost: no heartbeat for %lld ms", l->host,
		(long long)(now_ms() - l->last_seen_ms));
	l->registered = false;
	struct host *h = pool_find_host(n->pool, l->host);
	if (h)
		pool_set_online(n->pool, h, false);
	uint64_t ticket = 0;
	size_t cap = n->active.len + 1;
	struct active_task **mine = xcalloc(cap, sizeof *mine);
	size_t k = node_active_on_host(n, l->host, mine, cap);
	for (size_t i = 0; i < k; i++) {
		uint64_t t = node_requeue_locked(n, mine[i], "host lost");
		if (t > ticket)
			ticket = t;
	}
	free(mine);
	return ticket;
}

uint64_t node_check_hosts_locked(struct node *n, int64_t now)
{
	uint64_t ticket = 0;
	for (struct host_link *l = n->links; l; l = l->next) {
		struct host *h = pool_find_host(n->pool, l->host);
		bool known = l->registered || (h && h->online) || !h;
		if (!known || now - l->last_seen_ms <= n->cfg.host_grace_ms)
			continue;
		/* Unregistered links with nothing on them need no action. */
		if (!l->registered && !(h && h->online) && node_active_on_host(n, l->host, NULL, 0) == 0)
			continue;
		uint64_t t = declare_host_lost_locked(n, l);
		l->last_seen_ms = now; /* report once, not every tick */
		if (t > ticket)
			ticket = t;
	}
	return ticket;
}

/* --- reads --- */

json_t *node_hosts_json(struct node *n)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&n->mu);
	for (int i = 0; i < n->pool->n_hosts; i++) {
		struct host *h = n->pool->hosts[i];
		int64_t alloc = 0;
		for (int j = 0; j < h->n_gpus; j++)
			alloc += h->gpus[j].milli_alloc;
		char seen[40];
		format_rfc3339_ms(h->last_seen_ms, seen, sizeof seen);
		json_array_append_new(arr, json_pack("{s:s, s:b, s:s, s:i, s:I, s:I, s:I}", "id", h->id, "online",
						     h->online, "last_seen", seen, "gpus", h->n_gpus, "milli_capacity",
						     (json_int_t)h->n_gpus * TASK_MILLI_FULL, "milli_allocated",
						     (json_int_t)alloc, "tasks",
						     (json_int_t)node_active_on_host(n, h->id, NULL, 0)));
	}
	pthread_mutex_unlock(&n->mu);
	return json_pack("{s:o}", "hosts", arr);
}
