/* Unit tests of the API's task object: strict request parsing with errors
 * that name the field, and the response shape scripts rely on. */
#include <criterion/criterion.h>
#include <string.h>

#include "task_json.h"
#include "util.h"

static int parse(const char *text, struct task **out, struct err *e)
{
	json_error_t je;
	json_t *req = json_loads(text, 0, &je);
	cr_assert_not_null(req, "test JSON broken: %s", je.text);
	*out = task_new();
	int rc = task_from_request(req, *out, e);
	json_decref(req);
	return rc;
}

static void expect_error(const char *text, const char *needle)
{
	struct task *t;
	struct err e;
	cr_assert_eq(parse(text, &t, &e), -1, "accepted: %s", text);
	cr_assert_eq(e.code, ERR_INVALID);
	cr_assert(strstr(e.msg, needle), "for %s the message \"%s\" lacks \"%s\"", text, e.msg, needle);
	task_free(t);
}

Test(task_json, a_full_request_fills_every_field)
{
	struct task *t;
	struct err e;
	cr_assert_eq(parse("{\"command\":[\"sh\",\"-c\",\"exit 3\"],\"gpu_count\":1,\"gpu_milli\":250,"
			   "\"category\":\"inference\",\"priority\":7,\"min_vram_mb\":1024,\"models\":[\"H100-80GB\"],"
			   "\"env\":{\"A\":\"1\"},\"max_wait_s\":30}",
			   &t, &e),
		     0, "%s", e.msg);
	cr_assert_eq(t->argc, 3);
	cr_assert_str_eq(t->argv[2], "exit 3");
	cr_assert_eq(t->res.milli, 250);
	cr_assert_eq(t->category, TASK_CAT_INFERENCE);
	cr_assert_eq(t->priority, 7);
	cr_assert_eq(t->res.min_vram_mb, 1024);
	cr_assert_str_eq(t->res.models[0], "H100-80GB");
	cr_assert_str_eq(t->env[0], "A=1");
	cr_assert_eq(t->max_wait_ms, 30000);
	task_free(t);
}

Test(task_json, bad_requests_say_what_is_wrong)
{
	expect_error("{}", "command");
	expect_error("{\"command\":[]}", "command");
	expect_error("{\"command\":\"echo hi\"}", "command");
	expect_error("{\"command\":[\"x\", 3]}", "command[1]");
	expect_error("{\"command\":[\"x\"],\"gpu_count\":0}", "gpu_count");
	expect_error("{\"command\":[\"x\"],\"gpu_count\":\"1\"}", "gpu_count");
	expect_error("{\"command\":[\"x\"],\"gpu_milli\":1500}", "gpu_milli");
	expect_error("{\"command\":[\"x\"],\"gpu_count\":2,\"gpu_milli\":500}", "gpu_milli");
	expect_error("{\"command\":[\"x\"],\"category\":\"mining\"}", "category");
	expect_error("{\"command\":[\"x\"],\"env\":{\"A\":1}}", "env.A");
	expect_error("{\"command\":[\"x\"],\"env\":{\"A=B\":\"1\"}}", "env");
	expect_error("{\"command\":[\"x\"],\"gpus\":1}", "unknown field \"gpus\"");
	expect_error("[1,2]", "object");
}

Test(task_json, the_response_has_the_contract_fields)
{
	struct task *t;
	struct err e;
	cr_assert_eq(parse("{\"command\":[\"echo\",\"hello\"]}", &t, &e), 0);
	task_id_new(t->id);
	str_copy(t->client, sizeof t->client, "alice");
	t->created_ms = 1795000000123;
	t->state = TASK_SUCCEEDED;
	t->has_exit_code = true;
	t->exit_code = 0;
	t->n_gpus_assigned = 1;
	str_copy(t->gpu_uuids[0], TASK_GPU_UUID_MAX, "GPU-1");
	json_t *o = task_to_json(t);
	cr_assert_str_eq(json_string_value(json_object_get(o, "state")), "succeeded");
	cr_assert_eq(json_integer_value(json_object_get(o, "exit_code")), 0);
	cr_assert(json_is_integer(json_object_get(o, "exit_code")));
	cr_assert(json_is_null(json_object_get(o, "failure_reason")));
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "gpus"), 0)), "GPU-1");
	cr_assert_eq(json_integer_value(json_object_get(o, "gpu_count")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(o, "created_at")), "2026-11-18T11:06:40.123Z");
	cr_assert(json_is_null(json_object_get(o, "ended_at")));
	json_decref(o);
	task_free(t);
}
