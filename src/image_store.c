/* image_store.c — images by name: import (orchestration), list, remove,
 * load. The formats live in image_store_layout.c, layer application in
 * image_store_layer.c. */
#include "image_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image_store_fs.h"
#include "image_store_impl.h"
#include "util.h"

void image_store_dir(const char *state_dir, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/images", state_dir);
}

int image_name_check(const char *name, struct err *e)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n >= IMAGE_NAME_MAX)
		return err_set(e, ERR_INVALID, "image name must have 1 to %d characters", IMAGE_NAME_MAX - 1);
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:";
	size_t bad = strspn(name, ok);
	if (bad != n)
		return err_set(e, ERR_INVALID, "image name \"%s\": character '%c' not allowed (use letters, digits, "
					       "'.', '_', '-', '/', ':')", name, name[bad]);
	if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", name[0]))
		return err_set(e, ERR_INVALID, "image name \"%s\" must start with a letter or digit", name);
	if (strstr(name, ".."))
		return err_set(e, ERR_INVALID, "image name \"%s\" must not contain \"..\"", name);
	return 0;
}

void image_dir_of(const char *store, const char *name, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/", store);
	for (const char *p = name; *p && n + 2 < (int)cap; p++)
		buf[n++] = *p == '/' ? '+' : *p == ':' ? '@' : *p;
	buf[n] = 0;
}

/* cp -a SRC/. DST: a local directory is trusted input (the operator's own),
 * and cp copies symlinks as symlinks, never following them. */
static int copy_rootfs_dir(const char *src, const char *dst, struct err *e)
{
	char from[4096], to[4200];
	snprintf(from, sizeof from, "%s/.", src);
	snprintf(to, sizeof to, "%s/", dst);
	char *argv[] = {"cp", "-a", "--", from, to, NULL};
	pid_t pid;
	extern char **environ;
	int rc = posix_spawnp(&pid, "cp", NULL, NULL, argv, environ);
	if (rc != 0)
		return err_set(e, ERR_INTERNAL, "cannot run cp: %s", strerror(rc));
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(e, ERR_INTERNAL, "copying %s failed (cp printed why)", src);
	return 0;
}

static bool is_layout_dir(const char *dir)
{
	char a[4096], b[4096];
	snprintf(a, sizeof a, "%s/oci-layout", dir);
	snprintf(b, sizeof b, "%s/manifest.json", dir);
	return access(a, F_OK) == 0 || access(b, F_OK) == 0;
}

static int apply_layers(const char *layout, const char *rootfs, image_progress_fn progress, void *ctx,
			json_t **config, const char **format, int *n_layers, struct err *e)
{
	char **layers;
	if (image_layout_read(layout, &layers, n_layers, config, format, e) < 0)
		return -1;
	int fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd < 0 ? err_set(e, ERR_INTERNAL, "cannot open %s: %s", rootfs, strerror(errno)) : 0;
	for (int i = 0; rc == 0 && i < *n_layers; i++) {
		char what[32];
		snprintf(what, sizeof what, "layer %d/%d", i + 1, *n_layers);
		rc = image_layer_apply(fd, layers[i], what, progress, ctx, e);
	}
	if (fd >= 0)
		close(fd);
	strv_free(layers, *n_layers);
	return rc;
}

static json_t *manifest_json(const struct image_info *info, json_t *config)
{
	json_t *env = json_object_get(config, "Env");
	const char *wd = json_string_value(json_object_get(config, "WorkingDir"));
	return json_pack("{s:s, s:s, s:i, s:I, s:I, s:o, s:s}", "name", info->name, "format", info->format, "layers",
			 info->n_layers, "size_bytes", (json_int_t)info->size_bytes, "created_ms",
			 (json_int_t)info->created_ms, "env", json_is_array(env) ? json_incref(env) : json_array(),
			 "workdir", wd ? wd : "");
}

