/* gpu_nvml_read.c — periodic readings of one GPU through NVML.
 *
 * The agent samples every GPU about once a second, so NVML is loaded and
 * initialised once per process and kept, never shut down: nvmlInit can take
 * seconds on a host without persistence mode, and a reader must not pay it
 * per sample. Readers share that session under one lock.
 *
 * A GPU that fell off the bus answers NVML_ERROR_GPU_IS_LOST; that is the
 * most important reading there is, so it is returned as one (out->lost),
 * not as a failed read. A value the board does not report stays unknown.
 * A wedged driver is another matter: once a call has timed out, no new call
 * is made until that call returns, so a hung driver costs one stuck thread,
 * not one more per sample. */
#include <pthread.h>

#include "gpu_nvml_call.h"
#include "gpu_source.h"
#include "util.h"

#define MIB (1024.0 * 1024.0)

static pthread_mutex_t session_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nvml_session session; /* under session_mu */
static bool session_ready;

/* The reading calls, in the order they are made. */
static const enum nvml_op reading_ops[] = {
	OP_UTILIZATION, OP_MEMORY, OP_TEMPERATURE, OP_TEMP_SLOWDOWN, OP_TEMP_SHUTDOWN, OP_POWER,
	OP_POWER_LIMIT, OP_CLOCKS_EVENT, OP_ECC_UNCORRECTED_VOLATILE, OP_REMAPPED_ROWS, OP_PERSISTENCE,
};

/* Loads and initialises NVML the first time; an init that failed is tried
 * again on the next read (the driver may have been loading). */
static int session_open(int timeout_ms, struct err *e)
{
	session.timeout_ms = timeout_ms;
	if (session_ready)
		return 0;
	if (!session.api.lib && nvml_load(&session.api, e) < 0)
		return -1;
	struct nvml_out r;
	if (nvml_must(&session, OP_INIT, NULL, 0, &r, e) < 0)
		return -1;
	session_ready = true;
	return 0;
}

/* Stores a successful answer of op in out. */
static void store_answer(enum nvml_op op, const struct nvml_out *r, struct gpu_reading *out)
{
	switch (op) {
	case OP_UTILIZATION: out->util_pct = (int)r->util.gpu; break;
	case OP_MEMORY:
		out->mem_used_mb = (int64_t)(r->mem.used / MIB);
		out->mem_total_mb = (int64_t)(r->mem.total / MIB);
		break;
	case OP_TEMPERATURE: out->temp_c = (int)r->u1; break;
	case OP_TEMP_SLOWDOWN: out->temp_slowdown_c = (int)r->u1; break;
	case OP_TEMP_SHUTDOWN: out->temp_shutdown_c = (int)r->u1; break;
	case OP_POWER: out->power_w = r->u1 / 1000.0; break; /* NVML: milliwatts */
	case OP_POWER_LIMIT: out->power_limit_w = r->u1 / 1000.0; break;
	case OP_CLOCKS_EVENT: out->clocks_event = (int64_t)r->ull; break;
	case OP_ECC_UNCORRECTED_VOLATILE: out->ecc_uncorrected_volatile = (int64_t)r->ull; break;
	case OP_REMAPPED_ROWS:
		out->remapped_pending = r->u3 != 0;
		out->remapped_failure = r->u4 != 0;
		break;
	case OP_PERSISTENCE: out->persistence = r->i1 != 0; break;
	default: break;
	}
}

/* One call whose failure is a reading: -1 on timeout; otherwise 0, with
 * out->lost / out->reset_required set when NVML said so. */
static int ask(enum nvml_op op, nvml_device dev, unsigned index, struct nvml_out *r, struct gpu_reading *out,
	       struct err *e)
{
	if (nvml_call(&session, op, dev, index, r, e) < 0)
		return -1;
	if (r->rc == NVML_ERROR_GPU_IS_LOST)
		out->lost = true;
	if (r->rc == NVML_ERROR_RESET_REQUIRED)
		out->reset_required = true;
	return 0;
}

static bool device_gone(const struct gpu_reading *r)
{
	return r->lost || r->reset_required;
}

static int read_readings(unsigned index, struct gpu_reading *out, struct err *e)
{
	struct nvml_out r;
	if (ask(OP_HANDLE, NULL, index, &r, out, e) < 0)
		return -1;
	if (device_gone(out))
		return 0;
	if (r.rc != NVML_SUCCESS)
		return err_set(e, ERR_UNAVAILABLE, "nvml: %s(%u) failed (NVML error %d)", nvml_op_name(OP_HANDLE),
			       index, r.rc);
	nvml_device dev = r.handle;
	for (size_t i = 0; i < sizeof reading_ops / sizeof reading_ops[0]; i++) {
		if (ask(reading_ops[i], dev, index, &r, out, e) < 0)
			return -1;
		if (device_gone(out)) /* the rest would only say the same */
			return 0;
		if (r.rc == NVML_SUCCESS)
			store_answer(reading_ops[i], &r, out);
	}
	return 0;
}

int gpu_nvml_read(int timeout_ms, int index, struct gpu_reading *out, struct err *e)
{
	gpu_reading_unknown(out, now_ms());
	if (index < 0)
		return err_set(e, ERR_INVALID, "nvml: no GPU index %d", index);
	const char *stuck_op;
	if (nvml_stuck_calls(&stuck_op) > 0)
		return err_set(e, ERR_UNAVAILABLE, "nvml: %s has not returned yet (driver hung?); no new NVML call until it does",
			       stuck_op);
	pthread_mutex_lock(&session_mu);
	int rc = session_open(timeout_ms > 0 ? timeout_ms : 5000, e);
	if (rc == 0)
		rc = read_readings((unsigned)index, out, e);
	pthread_mutex_unlock(&session_mu);
	return rc;
}
