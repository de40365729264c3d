/* fake_nvml.c — a test double of NVIDIA's libnvidia-ml.so.1, built under
 * that exact file name so gpu_nvml*.c load it through their real dlopen
 * path (LD_LIBRARY_PATH points at this build directory). It implements only
 * the functions gpunode uses, with the same C signatures.
 *
 * Driven by the scenario file named in $FAKE_NVML_SCENARIO, read at each
 * nvmlInit_v2; times are milliseconds since that nvmlInit_v2. One directive
 * a line, '#' comments:
 *   driver 565.57.01
 *   cuda 12070                        (nvmlSystemGetCudaDriverVersion value)
 *   device UUID|NAME|MEM_MIB|CC|PCI_BUS_ID|MIG   (MIG 0, 1, or -1: not supported)
 *   reading UUID AFTER_MS key=value ...
 *                                     (from AFTER_MS on, the device reports these
 *                                      values; a later line overrides an earlier one
 *                                      key by key)
 *   lost UUID AFTER_MS                (from AFTER_MS on, every call on the device
 *                                      answers NVML_ERROR_GPU_IS_LOST)
 *   fail FUNCTION CODE                (FUNCTION returns NVML error CODE)
 *   hang FUNCTION MS                  (FUNCTION sleeps MS milliseconds first)
 * FUNCTION is the NVML name, e.g. nvmlDeviceGetUUID. Reading keys: util (%),
 * mem_used (MiB), temp, slowdown, shutdown (C), power, limit (W), clocks_event
 * (bitmask, 0x.. allowed), ecc_uv (volatile uncorrected count), remap_pending,
 * remap_failure, persistence (0/1). A key never scripted for a device
 * answers NVML_ERROR_NOT_SUPPORTED, as a board without that sensor does
 * (mem_used: 0). Lines the double cannot read are reported on stderr. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_MAX_DEV 16
#define FAKE_MAX_RULES 16
#define FAKE_MAX_READINGS 64

enum fake_key {
	K_UTIL, K_MEM_USED, K_TEMP, K_SLOWDOWN, K_SHUTDOWN, K_POWER, K_LIMIT, K_CLOCKS_EVENT, K_ECC_UV,
	K_REMAP_PENDING, K_REMAP_FAILURE, K_PERSISTENCE, N_KEYS
};
static const char *const key_names[N_KEYS] = {
	"util", "mem_used", "temp", "slowdown", "shutdown", "power", "limit", "clocks_event", "ecc_uv",
	"remap_pending", "remap_failure", "persistence",
};

struct fake_dev {
	char uuid[80], name[96], pci[32];
	unsigned long long mem_mib;
	int cc_major, cc_minor, mig;
	long lost_after_ms; /* -1: never */
};
struct fake_reading {
	int dev;
	long after_ms;
	unsigned set; /* bit k: val[k] is scripted */
	double val[N_KEYS];
};
struct fake_rule {
	char fn[64];
	int fail_code; /* 0: none */
	long hang_ms;
};

static struct fake_dev devs[FAKE_MAX_DEV];
static int n_devs;
static struct fake_reading readings[FAKE_MAX_READINGS];
static int n_readings;
static struct fake_rule rules[FAKE_MAX_RULES];
static int n_rules;
static char driver[80] = "999.99";
static int cuda = 12000;
static int64_t loaded_ms; /* monotonic time of the nvmlInit_v2 that loaded the scenario */
/* nvmlInit_v2 rewrites the scenario while workers the caller gave up on
 * may still be inside other calls: the reload and every read take this. */
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;

typedef struct fake_dev *nvmlDevice_t;
struct pci_info {
	char bus_id_legacy[16];
	unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
	char bus_id[32];
};
struct memory {
	unsigned long long total, free, used;
};
struct utilization {
	unsigned gpu, memory;
};

#define EXPORT __attribute__((visibility("default")))
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_GPU_IS_LOST 15

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- the scenario file ---- */

