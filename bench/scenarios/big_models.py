"""Scenario 11: one 16 GiB layer, and a model of 300 small layers: throughput, peak RSS,
journals."""
import os
import shutil
import subprocess

from harness import JournalWatch, WORK, blob_of, dirty_limit, evict, summary
from models import ensure_model, make_huge, make_model
from peers import haul_pull


def big_models(ng, runs, big_size):
    """A 16 GiB layer and a model of 300 small layers: throughput against
    a 2 GiB pull run just before (the same state of the page cache), peak
    RSS, journal sizes."""
    # The source is sparse: in use a registry's bytes are on another machine,
    # and here they cost the client's disk nothing either.
    huge = ensure_model("huge-sparse", lambda: make_huge("library/huge:latest", 16 << 30, sparse=True))
    hexd, size = blob_of(huge)
    source = os.path.join(WORK, "registry/blobs/sha256-" + hexd)
    sizes = [1024 << (i % 13) for i in range(300)]  # 1 KiB .. 4 MiB
    many = ensure_model("many300", lambda: make_model("library/many300:latest", ["%d" % sizes[0]]
                                                      + ["%d:application/vnd.ollama.image.params" % n for n in sizes[1:]]))
    models = os.path.join(WORK, "models")
    # nginx serves from memory, as in the other scenarios.
    subprocess.run(["cat", source], stdout=subprocess.DEVNULL)
    out = {"huge_bytes": size, "reference": summary([haul_pull(ng, "big")], big_size), "dirty_limit_bytes": dirty_limit()}
    with JournalWatch(models) as watch:
        r = haul_pull(ng, "huge")
    out["haul"] = dict(summary([r], size), journal_max_bytes=watch.largest)
    # (Haul verified it; re-hashing 16 GiB here would cost 15 s of the
    # bench's budget. Stored 2 GiB blobs are re-hashed in scenarios 2, 6, 9.)
    if os.path.getsize(os.path.join(models, "blobs/sha256-" + hexd)) != size:
        raise SystemExit("haul stored a 16 GiB blob of the wrong size")
    # 32 GiB of page cache (the source and Haul's copy) on a 24 GiB machine:
    # let them go, or the next scenarios pay for reclaiming them.
    shutil.rmtree(models, ignore_errors=True)
    evict(source)
    total = sum(l["size"] for l in many["layers"]) + many["config"]["size"]
    rows = []
    for _ in range(runs):
        with JournalWatch(models) as watch:
            rows.append(haul_pull(ng, "many300"))
    out["many300"] = dict(summary(rows, total), layers=len(many["layers"]) + 1, bytes=total, journal_max_bytes=watch.largest)
    return out


def run(ctx):
    return big_models(ctx.ng, ctx.few, ctx.big_size)
