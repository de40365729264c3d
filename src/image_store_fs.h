/* image_store_fs.h — file-tree helpers the image store and the OCI backend
 * share: removal that never follows a symlink out of the tree, and opening
 * a path strictly inside a root (for whiteouts in untrusted layers). */
#ifndef GPUNODE_IMAGE_STORE_FS_H
#define GPUNODE_IMAGE_STORE_FS_H

#include <stdint.h>

#include "err.h"

/* rm -rf of dirfd/name: symlinks are removed, never followed; a missing
 * name is success. Returns 0 or -1 with errno set. */
int fs_remove_tree_at(int at, const char *name);
/* rm -rf path (same rules). */
int fs_remove_tree(const char *path);
/* Removes everything inside the directory dirfd/name, keeping it. */
int fs_clear_dir_at(int at, const char *name);

/* Opens the directory rel (relative, already checked for "..") resolved
 * inside root_fd: symlinks on the way are followed as if root_fd were "/"
 * (openat2 RESOLVE_IN_ROOT), so nothing outside can be reached. -1, errno. */
int fs_open_dir_in_root(int root_fd, const char *rel);

/* Bytes in regular files under path (du-like, no symlinks followed). */
int64_t fs_tree_bytes(const char *path);

/* Makes dir and its missing parents (mode 0755). */
int fs_mkdir_p(const char *dir, struct err *e);

#endif
