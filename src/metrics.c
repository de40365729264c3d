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

/* One sample line of a per-GPU gauge, when the value is known (>= 0). */
typedef double (*gpu_value_fn)(const struct gpu *g);

static double gpu_utilization(const struct gpu *g)
{
	return g->status.util_pct >= 0 ? g->status.util_pct / 100.0 : -1;
}
static double gpu_memory_bytes(const struct gpu *g)
{
	return g->status.mem_used_mb >= 0 ? (double)g->status.mem_used_mb * 1024 * 1024 : -1;
}
static double gpu_temperature(const struct gpu *g)
{
	return g->status.temp_c;
}
static double gpu_power(const struct gpu *g)
{
	return g->status.power_w;
}
static double gpu_draining(const struct gpu *g)
{
	return g->draining;
}

static void gpu_gauge(struct strbuf *b, struct node *n, const char *name, const char *help, gpu_value_fn value)
{
	metric_head(b, name, "gauge", help);
	for (int i = 0; i < n->pool->n_hosts; i++) {
		const struct host *h = n->pool->hosts[i];
		for (int j = 0; j < h->n_gpus; j++) {
			double v = value(&h->gpus[j]);
			if (v >= 0)
				strbuf_printf(b, "%s{host=\"%s\",uuid=\"%s\"} %g\n", name, h->id, h->gpus[j].uuid, v);
		}
	}
}

/* Health as a state set (one series per state, 1 for the current one), so
 * that alerts can say `gpunode_gpu_health{state="unhealthy"} == 1`. */
static void gpu_health_gauges(struct strbuf *b, struct node *n)
{
	static const enum gpu_health states[] = {GPU_HEALTHY, GPU_DEGRADED, GPU_UNHEALTHY};
	metric_head(b, "gpunode_gpu_health", "gauge", "GPU health as reported by its agent (1: the current state).");
	for (int i = 0; i < n->pool->n_hosts; i++) {
		const struct host *h = n->pool->hosts[i];
		for (int j = 0; j < h->n_gpus; j++)
			for (size_t k = 0; k < sizeof states / sizeof states[0]; k++)
				strbuf_printf(b, "gpunode_gpu_health{host=\"%s\",uuid=\"%s\",state=\"%s\"} %d\n", h->id,
					      h->gpus[j].uuid, gpu_health_name(states[k]), h->gpus[j].health == states[k]);
	}
	metric_head(b, "gpunode_gpu_xid_errors_total", "counter", "NVIDIA Xid errors seen in the kernel log, by Xid.");
	for (int i = 0; i < n->pool->n_hosts; i++) {
		const struct host *h = n->pool->hosts[i];
		for (int j = 0; j < h->n_gpus; j++)
			for (int k = 0; k < h->gpus[j].status.n_xids; k++)
				strbuf_printf(b, "gpunode_gpu_xid_errors_total{host=\"%s\",uuid=\"%s\",xid=\"%d\"} %lld\n",
					      h->id, h->gpus[j].uuid, h->gpus[j].status.xids[k].xid,
					      (long long)h->gpus[j].status.xids[k].count);
	}
}

static void gpu_gauges(struct strbuf *b, struct node *n)
{
	gpu_health_gauges(b, n);
	gpu_gauge(b, n, "gpunode_gpu_draining", "1 when an operator drained the GPU.", gpu_draining);
	gpu_gauge(b, n, "gpunode_gpu_utilization_ratio", "GPU busy share (0..1), from the driver.", gpu_utilization);
	gpu_gauge(b, n, "gpunode_gpu_memory_used_bytes", "GPU memory in use, from the driver.", gpu_memory_bytes);
	gpu_gauge(b, n, "gpunode_gpu_temperature_celsius", "GPU temperature, from the driver.", gpu_temperature);
	gpu_gauge(b, n, "gpunode_gpu_power_watts", "GPU power draw, from the driver.", gpu_power);
}

char *node_metrics_text(struct node *n, size_t *len)
{
	struct strbuf b = {0};
	pthread_mutex_lock(&n->mu);
	struct node_counters c = n->counters;
	queue_gauges(&b, n);
	pool_gauges(&b, n);
	gpu_gauges(&b, n);
	pthread_mutex_unlock(&n->mu);
	task_counters(&b, &c);
	return strbuf_take(&b, len);
}
