# agentd: the two commands a fresh machine needs are `make run` and `make test`.
GO       ?= go
NPM_DIR  := interop/didcomm-node
NPM_STAMP := $(NPM_DIR)/node_modules/.package-lock.json
VERAMO_DIR := interop/veramo
VERAMO_STAMP := $(VERAMO_DIR)/node_modules/.package-lock.json
IDEN3_DIR := interop/iden3
IDEN3_STAMP := $(IDEN3_DIR)/node_modules/.package-lock.json
ZENROOM_DIR := interop/zenroom
ZENROOM_STAMP := $(ZENROOM_DIR)/node_modules/.package-lock.json
ANONCREDS_DIR := interop/anoncreds
ANONCREDS_STAMP := $(ANONCREDS_DIR)/node_modules/.package-lock.json
W3C_DIR := interop/w3c
W3C_STAMP := $(W3C_DIR)/node_modules/.package-lock.json
GOFLAGS_TEST ?= -count=1 -timeout 20m
# GOTAGS are the build tags of every build, test and bench: prover_disabled
# keeps go-rapidsnark's cgo prover (pulled in by the iden3 libraries, which
# only verify here) out, so agentd builds with CGO_ENABLED=0.
GOTAGS   ?= prover_disabled
BENCH    ?= .

.PHONY: run test test-race build vet fmt-check generate deps deps-apt deps-iden3-circuits bench bench-iden3 bench-mediator bench-postgres clean

## run: start the daemon on its embedded defaults (./data, 127.0.0.1:8080)
run:
	$(GO) run -tags '$(GOTAGS)' ./cmd/agentd $(ARGS)

## build: build bin/agentd and bin/agentctl
build:
	$(GO) build -tags '$(GOTAGS)' -o bin/agentd ./cmd/agentd
	$(GO) build -tags '$(GOTAGS)' -o bin/agentctl ./cmd/agentctl

## deps: install what the tests need (the didcomm-node, Veramo, iden3 and
## Zenroom harnesses, the AnonCreds oracle and the W3C peer from their committed lock
## files, and the iden3 circuit files, cached outside the work tree)
deps: $(NPM_STAMP) $(VERAMO_STAMP) $(IDEN3_STAMP) $(ZENROOM_STAMP) $(ANONCREDS_STAMP) $(W3C_STAMP) deps-iden3-circuits

$(NPM_STAMP): $(NPM_DIR)/package-lock.json $(NPM_DIR)/package.json
	npm ci --prefix $(NPM_DIR) --no-audit --no-fund
	@touch $(NPM_STAMP)

$(VERAMO_STAMP): $(VERAMO_DIR)/package-lock.json $(VERAMO_DIR)/package.json
	npm ci --prefix $(VERAMO_DIR) --no-audit --no-fund
	@touch $(VERAMO_STAMP)

$(IDEN3_STAMP): $(IDEN3_DIR)/package-lock.json $(IDEN3_DIR)/package.json
	npm ci --prefix $(IDEN3_DIR) --no-audit --no-fund
	@touch $(IDEN3_STAMP)

$(ZENROOM_STAMP): $(ZENROOM_DIR)/package-lock.json $(ZENROOM_DIR)/package.json
	npm ci --prefix $(ZENROOM_DIR) --no-audit --no-fund
	@touch $(ZENROOM_STAMP)

# The AnonCreds oracle needs only the WASM inside @hyperledger/identus-sdk:
# no install scripts.
$(ANONCREDS_STAMP): $(ANONCREDS_DIR)/package-lock.json $(ANONCREDS_DIR)/package.json
	npm ci --prefix $(ANONCREDS_DIR) --no-audit --no-fund --ignore-scripts
	@touch $(ANONCREDS_STAMP)

# The W3C peer (@sphereon/pex, did-jwt-vc): no install scripts (pex's
# preinstall only insists on pnpm).
$(W3C_STAMP): $(W3C_DIR)/package-lock.json $(W3C_DIR)/package.json
	npm ci --prefix $(W3C_DIR) --no-audit --no-fund --ignore-scripts
	@touch $(W3C_STAMP)

## deps-iden3-circuits: the iden3 circuit files (npm @rarimo/zkp-gen-iden3,
## ~200 MB) in $${XDG_CACHE_HOME:-$$HOME/.cache}/agentd/iden3-circuits (or
## $$AGENTD_IDEN3_CIRCUITS_CACHE), from interop/iden3/circuits' lock file;
## verified (checksums, keys) and skipped when already there
deps-iden3-circuits: $(IDEN3_STAMP)
	@sh $(IDEN3_DIR)/circuits/install.sh

