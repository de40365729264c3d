/* image_store.h — the agent's local container images, for the OCI runtime
 * backend on hosts without Docker. An image is a root filesystem plus a
 * small manifest, stored by name ("busybox:local") under STATE/images:
 *
 *   STATE/images/NAME/manifest.json   name, format, layers, size, created, env, workdir
 *   STATE/images/NAME/rootfs/         the layers applied in order
 *
 * (NAME with '/' written as '+' and ':' as '@': injective, since neither
 * '+' nor '@' may appear in a name, and free of the ':' and ',' that
 * overlayfs mount options would split on.)
 *
 * Imports read a `docker save` tarball, an OCI image layout (tarball or
 * directory) or a plain rootfs directory. Layers are untrusted input: names
 * with "..", absolute names and writes through symlinks are refused, and
 * whiteouts (.wh.NAME, .wh..wh..opq) are applied inside the rootfs only.
 * An import builds the image beside the store and renames it into place,
 * so a failed import leaves the previous image of that name untouched. */
#ifndef GPUNODE_IMAGE_STORE_H
#define GPUNODE_IMAGE_STORE_H

#include <stdint.h>

#include "err.h"

#define IMAGE_NAME_MAX 128

struct image_info {
	char name[IMAGE_NAME_MAX];
	char format[16];   /* "docker-save", "oci-layout", "rootfs-dir" */
	int n_layers;
	int64_t size_bytes; /* of the files in rootfs/ */
	int64_t created_ms; /* when it was imported */
};

/* An image as a container needs it. env: the image config's KEY=VALUE
 * entries (PATH...), NULL-terminated; workdir: "" when the image names none. */
struct image {
	struct image_info info;
	char rootfs[4096];
	char **env;
	char workdir[256];
};

/* STATE/images: where the agent whose state dir is state_dir keeps images. */
void image_store_dir(const char *state_dir, char *buf, size_t cap);

/* Names: 1..127 characters of [A-Za-z0-9._-/:], starting with a letter or
 * digit, no "..". ERR_INVALID with the reason otherwise. */
int image_name_check(const char *name, struct err *e);

/* Called as an import goes: what ("layer 2/5"), bytes of it done so far. */
typedef void (*image_progress_fn)(void *ctx, const char *what, int64_t bytes);

/* Imports source (tarball or directory) as name into store (created if
 * missing), replacing an image of that name unless running containers use
 * it (ERR_CONFLICT: their lower layer must not change). progress may be NULL.
 * Changes the process's working directory while it extracts and restores
 * it: call from a single-threaded process (the CLI). */
int image_import(const char *store, const char *source, const char *name, image_progress_fn progress, void *ctx,
		 struct image_info *out, struct err *e);

/* The images in store, sorted by name; *out malloc'd (free). An absent
 * store is empty. */
int image_list(const char *store, struct image_info **out, int *n, struct err *e);

/* Removes an image: ERR_NOT_FOUND if absent, ERR_CONFLICT while running
 * containers use it. */
int image_remove(const char *store, const char *name, struct err *e);

/* Loads an image for a container: ERR_NOT_FOUND ("image_not_found") when
 * absent. Free with image_free. */
int image_load(const char *store, const char *name, struct image *out, struct err *e);
void image_free(struct image *img);

#endif
