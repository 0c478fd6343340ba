#!/usr/bin/env python3
"""A registry for Haul's tests and demo: Ollama's wire protocol on loopback.

  testregistry.py make-model --root DIR --name ns/model:tag --layer 64M ...
      Writes random layers, a config blob and a Docker v2 manifest under DIR
      (DIR/manifests/<ns>/<model>/<tag>, DIR/blobs/sha256-<hex>) and prints
      the manifest as JSON.

  testregistry.py serve --root DIR [--cdn] [--rate R] [--slow-connection N]
      Serves GET /v2/<ns>/<model>/manifests/<tag> and GET|HEAD
      /v2/<ns>/<model>/blobs/sha256:<hex>. With --cdn, blob requests answer
      307 to a second listener (the "CDN"), which serves byte ranges. Prints
      {"registry": PORT, "cdn": PORT} on stdout once listening.

  Rates are per connection, in bytes/s (suffixes K, M, G are binary). The
  N-th connection accepted by the blob listener (0-based) can be made slow
  with --slow-connection N --slow-factor F (rate/F).
  With --collapse-above K --collapse-rate R the server plays one whose
  total rate collapses when a client holds more than K blob GETs at once
  (as hf_xet's CDN did under 16 connections): while more than K run, all of
  them share R bytes/s; at K or fewer each gets --rate.

  GET /_stats on the registry port returns request and byte counts as JSON.
  POST /_faults with a JSON list of fault rules arms fault injection on the
  blob listener. Each rule has a "kind" and "times" (how many requests it
  hits, default 1); the first rule with uses left applies:
    status               answer "status" with "body" and "headers"
    ignore-range         answer 200 with the whole blob
    wrong-content-range  a Content-Range shifted by "shift" bytes
    reset / truncate     close the connection (RST / FIN) at "fraction" of the body
    corrupt              flip one byte at "fraction" of the body
    stall                stop sending for "seconds" at "fraction" of the body
    none                 serve normally (lets the first requests through)
    chaos                per request, drawn from a generator seeded by
                         "seed" and the request's number: a correct answer,
                         a 200 with the whole blob, altered bytes in a 200 or
                         a 206, a truncated body, or a 503
  Rules with "min_size" only hit blobs at least that large. Any rule may add
  "alter": N (flip N bytes of the blob from absolute offset "alter_from",
  default 0, wherever the answer carries them) and "delay": seconds (wait
  before answering).
  and one setting that is not consumed:
    cdn-ttl              CDN URLs issued from now on expire after "seconds";
                         an expired one gets 403 like a stale S3 signature
"""
import base64
import argparse
import hashlib
import http.server
import json
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import uploads

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
LIST_TYPE = "application/vnd.ollama.manifest.list.v2+json"


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    if not m:
        raise ValueError("bad size %r" % text)
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def write_blob(root, data_chunks):
    os.makedirs(os.path.join(root, "blobs"), exist_ok=True)
    tmp = os.path.join(root, "blobs", ".tmp-%d" % os.getpid())
    h = hashlib.sha256()
    size = 0
    with open(tmp, "wb") as f:
        for chunk in data_chunks:
            h.update(chunk)
            f.write(chunk)
            size += len(chunk)
    digest = h.hexdigest()
    os.chmod(tmp, 0o644)
    os.replace(tmp, os.path.join(root, "blobs", "sha256-" + digest))
    return "sha256:" + digest, size


def random_chunks(size, seed):
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(left, 16 << 20)
        yield rng.randbytes(n)
        left -= n


def gguf_header():
    """A GGUF v3 metadata section (no tensors, general.architecture "test"),
    so a generated weights layer reads as a GGUF model; random bytes follow."""
    key, value = b"general.architecture", b"test"
    return (b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
            + len(key).to_bytes(8, "little") + key + (8).to_bytes(4, "little") + len(value).to_bytes(8, "little") + value)


def with_prefix(prefix, chunks):
    for chunk in chunks:
        n = min(len(prefix), len(chunk))
        yield prefix[:n] + chunk[n:]
        prefix = prefix[n:]


