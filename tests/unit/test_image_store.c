/* Unit tests of the image store: real `docker save` and OCI-layout
 * tarballs made by tests/images/make_busybox_images.sh (busybox-static, two
 * layers with whiteouts), and hostile layers written here with libarchive:
 * path traversal, symlink escapes, hard links out, whiteouts through links. */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_store.h"
#include "image_store_impl.h"
#include "util.h"

static char dir[64], store[128], images[128];

static void setup(void)
{
	strcpy(dir, "/tmp/gpunode-images-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(store, sizeof store, "%s/store", dir);
	snprintf(images, sizeof images, "%s/src", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(images, .init = setup, .fini = teardown);

static void make_busybox_images(void)
{
	const char *src = getenv("GPUNODE_SRC");
	cr_assert_not_null(src, "GPUNODE_SRC must name the source tree (meson sets it)");
	char cmd[512];
	snprintf(cmd, sizeof cmd, "%s/tests/images/make_busybox_images.sh %s", src, images);
	cr_assert_eq(system(cmd), 0, "make_busybox_images.sh failed");
}

static bool exists_in(const char *root, const char *rel)
{
	char path[8192];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", root, rel);
	return lstat(path, &st) == 0;
}

static void check_busybox_rootfs(const char *name, bool whiteouts_applied)
{
	struct image img;
	struct err e;
	cr_assert_eq(image_load(store, name, &img, &e), 0, "%s", e.msg);
	cr_assert(exists_in(img.rootfs, "bin/busybox"));
	char link[64] = "";
	char path[4200];
	snprintf(path, sizeof path, "%s/bin/sh", img.rootfs);
	cr_assert_gt(readlink(path, link, sizeof link - 1), 0);
	cr_assert_str_eq(link, "busybox", "applet links stay relative");
	if (whiteouts_applied) {
		cr_assert_not(exists_in(img.rootfs, "bin/vi"), ".wh.vi removed the lower layer's file");
		cr_assert_not(exists_in(img.rootfs, "etc/opq/gone"), "opaque dir hid the lower layer's file");
		cr_assert(exists_in(img.rootfs, "etc/opq/kept"), "opaque dir kept its own layer's file");
		cr_assert(exists_in(img.rootfs, "etc/layer2"));
		cr_assert_not(exists_in(img.rootfs, "bin/.wh.vi"), "whiteout markers are not files of the image");
		cr_assert_str_eq(img.env[1], "IMAGE_VAR=from-image");
		cr_assert_str_eq(img.workdir, "/root");
	}
	image_free(&img);
}

Test(images, imports_docker_save_tarball_with_whiteouts)
{
	make_busybox_images();
	char tar[256];
	snprintf(tar, sizeof tar, "%s/docker-save.tar", images);
	struct image_info info;
	struct err e;
	cr_assert_eq(image_import(store, tar, "busybox:local", NULL, NULL, &info, &e), 0, "%s", e.msg);
	cr_assert_str_eq(info.format, "docker-save");
	cr_assert_eq(info.n_layers, 2);
	cr_assert_gt(info.size_bytes, 500000, "busybox is in the rootfs");
	check_busybox_rootfs("busybox:local", true);
}

Test(images, imports_oci_layout_tarball_gzipped_layers)
{
	make_busybox_images();
	char tar[256];
	snprintf(tar, sizeof tar, "%s/oci-layout.tar", images);
	struct image_info info;
	struct err e;
	cr_assert_eq(image_import(store, tar, "library/busybox:oci", NULL, NULL, &info, &e), 0, "%s", e.msg);
	cr_assert_str_eq(info.format, "oci-layout");
	check_busybox_rootfs("library/busybox:oci", true);
}

Test(images, imports_rootfs_dir_and_lists_and_removes)
{
	make_busybox_images();
	char src[256];
	snprintf(src, sizeof src, "%s/rootfs", images);
	struct err e;
	cr_assert_eq(image_import(store, src, "bb:dir", NULL, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(image_import(store, src, "aa:dir", NULL, NULL, NULL, &e), 0, "%s", e.msg);
	check_busybox_rootfs("bb:dir", false);
	struct image_info *list;
	int n;
	cr_assert_eq(image_list(store, &list, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(list[0].name, "aa:dir");
	cr_assert_str_eq(list[1].format, "rootfs-dir");
	free(list);
	cr_assert_eq(image_remove(store, "aa:dir", &e), 0, "%s", e.msg);
	cr_assert_eq(image_remove(store, "aa:dir", &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND);
	struct image img;
	cr_assert_eq(image_load(store, "aa:dir", &img, &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND);
	cr_assert_not_null(strstr(e.msg, "not found"));
}

Test(images, bad_names_are_refused)
{
	const char *bad[] = {"", "../x", "a..b", "-x", "a b", "a,b", "a+b", "a@b", "/abs"};
	struct err e;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		cr_assert_eq(image_name_check(bad[i], &e), -1, "\"%s\" accepted", bad[i]);
	cr_assert_eq(image_name_check("registry.example/ns/busybox:1.36", &e), 0, "%s", e.msg);
}

Test(images, entry_paths_are_cleaned_and_traversal_refused)
{
	char out[64];
	struct err e;
	cr_assert_eq(image_entry_path("./a//b/", out, sizeof out, &e), 0);
	cr_assert_str_eq(out, "a/b");
	cr_assert_eq(image_entry_path("/etc/passwd", out, sizeof out, &e), 0);
	cr_assert_str_eq(out, "etc/passwd");
	cr_assert_eq(image_entry_path("./", out, sizeof out, &e), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(image_entry_path("a/../../b", out, sizeof out, &e), -1);
	cr_assert_not_null(strstr(e.msg, "traversal"));
	cr_assert_eq(image_entry_path("..", out, sizeof out, &e), -1);
	cr_assert_eq(image_entry_path("a/..b/c", out, sizeof out, &e), 0, "..b is a name, not a climb");
}

/* --- hostile layers ---------------------------------------------------- */

struct entry {
	const char *path;
	char type;          /* 'f' file, 'd' dir, 'l' symlink, 'h' hard link */
	const char *target; /* data for files, target for links */
};

static void write_layer(const char *path, const struct entry *ents, int n)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	cr_assert_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (int i = 0; i < n; i++) {
		struct archive_entry *ent = archive_entry_new();
		archive_entry_set_pathname(ent, ents[i].path);
		archive_entry_set_perm(ent, 0755);
		switch (ents[i].type) {
		case 'd':
			archive_entry_set_filetype(ent, AE_IFDIR);
			break;
		case 'l':
			archive_entry_set_filetype(ent, AE_IFLNK);
			archive_entry_set_symlink(ent, ents[i].target);
			break;
		case 'h':
			archive_entry_set_filetype(ent, AE_IFREG);
			archive_entry_set_hardlink(ent, ents[i].target);
			break;
		default:
			archive_entry_set_filetype(ent, AE_IFREG);
			archive_entry_set_size(ent, (la_int64_t)strlen(ents[i].target));
		}
		cr_assert_eq(archive_write_header(a, ent), ARCHIVE_OK, "%s", archive_error_string(a));
		if (ents[i].type == 'f')
			archive_write_data(a, ents[i].target, strlen(ents[i].target));
		archive_entry_free(ent);
	}
	archive_write_free(a);
}

/* A docker-save dir (the importer takes unpacked layouts too) of one or two
 * layers. */
static void write_docker_save(const char *layout, const struct entry *l1, int n1, const struct entry *l2, int n2)
{
	char path[256];
	cr_assert_eq(mkdir(layout, 0755), 0);
	snprintf(path, sizeof path, "%s/l1.tar", layout);
	write_layer(path, l1, n1);
	if (l2) {
		snprintf(path, sizeof path, "%s/l2.tar", layout);
		write_layer(path, l2, n2);
	}
	snprintf(path, sizeof path, "%s/manifest.json", layout);
	FILE *f = fopen(path, "w");
	fprintf(f, "[{\"Layers\":[\"l1.tar\"%s]}]", l2 ? ",\"l2.tar\"" : "");
	fclose(f);
}

static char outside[160];

static void make_outside_dir(void)
{
	snprintf(outside, sizeof outside, "%s/outside", dir);
	cr_assert_eq(mkdir(outside, 0755), 0);
	char path[256];
	snprintf(path, sizeof path, "%s/victim", outside);
	FILE *f = fopen(path, "w");
	fputs("precious", f);
	fclose(f);
}

static void assert_outside_untouched(void)
{
	char path[256];
	snprintf(path, sizeof path, "%s/victim", outside);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "a file outside the image was removed");
	char buf[32] = "";
	cr_assert_not_null(fgets(buf, sizeof buf, f));
	fclose(f);
	cr_assert_str_eq(buf, "precious");
	snprintf(path, sizeof path, "%s/pwned", outside);
	cr_assert_neq(access(path, F_OK), 0, "a file was written outside the image");
}

static void import_must_fail(const char *layout, const char *why)
{
	struct err e;
	cr_assert_eq(image_import(store, layout, "evil:1", NULL, NULL, NULL, &e), -1, "%s imported", why);
	cr_assert_neq(e.msg[0], 0);
	struct image img;
	cr_assert_eq(image_load(store, "evil:1", &img, &e), -1, "nothing is installed after a failed import");
}

Test(images, refuses_dotdot_entries)
{
	make_outside_dir();
	char layout[256];
	snprintf(layout, sizeof layout, "%s/l", dir);
	const struct entry l1[] = {{"bin/ok", 'f', "x"}, {"../outside/pwned", 'f', "x"}};
	write_docker_save(layout, l1, 2, NULL, 0);
	import_must_fail(layout, "a ../ entry");
	assert_outside_untouched();
}

Test(images, refuses_writes_through_a_symlink)
{
	make_outside_dir();
	char layout[256];
	snprintf(layout, sizeof layout, "%s/l", dir);
	/* Layer 1 plants link -> the outside dir; layer 2 writes through it. */
	const struct entry l1[] = {{"link", 'l', outside}};
	const struct entry l2[] = {{"link/pwned", 'f', "x"}};
	write_docker_save(layout, l1, 1, l2, 1);
	import_must_fail(layout, "a write through a symlink");
	assert_outside_untouched();
}

Test(images, refuses_hard_links_out)
{
	make_outside_dir();
	char layout[256], target[256];
	snprintf(layout, sizeof layout, "%s/l", dir);
	snprintf(target, sizeof target, "../../outside/victim");
	const struct entry l1[] = {{"stolen", 'h', target}};
	write_docker_save(layout, l1, 1, NULL, 0);
	import_must_fail(layout, "a hard link out of the image");
	assert_outside_untouched();
}

Test(images, whiteouts_through_symlinks_stay_inside)
{
	make_outside_dir();
	char layout[256];
	snprintf(layout, sizeof layout, "%s/l", dir);
	/* link points at the outside dir by absolute path; inside the rootfs it
	 * resolves to ROOTFS/<outside>, which does not exist: nothing happens. */
	const struct entry l1[] = {{"link", 'l', outside}, {"file", 'f', "x"}};
	const struct entry l2[] = {{"link/.wh.victim", 'f', ""}, {"link/.wh..wh..opq", 'f', ""}};
	write_docker_save(layout, l1, 2, l2, 2);
	struct err e;
	cr_assert_eq(image_import(store, layout, "wh:1", NULL, NULL, NULL, &e), 0, "%s", e.msg);
	assert_outside_untouched();
}

Test(images, failed_reimport_keeps_the_previous_image)
{
	char layout[256], bad[256];
	snprintf(layout, sizeof layout, "%s/good", dir);
	snprintf(bad, sizeof bad, "%s/bad", dir);
	const struct entry good[] = {{"hello", 'f', "v1"}};
	write_docker_save(layout, good, 1, NULL, 0);
	struct err e;
	cr_assert_eq(image_import(store, layout, "app:1", NULL, NULL, NULL, &e), 0, "%s", e.msg);
	const struct entry evil[] = {{"../x", 'f', "v2"}};
	write_docker_save(bad, evil, 1, NULL, 0);
	cr_assert_eq(image_import(store, bad, "app:1", NULL, NULL, NULL, &e), -1);
	struct image img;
	cr_assert_eq(image_load(store, "app:1", &img, &e), 0, "%s", e.msg);
	cr_assert(exists_in(img.rootfs, "hello"));
	image_free(&img);
}

Test(images, not_an_image_is_a_clear_error)
{
	char path[256];
	snprintf(path, sizeof path, "%s/junk.tar", dir);
	FILE *f = fopen(path, "w");
	fputs("this is not a tarball", f);
	fclose(f);
	struct err e;
	cr_assert_eq(image_import(store, path, "junk:1", NULL, NULL, NULL, &e), -1);
	cr_assert_not_null(strstr(e.msg, "junk.tar"), "%s", e.msg);
	snprintf(path, sizeof path, "%s/missing.tar", dir);
	cr_assert_eq(image_import(store, path, "junk:1", NULL, NULL, NULL, &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND);
}

/* --- hostile manifests ---------------------------------------------------- */

static void write_text_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void make_oci_layout(const char *layout, const char *index)
{
	char path[256];
	cr_assert_eq(mkdir(layout, 0755), 0);
	snprintf(path, sizeof path, "%s/oci-layout", layout);
	write_text_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}");
	snprintf(path, sizeof path, "%s/index.json", layout);
	write_text_file(path, index);
}

Test(images, oci_digests_must_be_sha256_hex)
{
	make_outside_dir();
	char layout[256];
	snprintf(layout, sizeof layout, "%s/l", dir);
	/* A digest that would name a path outside blobs/ if it were trusted. */
	make_oci_layout(layout, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:../../outside/victim\"}]}");
	struct err e;
	cr_assert_eq(image_import(store, layout, "evil:1", NULL, NULL, NULL, &e), -1);
	cr_assert_not_null(strstr(e.msg, "digest"), "%s", e.msg);
	assert_outside_untouched();
}

Test(images, malformed_manifests_are_clear_errors)
{
	const char *cases[][2] = {
		{"[]", "exactly one image"},
		{"[{\"Layers\":\"l1.tar\"}]", "exactly one image"},
		{"[{\"Layers\":[\"../l1.tar\"]}]", "traversal"},
		{"[{\"Layers\":[]}]", "no layers"},
		{"{not json", "manifest.json"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char layout[256], path[300];
		snprintf(layout, sizeof layout, "%s/m%zu", dir, i);
		cr_assert_eq(mkdir(layout, 0755), 0);
		snprintf(path, sizeof path, "%s/manifest.json", layout);
		write_text_file(path, cases[i][0]);
		struct err e;
		cr_assert_eq(image_import(store, layout, "bad:1", NULL, NULL, NULL, &e), -1, "%s imported", cases[i][0]);
		cr_assert_not_null(strstr(e.msg, cases[i][1]), "%s: %s", cases[i][0], e.msg);
	}
	char layout[256];
	snprintf(layout, sizeof layout, "%s/empty-index", dir);
	make_oci_layout(layout, "{\"schemaVersion\":2,\"manifests\":[]}");
	struct err e;
	cr_assert_eq(image_import(store, layout, "bad:1", NULL, NULL, NULL, &e), -1);
	cr_assert_not_null(strstr(e.msg, "no manifest"), "%s", e.msg);
}
