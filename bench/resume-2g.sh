#!/usr/bin/env bash
# Kill -9 a 2 GiB pull from nginx at ~50%, resume it, and compare with an
# uninterrupted pull in the same run: bytes fetched twice, and seconds.
#   bench/resume-2g.sh [fraction]     (default 0.5)
set -euo pipefail
cd "$(dirname "$0")/.."
HAUL=${HAUL:-.build/release/haul}
W=${WORK:-$PWD/.bench/nginx-2g}
FRACTION=${1:-0.5}
mkdir -p "$W"
. bench/lib/nginx.sh
NAME="127.0.0.1:$RP/library/big"
now() { date +%s.%N; }

rm -rf "$W/models"; sync
t0=$(now)
OLLAMA_MODELS="$W/models" "$HAUL" pull "$NAME" --insecure --quiet
t1=$(now)
fresh=$(echo "$t1 - $t0" | bc)
echo "uninterrupted pull: $fresh s"

rm -rf "$W/models"; sync
: > "$W/access.log"; kill -USR1 "$(cat "$W/nginx.pid")"
# The live journal (rewritten at every checkpoint) is what a resume after a
# kill uses; the durable one trails it by up to 64 MiB / 2 s.
JOURNAL="$W/models/.haul/partials/$BLOB-partial.journal.live"
OLLAMA_MODELS="$W/models" "$HAUL" pull "$NAME" --insecure --quiet & PID=$!
target=$(echo "$SIZE * $FRACTION / 1" | bc)
t0=$(now)
while :; do
    have=$(awk '$1 == "range" { s += $3 - $2 } END { printf "%.0f\n", s }' "$JOURNAL" 2>/dev/null || echo 0)
    [ "$have" -ge "$target" ] && break
    sleep 0.02
done
kill -9 $PID; wait $PID 2>/dev/null || true
t1=$(now)
sleep 0.5
before=$(served)
kept=$(awk '$1 == "range" { s += $3 - $2 } END { printf "%.0f\n", s }' "$JOURNAL")
hashed=$(awk '$1 == "hashed" { print $2 }' "$JOURNAL")
durable=$(awk '$1 == "range" { s += $3 - $2 } END { printf "%.0f\n", s }' "${JOURNAL%.live}")
echo "killed after $(echo "$t1 - $t0" | bc) s: nginx had sent $before bytes; live journal keeps $kept (hash state at $hashed), durable journal $durable"
echo "in flight at the kill (sent by nginx, never received): $((before - kept)) bytes"
t2=$(now)
OLLAMA_MODELS="$W/models" HAUL_DEBUG=1 "$HAUL" pull "$NAME" --insecure --quiet 2> "$W/resume.log"
t3=$(now)
sleep 0.5
after=$(served)
cmp "$W/models/blobs/$BLOB" "$W/registry/blobs/$BLOB" && echo "byte-identical: yes"
grep "done: hashed" "$W/resume.log" | grep -v " 2[0-9][0-9] bytes\| [0-9][0-9]* bytes this run, resumed at 0$" || true
extra=$((after - SIZE))
echo "resume: $(echo "$t3 - $t2" | bc) s; total sent for the blob $after of $SIZE: re-downloaded $extra bytes ($(echo "scale=2; 100 * $extra / $SIZE" | bc)%)"
echo "interrupted + resumed: $(echo "$t1 - $t0 + $t3 - $t2" | bc) s vs uninterrupted $fresh s"
