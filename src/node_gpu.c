/* node_gpu.c — the node's side of GPU health: what agents report about their
 * GPUs, what the node does about it, and the operator's verbs (drain,
 * clear, inject-fault).
 *
 * The agent owns a GPU's health (it sees the kernel log and the driver); the
 * node owns what follows from it:
 * - Unhealthy: no new placements, and every task on the GPU is requeued at
 *   once (priority kept, attempt counted at its next placement, reason in
 *   its history) while its agent is told to kill the old run without grace:
 *   a task on a failed GPU makes no progress, waiting only delays the
 *   replacement.
 * - Degraded: no new placements except short work (a task with a time limit
 *   of at most GPU_DEGRADED_MAX_RUNTIME_MS, 15 min: pool_gpu_takes); what runs finishes.
 * - Draining (operator): no new placements; what runs finishes. Drains are
 *   kept in DATA/gpu-drains so that they survive a node restart.
 * Every function that ends in _locked expects n->mu held. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node.h"
#include "util.h"

/* --- parsing what agents send --- */

static int parse_health(const char *s, enum gpu_health *out)
{
	static const enum gpu_health all[] = {GPU_HEALTHY, GPU_DEGRADED, GPU_UNHEALTHY};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (strcmp(s, gpu_health_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	return -1;
}

static int64_t int_or(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static void parse_xids(json_t *xids, struct gpu_status *st)
{
	const char *key;
	json_t *v;
	st->n_xids = 0;
	json_object_foreach(xids, key, v) {
		char *end;
		long xid = strtol(key, &end, 10);
		if (*end || xid <= 0 || xid > 100000 || !json_is_integer(v) || st->n_xids == GPU_XID_KINDS)
			continue;
		st->xids[st->n_xids].xid = (int)xid;
		st->xids[st->n_xids].count = (int64_t)json_integer_value(v);
		st->n_xids++;
	}
}

int node_gpu_parse_status(json_t *g, const char *where, enum gpu_health *health, struct gpu_status *st,
			  unsigned *clear_gen, struct err *e)
{
	memset(st, 0, sizeof *st);
	*health = GPU_HEALTHY;
	*clear_gen = 0;
	const char *h = json_string_value(json_object_get(g, "health"));
	if (h && parse_health(h, health) < 0)
		return err_set(e, ERR_INVALID, "%s.health: want healthy, degraded or unhealthy", where);
	const char *reason = json_string_value(json_object_get(g, "reason"));
	const char *action = json_string_value(json_object_get(g, "action"));
	str_copy(st->reason, sizeof st->reason, reason ? reason : "");
	str_copy(st->action, sizeof st->action, action ? action : "none");
	st->since_ms = int_or(g, "health_since_ms", 0);
	st->util_pct = (int)int_or(g, "utilization_pct", -1);
	st->mem_used_mb = int_or(g, "memory_used_mb", -1);
	st->temp_c = (int)int_or(g, "temperature_c", -1);
	json_t *power = json_object_get(g, "power_w");
	st->power_w = json_is_number(power) ? json_number_value(power) : -1;
	parse_xids(json_object_get(g, "xid_errors"), st);
	json_int_t gen = int_or(g, "clear_gen", 0);
	*clear_gen = gen > 0 ? (unsigned)gen : 0;
	return 0;
}

/* --- acting on health --- */

/* Requeues every task that uses g, and tells its agent to kill the old run. */
static uint64_t evacuate_gpu_locked(struct node *n, struct gpu *g)
{
	size_t cap = n->active.len + 1;
	struct active_task **on_host = xcalloc(cap, sizeof *on_host);
	size_t k = node_active_on_host(n, g->host->id, on_host, cap);
	struct host_link *l = node_link_find(n, g->host->id, false);
	uint64_t ticket = 0;
	char why[GPU_REASON_MAX + 96];
	snprintf(why, sizeof why, "GPU %s unhealthy: %s", g->uuid, g->status.reason[0] ? g->status.reason : "no reason given");
	for (size_t i = 0; i < k; i++) {
		struct task *t = node_active_task(on_host[i]);
		bool uses = false;
		for (int j = 0; j < t->n_gpus_assigned && !uses; j++)
			uses = strcmp(t->gpu_uuids[j], g->uuid) == 0;
		if (!uses)
			continue;
		char id[TASK_ID_LEN + 1];
		str_copy(id, sizeof id, t->id);
		uint64_t tk = node_requeue_locked(n, on_host[i], why);
		if (l)
			node_link_push_stop_now(n, l, id, tk);
		log_msg("warn", "node", "task=%s requeued off gpu=%s (%s)", id, g->uuid, g->status.reason);
		if (tk > ticket)
			ticket = tk;
	}
	free(on_host);
	return ticket;
}

uint64_t node_gpu_set_health_locked(struct node *n, struct gpu *g, enum gpu_health health)
{
	enum gpu_health before = g->health;
	if (health != before) {
		pool_set_gpu_health(n->pool, g, health);
		log_msg(health == GPU_HEALTHY ? "info" : "warn", "node", "gpu=%s host=%s %s -> %s%s%s", g->uuid,
			g->host->id, gpu_health_name(before), gpu_health_name(health), g->status.reason[0] ? ": " : "",
			g->status.reason);
		node_kick_locked(n); /* capacity changed either way */
	}
	/* Also when it was already Unhealthy: a task placed on it before the
	 * node heard (a re-registration) must still move. */
	return health == GPU_UNHEALTHY ? evacuate_gpu_locked(n, g) : 0;
}

int node_agent_gpu_report(struct node *n, const char *host, json_t *req, uint64_t *ticket_out, struct err *e)
{
	json_t *gpus = json_object_get(req, "gpus");
	if (!json_is_array(gpus))
		return err_set(e, ERR_INVALID, "gpus: must be an array");
	size_t i;
	json_t *g;
	json_array_foreach(gpus, i, g)
		if (!json_is_object(g) || !json_is_string(json_object_get(g, "uuid")))
			return err_set(e, ERR_INVALID, "gpus[%zu]: needs a uuid string", i);
	uint64_t ticket = 0;
	pthread_mutex_lock(&n->mu);
	if (!node_registered_link(n, host, e)) {
		pthread_mutex_unlock(&n->mu);
		return -1;
	}
	json_array_foreach(gpus, i, g) {
		char where[32];
		snprintf(where, sizeof where, "gpus[%zu]", i);
		enum gpu_health health;
		struct gpu_status st;
		unsigned gen;
		struct gpu *gpu = pool_find_gpu(n->pool, json_string_value(json_object_get(g, "uuid")));
		if (!gpu || strcmp(gpu->host->id, host) != 0)
			continue; /* not this host's: ignore, as with late task reports */
		if (node_gpu_parse_status(g, where, &health, &st, &gen, e) < 0) {
			pthread_mutex_unlock(&n->mu);
			return -1;
		}
		/* Written before the agent applied the operator's last clear:
		 * its health is stale, its readings are not. */
		if (gen < gpu->clear_gen) {
			st.since_ms = gpu->status.since_ms;
			str_copy(st.reason, sizeof st.reason, gpu->status.reason);
			str_copy(st.action, sizeof st.action, gpu->status.action);
			health = gpu->health;
		}
		gpu->status = st;
		uint64_t t = node_gpu_set_health_locked(n, gpu, health);
		if (t > ticket)
			ticket = t;
	}
	pthread_mutex_unlock(&n->mu);
	*ticket_out = ticket;
	return 0;
}

/* --- drains, kept across node restarts --- */

static void drains_path(const struct node *n, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/gpu-drains", n->cfg.data_dir);
}

/* Rewrites DATA/gpu-drains (one uuid a line) from the pool, atomically.
 * Drained GPUs of hosts that have not registered since the restart are in
 * n->drains_pending and are kept too. */
static int drains_save_locked(struct node *n, struct err *e)
{
	char path[600], tmp[610];
	drains_path(n, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return err_set(e, ERR_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
	for (int i = 0; i < n->pool->n_hosts; i++)
		for (int j = 0; j < n->pool->hosts[i]->n_gpus; j++)
			if (n->pool->hosts[i]->gpus[j].draining)
				fprintf(f, "%s\n", n->pool->hosts[i]->gpus[j].uuid);
	for (size_t i = 0; i < n->n_drains_pending; i++)
		fprintf(f, "%s\n", n->drains_pending[i]);
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) < 0)
		return err_set(e, ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

int node_gpu_load_drains(struct node *n, struct err *e)
{
	char path[600], line[256];
	drains_path(n, path, sizeof path);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : err_set(e, ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || strlen(line) >= TASK_GPU_UUID_MAX)
			continue;
		n->drains_pending = xrealloc(n->drains_pending, (n->n_drains_pending + 1) * sizeof *n->drains_pending);
		str_copy(n->drains_pending[n->n_drains_pending++], TASK_GPU_UUID_MAX, line);
	}
	fclose(f);
	return 0;
}

void node_gpu_apply_drains_locked(struct node *n, struct host *h)
{
	for (size_t i = 0; i < n->n_drains_pending;) {
		struct gpu *g = pool_find_gpu(n->pool, n->drains_pending[i]);
		if (!g || g->host != h) {
			i++;
			continue;
		}
		pool_set_gpu_draining(n->pool, g, true);
		memmove(n->drains_pending[i], n->drains_pending[i + 1],
			(n->n_drains_pending - i - 1) * sizeof *n->drains_pending);
		n->n_drains_pending--;
	}
}

/* --- operator verbs --- */

/* Lock held. The GPU, or ERR_NOT_FOUND naming it. */
static struct gpu *find_gpu_locked(struct node *n, const char *uuid, struct err *e)
{
	struct gpu *g = pool_find_gpu(n->pool, uuid);
	if (!g)
		err_set(e, ERR_NOT_FOUND, "no GPU %s in the pool (see gpunode gpus)", uuid);
	return g;
}

/* Lock held. The GPU and the outbox of its agent when it is connected:
 * commands to a host that is not are dropped when it registers again, so
 * they are refused. NULL with e set otherwise. */
static struct host_link *connected_gpu_locked(struct node *n, const char *uuid, struct gpu **g, struct err *e)
{
	*g = find_gpu_locked(n, uuid, e);
	if (!*g)
		return NULL;
	struct host_link *l = node_link_find(n, (*g)->host->id, false);
	if (!l || !node_link_registered(l)) {
		err_set(e, ERR_CONFLICT, "GPU %s: its host %s has no agent connected; try again when it is back", uuid,
			(*g)->host->id);
		return NULL;
	}
	return l;
}

json_t *node_gpu_json_locked(const struct gpu *g)
{
	const struct gpu_status *st = &g->status;
	json_t *xids = json_object();
	for (int i = 0; i < st->n_xids; i++) {
		char key[16];
		snprintf(key, sizeof key, "%d", st->xids[i].xid);
		json_object_set_new(xids, key, json_integer((json_int_t)st->xids[i].count));
	}
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:I, s:s, s:i, s:b, s:s, s:i, s:s, s:b, s:b}", "uuid", g->uuid,
			      "host", g->host->id, "index", g->index, "model", g->model, "vram_mb",
			      (json_int_t)g->vram_mb, "arch", g->arch, "nvlink_group", g->nvlink_group, "simulated",
			      g->simulated, "pci_bus_id", g->pci_bus_id, "milli_allocated", g->milli_alloc, "health",
			      gpu_health_name(g->health), "draining", g->draining, "host_online", g->host->online);
	json_object_set_new(o, "reason", st->reason[0] ? json_string(st->reason) : json_null());
	json_object_set_new(o, "action", json_string(st->action[0] ? st->action : "none"));
	json_object_set_new(o, "utilization_pct", st->util_pct >= 0 ? json_integer(st->util_pct) : json_null());
	json_object_set_new(o, "memory_used_mb", st->mem_used_mb >= 0 ? json_integer(st->mem_used_mb) : json_null());
	json_object_set_new(o, "temperature_c", st->temp_c >= 0 ? json_integer(st->temp_c) : json_null());
	json_object_set_new(o, "power_w", st->power_w >= 0 ? json_real(st->power_w) : json_null());
	json_object_set_new(o, "xid_errors", xids);
	return o;
}

json_t *node_gpus_json(struct node *n)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&n->mu);
	for (int i = 0; i < n->pool->n_hosts; i++)
		for (int j = 0; j < n->pool->hosts[i]->n_gpus; j++)
			json_array_append_new(arr, node_gpu_json_locked(&n->pool->hosts[i]->gpus[j]));
	pthread_mutex_unlock(&n->mu);
	return json_pack("{s:o}", "gpus", arr);
}

