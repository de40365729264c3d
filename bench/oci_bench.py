#!/usr/bin/env python3
"""oci_bench.py — the timing loops of bench/container_bench_oci.sh, in one
process so that no curl or jq spawn sits inside a measured interval.

  gpus                          number of GPUs in the pool
  bundle BUNDLES DST ROOTFS     copies the bundle the agent writes for such a
                                task into DST (own scratch dir, own cgroup) with
                                the same overlay rootfs over ROOTFS
  starts N BUNDLES RUNTIME ROOT BUNDLE OUT_GPUNODE OUT_BARE
                                N rounds, each one task through gpunode then
                                one bare run, alternating so that a change in
                                the host's load (other work) weighs on both
                                alike; each start waits SETTLE_S first, so that
                                neither overlaps the tail of the one before
                                (the agent reporting, its janitor removing the
                                task's files). Task: ms from just before POST /v1/tasks
                                to the clock read by its first process (busybox
                                adjtimex); the next round starts once its bundle
                                is gone from BUNDLES, as each bare run ends
                                after its delete, so neither measures a
                                teardown. Bare: `RUNTIME run` of the copied
                                bundle, ms from just before the spawn to the
                                same clock read
  throughput N                  N trivial tasks at once: tasks/s from the first
                                submit to the last completion
  report WORK RT OTHER          the flat JSON object
Talks to $GPUNODE_URL with $GPUNODE_TOKEN."""
import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

TERMINAL = {"succeeded", "failed", "cancelled", "lost", "expired"}
TASK = {"command": ["adjtimex"], "image": "busybox:local", "gpu_count": 1, "memory_mb": 64}


class Api:
    def __init__(self):
        u = urllib.parse.urlparse(os.environ["GPUNODE_URL"])
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        self.headers = {"Authorization": "Bearer " + os.environ["GPUNODE_TOKEN"],
                        "Content-Type": "application/json"}

    def call(self, method, path, body=None, raw=False):
        self.conn.request(method, path, json.dumps(body) if body is not None else None, self.headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
        return data.decode() if raw else json.loads(data)

    def submit(self, task):
        return self.call("POST", "/v1/tasks", task)["id"]

    def wait_state(self, tid, states, poll=0.002):
        while True:
            t = self.call("GET", f"/v1/tasks/{tid}")
            if t["state"] in states:
                return t
            time.sleep(poll)


def clock_us(text):
    """adjtimex's output -> microseconds since the epoch."""
    sec = re.search(r"tv_sec:\s*(\d+)", text)
    usec = re.search(r"tv_usec:\s*(\d+)", text)
    if not sec or not usec:
        raise RuntimeError(f"no clock in the task's output: {text[:200]!r}")
    return int(sec.group(1)) * 1_000_000 + int(usec.group(1))


def now_us():
    return time.time_ns() // 1000


def wait_gone(path):
    while os.path.exists(path):
        time.sleep(0.002)


def start_through_gpunode(api, bundles):
    t0 = now_us()
    tid = api.submit(TASK)
    t = api.wait_state(tid, TERMINAL)
    if t["state"] != "succeeded":
        raise RuntimeError(f"task {tid}: {t['state']} {t.get('failure_message')}")
    ms = (clock_us(api.call('GET', f'/v1/tasks/{tid}/logs', raw=True)) - t0) / 1000
    wait_gone(os.path.join(bundles, tid))
    return ms


def start_bare(runtime, root, bundle, name):
    t0 = now_us()
    r = subprocess.run([runtime, "--root", root, "run", "--bundle", bundle, name],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{runtime} run: exit {r.returncode}: {r.stderr[:300]!r}")
    return (clock_us(r.stdout.decode()) - t0) / 1000


SETTLE_S = float(os.environ.get("BENCH_SETTLE_MS", "100")) / 1000


def starts(n, bundles, runtime, root, bundle, out_gpunode, out_bare):
    api = Api()
    with open(out_gpunode, "w") as g, open(out_bare, "w") as b:
        for i in range(n):
            time.sleep(SETTLE_S)
            print(f"{start_through_gpunode(api, bundles):.3f}", file=g)
            time.sleep(SETTLE_S)
            print(f"{start_bare(runtime, root, bundle, f'bare{i}'):.3f}", file=b)


def copy_bundle(bundles, dst, rootfs):
    api = Api()
    tid = api.submit(dict(TASK, command=["sleep", "60"]))
    api.wait_state(tid, {"running"} | TERMINAL)
    with open(os.path.join(bundles, tid, "config.json")) as f:
        spec = json.load(f)
    api.call("POST", f"/v1/tasks/{tid}/cancel")
    wait_gone(os.path.join(bundles, tid))  # its teardown is not to overlap the first measured start
    spec["process"]["args"] = ["adjtimex"]
    spec["linux"]["cgroupsPath"] += "-bare"
    for m in spec["mounts"]:
        if m["destination"] == "/work":
            m["source"] = os.path.join(dst, "scratch")
    for d in ("scratch", "upper", "work", "rootfs"):
        os.makedirs(os.path.join(dst, d))
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(spec, f)
    opts = f"lowerdir={rootfs},upperdir={dst}/upper,workdir={dst}/work"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, os.path.join(dst, "rootfs")], check=True)


def count(api, state):
    return len(api.call("GET", f"/v1/tasks?state={state}&limit=1000")["tasks"])


def throughput(n):
    api = Api()
    t0 = time.monotonic()
    for _ in range(n):
        api.submit({"command": ["true"], "image": "busybox:local", "gpu_count": 1})
    while sum(count(api, s) for s in ("queued", "assigned", "running")):
        time.sleep(0.05)
    t1 = time.monotonic()
    failed = count(api, "failed")
    if failed:
        print(f"container_bench_oci: warning: {failed} of the {n} tasks failed", file=sys.stderr)
    print(f"{n / (t1 - t0):.2f}")


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    i = max(1, -(-p * len(v) // 100))
    return v[int(i) - 1]


def report(work, rt, other):
    def read(name):
        with open(os.path.join(work, name)) as f:
            return [float(x) for x in f.read().split()]

    out = {}

    def add(suffix, gpunode, bare_ms):
        g50, b50 = pct(gpunode, 50), pct(bare_ms, 50)
        out[f"container_start_ms_p50_oci{suffix}"] = g50
        out[f"container_start_ms_p99_oci{suffix}"] = pct(gpunode, 99)
        out[f"container_start_ms_p50_oci_bare{suffix}"] = b50
        out[f"container_start_ms_p99_oci_bare{suffix}"] = pct(bare_ms, 99)
        out[f"container_start_overhead_ratio_oci{suffix}"] = round(g50 / b50, 3)

    add("", read("gpunode.ms"), read("bare.ms"))
    if other:
        add(f"_{other}", read(f"gpunode_{other}.ms"), read(f"bare_{other}.ms"))
    out["e2e_container_tasks_per_s_oci"] = read("tps")[0]
    out["oci_runtime"] = rt
    print(json.dumps(out))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gpus":
        print(len(Api().call("GET", "/v1/gpus")["gpus"]))
    elif cmd == "starts":
        starts(int(args[0]), *args[1:])
    elif cmd == "bundle":
        copy_bundle(*args)
    elif cmd == "throughput":
        throughput(int(args[0]))
    elif cmd == "report":
        report(*args)
    else:
        sys.exit(f"oci_bench.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
