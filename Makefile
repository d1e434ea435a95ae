# The two commands of the README's quick start:
#   make run    installs what is missing, starts a local ClickHouse and the
#               whole pipeline on the embedded broker with synthetic traffic
#   make test   installs what is missing and runs every test
# CI (.ci/run) calls `make test`.

GO ?= go
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin

.PHONY: run test deps deps-run build bench fuzz vet

deps:
	./scripts/deps.sh

deps-run:
	./scripts/deps.sh run

build:
	$(GO) build -o bin/questline ./cmd/questline

run: deps-run build
	./scripts/quickstart.sh

vet:
	$(GO) vet ./...

# Every test, then a short fuzz run of the batch decoder.
test: deps vet
	$(GO) test -count=1 -p 2 -timeout 70m ./...
	$(MAKE) fuzz FUZZTIME=500000x

# A count, not a duration: Go 1.26's fuzzing coordinator can report a
# spurious "context deadline exceeded" when a duration ends while a worker
# is busy (go.dev/issue/75804, fixed in Go 1.27; CI failed on it once,
# session 14, with no failing input). A count has no deadline to race.
FUZZTIME ?= 3000000x
fuzz:
	@for t in $$($(GO) test -list '^Fuzz' ./event/ | grep '^Fuzz'); do \
	  echo "fuzz $$t for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./event/ || exit 1; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
