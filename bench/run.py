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
  9 paired         the ceiling, paired and alternating: haul and haul --direct-io (verified) vs
                   `curl -o` (unverified), median of per-trial ratios; CPU vs curl -o + openssl dgst
 10 https          scenario 9 over TLS (nginx, a CA made here), then curl+dgst, aria2c and
                   hf_transfer; TLS handshakes per pull from nginx's log
 11 big models     one 16 GiB layer, and a model of 300 small layers: throughput, peak RSS, journals
 12 daemon x8      8 different models through one `haul serve` at once
 13 ramalama       RamaLama (PyPI) and Haul pulling ollama://library/big from "registry.ollama.ai"
                   over HTTPS, in a network namespace whose hosts file points it at the bench
 14 push           haul push of the 2 GiB model to Debian's docker-registry, paired with a
                   monolithic `curl -T` PUT of the blob (the ceiling); the 22-blob model against
                   `skopeo copy` of an OCI layout of it (skopeo refuses Ollama's media types)
 15 adaptive       connections found by measuring, against (a) a source whose total rate collapses
                   above 4 connections (the test registry), (b) nginx refusing connections beyond
                   4 with 503, (c) plain loopback nginx, (d) the same over TLS: Haul adaptive
                   paired with the best fixed count of a sweep, Haul at 16, aria2c -x16; how fast
                   the count settles (HAUL_DEBUG trace)

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
ADAPTIVE_K = 4  # scenario 15: connections beyond this are punished
HAUL_ARGS = []  # --haul-arg: extra arguments for every haul pull


STARTED = time.monotonic()


def log(*args):
    print("[%4.0f s]" % (time.monotonic() - STARTED), *args, file=sys.stderr, flush=True)


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


OUTPUTS = ("models", "curl.out", "hf.out", "aria2.out", "ramalama-store")


def fresh_start():
    """Before a measured run: every tool's earlier output deleted (not only
    the next tool's own), and the disk idle. This VM hands free memory back
    to its host a few seconds after it is freed, and a run writing into
    such memory takes a host page fault per page (up to 10x slower). Deleting
    all outputs just before each run means every run finds the previous
    run's pages freshly freed, whichever tool it follows."""
    for name in OUTPUTS:
        path = os.path.join(WORK, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            rm(path)
    drop_writeback()


def dirty_limit():
    """Bytes of dirty page cache past which the kernel holds writers to the
    disk's pace (vm.dirty_ratio of the memory; or vm.dirty_bytes)."""
    with open("/proc/sys/vm/dirty_bytes") as f:
        fixed = int(f.read())
    if fixed:
        return fixed
    with open("/proc/sys/vm/dirty_ratio") as f:
        ratio = int(f.read())
    with open("/proc/meminfo") as f:
        total = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemTotal:"))
    return total * ratio // 100


def evict(path):
    """Drops a file's clean pages from the page cache."""
    subprocess.run(["sync"])
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


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
        self.cdn, self.limited, self.slowtail, self.refusing = (free_port() for _ in range(4))
        # One registry server block per CDN, so every Haul run goes through
        # the manifest and the 307 to the CDN under test.
        self.registries = {port: free_port() for port in (self.cdn, self.limited, self.slowtail, self.refusing)}
        self.registry = self.registries[self.cdn]
        self.access = os.path.join(WORK, "access.log")
        self.tls_access = os.path.join(WORK, "tls-access.log")
        # The same registry and CDN over TLS, with a certificate from a CA
        # made here (the machine's trust store is never touched).
        self.tls_cdn = free_port()
        self.registries[self.tls_cdn] = free_port()
        self.ca, self.cert, self.key = make_pki(os.path.join(WORK, "pki-2"))
        cert, key = self.cert, self.key
        slow = "%dk" % (RATE * 1000 // 20)
        path = nginxconf.write(WORK, os.path.join(WORK, "registry"), [
            (self.registries[self.tls_cdn], self.tls_cdn, None, None, (cert, key)),
            (self.registries[self.cdn], self.cdn, None, None),
            (self.registries[self.limited], self.limited, "%dm" % RATE, None),
            (self.registries[self.slowtail], self.slowtail, "%dm" % RATE, slow),
            # Scenario 15 (b): RATE per connection, 503 beyond four at once.
            (self.registries[self.refusing], self.refusing, "%dm" % RATE, None, None, ADAPTIVE_K)])
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
    """A CA and a server certificate it signed, with openssl, for 127.0.0.1
    (and for registry.ollama.ai, which the RamaLama scenario resolves to
    127.0.0.1 in a network namespace); returns (CA, certificate, key)."""
    os.makedirs(directory, exist_ok=True)
    ca, cert, key = (os.path.join(directory, n) for n in ("ca.pem", "server.pem", "server.key"))
    if os.path.exists(cert):
        return ca, cert, key
    ext = os.path.join(directory, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:registry.ollama.ai\nbasicConstraints=CA:FALSE\n")
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
    marker = os.path.join(WORK, "registry/.ready-2")
    if not os.path.exists(marker):
        log("generating blobs (2 GiB, 512 MiB, and 21 small-to-64 MiB layers)")
        big = make_huge("library/big:latest", 2 << 30)
        mid = make_huge("library/mid:latest", 512 << 20)
        sizes = [1024 << (i % 11) for i in range(20)]  # 1 KiB .. 1 MiB
        many = make_model("library/many:latest", ["64M"] + ["%d:application/vnd.ollama.image.params" % s for s in sizes])
        with open(marker, "w") as f:
            json.dump({"big": big, "mid": mid, "many": many}, f)
    with open(marker) as f:
        models = json.load(f)
    cache_blobs(models.values())
    return models


def ensure_model(key, make):
    """A model generated once per bench directory (WORK/registry/.KEY)."""
    marker = os.path.join(WORK, "registry/." + key)
    if not os.path.exists(marker):
        model = make()
        with open(marker, "w") as f:
            json.dump(model, f)
    with open(marker) as f:
        return json.load(f)


def make_huge(name, size, sparse=False):
    """A model of one `size`-byte layer, generated fast (an AES-CTR
    keystream from openssl, keyed by the model's name, hashed as it is
    written) and stored in place. `sparse`: zeros in a sparse file instead,
    made at once and never written to the disk (nothing here compresses, so
    to a client the bytes are as good as random ones)."""
    blobs = os.path.join(WORK, "registry/blobs")
    os.makedirs(blobs, exist_ok=True)
    tmp = os.path.join(blobs, "huge.tmp")
    # openssl's SHA-256 uses the CPU's SHA extensions; sha256sum does not.
    make = ("rm -f '%s' && truncate -s %d '%s' && openssl dgst -sha256 -r '%s'" % (tmp, size, tmp, tmp) if sparse else
            "set -o pipefail; openssl enc -aes-128-ctr -nosalt -pass 'pass:haul-bench %s' -in /dev/zero 2>/dev/null "
            "| head -c %d | tee '%s' | openssl dgst -sha256 -r" % (name, size, tmp))
    out = subprocess.run(["bash", "-c", make], capture_output=True, text=True)
    hexd = out.stdout.split()[0] if out.stdout else ""
    if not re.fullmatch(r"[0-9a-f]{64}", hexd) or os.path.getsize(tmp) != size:
        raise SystemExit("could not generate the %d-byte layer: %s" % (size, out.stderr[-500:]))
    os.replace(tmp, os.path.join(blobs, "sha256-" + hexd))
    out = subprocess.run(["python3", REGISTRY_PY, "make-model", "--root", os.path.join(WORK, "registry"), "--name", name,
                          "--existing", "sha256:%s:%d" % (hexd, size)], check=True, capture_output=True)
    return json.loads(out.stdout)


def ensure_peers():
    missing = [pkg for pkg, path in (("aria2", "/usr/bin/aria2c"), ("nginx-light", "/usr/sbin/nginx"), ("curl", "/usr/bin/curl"),
                                     ("skopeo", "/usr/bin/skopeo"), ("docker-registry", "/usr/bin/docker-registry"))
               if not os.path.exists(path)]
    if missing:
        log("installing", " ".join(missing))
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, check=True)
    py = os.path.join(VENV, "bin/python")
    if not os.path.exists(os.path.join(VENV, ".ready-2")):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "hf_transfer", "matplotlib", "ramalama"],
                       check=True)
        open(os.path.join(VENV, ".ready-2"), "w").close()
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
    fresh_start()
    url = "127.0.0.1:%d/library/%s" % (ng.registries[cdn or ng.cdn], name)
    scheme = ["--ca-file", ng.ca] if cdn == ng.tls_cdn else ["--insecure"]
    r = measure([HAUL, "pull", url, "--quiet"] + scheme + list(extra) + HAUL_ARGS, env={"OLLAMA_MODELS": models})
    if "--direct-io" in extra:
        # Written past the page cache: read it in, outside the measurement,
        # so that the next run finds freed pages as after any other tool.
        subprocess.run(["bash", "-c", "cat '%s'/blobs/* > /dev/null" % models])
    return r


def curl_o(url, ca=None):
    """`curl -o file`: receive and write, nothing verified."""
    fresh_start()
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
    before, after = results["machine"]["reported_kib"], reported_kib()
    results["machine"]["reported_during_bench_gib"] = None if before is None else round((after - before) / (1 << 20), 1)
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
            "nginx": nginx, "aria2c": aria, "openssl": ossl, "reported_kib": reported_kib()}


