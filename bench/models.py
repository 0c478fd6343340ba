"""The bench's registry directory: generated models (once per bench
directory), kept in the page cache so nginx serves from memory."""
import json
import os
import re
import subprocess

from harness import REGISTRY_PY, WORK, log


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
