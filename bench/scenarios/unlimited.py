"""Scenario 2: one 2 GiB blob from unlimited loopback, verified: Haul,
aria2c -x16, curl + dgst, hf_transfer + dgst."""
from harness import WORK, check_blob, fresh_start, measure, summary
from peers import aria2, haul_pull

HF = ("import hf_transfer,sys;hf_transfer.download(sys.argv[1],sys.argv[2],max_files=16,chunk_size=16<<20,"
      "parallel_failures=0,max_retries=0)")


def run(ctx):
    # Round by round (Haul, then each peer), so that a slow stretch of this
    # VM's page cache falls on every tool alike. The peers run one round
    # fewer (aria2c once: 20-40 s a run here, and far behind).
    tools = {"haul": [], "aria2c -x16": [], "curl + dgst": [], "hf_transfer + dgst": []}
    for i in range(ctx.runs):
        tools["haul"].append(haul_pull(ctx.ng, "big"))
        if i == 0:
            check_blob(ctx.big_hex)
        if i == ctx.runs - 1 and ctx.runs > 1:
            break
        if i == 0:
            tools["aria2c -x16"].append(aria2(ctx.cdn_url, ctx.big_hex, 16))
        fresh_start()
        tools["curl + dgst"].append(measure(["bash", "-c", "curl -sf -o '%s/curl.out' '%s' && openssl dgst -sha256 '%s/curl.out'"
                                             % (WORK, ctx.cdn_url, WORK)]))
        fresh_start()
        tools["hf_transfer + dgst"].append(measure(["bash", "-c", "'%s' -c '%s' '%s' '%s/hf.out' && openssl dgst -sha256 '%s/hf.out'"
                                                    % (ctx.py, HF, ctx.cdn_url, WORK, WORK)]))
    fresh_start()
    out = {k: summary(v, ctx.big_size) for k, v in tools.items()}
    if ctx.ceiling:
        for r in out.values():
            r["ratio_to_ceiling"] = r["mbps_best"] / ctx.ceiling
    return out