REPORTED = "/sys/module/page_reporting/parameters/reported_kib"


def reported_kib():
    """KiB of free memory this VM has handed back to its host (virtio-balloon
    free page reporting), or None on a machine without it. Pages handed back
    cost a host page fault each when the guest touches them again, which
    lands on whichever run next writes into fresh page cache."""
    try:
        with open(REPORTED) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


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
            fresh_start()
            written.append(measure(["curl", "-sf", "-o", os.path.join(WORK, "curl.out"), cdn_url]))
        out["ceiling"] = {"openssl_speed_mbps": speed_mbps, "dgst": summary(dgst, big_size),
                          "transport_discard": summary(discard, big_size), "transport_write": summary(written, big_size)}
        # The ceiling of a verified pull: hashing on one core, or receiving
        # and writing the bytes, whichever is slower.
        ceiling = min(speed_mbps, out["ceiling"]["transport_write"]["mbps_best"])
        out["ceiling"]["ceiling_mbps"] = ceiling

    # 2. Unlimited loopback, 2 GiB, verified.
    if want(2):
        log("2 unlimited 2 GiB")
        # Round by round (Haul, then each peer), so that a slow stretch of
        # this VM's page cache falls on every tool alike. The peers run one
        # round fewer (aria2c once: 20-40 s a run here, and far behind).
        hf = ("import hf_transfer,sys;hf_transfer.download(sys.argv[1],sys.argv[2],max_files=16,chunk_size=16<<20,"
              "parallel_failures=0,max_retries=0)")
        tools = {"haul": [], "aria2c -x16": [], "curl + dgst": [], "hf_transfer + dgst": []}
        for i in range(runs):
            tools["haul"].append(haul_pull(ng, "big"))
            if i == 0:
                check_blob(big_hex)
            if i == runs - 1 and runs > 1:
                break
            if i == 0:
                tools["aria2c -x16"].append(aria2(cdn_url, big_hex, 16))
            fresh_start()
            tools["curl + dgst"].append(measure(["bash", "-c", "curl -sf -o '%s/curl.out' '%s' && openssl dgst -sha256 '%s/curl.out'"
                                                 % (WORK, cdn_url, WORK)]))
            fresh_start()
            tools["hf_transfer + dgst"].append(measure(["bash", "-c", "'%s' -c '%s' '%s' '%s/hf.out' && openssl dgst -sha256 '%s/hf.out'"
                                                        % (py, hf, cdn_url, WORK, WORK)]))
        fresh_start()
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
            # One run each: a rate-limited run varies little (one connection
            # at 25 MB/s takes 20 s).
            k = 1
            r = [haul_pull(ng, "mid", ["--connections", str(n), "--fixed"], cdn=ng.limited) for _ in range(k)]
            scaling["haul"][n] = summary(r, mid_size)
            url = "http://127.0.0.1:%d/blobs/sha256-%s" % (ng.limited, mid_hex)
            scaling["aria2c"][n] = summary([aria2(url, mid_hex, n) for _ in range(k)], mid_size)
        out["rate_limited"] = {"per_connection_mbps": RATE, "blob_bytes": mid_size, "results": scaling}

    # 4. Slow tail.
    if want(4):
        log("4 slow tail")
        tail = {}
        for label, port in (("even", ng.limited), ("one slow in ten", ng.slowtail)):
            r = [haul_pull(ng, "mid", ["--connections", "10", "--fixed"], cdn=port) for _ in range(max(1, runs - 1))]
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

    # 8. --limit-rate accuracy: one bucket for all 16 connections.
    if want(8):
        log("8 limit-rate")
        out["limit_rate"] = [limit_rate(ng, "mid", mid_size, rate) for rate in ("25M", "100M")]

    # 9. The ceiling, paired and alternating.
    # Paired trials; the slower peers and scenarios get fewer runs, so that
    # the whole bench stays under 25 minutes with a fresh build.
    trials = 3 if quick else 5
    few = max(1, runs - 1)
    if want(9):
        log("9 paired ceiling")
        out["paired"] = paired(ng, big_hex, big_size, cdn_url, trials)

    # 10. HTTPS.
    if want(10):
        log("10 https")
        out["https"] = https(ng, py, big_hex, big_size, 1, trials)

    # 11. A 16 GiB layer, and 300 small layers.
    if want(11):
        log("11 big models")
        out["big_models"] = big_models(ng, few, big_size)

    # 12. Eight pulls at once through one daemon.
    if want(12):
        log("12 daemon, 8 models at once")
        out["daemon_many"] = daemon_many(ng, fleet_models(), big_size, runs)

    # 13. RamaLama, which pulls ollama:// models from registry.ollama.ai.
    if want(13):
        log("13 ramalama")
        out["ramalama"] = ramalama(ng, py, big_hex, big_size, 1)

    # 14. Push to a registry.
    if want(14):
        log("14 push")
        out["push"] = push(models, trials)

    # 15. Adaptive connections against servers that punish too many.
    if want(15):
        log("15 adaptive connections")
        out["adaptive"] = adaptive(ng, models, trials)


