/* image_store_layer.c — applying one untrusted layer tarball to a rootfs.
 *
 * libarchive does the reading (any tar flavour, any compression) and the
 * writing, with its SECURE_* flags refusing "..", absolute names and writes
 * through symlinks, relative to the working directory, which is why the
 * extraction fchdir()s into the rootfs. Names are also cleaned and checked
 * here first, so the error names the bad entry. Whiteouts are a pass of
 * their own before the extraction: an opaque dir hides only what *lower*
 * layers put there, so it must not wipe entries this same layer adds. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_store_fs.h"
#include "image_store_impl.h"

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define PROGRESS_EVERY (16 << 20)

int image_entry_path(const char *in, char *out, size_t cap, struct err *e)
{
	size_t n = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return err_set(e, ERR_INVALID, "entry \"%s\" climbs out of the image (path traversal)", in);
		if (len && !(len == 1 && p[0] == '.')) {
			if (n + len + 2 > cap)
				return err_set(e, ERR_INVALID, "entry name too long: %.80s...", in);
			if (n)
				out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p = end;
	}
	out[n] = 0;
	return 0;
}

static struct archive *open_layer(const char *path, struct err *e)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		err_set(e, ERR_INVALID, "cannot read %s: %s", path, archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Splits a clean path into its directory ("" for the root) and base name. */
static void split_path(const char *path, char *dir, size_t cap, const char **base)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		dir[0] = 0;
		*base = path;
		return;
	}
	snprintf(dir, cap, "%.*s", (int)(slash - path), path);
	*base = slash + 1;
}

/* Removes what a whiteout entry hides: dir/NAME for .wh.NAME, everything in
 * dir for the opaque marker. The dir is resolved inside the rootfs. */
static int apply_whiteout(int rootfs_fd, const char *path, struct err *e)
{
	char dir[4096];
	const char *base;
	split_path(path, dir, sizeof dir, &base);
	int fd = fs_open_dir_in_root(rootfs_fd, dir);
	if (fd < 0)
		return errno == ENOENT ? 0 : err_set(e, ERR_INVALID, "whiteout %s: %s", path, strerror(errno));
	int rc;
	if (strcmp(base, WHITEOUT_OPAQUE) == 0)
		rc = fs_clear_dir_at(fd, ".");
	else
		rc = fs_remove_tree_at(fd, base + strlen(WHITEOUT_PREFIX));
	int saved = errno;
	close(fd);
	if (rc < 0)
		return err_set(e, ERR_INTERNAL, "whiteout %s: %s", path, strerror(saved));
	return 0;
}

static bool is_whiteout(const char *path)
{
	const char *base = strrchr(path, '/');
	return strncmp(base ? base + 1 : path, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0;
}

static int apply_whiteouts(int rootfs_fd, const char *layer_path, const char *what, struct err *e)
{
	struct archive *a = open_layer(layer_path, e);
	if (!a)
		return -1;
	struct archive_entry *ent;
	int rc = 0, r;
	char path[4096];
	while (rc == 0 && (r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		if (image_entry_path(archive_entry_pathname(ent), path, sizeof path, e) < 0)
			rc = -1;
		else if (is_whiteout(path))
			rc = apply_whiteout(rootfs_fd, path, e);
	}
	if (rc == 0 && r != ARCHIVE_EOF)
		rc = err_set(e, ERR_INVALID, "%s: %s", what, archive_error_string(a));
	archive_read_free(a);
	return rc;
}

static struct archive *open_disk_writer(void)
{
	struct archive *w = archive_write_disk_new();
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						  ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM |
						  ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_UNLINK |
						  ARCHIVE_EXTRACT_XATTR);
	return w;
}

/* Copies one entry's data to the disk writer. */
static int copy_data(struct archive *in, struct archive *out, const char *path, int64_t *bytes, struct err *e)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(in, &buf, &size, &off)) == ARCHIVE_OK) {
		if (archive_write_data_block(out, buf, size, off) != ARCHIVE_OK)
			return err_set(e, ERR_INTERNAL, "%s: %s", path, archive_error_string(out));
		*bytes += (int64_t)size;
	}
	return r == ARCHIVE_EOF ? 0 : err_set(e, ERR_INVALID, "%s: %s", path, archive_error_string(in));
}

/* Device nodes in a layer are skipped: a container's /dev is made by the
 * runtime, and a node planted by an image must never reach a host device. */
static bool skip_entry(struct archive_entry *ent, const char *path)
{
	mode_t type = archive_entry_filetype(ent);
	return !*path || is_whiteout(path) || type == AE_IFCHR || type == AE_IFBLK;
}

