"""Scenario 6: kill -9 at 50% of the 2 GiB pull, then resume."""
import os
import signal
import subprocess
import time

import harness
from harness import HAUL_ARGS, WORK, check_blob, fresh_start, partial, pull_log


def resume(ng, hexd, size):
    models = os.path.join(WORK, "models")
    url = "127.0.0.1:%d/library/big" % ng.registry
    env = dict(os.environ, OLLAMA_MODELS=models)
    # The uninterrupted reference: the better of two pulls, since writeback
    # left by earlier runs can slow any single one.
    fresh = float("inf")
    for _ in range(2):
        fresh_start()
        start = time.monotonic()
        subprocess.run([harness.HAUL, "pull", url, "--insecure", "--quiet"] + HAUL_ARGS, env=env, check=True)
        fresh = min(fresh, time.monotonic() - start)
    fresh_start()
    ng.reset_log()
    p = subprocess.Popen([harness.HAUL, "pull", url, "--insecure", "--quiet"] + HAUL_ARGS, env=env)
    start = time.monotonic()
    # What a resume would keep, as Haul reads its own journal.
    while (partial(models, hexd) or {}).get("completed", 0) < size // 2:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    first = time.monotonic() - start
    time.sleep(0.5)
    held = partial(models, hexd)
    sent_at_kill = ng.served(hexd)
    start = time.monotonic()
    r = subprocess.run([harness.HAUL, "pull", url, "--insecure", "--quiet"] + HAUL_ARGS,
                       env=dict(env, HAUL_LOG_FORMAT="json"), capture_output=True, text=True, check=True)
    second = time.monotonic() - start
    time.sleep(0.5)
    served = ng.served(hexd)
    line = pull_log(r.stderr)
    check_blob(hexd)
    return {"uninterrupted_s": fresh, "killed_after_s": first, "resume_s": second, "kept_bytes": held["completed"],
            "sent_at_kill": sent_at_kill, "in_flight_at_kill": sent_at_kill - held["completed"],
            "hash_state_at": held["hashed"], "served_bytes": served, "extra_bytes": served - size,
            "extra_pct": 100.0 * (served - size) / size, "extra_s": first + second - fresh,
            "rehashed_this_run": int(line["hashed"]), "hash_resumed_at": int(line["resumed_hashed"])}


def run(ctx):
    return resume(ctx.ng, ctx.big_hex, ctx.big_size)
