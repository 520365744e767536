# netpol: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they need (Debian 12 packages, as root), build and run.

JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 15

.PHONY: all deps build helm test test-fast test-asan fuzz bench bench-dataplane bench-lab demo format format-check lint tidy module-deps clean \
	cluster-deps cluster-build cluster-up cluster-down cluster-status demo-cluster test-cluster

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

# The real Helm the chart tests run (tests/deploy/chart_test.cpp), built with Go from
# the module pinned in cluster/modules/helm into build/cluster/bin; cached.
helm:
	@scripts/cluster/build-components.sh helm

# Every test: the fast tier (unit, scenario, golden, CLI, chart, every fuzz target's
# corpus replayed) and a tenth of the differential runs (deep) under AddressSanitizer +
# UBSan; the ci tree's (release at -O1) e2e tier (root, network namespaces, labs, the
# guide) and the full-length differential tests (label deep); the style checks
# (module edges, clang-format, clang-tidy: any finding fails) and the benchmarks' build,
# run at low priority while the e2e tier waits on daemons and probes. scripts/test.sh
# arranges the phases and prints their times. libFuzzer's own runs are `make fuzz`.
test: deps
	@JOBS=$(JOBS) scripts/test.sh

test-fast: build helm
	@ctest --preset release -j $(JOBS) -L 'fast|deep'

test-asan: deps helm
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS) --target fast-tests
	@ctest --preset asan -j $(JOBS)

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS) --target fuzz-targets
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

# clang-format's verdict on every source (`make format` rewrites them), clang-tidy's on
# src/ (.clang-tidy: Google naming, bug and performance checks), and every #include and
# CMake link in src/ against the module diagram in docs/ARCHITECTURE.md.
lint: format-check tidy module-deps

module-deps:
	@python3 scripts/check-module-deps.py

format-check: deps
	@find src tests bench -name '*.h' -o -name '*.cpp' | xargs clang-format-14 --dry-run -Werror

tidy: deps
	@cmake --preset release >/dev/null
	@find src -name '*.cpp' | xargs -P $(JOBS) -n 4 clang-tidy-14 -p build/release --quiet 2>/dev/null

# The real-cluster tier (root): upstream Kubernetes built from the Go modules pinned in
# cluster/modules, two nodes as network namespaces, netpol installed as users install it.
# `make cluster-up && make test-cluster`; `make demo-cluster` tells the guide on it.
CLUSTER_FLAGS ?=

cluster-deps: deps
	@scripts/cluster/install-deps.sh

cluster-build: cluster-deps build
	@scripts/cluster/build-components.sh
	@scripts/cluster/images.sh

cluster-up: cluster-build
	@scripts/cluster/cluster.sh up $(CLUSTER_FLAGS)

cluster-down:
	@scripts/cluster/cluster.sh down

cluster-status:
	@scripts/cluster/cluster.sh status

demo-cluster: cluster-build
	@examples/wordpress-chart/demo.sh

test-cluster: cluster-build
	@scripts/cluster/test-cluster.sh

clean:
	@rm -rf build
