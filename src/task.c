#include "task.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

static const char *const state_names[TASK_STATE_COUNT] = {
	"queued", "assigned", "running", "succeeded", "failed", "cancelled", "expired", "lost",
};

static const char *const category_names[TASK_CAT_COUNT] = {
	"inference", "training", "finetune", "batch",
};

const char *task_state_name(enum task_state s)
{
	return (unsigned)s < TASK_STATE_COUNT ? state_names[s] : "unknown";
}

int task_state_parse(const char *name, enum task_state *out)
{
	for (int i = 0; i < TASK_STATE_COUNT; i++)
		if (name && strcmp(name, state_names[i]) == 0) {
			*out = (enum task_state)i;
			return 0;
		}
	return -1;
}

const char *task_category_name(enum task_category c)
{
	return (unsigned)c < TASK_CAT_COUNT ? category_names[c] : "unknown";
}

int task_category_parse(const char *name, enum task_category *out)
{
	for (int i = 0; i < TASK_CAT_COUNT; i++)
		if (name && strcmp(name, category_names[i]) == 0) {
			*out = (enum task_category)i;
			return 0;
		}
	return -1;
}

bool task_state_terminal(enum task_state s)
{
	return s == TASK_SUCCEEDED || s == TASK_FAILED || s == TASK_CANCELLED || s == TASK_EXPIRED ||
	       s == TASK_LOST;
}

bool task_transition_legal(enum task_state from, enum task_state to)
{
	switch (from) {
	case TASK_QUEUED:
		return to == TASK_ASSIGNED || to == TASK_CANCELLED || to == TASK_EXPIRED;
	case TASK_ASSIGNED:
		/* assigned -> failed: the agent could not start it (start_failed). */
		return to == TASK_RUNNING || to == TASK_FAILED || to == TASK_CANCELLED || to == TASK_QUEUED ||
		       to == TASK_LOST || to == TASK_SUCCEEDED;
	case TASK_RUNNING:
		return to == TASK_SUCCEEDED || to == TASK_FAILED || to == TASK_CANCELLED || to == TASK_QUEUED ||
		       to == TASK_LOST;
	default:
		return false; /* terminal states never change */
	}
}

/* Ids sort by creation time: 12 hex digits of milliseconds, then 8 hex digits
 * of a per-process counter seeded at random (unique within a millisecond and
 * across restarts with overwhelming probability). */
void task_id_new(char id[TASK_ID_LEN + 1])
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static uint32_t counter;
	static bool seeded;
	pthread_mutex_lock(&mu);
	if (!seeded) {
		if (getrandom(&counter, sizeof counter, 0) != (ssize_t)sizeof counter)
			counter = (uint32_t)mono_ns();
		seeded = true;
	}
	uint32_t c = counter++;
	pthread_mutex_unlock(&mu);
	snprintf(id, TASK_ID_LEN + 1, "%012llx%08x", (unsigned long long)now_ms() & 0xffffffffffffULL, c);
}

bool task_id_valid(const char *s)
{
	if (!s || strlen(s) != TASK_ID_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int task_validate(const struct task *t, struct err *e)
{
	const struct task_resources *r = &t->res;
	if (t->argc < 1 || !t->argv || !t->argv[0] || !t->argv[0][0])
		return err_set(e, ERR_INVALID, "command: must have at least one non-empty word");
	if (r->gpus < 1 || r->gpus > TASK_MAX_GPUS)
		return err_set(e, ERR_INVALID, "gpu_count: must be 1..%d, got %d", TASK_MAX_GPUS, r->gpus);
	if (r->milli < 1 || r->milli > TASK_MILLI_FULL)
		return err_set(e, ERR_INVALID, "gpu_milli: must be 1..1000, got %d", r->milli);
	if (r->gpus > 1 && r->milli != TASK_MILLI_FULL)
		return err_set(e, ERR_INVALID, "gpu_milli: fractional shares are for single-GPU tasks only");
	if (r->min_vram_mb < 0)
		return err_set(e, ERR_INVALID, "min_vram_mb: must be >= 0");
	if (t->priority < -1000 || t->priority > 1000)
		return err_set(e, ERR_INVALID, "priority: must be -1000..1000, got %d", t->priority);
	if ((unsigned)t->category >= TASK_CAT_COUNT)
		return err_set(e, ERR_INVALID, "category: unknown");
	if (t->max_wait_ms < 0)
		return err_set(e, ERR_INVALID, "max_wait_s: must be >= 0");
	if (t->res.timeout_ms < 0)
		return err_set(e, ERR_INVALID, "timeout_s: must be >= 0");
	if (t->pids_limit < 0)
		return err_set(e, ERR_INVALID, "pids_limit: must be >= 0");
	if (r->mem_mb < 0 || r->cpu_milli < 0)
		return err_set(e, ERR_INVALID, "memory_mb, cpu_milli: must be >= 0");
	if (t->image && !task_image_valid(t->image))
		return err_set(e, ERR_INVALID, "image: \"%s\" is not an image reference (letters, digits, ._:/@-)",
			       t->image);
	for (int i = 0; i < t->n_env; i++) {
		const char *eq = strchr(t->env[i], '=');
		if (!eq || eq == t->env[i])
			return err_set(e, ERR_INVALID, "env: entry %d is not KEY=VALUE", i);
	}
	return 0;
}

struct task *task_new(void)
{
	struct task *t = xcalloc(1, sizeof *t);
	t->category = TASK_CAT_BATCH;
	t->res.gpus = 1;
	t->res.milli = TASK_MILLI_FULL;
	return t;
}

struct task *task_clone(const struct task *t)
{
	struct task *c = xmalloc(sizeof *c);
	*c = *t;
	c->argv = strv_dup(t->argv, t->argc);
	c->env = strv_dup(t->env, t->n_env);
	c->res.models = strv_dup(t->res.models, t->res.n_models);
	c->image = xstrdup(t->image);
	c->failure_reason = xstrdup(t->failure_reason);
	c->failure_message = xstrdup(t->failure_message);
	c->queue_slot = NULL;
	return c;
}

void task_free(struct task *t)
{
	if (!t)
		return;
	strv_free(t->argv, t->argc);
	strv_free(t->env, t->n_env);
	strv_free(t->res.models, t->res.n_models);
	free(t->image);
	free(t->failure_reason);
	free(t->failure_message);
	free(t);
}

void task_set_failure(struct task *t, const char *reason, const char *message)
{
	free(t->failure_reason);
	free(t->failure_message);
	t->failure_reason = xstrdup(reason);
	t->failure_message = xstrdup(message);
}

bool task_failure_reason_known(const char *reason)
{
	static const char *const known[] = {"nonzero_exit", "cancelled", "expired", "lost", "start_failed",
					    "oom", "timeout", "image_not_found"};
	for (size_t i = 0; reason && i < sizeof known / sizeof known[0]; i++)
		if (strcmp(reason, known[i]) == 0)
			return true;
	return false;
}

bool task_image_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 255 || s[0] == '-')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@-") == n;
}
