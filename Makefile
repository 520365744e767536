# netpol: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they need (Debian 12 packages, as root), build and run.

JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 15

.PHONY: all deps build test test-fast test-asan fuzz bench bench-dataplane bench-lab demo format tidy clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

# Every test: unit, scenario, golden and CLI tests (release build), the same
# under AddressSanitizer + UBSan, and a short libFuzzer run of every decoder.
test: build test-asan fuzz
	@ctest --preset release -j $(JOBS)

test-fast: build
	@ctest --preset release -j $(JOBS) -L fast

test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS) --target fast-tests
	@ctest --preset asan -j $(JOBS)

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)
	@scripts/run-fuzzers.sh build/fuzz $(FUZZ_SECONDS)

bench: build
	@scripts/run-benchmarks.sh build/release

# Root: pods as network namespaces, nftables in a node namespace.
bench-dataplane: build
	@scripts/bench-dataplane.sh build/release

# Root: the lab's latencies and the agent's memory with 10k pods / 1k policies.
bench-lab: build
	@scripts/bench-lab.sh build/release

demo: build
	@examples/wordpress/demo.sh build/release/bin/netpol

format:
	@find src tests bench -name '*.h' -o -name '*.cpp' | xargs clang-format -i

tidy: build
	@find src -name '*.cpp' | xargs clang-tidy -p build/release --quiet

clean:
	@rm -rf build
