#include "task_json.h"

#include <string.h>

#include "util.h"

static json_t *json_time_or_null(int64_t ms)
{
	if (ms <= 0)
		return json_null();
	char buf[40];
	format_rfc3339_ms(ms, buf, sizeof buf);
	return json_string(buf);
}

static json_t *json_string_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *json_strv(char *const *v, int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* env is stored as "KEY=VALUE" strings and shown as an object. */
static json_t *json_env(char *const *env, int n)
{
	json_t *o = json_object();
	for (int i = 0; i < n; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq)
			continue;
		char key[256];
		size_t klen = (size_t)(eq - env[i]);
		if (klen >= sizeof key)
			continue;
		memcpy(key, env[i], klen);
		key[klen] = '\0';
		json_object_set_new(o, key, json_string(eq + 1));
	}
	return o;
}

json_t *task_to_json(const struct task *t)
{
	json_t *gpus = json_array();
	for (int i = 0; i < t->n_gpus_assigned; i++)
		json_array_append_new(gpus, json_string(t->gpu_uuids[i]));
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(t->id));
	json_object_set_new(o, "client", json_string(t->client));
	json_object_set_new(o, "category", json_string(task_category_name(t->category)));
	json_object_set_new(o, "priority", json_integer(t->priority));
	json_object_set_new(o, "gpu_count", json_integer(t->res.gpus));
	json_object_set_new(o, "gpu_milli", json_integer(t->res.milli));
	json_object_set_new(o, "min_vram_mb", json_integer(t->res.min_vram_mb));
	json_object_set_new(o, "models", json_strv(t->res.models, t->res.n_models));
	json_object_set_new(o, "command", json_strv(t->argv, t->argc));
	json_object_set_new(o, "env", json_env(t->env, t->n_env));
	json_object_set_new(o, "max_wait_s", json_integer(t->max_wait_ms / 1000));
	task_run_options_to_json(t, o);
	json_object_set_new(o, "timeout_s", json_real((double)t->res.timeout_ms / 1000.0));
	json_object_set_new(o, "state", json_string(task_state_name(t->state)));
	json_object_set_new(o, "attempts", json_integer(t->attempts));
	json_object_set_new(o, "exit_code", t->has_exit_code ? json_integer(t->exit_code) : json_null());
	json_object_set_new(o, "failure_reason", json_string_or_null(t->failure_reason));
	json_object_set_new(o, "failure_message", json_string_or_null(t->failure_message));
	json_object_set_new(o, "host", json_string_or_null(t->host));
	json_object_set_new(o, "gpus", gpus);
	json_object_set_new(o, "executor", json_string_or_null(t->executor));
	json_object_set_new(o, "usage", json_pack("{s:f, s:I}", "cpu_seconds", t->cpu_seconds, "peak_mem_bytes",
						  (json_int_t)t->peak_mem_bytes));
	json_object_set_new(o, "created_at", json_time_or_null(t->created_ms));
	json_object_set_new(o, "assigned_at", json_time_or_null(t->assigned_ms));
	json_object_set_new(o, "started_at", json_time_or_null(t->started_ms));
	json_object_set_new(o, "ended_at", json_time_or_null(t->ended_ms));
	return o;
}

void task_run_options_to_json(const struct task *t, json_t *o)
{
	json_object_set_new(o, "image", json_string_or_null(t->image));
	json_object_set_new(o, "memory_mb", json_integer(t->res.mem_mb));
	json_object_set_new(o, "cpu_milli", json_integer(t->res.cpu_milli));
	json_object_set_new(o, "pids_limit", json_integer(t->pids_limit));
	json_object_set_new(o, "network", json_boolean(t->network));
	json_object_set_new(o, "read_only", json_boolean(t->readonly_rootfs));
	json_object_set_new(o, "reuse_warm", json_boolean(t->reuse_warm));
}

json_t *task_start_spec(const struct task *t)
{
	json_t *argv = json_array(), *env = json_array(), *gpus = json_array();
	for (int i = 0; i < t->argc; i++)
		json_array_append_new(argv, json_string(t->argv[i]));
	for (int i = 0; i < t->n_env; i++)
		json_array_append_new(env, json_string(t->env[i]));
	for (int i = 0; i < t->n_gpus_assigned; i++)
		json_array_append_new(gpus, json_string(t->gpu_uuids[i]));
	json_t *spec = json_pack("{s:s, s:s, s:o, s:o, s:o, s:i, s:i, s:I}", "id", t->id, "client", t->client, "command",
				 argv, "env", env, "gpus", gpus, "gpu_milli", t->res.milli, "attempt", t->attempts,
				 "timeout_ms", (json_int_t)t->res.timeout_ms);
	task_run_options_to_json(t, spec);
	return spec;
}

