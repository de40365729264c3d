/* gpu_source.h — real GPU discovery and health signals: NVML (dlopen),
 * nvidia-smi CSV, kernel-log Xid lines, and the per-GPU health state
 * machine. Every source fills the same `struct gpu` (pool.h) that
 * gpu_sim.c produces, plus `struct gpu_facts` for what only real devices
 * have. Nothing here prints, exits, or touches the pool. */
#ifndef GPUNODE_GPU_SOURCE_H
#define GPUNODE_GPU_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "pool.h"

/* ---- facts a real device reports beyond struct gpu ---- */

enum gpu_mig { GPU_MIG_UNKNOWN = -1, GPU_MIG_DISABLED = 0, GPU_MIG_ENABLED = 1 };

struct gpu_facts {
	char name[96];           /* as the driver says: "NVIDIA H100 80GB HBM3" */
	char pci_bus_id[32];     /* "00000000:04:00.0" (NVML/nvidia-smi form) */
	char driver_version[32]; /* "565.57.01"; "" unknown */
	char cuda_version[16];   /* "12.7"; "" unknown */
	enum gpu_mig mig;
};

/* Fills the pool fields of g from what a driver reports: model "H100-80GB"
 * from name and memory, arch "sm_90" from the compute capability (major <
 * 0: unknown), nvlink_group -1 (unknown), simulated false. */
void gpu_fill_from_driver(struct gpu *g, int index, const char *uuid, const char *name, int64_t vram_mb,
			  int cc_major, int cc_minor);

/* ---- NVML through dlopen("libnvidia-ml.so.1") ---- */

/* Discovers every GPU NVML sees. Each NVML call runs on a worker thread and
 * is abandoned after timeout_ms (see gpu_nvml.c for what happens to a stuck
 * thread). ERR_UNAVAILABLE: library absent, init failed, or a call timed
 * out; the message names the call. *gpus and *facts are malloc'd, n entries. */
int gpu_nvml_discover(int timeout_ms, struct gpu **gpus, struct gpu_facts **facts, int *n, struct err *e);

/* ---- nvidia-smi --query-gpu CSV ---- */

/* The exact field list we ask for (gpu-health.md); the parser expects it. */
#define GPU_SMI_QUERY_FIELDS                                                                               \
	"index,uuid,name,pci.bus_id,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,"  \
	"clocks_event_reasons.active,ecc.errors.uncorrected.volatile.total"

/* One row's readings; -1 (or a negative) means [N/A] / [Not Supported]. */
struct gpu_smi_reading {
	int64_t mem_used_mb;
	int util_pct;
	int temp_c;
	double power_w;       /* < 0: unknown */
	int64_t clocks_event; /* bitmask; -1 unknown */
	int64_t ecc_uncorrected_volatile;
};

/* Runs `nvidia-smi --query-gpu=GPU_SMI_QUERY_FIELDS ...` (found in PATH)
 * and returns its output (malloc'd). ERR_UNAVAILABLE when it is missing,
 * fails, or does not answer within 10 s (it is killed: a hung driver must
 * not hang the agent). */
int gpu_smi_query(char **text, struct err *e);

/* Parses the output of `nvidia-smi --query-gpu=GPU_SMI_QUERY_FIELDS
 * --format=csv,noheader,nounits`. Blank lines are skipped; a malformed row
 * fails the whole parse (ERR_INVALID, naming the line). Outputs malloc'd. */
int gpu_smi_parse(const char *text, struct gpu **gpus, struct gpu_facts **facts, struct gpu_smi_reading **readings,
		  int *n, struct err *e);

/* ---- kernel log Xid lines ---- */

/* In rising order of how drastic they are: the health machine keeps the
 * most drastic action of the signals that made the state. */
enum gpu_action {
	GPU_ACTION_NONE,
	GPU_ACTION_CHECK_COOLING, /* thermal slowdown, hardware throttling: cooling and power of the host */
	GPU_ACTION_CHECK_APP,
	GPU_ACTION_REBOOT,
	GPU_ACTION_HW_INSPECTION
};

/* One row of the table generated from NVIDIA's catalog and gpud (gpu_xid_table.c). */
struct gpu_xid_info {
	int xid;
	enum gpu_health severity;
	enum gpu_action action;
	bool then_hw;         /* if it comes back after reboots: hardware inspection */
	const char *mnemonic; /* NVIDIA's name, "" unknown */
	const char *description;
};
extern const struct gpu_xid_info gpu_xid_table[];
extern const int gpu_xid_table_len;

