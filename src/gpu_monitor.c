/* gpu_monitor.c — see gpu_monitor.h. The kernel-log reader is in
 * gpu_kmsg.c, the on-disk state in gpu_monitor_state.c. */
#include "gpu_monitor.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu_monitor_impl.h"
#include "util.h"

/* The same Xid for the same GPU within this window is one event: the driver
 * often logs a fault several times in a burst. */
#define XID_DEDUPE_MS 1000

/* --- PCI bus ids --- */

/* "00000000:9B:00.0" or "0000:9b:00" -> domain, bus, device. */
static bool pci_parse(const char *s, unsigned long v[3])
{
	unsigned long parts[4];
	int n = 0;
	const char *p = s;
	while (*p && n < 4) {
		char *end;
		if (!isxdigit((unsigned char)*p))
			return false;
		parts[n++] = strtoul(p, &end, 16);
		p = end;
		if (*p == ':' || *p == '.')
			p++;
		else if (*p)
			return false;
	}
	if (n < 3)
		return false;
	for (int i = 0; i < 3; i++)
		v[i] = parts[i];
	return true;
}

bool gpu_pci_same(const char *a, const char *b)
{
	unsigned long x[3], y[3];
	return pci_parse(a, x) && pci_parse(b, y) && x[0] == y[0] && x[1] == y[1] && x[2] == y[2];
}

/* --- lookups (lock held) --- */

struct gpu_watch *gpu_monitor_find(struct gpu_monitor *m, const char *uuid)
{
	for (int i = 0; i < m->n; i++)
		if (strcmp(m->w[i].uuid, uuid) == 0)
			return &m->w[i];
	return NULL;
}

static struct gpu_watch *find_by_pci(struct gpu_monitor *m, const char *pci)
{
	for (int i = 0; i < m->n; i++)
		if (gpu_pci_same(m->w[i].pci, pci))
			return &m->w[i];
	return NULL;
}

static void count_xid(struct gpu_watch *w, int xid)
{
	for (int i = 0; i < w->n_xids; i++)
		if (w->xids[i].xid == xid) {
			w->xids[i].count++;
			return;
		}
	if (w->n_xids == GPU_XID_KINDS) /* full: the rarest old one makes room */
		w->n_xids--;
	w->xids[w->n_xids].xid = xid;
	w->xids[w->n_xids].count = 1;
	w->n_xids++;
}

/* Lock held. Records that health may have moved; returns true when it did. */
bool gpu_monitor_note_change(struct gpu_monitor *m, struct gpu_watch *w, enum gpu_health before,
			     const char *before_reason)
{
	if (w->h.state == before && strcmp(w->h.reason, before_reason) == 0)
		return false;
	m->version++;
	m->dirty_state = true;
	log_msg(w->h.state == GPU_HEALTHY ? "info" : "warn", "agent", "gpu=%s %s -> %s%s%s", w->uuid,
		gpu_health_name(before), gpu_health_name(w->h.state), w->h.reason[0] ? ": " : "", w->h.reason);
	return true;
}

/* --- kernel-log lines --- */

static int feed_locked(struct gpu_monitor *m, const char *line, bool *changed)
{
	struct gpu_xid_event ev;
	if (gpu_xid_parse_line(line, &ev) != 1)
		return 0;
	if (ev.seq >= 0 && ev.seq <= m->kmsg_seq)
		return 0; /* replayed record we handled before a restart */
	if (ev.seq >= 0)
		m->kmsg_seq = ev.seq;
	struct gpu_watch *w = ev.pci[0] ? find_by_pci(m, ev.pci) : (m->n == 1 ? &m->w[0] : NULL);
	if (!w) {
		log_msg("warn", "agent", "kernel log: Xid %d on PCI %s, which is none of this host's GPUs", ev.xid,
			ev.pci[0] ? ev.pci : "(unknown)");
		return 0;
	}
	int64_t now = now_ms();
	if (w->last_xid == ev.xid && now - w->last_xid_ms < XID_DEDUPE_MS)
		return 1;
	w->last_xid = ev.xid;
	w->last_xid_ms = now;
	count_xid(w, ev.xid);
	m->dirty_state = true;
	enum gpu_health before = w->h.state;
	char before_reason[GPU_HEALTH_REASON_MAX];
	str_copy(before_reason, sizeof before_reason, w->h.reason);
	gpu_health_xid(&w->h, &m->cfg.health, ev.xid, m->boot_id, now);
	log_msg("warn", "agent", "gpu=%s kernel log: Xid %d: %s", w->uuid, ev.xid, ev.detail);
	m->readings_version++; /* the xid counters moved: worth a report */
	if (gpu_monitor_note_change(m, w, before, before_reason))
		*changed = true;
	return 1;
}

