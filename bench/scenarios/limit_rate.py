"""Scenario 8: --limit-rate 25M and 100M from the unlimited CDN: average and bursts."""
import json
import os
import subprocess
import time

import harness
from harness import WORK, fresh_start


def limit_rate(ng, name, size, rate):
    """A pull at --limit-rate RATE from the unlimited CDN: the average over
    the transfer against the limit, and the largest burst beyond the rate
    over any stretch of a second or more (in seconds' worth)."""
    models = os.path.join(WORK, "models")
    fresh_start()
    limit = float(rate[:-1]) * (1 << 20)
    url = "127.0.0.1:%d/library/%s" % (ng.registry, name)
    p = subprocess.Popen([harness.HAUL, "pull", url, "--insecure", "--json", "--limit-rate", rate], stdout=subprocess.PIPE,
                         env=dict(os.environ, OLLAMA_MODELS=models))
    start = time.monotonic()
    done, samples = {}, []
    for line in p.stdout:
        o = json.loads(line)
        if "digest" in o and "completed" in o:
            done[o["digest"]] = max(done.get(o["digest"], 0), o["completed"])
            samples.append((time.monotonic() - start, sum(done.values())))
    if p.wait() != 0:
        raise SystemExit("haul pull --limit-rate %s failed" % rate)
    first = next(s for s in samples if s[1] > 0)
    last = next(s for s in samples if s[1] >= size)
    average = (size - first[1]) / (last[0] - first[0])
    worst = max([b[1] - a[1] - limit * (b[0] - a[0]) for i, a in enumerate(samples) for b in samples[i + 1:]
                 if b[0] - a[0] >= 1] or [0])
    return {"rate": rate, "limit_bps": limit, "seconds": last[0] - first[0], "average_ratio": average / limit,
            "worst_burst_s": worst / limit}


def run(ctx):
    return [limit_rate(ctx.ng, "mid", ctx.mid_size, rate) for rate in ("25M", "100M")]
