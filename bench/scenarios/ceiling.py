"""Scenario 1: the ceiling of a verified pull on this machine."""
import os
import subprocess

from harness import MB, WORK, fresh_start, measure, summary


def run(ctx):
    speed = subprocess.run(["openssl", "speed", "-evp", "sha256", "-bytes", "1048576", "-seconds", "3"],
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]
    speed_mbps = float(speed.split()[-1].rstrip("k")) * 1000 / MB
    subprocess.run(["cat", ctx.big_path], stdout=subprocess.DEVNULL)
    dgst = [measure(["openssl", "dgst", "-sha256", ctx.big_path]) for _ in range(ctx.runs)]
    # What the transport alone allows on this machine: nginx to curl over
    # loopback, discarded; and the same written to a file (no hashing).
    discard = [measure(["curl", "-sf", "-o", "/dev/null", ctx.cdn_url]) for _ in range(ctx.runs)]
    written = []
    for _ in range(ctx.runs):
        fresh_start()
        written.append(measure(["curl", "-sf", "-o", os.path.join(WORK, "curl.out"), ctx.cdn_url]))
    out = {"openssl_speed_mbps": speed_mbps, "dgst": summary(dgst, ctx.big_size),
           "transport_discard": summary(discard, ctx.big_size), "transport_write": summary(written, ctx.big_size)}
    # The ceiling of a verified pull: hashing on one core, or receiving
    # and writing the bytes, whichever is slower.
    ctx.ceiling = min(speed_mbps, out["transport_write"]["mbps_best"])
    out["ceiling_mbps"] = ctx.ceiling
    return out
