/* metrics.c — the node's /metrics in Prometheus text format (names
 * gpunode_*, base units, counters end in _total), checked by promtool in
 * the tests. */
#include <stdio.h>
#include <string.h>

#include "node.h"
#include "strbuf.h"
#include "util.h"

static void metric_head(struct strbuf *b, const char *name, const char *type, const char *help)
{
	strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct strbuf *b, const char *name, const char *help, uint64_t v)
{
	metric_head(b, name, "counter", help);
	strbuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void task_counters(struct strbuf *b, const struct node_counters *c)
{
	counter(b, "gpunode_tasks_submitted_total", "Tasks accepted (durably committed).", c->submitted);
	counter(b, "gpunode_task_placements_total", "Placements of tasks on GPUs.", c->placed);
	counter(b, "gpunode_tasks_requeued_total", "Tasks put back in the queue (host lost, agent restart).",
		c->requeued);
	counter(b, "gpunode_tasks_expired_total", "Tasks not placed within their max wait.", c->expired);
	counter(b, "gpunode_tasks_cancelled_total", "Tasks cancelled by request.", c->cancelled);
	counter(b, "gpunode_tasks_finished_total", "Tasks that reached a terminal state.", c->finished);
	counter(b, "gpunode_sched_passes_total", "Scheduling passes run (full and arrival-only).", c->sched_passes);
	counter(b, "gpunode_sched_full_passes_total", "Scheduling passes over the whole queue.", c->sched_full_passes);
}

static void queue_gauges(struct strbuf *b, struct node *n)
{
	metric_head(b, "gpunode_queue_tasks", "gauge", "Tasks waiting in the queue, by category.");
	for (int c = 0; c < TASK_CAT_COUNT; c++)
		strbuf_printf(b, "gpunode_queue_tasks{category=\"%s\"} %zu\n", task_category_name((enum task_category)c),
			      queue_len_category(n->queue, (enum task_category)c));
	metric_head(b, "gpunode_active_tasks", "gauge", "Tasks not yet ended, held in memory.");
	strbuf_printf(b, "gpunode_active_tasks %zu\n", n->active.len);
}

static void pool_gauges(struct strbuf *b, struct node *n)
{
	struct pool_totals t;
	pool_totals(n->pool, &t);
	metric_head(b, "gpunode_hosts", "gauge", "Hosts known to the node, by state.");
	strbuf_printf(b, "gpunode_hosts{state=\"online\"} %d\ngpunode_hosts{state=\"offline\"} %d\n", t.hosts_online,
		      t.hosts - t.hosts_online);
	metric_head(b, "gpunode_gpus", "gauge", "GPUs in the pool, by health.");
	strbuf_printf(b, "gpunode_gpus{health=\"healthy\"} %d\ngpunode_gpus{health=\"not_healthy\"} %d\n",
		      t.gpus_healthy, t.gpus - t.gpus_healthy);
	metric_head(b, "gpunode_gpu_capacity_milli", "gauge",
		    "Schedulable GPU capacity in milli-GPU (online, healthy GPUs).");
	strbuf_printf(b, "gpunode_gpu_capacity_milli %lld\n", (long long)t.milli_capacity);
	metric_head(b, "gpunode_gpu_allocated_milli", "gauge", "Allocated GPU capacity in milli-GPU.");
	strbuf_printf(b, "gpunode_gpu_allocated_milli %lld\n", (long long)t.milli_allocated);
	metric_head(b, "gpunode_gpu_allocation_ratio", "gauge", "Share of each GPU allocated to tasks (0..1).");
	for (int i = 0; i < n->pool->n_hosts; i++) {
		struct host *h = n->pool->hosts[i];
		for (int j = 0; j < h->n_gpus; j++)
			strbuf_printf(b, "gpunode_gpu_allocation_ratio{host=\"%s\",uuid=\"%s\",model=\"%s\"} %.3f\n", h->id,
				      h->gpus[j].uuid, h->gpus[j].model, h->gpus[j].milli_alloc / 1000.0);
	}
}

char *node_metrics_text(struct node *n, size_t *len)
{
	struct strbuf b = {0};
	pthread_mutex_lock(&n->mu);
	struct node_counters c = n->counters;
	queue_gauges(&b, n);
	pool_gauges(&b, n);
	pthread_mutex_unlock(&n->mu);
	task_counters(&b, &c);
	return strbuf_take(&b, len);
}
