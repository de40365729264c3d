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

#endif