const char *task_report_apply(struct task *t, json_t *r, const char *fallback)
{
	json_t *cpu = json_object_get(r, "cpu_seconds"), *mem = json_object_get(r, "peak_mem_bytes");
	if (json_is_number(cpu) && json_number_value(cpu) >= 0)
		t->cpu_seconds = json_number_value(cpu);
	if (json_is_integer(mem) && json_integer_value(mem) >= 0)
		t->peak_mem_bytes = json_integer_value(mem);
	const char *reason = json_string_value(json_object_get(r, "failure_reason"));
	return task_failure_reason_known(reason) ? reason : fallback;
}

/* --- request parsing: one small reader per field, each naming the field in
 * its error so the client learns exactly what to fix. --- */

static int read_int(json_t *v, const char *field, long long lo, long long hi, long long *out, struct err *e)
{
	if (!json_is_integer(v))
		return err_set(e, ERR_INVALID, "%s: must be an integer", field);
	long long x = json_integer_value(v);
	if (x < lo || x > hi)
		return err_set(e, ERR_INVALID, "%s: must be %lld..%lld, got %lld", field, lo, hi, x);
	*out = x;
	return 0;
}

static int read_strv(json_t *v, const char *field, bool need_one, char ***out, int *n, struct err *e)
{
	if (!json_is_array(v))
		return err_set(e, ERR_INVALID, "%s: must be an array of strings", field);
	size_t len = json_array_size(v);
	if (need_one && len == 0)
		return err_set(e, ERR_INVALID, "%s: must have at least one element", field);
	if (len > 4096)
		return err_set(e, ERR_INVALID, "%s: too many elements (max 4096)", field);
	for (size_t i = 0; i < len; i++)
		if (!json_is_string(json_array_get(v, i)))
			return err_set(e, ERR_INVALID, "%s[%zu]: must be a string", field, i);
	char **strs = len ? xcalloc(len + 1, sizeof *strs) : NULL;
	for (size_t i = 0; i < len; i++)
		strs[i] = xstrdup(json_string_value(json_array_get(v, i)));
	*out = strs;
	*n = (int)len;
	return 0;
}

static int read_env(json_t *v, char ***out, int *n, struct err *e)
{
	if (!json_is_object(v))
		return err_set(e, ERR_INVALID, "env: must be an object of string values");
	size_t len = json_object_size(v);
	if (len > 4096)
		return err_set(e, ERR_INVALID, "env: too many entries (max 4096)");
	const char *key;
	json_t *val;
	json_object_foreach(v, key, val) {
		if (!json_is_string(val))
			return err_set(e, ERR_INVALID, "env.%s: must be a string", key);
		if (!*key || strchr(key, '='))
			return err_set(e, ERR_INVALID, "env: key \"%s\" must be non-empty and without '='", key);
	}
	char **strs = len ? xcalloc(len + 1, sizeof *strs) : NULL;
	int i = 0;
	json_object_foreach(v, key, val) {
		size_t sz = strlen(key) + strlen(json_string_value(val)) + 2;
		strs[i] = xmalloc(sz);
		snprintf(strs[i], sz, "%s=%s", key, json_string_value(val));
		i++;
	}
	*out = strs;
	*n = i;
	return 0;
}

static int read_bool(json_t *v, const char *field, bool *out, struct err *e)
{
	if (!json_is_boolean(v))
		return err_set(e, ERR_INVALID, "%s: must be true or false", field);
	*out = json_is_true(v);
	return 0;
}

/* Seconds as a number (0.5 allowed), kept in ms. */
static int read_seconds_ms(json_t *v, const char *field, double max_s, int64_t *out, struct err *e)
{
	if (!json_is_number(v))
		return err_set(e, ERR_INVALID, "%s: must be a number of seconds", field);
	double x = json_number_value(v);
	if (!(x >= 0 && x <= max_s))
		return err_set(e, ERR_INVALID, "%s: must be 0..%.0f, got %g", field, max_s, x);
	*out = (int64_t)(x * 1000.0 + 0.5);
	return 0;
}