int gpu_monitor_feed_line(struct gpu_monitor *m, const char *line)
{
	bool changed = false;
	pthread_mutex_lock(&m->mu);
	int rc = feed_locked(m, line, &changed);
	gpu_monitor_save_locked(m);
	pthread_mutex_unlock(&m->mu);
	if (changed && m->cfg.on_change)
		m->cfg.on_change(m->cfg.arg);
	return rc;
}

/* --- reports --- */

static void describe_locked(const struct gpu_watch *w, json_t *o)
{
	json_object_set_new(o, "health", json_string(gpu_health_name(w->h.state)));
	json_object_set_new(o, "reason", json_string(w->h.reason));
	json_object_set_new(o, "action", json_string(gpu_action_name(w->h.action)));
	json_object_set_new(o, "health_since_ms", json_integer((json_int_t)w->h.since_ms));
	json_object_set_new(o, "clear_gen", json_integer((json_int_t)w->clear_gen));
	json_t *xids = json_object();
	for (int i = 0; i < w->n_xids; i++) {
		char key[16];
		snprintf(key, sizeof key, "%d", w->xids[i].xid);
		json_object_set_new(xids, key, json_integer((json_int_t)w->xids[i].count));
	}
	json_object_set_new(o, "xid_errors", xids);
	const struct gpu_watch_reading *r = &w->reading;
	if (r->util_pct >= 0)
		json_object_set_new(o, "utilization_pct", json_integer(r->util_pct));
	if (r->mem_used_mb >= 0)
		json_object_set_new(o, "memory_used_mb", json_integer((json_int_t)r->mem_used_mb));
	if (r->temp_c >= 0)
		json_object_set_new(o, "temperature_c", json_integer(r->temp_c));
	if (r->power_w >= 0)
		json_object_set_new(o, "power_w", json_real(r->power_w));
}

uint64_t gpu_monitor_version(struct gpu_monitor *m)
{
	pthread_mutex_lock(&m->mu);
	uint64_t v = m->version + m->readings_version;
	pthread_mutex_unlock(&m->mu);
	return v;
}

json_t *gpu_monitor_report(struct gpu_monitor *m, uint64_t *version)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < m->n; i++) {
		json_t *o = json_pack("{s:s}", "uuid", m->w[i].uuid);
		describe_locked(&m->w[i], o);
		json_array_append_new(arr, o);
	}
	*version = m->version + m->readings_version;
	pthread_mutex_unlock(&m->mu);
	return json_pack("{s:o}", "gpus", arr);
}

void gpu_monitor_describe(struct gpu_monitor *m, const char *uuid, json_t *obj)
{
	pthread_mutex_lock(&m->mu);
	struct gpu_watch *w = gpu_monitor_find(m, uuid);
	if (w)
		describe_locked(w, obj);
	pthread_mutex_unlock(&m->mu);
}

/* --- operator verbs --- */

