/* gpu_nvml.c — discovery through NVML, loaded at run time with
 * dlopen("libnvidia-ml.so.1"): no NVIDIA headers or packages at build time.
 * Every call goes through nvml_call (gpu_nvml_call.c), bounded by a
 * timeout; after a timeout the library is never shut down or unloaded
 * because the stuck worker still runs its code. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_nvml_call.h"
#include "gpu_source.h"
#include "util.h"

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
	if (nvml_load(&s.api, e) < 0)
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
