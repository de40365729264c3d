/* image.c — `gpunode image import|ls|rm`: the local image store that the
 * oci executor runs tasks from (image_store.h). These work on the agent's
 * files directly, not through the node: an image lives on the GPU host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "image_store.h"
#include "util.h"

static const char help[] =
	"Usage: gpunode image import FILE|DIR --name NAME [OPTIONS]\n"
	"       gpunode image ls [OPTIONS]\n"
	"       gpunode image rm NAME [OPTIONS]\n"
	"The images that `gpunode up --executor oci` and `gpunode agent --executor oci`\n"
	"run tasks in (submit --image NAME). Kept on this host, under the agent's state\n"
	"dir: DATA/agent/images.\n"
	"\n"
	"Sub-commands:\n"
	"  import FILE|DIR  add an image from a `docker save` tarball, an OCI image layout\n"
	"                   (tarball or directory) or a root filesystem directory;\n"
	"                   replaces an image of the same name (not while containers run it)\n"
	"  ls               list the images\n"
	"  rm NAME          remove an image (not while containers run it)\n"
	"\n"
	"Options:\n"
	"  --name NAME   the image's name for `submit --image`, e.g. busybox:local (import)\n"
	"  --data DIR    the node's data dir, as given to `gpunode up --data` (default: as\n"
	"                for every verb: $GPUNODE_DATA, the last `gpunode up`)\n"
	"  --state DIR   the agent's state dir instead, as given to `gpunode agent --state`\n"
	"  --json        print JSON\n";

/* DATA/agent/images, or STATE/images with --state. */
static int store_dir(const char *verb, const char *data, const char *state, char *buf, size_t cap)
{
	char dir[4096];
	if (state && *state) {
		image_store_dir(state, buf, cap);
		return 0;
	}
	struct err e;
	if (client_data_dir(data, dir, sizeof dir, &e) < 0)
		return cli_fail(verb, &e);
	char agent[4200];
	snprintf(agent, sizeof agent, "%s/agent", dir);
	image_store_dir(agent, buf, cap);
	return 0;
}

static json_t *info_json(const struct image_info *i)
{
	char created[40];
	format_rfc3339_ms(i->created_ms, created, sizeof created);
	return json_pack("{s:s, s:s, s:i, s:I, s:s}", "name", i->name, "format", i->format, "layers", i->n_layers,
			 "size_bytes", (json_int_t)i->size_bytes, "created", created);
}

/* Only big layers report (the store calls every 16 MiB and at each layer's
 * end): a small import stays quiet. */
static void show_progress(void *ctx, const char *what, int64_t bytes)
{
	if (bytes < (16 << 20))
		return;
	fprintf(stderr, "gpunode image import: %s: %lld MiB\n", what, (long long)(bytes >> 20));
}

static int image_import_verb(int argc, char **argv)
{
	const char *name = NULL, *data = NULL, *state = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
		{"--name", 0, CLI_OPT_STRING, &name, 0, 0},
		{"--data", 0, CLI_OPT_STRING, &data, 0, 0},
		{"--state", 0, CLI_OPT_STRING, &state, 0, 0},
		{"--json", 0, CLI_OPT_FLAG, &json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "image import", .help = help, .opts = opts, .min_args = 1, .max_args = 1,
				    .args_name = "FILE|DIR"};
	struct cli_list args;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	const char *source = args.items[0];
	free(args.items);
	if (!name)
		return cli_usage_error("image import", "--name NAME is required (e.g. --name busybox:local)");
	char store[4096];
	if ((rc = store_dir("image import", data, state, store, sizeof store)) != 0)
		return rc;
	struct image_info info;
	struct err e;
	if (image_import(store, source, name, show_progress, NULL, &info, &e) < 0)
		return cli_fail("image import", &e);
	if (json) {
		json_t *j = info_json(&info);
		cli_print_json(j);
		json_decref(j);
	} else {
		char size[32];
		printf("%s imported (%s, %d layer%s, %s) into %s\n", info.name, info.format, info.n_layers,
		       info.n_layers == 1 ? "" : "s", cli_format_mib(info.size_bytes >> 20, size, sizeof size), store);
	}
	return CLI_OK;
}

static void print_table(const struct image_info *list, int n)
{
	static const char *const headers[] = {"NAME", "FORMAT", "LAYERS", "SIZE", "IMPORTED", NULL};
	struct cli_table t;
	cli_table_init(&t, headers);
	for (int i = 0; i < n; i++) {
		char layers[16], size[32], created[40], age[32];
		snprintf(layers, sizeof layers, "%d", list[i].n_layers);
		format_rfc3339_ms(list[i].created_ms, created, sizeof created);
		cli_table_add(&t, list[i].name, list[i].format, layers,
			      cli_format_mib(list[i].size_bytes >> 20, size, sizeof size),
			      cli_format_age(created, age, sizeof age));
	}
	cli_table_print(&t);
	cli_table_free(&t);
}

static int image_ls_verb(int argc, char **argv)
{
	const char *data = NULL, *state = NULL;
	bool json = false;
	const struct cli_opt opts[] = {
		{"--data", 0, CLI_OPT_STRING, &data, 0, 0},
		{"--state", 0, CLI_OPT_STRING, &state, 0, 0},
		{"--json", 0, CLI_OPT_FLAG, &json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "image ls", .help = help, .opts = opts, .max_args = 0};
	struct cli_list args;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	free(args.items);
	char store[4096];
	if ((rc = store_dir("image ls", data, state, store, sizeof store)) != 0)
		return rc;
	struct image_info *list;
	int n;
	struct err e;
	if (image_list(store, &list, &n, &e) < 0)
		return cli_fail("image ls", &e);
	if (json) {
		json_t *arr = json_array();
		for (int i = 0; i < n; i++)
			json_array_append_new(arr, info_json(&list[i]));
		json_t *j = json_pack("{s:o}", "images", arr);
		cli_print_json(j);
		json_decref(j);
	} else {
		print_table(list, n);
	}
	free(list);
	return CLI_OK;
}

static int image_rm_verb(int argc, char **argv)
{
	const char *data = NULL, *state = NULL;
	const struct cli_opt opts[] = {
		{"--data", 0, CLI_OPT_STRING, &data, 0, 0},
		{"--state", 0, CLI_OPT_STRING, &state, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "image rm", .help = help, .opts = opts, .min_args = 1, .max_args = 1,
				    .args_name = "NAME"};
	struct cli_list args;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	char store[4096];
	if ((rc = store_dir("image rm", data, state, store, sizeof store)) != 0) {
		free(args.items);
		return rc;
	}
	struct err e;
	rc = image_remove(store, args.items[0], &e) < 0 ? cli_fail("image rm", &e) : CLI_OK;
	free(args.items);
	return rc;
}

static const struct cli_verb image_subverbs[] = {
	{"import", image_import_verb, "add an image from a docker save / OCI tarball or a directory"},
	{"ls", image_ls_verb, "list the images"},
	{"rm", image_rm_verb, "remove an image"},
	{NULL, NULL, NULL},
};

int cli_image(int argc, char **argv)
{
	int rc;
	if (cli_dispatch_subverb("image", image_subverbs, argc, argv, &rc))
		return rc;
	const struct cli_cmd cmd = {.verb = "image", .help = help, .max_args = 0};
	struct cli_list args;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	free(args.items);
	return cli_usage_error("image", "which one: import, ls or rm?");
}