def make_model(args):
    ns_model, _, tag = args.name.partition(":")
    tag = tag or "latest"
    ns, _, model = ns_model.rpartition("/")
    ns = ns or "library"
    layers = []
    for spec in args.existing or []:
        digest, size, media = (spec.split(":", 3)[1:] + [""])[:3] if spec.startswith("sha256:") else ("", "", "")
        path = os.path.join(args.root, "blobs", "sha256-" + digest)
        if not re.fullmatch(r"[0-9a-f]{64}", digest) or not size.isdigit() or not os.path.isfile(path) or os.path.getsize(path) != int(size):
            raise SystemExit("--existing wants sha256:HEX:SIZE[:mediaType] of a blob under %s/blobs" % args.root)
        layers.append({"mediaType": media or "application/vnd.ollama.image.model", "digest": "sha256:" + digest,
                       "size": int(size)})
    for spec in args.file or []:
        path, _, media = spec.partition(":")
        with open(path, "rb") as f:
            digest, size = write_blob(args.root, iter(lambda: f.read(16 << 20), b""))
        layers.append({"mediaType": media or "application/vnd.ollama.image.model", "digest": digest, "size": size})
    for i, spec in enumerate(args.layer):
        size_text, _, media = spec.partition(":")
        media = media or ("application/vnd.ollama.image.model" if i == 0 else "application/vnd.ollama.image.params")
        chunks = random_chunks(parse_size(size_text), "%s-%d-%s" % (args.name, i, args.seed))
        if media == "application/vnd.ollama.image.model":
            chunks = with_prefix(gguf_header(), chunks)
        digest, size = write_blob(args.root, chunks)
        layers.append({"mediaType": media, "digest": digest, "size": size})
    for spec in args.text or []:
        kind, _, text = spec.partition("=")
        digest, size = write_blob(args.root, [text.encode()])
        layers.append({"mediaType": "application/vnd.ollama.image." + kind, "digest": digest, "size": size})
    if args.repeat:
        # The last layer listed this many times in all (one blob, many
        # entries): what a hostile manifest may do, up to 4,096 layers.
        layers += [layers[-1]] * (args.repeat - 1)
    config = json.dumps({"model_format": "gguf", "model_family": "test", "model_families": ["test"],
                         "model_type": "tiny", "file_type": "F16", "architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}).encode()
    cdigest, csize = write_blob(args.root, [config])
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cdigest, "size": csize},
                "layers": layers}
    raw = json.dumps(manifest, indent=2).encode()
    mdir = os.path.join(args.root, "manifests", ns, model)
    os.makedirs(mdir, exist_ok=True)
    with open(os.path.join(mdir, tag), "wb") as f:
        f.write(raw)
    json.dump(manifest, sys.stdout)
    sys.stdout.write("\n")


def push(args):
    """Pushes a model made by make-model into a real registry (the CNCF
    distribution registry) through the registry API: monolithic blob
    uploads, then the manifest, as `docker push` would."""
    import urllib.parse
    import urllib.request
    ns_model, _, tag = args.name.partition(":")
    with open(os.path.join(args.source, "manifests", ns_model, tag or "latest"), "rb") as f:
        raw = f.read()
    manifest = json.loads(raw)
    context = ssl.create_default_context(cafile=args.ca) if args.ca else None
    auth = {}
    if args.user:
        auth["Authorization"] = "Basic " + base64.b64encode(args.user.encode()).decode()

    def call(method, url, body=None, headers=None):
        req = urllib.request.Request(url, data=body, method=method, headers={**auth, **(headers or {})})
        with urllib.request.urlopen(req, context=context) as r:
            return r.status, r.headers

    for layer in manifest["layers"] + [manifest["config"]]:
        with open(os.path.join(args.source, "blobs", layer["digest"].replace(":", "-")), "rb") as f:
            data = f.read()
        _, headers = call("POST", "%s/v2/%s/blobs/uploads/" % (args.to, ns_model))
        location = urllib.parse.urljoin(args.to, headers["Location"])
        location += ("&" if "?" in location else "?") + "digest=" + layer["digest"]
        call("PUT", location, data, {"Content-Type": "application/octet-stream"})
    call("PUT", "%s/v2/%s/manifests/%s" % (args.to, ns_model, tag or "latest"), raw,
         {"Content-Type": manifest["mediaType"]})


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.data = {"manifest_requests": 0, "blob_requests": {}, "blob_bytes": {}, "connections": 0,
                     "range_requests": 0, "redirects": 0, "expired": 0, "token_requests": 0,
                     "unauthorized": 0, "cdn_authorization": 0, "via_proxy": 0, "overlong_sent": 0,
                     "issued_tokens": [], "authorizations_seen": [], "user_agents": [], "manifest_accepts": [],
                     "cdn_connections": 0, "upload_bytes": 0, "manifest_types": [],
                     "part_bytes": 0, "part_puts": {}, "part_in_flight_max": 0, "busy_refusals": 0,
                     "active_max": 0, "collapsed_bytes": 0}

    def note(self, key, value):
        with self.lock:
            if value not in self.data[key]:
                self.data[key].append(value)

    def add(self, key, sub=None, n=1):
        with self.lock:
            if sub is None:
                self.data[key] += n
            else:
                self.data[key][sub] = self.data[key].get(sub, 0) + n

    def peak(self, key, value):
        with self.lock:
            self.data[key] = max(self.data[key], value)

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.data))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, state, role):
        self.state = state
        self.role = role
        self.accepted = 0
        self.accept_lock = threading.Lock()
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, handler)

    def next_connection_index(self):
        with self.accept_lock:
            index = self.accepted
            self.accepted += 1
        self.state.stats.add("connections")
        if self.role == "cdn":
            self.state.stats.add("cdn_connections")
        return index

    def handle_error(self, request, client_address):
        # Clients abort ranges on purpose (splits, cancellation); stay quiet.
        pass


