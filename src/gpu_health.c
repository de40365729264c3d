/* gpu_health.c — per-GPU health: Healthy / Degraded / Unhealthy, each with
 * a reason and a suggested action (gpud's model, gpu-health.md).
 *
 * Rules, and why:
 * - Unhealthy is sticky: a fatal Xid says the GPU cannot be trusted until
 *   the host reboots, so nothing but a new boot id or an operator clear
 *   brings it back (operators asked for both: gpud issues on health that
 *   "sticks forever").
 * - The same Xid seen again after cfg.escalate_reboots reboots means the
 *   reboot did not fix it: hardware inspection.
 * - Degraded signals that come and go (throttling, temperature) are
 *   debounced with hysteresis: one must keep being reported for
 *   debounce_ms before it shows, and a shown Degraded stays until
 *   degraded_hold_ms pass without it, so a flapping signal yields one steady
 *   Degraded instead of a state change per poll. A Degraded Xid is a
 *   discrete event: it shows at once and then holds the same way.
 * Pure: no clock, no I/O; the caller passes the time. */
#include <stdio.h>
#include <string.h>

#include "gpu_source.h"
#include "util.h"

void gpu_health_cfg_default(struct gpu_health_cfg *c)
{
	c->debounce_ms = 30 * 1000;
	c->degraded_hold_ms = 5 * 60 * 1000;
	c->escalate_reboots = 2;
}

static void reset_pending(struct gpu_health_state *s)
{
	s->pending_since_ms = -1;
	s->pending_action = GPU_ACTION_NONE;
	s->pending_reason[0] = '\0';
}

static void become_healthy(struct gpu_health_state *s, int64_t now_ms)
{
	s->state = GPU_HEALTHY;
	s->action = GPU_ACTION_NONE;
	s->reason[0] = '\0';
	s->since_ms = now_ms;
	reset_pending(s);
}

void gpu_health_init(struct gpu_health_state *s, const char *boot_id, int64_t now_ms)
{
	memset(s, 0, sizeof *s);
	str_copy(s->boot_id, sizeof s->boot_id, boot_id);
	s->degraded_seen_ms = -1;
	become_healthy(s, now_ms);
}

/* Moves to sev (never down: Unhealthy beats Degraded), keeping the more
 * drastic action and the reason that goes with it. */
static void raise_to(struct gpu_health_state *s, enum gpu_health sev, enum gpu_action action, const char *reason,
		     int64_t now_ms)
{
	if (sev < s->state)
		return;
	if (sev == s->state && action <= s->action)
		return;
	if (sev != s->state)
		s->since_ms = now_ms;
	s->state = sev;
	s->action = action;
	str_copy(s->reason, sizeof s->reason, reason);
	reset_pending(s);
}

/* Records xid in this boot; returns the number of distinct boots it has
 * been seen in. */
static int note_xid(struct gpu_health_state *s, int xid)
{
	for (int i = 0; i < s->n_seen; i++) {
		if (s->seen[i].xid != xid)
			continue;
		if (strcmp(s->seen[i].last_boot, s->boot_id) != 0) {
			s->seen[i].boots++;
			str_copy(s->seen[i].last_boot, sizeof s->seen[i].last_boot, s->boot_id);
		}
		return s->seen[i].boots;
	}
	/* Full: forget the oldest; escalation is about recent repeats. */
	if (s->n_seen == GPU_HEALTH_XID_SEEN) {
		memmove(&s->seen[0], &s->seen[1], sizeof s->seen[0] * (GPU_HEALTH_XID_SEEN - 1));
		s->n_seen--;
	}
	s->seen[s->n_seen].xid = xid;
	s->seen[s->n_seen].boots = 1;
	str_copy(s->seen[s->n_seen].last_boot, sizeof s->seen[s->n_seen].last_boot, s->boot_id);
	s->n_seen++;
	return 1;
}

void gpu_health_xid(struct gpu_health_state *s, const struct gpu_health_cfg *c, int xid, const char *boot_id,
		    int64_t now_ms)
{
	gpu_health_boot(s, boot_id, now_ms);
	const struct gpu_xid_info *info = gpu_xid_lookup(xid);
	int boots = note_xid(s, xid);
	if (info->severity == GPU_HEALTHY)
		return;
	char reason[GPU_HEALTH_REASON_MAX];
	enum gpu_action action = info->action;
	enum gpu_health sev = info->severity;
	if (boots > c->escalate_reboots && (info->then_hw || info->action == GPU_ACTION_REBOOT)) {
		action = GPU_ACTION_HW_INSPECTION;
		sev = GPU_UNHEALTHY;
		snprintf(reason, sizeof reason, "Xid %d (%s) seen again after %d reboots", xid, info->description,
			 boots - 1);
	} else {
		snprintf(reason, sizeof reason, "Xid %d (%s)", xid, info->description);
	}
	if (sev == GPU_DEGRADED)
		s->degraded_seen_ms = now_ms;
	raise_to(s, sev, action, reason, now_ms);
}

void gpu_health_signal(struct gpu_health_state *s, const struct gpu_health_cfg *c, enum gpu_health severity,
		       enum gpu_action action, const char *reason, int64_t now_ms)
{
	if (severity == GPU_UNHEALTHY) {
		raise_to(s, GPU_UNHEALTHY, action, reason, now_ms);
		return;
	}
	if (severity != GPU_DEGRADED)
		return;
	s->degraded_seen_ms = now_ms;
	if (s->state != GPU_HEALTHY) {
		if (s->state == GPU_DEGRADED)
			raise_to(s, GPU_DEGRADED, action, reason, now_ms);
		return;
	}
	if (s->pending_since_ms < 0) {
		s->pending_since_ms = now_ms;
		s->pending_action = action;
		str_copy(s->pending_reason, sizeof s->pending_reason, reason);
	}
	if (now_ms - s->pending_since_ms >= c->debounce_ms) {
		char r[GPU_HEALTH_REASON_MAX];
		str_copy(r, sizeof r, s->pending_reason);
		raise_to(s, GPU_DEGRADED, s->pending_action, r, now_ms);
	}
}

void gpu_health_tick(struct gpu_health_state *s, const struct gpu_health_cfg *c, int64_t now_ms)
{
	if (s->state == GPU_DEGRADED && now_ms - s->degraded_seen_ms >= c->degraded_hold_ms) {
		become_healthy(s, now_ms);
		return;
	}
	/* A pending signal that stopped being reported was a blip. */
	if (s->state == GPU_HEALTHY && s->pending_since_ms >= 0 && now_ms - s->degraded_seen_ms >= c->debounce_ms)
		reset_pending(s);
}

void gpu_health_boot(struct gpu_health_state *s, const char *boot_id, int64_t now_ms)
{
	if (!boot_id || !*boot_id || strcmp(boot_id, s->boot_id) == 0)
		return;
	str_copy(s->boot_id, sizeof s->boot_id, boot_id);
	become_healthy(s, now_ms);
}

void gpu_health_clear(struct gpu_health_state *s, int64_t now_ms)
{
	become_healthy(s, now_ms);
}
