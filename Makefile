# The README's commands. `make test` is what CI runs.
GO ?= go

.PHONY: test demo build vet fuzz bench

build:
	$(GO) build -o bin/waypoint ./cmd/waypoint

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

demo:
	$(GO) run ./cmd/waypoint demo
