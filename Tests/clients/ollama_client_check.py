"""Drives `haul serve` with the official `ollama` Python client.

Usage: ollama_client_check.py HOST MODEL

Pulls MODEL streaming and not streaming, checks every event arrives as the
client's own ProgressResponse type with Ollama's vocabulary, then lists,
shows and deletes the model through the client. Prints one JSON object with
what it saw; exits non-zero (with the reason on stderr) on any mismatch.
"""
import json
import re
import sys

import ollama
from ollama import ListResponse, ProgressResponse, ResponseError, ShowResponse

host, model = sys.argv[1], sys.argv[2]
client = ollama.Client(host=host)


def check(condition, message):
    if not condition:
        sys.stderr.write("check failed: %s\n" % message)
        sys.exit(1)


events = list(client.pull(model, stream=True, insecure=True))
check(events, "no events")
for e in events:
    check(isinstance(e, ProgressResponse), "event is %r, not ProgressResponse" % type(e))
statuses = [e.status for e in events]
check(statuses[0] == "pulling manifest", "first status %r" % statuses[0])
check(statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"], "last statuses %r" % statuses[-3:])
blob_events = [e for e in events if e.digest]
check(blob_events, "no per-blob progress")
for e in blob_events:
    check(re.fullmatch(r"sha256:[0-9a-f]{64}", e.digest), "digest %r" % e.digest)
    check(e.status == "pulling " + e.digest[7:19], "status %r for %s" % (e.status, e.digest))
    check(e.total and e.total > 0, "total %r" % e.total)
    check(e.completed is None or 0 < e.completed <= e.total, "completed %r of %r" % (e.completed, e.total))
finals = {}
for e in blob_events:
    finals[e.digest] = (e.completed or 0, e.total)
check(all(c == t for c, t in finals.values()), "a blob did not reach its total: %r" % finals)

listed = client.list()
check(isinstance(listed, ListResponse), "list() gave %r" % type(listed))
names = [m.model for m in listed.models]
check(any(n == model or n == model + ":latest" for n in names), "%s not in %r" % (model, names))
entry = next(m for m in listed.models if m.model in (model, model + ":latest"))
check(entry.size == sum(t for _, t in finals.values()), "list size %r vs %r" % (entry.size, finals))
check(re.fullmatch(r"[0-9a-f]{64}", entry.digest or ""), "list digest %r" % entry.digest)
check(entry.details and entry.details.family == "test", "details %r" % entry.details)
check(entry.modified_at is not None, "no modified_at")

again = client.pull(model, stream=False, insecure=True)
check(isinstance(again, ProgressResponse) and again.status == "success", "stream=False gave %r" % again)

shown = client.show(model)
check(isinstance(shown, ShowResponse), "show() gave %r" % type(shown))
check(shown.details.format == "gguf", "show details %r" % shown.details)
check("FROM " in (shown.modelfile or ""), "modelfile %r" % shown.modelfile)

try:
    client.pull("bad/../name", stream=False)
    check(False, "an invalid name was accepted")
except ResponseError as e:
    check(e.status_code == 400 and "invalid model name" in e.error, "invalid name gave %r %r" % (e.status_code, e.error))

deleted = client.delete(model)
check(deleted.status == "success", "delete gave %r" % deleted)
check(all(m.model not in (model, model + ":latest") for m in client.list().models), "model still listed after delete")

print(json.dumps({"events": len(events), "blobs": len(finals), "statuses": sorted(set(statuses)),
                  "listed": entry.model, "size": entry.size}))