int gpu_monitor_clear(struct gpu_monitor *m, const char *uuid, unsigned clear_gen, struct err *e)
{
	pthread_mutex_lock(&m->mu);
	struct gpu_watch *w = gpu_monitor_find(m, uuid);
	bool changed = false;
	if (w) {
		enum gpu_health before = w->h.state;
		char before_reason[GPU_HEALTH_REASON_MAX];
		str_copy(before_reason, sizeof before_reason, w->h.reason);
		gpu_health_clear(&w->h, now_ms());
		w->last_xid = 0; /* an Xid after the clear is a new incident, however soon */
		if (clear_gen > w->clear_gen)
			w->clear_gen = clear_gen;
		changed = gpu_monitor_note_change(m, w, before, before_reason);
		m->version++; /* the new clear_gen must reach the node even if nothing else moved */
		m->dirty_state = true;
		gpu_monitor_save_locked(m);
	}
	pthread_mutex_unlock(&m->mu);
	if (!w)
		return err_set(e, ERR_NOT_FOUND, "no GPU %s on this host", uuid);
	if (m->cfg.on_change)
		m->cfg.on_change(m->cfg.arg);
	(void)changed;
	return 0;
}

static bool kmsg_is_plain_file(const char *path)
{
	struct stat st;
	return path && *path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A line as the driver writes it (dmesg form, seconds since boot). */
static void drill_line(const char *pci, int xid, char *buf, size_t cap)
{
	const struct gpu_xid_info *info = gpu_xid_lookup(xid);
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	unsigned long v[3] = {0, 0, 0};
	pci_parse(pci, v);
	snprintf(buf, cap, "[%5ld.%06ld] NVRM: Xid (PCI:%04lx:%02lx:%02lx): %d, pid=0, name=gpunode-drill, %s\n",
		 (long)ts.tv_sec, ts.tv_nsec / 1000, v[0], v[1], v[2], xid, info->description);
}

static int append_line(const char *path, const char *line, struct err *e)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, ERR_INTERNAL, "cannot open kernel-log file %s: %s", path, strerror(errno));
	size_t len = strlen(line);
	ssize_t w = write(fd, line, len);
	close(fd);
	if (w != (ssize_t)len)
		return err_set(e, ERR_INTERNAL, "cannot append to %s: %s", path, strerror(errno));
	return 0;
}

int gpu_monitor_inject(struct gpu_monitor *m, const char *uuid, int xid, struct err *e)
{
	char pci[32], line[320];
	bool simulated;
	pthread_mutex_lock(&m->mu);
	struct gpu_watch *w = gpu_monitor_find(m, uuid);
	if (w) {
		str_copy(pci, sizeof pci, w->pci);
		simulated = w->simulated;
	}
	pthread_mutex_unlock(&m->mu);
	if (!w)
		return err_set(e, ERR_NOT_FOUND, "no GPU %s on this host", uuid);
	drill_line(pci, xid, line, sizeof line);
	if (kmsg_is_plain_file(m->cfg.kmsg_path))
		return append_line(m->cfg.kmsg_path, line, e); /* the watcher picks it up */
	if (!simulated)
		return err_set(e, ERR_CONFLICT,
			       "GPU %s is real and the kernel log is %s: fault drills on real GPUs need a test "
			       "kernel-log file (gpunode agent --kmsg FILE)",
			       uuid, m->cfg.kmsg_path && *m->cfg.kmsg_path ? m->cfg.kmsg_path : "not watched");
	gpu_monitor_feed_line(m, line);
	return 0;
}

/* --- the sampler: timers and readings --- */

static void tick_locked(struct gpu_monitor *m, int64_t now, bool *changed)
{
	enum gpu_health before[TASK_MAX_GPUS];
	char (*reason)[GPU_HEALTH_REASON_MAX] = xcalloc((size_t)m->n + 1, sizeof *reason);
	for (int i = 0; i < m->n && i < TASK_MAX_GPUS; i++) {
		before[i] = m->w[i].h.state;
		str_copy(reason[i], sizeof reason[i], m->w[i].h.reason);
	}
	gpu_monitor_sample_locked(m, now);
	for (int i = 0; i < m->n && i < TASK_MAX_GPUS; i++) {
		gpu_health_tick(&m->w[i].h, &m->cfg.health, now);
		if (gpu_monitor_note_change(m, &m->w[i], before[i], reason[i]))
			*changed = true;
	}
	free(reason);
}

