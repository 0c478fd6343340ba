# Sourced by the bench scripts: generates a 2 GiB model once under $W and
# starts nginx serving it (blob requests answered 307 to a second server
# block, the "CDN"), with an access log of body bytes sent per request.
# Sets RP (registry port), CP (CDN port), BLOB, SIZE; stops nginx on exit.
mkdir -p "$W/tmp"
chmod 755 "$W"
if [ ! -f "$W/registry/manifests/library/big/latest" ]; then
    python3 Tests/registry/testregistry.py make-model --root "$W/registry" --name library/big:latest --layer 2G > /dev/null
fi
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
RP=$(port); CP=$(port)
: > "$W/access.log"
cat > "$W/nginx.conf" <<CONF
worker_processes 2; daemon off; user nobody nogroup; pid $W/nginx.pid; error_log $W/error.log;
events { worker_connections 1024; }
http {
  log_format bytes '\$body_bytes_sent \$status \$request_uri';
  access_log $W/access.log bytes; sendfile on;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  server { listen 127.0.0.1:$RP;
    location ~ "^/v2/([^/]+)/([^/]+)/manifests/([^/]+)\$" { types { } default_type application/vnd.docker.distribution.manifest.v2+json; alias $W/registry/manifests/\$1/\$2/\$3; }
    location ~ "^/v2/[^/]+/[^/]+/blobs/sha256:([0-9a-f]{64})\$" { return 307 http://127.0.0.1:$CP/blobs/sha256-\$1; } }
  server { listen 127.0.0.1:$CP; location /blobs/ { root $W/registry; } }
}
CONF
/usr/sbin/nginx -p "$W" -c "$W/nginx.conf" -e "$W/error.log" & NGINX=$!
trap 'kill $NGINX 2>/dev/null' EXIT
sleep 0.5
BLOB=$(ls -S "$W/registry/blobs" | head -1)
SIZE=$(stat -c %s "$W/registry/blobs/$BLOB")

# Body bytes nginx has sent for the big blob so far (logged as requests end).
served() { awk -v b="$BLOB" '$3 ~ b { s += $1 } END { printf "%.0f\n", s }' "$W/access.log"; }
