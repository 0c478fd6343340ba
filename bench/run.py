#!/usr/bin/env python3
"""`make bench`: Haul against the SHA-256 ceiling and its peers, side by
side in one run, on loopback (nginx from Debian serving a registry-shaped
directory of generated blobs).

Scenarios (see bench/RESULTS.md for what each measures):
  1 ceiling        openssl speed -evp sha256; openssl dgst of the cached blob
  2 unlimited      one 2 GiB blob, verified: haul, aria2c -x16, curl+dgst, hf_transfer+dgst
  3 rate-limited   nginx limit_rate per connection, 1/4/8/16 connections: haul, aria2c
  4 slow tail      one connection in ten at 1/20 of the rate, vs none: haul, aria2c
  5 small layers   20 layers of 1 KiB-1 MiB plus one of 64 MiB: haul, a sequential curl loop
  6 resume         kill -9 at 50% of the 2 GiB pull, then resume
  7 daemon         the 2 GiB pull through `haul serve` /api/pull vs the CLI
  8 limit-rate     --limit-rate 25M and 100M from the unlimited CDN: average and bursts
  9 paired         the ceiling, paired and alternating: haul (verified) vs `curl -o` (unverified),
                   median of per-pair ratios; CPU vs curl -o + openssl dgst
 10 https          the 2 GiB blob over TLS (nginx, a private CA): haul, curl+dgst, curl -o,
                   aria2c, hf_transfer; TLS handshakes per pull from nginx's log

Writes bench/results.json, bench/RESULTS.md and bench/chart.png.
Usage: bench/run.py [--runs N] [--quick]
"""
import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAUL = os.environ.get("HAUL", os.path.join(ROOT, ".build/release/haul"))
WORK = os.environ.get("WORK", os.path.join(ROOT, ".bench/run"))
VENV = os.path.join(ROOT, ".bench/venv")
REGISTRY_PY = os.path.join(ROOT, "Tests/registry/testregistry.py")
sys.path.insert(0, os.path.join(ROOT, "Tests/registry"))
import nginxconf  # noqa: E402  (the nginx configuration the tests use too)
MB = 1e6
GIB = 1 << 30
RATE = 25  # MB/s per connection in the rate-limited scenarios
HAUL_ARGS = []  # --haul-arg: extra arguments for every haul pull


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def measure(cmd, env=None, cwd=None, stdout=subprocess.DEVNULL):
    """Runs cmd; wall seconds, CPU seconds (user+sys of it and its waited
    children), peak RSS in MiB (the largest single process), exit status."""
    full_env = dict(os.environ, **(env or {}))
    start = time.monotonic()
    p = subprocess.Popen(cmd, env=full_env, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    err = p.stderr.read().decode(errors="replace")
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), err[-2000:]))
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def drop_writeback():
    # Each run starts without the previous run's dirty pages in flight.
    subprocess.run(["sync"])


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


