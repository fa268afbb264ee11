# Fuzz targets (go test -fuzz); included from the Makefile.
#
#   make fuzz-smoke          every target for its smoke budget of executions: CI
#   make fuzz                every target for FUZZ_LONGTIME (default 2m) each
#   make fuzz FUZZ_LONGTIME=10m
#
# go test -fuzz runs one target of one package at a time, so each target is
# listed with its package. Plain `go test` (make race) already runs every
# target's seeds and testdata/fuzz/<Target>/ corpus as regression tests.
# A failure leaves the input in <package>/testdata/fuzz/<Target>/: keep it,
# it is the regression test of the fix.
#
# Why the smoke run counts executions (-fuzztime Nx) instead of seconds: Go
# 1.26's fuzz coordinator can report a bare "context deadline exceeded" when
# a duration -fuzztime expires while a worker is mid-input (go.dev/issue/75804,
# fixed in Go 1.27). It wrote no input and is not a finding, but it fails the
# run: it did so once in CI on FuzzArgs. A count has no deadline to race.
# Each budget is a few seconds of that target on a 2-vCPU machine.
#
# The long run keeps durations (the goal is minutes of fuzzing); a failure
# there that prints only "context deadline exceeded" and leaves no new file
# under testdata/fuzz/ is that Go bug: rerun the target.

GO            ?= go
FUZZ_LONGTIME ?= 2m

# package:target:smoke executions
FUZZ_TARGETS := \
	./oauth/:FuzzDecodeSuccess:10000 \
	./oauth/:FuzzAPIError:50000 \
	./oauth/:FuzzParseAssertionKey:20000 \
	./oauth/:FuzzStoreEntry:50000 \
	./oauth/:FuzzRedact:50000 \
	./oauth/:FuzzFileStoreFile:3000 \
	./oauth/oauthtest/:FuzzAssertion:3000 \
	./oauth/oauthtest/:FuzzForm:50000 \
	./cmd/linetoken/:FuzzArgs:10000 \
	./internal/agent/:FuzzConfig:10000 \
	./internal/agent/:FuzzAPI:5000 \
	./internal/agent/:FuzzProxy:5000

# fuzz-run runs every target, stopping at the first failure. $(1) is the
# -fuzztime: a duration, or empty for each target's smoke count.
define fuzz-run
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${rest##*:}; \
		budget="$(1)"; [ -n "$$budget" ] || budget="$${n}x"; \
		echo "== $$name ($$pkg) for $$budget"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget $$pkg; \
	done
endef

.PHONY: fuzz fuzz-smoke

## fuzz-smoke: run every fuzz target for a few seconds' worth of executions (CI)
fuzz-smoke:
	$(call fuzz-run,)

## fuzz: run every fuzz target for FUZZ_LONGTIME (2m) each
fuzz:
	$(call fuzz-run,$(FUZZ_LONGTIME))
