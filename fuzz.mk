# Fuzz targets (go test -fuzz); included from the Makefile.
#
#   make fuzz-smoke          every target for FUZZTIME (default 5s) each: CI
#   make fuzz                every target for FUZZ_LONGTIME (default 2m) each
#   make fuzz FUZZ_LONGTIME=10m
#
# go test -fuzz runs one target of one package at a time, so each target is
# listed with its package. Plain `go test` (make race) already runs every
# target's seeds and testdata/fuzz/<Target>/ corpus as regression tests.
# A failure leaves the input in <package>/testdata/fuzz/<Target>/: keep it,
# it is the regression test of the fix.

GO            ?= go
FUZZTIME      ?= 5s
FUZZ_LONGTIME ?= 2m

FUZZ_TARGETS := \
	./oauth/:FuzzDecodeSuccess \
	./oauth/:FuzzAPIError \
	./oauth/:FuzzParseAssertionKey \
	./oauth/:FuzzStoreEntry \
	./oauth/:FuzzRedact \
	./oauth/oauthtest/:FuzzAssertion \
	./oauth/oauthtest/:FuzzForm \
	./cmd/linetoken/:FuzzArgs

# fuzz-run runs every target for $(1) each, stopping at the first failure.
define fuzz-run
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(1)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(1) $$pkg; \
	done
endef

.PHONY: fuzz fuzz-smoke

## fuzz-smoke: run every fuzz target for FUZZTIME (5s) each (CI)
fuzz-smoke:
	$(call fuzz-run,$(FUZZTIME))

## fuzz: run every fuzz target for FUZZ_LONGTIME (2m) each
fuzz:
	$(call fuzz-run,$(FUZZ_LONGTIME))
