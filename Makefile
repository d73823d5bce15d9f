# Levee. Two commands: `make run` and `make test` (see README.md).
SHELL := /bin/bash
GO ?= go
BIN := bin/levee
DATA ?= ./var
ADDR ?= 127.0.0.1:8080
TEST_TIMEOUT ?= 9m
TESTFLAGS ?= -race

.PHONY: cluster run test race-e2e build assets postgres chromium screenshots bench faults soak hostile hostile-suite reads orders fuzz vet fmt clean

build: assets
	$(GO) build -o $(BIN) ./cmd/levee

# assets fetches the pinned browser libraries (uPlot for the charts, Swagger
# UI for the API reference at /api/docs; web/package-lock.json) into
# web/assets/vendor/, which is git-ignored and embedded when present.
VENDOR := web/assets/vendor/uPlot.iife.min.js web/assets/vendor/uPlot.min.css web/assets/vendor/swagger-ui-bundle.js web/assets/vendor/swagger-ui.css
assets: $(VENDOR)

$(VENDOR) &: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p web/assets/vendor
	cp web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css web/assets/vendor/
	cp web/node_modules/swagger-ui-dist/swagger-ui-bundle.js web/node_modules/swagger-ui-dist/swagger-ui.css web/assets/vendor/

# postgres makes sure the PostgreSQL server binaries are on this machine.
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		: ; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing PostgreSQL (apt-get install -y postgresql)..."; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >/dev/null || \
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >/dev/null; }; \
	else \
		echo "PostgreSQL is not installed. Run: sudo apt-get install -y postgresql"; exit 1; \
	fi

# chromium makes sure Debian's Chromium is here for the browser test
# (cmd/levee/ui_test.go).
chromium:
	@if command -v chromium >/dev/null 2>&1; then \
		: ; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium (apt-get install -y chromium)..."; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null || \
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; }; \
	else \
		echo "Chromium is not installed. Run: sudo apt-get install -y chromium"; exit 1; \
	fi

# screenshots regenerates the README's pictures, docs/screenshots/*.png (at
# most 150 KB each), from the real-browser test of the demo city
# (cmd/levee/ui_demo_test.go). Run it when the UI changes, and commit them.
screenshots: postgres chromium assets
	LEVEE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestUIDemoCity$$' ./cmd/levee

# run starts Levee with its private PostgreSQL in $(DATA)/pg, seeds the demo
# city on first run and prints a sign-in per role.
run: postgres build
	./$(BIN) serve --addr $(ADDR) --data $(DATA) --demo

# cluster runs the demo city on three instances sharing the private
# PostgreSQL, an embedded NATS server and a round-robin proxy on $(ADDR)
# (docs/cluster.md): kill -9 one of the printed pids to watch failover.
cluster: postgres build
	./$(BIN) cluster --instances 3 --addr $(ADDR) --data $(DATA)

# test runs every test against one private PostgreSQL for the whole run:
# the packages under the race detector, and at the same time cmd/levee's
# end-to-end tests (real processes, browsers, nodes and instances) without
# it, which keeps make test within 10 minutes on 2 cores (under -race they
# alone took 6 to 8.5 minutes). make race-e2e runs them under -race too.
test: postgres chromium build
	./$(BIN) with-db --data $(DATA) -- bash -c '\
		$(GO) test $(TESTFLAGS) -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -vx levee/cmd/levee) & libs=$$!; \
		$(GO) test -timeout $(TEST_TIMEOUT) ./cmd/levee & e2e=$$!; \
		wait $$libs; a=$$?; wait $$e2e; b=$$?; exit $$((a | b))'
	# Allocation guards skip themselves under -race (it allocates): run them once without.
	$(GO) test -count=1 -run 'DoesNotAllocate' ./market ./web
	$(MAKE) --no-print-directory fuzz

# fuzz runs every fuzz target of outside input for a short, bounded run
# (20,000 inputs each, 1-5 s here); `make fuzz FUZZTIME=10m` for a long one.
# New failures are saved under the package's testdata/fuzz and then replayed
# by every `go test`. The short run is a count, not a duration: Go 1.26's
# fuzz coordinator can fail a target with a bare "context deadline exceeded"
# when a duration ends while a worker is busy (go.dev/issue/75804, fixed in
# Go 1.27), which made CI fail on a loaded machine with no input to blame.
FUZZTIME ?= 20000x
FUZZ_TARGETS := .:FuzzParseMicros ./market:FuzzQuote ./input:FuzzDecodeJSON ./input:FuzzControlCharacters ./web:FuzzOrderBody ./web:FuzzScanOrder ./web:FuzzQuoteQuery ./web:FuzzCrisisBodies ./web/live:FuzzParseRequest ./files:FuzzCheck ./federation:FuzzWireStatement ./ledger:FuzzAppendLiteral
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# bench runs every benchmark side by side in one run (a private durable
# PostgreSQL loaded with a million trades; 5-10 minutes) and rewrites
# bench/RESULTS.md; then orders over 1,000 markets with 1, 2 and 3 instances
# on NATS, a forwarded order against a local one and fan-out across
# instances (its own section, about a minute). `make bench BENCHFLAGS=-quick` for a smoke test.
bench: postgres build
	$(GO) run ./bench/cmd/levee-bench -out bench/RESULTS.md $(BENCHFLAGS)
	$(GO) run ./bench/cmd/levee-bench -scenario cluster -out bench/RESULTS.md $(BENCHFLAGS)

