# Haul — see README.md. Every target that needs something from outside the
# repository asks scripts/deps for it first (installs it as root; prints the
# exact command and stops otherwise).
SWIFT ?= swift
# Swift on PATH wins; else the usual place of swift.org's toolchain.
export PATH := $(PATH):/opt/swift/usr/bin
BIN := .build/release/haul
REGISTRY := Tests/registry/testregistry.py
DEMO := .demo
PREFIX ?= /usr/local

.PHONY: fuzz all build test unit format format-check demo clean bench bench-ab docs install cwarn embedder-check

all: build

build:
	@scripts/deps build
	$(SWIFT) build -c release

# Every test: unit tests and integration tests against real local servers.
# Integration tests spawn the release binary, so build it first; the daemon
# tests drive it with Ollama's Python client from PyPI, in a virtualenv.
# One test at a time: the integration tests time kills and hang-ups against
# real transfers, and on 2 cores tests running beside them (several hundred
# MB pulls, processes awaited on the cooperative pool) starve those timings.
VENV := Tests/.venv
test: cwarn format-check
	@scripts/deps test
	$(SWIFT) build -c release
	$(SWIFT) build --build-tests
	HAUL_BIN=$(abspath $(BIN)) HAUL_TEST_PYTHON=$(abspath $(VENV))/bin/python $(SWIFT) test --skip-build --no-parallel
	$(MAKE) --no-print-directory docs

# The fast tests alone: HaulKit's unit tests (the engine's policy against a
# scripted transport, parsers, the store) and the daemon's routes in process.
# No servers, no release build; well under a minute once built.
unit:
	@scripts/deps build
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter 'HaulKitTests|HaulServerTests'

