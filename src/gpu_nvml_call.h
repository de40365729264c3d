/* gpu_nvml_call.h — private to gpu_nvml*.c: our own declarations of the
 * NVML ABI (types, return codes, struct layouts, written from NVML's
 * documented API; no NVIDIA header or package at build time), the library
 * loaded with dlopen, and one NVML call bounded by a timeout. */
#ifndef GPUNODE_GPU_NVML_CALL_H
#define GPUNODE_GPU_NVML_CALL_H

#include <stdbool.h>

#include "err.h"

typedef int nvml_return;                 /* nvmlReturn_t: an enum, int-sized */
typedef struct nvml_device *nvml_device; /* nvmlDevice_t: opaque pointer */
#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_RESET_REQUIRED 16
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
struct nvml_utilization { /* nvmlUtilization_t: percent of the last sample period */
	unsigned gpu, memory;
};

/* Every NVML call we make; gpu_nvml_call.c maps each to its symbol. The
 * ops after OP_MIG are readings: optional, so that a driver too old for
 * one still discovers its GPUs and reports that value unknown. */
enum nvml_op {
	OP_INIT, OP_SHUTDOWN, OP_COUNT, OP_HANDLE, OP_NAME, OP_UUID, OP_PCI, OP_MEMORY, OP_CC,
	OP_DRIVER, OP_CUDA, OP_MIG,
	OP_UTILIZATION, OP_TEMPERATURE, OP_TEMP_SLOWDOWN, OP_TEMP_SHUTDOWN, OP_POWER, OP_POWER_LIMIT,
	OP_CLOCKS_EVENT, OP_ECC_UNCORRECTED_VOLATILE, OP_REMAPPED_ROWS, OP_PERSISTENCE,
	NVML_N_OPS
};

/* The loaded library: one function pointer per op, NULL when an optional
 * one is absent. void (*)(void) is C's generic function pointer. */
struct nvml_api {
	void *lib;
	void (*fn[NVML_N_OPS])(void);
};

/* What one call returns: NVML's code and the out-parameters it wrote
 * (which fields depends on the op). */
struct nvml_out {
	nvml_return rc;
	char text[NVML_NAME_LEN > NVML_UUID_LEN ? NVML_NAME_LEN : NVML_UUID_LEN];
	unsigned u1, u2, u3, u4;
	int i1, i2;
	unsigned long long ull;
	nvml_device handle;
	struct nvml_pci_info pci;
	struct nvml_memory mem;
	struct nvml_utilization util;
};

struct nvml_session {
	struct nvml_api api;
	int timeout_ms;
	bool hung; /* a call timed out: never shutdown or dlclose */
};

/* NVML's name of op ("nvmlDeviceGetUUID"). */
const char *nvml_op_name(enum nvml_op op);

/* dlopen("libnvidia-ml.so.1") and every symbol; ERR_UNAVAILABLE when the
 * library or a required symbol is missing. */
int nvml_load(struct nvml_api *a, struct err *e);

/* Runs op on a worker thread and copies its results into *out. -1 with e
 * set on timeout (s->hung becomes true) or thread failure; 0 otherwise,
 * out->rc holding NVML's answer (NOT_SUPPORTED for an absent optional op). */
int nvml_call(struct nvml_session *s, enum nvml_op op, nvml_device dev, unsigned index, struct nvml_out *out,
	      struct err *e);

/* nvml_call for a call that must succeed: an NVML error is ERR_UNAVAILABLE too. */
int nvml_must(struct nvml_session *s, enum nvml_op op, nvml_device dev, unsigned index, struct nvml_out *out,
	      struct err *e);

/* Calls given up on whose worker is still inside the driver, in the whole
 * process; *op_name: the last one given up on (when the count is > 0). */
int nvml_stuck_calls(const char **op_name);

#endif
