#!/usr/bin/env python3
"""The nginx configuration for the tests and the bench, written once.

nginx serves a registry-shaped directory (ROOT/manifests/NS/MODEL/TAG,
ROOT/blobs/sha256-HEX) as a registry: one server block answers manifests
and sends every blob request to a CDN server block with a 307, as
registry.ollama.ai does. Each registry has its own CDN, which may be
throttled per connection (`limit_rate`) or have every tenth connection
throttled harder (a slow tail), or refuse a client's connections beyond
a count with 503 (`limit_conn`, as CDNs refuse a client that opens too
many).

    nginxconf.py WORK ROOT REGISTRY_PORT:CDN_PORT[:RATE[:SLOW_RATE[:CERT:KEY]]] ...

writes WORK/nginx.conf; start it with
    nginx -p WORK -c WORK/nginx.conf -e WORK/nginx-error.log
Its access log (WORK/access.log) has one line per request:
`BODY_BYTES STATUS URI`. A pair served over TLS (CERT:KEY given) logs to
WORK/tls-access.log instead: `SESSION_REUSED CONNECTION BODY_BYTES URI`,
where SESSION_REUSED is `r` for a resumed TLS session and `.` for a full
handshake.
"""
import os
import sys


def render(work, root, pairs):
    """`pairs`: (registry port, CDN port, rate or None, slow rate or None
    [, (certificate, key) for TLS or None [, most connections per client]]),
    rates in nginx's syntax ("100m", "5120k")."""
    tmp = os.path.join(work, "nginx-tmp")
    servers = []
    for registry, cdn, rate, slow, *rest in pairs:
        tls = rest[0] if rest else None
        conns = rest[1] if len(rest) > 1 else None
        listen = "listen 127.0.0.1:%d"
        scheme = "http"
        if tls:
            listen = ("listen 127.0.0.1:%%d ssl; ssl_certificate %s; ssl_certificate_key %s; "
                      "ssl_session_cache shared:TLS:10m; access_log %s/tls-access.log tls") % (tls[0], tls[1], work)
            scheme = "https"
        servers.append("""
  server { %s;
    location ~ "^/v2/([^/]+)/([^/]+)/manifests/([^/]+)$" { types { } default_type application/vnd.docker.distribution.manifest.v2+json; alias %s/manifests/$1/$2/$3; }
    location ~ "^/v2/[^/]+/[^/]+/blobs/sha256:([0-9a-f]{64})$" { return 307 %s://127.0.0.1:%d/blobs/sha256-$1; } }""" % (listen % registry, root, scheme, cdn))
        if slow:
            limit = 'set $lr %s; if ($connection ~ "0$") { set $lr %s; } limit_rate $lr;' % (rate or "0", slow)
        elif rate:
            limit = "limit_rate %s;" % rate
        else:
            limit = ""
        if conns:
            # Counted per client address while a request is served; one more
            # gets 503 at once.
            limit += " limit_conn perclient %d; limit_conn_status 503;" % conns
        servers.append("  server { %s; %s location /blobs/ { root %s; } }" % (listen % cdn, limit, root))
    return """worker_processes 2; daemon off; user nobody nogroup; pid %(w)s/nginx.pid; error_log %(w)s/nginx-error.log;
events { worker_connections 4096; }
http {
  log_format bytes '$body_bytes_sent $status $request_uri';
  log_format tls '$ssl_session_reused $connection $body_bytes_sent $request_uri';
  access_log %(w)s/access.log bytes; sendfile on; tcp_nopush on; keepalive_requests 100000;
  limit_conn_zone $binary_remote_addr zone=perclient:1m;
  client_body_temp_path %(t)s; proxy_temp_path %(t)s; fastcgi_temp_path %(t)s; uwsgi_temp_path %(t)s; scgi_temp_path %(t)s;
%(servers)s
}
""" % dict(w=work, t=tmp, servers="\n".join(servers))


def write(work, root, pairs):
    os.makedirs(os.path.join(work, "nginx-tmp"), exist_ok=True)
    # nginx's workers run as nobody: they must reach the served files.
    os.chmod(work, 0o755)
    path = os.path.join(work, "nginx.conf")
    with open(path, "w") as f:
        f.write(render(work, root, pairs))
    open(os.path.join(work, "access.log"), "w").close()
    return path


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    pairs = []
    for spec in argv[2:]:
        parts = spec.split(":") + [None, None, None, None]
        tls = (parts[4], parts[5]) if parts[4] and parts[5] else None
        pairs.append((int(parts[0]), int(parts[1]), parts[2] or None, parts[3] or None) + ((tls,) if tls else ()))
    print(write(argv[0], argv[1], pairs))


if __name__ == "__main__":
    main(sys.argv[1:])
