# linetoken: everything a developer or CI runs. `make test` is the one
# command that checks it all; .ci/run installs what is missing and calls it.
GO         ?= go
# UPSTREAM_DIR: LINE's upstream files (a line/line-openapi checkout), kept
# outside the repo; every use reads from there (spec-diff, the Prism contract
# test, ...). Exported absolute, so tests find it from their package folder.
UPSTREAM_DIR ?= ../shared/upstream
export UPSTREAM_DIR := $(abspath $(UPSTREAM_DIR))
UPSTREAM   ?= $(UPSTREAM_DIR)/channel-access-token.yml
# UPSTREAM_URL: LINE's current file, for spec-drift.
UPSTREAM_URL ?= https://raw.githubusercontent.com/line/line-openapi/main/channel-access-token.yml
# passed to specdiff through the environment, so make never echoes it (a
# private mirror's URL may carry a token)
spec-drift: export UPSTREAM_URL_VALUE = $(UPSTREAM_URL)
# SPECDIFF_FLAGS: extra specdiff flags, e.g. -format markdown, -report FILE.
SPECDIFF   = $(GO) run ./internal/cmd/specdiff -ours $(SPEC) -allow api/spec-diff-allow.yml $(SPECDIFF_FLAGS)
WORKFLOWS  := .github/workflows/ci.yml .github/workflows/spec-drift.yml
CODEGEN    := $(GO) run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen
SPEC       := api/channel-access-token.yml

.PHONY: all test generate check-generate spec-diff spec-drift lint-workflows vet race load bench-check examples-check bench fmt-check demo

all: test

## test: generate drift check, spec diff, gofmt, vet, race tests, the full-size load test, the bench and examples modules, a short fuzz of every target
test: check-generate spec-diff lint-workflows fmt-check vet race load bench-check examples-check fuzz-smoke

## generate: regenerate gen/ from the spec
generate:
	$(GO) generate ./...

## check-generate: fail if gen/ differs from what the spec generates
check-generate:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	sed "s#^output: .*#output: $$tmp/client.gen.go#" gen/cfg.yaml > "$$tmp/cfg.yaml" && \
	$(CODEGEN) -config "$$tmp/cfg.yaml" $(SPEC) && \
	if diff -u gen/client.gen.go "$$tmp/client.gen.go"; then echo "check-generate: gen/ matches $(SPEC)"; \
	else echo "check-generate: gen/ is stale: run 'make generate' and commit the result"; exit 1; fi

## spec-diff: compare our spec with LINE's upstream file in UPSTREAM_DIR (absent: says how to run spec-drift; a failure when CI=true)
spec-diff:
	$(SPECDIFF) -upstream $(UPSTREAM)

## spec-drift: compare our spec with LINE's current file (UPSTREAM_URL); needs the network, never skips; on drift specdiff -report FILE writes the report
spec-drift:
	@echo 'spec-drift: specdiff -upstream <UPSTREAM_URL> (shown redacted by specdiff)'
	@$(SPECDIFF) -upstream "$$UPSTREAM_URL_VALUE"

## lint-workflows: actionlint on the GitHub Actions workflows
lint-workflows:
	$(GO) run github.com/rhysd/actionlint/cmd/actionlint $(WORKFLOWS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './contract/node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## race: every test of the main module under -race, including examples/agent's bot.py and bot.mjs (internal/agent; they need python3 and node)
race:
	$(GO) test -race -count=1 ./...

## load: the load tests at full size (10,000 Token callers; the agent's 100,000 token requests from 64 clients); under -race (make race) they run scaled down
load:
	$(GO) test -count=1 -run '^TestLoad' -v ./oauth/
	$(GO) test -count=1 -run '^TestLoad' -v ./internal/agent/

## demo: the whole token lifecycle against the in-process fake (offline, seconds)
demo:
	$(GO) run ./cmd/linetoken demo

## bench-check: the bench module builds, vets, its clients agree (no timing), and allocation targets hold (without -race)
bench-check:
	cd bench && $(GO) vet ./... && $(GO) test -race -count=1 ./... && $(GO) test -count=1 -run 'Allocs' -v ./

## examples-check: the examples module (line-bot-sdk-go over oauth.Transport) builds, vets and passes
examples-check:
	cd examples && $(GO) vet ./... && $(GO) test -race -count=1 ./...

## bench: per-call cost against line-bot-sdk-go and raw net/http (see BENCHMARKS.md)
bench:
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 6 | tee bench.out

include fuzz.mk