class State:
    def __init__(self, args):
        self.root = args.root
        self.rate = parse_size(args.rate) if args.rate else 0
        self.slow_connection = args.slow_connection
        self.slow_factor = args.slow_factor
        self.stats = Stats()
        self.faults = []
        self.fault_lock = threading.Lock()
        self.chaos_count = 0
        self.cdn_port = None
        self.cdn_host = "127.0.0.1"
        self.registry_port = None
        self.cdn_ttl = None
        # --token-auth: registry requests need a Bearer token from /token;
        # "user:password" makes /token require those (Basic), "anonymous"
        # gives tokens to anyone, "ollama" checks Ollama's ed25519 signature.
        self.token_auth = args.token_auth
        self.token_ttl = args.token_ttl
        # --realm: the challenge names this realm (and --service) instead of
        # the registry's own, as a hostile registry naming another one would.
        self.realm = args.realm
        self.service = args.service
        self.self_redirect = args.self_redirect
        # --max-concurrent K: blob GETs beyond K at once get 503.
        self.max_concurrent = getattr(args, "max_concurrent", None)
        self.busy = 0
        self.busy_lock = threading.Lock()
        # --collapse-above K: more than K blob GETs at once share --collapse-rate.
        self.collapse_above = getattr(args, "collapse_above", None)
        self.collapse_rate = parse_size(args.collapse_rate) if getattr(args, "collapse_rate", None) else 0
        self.active = 0
        # --redirect-uploads: uploads in Ollama's parts (uploads.py).
        self.redirect_uploads = getattr(args, "redirect_uploads", False)
        self.part_hold = None
        # --min-client X.Y.Z: manifests are refused (412) to older clients.
        min_client = getattr(args, "min_client", None)
        self.min_client = tuple(int(x) for x in min_client.split(".")) if min_client else None
        # --head-no-length HEX: HEADs of that blob have no Content-Length.
        self.head_no_length = set(getattr(args, "head_no_length", []) or [])
        self.tokens = {}
        self.token_lock = threading.Lock()

    def take_fault(self, size, target="blob"):
        """Returns the first armed fault that still has uses and applies to
        a blob of `size` bytes (rules may set "min_size"), or to manifests
        for rules with "target": "manifest", consuming one use."""
        with self.fault_lock:
            for f in self.faults:
                if f.get("target", "blob") == target and f.get("times", 1) > 0 and size >= f.get("min_size", 0):
                    f["times"] = f.get("times", 1) - 1
                    return dict(f)
        return None


