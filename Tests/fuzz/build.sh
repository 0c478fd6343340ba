#!/usr/bin/env bash
# Builds .build/fuzz/haul-fuzz: the HaulKit sources, the fuzz targets and the
# C shims compiled with libFuzzer and AddressSanitizer, one module. HaulKit's
# package dependencies (TOMLKit for hosts.toml, swift-log for an injected
# Logger) come from SwiftPM's own debug build, uninstrumented: no fuzz
# target reaches them.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.build/fuzz
mkdir -p "$OUT"
swift build --target TOMLKit >/dev/null
swift build --target Logging >/dev/null
DEPS=.build/debug
CLANG=$(dirname "$(command -v swiftc)")/clang
for c in CShims/*.c; do
    "$CLANG" -c -O1 -g -fsanitize=fuzzer-no-link,address -D_GNU_SOURCE -DOPENSSL_SUPPRESS_DEPRECATED \
        -ICShims/include "$c" -o "$OUT/$(basename "$c" .c).o"
done
swiftc -module-name HaulKit -parse-as-library -swift-version 6 -D FUZZING -sanitize=fuzzer,address -g -Onone \
    -I CShims/include -I "$DEPS/Modules" -Xcc -fmodule-map-file="$DEPS/CTOML.build/module.modulemap" \
    -Xcc -I.build/checkouts/TOMLKit/Sources/CTOML/include \
    $(find Sources/HaulKit -name '*.swift') Tests/HaulKitTests/Fuzz/FuzzTargets.swift \
    Tests/fuzz/main.swift "$OUT"/*.o "$DEPS"/TOMLKit.build/*.swift.o "$DEPS"/CTOML.build/Sources/*.o "$DEPS"/Logging.build/*.swift.o \
    -lcurl -lcrypto -lstdc++ -o "$OUT/haul-fuzz"
echo "$OUT/haul-fuzz"
