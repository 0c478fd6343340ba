#!/usr/bin/env python3
"""Hugging Face's registry as Ollama meets it, for Haul's tests.

  hfregistry.py serve --root DIR --cert PEM --key PEM [--port 443]
                      [--private USER/REPO ...] [--hf-token T] [--ollama-pub FILE]

One HTTPS listener answers for several host names, told apart by the Host
header. Run it in a network namespace whose /etc/hosts sends them to
127.0.0.1, on port 443, with a certificate naming them all:

  hf.co                    the registry: GET|HEAD /v2/USER/REPO/manifests/QUANT
                           and /v2/USER/REPO/blobs/sha256:HEX. Every /v2
                           request needs a Bearer token; the 401 names the
                           realm https://huggingface.co/v2/token. A blob
                           answers 307 to a signed URL on huggingface.co
                           (`?__sign=`, valid 600 s).
  huggingface.co           /v2/token, and the same registry API. A token
                           for a public repo goes to anyone; for a --private
                           one only to `Authorization: Bearer <--hf-token>` or
                           to a valid Ollama signature by the --ollama-pub key.
                           A Bearer token that is not the HF token is refused
                           even for public repos, as HF does. Signed blob URLs
                           answer 302 to the CDN (HF's Xet bridge).
  cas-bridge.xethub.hf.co  the CDN: byte ranges of the blob.
  hf-mirror.test           a mirror as HF_ENDPOINT names one: the registry API
                           with its own realm (https://hf-mirror.test/v2/token,
                           same rules, its own tokens), blobs served directly.
  registry.evil.test       a hostile registry: every /v2 request gets a 401
                           naming HF's realm and a scope of the first
                           --private repo, to collect a token minted for it.

Tags match without regard to case, and `latest` is Q4_K_M, as on HF. Models
are made with testregistry.py make-model (USER/REPO:QUANT). GET /_stats on
any host returns testregistry's counts plus, per host, "hosts" (requests)
and "authorization_by_host" (distinct Authorization values seen). Prints
{"registry": PORT} once listening; exits when stdin closes.
"""
import argparse
import hashlib
import hmac
import os
import re
import ssl
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testregistry  # noqa: E402

REGISTRY = "hf.co"
REALM_HOST = "huggingface.co"
CDN = "cas-bridge.xethub.hf.co"
MIRROR = "hf-mirror.test"
EVIL = "registry.evil.test"
SIGN_TTL = 600
SECRET = os.urandom(16)


def signature(path, expires):
    return hmac.new(SECRET, ("%s|%d" % (path, expires)).encode(), hashlib.sha256).hexdigest()