static int read_image(json_t *v, struct task *t, struct err *e)
{
	if (!json_is_string(v) || !task_image_valid(json_string_value(v)))
		return err_set(e, ERR_INVALID, "image: must be an image reference like \"busybox:local\"");
	free(t->image);
	t->image = xstrdup(json_string_value(v));
	return 0;
}

/* The fields of how it runs (containers); 1 when key was not one of them. */
static int read_run_option(json_t *v, const char *key, struct task *t, struct err *e)
{
	long long x = 0;
	if (strcmp(key, "image") == 0)
		return read_image(v, t, e);
	if (strcmp(key, "network") == 0)
		return read_bool(v, key, &t->network, e);
	if (strcmp(key, "read_only") == 0)
		return read_bool(v, key, &t->readonly_rootfs, e);
	if (strcmp(key, "reuse_warm") == 0)
		return read_bool(v, key, &t->reuse_warm, e);
	if (strcmp(key, "timeout_s") == 0)
		return read_seconds_ms(v, key, 365.0 * 86400, &t->res.timeout_ms, e);
	if (strcmp(key, "memory_mb") == 0) {
		if (read_int(v, key, 0, 1LL << 30, &x, e) < 0)
			return -1;
		t->res.mem_mb = x;
	} else if (strcmp(key, "cpu_milli") == 0) {
		if (read_int(v, key, 0, 1LL << 20, &x, e) < 0)
			return -1;
		t->res.cpu_milli = x;
	} else if (strcmp(key, "pids_limit") == 0) {
		if (read_int(v, key, 0, 1LL << 22, &x, e) < 0)
			return -1;
		t->pids_limit = x;
	} else {
		return 1;
	}
	return 0;
}

static int read_field(json_t *v, const char *key, struct task *t, struct err *e)
{
	long long x = 0;
	int run = read_run_option(v, key, t, e);
	if (run <= 0)
		return run;
	if (strcmp(key, "command") == 0)
		return read_strv(v, "command", true, &t->argv, &t->argc, e);
	if (strcmp(key, "models") == 0)
		return read_strv(v, "models", false, &t->res.models, &t->res.n_models, e);
	if (strcmp(key, "env") == 0)
		return read_env(v, &t->env, &t->n_env, e);
	if (strcmp(key, "category") == 0) {
		if (!json_is_string(v) || task_category_parse(json_string_value(v), &t->category) < 0)
			return err_set(e, ERR_INVALID, "category: must be one of inference, training, finetune, batch");
		return 0;
	}
	if (strcmp(key, "gpu_count") == 0) {
		if (read_int(v, key, 1, TASK_MAX_GPUS, &x, e) < 0)
			return -1;
		t->res.gpus = (int)x;
	} else if (strcmp(key, "gpu_milli") == 0) {
		if (read_int(v, key, 1, TASK_MILLI_FULL, &x, e) < 0)
			return -1;
		t->res.milli = (int)x;
	} else if (strcmp(key, "priority") == 0) {
		if (read_int(v, key, -1000, 1000, &x, e) < 0)
			return -1;
		t->priority = (int)x;
	} else if (strcmp(key, "min_vram_mb") == 0) {
		if (read_int(v, key, 0, 1LL << 40, &x, e) < 0)
			return -1;
		t->res.min_vram_mb = x;
	} else if (strcmp(key, "max_wait_s") == 0) {
		if (read_int(v, key, 0, 365LL * 86400, &x, e) < 0)
			return -1;
		t->max_wait_ms = x * 1000;
	} else {
		return err_set(e, ERR_INVALID, "unknown field \"%s\"", key);
	}
	return 0;
}

int task_from_request(json_t *req, struct task *t, struct err *e)
{
	if (!json_is_object(req))
		return err_set(e, ERR_INVALID, "request body must be a JSON object");
	const char *key;
	json_t *v;
	json_object_foreach(req, key, v) {
		if (read_field(v, key, t, e) < 0)
			return -1;
	}
	if (!json_object_get(req, "command"))
		return err_set(e, ERR_INVALID, "command: required (an array of strings)");
	return task_validate(t, e);
}
