# Haul — see README.md.
SWIFT ?= swift
BIN := .build/release/haul
REGISTRY := Tests/registry/testregistry.py
DEMO := .demo

.PHONY: fuzz all build test demo clean bench

all: build

build:
	$(SWIFT) build -c release

# Every test: unit tests and integration tests against real local servers.
# Integration tests spawn the release binary, so build it first; the daemon
# tests drive it with Ollama's Python client from PyPI, in a virtualenv.
# One test at a time: the integration tests time kills and hang-ups against
# real transfers, and on 2 cores tests running beside them (several hundred
# MB pulls, processes awaited on the cooperative pool) starve those timings.
VENV := Tests/.venv
test: build $(VENV)/.ready-2
	$(SWIFT) build --build-tests
	HAUL_BIN=$(abspath $(BIN)) HAUL_TEST_PYTHON=$(abspath $(VENV))/bin/python $(SWIFT) test --skip-build --no-parallel

# gguf: llama.cpp's own GGUF writer and reader, to make real model files
# and to check what `haul serve` reports of them.
$(VENV)/.ready-2:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check ollama gguf
	touch $@

# Start a local registry (with a CDN redirect) serving a generated sample
# model on 127.0.0.1, pull it with the CLI, list it.
demo: build
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
bench: build
	python3 bench/run.py

clean:
	rm -rf .build $(DEMO) $(VENV)

# libFuzzer + AddressSanitizer over the parsers of untrusted input: each
# target runs FUZZ_SECONDS from its committed corpus (new finds go to
# .build/fuzz/corpus-<target>; a crash leaves crash-* in .build/fuzz).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = name manifest content-range journal www-authenticate gguf
fuzz:
	Tests/fuzz/build.sh
	@for t in $(FUZZ_TARGETS); do \
	    echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	    mkdir -p .build/fuzz/corpus-$$t; \
	    HAUL_FUZZ_TARGET=$$t .build/fuzz/haul-fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	        -artifact_prefix=.build/fuzz/ .build/fuzz/corpus-$$t Tests/fuzz/corpus/$$t 2>&1 \
	        | grep -E "^#[0-9]+ +DONE|ERROR|Done [0-9]+ runs|SUMMARY" || true; \
	    test -z "$$(ls .build/fuzz/crash-* .build/fuzz/leak-* .build/fuzz/timeout-* 2>/dev/null)" \
	        || { echo "fuzz $$t: finding in .build/fuzz"; exit 1; }; \
	done