def verify_ollama_signature(header, url):
    """Ollama's token request signature (<ssh pubkey b64>:<sig b64> over
    "GET,<url>,<b64 of hex sha256 of the empty body>"), checked with the
    openssl command line so the test needs no Python crypto package."""
    try:
        pub_b64, sig_b64 = header.split(":", 1)
        wire = base64.b64decode(pub_b64)
        n = int.from_bytes(wire[:4], "big")
        if wire[4:4 + n] != b"ssh-ed25519":
            return False
        raw = wire[4 + n + 4:4 + n + 4 + 32]
        der = bytes.fromhex("302a300506032b6570032100") + raw
        message = ("GET,%s,%s" % (url, base64.b64encode(hashlib.sha256(b"").hexdigest().encode()).decode())).encode()
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "pub.pem"), "w") as f:
                f.write("-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % base64.b64encode(der).decode())
            with open(os.path.join(d, "msg"), "wb") as f:
                f.write(message)
            with open(os.path.join(d, "sig"), "wb") as f:
                f.write(base64.b64decode(sig_b64))
            r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", os.path.join(d, "pub.pem"),
                                "-rawin", "-in", os.path.join(d, "msg"), "-sigfile", os.path.join(d, "sig")],
                               capture_output=True)
            return r.returncode == 0
    except Exception:
        return False