# faults kills the server with SIGKILL 20 times, stops PostgreSQL 5 times and
# exhausts its connections 5 times while residents trade, then looks every
# order up in the database (2-3 minutes); then, with three instances on NATS
# (docs/cluster.md), 20 SIGKILLs and 5 SIGSTOP/SIGCONT rounds past the lease,
# audited the same way (2 minutes). It rewrites only its sections of
# bench/RESULTS.md. `make faults BENCHFLAGS=-quick` for a smoke test.
# race-e2e runs cmd/levee's end-to-end tests under the race detector (make
# test runs them without it, for time).
race-e2e: postgres chromium build
	./$(BIN) with-db --data $(DATA) -- $(GO) test -race -count=1 -timeout 15m ./cmd/levee

faults: postgres build
	$(GO) run ./bench/cmd/levee-bench -scenario faults -out bench/RESULTS.md $(BENCHFLAGS)
	$(GO) run ./bench/cmd/levee-bench -scenario cluster-faults -out bench/RESULTS.md $(BENCHFLAGS)

# soak offers orders at half the measured capacity for $(SOAK) with
# $(SOAK_SUBSCRIBERS) websocket subscribers in a second process, sampling the
# server's memory, goroutines and latency; it rewrites only its section of
# bench/RESULTS.md. `make soak SOAK=1h` for a long one.
SOAK ?= 5m
SOAK_SUBSCRIBERS ?= 3000
soak: postgres build
	$(GO) run ./bench/cmd/levee-bench -scenario soak -soak $(SOAK) -soak-subscribers $(SOAK_SUBSCRIBERS) -out bench/RESULTS.md $(BENCHFLAGS)

# hostile sends $(HOSTILE_REQUESTS) generated hostile requests over every route
# (`levee routes`), as every role of a fresh demo city and anonymously, to
# `levee serve --demo` in a child process, then verifies the ledger and every
# balance; any 5xx, hang or cut connection fails it (several minutes). It
# rewrites only its section of bench/RESULTS.md. `make hostile
# BENCHFLAGS=-quick` for a smoke test (3,000 requests).
HOSTILE_REQUESTS ?= 100000
hostile: postgres build
	$(GO) run ./bench/cmd/levee-bench -scenario hostile -hostile-requests $(HOSTILE_REQUESTS) -out bench/RESULTS.md $(BENCHFLAGS)

# reads times orders at a fixed rate alone and while 50 anonymous clients
# flood the public reads (ledger verification and export, census, markets),
# then each public GET endpoint alone; it rewrites only its section of
# bench/RESULTS.md.
reads: postgres build
	$(GO) run ./bench/cmd/levee-bench -scenario reads -out bench/RESULTS.md $(BENCHFLAGS)

# orders measures the order path alone (issue 18): `levee serve` in a child
# process on a city with $(ORDERS_HISTORY) trades of history, open loop at
# 300, 1,000 and 3,000 orders/s, closed loop with 256 clients with and
# without idempotency keys, and one client; CPU of server, PostgreSQL and
# generator apart; the same steps as one instance of a cluster (on NATS),
# at Go's default collector pace (GOGC=100), with two journal transactions
# in flight and with the previous journal (LEVEE_JOURNAL=previous), twice in
# turn, each round after the floor (the disk and PostgreSQL alone at those
# rates); each trades index's cost (bench/indexcost.sql); a CPU profile of
# the closed loop kept in bench/orders-closed-loop.pprof; each open-loop
# step's stalls set beside the machine's pauses, the disk's slow flushes and
# the server's slow commits (a meter in a process of its own, bench/load
# stalls.go; each variant starts from a CHECKPOINT). It rewrites only
# its section of bench/RESULTS.md (about 12 minutes). BENCHFLAGS='-variants
# current,checks,one-statement,0003 -rounds 1' picks variants (go run
# ./bench/cmd/levee-bench -h lists them); -pg-stat-statements prints each
# step's costliest statements (a diagnosis: its figures carry the
# extension's cost).
ORDERS_HISTORY ?= 200000
orders: postgres build
	$(GO) run ./bench/cmd/levee-bench -scenario orders -history $(ORDERS_HISTORY) -traders 600 -markets 8 -step-duration 5s -out bench/RESULTS.md $(BENCHFLAGS)

# hostile-suite runs only the hostile-input tests (files hostile_*_test.go;
# make test runs them too).
hostile-suite: postgres
	./$(BIN) with-db --data $(DATA) -- $(GO) test $(TESTFLAGS) -count=1 -timeout $(TEST_TIMEOUT) -run "^($$(grep -ho '^func \(Test[A-Za-z0-9_]*\)' $$(git ls-files '*hostile_*_test.go') | sed 's/^func //' | paste -sd'|'))$$" $$(git ls-files '*hostile_*_test.go' | xargs -n1 dirname | sort -u | sed 's|^|./|')

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w .

clean:
	rm -rf bin $(DATA)/test-pg
