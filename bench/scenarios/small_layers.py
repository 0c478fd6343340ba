"""Scenario 5: 20 layers of 1 KiB-1 MiB and one of 64 MiB: Haul against a
sequential curl loop."""
from harness import WORK, measure, summary
from peers import haul_pull


def run(ctx):
    many = ctx.models["many"]
    total = sum(l["size"] for l in many["layers"]) + many["config"]["size"]
    h = [haul_pull(ctx.ng, "many") for _ in range(ctx.runs)]
    digests = [l["digest"] for l in many["layers"]] + [many["config"]["digest"]]
    loop = " && ".join("curl -sfL -o '%s/curl.out' 'http://127.0.0.1:%d/v2/library/many/blobs/%s' && openssl dgst -sha256 '%s/curl.out' >/dev/null"
                       % (WORK, ctx.ng.registry, d, WORK) for d in digests)
    c = [measure(["bash", "-c", loop]) for _ in range(ctx.runs)]
    return {"layers": len(digests), "bytes": total, "haul": summary(h, total), "curl loop": summary(c, total)}