int node_gpu_drain(struct node *n, const char *uuid, bool drain, json_t **resp, struct err *e)
{
	pthread_mutex_lock(&n->mu);
	struct gpu *g = find_gpu_locked(n, uuid, e);
	int rc = -1;
	if (g) {
		bool was = g->draining;
		pool_set_gpu_draining(n->pool, g, drain);
		rc = drains_save_locked(n, e);
		if (rc < 0)
			pool_set_gpu_draining(n->pool, g, was); /* not durable: not done */
		else
			*resp = node_gpu_json_locked(g);
		node_kick_locked(n);
	}
	pthread_mutex_unlock(&n->mu);
	if (rc == 0)
		log_msg("info", "node", "gpu=%s %s by the operator", uuid, drain ? "drained" : "undrained");
	return rc;
}

int node_gpu_clear(struct node *n, const char *uuid, json_t **resp, struct err *e)
{
	pthread_mutex_lock(&n->mu);
	struct gpu *g;
	struct host_link *l = connected_gpu_locked(n, uuid, &g, e);
	if (!l) {
		pthread_mutex_unlock(&n->mu);
		return -1;
	}
	g->clear_gen++;
	g->status.reason[0] = '\0';
	str_copy(g->status.action, sizeof g->status.action, "none");
	g->status.since_ms = now_ms();
	node_gpu_set_health_locked(n, g, GPU_HEALTHY);
	node_link_push_cmd(n, l, json_pack("{s:s, s:s, s:i}", "type", "gpu_clear", "gpu", uuid, "clear_gen",
					   (int)g->clear_gen), 0);
	*resp = node_gpu_json_locked(g);
	pthread_mutex_unlock(&n->mu);
	log_msg("info", "node", "gpu=%s health cleared by the operator", uuid);
	return 0;
}

int node_gpu_inject_fault(struct node *n, const char *uuid, int xid, json_t **resp, struct err *e)
{
	if (xid < 1 || xid > 1000)
		return err_set(e, ERR_INVALID, "xid %d: want an NVIDIA Xid number, 1..1000", xid);
	pthread_mutex_lock(&n->mu);
	struct gpu *g;
	struct host_link *l = connected_gpu_locked(n, uuid, &g, e);
	if (!l) {
		pthread_mutex_unlock(&n->mu);
		return -1;
	}
	node_link_push_cmd(n, l, json_pack("{s:s, s:s, s:i}", "type", "gpu_fault", "gpu", uuid, "xid", xid), 0);
	*resp = json_pack("{s:s, s:s, s:i, s:s}", "gpu", uuid, "host", g->host->id, "xid", xid, "status",
			  "sent to the agent");
	pthread_mutex_unlock(&n->mu);
	log_msg("warn", "node", "gpu=%s fault drill: Xid %d sent to its agent", uuid, xid);
	return 0;
}
