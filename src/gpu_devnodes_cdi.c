/* gpu_devnodes_cdi.c — the driver files a container using a real GPU needs
 * (libcuda.so.1, libnvidia-ml.so.1, nvidia-smi...), read from the host's
 * CDI spec, which the NVIDIA container toolkit writes for exactly this
 * driver version: we never guess library paths ourselves. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_devnodes.h"
#include "util.h"

#define CDI_MAX_MOUNTS 512

void gpu_mounts_free(struct gpu_mount *m, int n)
{
	for (int i = 0; i < n; i++) {
		free(m[i].host_path);
		free(m[i].container_path);
	}
	free(m);
}

static bool is_json_name(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && strcmp(name + n - 5, ".json") == 0 && name[0] != '.';
}

/* Appends the containerEdits.mounts of one spec if it is an NVIDIA GPU spec. */
static int add_spec_mounts(const char *path, struct gpu_mount **out, int *n, struct err *e)
{
	json_error_t je;
	json_t *spec = json_load_file(path, 0, &je);
	if (!spec)
		return err_set(e, ERR_INVALID, "CDI spec %s: %s (line %d)", path, je.text, je.line);
	const char *kind = json_string_value(json_object_get(spec, "kind"));
	json_t *mounts = json_object_get(json_object_get(spec, "containerEdits"), "mounts");
	if (!kind || strcmp(kind, "nvidia.com/gpu") != 0 || !json_is_array(mounts)) {
		json_decref(spec);
		return 0;
	}
	size_t i;
	json_t *m;
	json_array_foreach(mounts, i, m) {
		const char *host = json_string_value(json_object_get(m, "hostPath"));
		const char *ctr = json_string_value(json_object_get(m, "containerPath"));
		if (!host || !ctr || host[0] != '/' || ctr[0] != '/') {
			json_decref(spec);
			return err_set(e, ERR_INVALID, "CDI spec %s: mount %zu needs absolute hostPath and containerPath",
				       path, i);
		}
		if (*n >= CDI_MAX_MOUNTS) {
			json_decref(spec);
			return err_set(e, ERR_INVALID, "CDI spec %s: more than %d mounts", path, CDI_MAX_MOUNTS);
		}
		*out = xrealloc(*out, ((size_t)*n + 1) * sizeof **out);
		(*out)[*n].host_path = xstrdup(host);
		(*out)[*n].container_path = xstrdup(ctr);
		(*n)++;
	}
	json_decref(spec);
	return 0;
}

static int read_cdi_dir(const char *dir, struct gpu_mount **out, int *n, struct err *e)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : err_set(e, ERR_INTERNAL, "cannot read %s: %s", dir, strerror(errno));
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (!is_json_name(de->d_name))
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		rc = add_spec_mounts(path, out, n, e);
	}
	closedir(d);
	return rc;
}

int gpu_cdi_mounts(const char *cdi_dir, struct gpu_mount **out, int *n_out, struct err *e)
{
	*out = NULL;
	*n_out = 0;
	/* The CDI spec's two standard places: static specs, then generated ones. */
	const char *dirs[] = {cdi_dir ? cdi_dir : "/etc/cdi", cdi_dir ? NULL : "/var/run/cdi"};
	for (int i = 0; i < 2 && dirs[i]; i++) {
		if (read_cdi_dir(dirs[i], out, n_out, e) < 0) {
			gpu_mounts_free(*out, *n_out);
			*out = NULL;
			*n_out = 0;
			return -1;
		}
	}
	return 0;
}
