"""Scenario 4: one connection in ten at 1/20 of the rate, against none."""
from harness import summary
from peers import aria2, haul_pull


def run(ctx):
    tail = {}
    for label, port in (("even", ctx.ng.limited), ("one slow in ten", ctx.ng.slowtail)):
        r = [haul_pull(ctx.ng, "mid", ["--connections", "10", "--fixed"], cdn=port) for _ in range(ctx.few)]
        url = "http://127.0.0.1:%d/blobs/sha256-%s" % (port, ctx.mid_hex)
        a = [aria2(url, ctx.mid_hex, 10) for _ in range(ctx.few)]
        tail[label] = {"haul": summary(r, ctx.mid_size), "aria2c": summary(a, ctx.mid_size)}
    return tail
