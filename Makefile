# ticketd: an event-sourced ticketing backend.
#
#   make run    run every service in one process on embedded defaults
#   make test   vet, then every test (unit, contract, saga, end-to-end and
#               integration against real Redis, Kafka and, for the benchmark
#               baseline, PostgreSQL, all started locally)

GO       ?= go
TESTENV  := scripts/testenv.sh
BENCHENV := scripts/benchenv.sh
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
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# The integration servers are started first; with CI set, an integration
# test whose server is missing fails instead of skipping. Packages run one
# at a time (-p 1): the fault tests stop and restart the shared Kafka broker,
# which would fail another package's tests running at that moment.
test: vet testenv-start
	@eval "$$(bash $(TESTENV) env)" && eval "$$(bash $(BENCHENV) env)" && $(GO) test -race -count=1 -p 1 -timeout 20m $(PKGS)

# Unit tests only: integration tests skip (locally) without the servers.
test-unit:
	env -u TICKETD_TEST_REDIS_URL -u TICKETD_TEST_KAFKA_BROKERS -u TICKETD_BENCH_POSTGRES_URL $(GO) test -count=1 $(PKGS)

# Micro benchmarks; BENCHMARKS.md says what each measures. The Redis read
# store's and PostgreSQL's runs skip unless their servers are given (see
# bench-baseline and scripts/testenv.sh).
BENCH_PKGS  := ./commands ./infra/eventstore/embedded ./infra/readstore/embedded ./infra/readstore/redis ./projections ./infra/httpapi
BENCH_COUNT ?= 5
BENCHSTAT   := $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) $(BENCH_PKGS)

# The side-by-side baselines, each pair measured back to back in every run:
# the embedded store against a plain PostgreSQL event table (started by
# scripts/benchenv.sh on 127.0.0.1:15432, left running; stop it with
# `bash scripts/benchenv.sh stop --clean`), and GET /events against a bare
# Fiber handler. BENCH_COUNT separate runs go to BENCH_OUT, then benchstat
# prints the medians with the baseline as the base column.
BENCH_OUT ?= $(or $(TMPDIR),/tmp)/ticketd-bench-baseline.txt
.PHONY: bench-baseline
bench-baseline:
	@bash scripts/benchenv.sh start
	@rm -f $(BENCH_OUT); eval "$$(bash scripts/benchenv.sh env)" && for i in $$(seq $(BENCH_COUNT)); do \
		echo "bench-baseline: run $$i of $(BENCH_COUNT), into $(BENCH_OUT)"; \
		$(GO) test -run '^$$' -bench 'AppendSideBySide|ListingVsBareFiber' -benchmem -count 1 ./infra/eventstore/embedded ./infra/httpapi >>$(BENCH_OUT) \
			|| { tail -n 40 $(BENCH_OUT); exit 1; }; \
	done
	$(BENCHSTAT) -filter '.name:AppendSideBySide' -col '/store@(postgres embedded)' $(BENCH_OUT)
	$(BENCHSTAT) -filter '.name:ListingVsBareFiber' -col '/server@(bare-fiber ticketd)' $(BENCH_OUT)

# Redis and Kafka for the integration tests, and the PostgreSQL whose event
# table the benchmarks measure the embedded store against (its tests check
# that the baseline keeps the same append rules).
testenv-start:
	@bash $(TESTENV) start
	@bash $(BENCHENV) start

testenv-stop:
	@bash $(TESTENV) stop
	@bash $(BENCHENV) stop

testenv-clean:
	@bash $(TESTENV) stop --clean
	@bash $(BENCHENV) stop --clean

testenv-status:
	@bash $(TESTENV) status; bash $(BENCHENV) status

clean:
	rm -rf bin data
