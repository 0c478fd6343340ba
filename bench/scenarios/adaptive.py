"""Scenario 15: connections found by measuring, against (a) a source whose total rate
collapses above 4 connections (the test registry), (b) nginx refusing connections beyond 4
with 503, (c) plain loopback nginx, (d) the same over TLS: Haul adaptive paired with the best
fixed count of a sweep, Haul at 16, aria2c -x16; how fast the count settles (HAUL_DEBUG trace)."""
import statistics

from harness import ADAPTIVE_K, RATE, blob_of, check_blob, log, summary
from peers import CollapsingSource, aria2, pull_from


def adaptive(ng, models, trials):
    """Scenario 15. Per server: a sweep of fixed counts (one run each),
    then Haul adaptive (the default) paired and alternating with the
    sweep's best count, a traced adaptive run for the counts it went
    through, and aria2c -x16."""
    mid_hex, mid_size = blob_of(models["mid"])
    big_hex, big_size = blob_of(models["big"])
    source = CollapsingSource()
    try:
        servers = [
            ("a", "rate collapses above %d" % ADAPTIVE_K, source.registry, None, "mid",
             "http://127.0.0.1:%d/v2/library/mid/blobs/sha256:%s" % (source.registry, mid_hex)),
            ("b", "503 beyond %d" % ADAPTIVE_K, ng.registries[ng.refusing], None, "mid",
             "http://127.0.0.1:%d/blobs/sha256-%s" % (ng.refusing, mid_hex)),
            ("c", "plain loopback nginx", ng.registries[ng.cdn], None, "big",
             "http://127.0.0.1:%d/blobs/sha256-%s" % (ng.cdn, big_hex)),
            ("d", "TLS, 2 cores", ng.registries[ng.tls_cdn], ng.ca, "big",
             "https://127.0.0.1:%d/blobs/sha256-%s" % (ng.tls_cdn, big_hex)),
        ]
        out = {"k": ADAPTIVE_K, "per_connection_mbps": RATE, "trials": trials, "servers": {}}
        for key, label, registry, ca, name, url in servers:
            hexd, size = (mid_hex, mid_size) if name == "mid" else (big_hex, big_size)
            log("15", key, label)
            sweep = {}
            for n in (1, 2, 4, 8, 16):
                sweep[n] = summary([pull_from(registry, name, ["--fixed", "--connections", str(n)], ca)], size)
            best = min(sweep, key=lambda n: sweep[n]["wall_min"])
            rows = []
            for i in range(trials):
                row = {}
                order = [("adaptive", []), ("best", ["--fixed", "--connections", str(best)])]
                for k, extra in (order if i % 2 == 0 else order[::-1]):
                    row[k] = pull_from(registry, name, extra, ca)
                rows.append(row)
            check_blob(hexd)
            trace = pull_from(registry, name, (), ca, trace=True)
            try:
                a = summary([aria2(url, hexd, 16, ["--ca-certificate=" + ca] if ca else [])], size)
            except SystemExit as e:
                a = {"error": str(e).splitlines()[0][:200]}
            ratios = [r["adaptive"]["wall"] / r["best"]["wall"] for r in rows]
            final = trace[-1][1]
            out["servers"][key] = {
                "label": label, "bytes": size, "sweep": {str(n): v for n, v in sweep.items()}, "best_fixed": best,
                "adaptive": summary([r["adaptive"] for r in rows], size), "best": summary([r["best"] for r in rows], size),
                "ratio_to_best": ratios, "ratio_to_best_median": statistics.median(ratios), "aria2c_x16": a,
                "trace": trace, "final_limit": final,
                # When the count last changed: it held from then on.
                "settled_s": trace[-1][0]}
        return out
    finally:
        source.stop()


def run(ctx):
    return adaptive(ctx.ng, ctx.models, ctx.trials)