static int dev_by_uuid(const char *uuid)
{
	for (int i = 0; i < n_devs; i++)
		if (strcmp(devs[i].uuid, uuid) == 0)
			return i;
	return -1;
}

static int parse_device(char *rest)
{
	if (n_devs == FAKE_MAX_DEV)
		return -1;
	char *fld[6];
	int nf = 0;
	for (char *t; nf < 6 && (t = strsep(&rest, "|"));)
		fld[nf++] = t;
	if (nf != 6)
		return -1;
	struct fake_dev *d = &devs[n_devs++];
	set_str(d->uuid, sizeof d->uuid, fld[0]);
	set_str(d->name, sizeof d->name, fld[1]);
	d->mem_mib = strtoull(fld[2], NULL, 10);
	if (sscanf(fld[3], "%d.%d", &d->cc_major, &d->cc_minor) != 2)
		d->cc_major = d->cc_minor = 0;
	set_str(d->pci, sizeof d->pci, fld[4]);
	d->mig = atoi(fld[5]);
	d->lost_after_ms = -1;
	return 0;
}

static int key_by_name(const char *name, size_t len)
{
	for (int k = 0; k < N_KEYS; k++)
		if (strlen(key_names[k]) == len && strncmp(key_names[k], name, len) == 0)
			return k;
	return -1;
}

/* "UUID AFTER_MS key=value ..." */
static int parse_reading(char *rest)
{
	char uuid[80];
	long after;
	int used;
	if (n_readings == FAKE_MAX_READINGS || sscanf(rest, "%79s %ld%n", uuid, &after, &used) != 2)
		return -1;
	struct fake_reading *r = &readings[n_readings];
	*r = (struct fake_reading){.dev = dev_by_uuid(uuid), .after_ms = after};
	if (r->dev < 0)
		return -1;
	char *save = NULL;
	for (char *kv = strtok_r(rest + used, " \t", &save); kv; kv = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(kv, '='), *end;
		int k = eq ? key_by_name(kv, (size_t)(eq - kv)) : -1;
		if (k < 0)
			return -1;
		r->val[k] = strtod(eq + 1, &end); /* strtod reads 0x.. too */
		if (end == eq + 1 || *end)
			return -1;
		r->set |= 1u << k;
	}
	n_readings++;
	return 0;
}

static int parse_lost(const char *rest)
{
	char uuid[80];
	long after;
	if (sscanf(rest, "%79s %ld", uuid, &after) != 2 || dev_by_uuid(uuid) < 0)
		return -1;
	devs[dev_by_uuid(uuid)].lost_after_ms = after;
	return 0;
}

static int parse_rule(const char *line)
{
	char fn[64];
	long v;
	bool fail = sscanf(line, "fail %63s %ld", fn, &v) == 2;
	if (n_rules == FAKE_MAX_RULES || (!fail && sscanf(line, "hang %63s %ld", fn, &v) != 2))
		return -1;
	struct fake_rule *r = &rules[n_rules++];
	set_str(r->fn, sizeof r->fn, fn);
	r->fail_code = fail ? (int)v : 0;
	r->hang_ms = fail ? 0 : v;
	return 0;
}

static int parse_line(char *line)
{
	if (strncmp(line, "driver ", 7) == 0) {
		set_str(driver, sizeof driver, line + 7);
		return 0;
	}
	if (strncmp(line, "cuda ", 5) == 0)
		return sscanf(line, "cuda %d", &cuda) == 1 ? 0 : -1;
	if (strncmp(line, "device ", 7) == 0)
		return parse_device(line + 7);
	if (strncmp(line, "reading ", 8) == 0)
		return parse_reading(line + 8);
	if (strncmp(line, "lost ", 5) == 0)
		return parse_lost(line + 5);
	return parse_rule(line);
}

