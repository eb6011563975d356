# vigil — build, run, test.
GO       ?= go
BIN      ?= bin/vigil
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/vigilhq/vigil/cli.version=$(VERSION)
FUZZTIME ?= 30s
DATA_DIR ?= ./vigil-data

.PHONY: all build run deps test test-short vet lint fuzz bench bench-proxy clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vigil

## run: build and start vigil with the embedded defaults
run: build
	./$(BIN) serve --data-dir $(DATA_DIR)

## deps: install what the tests need (Go modules; Debian packages as root)
deps:
	./scripts/deps

## test: install what the tests need, then vet and run every test
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

GOLANGCI ?= $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

## lint: golangci-lint with .golangci.yml (built from the module proxy on first use)
lint:
	$(GOLANGCI) run ./...

## fuzz: run each native fuzz target for FUZZTIME
fuzz:
	./scripts/fuzz $(FUZZTIME)

## bench: durable event throughput, ready time, idle RSS, ControlScript latency and rate, rules engine throughput, decision latency, matching cost and memory, signed webhooks/s
bench:
	$(GO) test -run '^$$' -bench 'PostEvents' -benchtime 100000x -timeout 30m ./bench/
	$(GO) test -run '^$$' -bench 'Ready' -benchtime 5x -timeout 30m ./bench/
	$(GO) test -run '^$$' -bench 'IdleRSS' -benchtime 1x -timeout 30m ./bench/
	$(GO) test -run '^$$' -bench 'RunToFirstLine' -benchtime 200x -timeout 30m ./bench/
	$(GO) test -run '^$$' -bench 'EventToFirstLine' -benchtime 200x -timeout 30m ./bench/
	$(GO) test -run '^$$' -bench 'ExecutionsPerSecond' -benchtime 1x -timeout 30m ./bench/
	$(GO) test -run '^$$' -bench 'Rules' -benchtime 1x -timeout 30m ./actions/
	$(GO) test -run '^$$' -bench 'MatchStoredEvent' -benchtime 200000x -timeout 30m ./actions/
	$(GO) test -run '^$$' -bench 'WebhookHMAC' -benchtime 20000x -timeout 30m ./sources/webhook/

## bench-proxy: vigil's proxy with a DataScript against nginx+Lua and HAProxy+Lua, wrk on loopback (installs them from apt)
bench-proxy:
	@command -v nginx >/dev/null && command -v haproxy >/dev/null && command -v wrk >/dev/null && test -e /usr/lib/nginx/modules/ngx_http_lua_module.so || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-http-lua haproxy wrk >/dev/null)
	$(GO) run ./bench/proxy $(BENCH_PROXY_FLAGS)

clean:
	rm -rf bin
