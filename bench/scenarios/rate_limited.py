"""Scenario 3: nginx's limit_rate per connection; scaling with 1-16
connections, Haul (fixed counts) and aria2c."""
from harness import RATE, summary
from peers import aria2, haul_pull


def run(ctx):
    counts = [1, 4, 16] if ctx.quick else [1, 4, 8, 16]
    scaling = {"haul": {}, "aria2c": {}}
    url = "http://127.0.0.1:%d/blobs/sha256-%s" % (ctx.ng.limited, ctx.mid_hex)
    for n in counts:
        # One run each: a rate-limited run varies little (one connection at
        # 25 MB/s takes 20 s).
        r = haul_pull(ctx.ng, "mid", ["--connections", str(n), "--fixed"], cdn=ctx.ng.limited)
        scaling["haul"][n] = summary([r], ctx.mid_size)
        scaling["aria2c"][n] = summary([aria2(url, ctx.mid_hex, n)], ctx.mid_size)
    return {"per_connection_mbps": RATE, "blob_bytes": ctx.mid_size, "results": scaling}
