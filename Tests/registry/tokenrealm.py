#!/usr/bin/env python3
"""A token realm for Debian's docker-registry (distribution's `auth: token`):
issues RS256 JWTs that grant exactly the scopes a client asks for, signed
with a self-signed certificate the registry trusts (`rootcertbundle`) and
carried in the token's `x5c` header.

  tokenrealm.py --dir DIR [--user USER:PASSWORD] [--tls-cert PEM --tls-key PEM]

Writes DIR/realm.key and DIR/realm.crt (openssl), listens on 127.0.0.1 at
an ephemeral port and prints {"port": PORT, "cert": PATH} once listening.
GET /token?service=S&scope=repository:NAME:ACTIONS (scope repeatable, or
space-separated) answers {"token", "access_token", "expires_in"}. With
--user, a token needs those credentials (Basic). Every scope asked for is
recorded; GET /_scopes returns them.
"""
import argparse
import base64
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

ISSUER = "haul-test-realm"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(directory):
    key, crt = os.path.join(directory, "realm.key"), os.path.join(directory, "realm.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=haul-test-realm"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"], check=True, capture_output=True).stdout
    return key, crt, der


def sign(key, payload):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=payload, check=True, capture_output=True).stdout


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        server = self.server
        path, _, query = self.path.partition("?")
        if path == "/_scopes":
            with server.lock:
                return self.reply(200, list(server.scopes))
        if path != "/token":
            return self.reply(404, {"error": "not found"})
        if server.user:
            want = "Basic " + base64.b64encode(server.user.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.reply(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Basic realm="haul-test-realm"'})
        params = urllib.parse.parse_qs(query)
        access = []
        for value in params.get("scope", []):
            for scope in value.split(" "):
                parts = scope.split(":")
                if len(parts) < 3:
                    continue
                with server.lock:
                    server.scopes.append(scope)
                access.append({"type": parts[0], "name": ":".join(parts[1:-1]), "actions": parts[-1].split(",")})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "haul", "aud": params.get("service", [""])[0], "exp": now + 300, "nbf": now - 30,
                  "iat": now, "jti": str(uuid.uuid4()), "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(server.der).decode()]}
        signing = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        token = signing.decode() + "." + b64url(sign(server.key, signing))
        self.reply(200, {"token": token, "access_token": token, "expires_in": 300})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--user", default=None)
    ap.add_argument("--tls-cert", default=None, help="serve HTTPS (a realm on another port than the registry's must be)")
    ap.add_argument("--tls-key", default=None)
    args = ap.parse_args()
    key, crt, der = make_key(args.dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.key, server.der, server.user = key, der, args.user
    server.scopes, server.lock = [], threading.Lock()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1], "cert": crt, "issuer": ISSUER}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