static void load_scenario(void)
{
	n_devs = n_readings = n_rules = 0;
	loaded_ms = mono_ms();
	const char *path = getenv("FAKE_NVML_SCENARIO");
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return;
	char line[512];
	for (int lineno = 1; fgets(line, sizeof line, f); lineno++) {
		line[strcspn(line, "\n#")] = '\0';
		if (line[strspn(line, " \t")] == '\0')
			continue;
		char copy[512];
		set_str(copy, sizeof copy, line);
		if (parse_line(line) < 0)
			fprintf(stderr, "fake_nvml: %s:%d: cannot read \"%s\"\n", path, lineno, copy);
	}
	fclose(f);
}

/* ---- answers ---- */

static long elapsed_ms(void)
{
	return (long)(mono_ms() - loaded_ms);
}

/* The scripted value of key for dev now: the last reading line in effect
 * that sets it. False: never scripted (or not yet). */
static bool value_now(const struct fake_dev *dev, enum fake_key k, double *v)
{
	long now = elapsed_ms();
	bool found = false;
	for (int i = 0; i < n_readings; i++) {
		const struct fake_reading *r = &readings[i];
		if (&devs[r->dev] == dev && r->after_ms <= now && (r->set & (1u << k))) {
			*v = r->val[k];
			found = true;
		}
	}
	return found;
}

static bool is_lost(const struct fake_dev *dev)
{
	return dev->lost_after_ms >= 0 && elapsed_ms() >= dev->lost_after_ms;
}

/* Answers with the scripted value of k as an unsigned, NOT_SUPPORTED if none. */
static int answer_unsigned(nvmlDevice_t dev, enum fake_key k, double scale, unsigned *out)
{
	double v;
	if (!value_now(dev, k, &v))
		return NVML_ERROR_NOT_SUPPORTED;
	*out = (unsigned)(v * scale);
	return 0;
}

/* Applies the scenario's rules for fn: sleeps for a hang, returns a failure code or 0. */
static int inject(const char *fn)
{
	int code = 0;
	long hang_ms = 0;
	pthread_rwlock_rdlock(&lock);
	for (int i = 0; i < n_rules; i++) {
		if (strcmp(rules[i].fn, fn) != 0)
			continue;
		if (rules[i].hang_ms > hang_ms)
			hang_ms = rules[i].hang_ms;
		if (rules[i].fail_code)
			code = rules[i].fail_code;
	}
	pthread_rwlock_unlock(&lock);
	if (hang_ms > 0) { /* unlocked: a hang must not block a reload */
		struct timespec ts = {hang_ms / 1000, (hang_ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0) {
		}
	}
	return code;
}

#define INJECT(name)                          \
	do {                                  \
		int injected_ = inject(name); \
		if (injected_)                \
			return injected_;     \
	} while (0)

static int copy_out(char *dst, unsigned cap, const char *src)
{
	if (!dst || strlen(src) + 1 > cap)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

/* Each call: injected hang/failure first, then the answer under the read lock. */
#define READ_LOCKED(expr)                          \
	do {                                       \
		pthread_rwlock_rdlock(&lock);      \
		int rc_ = (expr);                  \
		pthread_rwlock_unlock(&lock);      \
		return rc_;                        \
	} while (0)

/* The same for a call on a device, which a lost device answers with GPU_IS_LOST. */
#define DEVICE_CALL(name, dev, expr) \
	do {                                                                    \
		INJECT(name);                                                   \
		READ_LOCKED(is_lost(dev) ? NVML_ERROR_GPU_IS_LOST : (expr));   \
	} while (0)

EXPORT int nvmlInit_v2(void)
{
	pthread_rwlock_wrlock(&lock);
	load_scenario();
	pthread_rwlock_unlock(&lock);
	INJECT("nvmlInit_v2");
	return 0;
}

EXPORT int nvmlShutdown(void)
{
	INJECT("nvmlShutdown");
	return 0;
}

static int get_count(unsigned *count)
{
	*count = (unsigned)n_devs;
	return 0;
}

EXPORT int nvmlDeviceGetCount_v2(unsigned *count)
{
	INJECT("nvmlDeviceGetCount_v2");
	READ_LOCKED(get_count(count));
}

static int get_handle(unsigned index, nvmlDevice_t *dev)
{
	if (index >= (unsigned)n_devs)
		return NVML_ERROR_INVALID_ARGUMENT;
	*dev = &devs[index];
	return is_lost(*dev) ? NVML_ERROR_GPU_IS_LOST : 0;
}

EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t *dev)
{
	INJECT("nvmlDeviceGetHandleByIndex_v2");
	READ_LOCKED(get_handle(index, dev));
}

EXPORT int nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned len)
{
	DEVICE_CALL("nvmlDeviceGetName", dev, copy_out(name, len, dev->name));
}

