"""Scenario 14: haul push of the 2 GiB model to Debian's docker-registry, paired with a
monolithic `curl -T` PUT of the blob (the ceiling); the 22-blob model against `skopeo copy` of
an OCI layout of it (skopeo refuses Ollama's media types)."""
import json
import os
import re
import shutil
import statistics
import subprocess
import time
import hashlib
import socket

import harness
from harness import WORK, blob_of, drop_writeback, free_port, measure, summary


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
                    row[k] = measure([harness.HAUL, "push", "big", "127.0.0.1:%d/bench/big-%d" % (port, i), "--insecure", "-q"], env=env)
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
                    row[k] = measure([harness.HAUL, "push", "many", "127.0.0.1:%d/bench/many-%d" % (port, i), "--insecure", "-q"], env=env)
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


def run(ctx):
    return push(ctx.models, ctx.trials)
