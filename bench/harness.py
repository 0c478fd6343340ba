"""The bench's harness: where things are, processes measured (wall, CPU,
peak RSS), the state every measured run starts from, summaries, and the
machine's description. Nothing here knows a scenario."""
import hashlib
import json
import os
import platform
import shutil
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
# The test registry's helpers (nginxconf: the nginx configuration the tests
# use too) are shared with the tests, not copied.
sys.path.insert(0, os.path.join(ROOT, "Tests/registry"))


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


def rm(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def summary(runs, size):
    walls = sorted(r["wall"] for r in runs)
    best = min(runs, key=lambda r: r["wall"])
    return {"runs": len(runs), "wall_min": walls[0], "wall_median": statistics.median(walls),
            "mbps_best": size / walls[0] / MB, "mbps_median": size / statistics.median(walls) / MB,
            "cpu_per_gib": best["cpu"] / (size / GIB), "rss_mib": max(r["rss"] for r in runs)}


def blob_of(model, index=0):
    return model["layers"][index]["digest"].split(":")[1], model["layers"][index]["size"]


def partial(models, hexd):
    """An interrupted download as `haul partials --json` reports it (bytes
    a resume keeps, hash state), or None: the journal's format stays
    Haul's own business."""
    out = subprocess.run([HAUL, "partials", "--json"], env=dict(os.environ, OLLAMA_MODELS=models),
                         capture_output=True, text=True, check=True)
    return next((d for d in json.loads(out.stdout)["downloads"] if d["digest"] == "sha256:" + hexd), None)


def pull_log(stderr):
    """The line a pull logs when it ends (HAUL_LOG_FORMAT=json): bytes
    downloaded and hashed this run, the hash state it resumed from."""
    for line in stderr.splitlines():
        if '"message":"pull"' in line:
            return json.loads(line)
    raise SystemExit("no pull line in haul's output:\n" + stderr[-2000:])


def check_blob(hexd):
    path = os.path.join(WORK, "models/blobs/sha256-" + hexd)
    if sha256_file(path) != hexd:
        raise SystemExit("haul stored a blob that does not match its digest")


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
