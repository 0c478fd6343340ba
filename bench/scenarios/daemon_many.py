"""Scenario 12: 8 different models through one `haul serve` at once."""
import os
import statistics
import threading
import time

from harness import GIB, MB, WORK, fresh_start
from models import fleet_models
from peers import api_pull, start_daemon, stop_daemon


def daemon_round(ng, names):
    """One `haul serve`, one streaming /api/pull client per model name, all
    started together: the wall time until the last success, and per client
    when it finished and the longest stretch its progress stood still."""
    models = os.path.join(WORK, "models")
    fresh_start()
    d, port = start_daemon(models)
    clients = [{"done": {}, "moves": [], "ok": False} for _ in names]

    def client(c, name):
        def record(t, o):
            if "completed" in o and o.get("digest"):
                if o["completed"] > c["done"].get(o["digest"], 0):
                    c["done"][o["digest"]] = o["completed"]
                    c["moves"].append(t)
            if o.get("status") == "success":
                c["ok"], c["end"] = True, t
        api_pull(port, "127.0.0.1:%d/%s" % (ng.registry, name), record)

    threads = [threading.Thread(target=client, args=(c, n)) for c, n in zip(clients, names)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    cpu, rss = stop_daemon(d)
    if not all(c["ok"] for c in clients):
        raise SystemExit("a pull through the daemon failed")
    return {"wall": wall, "cpu": cpu, "rss": rss,
            "longest_still_s": [max([b - a for a, b in zip(c["moves"], c["moves"][1:])] or [0]) for c in clients],
            "finished_s": [c["end"] - start for c in clients]}


def daemon_many(ng, fleet, big_size, runs):
    """Eight different models through one `haul serve` at once, one client
    each, against one pull of as many bytes through the daemon, in
    alternating order: the median of the paired throughput ratios, how long
    each client's progress stood still at most, how far apart the clients
    finished."""
    total = sum(l["size"] for m in fleet for l in m["layers"]) + sum(m["config"]["size"] for m in fleet)
    names = ["library/fleet%d" % i for i in range(len(fleet))]
    rows = []
    for i in range(runs):
        pair = {}
        for kind in (["one", "eight"] if i % 2 == 0 else ["eight", "one"]):
            pair[kind] = daemon_round(ng, ["library/big"] if kind == "one" else names)
        rows.append(pair)
    ratios = [(total / r["eight"]["wall"]) / (big_size / r["one"]["wall"]) for r in rows]
    eight = [r["eight"] for r in rows]
    return {"models": len(fleet), "bytes": total, "runs": runs, "ratios": ratios, "ratio": statistics.median(ratios),
            "one_mbps_median": statistics.median(big_size / r["one"]["wall"] / MB for r in rows),
            "eight_mbps_median": statistics.median(total / r["wall"] / MB for r in eight),
            "cpu_per_gib": min(r["cpu"] for r in eight) / (total / GIB), "rss_mib": max(r["rss"] for r in eight),
            "longest_still_s": max(max(r["longest_still_s"]) for r in eight),
            "finish_spread": max(max(r["finished_s"]) / min(r["finished_s"]) for r in eight),
            "finished_s": eight[-1]["finished_s"]}


def run(ctx):
    return daemon_many(ctx.ng, fleet_models(), ctx.big_size, ctx.runs)
