"""What every scenario is given: the servers, the models, the peers'
virtualenv, how many runs, and what earlier scenarios of the same bench
found (the ceiling)."""
import os

from harness import WORK, blob_of


class Context:
    def __init__(self, ng, models, py, runs, quick):
        self.ng = ng
        self.models = models
        self.py = py
        self.runs = runs
        self.quick = quick
        # Paired trials; the slower peers and scenarios get fewer runs, so
        # that the whole bench stays under 25 minutes with a fresh build.
        self.trials = 3 if quick else 5
        self.few = max(1, runs - 1)
        # Scenario 1's ceiling of a verified pull (MB/s), when it ran.
        self.ceiling = None
        self.big_hex, self.big_size = blob_of(models["big"])
        self.big_path = os.path.join(WORK, "registry/blobs/sha256-" + self.big_hex)
        self.mid_hex, self.mid_size = blob_of(models["mid"])
        self.cdn_url = "http://127.0.0.1:%d/blobs/sha256-%s" % (ng.cdn, self.big_hex)
