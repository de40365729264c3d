/* gpu_nvml_call.c — loading NVML and making one call with a deadline.
 *
 * A call runs on its own detached worker thread; the caller waits on a
 * condition variable until the deadline. If the deadline passes, the
 * caller gives up and returns ERR_UNAVAILABLE. The stuck thread cannot be
 * cancelled safely (it is inside the driver, maybe holding driver locks),
 * so it is left blocked: it owns the call's heap job (the caller's stack is
 * never touched after the timeout), frees it if the driver ever returns,
 * and otherwise leaks one thread and a few hundred bytes. For the same
 * reason, after a timeout we never call nvmlShutdown and never dlclose the
 * library: the stuck thread still runs its code. The process-wide count of
 * such stuck calls lets a periodic reader stop calling a wedged driver
 * instead of leaking one more thread per sample. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu_nvml_call.h"
#include "util.h"

/* NVML's enum values we pass in (nvmlTemperatureSensors_t,
 * nvmlTemperatureThresholds_t, nvmlMemoryErrorType_t, nvmlEccCounterType_t). */
#define NVML_TEMPERATURE_GPU 0
#define NVML_TEMPERATURE_THRESHOLD_SHUTDOWN 0
#define NVML_TEMPERATURE_THRESHOLD_SLOWDOWN 1
#define NVML_MEMORY_ERROR_TYPE_UNCORRECTED 1
#define NVML_VOLATILE_ECC 0

/* Each op's symbol; `older` is the name drivers before R535 export
 * (clocks event reasons were "throttle reasons" then). */
static const struct {
	const char *name;
	const char *older;
	bool required;
} op_syms[NVML_N_OPS] = {
	[OP_INIT] = {"nvmlInit_v2", NULL, true},
	[OP_SHUTDOWN] = {"nvmlShutdown", NULL, true},
	[OP_COUNT] = {"nvmlDeviceGetCount_v2", NULL, true},
	[OP_HANDLE] = {"nvmlDeviceGetHandleByIndex_v2", NULL, true},
	[OP_NAME] = {"nvmlDeviceGetName", NULL, true},
	[OP_UUID] = {"nvmlDeviceGetUUID", NULL, true},
	[OP_PCI] = {"nvmlDeviceGetPciInfo_v3", NULL, true},
	[OP_MEMORY] = {"nvmlDeviceGetMemoryInfo", NULL, true},
	[OP_CC] = {"nvmlDeviceGetCudaComputeCapability", NULL, true},
	[OP_DRIVER] = {"nvmlSystemGetDriverVersion", NULL, true},
	[OP_CUDA] = {"nvmlSystemGetCudaDriverVersion", NULL, true},
	[OP_MIG] = {"nvmlDeviceGetMigMode", NULL, true},
	[OP_UTILIZATION] = {"nvmlDeviceGetUtilizationRates", NULL, false},
	[OP_TEMPERATURE] = {"nvmlDeviceGetTemperature", NULL, false},
	[OP_TEMP_SLOWDOWN] = {"nvmlDeviceGetTemperatureThreshold", NULL, false},
	[OP_TEMP_SHUTDOWN] = {"nvmlDeviceGetTemperatureThreshold", NULL, false},
	[OP_POWER] = {"nvmlDeviceGetPowerUsage", NULL, false},
	[OP_POWER_LIMIT] = {"nvmlDeviceGetEnforcedPowerLimit", NULL, false},
	[OP_CLOCKS_EVENT] = {"nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons",
			     false},
	[OP_ECC_UNCORRECTED_VOLATILE] = {"nvmlDeviceGetTotalEccErrors", NULL, false},
	[OP_REMAPPED_ROWS] = {"nvmlDeviceGetRemappedRows", NULL, false},
	[OP_PERSISTENCE] = {"nvmlDeviceGetPersistenceMode", NULL, false},
};

const char *nvml_op_name(enum nvml_op op)
{
	return op_syms[op].name;
}

static void (*find_symbol(void *lib, const char *name))(void)
{
	void (*fn)(void) = NULL;
	if (name)
		*(void **)&fn = dlsym(lib, name); /* POSIX's way from void * to a function pointer */
	return fn;
}

