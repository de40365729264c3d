/* oci_spec_linux.c — the "linux" object of config.json: namespaces, cgroup
 * resources, the device allow list, masked paths and seccomp. */
#include <stdio.h>

#include "oci_spec.h"

/* The CFS period the CPU quota is expressed in: 100 ms, the kernel default. */
#define CPU_PERIOD_US 100000

/* Calls no GPU job needs and that widen the kernel's attack surface or
 * reach outside the container: loading kernels and modules, mounting and
 * namespace games (the runtime already set them up), tracing other
 * processes, eBPF and perf, the kernel keyring, handle-based opens (the
 * classic container escape), userfaultfd (a kernel-exploit helper), setting
 * the clock, swap, raw port I/O. They fail with EPERM. Everything else is
 * allowed: a deny list is a floor, not Docker's full allow list. (adjtimex
 * stays: reading the clock is harmless, and changing it needs CAP_SYS_TIME,
 * which no task has.) */
static const char *const denied_syscalls[] = {
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"mount", "umount2", "pivot_root", "unshare", "setns",
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
	"bpf", "perf_event_open", "keyctl", "add_key", "request_key",
	"open_by_handle_at", "name_to_handle_at", "userfaultfd",
	"reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime",
	"syslog", "iopl", "ioperm", "quotactl", "lookup_dcookie", "vhangup",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
};

static json_t *seccomp(void)
{
	json_t *names = json_array();
	for (size_t i = 0; i < sizeof denied_syscalls / sizeof *denied_syscalls; i++)
		json_array_append_new(names, json_string(denied_syscalls[i]));
	return json_pack("{s:s, s:[{s:o, s:s, s:i}]}", "defaultAction", "SCMP_ACT_ALLOW", "syscalls", "names", names,
			 "action", "SCMP_ACT_ERRNO", "errnoRet", 1 /* EPERM */);
}

static json_t *namespaces(const struct oci_spec_input *in)
{
	json_t *ns = json_array();
	const char *types[] = {"pid", "mount", "ipc", "uts", "cgroup", "network"};
	/* network last: left out when the task asked for the host's network. */
	size_t n = in->network ? 5 : 6;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(ns, json_pack("{s:s}", "type", types[i]));
	return ns;
}

static json_t *device_rule(bool allow, const char *type, int64_t major, int64_t minor, const char *access)
{
	json_t *r = json_pack("{s:b, s:s}", "allow", allow, "access", access);
	if (type)
		json_object_set_new(r, "type", json_string(type));
	if (major >= 0)
		json_object_set_new(r, "major", json_integer(major));
	if (minor >= 0)
		json_object_set_new(r, "minor", json_integer(minor));
	return r;
}

/* Deny all, then the nodes every container has (null, zero, full, random,
 * urandom, tty, ptmx and the pts ptys), then exactly the task's GPUs. */
static json_t *device_rules(const struct oci_spec_input *in)
{
	json_t *rules = json_array();
	json_array_append_new(rules, device_rule(false, NULL, -1, -1, "rwm"));
	static const int std_nodes[][2] = {{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 2}};
	for (size_t i = 0; i < sizeof std_nodes / sizeof *std_nodes; i++)
		json_array_append_new(rules, device_rule(true, "c", std_nodes[i][0], std_nodes[i][1], "rwm"));
	json_array_append_new(rules, device_rule(true, "c", 136, -1, "rwm"));
	for (int i = 0; i < in->n_devnodes; i++)
		json_array_append_new(rules, device_rule(true, "c", in->devnodes[i].major, in->devnodes[i].minor,
							 in->devnodes[i].access));
	return rules;
}

static json_t *resources(const struct oci_spec_input *in)
{
	json_t *r = json_pack("{s:o}", "devices", device_rules(in));
	if (in->memory_bytes > 0)
		/* swap = limit: no swap on top of the memory the task asked for */
		json_object_set_new(r, "memory", json_pack("{s:I, s:I}", "limit", (json_int_t)in->memory_bytes, "swap",
							   (json_int_t)in->memory_bytes));
	if (in->pids_limit > 0)
		json_object_set_new(r, "pids", json_pack("{s:I}", "limit", (json_int_t)in->pids_limit));
	if (in->cpu_milli > 0)
		json_object_set_new(r, "cpu", json_pack("{s:I, s:I}", "quota",
							(json_int_t)(in->cpu_milli * CPU_PERIOD_US / 1000), "period",
							(json_int_t)CPU_PERIOD_US));
	return r;
}

static json_t *devices(const struct oci_spec_input *in)
{
	json_t *d = json_array();
	for (int i = 0; i < in->n_devnodes; i++) {
		const struct gpu_devnode *n = &in->devnodes[i];
		json_array_append_new(d, json_pack("{s:s, s:s, s:I, s:I, s:i, s:i, s:i}", "path", n->container_path,
						   "type", "c", "major", (json_int_t)n->major, "minor",
						   (json_int_t)n->minor, "fileMode", (int)n->file_mode, "uid", 0, "gid", 0));
	}
	return d;
}

json_t *oci_spec_linux(const struct oci_spec_input *in)
{
	json_t *l = json_pack(
		"{s:o, s:o, s:o, s:o,"
		" s:[s,s,s,s,s,s,s,s,s,s,s], s:[s,s,s,s,s]}",
		"namespaces", namespaces(in), "resources", resources(in), "devices", devices(in), "seccomp", seccomp(),
		"maskedPaths", "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap", "readonlyPaths", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
		"/proc/sysrq-trigger");
	if (in->cgroups_path)
		json_object_set_new(l, "cgroupsPath", json_string(in->cgroups_path));
	return l;
}
