# ticketd: an event-sourced ticketing backend.
#
#   make run    run every service in one process on embedded defaults
#   make test   vet, then every test (unit, contract, saga, end-to-end and
#               integration against real Redis and Kafka, started locally)

GO       ?= go
TESTENV  := scripts/testenv.sh
PKGS     := ./...

.PHONY: run build test test-unit vet lint bench testenv-start testenv-stop testenv-clean testenv-status clean

run:
	$(GO) run ./cmd/ticketd

build:
	$(GO) build -o bin/ticketd ./cmd/ticketd
	$(GO) build -o bin/ticketctl ./cmd/ticketctl

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 $(PKGS)

# The integration servers are started first; with CI set, an integration
# test whose server is missing fails instead of skipping. Packages run one
# at a time (-p 1): the fault tests stop and restart the shared Kafka broker,
# which would fail another package's tests running at that moment.
test: vet testenv-start
	@eval "$$(bash $(TESTENV) env)" && $(GO) test -race -count=1 -p 1 -timeout 20m $(PKGS)

# Unit tests only: integration tests skip (locally) without the servers.
test-unit:
	env -u TICKETD_TEST_REDIS_URL -u TICKETD_TEST_KAFKA_BROKERS $(GO) test -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./infra/eventstore/embedded ./commands

testenv-start:
	@bash $(TESTENV) start

testenv-stop:
	@bash $(TESTENV) stop

testenv-clean:
	@bash $(TESTENV) stop --clean

testenv-status:
	@bash $(TESTENV) status

clean:
	rm -rf bin data
