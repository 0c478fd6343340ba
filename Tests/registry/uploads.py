"""The distribution API's write side for testregistry.py: upload sessions
(POST, PATCH, GET, PUT ?digest=) and manifest PUTs, kept the way a
registry that reports what it holds does (Zot): a session's Range is the
bytes actually received, even of a PATCH cut short.

Faults (armed through /_faults, "target": "upload" or "manifest-put"):
  {"kind": "cut"}          read half of a PATCH body, keep it, drop the connection
  {"kind": "range-lie"}    answer a PATCH claiming 1 MiB more than it holds
  {"kind": "forget"}       accept a PATCH (202) and keep none of it
  {"kind": "status", "status": N}   answer N to the request, body discarded
  {"kind": "rewrite"}      (manifest-put) store the manifest re-indented
  {"kind": "offsite"}      (POST) put the session on another host
  {"kind": "range-huge"}   answer a PATCH with Range: 0-9223372036854775807
  {"kind": "one-byte"}     keep one byte of each PATCH (two of the first), so
                           the session grows a little with every chunk
  {"kind": "range-huge", "target": "session-status"}  a session's GET answers
                           Range: 0-9223372036854775807
  {"kind": "digest-lie", "target": "blob-put"}  (closing PUT) store the blob,
                           then report another Docker-Content-Digest
Each "times" uses (default 1); "min_size" bounds the body size it applies to.

With --redirect-uploads (and --cdn) the registry also plays Ollama's upload
in parts (Ollama's server/upload.go is the client of it): a POST answers
with Docker-Upload-Location; a PATCH with "X-Redirect-Uploads: 1" and a
Content-Range is answered 307, before its body is read, with Location on
the CDN listener (PUT /parts/<session>/<n>?sig=..., like a presigned S3
part) and Docker-Upload-Location naming the session's next state; the
closing PUT ?digest=&etag= joins the parts, checks the etag (MD5 of the
parts' MD5s, "-" and their count) and the digest. More faults:
  {"kind": "offsite-part"}   (PATCH) send the part to 169.254.169.254
  {"kind": "status", "status": N, "target": "part"}   the part PUT answers N
and one setting, not consumed: {"kind": "part-hold", "from_part": K} holds
every part PUT of part K or later before reading it, until the faults are
armed again.
"""
import hashlib
import hmac
import json
import os
import re
import socket
import threading
import time
import uuid

_lock = threading.Lock()
_sessions = {}  # uuid -> repository
# One request at a time per session, as a registry serializes them: a
# PATCH whose client was killed may still be appending when the client's
# next run asks where the session is.
_session_locks = {}
# Sessions in Ollama's parts: uuid -> {"issued": [(first, last)], "offset": next byte}
_parts = {}
_in_flight = [0]
_part_key = os.urandom(16)


def _session_lock(sid):
    with _lock:
        return _session_locks.setdefault(sid, threading.Lock())


def _upload_path(state, sid):
    return os.path.join(state.root, ".uploads", sid)


def _held(state, sid):
    return os.path.getsize(_upload_path(state, sid))


def _range_headers(h, repo, sid, held):
    return {"Location": "/v2/%s/blobs/uploads/%s" % (repo, sid),
            "Range": "0-%d" % (held - 1 if held > 0 else 0), "Docker-Upload-UUID": sid}


def _read_body(h, limit=None):
    length = int(h.headers.get("Content-Length", "0"))
    want = length if limit is None else min(limit, length)
    data = h.rfile.read(want) if want else b""
    h.server.state.stats.add("upload_bytes", n=len(data))
    return data, length