/* Fills staging/rootfs from source and describes it in info. */
static int build_image(const char *source, const char *staging, image_progress_fn progress, void *ctx,
		       struct image_info *info, json_t **config, struct err *e)
{
	char rootfs[4096], src[4096];
	snprintf(rootfs, sizeof rootfs, "%s/rootfs", staging);
	snprintf(src, sizeof src, "%s/src", staging);
	if (mkdir(rootfs, 0755) < 0)
		return err_set(e, ERR_INTERNAL, "cannot create %s: %s", rootfs, strerror(errno));
	struct stat st;
	if (stat(source, &st) < 0)
		return err_set(e, ERR_NOT_FOUND, "%s: %s", source, strerror(errno));
	const char *format = "rootfs-dir";
	int rc;
	if (S_ISDIR(st.st_mode) && !is_layout_dir(source)) {
		info->n_layers = 1;
		rc = copy_rootfs_dir(source, rootfs, e);
	} else if (S_ISDIR(st.st_mode)) {
		rc = apply_layers(source, rootfs, progress, ctx, config, &format, &info->n_layers, e);
	} else {
		if (mkdir(src, 0700) < 0)
			return err_set(e, ERR_INTERNAL, "cannot create %s: %s", src, strerror(errno));
		rc = image_tar_unpack(source, src, e);
		if (rc == 0)
			rc = apply_layers(src, rootfs, progress, ctx, config, &format, &info->n_layers, e);
		fs_remove_tree(src);
	}
	str_copy(info->format, sizeof info->format, format);
	info->size_bytes = fs_tree_bytes(rootfs);
	return rc;
}

/* How many mounts use dir/rootfs as their overlay's lower layer: the running
 * containers of this image (a mount keeps the path it was given). Their
 * lower layer must not change under them, so such an image is neither
 * removed nor replaced. */
static int image_mounts(const char *dir)
{
	char want[4200];
	int n = snprintf(want, sizeof want, "lowerdir=%s/rootfs", dir);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	char line[8192];
	int count = 0;
	while (fgets(line, sizeof line, f)) {
		const char *p = strstr(line, want);
		if (p && strchr(",: \n", p[n]))
			count++;
	}
	fclose(f);
	return count;
}

static int refuse_if_in_use(const char *dir, const char *name, const char *what, struct err *e)
{
	int n = image_mounts(dir);
	if (n > 0)
		return err_set(e, ERR_CONFLICT, "image %s is used by %d running container%s: %s it once they end", name,
			       n, n == 1 ? "" : "s", what);
	return 0;
}

/* Renames staging over final; the image it replaces is removed after. */
static int install_image(const char *store, const char *staging, const char *final, struct err *e)
{
	char old[2048];
	snprintf(old, sizeof old, "%s/.old-%d-%lld", store, (int)getpid(), (long long)mono_ns());
	bool had_old = rename(final, old) == 0;
	if (rename(staging, final) < 0) {
		int saved = errno;
		if (had_old)
			rename(old, final);
		return err_set(e, ERR_INTERNAL, "cannot install %s: %s", final, strerror(saved));
	}
	if (had_old)
		fs_remove_tree(old);
	return 0;
}

int image_import(const char *store, const char *source, const char *name, image_progress_fn progress, void *ctx,
		 struct image_info *out, struct err *e)
{
	char staging[2048], final[2048], manifest[4096];
	if (image_name_check(name, e) < 0 || fs_mkdir_p(store, e) < 0)
		return -1;
	image_dir_of(store, name, final, sizeof final);
	if (refuse_if_in_use(final, name, "replace", e) < 0)
		return -1;
	snprintf(staging, sizeof staging, "%s/.import-%d-%lld", store, (int)getpid(), (long long)mono_ns());
	if (mkdir(staging, 0755) < 0)
		return err_set(e, ERR_INTERNAL, "cannot create %s: %s", staging, strerror(errno));
	struct image_info info = {.created_ms = now_ms()};
	str_copy(info.name, sizeof info.name, name);
	json_t *config = NULL;
	int rc = build_image(source, staging, progress, ctx, &info, &config, e);
	if (rc == 0) {
		json_t *m = manifest_json(&info, config);
		char *text = json_dumps(m, JSON_INDENT(2));
		snprintf(manifest, sizeof manifest, "%s/manifest.json", staging);
		rc = write_file_atomic(manifest, text, 0644, e);
		free(text);
		json_decref(m);
	}
	json_decref(config);
	if (rc == 0)
		rc = refuse_if_in_use(final, name, "replace", e);
	if (rc == 0)
		rc = install_image(store, staging, final, e);
	if (rc < 0)
		fs_remove_tree(staging);
	else if (out)
		*out = info;
	return rc;
}