/* True when a directory on the way to path (inside the rootfs) is a
 * symlink. libarchive's SECURE_SYMLINKS with UNLINK would silently replace
 * such a link by a directory; an image that writes through a link is
 * refused instead, and the error names it. */
static bool parent_is_symlink(int rootfs_fd, const char *path, char *link, size_t cap)
{
	for (const char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		snprintf(link, cap, "%.*s", (int)(p - path), path);
		struct stat st;
		if (fstatat(rootfs_fd, link, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			return true;
	}
	return false;
}

/* Cleans the entry's names in place; a hard link's target too, so it can
 * neither climb out nor link to a file outside the rootfs. */
static int clean_entry(struct archive_entry *ent, char *path, size_t cap, struct err *e)
{
	if (image_entry_path(archive_entry_pathname(ent), path, cap, e) < 0)
		return -1;
	archive_entry_set_pathname(ent, path);
	const char *hard = archive_entry_hardlink(ent);
	if (hard) {
		char target[4096];
		if (image_entry_path(hard, target, sizeof target, e) < 0)
			return -1;
		archive_entry_set_hardlink(ent, target);
	}
	return 0;
}

static int extract_entries(int rootfs_fd, struct archive *in, const char *what, image_progress_fn progress,
			   void *ctx, struct err *e)
{
	struct archive *out = open_disk_writer();
	struct archive_entry *ent;
	int rc = 0, r;
	int64_t bytes = 0, reported = 0;
	char path[4096];
	while (rc == 0 && (r = archive_read_next_header(in, &ent)) == ARCHIVE_OK) {
		if (clean_entry(ent, path, sizeof path, e) < 0) {
			rc = -1;
			break;
		}
		if (skip_entry(ent, path))
			continue;
		char link[4096];
		if (parent_is_symlink(rootfs_fd, path, link, sizeof link)) {
			rc = err_set(e, ERR_INVALID, "%s: entry \"%s\" would be written through the symlink \"%s\" "
						     "(symlink escape)", what, path, link);
			break;
		}
		if (archive_write_header(out, ent) != ARCHIVE_OK) {
			rc = err_set(e, ERR_INVALID, "%s: %s: %s", what, path, archive_error_string(out));
			break;
		}
		if (archive_entry_size(ent) > 0 && copy_data(in, out, path, &bytes, e) < 0)
			rc = -1;
		else if (archive_write_finish_entry(out) != ARCHIVE_OK)
			rc = err_set(e, ERR_INTERNAL, "%s: %s: %s", what, path, archive_error_string(out));
		if (progress && bytes - reported >= PROGRESS_EVERY) {
			progress(ctx, what, bytes);
			reported = bytes;
		}
	}
	if (rc == 0 && r != ARCHIVE_EOF)
		rc = err_set(e, ERR_INVALID, "%s: %s", what, archive_error_string(in));
	archive_write_free(out);
	if (rc == 0 && progress)
		progress(ctx, what, bytes);
	return rc;
}

/* Extracts a tarball's entries with the working directory at dir_fd. */
static int extract_at(int dir_fd, const char *tarball, const char *what, image_progress_fn progress, void *ctx,
		      struct err *e)
{
	struct archive *in = open_layer(tarball, e);
	if (!in)
		return -1;
	int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0 || fchdir(dir_fd) < 0) {
		if (cwd >= 0)
			close(cwd);
		archive_read_free(in);
		return err_set(e, ERR_INTERNAL, "cannot enter the rootfs: %s", strerror(errno));
	}
	int rc = extract_entries(dir_fd, in, what, progress, ctx, e);
	if (fchdir(cwd) < 0 && rc == 0)
		rc = err_set(e, ERR_INTERNAL, "cannot return to the working directory: %s", strerror(errno));
	close(cwd);
	archive_read_free(in);
	return rc;
}

int image_layer_apply(int rootfs_fd, const char *layer_path, const char *what, image_progress_fn progress,
		      void *ctx, struct err *e)
{
	if (apply_whiteouts(rootfs_fd, layer_path, what, e) < 0)
		return -1;
	return extract_at(rootfs_fd, layer_path, what, progress, ctx, e);
}

int image_tar_unpack(const char *tarball, const char *dir, struct err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, ERR_INTERNAL, "cannot open %s: %s", dir, strerror(errno));
	int rc = extract_at(fd, tarball, tarball, NULL, NULL, e);
	close(fd);
	return rc;
}
