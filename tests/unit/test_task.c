/* Unit tests of the task model: state machine, ids, validation. */
#include <criterion/criterion.h>
#include <string.h>

#include "task.h"
#include "util.h"

Test(task, every_state_has_a_name_that_parses_back)
{
	for (int s = 0; s < TASK_STATE_COUNT; s++) {
		enum task_state out;
		cr_assert_eq(task_state_parse(task_state_name((enum task_state)s), &out), 0);
		cr_assert_eq(out, (enum task_state)s);
	}
	enum task_state out;
	cr_assert_eq(task_state_parse("starting", &out), -1);
	cr_assert_eq(task_state_parse(NULL, &out), -1);
}

Test(task, terminal_states_never_change)
{
	enum task_state terminal[] = {TASK_SUCCEEDED, TASK_FAILED, TASK_CANCELLED, TASK_EXPIRED, TASK_LOST};
	for (size_t i = 0; i < sizeof terminal / sizeof terminal[0]; i++) {
		cr_assert(task_state_terminal(terminal[i]));
		for (int to = 0; to < TASK_STATE_COUNT; to++)
			cr_assert_not(task_transition_legal(terminal[i], (enum task_state)to), "%s -> %s allowed",
				      task_state_name(terminal[i]), task_state_name((enum task_state)to));
	}
}

Test(task, the_lifecycle_edges_are_legal_and_shortcuts_are_not)
{
	cr_assert(task_transition_legal(TASK_QUEUED, TASK_ASSIGNED));
	cr_assert(task_transition_legal(TASK_ASSIGNED, TASK_RUNNING));
	cr_assert(task_transition_legal(TASK_RUNNING, TASK_SUCCEEDED));
	cr_assert(task_transition_legal(TASK_RUNNING, TASK_QUEUED)); /* requeue */
	cr_assert(task_transition_legal(TASK_QUEUED, TASK_EXPIRED));
	cr_assert_not(task_transition_legal(TASK_QUEUED, TASK_RUNNING));
	cr_assert_not(task_transition_legal(TASK_QUEUED, TASK_SUCCEEDED));
	cr_assert_not(task_transition_legal(TASK_RUNNING, TASK_EXPIRED));
	cr_assert_not(task_transition_legal(TASK_RUNNING, TASK_ASSIGNED));
}

Test(task, ids_are_valid_unique_and_sorted_by_creation)
{
	char prev[TASK_ID_LEN + 1] = "";
	for (int i = 0; i < 10000; i++) {
		char id[TASK_ID_LEN + 1];
		task_id_new(id);
		cr_assert(task_id_valid(id), "invalid id %s", id);
		cr_assert_gt(strcmp(id, prev), 0, "%s not after %s", id, prev);
		memcpy(prev, id, sizeof id);
	}
	cr_assert_not(task_id_valid("0193A1B2C3D4000000A1")); /* upper case */
	cr_assert_not(task_id_valid("0193a1b2c3d4000000a"));  /* short */
	cr_assert_not(task_id_valid("../../etc/passwd"));
	cr_assert_not(task_id_valid(NULL));
}

static struct task *valid_task(void)
{
	struct task *t = task_new();
	char *argv[] = {"echo", "hi"};
	t->argv = strv_dup(argv, 2);
	t->argc = 2;
	return t;
}

Test(task, validation_names_the_bad_field)
{
	struct err e;
	struct task *t = valid_task();
	cr_assert_eq(task_validate(t, &e), 0);
	t->res.gpus = 2;
	t->res.milli = 500;
	cr_assert_eq(task_validate(t, &e), -1);
	cr_assert(strstr(e.msg, "gpu_milli"), "message: %s", e.msg);
	t->res.milli = 1000;
	t->res.gpus = 0;
	cr_assert_eq(task_validate(t, &e), -1);
	cr_assert(strstr(e.msg, "gpu_count"), "message: %s", e.msg);
	t->res.gpus = 1;
	t->priority = 5000;
	cr_assert_eq(task_validate(t, &e), -1);
	cr_assert_eq(e.code, ERR_INVALID);
	task_free(t);
}

Test(task, clone_is_deep)
{
	struct task *t = valid_task();
	task_set_failure(t, "nonzero_exit", "exited with code 3");
	struct task *c = task_clone(t);
	cr_assert_neq(c->argv, t->argv);
	cr_assert_str_eq(c->argv[1], "hi");
	cr_assert_str_eq(c->failure_message, "exited with code 3");
	task_free(t);
	cr_assert_str_eq(c->argv[0], "echo");
	task_free(c);
}
