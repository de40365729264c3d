/* fake_nvml.c — a test double of NVIDIA's libnvidia-ml.so.1, built under
 * that exact file name so gpu_nvml.c loads it through its real dlopen path
 * (LD_LIBRARY_PATH points at this build directory). It implements only the
 * functions gpu_nvml.c uses, with the same C signatures.
 *
 * Driven by the scenario file named in $FAKE_NVML_SCENARIO, read at each
 * nvmlInit_v2. One directive a line, '#' comments:
 *   driver 565.57.01
 *   cuda 12070                        (nvmlSystemGetCudaDriverVersion value)
 *   device UUID|NAME|MEM_MIB|CC|PCI_BUS_ID|MIG   (MIG 0, 1, or -1: not supported)
 *   fail FUNCTION CODE                (FUNCTION returns NVML error CODE)
 *   hang FUNCTION MS                  (FUNCTION sleeps MS milliseconds first)
 * FUNCTION is the NVML name, e.g. nvmlDeviceGetUUID. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_MAX_DEV 16
#define FAKE_MAX_RULES 16

struct fake_dev {
	char uuid[80], name[96], pci[32];
	unsigned long long mem_mib;
	int cc_major, cc_minor, mig;
};
struct fake_rule {
	char fn[64];
	int fail_code; /* 0: none */
	long hang_ms;
};

static struct fake_dev devs[FAKE_MAX_DEV];
static int n_devs;
static struct fake_rule rules[FAKE_MAX_RULES];
static int n_rules;
static char driver[80] = "999.99";
static int cuda = 12000;
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

#define EXPORT __attribute__((visibility("default")))
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7

static void set_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void load_scenario(void)
{
	n_devs = 0;
	n_rules = 0;
	const char *path = getenv("FAKE_NVML_SCENARIO");
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char fn[64];
		long v;
		if (strncmp(line, "driver ", 7) == 0) {
			set_str(driver, sizeof driver, line + 7);
		} else if (sscanf(line, "cuda %d", &cuda) == 1) {
		} else if (strncmp(line, "device ", 7) == 0 && n_devs < FAKE_MAX_DEV) {
			struct fake_dev *d = &devs[n_devs];
			char *rest = line + 7, *fld[6];
			int nf = 0;
			for (char *t; nf < 6 && (t = strsep(&rest, "|"));)
				fld[nf++] = t;
			if (nf != 6)
				continue;
			set_str(d->uuid, sizeof d->uuid, fld[0]);
			set_str(d->name, sizeof d->name, fld[1]);
			d->mem_mib = strtoull(fld[2], NULL, 10);
			if (sscanf(fld[3], "%d.%d", &d->cc_major, &d->cc_minor) != 2)
				d->cc_major = d->cc_minor = 0;
			set_str(d->pci, sizeof d->pci, fld[4]);
			d->mig = atoi(fld[5]);
			n_devs++;
		} else if (n_rules < FAKE_MAX_RULES && sscanf(line, "fail %63s %ld", fn, &v) == 2) {
			set_str(rules[n_rules].fn, sizeof rules[n_rules].fn, fn);
			rules[n_rules].fail_code = (int)v;
			rules[n_rules++].hang_ms = 0;
		} else if (n_rules < FAKE_MAX_RULES && sscanf(line, "hang %63s %ld", fn, &v) == 2) {
			set_str(rules[n_rules].fn, sizeof rules[n_rules].fn, fn);
			rules[n_rules].fail_code = 0;
			rules[n_rules++].hang_ms = v;
		}
	}
	fclose(f);
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
	return 0;
}

EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t *dev)
{
	INJECT("nvmlDeviceGetHandleByIndex_v2");
	READ_LOCKED(get_handle(index, dev));
}

EXPORT int nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned len)
{
	INJECT("nvmlDeviceGetName");
	READ_LOCKED(copy_out(name, len, dev->name));
}

EXPORT int nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned len)
{
	INJECT("nvmlDeviceGetUUID");
	READ_LOCKED(copy_out(uuid, len, dev->uuid));
}

static int get_pci(nvmlDevice_t dev, struct pci_info *pci)
{
	memset(pci, 0, sizeof *pci);
	set_str(pci->bus_id, sizeof pci->bus_id, dev->pci);
	return 0;
}

EXPORT int nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev, struct pci_info *pci)
{
	INJECT("nvmlDeviceGetPciInfo_v3");
	READ_LOCKED(get_pci(dev, pci));
}

static int get_memory(nvmlDevice_t dev, struct memory *m)
{
	m->total = dev->mem_mib * 1024ULL * 1024ULL;
	m->used = 0;
	m->free = m->total;
	return 0;
}

EXPORT int nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, struct memory *m)
{
	INJECT("nvmlDeviceGetMemoryInfo");
	READ_LOCKED(get_memory(dev, m));
}

static int get_cc(nvmlDevice_t dev, int *major, int *minor)
{
	*major = dev->cc_major;
	*minor = dev->cc_minor;
	return 0;
}

EXPORT int nvmlDeviceGetCudaComputeCapability(nvmlDevice_t dev, int *major, int *minor)
{
	INJECT("nvmlDeviceGetCudaComputeCapability");
	READ_LOCKED(get_cc(dev, major, minor));
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
	INJECT("nvmlDeviceGetMigMode");
	READ_LOCKED(get_mig(dev, current, pending));
}
