/* oci_spec.c — config.json: the process, root, mounts and annotations; the
 * kernel-facing "linux" object is in oci_spec_linux.c. */
#include "oci_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const caps[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE",
};

static json_t *string_array(char *const *v)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

static json_t *capabilities(void)
{
	json_t *set = json_array();
	for (size_t i = 0; i < sizeof caps / sizeof *caps; i++)
		json_array_append_new(set, json_string(caps[i]));
	/* Nothing inheritable or ambient: an exec'd program keeps no capability
	 * it did not already have. */
	return json_pack("{s:O, s:O, s:o, s:[], s:[]}", "bounding", set, "effective", set, "permitted", set,
			 "inheritable", "ambient");
}

static json_t *process(const struct oci_spec_input *in)
{
	const char *cwd = in->cwd && *in->cwd ? in->cwd : in->scratch_dir ? OCI_SCRATCH_PATH : "/";
	json_t *caps_obj = capabilities();
	json_t *p = json_pack("{s:b, s:{s:i, s:i}, s:o, s:o, s:s, s:o, s:b, s:i, s:[{s:s, s:i, s:i}, {s:s, s:i, s:i}]}",
			      "terminal", 0, "user", "uid", 0, "gid", 0, "args", string_array(in->argv), "env",
			      string_array(in->env), "cwd", cwd, "capabilities", caps_obj, "noNewPrivileges", 1,
			      /* the kernel's OOM killer takes a task before the agent */
			      "oomScoreAdj", 500, "rlimits", "type", "RLIMIT_NOFILE", "hard", 4096, "soft", 4096,
			      "type", "RLIMIT_CORE", "hard", 0, "soft", 0);
	return p;
}

static json_t *mount(const char *dest, const char *type, const char *source, const char *opts_csv)
{
	json_t *opts = json_array();
	char buf[256];
	str_copy(buf, sizeof buf, opts_csv);
	for (char *save = NULL, *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save))
		json_array_append_new(opts, json_string(o));
	return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", source, "options", opts);
}

static json_t *mounts(const struct oci_spec_input *in)
{
	json_t *m = json_array();
	json_array_append_new(m, mount("/proc", "proc", "proc", "nosuid,noexec,nodev"));
	json_array_append_new(m, mount("/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"));
	json_array_append_new(m, mount("/dev/pts", "devpts", "devpts",
				       "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620"));
	json_array_append_new(m, mount("/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k"));
	json_array_append_new(m, mount("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"));
	json_array_append_new(m, mount("/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"));
	json_array_append_new(m, mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid,noexec,nodev,relatime,ro"));
	if (in->scratch_dir)
		json_array_append_new(m, mount(OCI_SCRATCH_PATH, "bind", in->scratch_dir, "rbind,rw,nosuid,nodev"));
	for (int i = 0; i < in->n_mounts; i++)
		json_array_append_new(m, mount(in->mounts[i].container_path, "bind", in->mounts[i].host_path,
					       "rbind,ro,nosuid,nodev"));
	return m;
}

json_t *oci_spec_build(const struct oci_spec_input *in, struct err *e)
{
	if (!in->argv || !in->argv[0] || !in->argv[0][0]) {
		err_set(e, ERR_INVALID, "the task has no command");
		return NULL;
	}
	if (!in->task_id || !*in->task_id || !in->rootfs) {
		err_set(e, ERR_INVALID, "a container needs a task id and a root filesystem");
		return NULL;
	}
	if (in->memory_bytes < 0 || in->cpu_milli < 0 || in->pids_limit < 0) {
		err_set(e, ERR_INVALID, "negative resource limit");
		return NULL;
	}
	return json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:{s:s, s:s}, s:o}", "ociVersion", "1.0.2", "process",
			 process(in), "root", "path", in->rootfs, "readonly", in->readonly_rootfs, "hostname",
			 in->task_id, "mounts", mounts(in), "annotations", OCI_ANNOTATION_TASK, in->task_id,
			 OCI_ANNOTATION_HOST, in->host ? in->host : "", "linux", oci_spec_linux(in));
}

int oci_spec_write(const char *bundle, const struct oci_spec_input *in, struct err *e)
{
	json_t *spec = oci_spec_build(in, e);
	if (!spec)
		return -1;
	char path[4096];
	snprintf(path, sizeof path, "%s/config.json", bundle);
	char *text = json_dumps(spec, JSON_COMPACT);
	json_decref(spec);
	/* Not write_file_atomic: the bundle is new and private to this run, and
	 * its fsync would sit on every container start. */
	FILE *f = fopen(path, "we");
	int rc = 0;
	if (!f || fputs(text, f) < 0)
		rc = err_set(e, ERR_INTERNAL, "cannot write %s", path);
	if (f && fclose(f) != 0 && rc == 0)
		rc = err_set(e, ERR_INTERNAL, "cannot write %s", path);
	free(text);
	return rc;
}
