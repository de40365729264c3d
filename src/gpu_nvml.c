/* gpu_nvml.c — discovery through NVML, loaded at run time with
 * dlopen("libnvidia-ml.so.1"): no NVIDIA headers or packages at build time.
 * The declarations below are our own, written from NVML's documented API
 * (types, return codes, struct layout of nvmlPciInfo_t v3).
 *
 * Every NVML call is bounded by a timeout. A call runs on its own detached
 * worker thread; the caller waits on a condition variable until the
 * deadline. If the deadline passes, the caller gives up and returns
 * ERR_UNAVAILABLE. The stuck thread cannot be cancelled safely (it is
 * inside the driver, maybe holding driver locks), so it is left blocked:
 * it owns the call's heap job (the caller's stack is never touched after
 * the timeout), frees it if the driver ever returns, and otherwise leaks one
 * thread and a few hundred bytes. For the same reason, after a timeout we
 * never call nvmlShutdown and never dlclose the library: the stuck thread
 * still runs its code. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu_source.h"
#include "util.h"

/* ---- our declarations of the NVML ABI ---- */
typedef int nvml_return;             /* nvmlReturn_t: an enum, int-sized */
typedef struct nvml_device *nvml_device; /* nvmlDevice_t: opaque pointer */
#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_NAME_LEN 96    /* NVML_DEVICE_NAME_V2_BUFFER_SIZE */
#define NVML_UUID_LEN 80    /* NVML_DEVICE_UUID_V2_BUFFER_SIZE */
#define NVML_VERSION_LEN 80 /* NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE */

struct nvml_pci_info { /* nvmlPciInfo_t (v3 layout) */
	char bus_id_legacy[16];
	unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
	char bus_id[32];
};
struct nvml_memory { /* nvmlMemory_t (v1): bytes */
	unsigned long long total, free, used;
};

struct nvml_api {
	void *lib;
	nvml_return (*init)(void);
	nvml_return (*shutdown)(void);
	nvml_return (*get_count)(unsigned *);
	nvml_return (*get_handle)(unsigned, nvml_device *);
	nvml_return (*get_name)(nvml_device, char *, unsigned);
	nvml_return (*get_uuid)(nvml_device, char *, unsigned);
	nvml_return (*get_pci)(nvml_device, struct nvml_pci_info *);
	nvml_return (*get_memory)(nvml_device, struct nvml_memory *);
	nvml_return (*get_cc)(nvml_device, int *, int *);
	nvml_return (*driver_version)(char *, unsigned);
	nvml_return (*cuda_version)(int *);
	nvml_return (*get_mig)(nvml_device, unsigned *, unsigned *);
};

/* ---- one call on a worker thread, with a deadline ---- */

enum nvml_op {
	OP_INIT, OP_SHUTDOWN, OP_COUNT, OP_HANDLE, OP_NAME, OP_UUID, OP_PCI, OP_MEMORY, OP_CC,
	OP_DRIVER, OP_CUDA, OP_MIG,
};
static const char *const op_names[] = {
	"nvmlInit_v2", "nvmlShutdown", "nvmlDeviceGetCount_v2", "nvmlDeviceGetHandleByIndex_v2",
	"nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetMemoryInfo",
	"nvmlDeviceGetCudaComputeCapability", "nvmlSystemGetDriverVersion", "nvmlSystemGetCudaDriverVersion",
	"nvmlDeviceGetMigMode",
};

/* What one call returns: NVML's code and the out-parameters it wrote. */
struct nvml_out {
	nvml_return rc;
	char text[NVML_NAME_LEN > NVML_UUID_LEN ? NVML_NAME_LEN : NVML_UUID_LEN];
	unsigned u1, u2;
	int i1, i2;
	nvml_device handle;
	struct nvml_pci_info pci;
	struct nvml_memory mem;
};

