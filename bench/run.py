#!/usr/bin/env python3
"""`make bench`: Haul against the SHA-256 ceiling and its peers, side by
side in one run, on loopback (nginx from Debian serving a registry-shaped
directory of generated blobs).

The parts: harness.py (processes measured, the state each run starts
from, summaries), models.py (the generated models), peers.py (nginx, the
test registry, Haul, aria2c, curl), and scenarios/ (one module per
scenario, all listed in the table in scenarios/__init__.py; what each
measures is in its module's first lines and in bench/RESULTS.md).

Writes bench/results.json, bench/RESULTS.md and bench/chart.png.
Usage: bench/run.py [--runs N] [--quick] [--only 9,10 [--merge]]
"""
import argparse
import json
import os
import shutil
import subprocess
import time

from harness import HAUL_ARGS, ROOT, WORK, log, machine, reported_kib, rm
from models import ensure_models
from peers import Nginx, ensure_peers
from scenarios import SCENARIOS
from scenarios.context import Context


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one run each, fewer connection counts")
    ap.add_argument("--only", default="", help="scenario numbers, e.g. 2,6: print their JSON, leave RESULTS.md alone")
    ap.add_argument("--merge", action="store_true",
                    help="with --only: store the scenarios' results in bench/results.json and render RESULTS.md again")
    ap.add_argument("--haul-arg", action="append", default=[], help="extra argument for every haul pull (profiling)")
    args = ap.parse_args()
    only = {int(n) for n in args.only.split(",") if n}
    unknown = only - {s.number for s in SCENARIOS}
    if unknown:
        raise SystemExit("no scenario %s (scenarios: %s)" % (sorted(unknown), ", ".join(str(s.number) for s in SCENARIOS)))
    HAUL_ARGS.extend(args.haul_arg)
    os.makedirs(WORK, exist_ok=True)
    py = ensure_peers()
    models = ensure_models()
    ng = Nginx()
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "scenarios": {}}
    ctx = Context(ng, models, py, 1 if args.quick else args.runs, args.quick)
    try:
        for s in SCENARIOS:
            if not only or s.number in only:
                log(s.number, s.title)
                results["scenarios"][s.key] = s.run(ctx)
    finally:
        ng.stop()
        shutil.rmtree(os.path.join(WORK, "models"), ignore_errors=True)
        for f in ("aria2.out", "curl.out", "hf.out"):
            rm(os.path.join(WORK, f))
    stored = os.path.join(ROOT, "bench/results.json")
    if only and not args.merge:
        print(json.dumps(results["scenarios"], indent=2))
        return
    if only:
        # A subset measured now, beside the rest from the last full run.
        with open(stored) as f:
            merged = json.load(f)
        merged["scenarios"].update(results["scenarios"])
        results = merged
    else:
        before, after = results["machine"]["reported_kib"], reported_kib()
        results["machine"]["reported_during_bench_gib"] = None if before is None else round((after - before) / (1 << 20), 1)
    with open(stored, "w") as f:
        json.dump(results, f, indent=2)
    subprocess.run([py, os.path.join(ROOT, "bench/report.py")], check=True)


if __name__ == "__main__":
    main()
