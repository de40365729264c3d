/* image_store_layout.c — reading an unpacked `docker save` (manifest.json)
 * or OCI image layout (oci-layout + index.json + blobs/) into a layer list
 * and the image config. Every path taken from these files is untrusted: OCI
 * digests must be sha256:<64 hex>, docker layer paths are cleaned like
 * layer entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image_store_impl.h"
#include "util.h"

#define LAYERS_MAX 256

static json_t *load_json(const char *dir, const char *rel, struct err *e)
{
	char path[2048];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	json_error_t je;
	json_t *v = json_load_file(path, 0, &je);
	if (!v)
		err_set(e, ERR_INVALID, "%s: %s", rel, je.text);
	return v;
}

/* "sha256:HEX" -> "blobs/sha256/HEX", refusing anything else. */
static int blob_path(const char *digest, char *out, size_t cap, struct err *e)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest + 7) != 64 ||
	    strspn(digest + 7, "0123456789abcdef") != 64)
		return err_set(e, ERR_INVALID, "bad blob digest \"%s\" (want sha256:<64 hex>)", digest ? digest : "");
	snprintf(out, cap, "blobs/sha256/%s", digest + 7);
	return 0;
}

static json_t *load_blob(const char *dir, const char *digest, struct err *e)
{
	char rel[128];
	if (blob_path(digest, rel, sizeof rel, e) < 0)
		return NULL;
	return load_json(dir, rel, e);
}

static void add_layer(char ***layers, int *n, const char *dir, const char *rel)
{
	*layers = xrealloc(*layers, ((size_t)*n + 1) * sizeof **layers);
	if (asprintf(&(*layers)[(*n)++], "%s/%s", dir, rel) < 0)
		abort();
}

static bool is_index(json_t *v)
{
	const char *mt = json_string_value(json_object_get(v, "mediaType"));
	return json_is_array(json_object_get(v, "manifests")) &&
	       (!mt || strstr(mt, "index") || strstr(mt, "manifest.list"));
}

/* The image manifest an index points to: the linux/amd64 entry if the index
 * names platforms, else the first; follows nested indexes (a multi-platform
 * image saved whole). */
static json_t *manifest_from_index(const char *dir, json_t *index, int depth, struct err *e)
{
	json_t *list = json_object_get(index, "manifests");
	if (!json_array_size(list)) {
		err_set(e, ERR_INVALID, "index.json lists no manifest");
		return NULL;
	}
	json_t *pick = json_array_get(list, 0);
	size_t i;
	json_t *m;
	json_array_foreach(list, i, m) {
		json_t *pl = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(pl, "os"));
		const char *arch = json_string_value(json_object_get(pl, "architecture"));
		if (os && arch && strcmp(os, "linux") == 0 && strcmp(arch, "amd64") == 0) {
			pick = m;
			break;
		}
	}
	json_t *next = load_blob(dir, json_string_value(json_object_get(pick, "digest")), e);
	if (next && is_index(next)) {
		if (depth >= 2) {
			json_decref(next);
			err_set(e, ERR_INVALID, "image indexes nested too deep");
			return NULL;
		}
		json_t *inner = manifest_from_index(dir, next, depth + 1, e);
		json_decref(next);
		return inner;
	}
	return next;
}

static int read_oci(const char *dir, char ***layers, int *n, json_t **config, struct err *e)
{
	json_t *index = load_json(dir, "index.json", e);
	if (!index)
		return -1;
	json_t *manifest = manifest_from_index(dir, index, 0, e);
	json_decref(index);
	if (!manifest)
		return -1;
	int rc = 0;
	json_t *ls = json_object_get(manifest, "layers");
	size_t i;
	json_t *l;
	json_array_foreach(ls, i, l) {
		char rel[128];
		if ((rc = blob_path(json_string_value(json_object_get(l, "digest")), rel, sizeof rel, e)) < 0)
			break;
		add_layer(layers, n, dir, rel);
	}
	json_t *cfg = rc == 0 ? load_blob(dir, json_string_value(json_object_get(json_object_get(manifest, "config"),
											 "digest")), e)
			      : NULL;
	if (rc == 0 && !cfg)
		rc = -1;
	if (cfg)
		*config = json_incref(json_object_get(cfg, "config"));
	json_decref(cfg);
	json_decref(manifest);
	return rc;
}

static int read_docker_save(const char *dir, char ***layers, int *n, json_t **config, struct err *e)
{
	json_t *top = load_json(dir, "manifest.json", e);
	if (!top)
		return -1;
	json_t *m = json_array_get(top, 0);
	json_t *ls = json_object_get(m, "Layers");
	if (json_array_size(top) != 1 || !json_is_array(ls)) {
		json_decref(top);
		return err_set(e, ERR_INVALID, "manifest.json: want exactly one image with a Layers list (save one "
					       "image per tarball)");
	}
	int rc = 0;
	size_t i;
	json_t *l;
	char rel[1024];
	json_array_foreach(ls, i, l) {
		if ((rc = image_entry_path(json_string_value(l) ? json_string_value(l) : "..", rel, sizeof rel, e)) < 0)
			break;
		add_layer(layers, n, dir, rel);
	}
	const char *cfg_name = json_string_value(json_object_get(m, "Config"));
	if (rc == 0 && cfg_name && image_entry_path(cfg_name, rel, sizeof rel, e) == 0) {
		json_t *cfg = load_json(dir, rel, e);
		if (!cfg)
			rc = -1;
		else
			*config = json_incref(json_object_get(cfg, "config"));
		json_decref(cfg);
	} else if (rc == 0 && cfg_name) {
		rc = -1;
	}
	json_decref(top);
	return rc;
}

static bool has_file(const char *dir, const char *name)
{
	char path[2048];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, R_OK) == 0;
}

int image_layout_read(const char *dir, char ***layers, int *n_layers, json_t **config, const char **format,
		      struct err *e)
{
	*layers = NULL;
	*n_layers = 0;
	*config = NULL;
	int rc;
	/* Docker 25+ writes both; the OCI side is the standard one. */
	if (has_file(dir, "oci-layout") && has_file(dir, "index.json")) {
		*format = "oci-layout";
		rc = read_oci(dir, layers, n_layers, config, e);
	} else if (has_file(dir, "manifest.json")) {
		*format = "docker-save";
		rc = read_docker_save(dir, layers, n_layers, config, e);
	} else {
		return err_set(e, ERR_INVALID, "neither a docker save (manifest.json) nor an OCI image layout "
					       "(oci-layout, index.json)");
	}
	if (rc == 0 && *n_layers > LAYERS_MAX)
		rc = err_set(e, ERR_INVALID, "%d layers: at most %d", *n_layers, LAYERS_MAX);
	if (rc == 0 && *n_layers == 0)
		rc = err_set(e, ERR_INVALID, "the image has no layers");
	if (rc < 0) {
		strv_free(*layers, *n_layers);
		*layers = NULL;
		*n_layers = 0;
		json_decref(*config);
		*config = NULL;
	}
	return rc;
}