class CollapsingSource:
    """The test registry serving the bench's registry directory, its CDN
    giving each connection RATE MB/s while a client holds at most
    ADAPTIVE_K, and all of them together one connection's rate beyond (a
    source whose rate collapses under too many connections, as hf_xet's
    did under 16)."""

    def __init__(self):
        rate = "%d" % (RATE * MB)
        self.proc = subprocess.Popen(["python3", REGISTRY_PY, "serve", "--root", os.path.join(WORK, "registry"), "--cdn",
                                      "--rate", rate, "--collapse-above", str(ADAPTIVE_K), "--collapse-rate", rate,
                                      "--exit-on-eof"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.registry = json.loads(self.proc.stdout.readline())["registry"]

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait()


def pull_from(registry, name, extra=(), ca=None, trace=False):
    """A verified Haul pull of library/<name> from the registry on port
    `registry`; with `trace`, unmeasured and with HAUL_DEBUG=1, returning
    the connection limits it went through: [(seconds, limit)]."""
    models = os.path.join(WORK, "models")
    fresh_start()
    cmd = [HAUL, "pull", "127.0.0.1:%d/library/%s" % (registry, name), "--quiet"]
    cmd += (["--ca-file", ca] if ca else ["--insecure"]) + list(extra) + HAUL_ARGS
    if not trace:
        return measure(cmd, env={"OLLAMA_MODELS": models})
    p = subprocess.run(cmd, env=dict(os.environ, OLLAMA_MODELS=models, HAUL_DEBUG="1"), capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("traced pull failed: %s" % p.stderr[-2000:])
    steps = [(0.0, 4)]
    for m in re.finditer(r"\[haul ([\d.]+)s\] \S+?(?::| refused a range:) (?:\d+ -> )?(\d+) connections", p.stderr):
        steps.append((float(m.group(1)), int(m.group(2))))
    return steps


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


def push(models, trials):
    """Haul's push into Debian's docker-registry (filesystem storage under
    WORK, on loopback): the 2 GiB model paired and alternating with its
    ceiling, one monolithic `curl -T` PUT of the same blob into an upload
    session; and the 22-blob model against `skopeo copy` from an OCI layout
    of it (OCI media types: skopeo refuses Ollama's). The registry's
    storage is deleted before every run, so each run uploads everything
    into freshly freed pages; Haul's record of earlier pushes is deleted too
    (it would mount the blobs instead of sending them)."""
    base = os.path.join(WORK, "push")
    shutil.rmtree(base, ignore_errors=True)
    data = os.path.join(base, "data")
    store = os.path.join(base, "store")
    port = free_port()
    with_dirs = [os.path.join(store, "blobs"), os.path.join(base, "oci/blobs/sha256")]
    for d in with_dirs:
        os.makedirs(d)
    blobs = os.path.join(WORK, "registry/blobs")
    for name in ("big", "many"):
        m = models[name]
        for d in [m["config"]["digest"]] + [l["digest"] for l in m["layers"]]:
            target = os.path.join(store, "blobs", "sha256-" + d[7:])
            if not os.path.exists(target):
                os.link(os.path.join(blobs, "sha256-" + d[7:]), target)
        mdir = os.path.join(store, "manifests/registry.ollama.ai/library", name)
        os.makedirs(mdir)
        shutil.copy(os.path.join(WORK, "registry/manifests/library", name, "latest"), os.path.join(mdir, "latest"))
    # The many-layer model as an OCI layout skopeo will copy.
    many = models["many"]
    oci = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": dict(many["config"], mediaType="application/vnd.oci.image.config.v1+json"),
           "layers": [dict(l, mediaType="application/vnd.oci.image.layer.v1.tar") for l in many["layers"]]}
    raw = json.dumps(oci).encode()
    oci_hex = hashlib.sha256(raw).hexdigest()
    with open(os.path.join(base, "oci/blobs/sha256", oci_hex), "wb") as f:
        f.write(raw)
    for d in [many["config"]["digest"]] + [l["digest"] for l in many["layers"]]:
        os.link(os.path.join(blobs, "sha256-" + d[7:]), os.path.join(base, "oci/blobs/sha256", d[7:]))
    with open(os.path.join(base, "oci/oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(base, "oci/index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": oci["mediaType"], "digest": "sha256:" + oci_hex, "size": len(raw),
                                                      "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    with open(os.path.join(base, "config.yml"), "w") as f:
        f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
                "    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%d\n  secret: bench\n" % (data, port))
    registry = subprocess.Popen(["/usr/bin/docker-registry", "serve", os.path.join(base, "config.yml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        env = {"OLLAMA_MODELS": store}

        def clean():
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(os.path.join(store, ".haul/uploads"), ignore_errors=True)
            drop_writeback()

        big_hex, big_size = blob_of(models["big"])
        big_blob = os.path.join(store, "blobs", "sha256-" + big_hex)
        subprocess.run(["cat", big_blob], stdout=subprocess.DEVNULL)

        def curl_put(i):
            head = subprocess.run(["curl", "-sf", "-D", "-", "-o", "/dev/null", "-X", "POST",
                                   "http://127.0.0.1:%d/v2/bench/curl-%d/blobs/uploads/" % (port, i)],
                                  capture_output=True, text=True, check=True).stdout
            location = re.search(r"(?im)^location:\s*(\S+)", head).group(1)
            if location.startswith("/"):
                location = "http://127.0.0.1:%d%s" % (port, location)
            return measure(["curl", "-sf", "-o", "/dev/null", "-X", "PUT", "-H", "Content-Type: application/octet-stream",
                            "-T", big_blob, location + ("&" if "?" in location else "?") + "digest=sha256:" + big_hex])

        kinds = ["haul push", "curl -T"]
        rows = []
        for i in range(trials):
            row = {}
            for k in kinds[i % 2:] + kinds[:i % 2]:
                clean()
                if k == "haul push":
                    row[k] = measure([HAUL, "push", "big", "127.0.0.1:%d/bench/big-%d" % (port, i), "--insecure", "-q"], env=env)
                else:
                    row[k] = curl_put(i)
            rows.append(row)
        ratios = [r["haul push"]["wall"] / r["curl -T"]["wall"] for r in rows]
        out = {"trials": trials, "blob_bytes": big_size,
               "haul": dict(summary([r["haul push"] for r in rows], big_size), wall_ratios=ratios,
                            wall_ratio_median=statistics.median(ratios)),
               "curl_put": summary([r["curl -T"] for r in rows], big_size)}
        many_total = sum(l["size"] for l in many["layers"]) + many["config"]["size"]
        kinds = ["haul push", "skopeo copy"]
        rows = []
        for i in range(trials):
            row = {}
            for k in kinds[i % 2:] + kinds[:i % 2]:
                clean()
                if k == "haul push":
                    row[k] = measure([HAUL, "push", "many", "127.0.0.1:%d/bench/many-%d" % (port, i), "--insecure", "-q"], env=env)
                else:
                    row[k] = measure(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:%s:latest" % os.path.join(base, "oci"),
                                      "docker://127.0.0.1:%d/bench/many-oci-%d:latest" % (port, i)])
            rows.append(row)
        speedups = [r["skopeo copy"]["wall"] / r["haul push"]["wall"] for r in rows]
        out["many"] = {"blobs": len(many["layers"]) + 1, "bytes": many_total,
                       "haul": summary([r["haul push"] for r in rows], many_total),
                       "skopeo": summary([r["skopeo copy"] for r in rows], many_total),
                       "speedups": speedups, "speedup_median": statistics.median(speedups)}
        return out
    finally:
        registry.kill()
        registry.wait()
        shutil.rmtree(base, ignore_errors=True)


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


class JournalWatch:
    """Samples the size of every resume journal under a models directory
    while a pull runs: the largest one seen."""

    def __init__(self, models):
        import threading
        self.partials = os.path.join(models, ".haul/partials")
        self.largest = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.wait(0.05):
            try:
                names = os.listdir(self.partials)
            except FileNotFoundError:
                continue
            for n in names:
                if ".journal" in n:
                    try:
                        self.largest = max(self.largest, os.path.getsize(os.path.join(self.partials, n)))
                    except FileNotFoundError:
                        pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


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


def fleet_models():
    fleet = [ensure_model("fleet%d" % i, lambda i=i: make_huge("library/fleet%d:latest" % i, 256 << 20)) for i in range(8)]
    cache_blobs(fleet)
    return fleet


def cache_blobs(models):
    """The models' blobs on disk and in the page cache: nginx serves from
    memory, and no run pays for the generator's writeback."""
    subprocess.run(["sync"])
    for m in models:
        for layer in m["layers"] + [m["config"]]:
            subprocess.run(["cat", os.path.join(WORK, "registry/blobs", layer["digest"].replace(":", "-"))], stdout=subprocess.DEVNULL)


def start_daemon(models, env=None):
    port = free_port()
    d = subprocess.Popen([HAUL, "serve"], env=dict(os.environ, OLLAMA_MODELS=models, OLLAMA_HOST="127.0.0.1:%d" % port, **(env or {})),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            break
        except OSError:
            time.sleep(0.02)
    return d, port


def stop_daemon(d):
    d.send_signal(signal.SIGTERM)
    _, _, usage = os.wait4(d.pid, 0)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def api_pull(port, model, record):
    """POST /api/pull, streaming; `record(t, line)` for each NDJSON line."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/api/pull", body=json.dumps({"model": model, "insecure": True}), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    for line in r:
        record(time.monotonic(), json.loads(line))
    c.close()


def daemon_round(ng, names):
    """One `haul serve`, one streaming /api/pull client per model name, all
    started together: the wall time until the last success, and per client
    when it finished and the longest stretch its progress stood still."""
    import threading
    models = os.path.join(WORK, "models")
    fresh_start()
    d, port = start_daemon(models)
    clients = [{"done": {}, "moves": [], "ok": False} for _ in names]

    def client(c, name):
        def record(t, o):
            if "completed" in o and o.get("digest"):
                if o["completed"] > c["done"].get(o["digest"], 0):
                    c["done"][o["digest"]] = o["completed"]
                    c["moves"].append(t)
            if o.get("status") == "success":
                c["ok"], c["end"] = True, t
        api_pull(port, "127.0.0.1:%d/%s" % (ng.registry, name), record)

    threads = [threading.Thread(target=client, args=(c, n)) for c, n in zip(clients, names)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    cpu, rss = stop_daemon(d)
    if not all(c["ok"] for c in clients):
        raise SystemExit("a pull through the daemon failed")
    return {"wall": wall, "cpu": cpu, "rss": rss,
            "longest_still_s": [max([b - a for a, b in zip(c["moves"], c["moves"][1:])] or [0]) for c in clients],
            "finished_s": [c["end"] - start for c in clients]}


def daemon_many(ng, fleet, big_size, runs):
    """Eight different models through one `haul serve` at once, one client
    each, against one pull of as many bytes through the daemon, in
    alternating order: the median of the paired throughput ratios, how long
    each client's progress stood still at most, how far apart the clients
    finished."""
    total = sum(l["size"] for m in fleet for l in m["layers"]) + sum(m["config"]["size"] for m in fleet)
    names = ["library/fleet%d" % i for i in range(len(fleet))]
    rows = []
    for i in range(runs):
        pair = {}
        for kind in (["one", "eight"] if i % 2 == 0 else ["eight", "one"]):
            pair[kind] = daemon_round(ng, ["library/big"] if kind == "one" else names)
        rows.append(pair)
    ratios = [(total / r["eight"]["wall"]) / (big_size / r["one"]["wall"]) for r in rows]
    eight = [r["eight"] for r in rows]
    return {"models": len(fleet), "bytes": total, "runs": runs, "ratios": ratios, "ratio": statistics.median(ratios),
            "one_mbps_median": statistics.median(big_size / r["one"]["wall"] / MB for r in rows),
            "eight_mbps_median": statistics.median(total / r["wall"] / MB for r in eight),
            "cpu_per_gib": min(r["cpu"] for r in eight) / (total / GIB), "rss_mib": max(r["rss"] for r in eight),
            "longest_still_s": max(max(r["longest_still_s"]) for r in eight),
            "finish_spread": max(max(r["finished_s"]) / min(r["finished_s"]) for r in eight),
            "finished_s": eight[-1]["finished_s"]}


def ramalama(ng, py, hexd, size, runs):
    """RamaLama (PyPI) pulls `ollama://` models from https://registry.ollama.ai
    and has no option to point elsewhere. In a network namespace of its own,
    /etc/netns/NS/hosts names 127.0.0.1 registry.ollama.ai, and a second
    nginx inside it serves the bench's registry on port 443 with the bench's
    CA (trusted through SSL_CERT_FILE): RamaLama and Haul both pull
    `library/big` from "registry.ollama.ai" over HTTPS, alternating. The
    machine's own configuration is untouched but for that hosts file, which
    is removed after."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        return {"error": "needs root and iproute2 (ip netns)"}
    rl = os.path.join(os.path.dirname(py), "ramalama")
    if not os.path.exists(rl):
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "ramalama"], check=True)
    ns = "haulbench%d" % os.getpid()
    etc = "/etc/netns/" + ns
    work = os.path.join(WORK, "netns")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    proc = None
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost registry.ollama.ai\n")
        cdn = free_port()
        conf = nginxconf.write(work, os.path.join(WORK, "registry"), [(443, cdn, None, None, (ng.cert, ng.key))])
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/sbin/nginx", "-p", work, "-c", conf, "-e",
                                 os.path.join(work, "nginx-error.log")])
        for _ in range(100):
            if subprocess.run(["ip", "netns", "exec", ns, "curl", "-sf", "--cacert", ng.ca, "-o", "/dev/null",
                               "https://registry.ollama.ai/v2/library/big/manifests/latest"]).returncode == 0:
                break
            time.sleep(0.05)
        inside = ["ip", "netns", "exec", ns, "env", "SSL_CERT_FILE=" + ng.ca]
        store = os.path.join(WORK, "ramalama-store")
        models = os.path.join(WORK, "models")
        rows = {"ramalama": [], "haul": []}
        for i in range(runs):
            for label in (["ramalama", "haul"] if i % 2 == 0 else ["haul", "ramalama"]):
                fresh_start()
                # Each output is checked before the next run deletes it.
                if label == "ramalama":
                    rows[label].append(measure(inside + ["HOME=" + work, rl, "--quiet", "--store", store, "pull",
                                                         "ollama://library/big"]))
                    stored = [os.path.join(dp, f) for dp, _, fs in os.walk(store) for f in fs
                              if os.path.getsize(os.path.join(dp, f)) == size]
                    if not stored or sha256_file(stored[0]) != hexd:
                        raise SystemExit("ramalama did not store the blob it was asked for")
                else:
                    rows[label].append(measure(inside + ["OLLAMA_MODELS=" + models, HAUL, "pull", "library/big", "--quiet",
                                                         "--ca-file", ng.ca]))
                    check_blob(hexd)
        return {k: summary(v, size) for k, v in rows.items()}
    except (subprocess.CalledProcessError, SystemExit) as e:
        return {"error": str(e).splitlines()[0][:300]}
    finally:
        if proc:
            subprocess.run(["ip", "netns", "exec", ns, "/usr/sbin/nginx", "-p", work, "-c", os.path.join(work, "nginx.conf"),
                            "-s", "stop"], capture_output=True)
            proc.wait()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)
        shutil.rmtree(os.path.join(WORK, "ramalama-store"), ignore_errors=True)


def limit_rate(ng, name, size, rate):
    """A pull at --limit-rate RATE from the unlimited CDN: the average over
    the transfer against the limit, and the largest burst beyond the rate
    over any stretch of a second or more (in seconds' worth)."""
    models = os.path.join(WORK, "models")
    fresh_start()
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

def aria2(url, hexd, connections, extra=()):
    """aria2c with `connections` connections and its own SHA-256 check."""
    fresh_start()
    return measure(["aria2c", "-q", "-x%d" % connections, "-s%d" % connections, "-k1M", "--file-allocation=falloc",
                    "--allow-overwrite=true", "--checksum=sha-256=" + hexd] + list(extra) + ["-d", WORK, "-o", "aria2.out", url])


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
    url = "127.0.0.1:%d/library/big" % ng.registry
    env = dict(os.environ, OLLAMA_MODELS=models)
    # The uninterrupted reference: the better of two pulls, since writeback
    # left by earlier runs can slow any single one.
    fresh = float("inf")
    for _ in range(2):
        fresh_start()
        start = time.monotonic()
        subprocess.run([HAUL, "pull", url, "--insecure", "--quiet"] + HAUL_ARGS, env=env, check=True)
        fresh = min(fresh, time.monotonic() - start)
    fresh_start()
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
    """The 2 GiB pull through `haul serve` and through the CLI, alternating."""
    models = os.path.join(WORK, "models")
    times, cli = [], []
    for _ in range(runs):
        cli.append(haul_pull(ng, "big"))
        fresh_start()
        d, port = start_daemon(models)
        body = json.dumps({"model": "127.0.0.1:%d/library/big" % ng.registry, "insecure": True})
        r = measure(["curl", "-sfN", "-o", "/dev/null", "-X", "POST", "http://127.0.0.1:%d/api/pull" % port, "-d", body])
        r["cpu"], r["rss"] = stop_daemon(d)
        times.append(r)
    return {"daemon": summary(times, size), "cli": summary(cli, size)}


if __name__ == "__main__":
    main()