def _drop(h):
    h.close_connection = True
    try:
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def handle(h, method):
    """Serves an upload or manifest PUT request; False if `h.path` is none."""
    state = h.server.state
    path, _, query = h.path.partition("?")
    m = re.fullmatch(r"/v2/([^/]+/[^/]+)/blobs/uploads/", path)
    if m and method == "POST":
        repo = m.group(1)
        fault = state.take_fault(0, target="upload")
        if fault and fault["kind"] == "status":
            return h.send_json(fault["status"], {"errors": [{"code": "UNKNOWN", "message": "armed"}]}) or True
        sid = str(uuid.uuid4())
        os.makedirs(os.path.dirname(_upload_path(state, sid)), exist_ok=True)
        open(_upload_path(state, sid), "wb").close()
        with _lock:
            _sessions[sid] = repo
        headers = _range_headers(h, repo, sid, 0)
        if state.redirect_uploads:
            headers["Docker-Upload-Location"] = headers["Location"]
            with _lock:
                _parts[sid] = {"issued": [], "offset": 0}
        if fault and fault["kind"] == "offsite":
            headers["Location"] = "http://169.254.169.254/v2/%s/blobs/uploads/%s" % (repo, sid)
        h.send_json(202, {}, headers)
        return True
    m = re.fullmatch(r"/v2/([^/]+/[^/]+)/blobs/uploads/([0-9a-f-]+)", path)
    if m:
        with _session_lock(m.group(2)):
            return _session(h, method, state, query, *m.groups())
    m = re.fullmatch(r"/v2/([^/]+)/([^/]+)/manifests/([^/]+)", path)
    if m and method == "PUT":
        ns, model, tag = m.groups()
        data, _ = _read_body(h)
        fault = state.take_fault(len(data), target="manifest-put")
        if fault and fault["kind"] == "status":
            return h.send_json(fault["status"], {"errors": [{"code": "MANIFEST_INVALID", "message": "armed"}]}) or True
        if fault and fault["kind"] == "rewrite":
            data = json.dumps(json.loads(data), indent=3).encode()
        state.stats.note("manifest_types", h.headers.get("Content-Type", ""))
        d = os.path.join(state.root, "manifests", ns, model)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, tag), "wb") as f:
            f.write(data)
        h.send_json(201, {}, {"Docker-Content-Digest": "sha256:" + hashlib.sha256(data).hexdigest()})
        return True
    return False