class Nginx:
    """nginx serving WORK/registry: a registry server (manifests, and blobs
    answered 307 to a CDN server), an unlimited CDN, a CDN with a
    per-connection limit_rate, and one where every tenth connection is 20
    times slower."""

    def __init__(self):
        self.cdn, self.limited, self.slowtail = (free_port() for _ in range(3))
        # One registry server block per CDN, so every Haul run goes through
        # the manifest and the 307 to the CDN under test.
        self.registries = {port: free_port() for port in (self.cdn, self.limited, self.slowtail)}
        self.registry = self.registries[self.cdn]
        self.access = os.path.join(WORK, "access.log")
        self.tls_access = os.path.join(WORK, "tls-access.log")
        # The same registry and CDN over TLS, with a certificate from a CA
        # made here (the machine's trust store is never touched).
        self.tls_cdn = free_port()
        self.registries[self.tls_cdn] = free_port()
        self.ca, cert, key = make_pki(os.path.join(WORK, "pki"))
        slow = "%dk" % (RATE * 1000 // 20)
        path = nginxconf.write(WORK, os.path.join(WORK, "registry"), [
            (self.registries[self.tls_cdn], self.tls_cdn, None, None, (cert, key)),
            (self.registries[self.cdn], self.cdn, None, None),
            (self.registries[self.limited], self.limited, "%dm" % RATE, None),
            (self.registries[self.slowtail], self.slowtail, "%dm" % RATE, slow)])
        self.proc = subprocess.Popen(["/usr/sbin/nginx", "-p", WORK, "-c", path, "-e", os.path.join(WORK, "nginx-error.log")])
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.registry), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()

    def served(self, hexd):
        """Body bytes nginx has sent for one blob (logged as requests end)."""
        total = 0
        with open(self.access) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and hexd in parts[2]:
                    total += int(parts[0])
        return total

    def handshakes(self):
        """Connections to the TLS servers since the last reset, and how many
        of them made a full handshake (no resumed session)."""
        connections = {}
        with open(self.tls_access) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4:
                    connections[parts[1]] = parts[0]
        return len(connections), sum(1 for reused in connections.values() if reused != "r")

    def reset_log(self):
        open(self.access, "w").close()
        open(self.tls_access, "w").close()
        with open(os.path.join(WORK, "nginx.pid")) as f:
            os.kill(int(f.read().strip()), signal.SIGUSR1)
        time.sleep(0.2)


def make_pki(directory):
    """A CA and a server certificate for 127.0.0.1 it signed, with openssl;
    returns (CA, certificate, key) paths."""
    os.makedirs(directory, exist_ok=True)
    ca, cert, key = (os.path.join(directory, n) for n in ("ca.pem", "server.pem", "server.key"))
    if os.path.exists(cert):
        return ca, cert, key
    ext = os.path.join(directory, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for step in (["req", "-x509"] + ec + ["-keyout", os.path.join(directory, "ca.key"), "-out", ca, "-days", "30",
                                          "-subj", "/CN=Haul bench CA"],
                 ["req"] + ec + ["-keyout", key, "-out", os.path.join(directory, "server.csr"), "-subj", "/CN=127.0.0.1"],
                 ["x509", "-req", "-in", os.path.join(directory, "server.csr"), "-CA", ca, "-CAkey",
                  os.path.join(directory, "ca.key"), "-CAcreateserial", "-out", cert, "-days", "30", "-extfile", ext]):
        subprocess.run(["openssl"] + step, check=True, capture_output=True)
    for path in (directory, cert, key):
        os.chmod(path, 0o755 if path == directory else 0o644)
    return ca, cert, key


def make_model(name, layers):
    out = subprocess.run(["python3", REGISTRY_PY, "make-model", "--root", os.path.join(WORK, "registry"), "--name", name]
                         + sum((["--layer", l] for l in layers), []), check=True, capture_output=True)
    return json.loads(out.stdout)


def ensure_models():
    marker = os.path.join(WORK, "registry/.ready")
    if not os.path.exists(marker):
        log("generating blobs (2 GiB, 512 MiB, and 21 small-to-64 MiB layers)")
        big = make_model("library/big:latest", ["2G"])
        mid = make_model("library/mid:latest", ["512M"])
        sizes = [1024 << (i % 11) for i in range(20)]  # 1 KiB .. 1 MiB
        many = make_model("library/many:latest", ["64M"] + ["%d:application/vnd.ollama.image.params" % s for s in sizes])
        with open(marker, "w") as f:
            json.dump({"big": big, "mid": mid, "many": many}, f)
    # Blobs on disk and in the page cache: nginx serves from memory, and no
    # run pays for the generator's writeback.
    subprocess.run(["sync"])
    subprocess.run("cat '%s'/registry/blobs/* > /dev/null" % WORK, shell=True)
    with open(marker) as f:
        return json.load(f)


def ensure_peers():
    missing = [pkg for pkg, path in (("aria2", "/usr/bin/aria2c"), ("nginx-light", "/usr/sbin/nginx"), ("curl", "/usr/bin/curl"))
               if not os.path.exists(path)]
    if missing:
        log("installing", " ".join(missing))
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, check=True)
    py = os.path.join(VENV, "bin/python")
    if not os.path.exists(os.path.join(VENV, ".ready")):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "hf_transfer", "matplotlib"], check=True)
        open(os.path.join(VENV, ".ready"), "w").close()
    return py


