# The README's commands. `make test` is what CI runs.
GO ?= go

.PHONY: test demo build vet fuzz bench drivers

build:
	$(GO) build -o bin/waypoint ./cmd/waypoint

# The driver matrix (internal/drivers) is part of ./...; the drivers it runs
# are installed first (quiet when present, see scripts/install-drivers.sh).
test:
	bash scripts/install-drivers.sh
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

demo:
	$(GO) run ./cmd/waypoint demo

# Only the driver matrix, verbose: its log ends with the README's table for
# each PostgreSQL version. `make test` runs it too.
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

# The performance report of issue 7: Waypoint against a plain L4 forwarder on
# the same in-process tailnet, with targets, PASS/MISS verdicts and the top of
# CPU and allocation profiles (kept in BENCH_PROFILES, default a new temp
# directory). Takes a few minutes; CI runs only the smoke version in make test.
BENCH_PROFILES ?=
bench:
	$(GO) test -count=1 -run '^TestReport$$' -v -timeout 45m ./internal/bench/ -bench-full $(if $(BENCH_PROFILES),-bench-profile-dir=$(BENCH_PROFILES))