EXPORT int nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned len)
{
	DEVICE_CALL("nvmlDeviceGetUUID", dev, copy_out(uuid, len, dev->uuid));
}

static int get_pci(nvmlDevice_t dev, struct pci_info *pci)
{
	memset(pci, 0, sizeof *pci);
	set_str(pci->bus_id, sizeof pci->bus_id, dev->pci);
	return 0;
}

EXPORT int nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev, struct pci_info *pci)
{
	DEVICE_CALL("nvmlDeviceGetPciInfo_v3", dev, get_pci(dev, pci));
}

static int get_memory(nvmlDevice_t dev, struct memory *m)
{
	double used_mib = 0;
	value_now(dev, K_MEM_USED, &used_mib);
	m->total = dev->mem_mib * 1024ULL * 1024ULL;
	m->used = (unsigned long long)used_mib * 1024ULL * 1024ULL;
	m->free = m->total - m->used;
	return 0;
}

EXPORT int nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, struct memory *m)
{
	DEVICE_CALL("nvmlDeviceGetMemoryInfo", dev, get_memory(dev, m));
}

static int get_cc(nvmlDevice_t dev, int *major, int *minor)
{
	*major = dev->cc_major;
	*minor = dev->cc_minor;
	return 0;
}

EXPORT int nvmlDeviceGetCudaComputeCapability(nvmlDevice_t dev, int *major, int *minor)
{
	DEVICE_CALL("nvmlDeviceGetCudaComputeCapability", dev, get_cc(dev, major, minor));
}

EXPORT int nvmlSystemGetDriverVersion(char *version, unsigned len)
{
	INJECT("nvmlSystemGetDriverVersion");
	READ_LOCKED(copy_out(version, len, driver));
}

static int get_cuda(int *version)
{
	*version = cuda;
	return 0;
}

EXPORT int nvmlSystemGetCudaDriverVersion(int *version)
{
	INJECT("nvmlSystemGetCudaDriverVersion");
	READ_LOCKED(get_cuda(version));
}

static int get_mig(nvmlDevice_t dev, unsigned *current, unsigned *pending)
{
	if (dev->mig < 0)
		return NVML_ERROR_NOT_SUPPORTED;
	*current = *pending = (unsigned)dev->mig;
	return 0;
}

EXPORT int nvmlDeviceGetMigMode(nvmlDevice_t dev, unsigned *current, unsigned *pending)
{
	DEVICE_CALL("nvmlDeviceGetMigMode", dev, get_mig(dev, current, pending));
}

/* ---- readings ---- */

static int get_utilization(nvmlDevice_t dev, struct utilization *u)
{
	u->memory = 0;
	return answer_unsigned(dev, K_UTIL, 1, &u->gpu);
}

EXPORT int nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, struct utilization *u)
{
	DEVICE_CALL("nvmlDeviceGetUtilizationRates", dev, get_utilization(dev, u));
}

/* sensor 0 is NVML_TEMPERATURE_GPU, the only one NVML has. */
EXPORT int nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned *temp)
{
	DEVICE_CALL("nvmlDeviceGetTemperature", dev,
		    sensor != 0 ? NVML_ERROR_INVALID_ARGUMENT : answer_unsigned(dev, K_TEMP, 1, temp));
}