# One style, kept by the formatters: swift-format (the toolchain's, with
# .swift-format) for Swift, clang-format (.clang-format) for CShims/.
# `make format` rewrites; `make format-check` (part of `make test`) fails
# on any difference and names the files.
SWIFT_SOURCES := Sources Tests Examples Package.swift
C_SOURCES = CShims/*.c CShims/include/*.h Tests/faults/*.c
SWIFT_FORMAT = $(dir $(shell PATH="$(PATH)" command -v $(SWIFT)))swift-format
format:
	@scripts/deps format
	$(SWIFT_FORMAT) format -i -r $(SWIFT_SOURCES)
	clang-format -i $(C_SOURCES)

format-check:
	@scripts/deps format
	$(SWIFT_FORMAT) lint --strict -r $(SWIFT_SOURCES)
	clang-format --dry-run -Werror $(C_SOURCES)

# The C shim compiles without a warning under -Wall -Wextra. (Flags like
# these cannot live in Package.swift: SwiftPM refuses a package with
# unsafeFlags when another package depends on it by version.)
cwarn:
	@scripts/deps build
	$(dir $(shell PATH="$(PATH)" command -v $(SWIFT)))clang -fsyntax-only -Wall -Wextra -Werror -D_GNU_SOURCE \
	    -DOPENSSL_SUPPRESS_DEPRECATED -ICShims/include CShims/*.c

# Start a local registry (with a CDN redirect) serving a generated sample
# model on 127.0.0.1, pull it with the CLI, list it.
demo:
	@scripts/deps demo
	$(SWIFT) build -c release
	@rm -rf $(DEMO) && mkdir -p $(DEMO)
	@echo "==> generating a sample model (3 layers, 256 MiB)"
	@python3 $(REGISTRY) make-model --root $(DEMO)/registry --name library/sample:latest \
	    --layer 256M --layer 2K:application/vnd.ollama.image.template \
	    --layer 96:application/vnd.ollama.image.params > /dev/null
	@python3 $(REGISTRY) serve --root $(DEMO)/registry --cdn > $(DEMO)/ports & server=$$!; \
	  trap 'kill $$server 2>/dev/null' EXIT; \
	  for i in $$(seq 50); do [ -s $(DEMO)/ports ] && break; sleep 0.1; done; \
	  port=$$(python3 -c "import json;print(json.load(open('$(DEMO)/ports'))['registry'])"); \
	  echo "==> registry on 127.0.0.1:$$port (blobs redirect to a CDN listener)"; \
	  echo "==> OLLAMA_MODELS=$(DEMO)/models $(BIN) pull 127.0.0.1:$$port/library/sample --insecure"; \
	  OLLAMA_MODELS=$(DEMO)/models $(BIN) pull 127.0.0.1:$$port/library/sample --insecure; rc=$$?; \
	  echo "==> OLLAMA_MODELS=$(DEMO)/models $(BIN) list"; \
	  OLLAMA_MODELS=$(DEMO)/models $(BIN) list; \
	  exit $$rc

# Haul vs the SHA-256 ceiling, aria2c, curl and hf_transfer on loopback
# nginx; writes bench/RESULTS.md and bench/chart.png (see bench/run.py).
# SCENARIOS=9,10 runs those alone and stores their results beside the rest
# (bench/results.json, RESULTS.md rendered again).
bench:
	@scripts/deps bench
	$(SWIFT) build -c release
	python3 bench/run.py $(if $(SCENARIOS),--only $(SCENARIOS) --merge)

# Two Haul binaries, paired and alternating on the 2 GiB pull from loopback
# nginx: the A/B a change to the hot path comes with (bench/ab.py).
PAIRS ?= 5
bench-ab:
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make bench-ab A=path/to/old/haul B=path/to/new/haul [PAIRS=5]"; exit 2; }
	@scripts/deps bench
	python3 bench/ab.py $(A) $(B) --pairs $(PAIRS)

# HaulKit's DocC archive (.build/docs/HaulKit.doccarchive). Fails on a
# DocC warning and on a public symbol of HaulKit or HaulServer without a
# documentation comment. docc is the toolchain's own; the symbol graphs are
# SwiftPM's (dump-symbol-graph builds every target, tests included).
DOCS := .build/docs
docs:
	@scripts/deps docs
	$(SWIFT) package dump-symbol-graph --minimum-access-level public > $(DOCS).log 2>&1 || { cat $(DOCS).log; exit 1; }
	@rm -rf $(DOCS) && mkdir -p $(DOCS)/symbols
	cp $$(sed -n 's/^Files written to //p' $(DOCS).log)/HaulKit*.symbols.json $(DOCS)/symbols/
	scripts/doc-coverage $$(sed -n 's/^Files written to //p' $(DOCS).log) HaulKit
	scripts/doc-coverage $$(sed -n 's/^Files written to //p' $(DOCS).log) HaulServer
	docc convert Sources/HaulKit/HaulKit.docc --warnings-as-errors --fallback-display-name HaulKit \
	    --fallback-bundle-identifier HaulKit --additional-symbol-graph-dir $(DOCS)/symbols \
	    --output-path $(DOCS)/HaulKit.doccarchive

# The binary and its shell completions (bash, zsh, fish) under PREFIX.
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/haul
	$(BIN) --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/haul
	$(BIN) --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_haul
	$(BIN) --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/haul.fish

clean:
	rm -rf .build $(DEMO) $(VENV)

# libFuzzer + AddressSanitizer over the parsers of untrusted input: each
# target runs FUZZ_SECONDS from its committed corpus (new finds go to
# .build/fuzz/corpus-<target>; a crash leaves crash-* in .build/fuzz). The
# haul-fuzz target is built by SwiftPM itself, every module instrumented,
# in a build directory of its own (so the usual one is left alone).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = name manifest content-range journal www-authenticate gguf template response numbers manifest-list
FUZZ_BUILD = $(SWIFT) build --scratch-path .build/fuzz --product haul-fuzz --sanitize=fuzzer --sanitize=address \
	-Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address -Xswiftc -DFUZZING
fuzz:
	@scripts/deps fuzz
	$(FUZZ_BUILD)
	@bin=$$($(FUZZ_BUILD) --show-bin-path)/haul-fuzz; \
	for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	    mkdir -p .build/fuzz/corpus-$$t; \
	    HAUL_FUZZ_TARGET=$$t $$bin -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	        -artifact_prefix=.build/fuzz/ .build/fuzz/corpus-$$t Tests/fuzz/corpus/$$t 2>&1 \
	        | grep -E "^#[0-9]+ +DONE|ERROR|Done [0-9]+ runs|SUMMARY" || true; \
	    test -z "$$(ls .build/fuzz/crash-* .build/fuzz/leak-* .build/fuzz/timeout-* 2>/dev/null)" \
	        || { echo "fuzz $$t: finding in .build/fuzz"; exit 1; }; \
	done
