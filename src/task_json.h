/* task_json.h — the task object of docs/api.md, both ways. */
#ifndef GPUNODE_TASK_JSON_H
#define GPUNODE_TASK_JSON_H

#include <jansson.h>

#include "err.h"
#include "task.h"

/* The full task object (new reference). */
json_t *task_to_json(const struct task *t);
/* Fills a new task from a POST /v1/tasks body: strict (unknown fields, wrong
 * types and out-of-range values are ERR_INVALID with a message naming the
 * field). Does not set id, client or times. */
int task_from_request(json_t *req, struct task *t, struct err *e);

/* Adds how the task runs (image, limits, network...) to o: shared by the
 * task object and the agent's start command. */
void task_run_options_to_json(const struct task *t, json_t *o);
/* The "task" object of an agent's start command (new reference). */
json_t *task_start_spec(const struct task *t);
/* Takes the usage an agent's exited/start_failed report carries into t and
 * returns its failure_reason when it is a known one, else fallback. */
const char *task_report_apply(struct task *t, json_t *r, const char *fallback);

#endif