int nvml_load(struct nvml_api *a, struct err *e)
{
	memset(a, 0, sizeof *a);
	a->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!a->lib)
		return err_set(e, ERR_UNAVAILABLE, "nvml: cannot load libnvidia-ml.so.1: %s", dlerror());
	for (int op = 0; op < NVML_N_OPS; op++) {
		a->fn[op] = find_symbol(a->lib, op_syms[op].name);
		if (!a->fn[op])
			a->fn[op] = find_symbol(a->lib, op_syms[op].older);
		if (!a->fn[op] && op_syms[op].required) {
			dlclose(a->lib);
			a->lib = NULL;
			return err_set(e, ERR_UNAVAILABLE, "nvml: libnvidia-ml.so.1 lacks %s (driver too old?)",
				       op_syms[op].name);
		}
	}
	return 0;
}

/* ---- one call on a worker thread ---- */

static atomic_int stuck_calls;
static _Atomic(const char *) last_stuck_op;

int nvml_stuck_calls(const char **op_name)
{
	*op_name = atomic_load(&last_stuck_op);
	return atomic_load(&stuck_calls);
}

/* Heap-owned by whoever drops the last reference (caller or worker). */
struct nvml_job {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	bool done;
	bool abandoned; /* the caller gave up: the worker counts itself out of stuck_calls */
	struct nvml_api api; /* a copy: the caller's session may be gone when a late worker starts */
	enum nvml_op op;
	nvml_device dev;
	unsigned index;
	struct nvml_out out;
};

static void job_unref(struct nvml_job *j)
{
	pthread_mutex_lock(&j->mu);
	int left = --j->refs;
	pthread_mutex_unlock(&j->mu);
	if (left == 0) {
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
		free(j);
	}
}

/* The call itself, with the op's C signature. */
static nvml_return job_run(struct nvml_job *j)
{
	void (*fn)(void) = j->api.fn[j->op];
	nvml_device d = j->dev;
	struct nvml_out *o = &j->out;
	switch (j->op) {
	case OP_INIT:
	case OP_SHUTDOWN: return ((nvml_return(*)(void))fn)();
	case OP_COUNT: return ((nvml_return(*)(unsigned *))fn)(&o->u1);
	case OP_HANDLE: return ((nvml_return(*)(unsigned, nvml_device *))fn)(j->index, &o->handle);
	case OP_NAME: return ((nvml_return(*)(nvml_device, char *, unsigned))fn)(d, o->text, NVML_NAME_LEN);
	case OP_UUID: return ((nvml_return(*)(nvml_device, char *, unsigned))fn)(d, o->text, NVML_UUID_LEN);
	case OP_PCI: return ((nvml_return(*)(nvml_device, struct nvml_pci_info *))fn)(d, &o->pci);
	case OP_MEMORY: return ((nvml_return(*)(nvml_device, struct nvml_memory *))fn)(d, &o->mem);
	case OP_CC: return ((nvml_return(*)(nvml_device, int *, int *))fn)(d, &o->i1, &o->i2);
	case OP_DRIVER: return ((nvml_return(*)(char *, unsigned))fn)(o->text, NVML_UUID_LEN);
	case OP_CUDA: return ((nvml_return(*)(int *))fn)(&o->i1);
	case OP_MIG: return ((nvml_return(*)(nvml_device, unsigned *, unsigned *))fn)(d, &o->u1, &o->u2);
	case OP_UTILIZATION: return ((nvml_return(*)(nvml_device, struct nvml_utilization *))fn)(d, &o->util);
	case OP_TEMPERATURE:
		return ((nvml_return(*)(nvml_device, int, unsigned *))fn)(d, NVML_TEMPERATURE_GPU, &o->u1);
	case OP_TEMP_SLOWDOWN:
		return ((nvml_return(*)(nvml_device, int, unsigned *))fn)(d, NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
									 &o->u1);
	case OP_TEMP_SHUTDOWN:
		return ((nvml_return(*)(nvml_device, int, unsigned *))fn)(d, NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
									 &o->u1);
	case OP_POWER:
	case OP_POWER_LIMIT: return ((nvml_return(*)(nvml_device, unsigned *))fn)(d, &o->u1);
	case OP_CLOCKS_EVENT: return ((nvml_return(*)(nvml_device, unsigned long long *))fn)(d, &o->ull);
	case OP_ECC_UNCORRECTED_VOLATILE:
		return ((nvml_return(*)(nvml_device, int, int, unsigned long long *))fn)(
			d, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, &o->ull);
	case OP_REMAPPED_ROWS:
		return ((nvml_return(*)(nvml_device, unsigned *, unsigned *, unsigned *, unsigned *))fn)(
			d, &o->u1, &o->u2, &o->u3, &o->u4);
	case OP_PERSISTENCE: return ((nvml_return(*)(nvml_device, int *))fn)(d, &o->i1);
	case NVML_N_OPS: break;
	}
	return NVML_ERROR_NOT_SUPPORTED;
}