def _session(h, method, state, query, repo, sid):
    """GET, PATCH or PUT of one upload session."""
    with _lock:
        known = _sessions.get(sid) == repo
    if not known:
        _read_body(h)
        return h.send_json(404, {"errors": [{"code": "BLOB_UPLOAD_UNKNOWN", "message": "blob upload unknown"}]}) or True
    held = _held(state, sid)
    if method == "GET":
        huge = state.take_fault(0, target="session-status")
        h.send_response(204)
        claimed = (1 << 63) if huge and huge["kind"] == "range-huge" else held
        for k, v in _range_headers(h, repo, sid, claimed).items():
            h.send_header(k, v)
        h.send_header("Content-Length", "0")
        h.end_headers()
        return True
    length = int(h.headers.get("Content-Length", "0"))
    fault = state.take_fault(length, target="upload")
    if fault and fault["kind"] == "status":
        _read_body(h)
        return h.send_json(fault["status"], {"errors": [{"code": "UNKNOWN", "message": "armed"}]}) or True
    if method == "PATCH" and redirects(h):
        return _redirect_part(h, state, query, repo, sid, fault)
    if method == "PUT" and sid in _parts and "etag=" in query:
        return _join_parts(h, state, query, repo, sid)
    if method == "PATCH":
        rng = re.fullmatch(r"(\d+)-(\d+)", (h.headers.get("Content-Range") or "").strip())
        if rng and int(rng.group(1)) != held:
            _read_body(h)
            return h.send_json(416, {"errors": [{"code": "RANGE_INVALID", "message": "out of order"}]},
                               _range_headers(h, repo, sid, held)) or True
        if fault and fault["kind"] == "cut":
            data, _ = _read_body(h, limit=length // 2)
            with open(_upload_path(state, sid), "ab") as f:
                f.write(data)
            _drop(h)
            return True
        data, _ = _read_body(h)
        if fault and fault["kind"] == "one-byte":
            # Two bytes into an empty session: "0-0" would say none.
            data = data[:2 if held == 0 else 1]
        if not (fault and fault["kind"] == "forget"):
            with open(_upload_path(state, sid), "ab") as f:
                f.write(data)
        held = _held(state, sid)
        claimed = held + (1 << 20) if fault and fault["kind"] == "range-lie" else held
        if fault and fault["kind"] == "range-huge":
            claimed = 1 << 63
        h.send_json(202, {}, _range_headers(h, repo, sid, claimed))
        return True
    if method == "PUT":
        want = re.search(r"(?:^|&)digest=sha256:([0-9a-f]{64})", query)
        data, _ = _read_body(h)
        with open(_upload_path(state, sid), "ab") as f:
            f.write(data)
        with open(_upload_path(state, sid), "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if not want or want.group(1) != got:
            return h.send_json(400, {"errors": [{"code": "DIGEST_INVALID", "message": "digest did not match content"}]}) or True
        os.replace(_upload_path(state, sid), os.path.join(state.root, "blobs", "sha256-" + got))
        with _lock:
            _sessions.pop(sid, None)
        said = got
        lie = state.take_fault(0, target="blob-put")
        if lie and lie["kind"] == "digest-lie":
            said = hashlib.sha256(got.encode()).hexdigest()
        h.send_json(201, {}, {"Location": "/v2/%s/blobs/sha256:%s" % (repo, got), "Docker-Content-Digest": "sha256:" + said})
        return True
    return False


def redirects(h):
    """Whether this request is a part PATCH the registry answers with a
    redirect (before reading its body: no 100 Continue is sent)."""
    return (h.server.role == "registry" and h.server.state.redirect_uploads and h.command == "PATCH"
            and h.headers.get("X-Redirect-Uploads") == "1")


def _signature(sid, n):
    return hmac.new(_part_key, ("%s/%d" % (sid, n)).encode(), hashlib.sha256).hexdigest()[:32]


def _query(query, key):
    m = re.search(r"(?:^|&)%s=([^&]*)" % key, query)
    return m.group(1) if m else None


def _redirect_part(h, state, query, repo, sid, fault):
    """A part's PATCH: 307 to where its bytes go, and the next session state."""
    with _lock:
        st = _parts.get(sid)
    expected = h.headers.get("Expect", "").lower() == "100-continue"
    rng = re.fullmatch(r"(\d+)-(\d+)", (h.headers.get("Content-Range") or "").strip())
    n = len(st["issued"]) if st else -1
    if not st or not rng or int(rng.group(1)) != st["offset"] or _query(query, "_state") not in (None, str(n)) \
            or (n > 0 and _query(query, "_state") is None):
        if not expected:
            _read_body(h)
        else:
            h.close_connection = True
        return h.send_json(416, {"errors": [{"code": "RANGE_INVALID", "message": "part out of order"}]}) or True
    if not expected:
        _read_body(h)   # a client that sent the bytes anyway: read and drop them
    first, last = int(rng.group(1)), int(rng.group(2))
    with _lock:
        st["issued"].append((first, last))
        st["offset"] = last + 1
    host = "169.254.169.254" if fault and fault["kind"] == "offsite-part" else "%s:%d" % (state.cdn_host, state.cdn_port)
    h.send_response(307)
    h.send_header("Location", "http://%s/parts/%s/%d?sig=%s" % (host, sid, n, _signature(sid, n)))
    h.send_header("Docker-Upload-Location", "/v2/%s/blobs/uploads/%s?_state=%d" % (repo, sid, n + 1))
    h.send_header("Content-Length", "0")
    if expected:
        h.send_header("Connection", "close")
        h.close_connection = True
    h.end_headers()
    return True


def _part_file(state, sid, n):
    return os.path.join(state.root, ".uploads", "%s.parts" % sid, str(n))


def handle_part(h):
    """PUT /parts/<session>/<n>?sig=: a part's bytes, on the CDN listener."""
    state = h.server.state
    path, _, query = h.path.partition("?")
    m = re.fullmatch(r"/parts/([0-9a-f-]+)/(\d+)", path)
    if not m or h.command != "PUT":
        return False
    sid, n = m.group(1), int(m.group(2))
    if h.headers.get("Authorization"):
        state.stats.add("cdn_authorization")
    with _lock:
        st = _parts.get(sid)
        issued = st["issued"][n] if st and n < len(st["issued"]) else None
        _in_flight[0] += 1
        now = _in_flight[0]
    state.stats.peak("part_in_flight_max", now)
    try:
        length = int(h.headers.get("Content-Length", "0"))
        if issued is None or _query(query, "sig") != _signature(sid, n):
            h.rfile.read(length)
            return h.send_json(403, {"error": "SignatureDoesNotMatch"}) or True
        fault = state.take_fault(length, target="part")
        if fault and fault["kind"] == "status":
            h.rfile.read(length)
            return h.send_json(fault["status"], {"error": "armed"}) or True
        while state.part_hold is not None and n >= state.part_hold:
            time.sleep(0.05)
        data = h.rfile.read(length)
        state.stats.add("part_bytes", n=len(data))
        if len(data) != length or length != issued[1] - issued[0] + 1:
            _drop(h)
            return True
        os.makedirs(os.path.dirname(_part_file(state, sid, n)), exist_ok=True)
        with open(_part_file(state, sid, n) + ".tmp", "wb") as f:
            f.write(data)
        os.replace(_part_file(state, sid, n) + ".tmp", _part_file(state, sid, n))
        state.stats.add("part_puts", sub="%d-%d" % issued)
        h.send_response(200)
        h.send_header("ETag", '"%s"' % hashlib.md5(data).hexdigest())
        h.send_header("Content-Length", "0")
        h.end_headers()
        return True
    finally:
        with _lock:
            _in_flight[0] -= 1


def _join_parts(h, state, query, repo, sid):
    """The closing PUT ?digest=&etag=: the parts in order make the blob."""
    _read_body(h)
    with _lock:
        issued = list(_parts[sid]["issued"])
    def refuse(code, message):
        return h.send_json(400, {"errors": [{"code": code, "message": message}]}) or True
    if _query(query, "_state") != str(len(issued)):
        return refuse("BLOB_UPLOAD_INVALID", "stale session state")
    digest, md5s = hashlib.sha256(), b""
    for n, (first, last) in enumerate(issued):
        try:
            with open(_part_file(state, sid, n), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return refuse("BLOB_UPLOAD_INVALID", "part %d missing" % (n + 1))
        if len(data) != last - first + 1:
            return refuse("BLOB_UPLOAD_INVALID", "part %d is short" % (n + 1))
        digest.update(data)
        md5s += hashlib.md5(data).digest()
    if _query(query, "etag") != "%s-%d" % (hashlib.md5(md5s).hexdigest(), len(issued)):
        return refuse("BLOB_UPLOAD_INVALID", "etag mismatch")
    want = re.search(r"(?:^|&)digest=sha256:([0-9a-f]{64})", query)
    got = digest.hexdigest()
    if not want or want.group(1) != got:
        return refuse("DIGEST_INVALID", "digest did not match content")
    with open(os.path.join(state.root, "blobs", "sha256-" + got + ".tmp"), "wb") as out:
        for n in range(len(issued)):
            with open(_part_file(state, sid, n), "rb") as f:
                out.write(f.read())
    os.replace(os.path.join(state.root, "blobs", "sha256-" + got + ".tmp"), os.path.join(state.root, "blobs", "sha256-" + got))
    with _lock:
        _sessions.pop(sid, None)
        _parts.pop(sid, None)
    h.send_json(201, {}, {"Location": "/v2/%s/blobs/sha256:%s" % (repo, got), "Docker-Content-Digest": "sha256:" + got})
    return True