def blob_of(model, index=0):
    return model["layers"][index]["digest"].split(":")[1], model["layers"][index]["size"]


def summary(runs, size):
    walls = sorted(r["wall"] for r in runs)
    best = min(runs, key=lambda r: r["wall"])
    return {"runs": len(runs), "wall_min": walls[0], "wall_median": statistics.median(walls),
            "mbps_best": size / walls[0] / MB, "mbps_median": size / statistics.median(walls) / MB,
            "cpu_per_gib": best["cpu"] / (size / GIB), "rss_mib": max(r["rss"] for r in runs)}


def haul_pull(ng, name, extra=(), cdn=None):
    """A verified Haul pull of library/<name> through the registry block
    whose 307 goes to the CDN on port `cdn` (default: unlimited); over TLS
    (trusting the bench's CA) for the TLS CDN."""
    models = os.path.join(WORK, "models")
    shutil.rmtree(models, ignore_errors=True)
    drop_writeback()
    url = "127.0.0.1:%d/library/%s" % (ng.registries[cdn or ng.cdn], name)
    scheme = ["--ca-file", ng.ca] if cdn == ng.tls_cdn else ["--insecure"]
    return measure([HAUL, "pull", url, "--quiet"] + scheme + list(extra) + HAUL_ARGS, env={"OLLAMA_MODELS": models})


def curl_o(url, ca=None):
    """`curl -o file`: receive and write, nothing verified."""
    rm(os.path.join(WORK, "curl.out"))
    drop_writeback()
    return measure(["curl", "-sf"] + (["--cacert", ca] if ca else []) + ["-o", os.path.join(WORK, "curl.out"), url])


