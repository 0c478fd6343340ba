#!/usr/bin/env bash
# Pull a 2 GiB layer from real nginx on loopback (blob requests answered
# with a 307 to a second server block, the "CDN"), verified, and report it
# next to the SHA-256 ceiling measured in the same run.
#   bench/nginx-2g.sh [haul-args...]     e.g. --connections 8 --hash-mode inline
set -euo pipefail
cd "$(dirname "$0")/.."
HAUL=${HAUL:-.build/release/haul}
W=${WORK:-$PWD/.bench/nginx-2g}
mkdir -p "$W"
. bench/lib/nginx.sh
echo "== ceiling: openssl speed -evp sha256 (1 MiB blocks, one core)"
openssl speed -evp sha256 -bytes 1048576 -seconds 3 2>/dev/null | tail -1
echo "== ceiling: openssl dgst of the cached blob"
cat "$W/registry/blobs/$BLOB" > /dev/null
/usr/bin/time -f "%e s" openssl dgst -sha256 "$W/registry/blobs/$BLOB" 2>&1 | tail -1
for run in 1 2 3; do
    rm -rf "$W/models"; sync
    echo "== haul pull $* (run $run)"
    OLLAMA_MODELS="$W/models" /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KB max RSS" \
        "$HAUL" pull "127.0.0.1:$RP/library/big" --insecure --quiet "$@" 2>&1 | tail -1
done
cmp "$W/models/blobs/$BLOB" "$W/registry/blobs/$BLOB" && echo "byte-identical: yes"
for run in 1 2; do
    rm -f "$W/curl.out"; sync
    echo "== curl + openssl dgst (run $run)"
    /usr/bin/time -f "%e s wall" bash -c "curl -s -o '$W/curl.out' http://127.0.0.1:$CP/blobs/$BLOB && openssl dgst -sha256 '$W/curl.out' > /dev/null" 2>&1 | tail -1
done
rm -f "$W/curl.out"
echo "size: $SIZE bytes"
