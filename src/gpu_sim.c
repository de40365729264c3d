/* gpu_sim.c — simulated GPUs, clearly marked `simulated` everywhere they
 * show (API, CLI, metrics), for development, tests and `gpunode sim`. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "util.h"

struct model_family {
	const char *prefix; /* model name starts with this */
	const char *arch;   /* compute capability */
	bool nvlink;        /* data-centre boards come in NVLink groups */
};

/* Longest prefixes first so "A100" does not match "A10". */
static const struct model_family families[] = {
	{"GH200", "sm_90", true},  {"H100", "sm_90", true},     {"H200", "sm_90", true},   {"H800", "sm_90", true},
	{"B200", "sm_100", true},  {"A100", "sm_80", true},     {"A800", "sm_80", true},   {"A30", "sm_80", false},
	{"A40", "sm_86", false},   {"A10", "sm_86", false},     {"L40S", "sm_89", false},  {"L40", "sm_89", false},
	{"L4", "sm_89", false},    {"RTX4090", "sm_89", false}, {"RTX3090", "sm_86", false}, {"RTX3080", "sm_86", false},
	{"V100", "sm_70", true},   {"T4", "sm_75", false},
};

static const struct model_family *find_family(const char *model)
{
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
		if (strncmp(model, families[i].prefix, strlen(families[i].prefix)) == 0)
			return &families[i];
	return NULL;
}

/* "H100-80GB" -> 81920 MB; the model name must carry its memory. */
static int parse_vram_mb(const char *model, int64_t *mb)
{
	const char *dash = strrchr(model, '-');
	if (!dash)
		return -1;
	char *end;
	long gb = strtol(dash + 1, &end, 10);
	if (gb <= 0 || gb > 4096 || strcmp(end, "GB") != 0)
		return -1;
	*mb = (int64_t)gb * 1024;
	return 0;
}

static void sim_uuid(const char *host, int index, char *out, size_t cap)
{
	uint64_t h1 = 1469598103934665603ULL, h2 = 7809847782465536322ULL;
	char seed[160];
	snprintf(seed, sizeof seed, "%s/%d", host, index);
	for (const char *p = seed; *p; p++) {
		h1 = (h1 ^ (unsigned char)*p) * 1099511628211ULL;
		h2 = (h2 ^ (unsigned char)*p) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
	}
	/* GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, like nvidia-smi prints. */
	snprintf(out, cap, "GPU-%08x-%04x-%04x-%04x-%012llx", (unsigned)(h1 >> 32), (unsigned)(h1 >> 16) & 0xffff,
		 (unsigned)h1 & 0xffff, (unsigned)(h2 >> 48), (unsigned long long)(h2 & 0xffffffffffffULL));
}

static bool model_name_valid(const char *m)
{
	if (!*m || strlen(m) >= 48)
		return false;
	for (const char *p = m; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return false;
	return true;
}

/* One "NxMODEL" item appended to *gpus. */
static int parse_item(const char *item, const char *host, struct gpu **gpus, int *n, struct err *e)
{
	char *x;
	long count = strtol(item, &x, 10);
	if (x == item || *x != 'x' || count < 1 || count > 16)
		return err_set(e, ERR_INVALID, "--sim-gpus \"%s\": want COUNTxMODEL-MEMGB with COUNT 1..16, e.g. 8xH100-80GB",
			       item);
	const char *model = x + 1;
	int64_t vram;
	if (!model_name_valid(model) || parse_vram_mb(model, &vram) < 0)
		return err_set(e, ERR_INVALID, "--sim-gpus \"%s\": model must end in its memory, e.g. H100-80GB", item);
	if (*n + count > TASK_MAX_GPUS)
		return err_set(e, ERR_INVALID, "--sim-gpus: at most %d GPUs per host", TASK_MAX_GPUS);
	const struct model_family *fam = find_family(model);
	*gpus = xrealloc(*gpus, (size_t)(*n + count) * sizeof **gpus);
	for (long i = 0; i < count; i++) {
		struct gpu *g = &(*gpus)[*n];
		memset(g, 0, sizeof *g);
		g->index = *n;
		sim_uuid(host, g->index, g->uuid, sizeof g->uuid);
		str_copy(g->model, sizeof g->model, model);
		str_copy(g->arch, sizeof g->arch, fam ? fam->arch : "");
		g->vram_mb = vram;
		/* One NVLink group per run of a data-centre model (max 8 a group). */
		g->nvlink_group = fam && fam->nvlink ? g->index / 8 : -1;
		g->simulated = true;
		/* Made-up but well-formed bus ids (bus 0x10 + index), so that
		 * kernel-log drills map to a GPU the way real Xid lines do. */
		snprintf(g->pci_bus_id, sizeof g->pci_bus_id, "00000000:%02X:00.0", 0x10 + g->index);
		(*n)++;
	}
	return 0;
}

int gpu_sim_parse(const char *spec, const char *host, struct gpu **out, int *n, struct err *e)
{
	*out = NULL;
	*n = 0;
	if (strcmp(spec, "none") == 0)
		return 0;
	char *copy = xstrdup(spec), *rest = copy, *item;
	int rc = 0;
	/* strsep, not strtok: an empty item ("2xA100-40GB,") is a typo to report. */
	while (rc == 0 && (item = strsep(&rest, ",")))
		rc = parse_item(item, host, out, n, e);
	free(copy);
	if (rc == 0 && *n == 0)
		rc = err_set(e, ERR_INVALID, "--sim-gpus \"%s\": no GPUs given (use \"none\" for a host without GPUs)",
			     spec);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}
