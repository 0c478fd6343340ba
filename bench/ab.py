#!/usr/bin/env python3
"""`make bench-ab A=old-haul B=new-haul`: two Haul binaries, paired and
alternating, pulling the bench's 2 GiB blob from loopback nginx (verified,
fixed connection count so both do the same work). For a change to the hot
path: prints each pair, the median of the per-pair wall ratios (B / A),
CPU s/GiB and peak RSS of each; JSON on stdout.

Usage: bench/ab.py A B [--pairs 5] [--connections 8]
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (the bench's harness: processes, measurement)
import models  # noqa: E402
import peers  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    binaries = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    os.makedirs(harness.WORK, exist_ok=True)
    peers.ensure_peers()
    generated = models.ensure_models()
    hexd, size = harness.blob_of(generated["big"])
    ng = peers.Nginx()
    extra = ["--fixed", "--connections", str(args.connections)]
    rows = []
    try:
        for i in range(args.pairs):
            row = {}
            # Alternate who goes first: a run's writeback slows the next.
            for k in (("A", "B") if i % 2 == 0 else ("B", "A")):
                harness.HAUL = binaries[k]
                row[k] = peers.haul_pull(ng, "big", extra)
                if i == 0:
                    harness.check_blob(hexd)
            harness.log("pair %d: A %.2f s (%.2f cpu), B %.2f s (%.2f cpu)" % (
                i + 1, row["A"]["wall"], row["A"]["cpu"], row["B"]["wall"], row["B"]["cpu"]))
            rows.append(row)
    finally:
        ng.stop()
    gib = size / harness.GIB
    ratios = [r["B"]["wall"] / r["A"]["wall"] for r in rows]
    out = {"pairs": rows, "wall_ratio_median": statistics.median(ratios), "wall_ratios": ratios}
    for k in ("A", "B"):
        out[k] = {"binary": binaries[k], "wall_median": statistics.median(r[k]["wall"] for r in rows),
                  "cpu_per_gib_median": statistics.median(r[k]["cpu"] for r in rows) / gib,
                  "rss_mib_max": max(r[k]["rss"] for r in rows)}
    harness.log("B / A wall, median of %d pairs: %.3f; CPU s/GiB A %.2f, B %.2f; peak RSS A %.0f, B %.0f MiB" % (
        len(rows), out["wall_ratio_median"], out["A"]["cpu_per_gib_median"], out["B"]["cpu_per_gib_median"],
        out["A"]["rss_mib_max"], out["B"]["rss_mib_max"]))
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
