/* gpu.h — GPU discovery: real devices (NVML, nvidia-smi; gpu_source.h) or
 * simulated ones from a profile string, behind one output. */
#ifndef GPUNODE_GPU_H
#define GPUNODE_GPU_H

#include "err.h"
#include "pool.h"

#define GPU_SIM_DEFAULT "8xH100-80GB"

/* Parses a profile like "8xH100-80GB" or "2xA100-40GB,4xRTX4090-24GB"
 * ("none": no GPUs) into simulated GPUs for host. UUIDs are derived from the
 * host and index, so an agent that restarts reports the same devices.
 * *out is malloc'd (caller frees). */
int gpu_sim_parse(const char *spec, const char *host, struct gpu **out, int *n, struct err *e);

/* What discovery found: real GPUs through NVML or nvidia-smi, or the
 * simulated ones sim_spec asks for. */
struct gpu_found {
	struct gpu *gpus; /* malloc'd, n entries */
	int n;
	const char *source; /* "nvml", "nvidia-smi" or "simulated" */
	char detail[128];   /* "driver 565.57.01, CUDA 12.7", or the sim spec */
};

/* sim_spec non-NULL: those simulated GPUs. Otherwise NVML, then
 * nvidia-smi; ERR_UNAVAILABLE (saying what each source answered) when
 * neither finds a GPU. */
int gpu_discover(const char *sim_spec, const char *host, struct gpu_found *out, struct err *e);

#endif
