# The two commands the README opens with: `make lab` and `make test`.
GO        ?= go
BIN       := $(CURDIR)/bin/mpim
# Packages that start clusters of real processes run one at a time (-p 1):
# two clusters must never fight over the two cores of a CI machine.
CLUSTER_PKGS := ./e2e/...

.PHONY: build lab test unit e2e fuzz vet proto clean gobench bench-targets peers course-numbers

build:
	$(GO) build -o $(BIN) ./cmd/mpim

lab:
	$(GO) run ./cmd/mpim lab up

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e: build
	MPIM_BIN=$(BIN) $(GO) test -race -count=1 -p 1 -timeout 25m $(CLUSTER_PKGS)

# One `go test -fuzz` invocation per target, briefly: a count of inputs
# rather than a duration, which avoids the fuzzer's own end-of-run deadline
# ("context deadline exceeded") seen on a loaded 2-core machine.
FUZZTIME ?= 300000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFrame$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 50x ./gateway/wire
	$(GO) test -run '^$$' -fuzz '^FuzzValidateRequest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 50x ./gateway/wire

test: vet unit e2e fuzz

# The go test -bench benchmarks, once each (`mpim bench` is the system
# benchmark: docs/benchmarks.md). Not part of `make test`.
BENCHTIME ?= 1x
gobench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./fsm ./node/store ./node/cp ./gateway/wire ./chaos/check

# The system benchmarks behind docs/benchmarks.md's targets table, one
# after another (about six minutes). Not part of `make test`.
bench-targets: build
	bench/targets.sh

# The course's tables of measured numbers (docs/course/README.md, "How the
# numbers are made"): a 5-seed quick chaos sweep of every scenario they
# show, one after another (16 minutes on 2026-12-07), then every marked table and
# number rewritten in both languages. NUMBERS_FLAGS passes flags on
# (-only retry, -from DIR, -n). Not part of `make test`.
NUMBERS_FLAGS ?=
course-numbers: build
	MPIM_BIN=$(BIN) $(GO) run ./docs/course/numbers $(NUMBERS_FLAGS)

# The peers `mpim bench --reference` measures beside the system: a
# Centrifugo server (`--reference centrifugo`), installed into bin/ next to
# mpim, where bench looks first. Not part of `make test` or CI.
CENTRIFUGO_VERSION ?= v6.9.1
peers:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/centrifugal/centrifugo/v6@$(CENTRIFUGO_VERSION)

proto:
	protoc --go_out=. --go_opt=module=mpim --go-grpc_out=. --go-grpc_opt=module=mpim proto/mpim.proto

clean:
	rm -rf bin
