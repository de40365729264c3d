/* submit.c — `gpunode submit`: queue a task, print its id; with --wait, wait
 * for it to end and exit with its exit code, so a script can treat a task
 * like a local command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "task.h"
#include "util.h"

static const char help[] =
	"Usage: gpunode submit [OPTIONS] [--] COMMAND [ARGS...]\n"
	"Queues COMMAND as a task and prints its id (only the id, so that\n"
	"`id=$(gpunode submit -- CMD)` works).\n"
	"\n"
	"Options:\n"
	"  --gpus N            whole GPUs, 1..16, on one host (default 1)\n"
	"  --milli M           share of one GPU in milli-GPU, 1..1000 (default 1000; < 1000 needs --gpus 1)\n"
	"  --category C        inference | training | finetune | batch (default batch)\n"
	"  --priority P        -1000..1000, higher runs first (default 0)\n"
	"  --min-vram MB       minimum GPU memory in MiB\n"
	"  --model M           allowed GPU model (repeatable; default any)\n"
	"  --env K=V           environment variable for the task (repeatable)\n"
	"  --max-wait SECONDS  expire the task if it is not placed in time (default 0: wait forever)\n"
	"Containers (the docker and oci executors; the process executor ignores them but --timeout):\n"
	"  --image IMG         image to run the command in, e.g. busybox:local\n"
	"  --memory SIZE       memory limit: 512K, 64M, 2G (no swap on top); also counted against the host\n"
	"  --cpus N            CPU limit in cores, e.g. 0.5\n"
	"  --pids N            process limit (default: the executor's, 4096)\n"
	"  --network           give the container a network (default: none, loopback only)\n"
	"  --read-only         read-only root filesystem; the scratch dir (cwd) stays writable\n"
	"  --reuse-warm        may run in this client's warm container of the same image and limits\n"
	"  --timeout DURATION  stop the task after this long (30s, 500ms, 5m, 2h): failure_reason timeout\n"
	"  --wait              wait until the task ends; exit with its exit code\n"
	"  --json              print the task object (with --wait: the final one)\n"
	"Options end at \"--\" or at the first word that is not an option.\n";

struct submit_opts {
	struct cli_int gpus, milli, priority, min_vram, max_wait, pids;
	const char *category, *image, *memory, *cpus, *timeout;
	struct cli_list models, env;
	bool wait, json, network, read_only, reuse_warm;
};

/* "64M" -> MiB (K, M, G, T suffixes, binary; a bare number is bytes),
 * rounded up to whole MiB. -1 when it does not parse or is 0. */
static long long parse_size_mb(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	double mult = 1;
	switch (*end) {
	case 'k': case 'K': mult = 1024.0; end++; break;
	case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
	}
	if (*end == 'i' || *end == 'b' || *end == 'B')
		end += (*end == 'i' && (end[1] == 'B' || end[1] == 'b')) ? 2 : 1;
	if (end == s || *end || !(v > 0) || v * mult > 1e15)
		return -1;
	double mb = v * mult / (1024.0 * 1024);
	long long whole = (long long)mb;
	return whole + (mb > (double)whole);
}

/* "30s", "500ms", "5m", "2h", "30" (seconds) -> seconds; -1 when bad. */
static double parse_duration_s(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || !(v >= 0))
		return -1;
	if (strcmp(end, "ms") == 0)
		return v / 1000;
	if (!*end || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "m") == 0)
		return v * 60;
	if (strcmp(end, "h") == 0)
		return v * 3600;
	return -1;
}

/* "0.5" cores -> 500 milli-CPU; -1 when bad. */
static long long parse_cpus_milli(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v > 0) || v > 1024)
		return -1;
	long long m = (long long)(v * 1000 + 0.5);
	return m > 0 ? m : -1;
}

static void set_int(json_t *req, const char *key, const struct cli_int *v)
{
	if (v->set)
		json_object_set_new(req, key, json_integer(v->value));
}

/* The container options; check_opts has parsed them once already. */
static void add_run_options(json_t *req, const struct submit_opts *o)
{
	if (o->image)
		json_object_set_new(req, "image", json_string(o->image));
	if (o->memory)
		json_object_set_new(req, "memory_mb", json_integer(parse_size_mb(o->memory)));
	if (o->cpus)
		json_object_set_new(req, "cpu_milli", json_integer(parse_cpus_milli(o->cpus)));
	set_int(req, "pids_limit", &o->pids);
	if (o->timeout)
		json_object_set_new(req, "timeout_s", json_real(parse_duration_s(o->timeout)));
	if (o->network)
		json_object_set_new(req, "network", json_true());
	if (o->read_only)
		json_object_set_new(req, "read_only", json_true());
	if (o->reuse_warm)
		json_object_set_new(req, "reuse_warm", json_true());
}