/* Heap-owned by whoever drops the last reference (caller or worker). */
struct nvml_job {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	bool done;
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

static nvml_return job_run(struct nvml_job *j)
{
	const struct nvml_api *a = &j->api;
	switch (j->op) {
	case OP_INIT: return a->init();
	case OP_SHUTDOWN: return a->shutdown();
	case OP_COUNT: return a->get_count(&j->out.u1);
	case OP_HANDLE: return a->get_handle(j->index, &j->out.handle);
	case OP_NAME: return a->get_name(j->dev, j->out.text, NVML_NAME_LEN);
	case OP_UUID: return a->get_uuid(j->dev, j->out.text, NVML_UUID_LEN);
	case OP_PCI: return a->get_pci(j->dev, &j->out.pci);
	case OP_MEMORY: return a->get_memory(j->dev, &j->out.mem);
	case OP_CC: return a->get_cc(j->dev, &j->out.i1, &j->out.i2);
	case OP_DRIVER: return a->driver_version(j->out.text, NVML_UUID_LEN);
	case OP_CUDA: return a->cuda_version(&j->out.i1);
	case OP_MIG: return a->get_mig(j->dev, &j->out.u1, &j->out.u2);
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
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	job_unref(j);
	return NULL;
}

struct nvml_session {
	struct nvml_api api;
	int timeout_ms;
	bool hung; /* a call timed out: never shutdown or dlclose */
};

/* Runs op on a worker; copies its results into *out. -1 with e set on
 * timeout or thread failure; 0 otherwise (out->rc holds NVML's answer). */
static int nvml_call(struct nvml_session *s, enum nvml_op op, nvml_device dev, unsigned index, struct nvml_out *out,
		     struct err *e)
{
	struct nvml_job *j = xcalloc(1, sizeof *j);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->refs = 2;
	j->api = s->api;
	j->op = op;
	j->dev = dev;
	j->index = index;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int prc = pthread_create(&t, &attr, job_thread, j);
	pthread_attr_destroy(&attr);
	if (prc != 0) {
		j->refs = 1;
		job_unref(j);
		return err_set(e, ERR_INTERNAL, "nvml: cannot start a worker thread for %s", op_names[op]);
	}
	struct timespec deadline;
	deadline_in_ns(&deadline, (int64_t)s->timeout_ms * 1000000);
	pthread_mutex_lock(&j->mu);
	int wrc = 0;
	while (!j->done && wrc == 0)
		wrc = pthread_cond_timedwait(&j->cv, &j->mu, &deadline);
	bool done = j->done;
	if (done)
		*out = j->out;
	pthread_mutex_unlock(&j->mu);
	job_unref(j);
	if (!done) {
		s->hung = true;
		return err_set(e, ERR_UNAVAILABLE, "nvml: %s did not return within %d ms (driver hung?)", op_names[op],
			       s->timeout_ms);
	}
	return 0;
}

static int nvml_fail(enum nvml_op op, nvml_return rc, struct err *e)
{
	return err_set(e, ERR_UNAVAILABLE, "nvml: %s failed (NVML error %d%s)", op_names[op], rc,
		       rc == NVML_ERROR_GPU_IS_LOST ? ": GPU is lost" : "");
}

/* A call that must succeed. */
static int nvml_must(struct nvml_session *s, enum nvml_op op, nvml_device dev, unsigned index, struct nvml_out *out,
		     struct err *e)
{
	if (nvml_call(s, op, dev, index, out, e) < 0)
		return -1;
	return out->rc == NVML_SUCCESS ? 0 : nvml_fail(op, out->rc, e);
}

static int load_api(struct nvml_api *a, struct err *e)
{
	memset(a, 0, sizeof *a);
	a->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!a->lib)
		return err_set(e, ERR_UNAVAILABLE, "nvml: cannot load libnvidia-ml.so.1: %s", dlerror());
	struct {
		const char *name;
		void **slot;
	} syms[] = {
		{"nvmlInit_v2", (void **)&a->init},
		{"nvmlShutdown", (void **)&a->shutdown},
		{"nvmlDeviceGetCount_v2", (void **)&a->get_count},
		{"nvmlDeviceGetHandleByIndex_v2", (void **)&a->get_handle},
		{"nvmlDeviceGetName", (void **)&a->get_name},
		{"nvmlDeviceGetUUID", (void **)&a->get_uuid},
		{"nvmlDeviceGetPciInfo_v3", (void **)&a->get_pci},
		{"nvmlDeviceGetMemoryInfo", (void **)&a->get_memory},
		{"nvmlDeviceGetCudaComputeCapability", (void **)&a->get_cc},
		{"nvmlSystemGetDriverVersion", (void **)&a->driver_version},
		{"nvmlSystemGetCudaDriverVersion", (void **)&a->cuda_version},
		{"nvmlDeviceGetMigMode", (void **)&a->get_mig},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		*syms[i].slot = dlsym(a->lib, syms[i].name);
		if (!*syms[i].slot) {
			dlclose(a->lib);
			a->lib = NULL;
			return err_set(e, ERR_UNAVAILABLE, "nvml: libnvidia-ml.so.1 lacks %s (driver too old?)",
				       syms[i].name);
		}
	}
	return 0;
}

/* Reads one device into g and f. */
static int read_device(struct nvml_session *s, unsigned i, const char *driver, const char *cuda, struct gpu *g,
		       struct gpu_facts *f, struct err *e)
{
	struct nvml_out r;
	if (nvml_must(s, OP_HANDLE, NULL, i, &r, e) < 0)
		return -1;
	nvml_device dev = r.handle;
	char name[NVML_NAME_LEN], uuid[NVML_UUID_LEN];
	if (nvml_must(s, OP_NAME, dev, i, &r, e) < 0)
		return -1;
	str_copy(name, sizeof name, r.text);
	if (nvml_must(s, OP_UUID, dev, i, &r, e) < 0)
		return -1;
	str_copy(uuid, sizeof uuid, r.text);
	if (nvml_must(s, OP_MEMORY, dev, i, &r, e) < 0)
		return -1;
	int64_t vram_mb = (int64_t)(r.mem.total / (1024 * 1024));
	int major = -1, minor = 0;
	if (nvml_call(s, OP_CC, dev, i, &r, e) < 0)
		return -1;
	if (r.rc == NVML_SUCCESS) {
		major = r.i1;
		minor = r.i2;
	}
	gpu_fill_from_driver(g, (int)i, uuid, name, vram_mb, major, minor);
	memset(f, 0, sizeof *f);
	str_copy(f->name, sizeof f->name, name);
	str_copy(f->driver_version, sizeof f->driver_version, driver);
	str_copy(f->cuda_version, sizeof f->cuda_version, cuda);
	if (nvml_call(s, OP_PCI, dev, i, &r, e) < 0)
		return -1;
	if (r.rc == NVML_SUCCESS)
		str_copy(f->pci_bus_id, sizeof f->pci_bus_id, r.pci.bus_id);
	/* NOT_SUPPORTED (no MIG on the board) is an answer, not an error. */
	if (nvml_call(s, OP_MIG, dev, i, &r, e) < 0)
		return -1;
	f->mig = r.rc != NVML_SUCCESS ? GPU_MIG_UNKNOWN : r.u1 ? GPU_MIG_ENABLED : GPU_MIG_DISABLED;
	return 0;
}

static int discover(struct nvml_session *s, struct gpu **gpus, struct gpu_facts **facts, int *n, struct err *e)
{
	struct nvml_out r;
	char driver[32] = "", cuda[16] = "";
	if (nvml_call(s, OP_DRIVER, NULL, 0, &r, e) < 0)
		return -1;
	if (r.rc == NVML_SUCCESS)
		str_copy(driver, sizeof driver, r.text);
	if (nvml_call(s, OP_CUDA, NULL, 0, &r, e) < 0)
		return -1;
	if (r.rc == NVML_SUCCESS && r.i1 > 0) /* 12040 -> "12.4" */
		snprintf(cuda, sizeof cuda, "%d.%d", r.i1 / 1000, (r.i1 % 1000) / 10);
	if (nvml_must(s, OP_COUNT, NULL, 0, &r, e) < 0)
		return -1;
	unsigned count = r.u1;
	if (count > TASK_MAX_GPUS)
		return err_set(e, ERR_UNAVAILABLE, "nvml: %u GPUs, at most %d supported", count, TASK_MAX_GPUS);
	*gpus = xcalloc(count ? count : 1, sizeof **gpus);
	*facts = xcalloc(count ? count : 1, sizeof **facts);
	for (unsigned i = 0; i < count; i++)
		if (read_device(s, i, driver, cuda, &(*gpus)[i], &(*facts)[i], e) < 0)
			return -1;
	*n = (int)count;
	return 0;
}

int gpu_nvml_discover(int timeout_ms, struct gpu **gpus, struct gpu_facts **facts, int *n, struct err *e)
{
	*gpus = NULL;
	*facts = NULL;
	*n = 0;
	struct nvml_session s = {.timeout_ms = timeout_ms > 0 ? timeout_ms : 5000};
	if (load_api(&s.api, e) < 0)
		return -1;
	struct nvml_out r;
	int rc = nvml_must(&s, OP_INIT, NULL, 0, &r, e);
	bool inited = rc == 0;
	if (rc == 0)
		rc = discover(&s, gpus, facts, n, e);
	if (inited && !s.hung) {
		struct err ignored;
		nvml_call(&s, OP_SHUTDOWN, NULL, 0, &r, &ignored);
	}
	/* After a timeout the stuck worker still runs library code: keep it mapped. */
	if (!s.hung)
		dlclose(s.api.lib);
	if (rc < 0) {
		free(*gpus);
		free(*facts);
		*gpus = NULL;
		*facts = NULL;
		*n = 0;
	}
	return rc;
}
