# Levee. Two commands: `make run` and `make test` (see README.md).
SHELL := /bin/bash
GO ?= go
BIN := bin/levee
DATA ?= ./var
ADDR ?= 127.0.0.1:8080
TEST_TIMEOUT ?= 9m
TESTFLAGS ?= -race

.PHONY: run test build postgres bench vet fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/levee

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

# run starts Levee with its private PostgreSQL in $(DATA)/pg, seeds the demo
# city on first run and prints a sign-in per role.
run: postgres build
	./$(BIN) serve --addr $(ADDR) --data $(DATA) --demo

# test runs every test against one private PostgreSQL for the whole run.
test: postgres build
	./$(BIN) with-db --data $(DATA) -- $(GO) test $(TESTFLAGS) -timeout $(TEST_TIMEOUT) ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w .

clean:
	rm -rf bin $(DATA)/test-pg