/* The table row for xid; for codes not in it, a static "unknown Xid" row
 * (Degraded, check the application). Never NULL. */
const struct gpu_xid_info *gpu_xid_lookup(int xid);

const char *gpu_action_name(enum gpu_action a);   /* "none", "check_cooling", "check_application"... */
const char *gpu_action_advice(enum gpu_action a); /* plain words for operators */
/* gpu_health_name() is in pool.h. */

struct gpu_xid_event {
	int xid;
	char pci[32];      /* as logged, lower case: "0000:9b:00" */
	int64_t seq;       /* kmsg sequence number; -1 for plain dmesg lines */
	int64_t ts_us;     /* kmsg timestamp (since boot); -1 unknown */
	char detail[160];  /* the text after "N, " (truncated) */
};

/* Parses one kernel-log line: a /dev/kmsg record "PRI,SEQ,TS_us,FLAGS;MSG"
 * or a dmesg line (with or without a "[...]" prefix). Returns 1 and fills
 * *ev for an Xid line or "GPU has fallen off the bus" (Xid 79), 0 for any
 * other line (including malformed Xid lines), never fails. */
int gpu_xid_parse_line(const char *line, struct gpu_xid_event *ev);

/* ---- per-GPU health state machine (pure: time is passed in) ---- */

#define GPU_HEALTH_REASON_MAX 160
#define GPU_HEALTH_XID_SEEN 16 /* distinct Xids remembered across boots */

struct gpu_health_cfg {
	int64_t debounce_ms;     /* a Degraded signal must persist this long before it shows */
	int64_t degraded_hold_ms; /* Degraded clears after this long without the signal */
	int escalate_reboots;    /* same Xid after this many reboots -> hardware inspection */
};
/* debounce 30 s, hold 5 min, escalate after 2 reboots. */
void gpu_health_cfg_default(struct gpu_health_cfg *c);

struct gpu_health_state {
	enum gpu_health state;      /* what the node acts on */
	enum gpu_action action;
	char reason[GPU_HEALTH_REASON_MAX];
	char boot_id[40];           /* boot the state belongs to */
	int64_t since_ms;           /* when `state` was entered */
	/* Degraded signal not yet shown (debounce) or last seen (hold). */
	int64_t pending_since_ms;   /* -1: none pending */
	int64_t degraded_seen_ms;
	enum gpu_action pending_action;
	char pending_reason[GPU_HEALTH_REASON_MAX];
	/* Xids seen, with the boots they were seen in (escalation). */
	struct {
		int xid;
		int boots;              /* distinct boots it was seen in */
		char last_boot[40];
	} seen[GPU_HEALTH_XID_SEEN];
	int n_seen;
};

void gpu_health_init(struct gpu_health_state *s, const char *boot_id, int64_t now_ms);

/* Feeds an Xid seen in boot boot_id at now_ms. A boot id different from the
 * state's first counts as a reboot (gpu_health_boot). */
void gpu_health_xid(struct gpu_health_state *s, const struct gpu_health_cfg *c, int xid, const char *boot_id,
		    int64_t now_ms);

/* A non-Xid signal (throttling, remapped rows, NVML GPU lost...): severity
 * Unhealthy applies at once; Degraded goes through the debounce. */
void gpu_health_signal(struct gpu_health_state *s, const struct gpu_health_cfg *c, enum gpu_health severity,
		       enum gpu_action action, const char *reason, int64_t now_ms);

/* Advances timers: a pending Degraded shows after debounce_ms; a shown
 * Degraded clears after degraded_hold_ms without a new signal. Unhealthy
 * never clears here. */
void gpu_health_tick(struct gpu_health_state *s, const struct gpu_health_cfg *c, int64_t now_ms);

/* The host's boot id (from /proc/sys/kernel/random/boot_id) as seen now:
 * if it changed, Unhealthy and Degraded clear (the Xid history stays). */
void gpu_health_boot(struct gpu_health_state *s, const char *boot_id, int64_t now_ms);

/* Operator clear (`gpunode gpus clear`): back to Healthy; history stays. */
void gpu_health_clear(struct gpu_health_state *s, int64_t now_ms);

/* ---- readings: what a GPU reports about itself now, and what they mean ---- */