static void *sampler_main(void *arg)
{
	struct gpu_monitor *m = arg;
	pthread_mutex_lock(&m->mu);
	while (!m->stopping) {
		struct timespec ts;
		deadline_in_ns(&ts, (int64_t)m->cfg.sample_ms * 1000000L);
		pthread_cond_timedwait(&m->cv, &m->mu, &ts);
		if (m->stopping)
			break;
		bool changed = false;
		tick_locked(m, now_ms(), &changed);
		gpu_monitor_save_locked(m);
		if (changed && m->cfg.on_change) {
			pthread_mutex_unlock(&m->mu);
			m->cfg.on_change(m->cfg.arg);
			pthread_mutex_lock(&m->mu);
		}
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

/* --- start / stop --- */

static void read_boot_id(const char *path, char *out, size_t cap)
{
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(out, (int)cap, f))
		out[strcspn(out, "\r\n")] = '\0';
	fclose(f);
}

int gpu_monitor_start(const struct gpu_monitor_config *cfg, struct gpu_monitor **out, struct err *e)
{
	struct gpu_monitor *m = xcalloc(1, sizeof *m);
	m->cfg = *cfg;
	/* The caller's strings may not outlive this call. */
	if (cfg->kmsg_path) {
		str_copy(m->kmsg_path, sizeof m->kmsg_path, cfg->kmsg_path);
		m->cfg.kmsg_path = m->kmsg_path;
	}
	if (cfg->state_path) {
		str_copy(m->state_path, sizeof m->state_path, cfg->state_path);
		m->cfg.state_path = m->state_path;
	}
	if (m->cfg.sample_ms <= 0)
		m->cfg.sample_ms = 1000;
	if (m->cfg.nvml_timeout_ms <= 0)
		m->cfg.nvml_timeout_ms = 2000;
	m->kmsg_seq = -1;
	m->kmsg_fd = -1;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	read_boot_id(cfg->boot_id_path ? cfg->boot_id_path : GPU_BOOT_ID_PATH, m->boot_id, sizeof m->boot_id);
	m->n = cfg->n_gpus;
	m->w = xcalloc((size_t)(m->n > 0 ? m->n : 1), sizeof *m->w);
	int64_t now = now_ms();
	for (int i = 0; i < m->n; i++) {
		struct gpu_watch *w = &m->w[i];
		str_copy(w->uuid, sizeof w->uuid, cfg->gpus[i].uuid);
		str_copy(w->pci, sizeof w->pci, cfg->gpus[i].pci_bus_id);
		w->index = cfg->gpus[i].index;
		w->simulated = cfg->gpus[i].simulated;
		gpu_health_init(&w->h, m->boot_id, now);
		gpu_monitor_reading_unknown(&w->reading);
	}
	if (gpu_monitor_load_state(m, e) < 0 || gpu_kmsg_open(m, e) < 0) {
		gpu_monitor_stop(m);
		return -1;
	}
	pthread_create(&m->sampler, NULL, sampler_main, m);
	m->sampler_started = true;
	if (m->kmsg_fd >= 0) {
		pthread_create(&m->watcher, NULL, gpu_kmsg_main, m);
		m->watcher_started = true;
	}
	*out = m;
	return 0;
}

void gpu_monitor_stop(struct gpu_monitor *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->stopping = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	if (m->sampler_started)
		pthread_join(m->sampler, NULL);
	if (m->watcher_started)
		pthread_join(m->watcher, NULL);
	gpu_kmsg_close(m);
	pthread_mutex_lock(&m->mu);
	gpu_monitor_save_locked(m);
	pthread_mutex_unlock(&m->mu);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	for (int i = 0; i < m->n; i++)
		gpu_monitor_sample_free(&m->w[i]);
	free(m->w);
	free(m);
}