def dgst(path):
    return measure(["openssl", "dgst", "-sha256", path])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one run each, fewer connection counts")
    ap.add_argument("--only", default="", help="scenario numbers, e.g. 2,6: print their JSON, leave RESULTS.md alone")
    ap.add_argument("--haul-arg", action="append", default=[], help="extra argument for every haul pull (profiling)")
    args = ap.parse_args()
    runs = 1 if args.quick else args.runs
    only = {int(n) for n in args.only.split(",") if n}
    HAUL_ARGS.extend(args.haul_arg)
    os.makedirs(WORK, exist_ok=True)
    py = ensure_peers()
    models = ensure_models()
    ng = Nginx()
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "scenarios": {}}
    try:
        run_all(ng, models, py, runs, args.quick, results["scenarios"], lambda n: not only or n in only)
    finally:
        ng.stop()
        shutil.rmtree(os.path.join(WORK, "models"), ignore_errors=True)
        for f in ("aria2.out", "curl.out", "hf.out"):
            try:
                os.remove(os.path.join(WORK, f))
            except FileNotFoundError:
                pass
    if only:
        print(json.dumps(results["scenarios"], indent=2))
        return
    with open(os.path.join(ROOT, "bench/results.json"), "w") as f:
        json.dump(results, f, indent=2)
    subprocess.run([py, os.path.join(ROOT, "bench/report.py")], check=True)


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    nginx = subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True, text=True).stderr.strip()
    aria = subprocess.run(["aria2c", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "kernel": platform.release(),
            "nginx": nginx, "aria2c": aria, "openssl": ossl}


def run_all(ng, models, py, runs, quick, out, want):
    big_hex, big_size = blob_of(models["big"])
    big_path = os.path.join(WORK, "registry/blobs/sha256-" + big_hex)
    mid_hex, mid_size = blob_of(models["mid"])
    cdn_url = "http://127.0.0.1:%d/blobs/sha256-%s" % (ng.cdn, big_hex)
    ceiling = None
    tools = {}

    # 1. Ceiling.
    if want(1):
        log("1 ceiling")
        speed = subprocess.run(["openssl", "speed", "-evp", "sha256", "-bytes", "1048576", "-seconds", "3"],
                               capture_output=True, text=True).stdout.strip().splitlines()[-1]
        speed_mbps = float(speed.split()[-1].rstrip("k")) * 1000 / MB
        subprocess.run(["cat", big_path], stdout=subprocess.DEVNULL)
        dgst = [measure(["openssl", "dgst", "-sha256", big_path]) for _ in range(runs)]
        # What the transport alone allows on this machine: nginx to curl over
        # loopback, discarded; and the same written to a file (no hashing).
        discard = [measure(["curl", "-sf", "-o", "/dev/null", cdn_url]) for _ in range(runs)]
        written = []
        for _ in range(runs):
            rm(os.path.join(WORK, "curl.out"))
            drop_writeback()
            written.append(measure(["curl", "-sf", "-o", os.path.join(WORK, "curl.out"), cdn_url]))
        out["ceiling"] = {"openssl_speed_mbps": speed_mbps, "dgst": summary(dgst, big_size),
                          "transport_discard": summary(discard, big_size), "transport_write": summary(written, big_size)}
        ceiling = out["ceiling"]["dgst"]["mbps_best"]

    # 2. Unlimited loopback, 2 GiB, verified.
    if want(2):
        log("2 unlimited 2 GiB")
        tools["haul"] = [haul_pull(ng, "big") for _ in range(runs)]
        check_blob(big_hex)
        tools["aria2c -x16"] = [aria2(cdn_url, big_hex, 16) for _ in range(runs)]
        tools["curl + dgst"] = []
        for _ in range(runs):
            rm(os.path.join(WORK, "curl.out"))
            drop_writeback()
            tools["curl + dgst"].append(measure(["bash", "-c", "curl -sf -o '%s/curl.out' '%s' && openssl dgst -sha256 '%s/curl.out'"
                                                 % (WORK, cdn_url, WORK)]))
        tools["hf_transfer + dgst"] = []
        hf = ("import hf_transfer,sys;hf_transfer.download(sys.argv[1],sys.argv[2],max_files=16,chunk_size=16<<20,"
              "parallel_failures=0,max_retries=0)")
        for _ in range(runs):
            rm(os.path.join(WORK, "hf.out"))
            drop_writeback()
            tools["hf_transfer + dgst"].append(measure(["bash", "-c", "'%s' -c '%s' '%s' '%s/hf.out' && openssl dgst -sha256 '%s/hf.out'"
                                                        % (py, hf, cdn_url, WORK, WORK)]))
        out["unlimited"] = {k: summary(v, big_size) for k, v in tools.items()}
        if ceiling:
            for r in out["unlimited"].values():
                r["ratio_to_ceiling"] = r["mbps_best"] / ceiling

    # 3. Per-connection rate limit: scaling with connections.
    if want(3):
        log("3 rate-limited scaling")
        counts = [1, 4, 16] if quick else [1, 4, 8, 16]
        scaling = {"haul": {}, "aria2c": {}}
        for n in counts:
            r = [haul_pull(ng, "mid", ["--connections", str(n)], cdn=ng.limited) for _ in range(max(1, runs - 1))]
            scaling["haul"][n] = summary(r, mid_size)
            url = "http://127.0.0.1:%d/blobs/sha256-%s" % (ng.limited, mid_hex)
            scaling["aria2c"][n] = summary([aria2(url, mid_hex, n) for _ in range(max(1, runs - 1))], mid_size)
        out["rate_limited"] = {"per_connection_mbps": RATE, "blob_bytes": mid_size, "results": scaling}

    # 4. Slow tail.
    if want(4):
        log("4 slow tail")
        tail = {}
        for label, port in (("even", ng.limited), ("one slow in ten", ng.slowtail)):
            r = [haul_pull(ng, "mid", ["--connections", "10"], cdn=port) for _ in range(max(1, runs - 1))]
            url = "http://127.0.0.1:%d/blobs/sha256-%s" % (port, mid_hex)
            a = [aria2(url, mid_hex, 10) for _ in range(max(1, runs - 1))]
            tail[label] = {"haul": summary(r, mid_size), "aria2c": summary(a, mid_size)}
        out["slow_tail"] = tail

    # 5. Many small layers.
    if want(5):
        log("5 many small layers")
        many = models["many"]
        total = sum(l["size"] for l in many["layers"]) + many["config"]["size"]
        h = [haul_pull(ng, "many") for _ in range(runs)]
        digests = [l["digest"] for l in many["layers"]] + [many["config"]["digest"]]
        loop = " && ".join("curl -sfL -o '%s/curl.out' 'http://127.0.0.1:%d/v2/library/many/blobs/%s' && openssl dgst -sha256 '%s/curl.out' >/dev/null"
                           % (WORK, ng.registry, d, WORK) for d in digests)
        c = [measure(["bash", "-c", loop]) for _ in range(runs)]
        out["small_layers"] = {"layers": len(digests), "bytes": total, "haul": summary(h, total), "curl loop": summary(c, total)}

    # 6. Resume after kill -9 at 50%.
    if want(6):
        log("6 resume")
        out["resume"] = resume(ng, big_hex, big_size)

    # 7. Daemon overhead.
    if want(7):
        log("7 daemon")
        out["daemon"] = daemon(ng, big_size, runs)
        cli = tools.get("haul") or [haul_pull(ng, "big") for _ in range(runs)]
        out["daemon"]["cli"] = summary(cli, big_size)

    # 8. --limit-rate accuracy: one bucket for all 16 connections.
    if want(8):
        log("8 limit-rate")
        out["limit_rate"] = [limit_rate(ng, "mid", mid_size, rate) for rate in ("25M", "100M")]

    # 9. The ceiling, paired and alternating.
    if want(9):
        log("9 paired ceiling")
        out["paired"] = paired(ng, big_hex, big_size, cdn_url, 3 if quick else 6)

    # 10. HTTPS.
    if want(10):
        log("10 https")
        out["https"] = https(ng, py, big_hex, big_size, runs)


def paired(ng, hexd, size, url, pairs):
    """Haul's verified pull and an unverified `curl -o` of the same blob,
    alternating (each run's writeback slows the next, so neither always goes
    first); the median of the per-pair wall ratios. CPU is compared with
    what a verified curl costs: `curl -o` then `openssl dgst` of the file."""
    rows = []
    for i in range(pairs):
        if i % 2 == 0:
            h = haul_pull(ng, "big")
            c = curl_o(url)
        else:
            c = curl_o(url)
            h = haul_pull(ng, "big")
        d = dgst(os.path.join(WORK, "curl.out"))
        rows.append({"haul": h, "curl_o": c, "dgst": d})
    check_blob(hexd)
    wall = [r["haul"]["wall"] / r["curl_o"]["wall"] for r in rows]
    cpu = [r["haul"]["cpu"] / (r["curl_o"]["cpu"] + r["dgst"]["cpu"]) for r in rows]
    return {"pairs": pairs, "haul": summary([r["haul"] for r in rows], size), "curl_o": summary([r["curl_o"] for r in rows], size),
            "dgst": summary([r["dgst"] for r in rows], size), "wall_ratios": wall, "wall_ratio_median": statistics.median(wall),
            "cpu_ratios": cpu, "cpu_ratio_median": statistics.median(cpu)}


def https(ng, py, hexd, size, runs):
    """The 2 GiB blob over TLS: each tool trusts the bench's CA; TLS
    handshakes per pull counted from nginx's log."""
    url = "https://127.0.0.1:%d/blobs/sha256-%s" % (ng.tls_cdn, hexd)
    out = {}

    def run(label, fn):
        rows, handshakes = [], []
        for _ in range(runs):
            ng.reset_log()
            rows.append(fn())
            handshakes.append(ng.handshakes())
        out[label] = summary(rows, size)
        out[label]["connections"] = handshakes[-1][0]
        out[label]["full_handshakes"] = handshakes[-1][1]

    run("haul", lambda: haul_pull(ng, "big", cdn=ng.tls_cdn))
    check_blob(hexd)
    run("curl -o (unverified)", lambda: curl_o(url, ng.ca))
    run("curl + dgst", lambda: measure(["bash", "-c", "curl -sf --cacert '%s' -o '%s/curl.out' '%s' && openssl dgst -sha256 '%s/curl.out'"
                                                       % (ng.ca, WORK, url, WORK)]))
    run("aria2c -x16", lambda: measure(["aria2c", "-q", "-x16", "-s16", "-k1M", "--file-allocation=falloc", "--allow-overwrite=true",
                                          "--ca-certificate=" + ng.ca, "--checksum=sha-256=" + hexd, "-d", WORK, "-o", "aria2.out", url]))
    hf = ("import hf_transfer,sys;hf_transfer.download(sys.argv[1],sys.argv[2],max_files=16,chunk_size=16<<20,"
          "parallel_failures=0,max_retries=0)")
    try:
        run("hf_transfer + dgst", lambda: measure(["bash", "-c", "rm -f '%s/hf.out' && '%s' -c '%s' '%s' '%s/hf.out' && openssl dgst -sha256 '%s/hf.out'"
                                                             % (WORK, py, hf, url, WORK, WORK)], env={"SSL_CERT_FILE": ng.ca}))
    except SystemExit as e:
        out["hf_transfer + dgst"] = {"error": str(e).splitlines()[0][:200]}
    return out


def limit_rate(ng, name, size, rate):
    """A pull at --limit-rate RATE from the unlimited CDN: the average over
    the transfer against the limit, and the largest burst beyond the rate
    over any stretch of a second or more (in seconds' worth)."""
    models = os.path.join(WORK, "models")
    shutil.rmtree(models, ignore_errors=True)
    drop_writeback()
    limit = float(rate[:-1]) * (1 << 20)
    url = "127.0.0.1:%d/library/%s" % (ng.registry, name)
    p = subprocess.Popen([HAUL, "pull", url, "--insecure", "--json", "--limit-rate", rate], stdout=subprocess.PIPE,
                         env=dict(os.environ, OLLAMA_MODELS=models))
    start = time.monotonic()
    done, samples = {}, []
    for line in p.stdout:
        o = json.loads(line)
        if "digest" in o and "completed" in o:
            done[o["digest"]] = max(done.get(o["digest"], 0), o["completed"])
            samples.append((time.monotonic() - start, sum(done.values())))
    if p.wait() != 0:
        raise SystemExit("haul pull --limit-rate %s failed" % rate)
    first = next(s for s in samples if s[1] > 0)
    last = next(s for s in samples if s[1] >= size)
    average = (size - first[1]) / (last[0] - first[0])
    worst = max([b[1] - a[1] - limit * (b[0] - a[0]) for i, a in enumerate(samples) for b in samples[i + 1:]
                 if b[0] - a[0] >= 1] or [0])
    return {"rate": rate, "limit_bps": limit, "seconds": last[0] - first[0], "average_ratio": average / limit,
            "worst_burst_s": worst / limit}

def aria2(url, hexd, connections):
    """aria2c with `connections` connections and its own SHA-256 check."""
    rm(os.path.join(WORK, "aria2.out"))
    drop_writeback()
    return measure(["aria2c", "-q", "-x%d" % connections, "-s%d" % connections, "-k1M", "--file-allocation=falloc",
                    "--allow-overwrite=true", "--checksum=sha-256=" + hexd, "-d", WORK, "-o", "aria2.out", url])


def rm(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def check_blob(hexd):
    path = os.path.join(WORK, "models/blobs/sha256-" + hexd)
    if sha256_file(path) != hexd:
        raise SystemExit("haul stored a blob that does not match its digest")


def resume(ng, hexd, size):
    models = os.path.join(WORK, "models")
    shutil.rmtree(models, ignore_errors=True)
    drop_writeback()
    url = "127.0.0.1:%d/library/big" % ng.registry
    env = dict(os.environ, OLLAMA_MODELS=models)
    # The uninterrupted reference: the better of two pulls, since writeback
    # left by earlier runs can slow any single one.
    fresh = float("inf")
    for _ in range(2):
        shutil.rmtree(models, ignore_errors=True)
        drop_writeback()
        start = time.monotonic()
        subprocess.run([HAUL, "pull", url, "--insecure", "--quiet"] + HAUL_ARGS, env=env, check=True)
        fresh = min(fresh, time.monotonic() - start)
    shutil.rmtree(models, ignore_errors=True)
    drop_writeback()
    ng.reset_log()
    journal = os.path.join(models, ".haul/partials/sha256-%s-partial.journal.live" % hexd)
    p = subprocess.Popen([HAUL, "pull", url, "--insecure", "--quiet"] + HAUL_ARGS, env=env)
    start = time.monotonic()
    while journal_bytes(journal) < size // 2:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    first = time.monotonic() - start
    time.sleep(0.5)
    kept = journal_bytes(journal)
    sent_at_kill = ng.served(hexd)
    hashed = journal_field(journal, "hashed")
    start = time.monotonic()
    r = subprocess.run([HAUL, "pull", url, "--insecure", "--quiet"] + HAUL_ARGS, env=dict(env, HAUL_DEBUG="1"),
                       capture_output=True, text=True, check=True)
    second = time.monotonic() - start
    time.sleep(0.5)
    served = ng.served(hexd)
    m = re.search(r"done: hashed (\d+) bytes this run, resumed at (\d+)", r.stderr)
    check_blob(hexd)
    return {"uninterrupted_s": fresh, "killed_after_s": first, "resume_s": second, "kept_bytes": kept,
            "sent_at_kill": sent_at_kill, "in_flight_at_kill": sent_at_kill - kept,
            "hash_state_at": hashed, "served_bytes": served, "extra_bytes": served - size,
            "extra_pct": 100.0 * (served - size) / size, "extra_s": first + second - fresh,
            "rehashed_this_run": int(m.group(1)) if m else None, "hash_resumed_at": int(m.group(2)) if m else None}


def journal_bytes(path):
    try:
        with open(path) as f:
            return sum(int(l.split()[2]) - int(l.split()[1]) for l in f if l.startswith("range "))
    except (FileNotFoundError, ValueError, IndexError):
        return 0


def journal_field(path, name):
    with open(path) as f:
        for line in f:
            if line.startswith(name + " "):
                return int(line.split()[1])
    return None


def daemon(ng, size, runs):
    models = os.path.join(WORK, "models")
    times = []
    for _ in range(runs):
        shutil.rmtree(models, ignore_errors=True)
        drop_writeback()
        port = free_port()
        d = subprocess.Popen([HAUL, "serve"], env=dict(os.environ, OLLAMA_MODELS=models, OLLAMA_HOST="127.0.0.1:%d" % port),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.02)
        body = json.dumps({"model": "127.0.0.1:%d/library/big" % ng.registry, "insecure": True})
        r = measure(["curl", "-sfN", "-o", "/dev/null", "-X", "POST", "http://127.0.0.1:%d/api/pull" % port, "-d", body])
        d.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(d.pid, 0)
        r["cpu"] = usage.ru_utime + usage.ru_stime
        r["rss"] = usage.ru_maxrss / 1024
        times.append(r)
    return {"daemon": summary(times, size)}


if __name__ == "__main__":
    main()