class TLSServer(testregistry.Server):
    def __init__(self, addr, handler, state, context, options):
        self.context = context
        self.options = options
        super().__init__(addr, handler, state, "registry")

    def get_request(self):
        sock, addr = super().get_request()
        # The handshake runs in the connection's own thread (Handler.setup).
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class HFHandler(testregistry.Handler):
    def setup(self):
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            pass  # the first read fails and ends the connection
        super().setup()

    @property
    def host(self):
        return self.headers.get("Host", "").split(":")[0].lower()

    def record(self):
        stats = self.state.stats
        auth = self.headers.get("Authorization")
        with stats.lock:
            hosts = stats.data.setdefault("hosts", {})
            hosts[self.host] = hosts.get(self.host, 0) + 1
            if auth:
                seen = stats.data.setdefault("authorization_by_host", {}).setdefault(self.host, [])
                if auth not in seen:
                    seen.append(auth)

    def redirect(self, status, location):
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def not_found(self):
        self.send_json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

    def do_POST(self):
        self.not_found()

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/_stats":
            return self.send_json(200, self.state.stats.snapshot())
        self.record()
        if self.host == CDN:
            m = re.fullmatch(r"/xet-bridge-us/([0-9a-f]{64})", path)
            return self.blob(m.group(1)) if m else self.not_found()
        if self.host == EVIL:
            return self.challenge(REALM_HOST, (self.server.options.private or ["user/repo"])[0])
        if self.host not in (REGISTRY, REALM_HOST, MIRROR):
            return self.not_found()
        if path == "/v2/token":
            return self.issue_token()
        m = re.fullmatch(r"/v2/([^/]+)/([^/]+)/(manifests|blobs)/([^/]+)", path)
        if not m:
            return self.not_found()
        user, repo, kind, ref = m.groups()
        if kind == "blobs" and self.host == REALM_HOST and "__sign=" in query:
            return self.signed_blob(path, query, ref)
        if not self.token_valid(user + "/" + repo):
            return self.challenge(MIRROR if self.host == MIRROR else REALM_HOST, user + "/" + repo)
        if kind == "manifests":
            return self.manifest(user, repo, self.tag(user, repo, ref))
        d = re.fullmatch(r"sha256:([0-9a-f]{64})", ref)
        if not d:
            return self.not_found()
        if self.host == MIRROR:
            return self.blob(d.group(1))
        self.state.stats.add("redirects")
        expires = int(time.time()) + SIGN_TTL
        self.redirect(307, "https://%s%s?__sign=%d.%s" % (REALM_HOST, path, expires, signature(path, expires)))

    def signed_blob(self, path, query, ref):
        m = re.search(r"(?:^|&)__sign=(\d+)\.([0-9a-f]{64})(?:&|$)", query)
        d = re.fullmatch(r"sha256:([0-9a-f]{64})", ref)
        if not m or not d or int(m.group(1)) < time.time() \
                or not hmac.compare_digest(m.group(2), signature(path, int(m.group(1)))):
            return self.send_json(403, {"error": "Invalid or expired signature"})
        self.redirect(302, "https://%s/xet-bridge-us/%s?X-Amz-Expires=3600&X-Amz-Signature=%s"
                      % (CDN, d.group(1), os.urandom(8).hex()))

    def tag(self, user, repo, tag):
        want = "q4_k_m" if tag == "latest" else tag.lower()
        d = os.path.join(self.state.root, "manifests", user, repo)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if name.lower() == want:
                return name
        return tag

    def party(self, host):
        """Whose tokens a host takes: HF's two hosts share theirs."""
        return "mirror" if host == MIRROR else "hf"

    def token_valid(self, repo):
        auth = self.headers.get("Authorization", "")
        with self.state.token_lock:
            entry = self.state.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        return entry is not None and entry["expires"] > time.time() and entry["party"] == self.party(self.host) \
            and entry["repo"] == repo

    def challenge(self, realm_host, repo):
        self.state.stats.add("unauthorized")
        header = 'Bearer realm="https://%s/v2/token",service="%s",scope="repository:%s:pull"' % (realm_host, realm_host, repo)
        self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                       {"WWW-Authenticate": header})

    def issue_token(self):
        self.state.stats.add("token_requests")
        options = self.server.options
        scopes = urllib.parse.parse_qs(self.path.partition("?")[2]).get("scope", [])
        scope = re.fullmatch(r"repository:([^:]+):pull", scopes[0]) if len(scopes) == 1 else None
        repo = scope.group(1) if scope else ""
        auth = self.headers.get("Authorization", "")
        with_token = options.hf_token is not None and auth == "Bearer " + options.hf_token
        signed = bool(auth) and not auth.startswith("Bearer ") and options.ollama_pub is not None \
            and auth.split(":", 1)[0] == options.ollama_pub \
            and testregistry.verify_ollama_signature(auth, "https://%s%s" % (self.host, self.path))
        if (auth.startswith("Bearer ") and not with_token) or (repo in options.private and not (with_token or signed)):
            # HF's words (ollama issue #10500).
            return self.send_json(401, {"error": "Invalid credentials in Authorization header"})
        token = os.urandom(18).hex()
        with self.state.token_lock:
            self.state.tokens[token] = {"expires": time.time() + 300, "party": self.party(self.host), "repo": repo}
        self.state.stats.note("issued_tokens", token)
        self.send_json(200, {"token": token, "expires_in": 300})


def serve(args):
    state = testregistry.State(argparse.Namespace(
        root=args.root, rate=None, slow_connection=None, slow_factor=10.0, token_auth=None, token_ttl=300,
        realm=None, service="", self_redirect=False, min_client=None, head_no_length=[]))
    if args.ollama_pub:
        with open(args.ollama_pub) as f:
            args.ollama_pub = f.read().split()[1]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = TLSServer(("127.0.0.1", args.port), HFHandler, state, context, args)
    state.registry_port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print('{"registry": %d}' % state.registry_port, flush=True)
    sys.stdin.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--root", required=True)
    sv.add_argument("--cert", required=True)
    sv.add_argument("--key", required=True)
    sv.add_argument("--port", type=int, default=443)
    sv.add_argument("--private", action="append", default=[], help="USER/REPO that needs HF_TOKEN or the Ollama key")
    sv.add_argument("--hf-token", default=None)
    sv.add_argument("--ollama-pub", default=None, help="the Ollama public key (id_ed25519.pub) HF knows for the user")
    args = ap.parse_args()
    serve(args)


if __name__ == "__main__":
    main()
