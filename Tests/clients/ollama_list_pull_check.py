"""A manifest-list model pulled through `haul serve` with the official
`ollama` Python client.

Usage: ollama_list_pull_check.py HOST MODEL

Pulls MODEL (a tag that is an Ollama manifest list) streaming, checks every
event is the client's ProgressResponse, that the child manifest's fetch
arrives as Ollama >= 0.40 reports it ("pulling model", digest
"sha256:model"), that the stream ends in success, and that list() then
shows one row for the child that was pulled. Prints one JSON object with
what it saw; exits non-zero (with the reason on stderr) on any mismatch.
"""
import json
import sys

import ollama
from ollama import ProgressResponse

host, model = sys.argv[1], sys.argv[2]
client = ollama.Client(host=host)


def check(condition, message):
    if not condition:
        sys.stderr.write("check failed: %s\n" % message)
        sys.exit(1)


events = list(client.pull(model, stream=True, insecure=True))
check(all(isinstance(e, ProgressResponse) for e in events), "an event is not a ProgressResponse")
statuses = [e.status for e in events]
check(statuses[0] == "pulling manifest", "first status %r" % statuses[0])
check(statuses[-1] == "success", "last status %r" % statuses[-1])
child = [e for e in events if e.status == "pulling model"]
check(child and all(e.digest == "sha256:model" for e in child), "no 'pulling model' events: %r" % statuses)
check(child[-1].completed == child[-1].total and child[-1].total > 0, "child fetch ended at %r of %r" % (child[-1].completed, child[-1].total))
rows = [m for m in client.list().models if m.model in (model, model + ":latest")]
check(len(rows) == 1, "list() rows for %s: %r" % (model, rows))
details = rows[0].details.model_dump() if rows[0].details is not None else {}
print(json.dumps({"events": len(events), "child_events": len(child), "runner": details.get("runner"),
                  "digest": rows[0].digest}))