/* NVML's threshold types: 0 shutdown, 1 slowdown; others are not scripted. */
static int get_threshold(nvmlDevice_t dev, int type, unsigned *temp)
{
	if (type == 0)
		return answer_unsigned(dev, K_SHUTDOWN, 1, temp);
	if (type == 1)
		return answer_unsigned(dev, K_SLOWDOWN, 1, temp);
	return NVML_ERROR_NOT_SUPPORTED;
}

EXPORT int nvmlDeviceGetTemperatureThreshold(nvmlDevice_t dev, int type, unsigned *temp)
{
	DEVICE_CALL("nvmlDeviceGetTemperatureThreshold", dev, get_threshold(dev, type, temp));
}

EXPORT int nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned *milliwatts)
{
	DEVICE_CALL("nvmlDeviceGetPowerUsage", dev, answer_unsigned(dev, K_POWER, 1000, milliwatts));
}

EXPORT int nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t dev, unsigned *milliwatts)
{
	DEVICE_CALL("nvmlDeviceGetEnforcedPowerLimit", dev, answer_unsigned(dev, K_LIMIT, 1000, milliwatts));
}

static int get_clocks_event(nvmlDevice_t dev, unsigned long long *reasons)
{
	double v;
	if (!value_now(dev, K_CLOCKS_EVENT, &v))
		return NVML_ERROR_NOT_SUPPORTED;
	*reasons = (unsigned long long)v;
	return 0;
}

EXPORT int nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t dev, unsigned long long *reasons)
{
	DEVICE_CALL("nvmlDeviceGetCurrentClocksEventReasons", dev, get_clocks_event(dev, reasons));
}

/* Only the count gpunode asks for is scripted: uncorrected (error type 1),
 * volatile (counter type 0). Anything else is a caller bug: INVALID_ARGUMENT. */
static int get_ecc(nvmlDevice_t dev, int error_type, int counter_type, unsigned long long *count)
{
	double v;
	if (error_type != 1 || counter_type != 0)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (!value_now(dev, K_ECC_UV, &v))
		return NVML_ERROR_NOT_SUPPORTED;
	*count = (unsigned long long)v;
	return 0;
}

EXPORT int nvmlDeviceGetTotalEccErrors(nvmlDevice_t dev, int error_type, int counter_type, unsigned long long *count)
{
	DEVICE_CALL("nvmlDeviceGetTotalEccErrors", dev, get_ecc(dev, error_type, counter_type, count));
}

/* A board without row remapping (before Ampere) has neither key. */
static int get_remapped_rows(nvmlDevice_t dev, unsigned *corr, unsigned *unc, unsigned *pending, unsigned *failure)
{
	double p = 0, f = 0;
	bool has_p = value_now(dev, K_REMAP_PENDING, &p), has_f = value_now(dev, K_REMAP_FAILURE, &f);
	if (!has_p && !has_f)
		return NVML_ERROR_NOT_SUPPORTED;
	*corr = *unc = 0;
	*pending = (unsigned)p;
	*failure = (unsigned)f;
	return 0;
}

EXPORT int nvmlDeviceGetRemappedRows(nvmlDevice_t dev, unsigned *corr, unsigned *unc, unsigned *pending,
				     unsigned *failure)
{
	DEVICE_CALL("nvmlDeviceGetRemappedRows", dev, get_remapped_rows(dev, corr, unc, pending, failure));
}

static int get_persistence(nvmlDevice_t dev, int *mode)
{
	double v;
	if (!value_now(dev, K_PERSISTENCE, &v))
		return NVML_ERROR_NOT_SUPPORTED;
	*mode = (int)v;
	return 0;
}

EXPORT int nvmlDeviceGetPersistenceMode(nvmlDevice_t dev, int *mode)
{
	DEVICE_CALL("nvmlDeviceGetPersistenceMode", dev, get_persistence(dev, mode));
}
