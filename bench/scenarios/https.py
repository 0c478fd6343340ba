"""Scenario 10: scenario 9 over TLS (nginx, a CA made here), then curl + dgst, aria2c and
hf_transfer; TLS handshakes per pull from nginx's log."""
from harness import WORK, fresh_start, measure, summary
from peers import aria2
from scenarios.paired import paired


def https(ng, py, hexd, size, runs, trials):
    """The 2 GiB blob over TLS (nginx with the bench's CA for the registry
    and the CDN): Haul paired with `curl -o` as in scenario 9, then the
    verifying peers, each trusting the CA; TLS handshakes per pull from
    nginx's log."""
    url = "https://127.0.0.1:%d/blobs/sha256-%s" % (ng.tls_cdn, hexd)
    out = {"paired": paired(ng, hexd, size, url, trials, cdn=ng.tls_cdn), "peers": {}, "peer_runs": runs}

    def run(label, fn):
        rows, handshakes = [], []
        for _ in range(runs):
            fresh_start()
            ng.reset_log()
            rows.append(fn())
            handshakes.append(ng.handshakes())
        out["peers"][label] = dict(summary(rows, size), connections=max(h[0] for h in handshakes),
                                   full_handshakes=max(h[1] for h in handshakes))

    run("curl + dgst", lambda: measure(["bash", "-c", "curl -sf --cacert '%s' -o '%s/curl.out' '%s' "
                                                       "&& openssl dgst -sha256 '%s/curl.out'" % (ng.ca, WORK, url, WORK)]))
    run("aria2c -x16", lambda: aria2(url, hexd, 16, ["--ca-certificate=" + ng.ca]))
    hf = ("import hf_transfer,sys;hf_transfer.download(sys.argv[1],sys.argv[2],max_files=16,chunk_size=16<<20,"
          "parallel_failures=0,max_retries=0)")
    run("hf_transfer + dgst", lambda: measure(["bash", "-c", "'%s' -c '%s' '%s' '%s/hf.out' && openssl dgst -sha256 '%s/hf.out'"
                                                         % (py, hf, url, WORK, WORK)], env={"SSL_CERT_FILE": ng.ca}))
    return out


def run(ctx):
    return https(ctx.ng, ctx.py, ctx.big_hex, ctx.big_size, 1, ctx.trials)