static void *job_thread(void *arg)
{
	struct nvml_job *j = arg;
	nvml_return rc = job_run(j);
	pthread_mutex_lock(&j->mu);
	j->out.rc = rc;
	j->done = true;
	if (j->abandoned)
		atomic_fetch_sub(&stuck_calls, 1);
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	job_unref(j);
	return NULL;
}

static struct nvml_job *job_new(const struct nvml_session *s, enum nvml_op op, nvml_device dev, unsigned index)
{
	struct nvml_job *j = xcalloc(1, sizeof *j);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->refs = 2;
	j->api = s->api;
	j->op = op;
	j->dev = dev;
	j->index = index;
	return j;
}

static int job_start(struct nvml_job *j)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int prc = pthread_create(&t, &attr, job_thread, j);
	pthread_attr_destroy(&attr);
	return prc;
}

/* Waits for j until timeout_ms; on time, copies its results. False: the
 * job is abandoned (counted stuck until its worker returns). */
static bool job_wait(struct nvml_job *j, int timeout_ms, struct nvml_out *out)
{
	struct timespec deadline;
	deadline_in_ns(&deadline, (int64_t)timeout_ms * 1000000);
	pthread_mutex_lock(&j->mu);
	int wrc = 0;
	while (!j->done && wrc == 0)
		wrc = pthread_cond_timedwait(&j->cv, &j->mu, &deadline);
	bool done = j->done;
	if (done) {
		*out = j->out;
	} else {
		j->abandoned = true;
		atomic_store(&last_stuck_op, op_syms[j->op].name);
		atomic_fetch_add(&stuck_calls, 1);
	}
	pthread_mutex_unlock(&j->mu);
	return done;
}

int nvml_call(struct nvml_session *s, enum nvml_op op, nvml_device dev, unsigned index, struct nvml_out *out,
	      struct err *e)
{
	if (!s->api.fn[op]) { /* an optional function this driver lacks */
		memset(out, 0, sizeof *out);
		out->rc = NVML_ERROR_NOT_SUPPORTED;
		return 0;
	}
	struct nvml_job *j = job_new(s, op, dev, index);
	if (job_start(j) != 0) {
		j->refs = 1;
		job_unref(j);
		return err_set(e, ERR_INTERNAL, "nvml: cannot start a worker thread for %s", op_syms[op].name);
	}
	bool done = job_wait(j, s->timeout_ms, out);
	job_unref(j);
	if (!done) {
		s->hung = true;
		return err_set(e, ERR_UNAVAILABLE, "nvml: %s did not return within %d ms (driver hung?)",
			       op_syms[op].name, s->timeout_ms);
	}
	return 0;
}

int nvml_must(struct nvml_session *s, enum nvml_op op, nvml_device dev, unsigned index, struct nvml_out *out,
	      struct err *e)
{
	if (nvml_call(s, op, dev, index, out, e) < 0)
		return -1;
	if (out->rc == NVML_SUCCESS)
		return 0;
	return err_set(e, ERR_UNAVAILABLE, "nvml: %s failed (NVML error %d%s)", op_syms[op].name, out->rc,
		       out->rc == NVML_ERROR_GPU_IS_LOST ? ": GPU is lost" : "");
}
