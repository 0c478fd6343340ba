"""Drives `haul serve`'s /api/push with the official `ollama` Python client.

Usage: ollama_push_check.py HOST MODEL

Pushes MODEL (insecure, streaming), checks every event is the client's own
ProgressResponse in Ollama's order (retrieving manifest, pushing <12 hex>
with digest and sizes, pushing manifest, success), then pushes a model that
is not there and expects the client's ResponseError. Prints what it saw as
one JSON object; exits non-zero (the reason on stderr) on any mismatch.
"""
import json
import re
import sys

import ollama
from ollama import ProgressResponse, ResponseError

host, model = sys.argv[1], sys.argv[2]
client = ollama.Client(host=host)


def check(condition, message):
    if not condition:
        sys.stderr.write("check failed: %s\n" % message)
        sys.exit(1)


events = list(client.push(model, insecure=True, stream=True))
check(all(isinstance(e, ProgressResponse) for e in events), "an event is not a ProgressResponse")
statuses = [e.status for e in events]
check(statuses[0] == "retrieving manifest", "first status %r" % statuses[0])
check(statuses[-2:] == ["pushing manifest", "success"], "last statuses %r" % statuses[-2:])
pushing = [e for e in events if e.status.startswith("pushing ") and e.status != "pushing manifest"]
check(pushing, "no blob was reported")
for e in pushing:
    check(re.fullmatch(r"pushing [0-9a-f]{12}", e.status) and e.digest and e.digest.startswith("sha256:") and e.total,
          "bad blob event %r" % e)
digests = sorted({e.digest for e in pushing})

try:
    list(client.push("not-here-at-all", insecure=True, stream=True))
    check(False, "pushing a missing model did not fail")
except ResponseError as error:
    missing = str(error.error)

print(json.dumps({"statuses": statuses, "digests": digests, "missing": missing}))
