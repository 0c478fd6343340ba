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
Each "times" uses (default 1); "min_size" bounds the body size it applies to.
"""
import hashlib
import json
import os
import re
import socket
import threading
import uuid

_lock = threading.Lock()
_sessions = {}  # uuid -> repository
# One request at a time per session, as a registry serializes them: a
# PATCH whose client was killed may still be appending when the client's
# next run asks where the session is.
_session_locks = {}


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
        h.send_response(204)
        for k, v in _range_headers(h, repo, sid, held).items():
            h.send_header(k, v)
        h.send_header("Content-Length", "0")
        h.end_headers()
        return True
    length = int(h.headers.get("Content-Length", "0"))
    fault = state.take_fault(length, target="upload")
    if fault and fault["kind"] == "status":
        _read_body(h)
        return h.send_json(fault["status"], {"errors": [{"code": "UNKNOWN", "message": "armed"}]}) or True
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
        if not (fault and fault["kind"] == "forget"):
            with open(_upload_path(state, sid), "ab") as f:
                f.write(data)
        held = _held(state, sid)
        claimed = held + (1 << 20) if fault and fault["kind"] == "range-lie" else held
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
        h.send_json(201, {}, {"Location": "/v2/%s/blobs/sha256:%s" % (repo, got), "Docker-Content-Digest": "sha256:" + got})
        return True
    return False
