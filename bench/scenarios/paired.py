"""Scenario 9: the ceiling, paired and alternating: Haul and Haul --direct-io (verified)
against `curl -o` (unverified), median of per-trial ratios; CPU against curl -o + openssl dgst."""
import os
import statistics

from harness import WORK, check_blob, summary
from peers import curl_o, dgst, haul_pull


HAUL_VARIANTS = [("haul", []), ("haul --direct-io", ["--direct-io"])]


def paired(ng, hexd, size, url, trials, cdn=None):
    """Haul's verified pull (through the page cache, and with --direct-io)
    against an unverified `curl -o` of the same blob, in rotating order
    (each run's writeback slows the next, so nobody always goes first); the
    median of the per-trial ratios. CPU is compared with what a verified
    curl costs: `curl -o`, then `openssl dgst` of its file. Over TLS (`cdn`
    is the TLS CDN) each Haul pull's TLS handshakes are counted."""
    tls = cdn == ng.tls_cdn
    ca = ng.ca if tls else None
    kinds = [k for k, _ in HAUL_VARIANTS] + ["curl -o"]
    rows = []
    for i in range(trials):
        row = {}
        for k in kinds[i % len(kinds):] + kinds[:i % len(kinds)]:
            if k == "curl -o":
                row[k] = curl_o(url, ca)
                # (now: the next run deletes curl's file)
                row["dgst"] = dgst(os.path.join(WORK, "curl.out"))
                continue
            if tls:
                ng.reset_log()
            row[k] = haul_pull(ng, "big", dict(HAUL_VARIANTS)[k], cdn=cdn)
            if tls:
                row[k]["connections"], row[k]["full_handshakes"] = ng.handshakes()
            if i == 0:
                check_blob(hexd)
        rows.append(row)
    out = {"trials": trials, "curl_o": summary([r["curl -o"] for r in rows], size),
           "dgst": summary([r["dgst"] for r in rows], size)}
    for k, _ in HAUL_VARIANTS:
        wall = [r[k]["wall"] / r["curl -o"]["wall"] for r in rows]
        cpu = [r[k]["cpu"] / (r["curl -o"]["cpu"] + r["dgst"]["cpu"]) for r in rows]
        out[k] = dict(summary([r[k] for r in rows], size), wall_ratios=wall, wall_ratio_median=statistics.median(wall),
                      cpu_ratios=cpu, cpu_ratio_median=statistics.median(cpu))
        if tls:
            out[k]["connections"] = max(r[k]["connections"] for r in rows)
            out[k]["full_handshakes"] = max(r[k]["full_handshakes"] for r in rows)
    return out


def run(ctx):
    return paired(ctx.ng, ctx.big_hex, ctx.big_size, ctx.cdn_url, ctx.trials)
