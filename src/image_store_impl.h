/* image_store_impl.h — what the image store's files share (not for other
 * modules). */
#ifndef GPUNODE_IMAGE_STORE_IMPL_H
#define GPUNODE_IMAGE_STORE_IMPL_H

#include <jansson.h>
#include <stddef.h>

#include "image_store.h"

/* The path of a layer entry made relative and clean: "./a//b/" -> "a/b",
 * "/etc" -> "etc"; "" for the root itself. Refuses any ".." component
 * (path traversal) with ERR_INVALID. */
int image_entry_path(const char *in, char *out, size_t cap, struct err *e);

/* Applies one layer tarball (plain, gzip, zstd...) to the rootfs open as
 * rootfs_fd: whiteouts first (they hide what lower layers had), then every
 * other entry extracted strictly inside the rootfs. what names the layer in
 * progress reports and errors. */
int image_layer_apply(int rootfs_fd, const char *layer_path, const char *what, image_progress_fn progress,
		      void *ctx, struct err *e);

/* Extracts an outer tarball (a docker save or OCI layout) into dir with
 * the same refusals as layers. */
int image_tar_unpack(const char *tarball, const char *dir, struct err *e);

/* Reads the layer list and image config of an unpacked docker save or OCI
 * layout in dir: *layers (paths, malloc'd, free each and the array), *config
 * (the image config's "config" object, a new reference or NULL), *format. */
int image_layout_read(const char *dir, char ***layers, int *n_layers, json_t **config, const char **format,
		      struct err *e);

/* STORE/NAME-as-a-file-name (see image_store.h). */
void image_dir_of(const char *store, const char *name, char *buf, size_t cap);

#endif