/* The POST /v1/tasks body: only what was given, so the node's defaults apply. */
static json_t *build_request(const struct submit_opts *o, const struct cli_list *command)
{
	json_t *req = json_object();
	json_t *cmd = json_array();
	for (int i = 0; i < command->n; i++)
		json_array_append_new(cmd, json_string(command->items[i]));
	json_object_set_new(req, "command", cmd);
	set_int(req, "gpu_count", &o->gpus);
	set_int(req, "gpu_milli", &o->milli);
	if (o->category)
		json_object_set_new(req, "category", json_string(o->category));
	set_int(req, "priority", &o->priority);
	set_int(req, "min_vram_mb", &o->min_vram);
	if (o->models.n) {
		json_t *models = json_array();
		for (int i = 0; i < o->models.n; i++)
			json_array_append_new(models, json_string(o->models.items[i]));
		json_object_set_new(req, "models", models);
	}
	if (o->env.n) {
		json_t *env = json_object();
		for (int i = 0; i < o->env.n; i++) {
			const char *kv = o->env.items[i], *eq = strchr(kv, '=');
			char *key = strndup(kv, (size_t)(eq - kv));
			json_object_set_new(env, key, json_string(eq + 1));
			free(key);
		}
		json_object_set_new(req, "env", env);
	}
	set_int(req, "max_wait_s", &o->max_wait);
	add_run_options(req, o);
	return req;
}

/* Catches what can be told without the node, as usage errors (exit 2). */
static int check_opts(const struct submit_opts *o)
{
	enum task_category cat;
	if (o->category && task_category_parse(o->category, &cat) < 0)
		return cli_usage_error("submit", "--category: expected inference, training, finetune or batch, got '%s'",
				       o->category);
	if (o->milli.set && o->milli.value < TASK_MILLI_FULL && o->gpus.set && o->gpus.value > 1)
		return cli_usage_error("submit", "--milli below 1000 is for single-GPU tasks (--gpus 1) only");
	for (int i = 0; i < o->env.n; i++) {
		const char *eq = strchr(o->env.items[i], '=');
		if (!eq || eq == o->env.items[i])
			return cli_usage_error("submit", "--env: expected KEY=VALUE, got '%s'", o->env.items[i]);
	}
	if (o->image && !task_image_valid(o->image))
		return cli_usage_error("submit", "--image: '%s' is not an image reference (like busybox:local)", o->image);
	if (o->memory && parse_size_mb(o->memory) < 0)
		return cli_usage_error("submit", "--memory: expected a size like 64M or 2G, got '%s'", o->memory);
	if (o->cpus && parse_cpus_milli(o->cpus) < 0)
		return cli_usage_error("submit", "--cpus: expected a number of cores like 0.5, got '%s'", o->cpus);
	if (o->timeout && parse_duration_s(o->timeout) < 0)
		return cli_usage_error("submit", "--timeout: expected a duration like 30s, 500ms or 5m, got '%s'", o->timeout);
	return CLI_OK;
}

/* Polls the task until it reaches a terminal state; *task gets the last object. */
static int wait_for_end(struct client *c, const char *id, json_t **task, struct err *e)
{
	char *path = cli_task_path(id, "");
	long delay = CLI_POLL_START_MS;
	int rc;
	for (;;) {
		json_t *t;
		rc = client_json(c, "GET", path, NULL, &t, e);
		if (rc < 0)
			break;
		if (cli_state_terminal(json_string_value(json_object_get(t, "state")))) {
			*task = t;
			break;
		}
		json_decref(t);
		cli_poll_sleep(&delay);
	}
	free(path);
	return rc;
}

