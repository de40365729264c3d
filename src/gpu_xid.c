/* gpu_xid.c — kernel-log Xid lines: parsing and the Xid -> severity/action
 * lookup. Matches what gpud matches (gpu-health.md):
 *   NVRM: Xid (PCI:0000:9b:00): 119, pid=..., Timeout after 6s ...
 * and "GPU has fallen off the bus" without an Xid number, read as Xid 79.
 * Lines come from /dev/kmsg ("6,3964,206764307,-;MESSAGE") or from dmesg
 * ("[Sun Feb 23 16:24:18 2025] MESSAGE", "[ 12.345] MESSAGE"). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_source.h"
#include "util.h"

static const struct gpu_xid_info unknown_xid = {
	0, GPU_DEGRADED, GPU_ACTION_CHECK_APP, false, "", "Xid not in NVIDIA's catalog",
};

const struct gpu_xid_info *gpu_xid_lookup(int xid)
{
	/* The table is sorted by code: binary search. */
	int lo = 0, hi = gpu_xid_table_len - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		if (gpu_xid_table[mid].xid == xid)
			return &gpu_xid_table[mid];
		if (gpu_xid_table[mid].xid < xid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return &unknown_xid;
}

const char *gpu_action_name(enum gpu_action a)
{
	switch (a) {
	case GPU_ACTION_NONE: return "none";
	case GPU_ACTION_CHECK_COOLING: return "check_cooling";
	case GPU_ACTION_CHECK_APP: return "check_application";
	case GPU_ACTION_REBOOT: return "reboot_host";
	case GPU_ACTION_HW_INSPECTION: return "hardware_inspection";
	}
	return "none";
}

const char *gpu_action_advice(enum gpu_action a)
{
	switch (a) {
	case GPU_ACTION_NONE: return "no action needed";
	case GPU_ACTION_CHECK_COOLING: return "check the host's cooling and power supply";
	case GPU_ACTION_CHECK_APP: return "check the application (and the GPU if it repeats)";
	case GPU_ACTION_REBOOT: return "reboot the host";
	case GPU_ACTION_HW_INSPECTION: return "hardware inspection: take the GPU out of service";
	}
	return "no action needed";
}

/* "6,3964,206764307,-;MSG" -> MSG with seq and ts; NULL if not a kmsg record. */
static const char *kmsg_message(const char *line, int64_t *seq, int64_t *ts_us)
{
	const char *semi = strchr(line, ';');
	if (!semi)
		return NULL;
	const char *p = line;
	int64_t v[3];
	for (int i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*p))
			return NULL;
		char *end;
		v[i] = strtoll(p, &end, 10);
		p = end;
		if (*p != ',' && !(i == 2 && *p == ';'))
			return NULL;
		p++;
	}
	if (p - 1 != semi && p > semi + 1)
		return NULL;
	*seq = v[1];
	*ts_us = v[2];
	return semi + 1;
}

/* Copies a bus id like "PCI:0000:9b:00" or "0000:03:00" (PCI: dropped,
 * lower-cased) from s up to stop; false if it is not hex, colons and dots. */
static bool copy_pci(const char *s, const char *stop, char *out, size_t cap)
{
	if (strncmp(s, "PCI:", 4) == 0)
		s += 4;
	size_t len = (size_t)(stop - s);
	if (len == 0 || len >= cap)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!isxdigit((unsigned char)c) && c != ':' && c != '.')
			return false;
		out[i] = (char)tolower((unsigned char)c);
	}
	out[len] = '\0';
	return true;
}

static void copy_detail(const char *s, char *out, size_t cap)
{
	str_copy(out, cap, s);
	size_t n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
}

/* "NVRM: Xid (PCI:0000:9b:00): 119, detail" (a "pid=..., name=..." part may
 * sit between ": " and the number in older drivers; the number is the first
 * run of digits after "): " ending in a comma). */
static int parse_xid_msg(const char *msg, struct gpu_xid_event *ev)
{
	const char *p = strstr(msg, "NVRM: Xid (");
	if (!p)
		return 0;
	p += strlen("NVRM: Xid (");
	const char *close = strchr(p, ')');
	if (!close || !copy_pci(p, close, ev->pci, sizeof ev->pci))
		return 0;
	p = close + 1;
	if (*p++ != ':')
		return 0;
	while (*p == ' ')
		p++;
	if (!isdigit((unsigned char)*p))
		return 0;
	char *end;
	long xid = strtol(p, &end, 10);
	if (*end != ',' || xid <= 0 || xid > 1000000)
		return 0;
	ev->xid = (int)xid;
	p = end + 1;
	while (*p == ' ')
		p++;
	copy_detail(p, ev->detail, sizeof ev->detail);
	return 1;
}

/* "NVRM: GPU at PCI:0000:01:00: GPU has fallen off the bus." */
static int parse_fallen_off(const char *msg, struct gpu_xid_event *ev)
{
	const char *hit = strstr(msg, "GPU has fallen off the bus");
	if (!hit)
		return 0;
	ev->xid = 79;
	ev->pci[0] = '\0';
	const char *pci = strstr(msg, "PCI:");
	if (pci && pci < hit) {
		const char *stop = pci + 4;
		while (isxdigit((unsigned char)*stop) || *stop == ':' || *stop == '.')
			stop++;
		/* "PCI:0000:01:00:" — the trailing colon is punctuation. */
		while (stop > pci + 4 && stop[-1] == ':')
			stop--;
		if (!copy_pci(pci, stop, ev->pci, sizeof ev->pci))
			ev->pci[0] = '\0';
	}
	copy_detail(hit, ev->detail, sizeof ev->detail);
	return 1;
}

int gpu_xid_parse_line(const char *line, struct gpu_xid_event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->seq = -1;
	ev->ts_us = -1;
	const char *msg = kmsg_message(line, &ev->seq, &ev->ts_us);
	if (!msg) {
		ev->seq = -1;
		ev->ts_us = -1;
		msg = line;
	}
	if (parse_xid_msg(msg, ev))
		return 1;
	if (strstr(msg, "NVRM: Xid ("))
		return 0; /* a malformed Xid line is not a bus-off line */
	return parse_fallen_off(msg, ev);
}
