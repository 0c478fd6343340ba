"""Scenario 7: the 2 GiB pull through `haul serve` /api/pull against the CLI."""
import json
import os

from harness import WORK, fresh_start, measure, summary
from peers import haul_pull, start_daemon, stop_daemon


def daemon(ng, size, runs):
    """The 2 GiB pull through `haul serve` and through the CLI, alternating."""
    models = os.path.join(WORK, "models")
    times, cli = [], []
    for _ in range(runs):
        cli.append(haul_pull(ng, "big"))
        fresh_start()
        d, port = start_daemon(models)
        body = json.dumps({"model": "127.0.0.1:%d/library/big" % ng.registry, "insecure": True})
        r = measure(["curl", "-sfN", "-o", "/dev/null", "-X", "POST", "http://127.0.0.1:%d/api/pull" % port, "-d", body])
        r["cpu"], r["rss"] = stop_daemon(d)
        times.append(r)
    return {"daemon": summary(times, size), "cli": summary(cli, size)}


def run(ctx):
    return daemon(ctx.ng, ctx.big_size, ctx.runs)
