"""Scenario 13: RamaLama (PyPI) and Haul pulling ollama://library/big from
"registry.ollama.ai" over HTTPS, in a network namespace whose hosts file points it at the bench."""
import os
import shutil
import subprocess
import time

import harness
import nginxconf  # (on the path harness sets)
from harness import WORK, check_blob, free_port, fresh_start, measure, sha256_file, summary


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
                    rows[label].append(measure(inside + ["OLLAMA_MODELS=" + models, harness.HAUL, "pull", "library/big", "--quiet",
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


def run(ctx):
    return ramalama(ctx.ng, ctx.py, ctx.big_hex, ctx.big_size, 1)
