/* Unit tests of the per-GPU health state machine: each Xid class, sticky
 * Unhealthy, reboot and operator clearing, escalation after repeated
 * reboots, and debouncing of flapping signals. Time is passed in. */
#include <criterion/criterion.h>
#include <string.h>

#include "gpu_source.h"

static struct gpu_health_cfg cfg;
static struct gpu_health_state s;

static void setup(void)
{
	gpu_health_cfg_default(&cfg);
	gpu_health_init(&s, "boot-a", 0);
}

TestSuite(gpu_health, .init = setup);

Test(gpu_health, starts_healthy)
{
	cr_assert_eq(s.state, GPU_HEALTHY);
	cr_assert_eq(s.action, GPU_ACTION_NONE);
	cr_assert_str_eq(gpu_health_name(s.state), "healthy");
}

Test(gpu_health, xid_79_is_unhealthy_reboot_and_sticky)
{
	gpu_health_xid(&s, &cfg, 79, "boot-a", 1000);
	cr_assert_eq(s.state, GPU_UNHEALTHY);
	cr_assert_eq(s.action, GPU_ACTION_REBOOT);
	cr_assert_not_null(strstr(s.reason, "Xid 79"), "%s", s.reason);
	cr_assert_not_null(strstr(s.reason, "fallen off the bus"), "%s", s.reason);
	gpu_health_tick(&s, &cfg, 24LL * 3600 * 1000);
	cr_assert_eq(s.state, GPU_UNHEALTHY, "no timer clears Unhealthy");
	gpu_health_signal(&s, &cfg, GPU_DEGRADED, GPU_ACTION_CHECK_APP, "hot", 24LL * 3600 * 1000 + 1);
	cr_assert_eq(s.state, GPU_UNHEALTHY, "a lesser signal does not lower it");
	cr_assert_eq(s.action, GPU_ACTION_REBOOT);
}

Test(gpu_health, reboot_clears)
{
	gpu_health_xid(&s, &cfg, 48, "boot-a", 1000);
	cr_assert_eq(s.state, GPU_UNHEALTHY);
	gpu_health_boot(&s, "boot-a", 2000);
	cr_assert_eq(s.state, GPU_UNHEALTHY, "same boot id: still unhealthy");
	gpu_health_boot(&s, "boot-b", 3000);
	cr_assert_eq(s.state, GPU_HEALTHY);
	cr_assert_str_eq(s.reason, "");
}

Test(gpu_health, operator_clear)
{
	gpu_health_xid(&s, &cfg, 79, "boot-a", 1000);
	gpu_health_clear(&s, 2000);
	cr_assert_eq(s.state, GPU_HEALTHY);
	cr_assert_eq(s.since_ms, 2000);
}

Test(gpu_health, hardware_xid_asks_for_inspection)
{
	gpu_health_xid(&s, &cfg, 81, "boot-a", 1000);
	cr_assert_eq(s.state, GPU_UNHEALTHY);
	cr_assert_eq(s.action, GPU_ACTION_HW_INSPECTION);
}

Test(gpu_health, app_xid_is_degraded_and_holds_then_clears)
{
	gpu_health_xid(&s, &cfg, 13, "boot-a", 1000);
	cr_assert_eq(s.state, GPU_DEGRADED);
	cr_assert_eq(s.action, GPU_ACTION_CHECK_APP);
	gpu_health_tick(&s, &cfg, 1000 + cfg.degraded_hold_ms - 1);
	cr_assert_eq(s.state, GPU_DEGRADED);
	gpu_health_tick(&s, &cfg, 1000 + cfg.degraded_hold_ms);
	cr_assert_eq(s.state, GPU_HEALTHY);
}

Test(gpu_health, ignorable_xid_changes_nothing)
{
	gpu_health_xid(&s, &cfg, 45, "boot-a", 1000);
	cr_assert_eq(s.state, GPU_HEALTHY);
}

Test(gpu_health, worse_xid_raises_degraded_to_unhealthy)
{
	gpu_health_xid(&s, &cfg, 13, "boot-a", 1000);
	gpu_health_xid(&s, &cfg, 119, "boot-a", 2000);
	cr_assert_eq(s.state, GPU_UNHEALTHY);
	cr_assert_not_null(strstr(s.reason, "Xid 119"));
	gpu_health_xid(&s, &cfg, 13, "boot-a", 3000);
	cr_assert_not_null(strstr(s.reason, "Xid 119"), "a lesser Xid keeps the reason");
}