static int read_manifest(const char *dir, struct image_info *info, json_t **root, struct err *e)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/manifest.json", dir);
	json_error_t je;
	json_t *m = json_load_file(path, 0, &je);
	if (!m)
		return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_INTERNAL, "%s: %s", path, je.text);
	memset(info, 0, sizeof *info);
	const char *name = json_string_value(json_object_get(m, "name"));
	const char *format = json_string_value(json_object_get(m, "format"));
	str_copy(info->name, sizeof info->name, name ? name : "");
	str_copy(info->format, sizeof info->format, format ? format : "");
	info->n_layers = (int)json_integer_value(json_object_get(m, "layers"));
	info->size_bytes = json_integer_value(json_object_get(m, "size_bytes"));
	info->created_ms = json_integer_value(json_object_get(m, "created_ms"));
	if (root)
		*root = m;
	else
		json_decref(m);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct image_info *)a)->name, ((const struct image_info *)b)->name);
}

int image_list(const char *store, struct image_info **out, int *n, struct err *e)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(store);
	if (!d)
		return errno == ENOENT ? 0 : err_set(e, ERR_INTERNAL, "cannot read %s: %s", store, strerror(errno));
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue; /* staging and replaced images in flight */
		char dir[2048];
		snprintf(dir, sizeof dir, "%s/%s", store, de->d_name);
		struct image_info info;
		if (read_manifest(dir, &info, NULL, e) < 0)
			continue; /* not an image: ignored, as a store shared with a person may hold other files */
		*out = xrealloc(*out, ((size_t)*n + 1) * sizeof **out);
		(*out)[(*n)++] = info;
	}
	closedir(d);
	qsort(*out, (size_t)*n, sizeof **out, by_name);
	return 0;
}

int image_remove(const char *store, const char *name, struct err *e)
{
	if (image_name_check(name, e) < 0)
		return -1;
	char dir[2048], doomed[2048];
	image_dir_of(store, name, dir, sizeof dir);
	if (refuse_if_in_use(dir, name, "remove", e) < 0)
		return -1;
	/* Renamed away first, so the name is gone at once even if the tree is big. */
	snprintf(doomed, sizeof doomed, "%s/.rm-%d-%lld", store, (int)getpid(), (long long)mono_ns());
	if (rename(dir, doomed) < 0)
		return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_INTERNAL, "image %s: %s", name,
			       errno == ENOENT ? "no such image" : strerror(errno));
	if (fs_remove_tree(doomed) < 0)
		return err_set(e, ERR_INTERNAL, "removing %s: %s", doomed, strerror(errno));
	return 0;
}

int image_load(const char *store, const char *name, struct image *out, struct err *e)
{
	memset(out, 0, sizeof *out);
	if (image_name_check(name, e) < 0)
		return -1;
	char dir[2048];
	image_dir_of(store, name, dir, sizeof dir);
	json_t *m;
	if (read_manifest(dir, &out->info, &m, e) < 0) {
		if (e && e->code == ERR_NOT_FOUND)
			err_set(e, ERR_NOT_FOUND, "image %s not found in %s (import it with `gpunode image import`)", name,
				store);
		return -1;
	}
	snprintf(out->rootfs, sizeof out->rootfs, "%s/rootfs", dir);
	json_t *env = json_object_get(m, "env");
	out->env = xcalloc(json_array_size(env) + 1, sizeof *out->env);
	size_t i, k = 0;
	json_t *v;
	json_array_foreach(env, i, v)
		if (json_is_string(v))
			out->env[k++] = xstrdup(json_string_value(v));
	const char *wd = json_string_value(json_object_get(m, "workdir"));
	str_copy(out->workdir, sizeof out->workdir, wd ? wd : "");
	json_decref(m);
	return 0;
}

void image_free(struct image *img)
{
	if (img->env)
		for (char **p = img->env; *p; p++)
			free(*p);
	free(img->env);
	img->env = NULL;
}
