/* gpu_smi.c — the nvidia-smi fallback: parses
 *   nvidia-smi --query-gpu=GPU_SMI_QUERY_FIELDS --format=csv,noheader,nounits
 * one GPU a line, fields split on commas. nvidia-smi prints "[N/A]" or
 * "[Not Supported]" for values a board lacks (ECC on GeForce, power on some
 * boards); those become -1, never an error. Also the helper every real
 * source uses to turn a driver's name into the pool's model string. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_source.h"
#include "util.h"

#define SMI_NFIELDS 11

/* "NVIDIA H100 80GB HBM3" -> "H100-80GB"; "NVIDIA GeForce RTX 4090" with
 * 24564 MiB -> "RTX4090-24GB"; "NVIDIA A100-SXM4-80GB" -> "A100-80GB".
 * Memory comes from the name when it says "NNGB", else from vram_mb. */
static void model_from_name(const char *name, int64_t vram_mb, char *out, size_t cap)
{
	char buf[96];
	str_copy(buf, sizeof buf, name);
	char *words[8];
	int nw = 0;
	for (char *save = NULL, *w = strtok_r(buf, " -", &save); w && nw < 8; w = strtok_r(NULL, " -", &save))
		words[nw++] = w;
	long gb = 0;
	char model[48] = "";
	for (int i = 0; i < nw; i++) {
		char *end;
		long v = strtol(words[i], &end, 10);
		if (end != words[i] && strcmp(end, "GB") == 0) {
			gb = v;
			continue;
		}
		if (strcmp(words[i], "NVIDIA") == 0 || strcmp(words[i], "GeForce") == 0 || strcmp(words[i], "Tesla") == 0)
			continue;
		if (!model[0]) {
			str_copy(model, sizeof model, words[i]);
			/* "RTX 4090", "RTX A6000": the series word needs its number. */
			if ((strcmp(words[i], "RTX") == 0 || strcmp(words[i], "Quadro") == 0) && i + 1 < nw) {
				strncat(model, words[i + 1], sizeof model - strlen(model) - 1);
				i++;
			}
		}
	}
	if (!model[0])
		str_copy(model, sizeof model, "GPU");
	if (gb <= 0)
		gb = (long)llround((double)vram_mb / 1024.0);
	snprintf(out, cap, "%.36s-%ldGB", model, gb);
}

void gpu_fill_from_driver(struct gpu *g, int index, const char *uuid, const char *name, int64_t vram_mb,
			  int cc_major, int cc_minor)
{
	memset(g, 0, sizeof *g);
	g->index = index;
	str_copy(g->uuid, sizeof g->uuid, uuid);
	model_from_name(name, vram_mb, g->model, sizeof g->model);
	g->vram_mb = vram_mb;
	if (cc_major > 0)
		snprintf(g->arch, sizeof g->arch, "sm_%d%d", cc_major, cc_minor);
	g->nvlink_group = -1;
	g->simulated = false;
	g->health = GPU_HEALTHY;
}

static bool not_available(const char *v)
{
	return strcmp(v, "[N/A]") == 0 || strcmp(v, "[Not Supported]") == 0 || strcmp(v, "N/A") == 0 ||
	       strcmp(v, "[Unknown Error]") == 0 || strcmp(v, "[GPU is lost]") == 0 || *v == '\0';
}

/* Integer field; base 0 so "0x0000000000000001" (clock reasons) works. */
static int field_int(const char *v, int64_t *out)
{
	if (not_available(v)) {
		*out = -1;
		return 0;
	}
	char *end;
	long long x = strtoll(v, &end, 0);
	if (end == v || *end)
		return -1;
	*out = x;
	return 0;
}

static int field_double(const char *v, double *out)
{
	if (not_available(v)) {
		*out = -1;
		return 0;
	}
	char *end;
	*out = strtod(v, &end);
	return end == v || *end ? -1 : 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int parse_row(char *line, int lineno, int index_hint, struct gpu *g, struct gpu_facts *f,
		     struct gpu_smi_reading *r, struct err *e)
{
	char *field[SMI_NFIELDS];
	int nf = 0;
	char *rest = line, *tok;
	while ((tok = strsep(&rest, ",")) && nf < SMI_NFIELDS)
		field[nf++] = trim(tok);
	if (nf != SMI_NFIELDS || tok)
		return err_set(e, ERR_INVALID, "nvidia-smi line %d: want %d fields, got %s%d", lineno, SMI_NFIELDS,
			       tok ? "more than " : "", nf);
	int64_t idx, total, used, util, temp, reasons, ecc;
	double power;
	if (field_int(field[0], &idx) < 0 || field_int(field[4], &total) < 0 || field_int(field[5], &used) < 0 ||
	    field_int(field[6], &util) < 0 || field_int(field[7], &temp) < 0 || field_double(field[8], &power) < 0 ||
	    field_int(field[9], &reasons) < 0 || field_int(field[10], &ecc) < 0)
		return err_set(e, ERR_INVALID, "nvidia-smi line %d: a number field is not a number", lineno);
	if (strncmp(field[1], "GPU-", 4) != 0 || total <= 0)
		return err_set(e, ERR_INVALID, "nvidia-smi line %d: no UUID or memory.total", lineno);
	gpu_fill_from_driver(g, idx >= 0 ? (int)idx : index_hint, field[1], field[2], total, -1, 0);
	memset(f, 0, sizeof *f);
	str_copy(f->name, sizeof f->name, field[2]);
	if (!not_available(field[3]))
		str_copy(f->pci_bus_id, sizeof f->pci_bus_id, field[3]);
	f->mig = GPU_MIG_UNKNOWN;
	r->mem_used_mb = used;
	r->util_pct = (int)util;
	r->temp_c = (int)temp;
	r->power_w = power;
	r->clocks_event = reasons;
	r->ecc_uncorrected_volatile = ecc;
	return 0;
}

int gpu_smi_parse(const char *text, struct gpu **gpus, struct gpu_facts **facts, struct gpu_smi_reading **readings,
		  int *n, struct err *e)
{
	*gpus = NULL;
	*facts = NULL;
	*readings = NULL;
	*n = 0;
	char *copy = xstrdup(text), *rest = copy, *line;
	int rc = 0, lineno = 0;
	while (rc == 0 && (line = strsep(&rest, "\n"))) {
		lineno++;
		if (!*trim(line))
			continue;
		if (*n == TASK_MAX_GPUS) {
			rc = err_set(e, ERR_INVALID, "nvidia-smi: more than %d GPUs", TASK_MAX_GPUS);
			break;
		}
		*gpus = xrealloc(*gpus, (size_t)(*n + 1) * sizeof **gpus);
		*facts = xrealloc(*facts, (size_t)(*n + 1) * sizeof **facts);
		*readings = xrealloc(*readings, (size_t)(*n + 1) * sizeof **readings);
		rc = parse_row(line, lineno, *n, &(*gpus)[*n], &(*facts)[*n], &(*readings)[*n], e);
		if (rc == 0)
			(*n)++;
	}
	free(copy);
	if (rc < 0) {
		free(*gpus);
		free(*facts);
		free(*readings);
		*gpus = NULL;
		*facts = NULL;
		*readings = NULL;
		*n = 0;
	}
	return rc;
}
