# agentd: the two commands a fresh machine needs are `make run` and `make test`.
GO       ?= go
NPM_DIR  := interop/didcomm-node
NPM_STAMP := $(NPM_DIR)/node_modules/.package-lock.json
GOFLAGS_TEST ?= -count=1 -timeout 20m
BENCH    ?= .

.PHONY: run test build vet fmt-check deps bench clean

## run: start the daemon on its embedded defaults (./data, 127.0.0.1:8080)
run:
	$(GO) run ./cmd/agentd $(ARGS)

## build: build bin/agentd and bin/agentctl
build:
	$(GO) build -o bin/agentd ./cmd/agentd
	$(GO) build -o bin/agentctl ./cmd/agentctl

## deps: install what the tests need (the didcomm-node peer from the committed lock file)
deps: $(NPM_STAMP)

$(NPM_STAMP): $(NPM_DIR)/package-lock.json $(NPM_DIR)/package.json
	npm ci --prefix $(NPM_DIR) --no-audit --no-fund
	@touch $(NPM_STAMP)

## test: formatting, vet, and every test (interop with didcomm-node included)
test: deps fmt-check vet
	$(GO) test $(GOFLAGS_TEST) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './$(NPM_DIR)/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## bench: the envelope benchmarks (go test -bench)
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem ./agent/envelope/

clean:
	rm -rf bin
