# knhk build, test and codegen. Every target loops over all Go modules.
SHELL := /bin/bash

# The root module, the cloud plugins' own modules (each keeps its cloud SDK
# out of the others) and the benchmark module.
MODULES := . $(patsubst %/go.mod,%,$(wildcard plugins/*/go.mod)) bench

BIN        := $(CURDIR)/bin
TOOLS      := $(CURDIR)/.tools/bin
GO_TEST    ?= go test -race -count=1 -timeout 15m

# Pinned code generators, installed into .tools/bin by `make tools` with
# go install: buf compiles the .proto files (and brings the well-known
# types), the protoc-gen-* plugins write the Go code (buf.gen.yaml).
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
PROTO_OUT := shared/proto sidecar/proto

.PHONY: all build test testdeps vet fmt tidy proto proto-check tools demo bench clean deps-check docs docs-check

all: build

build:
	@mkdir -p $(BIN)/plugins
	go build -o $(BIN)/knhk-host ./cmd/knhk-host
	@for d in $$(find plugins -path '*/cmd/knhk-plugin-*' -type d); do \
		name=$$(basename $$d); \
		echo "go build $$d"; (cd $$d && go build -o $(BIN)/plugins/$$name .) || exit 1; \
	done

# test runs every module's tests (bench has none), all of them even when
# one fails, and ends with one line counting the packages that passed and
# failed.
test: proto-check docs-check vet deps-check build testdeps
	@log=$$(mktemp); trap 'rm -f $$log' EXIT; rc=0; \
	for m in $(filter-out bench,$(MODULES)); do \
		echo "== go test $$m"; \
		(cd $$m && $(GO_TEST) ./...) 2>&1 | tee -a $$log; [ $${PIPESTATUS[0]} -eq 0 ] || rc=1; \
	done; \
	echo "packages: $$(grep -c '^ok' $$log) passed, $$(grep -c '^FAIL'$$'\t' $$log) failed"; \
	exit $$rc

# demo runs the main job on the fake provider: create a key in a throwaway
# state file, sign a message, verify it, print the public key.
demo: build
	@bash cmd/knhk-host/demo.sh $(BIN)

# bench builds the CLI, the plugins and the benchmark, then measures every
# row of BENCHMARKS.md side by side in one run: one table on stdout, the
# same results in bench/results.json.
bench: build
	cd bench && go build -o $(BIN)/knhk-bench . && go build -o $(BIN)/knhk-coldstart ./cmd/knhk-coldstart
	$(BIN)/knhk-bench -bin $(BIN) -json bench/results.json

# Test servers that must be built before the tests, once per machine: a
# plugin's testdeps.sh (e.g. the Vault server) and the repository's own
# (testdeps/*.sh: Jaeger, for the end-to-end telemetry test). One target
# per script, so `make -j testdeps` builds them side by side.
TESTDEPS := $(addprefix testdeps/run/,$(wildcard plugins/*/testdeps.sh testdeps/*.sh))
.PHONY: $(TESTDEPS)
testdeps: $(TESTDEPS)
$(TESTDEPS): testdeps/run/%:
	@echo "== $*"; bash $*

vet:
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./...); done
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	@set -e; for m in $(MODULES); do (cd $$m && go mod tidy); done

# The host must never link a cloud SDK: each lives in its plugin's module.
deps-check:
	@if go list -deps ./cmd/knhk-host ./host/... | grep -E 'aws-sdk-go|azure-sdk-for-go|hashicorp/vault/api'; then \
		echo "the host links a cloud SDK"; exit 1; fi

# docs regenerates docs/telemetry.md from the telemetry registry (semconv/).
docs:
	go generate ./semconv

# docs-check fails when docs/telemetry.md is not what `make docs` writes.
docs-check:
	@go run ./semconv/cmd/semconv-doc -o - | diff -q docs/telemetry.md - >/dev/null || { echo "docs/telemetry.md is stale: run 'make docs' and commit"; exit 1; }

# tools installs the pinned generators; a stamp file per version makes a
# changed pin reinstall its tool.
tools: $(TOOLS)/.buf-$(BUF_VERSION) $(TOOLS)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION) $(TOOLS)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/.buf-$(BUF_VERSION):
	GOBIN=$(TOOLS) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(TOOLS)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(TOOLS) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(TOOLS)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(TOOLS) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@

# proto regenerates the committed Go code from the .proto files.
proto: tools
	$(TOOLS)/buf generate

# proto-check fails when the committed generated code differs from what
# `make proto` would write.
proto-check: tools
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(TOOLS)/buf generate -o $$tmp || exit 1; \
	for d in $(PROTO_OUT); do \
		if ! diff -r -q --exclude='*.proto' $$tmp/$$d $$d; then \
			echo "generated protobuf code is stale: run 'make proto' and commit"; exit 1; fi; \
	done

clean:
	rm -rf $(BIN) .tools