class _Discard:
    """Stands in for the socket after a HEAD response's headers."""

    def __init__(self, real):
        self.real = real

    def write(self, data):
        return len(data)

    def flush(self):
        pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "haul-testregistry"

    def setup(self):
        # One handler instance serves one connection (keep-alive included).
        self.conn_index = self.server.next_connection_index()
        super().setup()

    def log_message(self, *args):
        pass

    @property
    def state(self):
        return self.server.state

    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        # The same answer as GET without its body: a client that keeps the
        # connection (Go's, in a pull-through cache) would read body bytes
        # as the next response.
        self.head_only = True
        try:
            self.do_GET()
        finally:
            self.head_only = False
            if isinstance(self.wfile, _Discard):
                self.wfile = self.wfile.real

    def end_headers(self):
        super().end_headers()
        if getattr(self, "head_only", False):
            self.wfile.flush()
            self.wfile = _Discard(self.wfile)

    def do_PATCH(self):
        self.write_request("PATCH")

    def do_PUT(self):
        self.write_request("PUT")

    def handle_expect_100(self):
        # A registry that redirects a part answers before the bytes are sent.
        return True if uploads.redirects(self) else super().handle_expect_100()

    def write_request(self, method):
        """The write side (uploads.py), on the registry, under its auth."""
        path = self.path.split("?", 1)[0]
        if self.server.role == "cdn":
            if not uploads.handle_part(self):
                self.send_json(404, {"errors": [{"code": "UNSUPPORTED", "message": "not found"}]})
            return
        if self.server.role == "registry" and self.authorized(path) and not uploads.handle(self, method):
            self.send_json(404, {"errors": [{"code": "UNSUPPORTED", "message": "not found"}]})

    def do_POST(self):
        if self.server.role == "registry" and "/blobs/uploads/" in self.path:
            return self.write_request("POST")
        if self.path == "/_faults" and self.server.role == "registry":
            length = int(self.headers.get("Content-Length", "0"))
            rules = json.loads(self.rfile.read(length) or b"[]")
            with self.state.fault_lock:
                self.state.cdn_ttl = next((r["seconds"] for r in rules if r["kind"] == "cdn-ttl"), None)
                self.state.part_hold = next((r["from_part"] for r in rules if r["kind"] == "part-hold"), None)
                self.state.faults = [r for r in rules if r["kind"] not in ("cdn-ttl", "part-hold")]
            return self.send_json(200, {"armed": len(rules)})
        self.send_json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

    def authorized(self, path):
        """Token auth for registry routes: True, or a 401 was sent."""
        if not self.state.token_auth:
            return True
        auth = self.headers.get("Authorization", "")
        if auth:
            self.state.stats.note("authorizations_seen", auth)
        with self.state.token_lock:
            expires = self.state.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if expires is not None and time.time() < expires:
            return True
        self.state.stats.add("unauthorized")
        m = re.match(r"/v2/([^/]+/[^/]+)/", path)
        scope = "repository:%s:%s" % (m.group(1) if m else "", "pull" if self.command in ("GET", "HEAD") else "pull,push")
        realm = self.state.realm or "http://127.0.0.1:%d/token" % self.state.registry_port
        challenge = 'Bearer realm="%s",service="%s",scope="%s"' % (realm, self.state.service, scope)
        self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                       {"WWW-Authenticate": challenge})
        return False

    def issue_token(self):
        self.state.stats.add("token_requests")
        mode = self.state.token_auth
        auth = self.headers.get("Authorization", "")
        if auth:
            self.state.stats.note("authorizations_seen", auth)
        if mode == "ollama":
            ok = verify_ollama_signature(auth, "http://127.0.0.1:%d%s" % (self.state.registry_port, self.path))
        elif mode == "anonymous":
            ok = True
        else:
            ok = auth == "Basic " + base64.b64encode(mode.encode()).decode()
        if not ok:
            return self.send_json(401, {"errors": [{"code": "DENIED", "message": "bad credentials"}]})
        token = base64.urlsafe_b64encode(os.urandom(18)).decode()
        with self.state.token_lock:
            self.state.tokens[token] = time.time() + self.state.token_ttl
        self.state.stats.note("issued_tokens", token)
        # Integer seconds, as the token spec says: Go clients (distribution's
        # proxy) refuse a JSON number with a fraction. Sub-second TTLs stay
        # fractional for the expiry tests.
        ttl = self.state.token_ttl
        self.send_json(200, {"token": token, "expires_in": int(ttl) if ttl == int(ttl) else ttl})

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if self.headers.get("Via"):
            self.state.stats.add("via_proxy")
        if self.server.role == "cdn" and self.headers.get("Authorization"):
            self.state.stats.add("cdn_authorization")
        if self.server.role == "registry":
            if path == "/_stats":
                return self.send_json(200, self.state.stats.snapshot())
            if path == "/token" and self.state.token_auth:
                return self.issue_token()
            if (path.startswith("/v2/") or path.startswith("/_self/")) and not self.authorized(path):
                return
            if "/blobs/uploads/" in path:
                if not uploads.handle(self, "GET"):
                    self.send_json(404, {"errors": [{"code": "BLOB_UPLOAD_UNKNOWN", "message": "blob upload unknown"}]})
                return
            m = re.fullmatch(r"/v2/([^/]+)/([^/]+)/manifests/([^/]+)", path)
            if m:
                return self.manifest(*m.groups())
            m = re.fullmatch(r"/_self/sha256-([0-9a-f]{64})", path)
            if m and self.state.self_redirect:
                return self.blob(m.group(1))
            m = re.fullmatch(r"/v2/([^/]+)/([^/]+)/blobs/sha256:([0-9a-f]{64})", path)
            if m:
                if self.state.self_redirect:
                    # Another path of this same origin (still under auth).
                    self.send_response(307)
                    self.send_header("Location", "/_self/sha256-" + m.group(3))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.state.cdn_port:
                    self.state.stats.add("redirects")
                    loc = "http://%s:%d/cdn/sha256-%s?X-Amz-Expires=86400" % (self.state.cdn_host, self.state.cdn_port, m.group(3))
                    if self.state.cdn_ttl is not None:
                        loc += "&expires=%.3f" % (time.time() + self.state.cdn_ttl)
                    self.send_response(307)
                    self.send_header("Location", loc)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                return self.blob(m.group(3))
        elif self.server.role == "cdn":
            m = re.fullmatch(r"/cdn/sha256-([0-9a-f]{64})", path)
            if m:
                expires = re.search(r"[?&]expires=([0-9.]+)", self.path)
                if expires and time.time() > float(expires.group(1)):
                    self.state.stats.add("expired")
                    body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                return self.blob(m.group(1))
        self.send_json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

    def endless_header(self):
        """A 200 whose header section never ends (bounded here at 64 MiB so
        a broken client cannot make the test run forever)."""
        pad = b"X-Pad: " + b"a" * 8000 + b"\r\n"
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            for _ in range(8192):
                self.wfile.write(pad)
        except OSError:
            pass
        self.close_connection = True

    def client_version(self):
        """The Ollama version an `ollama/X.Y.Z (...)` User-Agent claims, as a
        tuple; None when it claims none."""
        m = re.match(r"ollama/(\d+)\.(\d+)\.(\d+)", self.headers.get("User-Agent", ""))
        return tuple(int(x) for x in m.groups()) if m else None

    def manifest(self, ns, model, tag):
        self.state.stats.add("manifest_requests")
        self.state.stats.note("user_agents", self.headers.get("User-Agent", ""))
        self.state.stats.note("manifest_accepts", self.headers.get("Accept", ""))
        fault = self.state.take_fault(0, target="manifest")
        if fault and fault["kind"] == "endless-header":
            return self.endless_header()
        if self.state.min_client and (self.client_version() or (0, 0, 0)) < self.state.min_client:
            # Ollama's registry gates models on the client version.
            return self.send_json(412, {"errors": [{"code": "DENIED", "message": "this model requires a newer version of Ollama"}]})
        p = os.path.join(self.state.root, "manifests", ns, model, tag)
        if not os.path.isfile(p):
            return self.send_json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
        with open(p, "rb") as f:
            body = f.read()
        content_type = MANIFEST_TYPE
        try:
            is_list = json.loads(body).get("mediaType") == LIST_TYPE
        except (ValueError, AttributeError):
            is_list = False
        if is_list:
            if LIST_TYPE in self.headers.get("Accept", ""):
                content_type = LIST_TYPE
            else:
                # A client that does not ask for lists gets the llama.cpp
                # child as a plain manifest.
                children = [c for c in json.loads(body)["manifests"] if c.get("runner") == "llamacpp" and c.get("digest")]
                child = children[0]["digest"].replace(":", "-") if children else None
                if not child or not os.path.isfile(os.path.join(self.state.root, "blobs", child)):
                    return self.send_json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "no plain manifest"}]})
                with open(os.path.join(self.state.root, "blobs", child), "rb") as f:
                    body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def connection_rate(self):
        rate = self.state.rate
        if self.state.slow_connection is not None and self.conn_index == self.state.slow_connection:
            rate = (rate or (256 << 20)) / self.state.slow_factor
        return rate

    def blob(self, hexd):
        p = os.path.join(self.state.root, "blobs", "sha256-" + hexd)
        if not os.path.isfile(p):
            return self.send_json(404, {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]})
        size = os.path.getsize(p)
        start, end = 0, size - 1
        ranged = False
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m:
                return self.send_json(416, {"error": "bad range"})
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start > end:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            ranged = True
        self.state.stats.add("blob_requests", hexd)
        if ranged:
            self.state.stats.add("range_requests")
        if self.command == "HEAD" and hexd in self.state.head_no_length:
            # A HEAD whose answer has no Content-Length.
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            return
        fault = self.state.take_fault(size) if self.command == "GET" else None
        if fault and fault["kind"] == "status":
            body = fault.get("body", "injected failure").encode()
            self.send_response(fault["status"])
            for k, v in fault.get("headers", {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if fault and fault["kind"] == "endless-header":
            return self.endless_header()
        if fault and fault["kind"] == "overlong":
            # A 200 with no length that sends the blob and then more: only
            # the connection closing ends it.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self.send_body(p, hexd, 0, size, None)
            try:
                for _ in range(fault.get("extra_mib", 64)):
                    self.wfile.write(b"\0" * (1 << 20))
                    self.state.stats.add("overlong_sent", n=1 << 20)
            except OSError:
                pass
            return
        if fault and fault["kind"] == "chaos":
            fault = self.chaos(fault, size)
        if fault and fault.get("delay"):
            time.sleep(fault["delay"])
        if fault and fault["kind"] == "status":
            return self.send_json(fault["status"], {"errors": [{"code": "UNAVAILABLE", "message": "chaos"}]})
        if fault and fault["kind"] == "ignore-range":
            start, end, ranged = 0, size - 1, False
        if self.command == "GET" and self.state.collapse_above is not None:
            with self.state.busy_lock:
                self.state.active += 1
                self.state.stats.peak("active_max", self.state.active)
            try:
                return self.send_ranged(p, hexd, start, end, size, ranged, fault)
            finally:
                with self.state.busy_lock:
                    self.state.active -= 1
        if self.command == "GET" and self.state.max_concurrent:
            # A server that answers 503 to a client's connections beyond K.
            with self.state.busy_lock:
                busy = self.state.busy >= self.state.max_concurrent
                if not busy:
                    self.state.busy += 1
            if busy:
                self.state.stats.add("busy_refusals")
                return self.send_json(503, {"errors": [{"code": "TOOMANYREQUESTS", "message": "too many connections"}]},
                                      {"Retry-After": "1"})
            try:
                return self.send_ranged(p, hexd, start, end, size, ranged, fault)
            finally:
                with self.state.busy_lock:
                    self.state.busy -= 1
        return self.send_ranged(p, hexd, start, end, size, ranged, fault)

    def send_ranged(self, p, hexd, start, end, size, ranged, fault):
        if ranged:
            self.send_response(206)
            cr_start = start + fault.get("shift", 0) if fault and fault["kind"] == "wrong-content-range" else start
            cr_end = end + fault.get("shift", 0) if fault and fault["kind"] == "wrong-content-range" else end
            self.send_header("Content-Range", "bytes %d-%d/%d" % (cr_start, cr_end, size))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.command == "HEAD":
            return
        self.send_body(p, hexd, start, end + 1, fault)

    def chaos(self, rule, size):
        """One seeded draw: which misbehaviour this request gets."""
        with self.state.fault_lock:
            self.state.chaos_count += 1
            n = self.state.chaos_count
        rng = random.Random("%s-%d" % (rule.get("seed", 0), n))
        roll = rng.random()
        if roll < 0.45:
            return None
        if roll < 0.60:
            return {"kind": "ignore-range"}
        at = rng.randrange(size)
        length = rng.randint(1, 64 << 10)
        if roll < 0.72:
            return {"kind": "ignore-range", "alter": length, "alter_from": at}
        if roll < 0.86:
            return {"kind": "none", "alter": length, "alter_from": at}
        if roll < 0.95:
            return {"kind": "truncate", "fraction": rng.random()}
        return {"kind": "status", "status": 503}

    def send_body(self, path, hexd, start, end, fault):
        rate = self.connection_rate()
        cut_at = None
        corrupt_at = None
        stall_at = None
        if fault and fault["kind"] in ("reset", "truncate"):
            cut_at = start + int((end - start) * fault.get("fraction", 0.5))
        if fault and fault["kind"] == "corrupt":
            corrupt_at = start + int((end - start) * fault.get("fraction", 0.5))
        if fault and fault["kind"] == "stall":
            stall_at = start + int((end - start) * fault.get("fraction", 0.5))
        alter = None
        if fault and fault.get("alter"):
            alter = (fault.get("alter_from", 0), fault.get("alter_from", 0) + fault["alter"])
        sent = 0
        try:
            with open(path, "rb") as f:
                pos = start
                stop = end if cut_at is None else cut_at
                t0 = time.monotonic()
                # sendfile would bypass TLS: a TLS connection takes the loop.
                plain = not isinstance(self.connection, ssl.SSLSocket)
                if self.state.collapse_above is not None:
                    self.send_collapsing(f, hexd, pos, stop, rate)
                    pos = stop
                elif plain and rate == 0 and corrupt_at is None and stall_at is None and alter is None:
                    self.wfile.flush()
                    while pos < stop:
                        n = os.sendfile(self.connection.fileno(), f.fileno(), pos, min(stop - pos, 8 << 20))
                        if n == 0:
                            break
                        pos += n
                        sent += n
                        self.state.stats.add("blob_bytes", hexd, n)
                else:
                    chunk = 64 << 10
                    while pos < stop:
                        n = min(chunk, stop - pos)
                        f.seek(pos)
                        data = f.read(n)
                        if corrupt_at is not None and pos <= corrupt_at < pos + n:
                            i = corrupt_at - pos
                            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                        if alter is not None and pos < alter[1] and alter[0] < pos + n:
                            a, b = max(alter[0], pos) - pos, min(alter[1], pos + n) - pos
                            data = data[:a] + bytes(x ^ 0x5A for x in data[a:b]) + data[b:]
                        if stall_at is not None and pos + n > stall_at:
                            # Send up to the stall point, then go silent.
                            self.wfile.write(data[:stall_at - pos])
                            self.wfile.flush()
                            time.sleep(fault.get("seconds", 3600))
                            data = data[stall_at - pos:]
                            stall_at = None
                        self.wfile.write(data)
                        pos += n
                        sent += n
                        # Counted as sent, so tests can act mid-transfer.
                        self.state.stats.add("blob_bytes", hexd, n)
                        if rate:
                            ahead = sent / rate - (time.monotonic() - t0)
                            if ahead > 0:
                                time.sleep(ahead)
                if cut_at is not None:
                    self.wfile.flush()
                    if fault["kind"] == "reset":
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


    def send_collapsing(self, f, hexd, pos, stop, rate):
        """Paced chunk by chunk at the rate that holds while each chunk
        goes: `rate` per connection with K or fewer running, else an even
        share of the collapse rate."""
        due = time.monotonic()
        while pos < stop:
            n = min(64 << 10, stop - pos)
            f.seek(pos)
            self.wfile.write(f.read(n))
            pos += n
            self.state.stats.add("blob_bytes", hexd, n)
            active = self.state.active
            if active > self.state.collapse_above:
                self.state.stats.add("collapsed_bytes", n=n)
                r = self.state.collapse_rate / active
            else:
                r = rate or (1 << 40)
            # No credit for time spent idle beyond 50 ms: a paced connection
            # does not burst after a pause.
            due = max(due, time.monotonic() - 0.05) + n / r
            ahead = due - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


def serve(args):
    state = State(args)
    registry = Server((args.bind or ("::1" if args.ipv6 else "127.0.0.1"), args.port), Handler, state, "registry")
    state.registry_port = registry.server_address[1]
    servers = [registry]
    if args.cdn:
        # The CDN on the registry's own host (as a registry's blob store on
        # another port of it): a redirect to another host would have to be
        # public, and these are loopback.
        cdn = Server(("::1" if args.ipv6 else "127.0.0.1", 0), Handler, state, "cdn")
        state.cdn_host = "[::1]" if args.ipv6 else "127.0.0.1"
        state.cdn_port = cdn.server_address[1]
        servers.append(cdn)
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(json.dumps({"registry": state.registry_port, "cdn": state.cdn_port}), flush=True)
    try:
        if args.exit_on_eof:
            # Tests hold our stdin open; when they exit (or crash) it closes.
            sys.stdin.read()
        else:
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-model")
    mk.add_argument("--root", required=True)
    mk.add_argument("--name", required=True)
    mk.add_argument("--layer", action="append", default=[], help="SIZE[:mediaType]")
    mk.add_argument("--text", action="append", default=[], help="KIND=TEXT: a text layer (template, system, params, license)")
    mk.add_argument("--file", action="append", default=[], help="PATH[:mediaType]: a layer with a file's bytes (first)")
    mk.add_argument("--existing", action="append", default=[],
                    help="sha256:HEX:SIZE[:mediaType]: a layer already under ROOT/blobs (first; e.g. one too big to copy)")
    mk.add_argument("--seed", default="0")
    mk.add_argument("--repeat", type=int, default=0, help="list the last layer N times in all")
    ps = sub.add_parser("push")
    ps.add_argument("--source", required=True, help="a registry root written by make-model")
    ps.add_argument("--name", required=True)
    ps.add_argument("--to", required=True, help="registry base URL, e.g. https://127.0.0.1:5000")
    ps.add_argument("--user", default=None, help="user:password")
    ps.add_argument("--ca", default=None)
    sv = sub.add_parser("serve")
    sv.add_argument("--root", required=True)
    sv.add_argument("--port", type=int, default=0)
    sv.add_argument("--cdn", action="store_true")
    sv.add_argument("--ipv6", action="store_true", help="listen on [::1] (the CDN too)")
    sv.add_argument("--bind", default=None, help="the registry's address (the CDN stays on loopback)")
    sv.add_argument("--token-auth", default=None, help="user:password | anonymous | ollama")
    sv.add_argument("--token-ttl", type=float, default=300)
    sv.add_argument("--min-client", default=None, help="X.Y.Z: answer 412 to manifest requests of older Ollama clients")
    sv.add_argument("--head-no-length", action="append", default=[], help="HEX: HEAD of this blob has no Content-Length")
    sv.add_argument("--realm", default=None, help="token realm to name in challenges (default: this registry's /token)")
    sv.add_argument("--service", default="testregistry")
    sv.add_argument("--self-redirect", action="store_true", help="blob requests answer 307 to another path of this origin")
    sv.add_argument("--redirect-uploads", action="store_true", help="take uploads in Ollama's parts (needs --cdn)")
    sv.add_argument("--max-concurrent", type=int, default=None, help="answer 503 to blob GETs beyond this many at once")
    sv.add_argument("--collapse-above", type=int, default=None,
                    help="with more than K blob GETs at once, all share --collapse-rate")
    sv.add_argument("--collapse-rate", default="8M")
    sv.add_argument("--rate", default=None)
    sv.add_argument("--slow-connection", type=int, default=None)
    sv.add_argument("--slow-factor", type=float, default=10.0)
    sv.add_argument("--exit-on-eof", action="store_true", help="exit when stdin closes")
    args = ap.parse_args()
    if args.cmd == "make-model":
        make_model(args)
    elif args.cmd == "push":
        push(args)
    else:
        serve(args)


if __name__ == "__main__":
    main()
