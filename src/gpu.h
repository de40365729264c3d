/* gpu.h — GPU discovery. Today: simulated devices from a profile string;
 * NVML (dlopen) and nvidia-smi sources slot in behind the same output. */
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

#endif
