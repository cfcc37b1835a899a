# The README's commands. `make test` is what CI runs.
GO ?= go

.PHONY: test demo build vet fuzz bench drivers

build:
	$(GO) build -o bin/waypoint ./cmd/waypoint

# `make test` checks the documentation after `go vet` (scripts/check-docs.sh:
# cited tests exist, links and anchors resolve, README.md under 16 KB).
#
# `make test` first installs the servers the tests start (PostgreSQL 15 and
# 18, redis-server; see scripts/install-postgres.sh) and the drivers of the
# driver matrix (scripts/install-drivers.sh), so that on a fresh Debian
# machine it needs nothing typed before it. Both scripts are idempotent and
# print nothing when everything is present. INSTALL=: skips them.
INSTALL ?= bash scripts/install-postgres.sh && bash scripts/install-drivers.sh

test:
	$(INSTALL)
	$(GO) vet ./...
	bash scripts/check-docs.sh
	$(GO) test -race -count=1 -timeout 20m ./...

demo:
	$(GO) run ./cmd/waypoint demo

# Only the driver matrix, verbose: its log ends with the table of
# docs/compatibility.md for each PostgreSQL version. `make test` runs it too.
drivers:
	bash scripts/install-drivers.sh
	$(GO) test -count=1 -run '^TestDriverMatrix$$' -v -timeout 20m ./internal/drivers/

# Every fuzz target for FUZZTIME (default 20s) each, on top of its committed
# corpus; see scripts/fuzz.sh. CI: make fuzz FUZZTIME=10s
FUZZTIME ?= 20s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

# A bounded soak of the whole pipeline (many identities, long sessions,
# grants changing), checking for goroutine, fd, backend-connection, role and
# memory leaks. CI: make soak SOAK_DURATION=20s
.PHONY: soak
SOAK_DURATION ?= 3m
soak:
	WAYPOINT_SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -run '^TestSoak$$' -v -timeout 30m ./internal/proxy/

# The performance report (docs/performance.md): Waypoint against a plain L4 forwarder on
# the same in-process tailnet, with targets, PASS/MISS verdicts and the top of
# CPU and allocation profiles (kept in BENCH_PROFILES, default a new temp
# directory). Takes a few minutes; CI runs only the smoke version in make test.
BENCH_PROFILES ?=
bench:
	$(GO) test -count=1 -run '^TestReport$$' -v -timeout 45m ./internal/bench/ -bench-full $(if $(BENCH_PROFILES),-bench-profile-dir=$(BENCH_PROFILES))

# pgx's own test suite (the version in go.mod) twice against a throwaway
# PostgreSQL 15: directly, and through Waypoint on the in-process tailnet;
# fails on any test that fails only through Waypoint unless
# internal/compat/allowed-differences.txt lists it with its reason
# (docs/compatibility.md). 3¾–5½
# minutes on 2 cores (idle to shared). CI runs it after make test.
.PHONY: compat
compat:
	$(GO) test -count=1 -run '^TestCompat$$' -v -timeout 30m ./internal/compat/ -compat-full