Test(gpu_health, same_xid_after_two_reboots_escalates)
{
	gpu_health_xid(&s, &cfg, 79, "boot-a", 1000);
	cr_assert_eq(s.action, GPU_ACTION_REBOOT);
	gpu_health_xid(&s, &cfg, 79, "boot-b", 2000); /* after 1 reboot */
	cr_assert_eq(s.state, GPU_UNHEALTHY);
	cr_assert_eq(s.action, GPU_ACTION_REBOOT);
	gpu_health_xid(&s, &cfg, 79, "boot-c", 3000); /* after 2 reboots */
	cr_assert_eq(s.state, GPU_UNHEALTHY);
	cr_assert_eq(s.action, GPU_ACTION_HW_INSPECTION);
	cr_assert_not_null(strstr(s.reason, "after 2 reboots"), "%s", s.reason);
	/* The same Xid twice in one boot counts as one boot. */
	gpu_health_init(&s, "boot-x", 0);
	gpu_health_xid(&s, &cfg, 79, "boot-x", 1);
	gpu_health_xid(&s, &cfg, 79, "boot-x", 2);
	gpu_health_xid(&s, &cfg, 79, "boot-y", 3);
	cr_assert_eq(s.action, GPU_ACTION_REBOOT);
}

Test(gpu_health, different_xids_across_reboots_do_not_escalate)
{
	gpu_health_xid(&s, &cfg, 79, "boot-a", 1000);
	gpu_health_xid(&s, &cfg, 48, "boot-b", 2000);
	gpu_health_xid(&s, &cfg, 119, "boot-c", 3000);
	cr_assert_eq(s.action, GPU_ACTION_REBOOT);
}

Test(gpu_health, unhealthy_signal_applies_at_once)
{
	gpu_health_signal(&s, &cfg, GPU_UNHEALTHY, GPU_ACTION_HW_INSPECTION, "remapped rows failed", 500);
	cr_assert_eq(s.state, GPU_UNHEALTHY);
	cr_assert_str_eq(s.reason, "remapped rows failed");
}

Test(gpu_health, degraded_signal_must_persist_for_the_debounce)
{
	int64_t t = 0;
	for (; t < cfg.debounce_ms; t += 5000) {
		gpu_health_signal(&s, &cfg, GPU_DEGRADED, GPU_ACTION_NONE, "hw slowdown", t);
		gpu_health_tick(&s, &cfg, t);
		cr_assert_eq(s.state, GPU_HEALTHY, "at %lld", (long long)t);
	}
	gpu_health_signal(&s, &cfg, GPU_DEGRADED, GPU_ACTION_NONE, "hw slowdown", t);
	cr_assert_eq(s.state, GPU_DEGRADED);
	cr_assert_str_eq(s.reason, "hw slowdown");
}

Test(gpu_health, a_blip_is_forgotten)
{
	gpu_health_signal(&s, &cfg, GPU_DEGRADED, GPU_ACTION_NONE, "blip", 0);
	gpu_health_tick(&s, &cfg, cfg.debounce_ms);
	cr_assert_eq(s.pending_since_ms, -1);
	gpu_health_signal(&s, &cfg, GPU_DEGRADED, GPU_ACTION_NONE, "blip", cfg.debounce_ms + 1);
	cr_assert_eq(s.state, GPU_HEALTHY, "a new blip starts a new debounce");
}

Test(gpu_health, flapping_signal_gives_one_steady_degraded)
{
	int changes = 0;
	enum gpu_health last = s.state;
	/* On for 10 s, off for 10 s, for 10 minutes. */
	for (int64_t t = 0; t < 600000; t += 1000) {
		if ((t / 10000) % 2 == 0)
			gpu_health_signal(&s, &cfg, GPU_DEGRADED, GPU_ACTION_NONE, "thermal", t);
		gpu_health_tick(&s, &cfg, t);
		if (s.state != last) {
			changes++;
			last = s.state;
		}
	}
	cr_assert_eq(s.state, GPU_DEGRADED);
	cr_assert_eq(changes, 1, "changes %d", changes);
	/* Then it stops: Degraded clears after the hold. */
	gpu_health_tick(&s, &cfg, 600000 + cfg.degraded_hold_ms);
	cr_assert_eq(s.state, GPU_HEALTHY);
}

Test(gpu_health, history_is_bounded)
{
	for (int x = 1; x <= 40; x++)
		gpu_health_xid(&s, &cfg, x, "boot-a", x);
	cr_assert_eq(s.n_seen, GPU_HEALTH_XID_SEEN);
}
