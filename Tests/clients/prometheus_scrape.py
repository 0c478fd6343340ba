"""Scrapes a `/metrics` URL and parses it with prometheus_client's own text
parser, as Prometheus' Python tooling reads it.

Usage: prometheus_scrape.py URL

Prints one JSON object: {"samples": [[name, {labels}, value], ...],
"types": {family: type}}. Exits non-zero (the reason on stderr) when the
page does not parse, a family's samples do not carry its name, or the
content type is not Prometheus' text format.
"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

url = sys.argv[1]
with urllib.request.urlopen(url, timeout=30) as response:
    content_type = response.headers.get("Content-Type", "")
    text = response.read().decode("utf-8")
if not content_type.startswith("text/plain"):
    sys.stderr.write("content type %r is not Prometheus' text format\n" % content_type)
    sys.exit(1)
samples, types = [], {}
for family in text_string_to_metric_families(text):
    types[family.name] = family.type
    for s in family.samples:
        if not s.name.startswith(family.name):
            sys.stderr.write("sample %s outside its family %s\n" % (s.name, family.name))
            sys.exit(1)
        samples.append([s.name, s.labels, s.value])
print(json.dumps({"samples": samples, "types": types}))