## deps-apt: install the Debian packages the tests drive when they are missing:
## swaks and postfix (mail), unbound (the DNS server of the Prove Control
## Domain tests), poppler-utils and zbar-tools (the letter's text and QR
## code), and chromium (the headless browser of the sign-up confirmation
## page test), and postgresql (the server the store/postgres tests start
## privately, as an unprivileged user, on a random port). It needs root; without root it only says what is missing, and the
## tests that need them then fail with the same advice. Postfix is
## preseeded with "No configuration": the package starts no system mail
## service; the tests run a private instance from a temporary directory.
deps-apt:
	@missing=""; \
	command -v swaks >/dev/null 2>&1 || missing="$$missing swaks"; \
	{ command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ]; } || missing="$$missing postfix"; \
	{ command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ]; } || missing="$$missing unbound"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	command -v zbarimg >/dev/null 2>&1 || missing="$$missing zbar-tools"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "deps-apt: the Debian packages$$missing are missing and installing them needs root; the tests that use them will fail."; \
		echo "deps-apt: run make test as root, or: sudo apt-get install --no-install-recommends$$missing"; \
		exit 0; \
	fi; \
	echo "deps-apt: installing$$missing"; \
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

## test: formatting, vet, and every test (interop with didcomm-node and the mail tests included)
test: deps deps-apt fmt-check vet
	$(GO) test -tags '$(GOTAGS)' $(GOFLAGS_TEST) ./...

## test-race: every test under the race detector (needs cgo/gcc)
test-race: deps deps-apt
	$(GO) test -race -tags '$(GOTAGS)' $(GOFLAGS_TEST) ./...

## generate: regenerate the GraphQL admin API's gqlgen code from transport/graphql/schema.graphqls
generate:
	$(GO) generate ./transport/graphql/

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './$(NPM_DIR)/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet -tags '$(GOTAGS)' ./...

## bench: the envelope benchmarks (go test -bench)
bench:
	$(GO) test -tags '$(GOTAGS)' -run '^$$' -bench '$(BENCH)' -benchmem ./agent/envelope/

## bench-iden3: the iden3 verifier: one whole answer verified, and request_uri served
bench-iden3:
	$(GO) test -tags '$(GOTAGS)' -run '^$$' -bench 'VerifyRecorded|FullVerifyParallel' -benchtime 100x ./protocols/iden3auth/
	$(GO) test -tags '$(GOTAGS)' -run '^$$' -bench Iden3RequestURI -benchtime 2s ./internal/daemon/

## bench-mediator: agentd as a mediator under load (cmd/agentbench) on a fresh
## data directory; extra flags in BENCH_ARGS, e.g. BENCH_ARGS="-senders 128"
BENCH_ARGS ?=
BENCH_PORT ?= 18089
bench-mediator:
	$(GO) build -tags '$(GOTAGS)' -o bin/agentd ./cmd/agentd
	$(GO) build -tags '$(GOTAGS)' -o bin/agentbench ./cmd/agentbench
	@dir=$$(mktemp -d); \
	AGENTD_MEDIATOR=true AGENTD_CLIENT_RATE=0 AGENTD_HTTP_MAX_CONNECTIONS=0 AGENTD_HTTP_MAX_CONNECTIONS_PER_IP=0 AGENTD_HTTP_MAX_WEBSOCKETS_PER_IP=0 bin/agentd --data-dir $$dir --http-addr 127.0.0.1:$(BENCH_PORT) --log-level warn >/dev/null 2>$$dir/agentd.log & pid=$$!; \
	bin/agentbench -url http://127.0.0.1:$(BENCH_PORT) -pid $$pid $(BENCH_ARGS); status=$$?; \
	kill $$pid; wait $$pid; rm -rf $$dir; exit $$status

## bench-postgres: cmd/agentbench against bbolt, PostgreSQL with one instance
## and PostgreSQL with two instances sharing the database (a private server,
## fsync on), in one run; extra flags in BENCH_ARGS
bench-postgres:
	$(GO) build -tags '$(GOTAGS)' -o bin/agentd ./cmd/agentd
	$(GO) build -tags '$(GOTAGS)' -o bin/agentbench ./cmd/agentbench
	$(GO) build -o bin/pgserve ./internal/pgtest/pgserve
	BENCH_ARGS='$(BENCH_ARGS)' BENCH_PORT=$(BENCH_PORT) sh cmd/agentbench/bench-postgres.sh

clean:
	rm -rf bin
