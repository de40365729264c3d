/* gpu_monitor_state.c — the monitor's memory across agent restarts, in one
 * small JSON file (written atomically, see write_file_atomic):
 *   {"boot_id", "kmsg_seq", "kmsg_offset",
 *    "gpus": {UUID: {"health","action","reason","boot_id","since_ms","clear_gen",
 *                    "xid_errors": {XID: count}, "seen": [{"xid","boots","last_boot"}]}}}
 * Without it an agent restart would forget an Unhealthy GPU (a plain-file
 * kernel log is not replayed) or bring back one the operator cleared (the
 * /dev/kmsg records are). A file that cannot be read is reported and
 * ignored: health then starts from what the kernel log still says. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_monitor_impl.h"
#include "util.h"

static enum gpu_action action_parse(const char *s)
{
	static const enum gpu_action all[] = {GPU_ACTION_NONE, GPU_ACTION_CHECK_COOLING, GPU_ACTION_CHECK_APP,
					      GPU_ACTION_REBOOT, GPU_ACTION_HW_INSPECTION};
	for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
		if (strcmp(s, gpu_action_name(all[i])) == 0)
			return all[i];
	return GPU_ACTION_NONE;
}

static enum gpu_health health_parse(const char *s)
{
	if (s && strcmp(s, gpu_health_name(GPU_UNHEALTHY)) == 0)
		return GPU_UNHEALTHY;
	if (s && strcmp(s, gpu_health_name(GPU_DEGRADED)) == 0)
		return GPU_DEGRADED;
	return GPU_HEALTHY;
}

static json_t *watch_json(const struct gpu_watch *w)
{
	json_t *xids = json_object(), *seen = json_array();
	for (int i = 0; i < w->n_xids; i++) {
		char key[16];
		snprintf(key, sizeof key, "%d", w->xids[i].xid);
		json_object_set_new(xids, key, json_integer((json_int_t)w->xids[i].count));
	}
	for (int i = 0; i < w->h.n_seen; i++)
		json_array_append_new(seen, json_pack("{s:i, s:i, s:s}", "xid", w->h.seen[i].xid, "boots",
						      w->h.seen[i].boots, "last_boot", w->h.seen[i].last_boot));
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o}", "health", gpu_health_name(w->h.state), "action",
			 gpu_action_name(w->h.action), "reason", w->h.reason, "boot_id", w->h.boot_id, "since_ms",
			 (json_int_t)w->h.since_ms, "clear_gen", (json_int_t)w->clear_gen, "xid_errors", xids, "seen",
			 seen);
}

void gpu_monitor_save_locked(struct gpu_monitor *m)
{
	if (!m->dirty_state || !m->cfg.state_path)
		return;
	json_t *gpus = json_object();
	for (int i = 0; i < m->n; i++)
		json_object_set_new(gpus, m->w[i].uuid, watch_json(&m->w[i]));
	json_t *root = json_pack("{s:s, s:I, s:I, s:o}", "boot_id", m->boot_id, "kmsg_seq", (json_int_t)m->kmsg_seq,
				 "kmsg_offset", (json_int_t)m->kmsg_offset, "gpus", gpus);
	char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	struct err e;
	if (write_file_atomic(m->cfg.state_path, text, 0600, &e) < 0)
		log_msg("warn", "agent", "GPU health not saved: %s", e.msg);
	else
		m->dirty_state = false;
	free(text);
}

static void load_xids(struct gpu_watch *w, json_t *xids)
{
	const char *key;
	json_t *v;
	w->n_xids = 0;
	json_object_foreach(xids, key, v) {
		if (w->n_xids == GPU_XID_KINDS)
			break;
		w->xids[w->n_xids].xid = atoi(key);
		w->xids[w->n_xids].count = (int64_t)json_integer_value(v);
		w->n_xids++;
	}
}

static void load_seen(struct gpu_health_state *h, json_t *seen)
{
	size_t i;
	json_t *v;
	h->n_seen = 0;
	json_array_foreach(seen, i, v) {
		if (h->n_seen == GPU_HEALTH_XID_SEEN)
			break;
		const char *last = json_string_value(json_object_get(v, "last_boot"));
		h->seen[h->n_seen].xid = (int)json_integer_value(json_object_get(v, "xid"));
		h->seen[h->n_seen].boots = (int)json_integer_value(json_object_get(v, "boots"));
		str_copy(h->seen[h->n_seen].last_boot, sizeof h->seen[h->n_seen].last_boot, last ? last : "");
		h->n_seen++;
	}
}

/* Restores one GPU as it was, then lets a changed boot id clear it. */
static void load_watch(struct gpu_monitor *m, struct gpu_watch *w, json_t *o, int64_t now)
{
	const char *reason = json_string_value(json_object_get(o, "reason"));
	const char *boot = json_string_value(json_object_get(o, "boot_id"));
	w->h.state = health_parse(json_string_value(json_object_get(o, "health")));
	w->h.action = action_parse(json_string_value(json_object_get(o, "action")));
	str_copy(w->h.reason, sizeof w->h.reason, reason ? reason : "");
	str_copy(w->h.boot_id, sizeof w->h.boot_id, boot ? boot : m->boot_id);
	w->h.since_ms = (int64_t)json_integer_value(json_object_get(o, "since_ms"));
	w->h.degraded_seen_ms = w->h.state == GPU_DEGRADED ? now : -1;
	w->clear_gen = (unsigned)json_integer_value(json_object_get(o, "clear_gen"));
	load_xids(w, json_object_get(o, "xid_errors"));
	load_seen(&w->h, json_object_get(o, "seen"));
	if (w->h.state != GPU_HEALTHY && strcmp(w->h.boot_id, m->boot_id) != 0)
		log_msg("info", "agent", "gpu=%s was %s (%s); the host rebooted since, so it starts healthy", w->uuid,
			gpu_health_name(w->h.state), w->h.reason);
	gpu_health_boot(&w->h, m->boot_id, now);
	if (w->h.state != GPU_HEALTHY)
		log_msg("warn", "agent", "gpu=%s still %s since before the restart: %s", w->uuid,
			gpu_health_name(w->h.state), w->h.reason);
}

int gpu_monitor_load_state(struct gpu_monitor *m, struct err *e)
{
	(void)e;
	if (!m->cfg.state_path)
		return 0;
	json_error_t je;
	errno = 0;
	json_t *root = json_load_file(m->cfg.state_path, 0, &je);
	if (!root) {
		if (errno != ENOENT)
			log_msg("warn", "agent", "ignoring GPU health state %s: %s", m->cfg.state_path, je.text);
		return 0;
	}
	const char *boot = json_string_value(json_object_get(root, "boot_id"));
	/* Sequence numbers start over at boot; file offsets do not. */
	if (boot && strcmp(boot, m->boot_id) == 0)
		m->kmsg_seq = (int64_t)json_integer_value(json_object_get(root, "kmsg_seq"));
	m->kmsg_offset = (int64_t)json_integer_value(json_object_get(root, "kmsg_offset"));
	json_t *gpus = json_object_get(root, "gpus");
	int64_t now = now_ms();
	for (int i = 0; i < m->n; i++) {
		json_t *o = json_object_get(gpus, m->w[i].uuid);
		if (json_is_object(o))
			load_watch(m, &m->w[i], o, now);
	}
	json_decref(root);
	m->dirty_state = true;
	return 0;
}