/* The exit code of `submit --wait`: the task's own, or 1 with the reason. */
static int task_exit_status(json_t *task)
{
	const char *id = json_string_value(json_object_get(task, "id"));
	const char *state = json_string_value(json_object_get(task, "state"));
	json_t *code = json_object_get(task, "exit_code");
	if (json_is_integer(code)) {
		json_int_t v = json_integer_value(code);
		if (v >= 0 && v <= 255)
			return (int)v;
		cli_error("submit", "task %s exited with code %" JSON_INTEGER_FORMAT, id, v);
		return CLI_FAIL;
	}
	if (state && strcmp(state, "succeeded") == 0)
		return CLI_OK;
	/* "task ID cancelled: cancelled: cancelled by admin" reads badly; say the
	 * reason only when it adds to the state. */
	const char *reason = json_string_value(json_object_get(task, "failure_reason"));
	const char *msg = json_string_value(json_object_get(task, "failure_message"));
	bool say_reason = reason && (!state || strcmp(reason, state) != 0);
	cli_error("submit", "task %s %s%s%s%s%s", id, state ? state : "ended", say_reason ? ": " : "",
		  say_reason ? reason : "", msg ? ": " : "", msg ? msg : "");
	return CLI_FAIL;
}

int cli_submit(int argc, char **argv)
{
	struct submit_opts o = {0};
	struct cli_conn conn = {0};
	const struct cli_opt opts[] = {
		{"--gpus", 0, CLI_OPT_INT, &o.gpus, 1, TASK_MAX_GPUS},
		{"--milli", 0, CLI_OPT_INT, &o.milli, 1, TASK_MILLI_FULL},
		{"--category", 0, CLI_OPT_STRING, &o.category, 0, 0},
		{"--priority", 0, CLI_OPT_INT, &o.priority, -1000, 1000},
		{"--min-vram", 0, CLI_OPT_INT, &o.min_vram, 0, INT64_MAX},
		{"--model", 0, CLI_OPT_LIST, &o.models, 0, 0},
		{"--env", 0, CLI_OPT_LIST, &o.env, 0, 0},
		{"--max-wait", 0, CLI_OPT_INT, &o.max_wait, 0, INT64_MAX / 1000},
		{"--image", 0, CLI_OPT_STRING, &o.image, 0, 0},
		{"--memory", 0, CLI_OPT_STRING, &o.memory, 0, 0},
		{"--cpus", 0, CLI_OPT_STRING, &o.cpus, 0, 0},
		{"--pids", 0, CLI_OPT_INT, &o.pids, 1, 1 << 22},
		{"--timeout", 0, CLI_OPT_STRING, &o.timeout, 0, 0},
		{"--network", 0, CLI_OPT_FLAG, &o.network, 0, 0},
		{"--read-only", 0, CLI_OPT_FLAG, &o.read_only, 0, 0},
		{"--reuse-warm", 0, CLI_OPT_FLAG, &o.reuse_warm, 0, 0},
		{"--wait", 0, CLI_OPT_FLAG, &o.wait, 0, 0},
		{"--json", 0, CLI_OPT_FLAG, &o.json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "submit", .help = help, .opts = opts, .conn = &conn,
				    .min_args = 1, .max_args = -1, .args_name = "COMMAND", .args_end_options = true};
	struct cli_list command;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &command, &rc)) {
		free(o.models.items);
		free(o.env.items);
		return rc;
	}
	struct client c = {0};
	json_t *req = NULL, *task = NULL;
	struct err e = {0};
	if ((rc = check_opts(&o)) != CLI_OK)
		goto out;
	if (cli_connect(&conn, &c) < 0) {
		rc = CLI_FAIL;
		goto out;
	}
	req = build_request(&o, &command);
	if (client_json(&c, "POST", "/v1/tasks", req, &task, &e) < 0) {
		rc = cli_fail("submit", &e);
		goto out;
	}
	const char *id = json_string_value(json_object_get(task, "id"));
	if (!id) {
		cli_error("submit", "the node's answer has no task id");
		rc = CLI_FAIL;
		goto out;
	}
	if (!o.json) {
		/* The id first, even with --wait: the caller can follow the logs meanwhile. */
		printf("%s\n", id);
		fflush(stdout);
	}
	if (o.wait) {
		json_t *final = NULL;
		char *id_copy = xstrdup(id);
		int wrc = wait_for_end(&c, id_copy, &final, &e);
		free(id_copy);
		if (wrc < 0) {
			rc = cli_fail("submit", &e);
			goto out;
		}
		json_decref(task);
		task = final;
	}
	if (o.json)
		cli_print_json(task);
	rc = o.wait ? task_exit_status(task) : CLI_OK;
out:
	json_decref(req);
	json_decref(task);
	client_cleanup(&c);
	free(command.items);
	free(o.models.items);
	free(o.env.items);
	return rc;
}
