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
	json_object_set_new(o, "state", json_string(task_state_name(t->state)));
	json_object_set_new(o, "attempts", json_integer(t->attempts));
	json_object_set_new(o, "exit_code", t->has_exit_code ? json_integer(t->exit_code) : json_null());
	json_object_set_new(o, "failure_reason", json_string_or_null(t->failure_reason));
	json_object_set_new(o, "failure_message", json_string_or_null(t->failure_message));
	json_object_set_new(o, "host", json_string_or_null(t->host));
	json_object_set_new(o, "gpus", gpus);
	json_object_set_new(o, "executor", json_string_or_null(t->executor));
	json_object_set_new(o, "created_at", json_time_or_null(t->created_ms));
	json_object_set_new(o, "assigned_at", json_time_or_null(t->assigned_ms));
	json_object_set_new(o, "started_at", json_time_or_null(t->started_ms));
	json_object_set_new(o, "ended_at", json_time_or_null(t->ended_ms));
	return o;
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

static int read_field(json_t *v, const char *key, struct task *t, struct err *e)
{
	long long x = 0;
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