/* One sample of one GPU, from NVML or from an nvidia-smi row. Any number
 * below 0 means unknown: the board or the source does not report it
 * (NVML_ERROR_NOT_SUPPORTED, "[N/A]", "[Not Supported]"). */
struct gpu_reading {
	int64_t ts_ms;        /* when taken: the caller's clock for gpu_assess's window */
	bool lost;            /* NVML said GPU_IS_LOST (fallen off the bus); the rest is unknown */
	bool reset_required;  /* NVML said RESET_REQUIRED */
	int util_pct;         /* GPU busy, 0..100 */
	int64_t mem_used_mb, mem_total_mb;
	int temp_c, temp_slowdown_c, temp_shutdown_c; /* the device's own thresholds */
	double power_w, power_limit_w;                /* draw and enforced limit */
	int64_t clocks_event; /* NVML clocks event (throttle) reasons bitmask; -1 unknown */
	int64_t ecc_uncorrected_volatile; /* since the last driver load or reset */
	int remapped_pending, remapped_failure; /* 0/1: row remapping waits for a reset / has failed */
	int persistence;      /* persistence mode: 0 off, 1 on */
};

/* The clocks event reasons that mean the hardware itself slowed the GPU
 * down (NVML's HwSlowdown, HwThermalSlowdown, HwPowerBrakeSlowdown). The
 * other reasons (idle, software power cap, application clocks) are normal
 * operation. */
#define GPU_CLOCKS_EVENT_HW_SLOWDOWN 0x8
#define GPU_CLOCKS_EVENT_HW_THERMAL 0x40
#define GPU_CLOCKS_EVENT_HW_POWER_BRAKE 0x80

/* Every field unknown (-1, false), ts_ms set. */
void gpu_reading_unknown(struct gpu_reading *r, int64_t ts_ms);

/* The same reading from an nvidia-smi row (gpu_smi_parse): g gives the
 * memory total; what the CSV does not carry (thresholds, power limit,
 * remapped rows, persistence) stays unknown. */
void gpu_reading_from_smi(const struct gpu *g, const struct gpu_smi_reading *s, int64_t ts_ms,
			  struct gpu_reading *out);

/* Reads the GPU at NVML index `index` (NVML is loaded and initialised once
 * per process and kept). Each call is bounded by timeout_ms like
 * discovery's. NVML_ERROR_GPU_IS_LOST (or RESET_REQUIRED) from any call is a
 * reading, not an error: out->lost (reset_required) is set and 0 returned.
 * -1 with ERR_UNAVAILABLE naming the call: library absent, init failed, a
 * call timed out, or an earlier timed-out call is still stuck in the driver
 * (no new call is made until it returns). out->ts_ms is now_ms() at the start. */
int gpu_nvml_read(int timeout_ms, int index, struct gpu_reading *out, struct err *e);

/* ---- assessment: readings -> health signals for gpu_health_signal() ---- */

/* One health signal. severity GPU_HEALTHY is a note (e.g. persistence mode
 * off): worth showing, changes no state (gpu_health_signal ignores it). */
struct gpu_signal {
	enum gpu_health severity;
	enum gpu_action action;
	char reason[GPU_HEALTH_REASON_MAX]; /* plain words with the measured values */
};

#define GPU_ASSESS_MAX_SIGNALS 8 /* enough for every rule at once */
#define GPU_ASSESS_WINDOW_SAMPLES 256

/* Recent hardware-throttling samples of one GPU (the window is measured
 * in time; the ring only bounds memory). One per GPU, owned by the caller. */
struct gpu_assess_window {
	int64_t window_ms;
	int head, n;
	struct {
		int64_t ts_ms;
		uint8_t hw_reasons; /* the GPU_CLOCKS_EVENT_HW_* bits seen (unknown: 0) */
	} sample[GPU_ASSESS_WINDOW_SAMPLES];
};

/* window_ms <= 0: the default, 60 s (see gpu_assess.c for the numbers). */
void gpu_assess_window_init(struct gpu_assess_window *w, int64_t window_ms);

/* Assesses one reading (r->ts_ms must not go backwards for the same w):
 * records it in w, writes up to cap signals, most severe first, and returns
 * how many. 0: nothing to report. The caller feeds each to
 * gpu_health_signal(state, cfg, s.severity, s.action, s.reason, r->ts_ms). */
int gpu_assess(const struct gpu_reading *r, struct gpu_assess_window *w, struct gpu_signal *out, int cap);

#endif
