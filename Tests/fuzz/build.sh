#!/usr/bin/env bash
# Builds .build/fuzz/haul-fuzz: the HaulKit sources, the fuzz targets and the
# C shims compiled with libFuzzer and AddressSanitizer, one module.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.build/fuzz
mkdir -p "$OUT"
CLANG=$(dirname "$(command -v swiftc)")/clang
for c in CShims/*.c; do
    "$CLANG" -c -O1 -g -fsanitize=fuzzer-no-link,address -D_GNU_SOURCE -DOPENSSL_SUPPRESS_DEPRECATED \
        -ICShims/include "$c" -o "$OUT/$(basename "$c" .c).o"
done
swiftc -module-name HaulKit -parse-as-library -swift-version 6 -D FUZZING -sanitize=fuzzer,address -g -Onone \
    -I CShims/include $(find Sources/HaulKit -name '*.swift') Tests/HaulKitTests/Fuzz/FuzzTargets.swift \
    Tests/fuzz/main.swift "$OUT"/*.o -lcurl -lcrypto -o "$OUT/haul-fuzz"
echo "$OUT/haul-fuzz"
