"""The servers and the tools the bench runs: nginx (registry + CDNs, plain
and TLS), the collapsing test registry, Haul (CLI and daemon), aria2c,
curl, openssl dgst, and the installation of the peers."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import harness
import nginxconf  # the nginx configuration the tests use too (harness puts it on the path)
from harness import ADAPTIVE_K, HAUL_ARGS, MB, RATE, REGISTRY_PY, VENV, WORK, fresh_start, free_port, log, measure


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


def haul_pull(ng, name, extra=(), cdn=None):
    """A verified Haul pull of library/<name> through the registry block
    whose 307 goes to the CDN on port `cdn` (default: unlimited); over TLS
    (trusting the bench's CA) for the TLS CDN."""
    models = os.path.join(WORK, "models")
    fresh_start()
    url = "127.0.0.1:%d/library/%s" % (ng.registries[cdn or ng.cdn], name)
    scheme = ["--ca-file", ng.ca] if cdn == ng.tls_cdn else ["--insecure"]
    r = measure([harness.HAUL, "pull", url, "--quiet"] + scheme + list(extra) + HAUL_ARGS, env={"OLLAMA_MODELS": models})
    if "--direct-io" in extra:
        # Written past the page cache: read it in, outside the measurement,
        # so that the next run finds freed pages as after any other tool.
        subprocess.run(["bash", "-c", "cat '%s'/blobs/* > /dev/null" % models])
    return r


def pull_from(registry, name, extra=(), ca=None, trace=False):
    """A verified Haul pull of library/<name> from the registry on port
    `registry`; with `trace`, unmeasured and with HAUL_DEBUG=1, returning
    the connection limits it went through: [(seconds, limit)]."""
    models = os.path.join(WORK, "models")
    fresh_start()
    cmd = [harness.HAUL, "pull", "127.0.0.1:%d/library/%s" % (registry, name), "--quiet"]
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


def start_daemon(models, env=None):
    port = free_port()
    d = subprocess.Popen([harness.HAUL, "serve"], env=dict(os.environ, OLLAMA_MODELS=models, OLLAMA_HOST="127.0.0.1:%d" % port, **(env or {})),
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


def aria2(url, hexd, connections, extra=()):
    """aria2c with `connections` connections and its own SHA-256 check."""
    fresh_start()
    return measure(["aria2c", "-q", "-x%d" % connections, "-s%d" % connections, "-k1M", "--file-allocation=falloc",
                    "--allow-overwrite=true", "--checksum=sha-256=" + hexd] + list(extra) + ["-d", WORK, "-o", "aria2.out", url])


def curl_o(url, ca=None):
    """`curl -o file`: receive and write, nothing verified."""
    fresh_start()
    return measure(["curl", "-sf"] + (["--cacert", ca] if ca else []) + ["-o", os.path.join(WORK, "curl.out"), url])


def dgst(path):
    return measure(["openssl", "dgst", "-sha256", path])
