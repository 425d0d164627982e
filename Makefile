# MPIM: `make run` and `make test` are all a new machine needs (Debian 12, root).
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
DATA_DIR   ?= ./data
CLUSTER_DIR ?= ./cluster
LISTEN     ?= 127.0.0.1:8080
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja

.PHONY: all deps configure build run cluster package test test-asan test-tsan fuzz clean format

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/bin/mpim serve --listen $(LISTEN) --data-dir $(DATA_DIR)

# A whole cluster on this machine (docs/cluster.md): redis-server, mariadbd,
# etcd, 2 gateways, 2 logic nodes and a task node, data kept in CLUSTER_DIR.
cluster: build
	$(BUILD)/bin/mpim cluster up --dir $(CLUSTER_DIR)

# The Debian package (CPack; docs/operations.md, "Installing the Debian
# package"): $(BUILD)/mpim_<version>_amd64.deb.
package: build
	cd $(BUILD) && cpack -G DEB

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# AddressSanitizer + UndefinedBehaviorSanitizer over the same suites, but the
# reruns on other engines and targets (label rerun), the cluster failover
# suite, the multi-node suite and the browser suite (label noasan; the first
# two, and the load generator, are not even built there): the CI time budget
# (docs/development.md, "CI time").
# -O1 -g1 (line tables): what ASan recommends, file:line still in reports,
# and quicker to build than -O2 -g (ws_session.cc: 29.2 vs 33.9 s), which
# CI's time budget needs. UBSan without its alignment, null and vptr checks:
# g++ instruments every member access for them, which made an Asio/Beast
# file take 50 s instead of 32 s (src/net/http_client.cc); a null
# dereference still stops the run (ASan's SEGV report), x86 loads tolerate
# misalignment, and ASan catches the use-after-free a vptr check would.
$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG -fno-sanitize=alignment,null,vptr" \
	  -DMPIM_SANITIZE=address,undefined -DMPIM_BUILD_BENCH=OFF

# The end-to-end suites are the release build's binaries driving the ASan
# build's mpim (MPIM_BINARY; nodes that `mpim cluster up` starts are that
# binary too): what they check is the server, and compiling them under ASan
# would double the build (CI time budget).
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
test-asan: build $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	$(ASAN_ENV) ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -LE 'rerun|noasan|deploy'
	$(ASAN_ENV) MPIM_BINARY=$(CURDIR)/$(ASAN_BUILD)/bin/mpim MPIM_TEST_SANITIZED_SERVER=1 \
	  ctest --test-dir $(BUILD) \
	  --output-on-failure -j $(JOBS) -L e2e -LE 'rerun|noasan' -E bench_smoke

# ThreadSanitizer over the unit, store and concurrency suites (the e2e and
# browser suites drive a separate server process and run under ASan instead).
$(TSAN_BUILD)/build.ninja:
	cmake -S . -B $(TSAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMPIM_SANITIZE=thread -DMPIM_BUILD_BENCH=OFF

test-tsan: deps $(TSAN_BUILD)/build.ninja
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --test-dir $(TSAN_BUILD) --output-on-failure -j $(JOBS) -LE 'e2e|browser|deploy'

# libFuzzer targets (clang, ASan + UBSan) over their corpora, FUZZ_SECONDS
# each; new inputs go to a scratch copy, crashes to $(FUZZ_BUILD)/artifacts.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := client_frame rest_body jwt config ws_frame

$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPIM_FUZZ=ON

fuzz: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  work=$(FUZZ_BUILD)/corpus/$$t; mkdir -p $$work $(FUZZ_BUILD)/artifacts; \
	  cp tests/fuzz/corpus/$$t/* $$work/; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 \
	    -max_len=65536 -print_final_stats=0 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
	    $$work 2>&1 | grep -E '^(Done|==|SUMMARY|INFO: a corpus)' || true; \
	  test "$$(ls $(FUZZ_BUILD)/artifacts | grep -c "^$$t-")" = 0 || \
	    { echo "fuzz: $$t found a crash: $(FUZZ_BUILD)/artifacts"; exit 1; }; \
	done

format:
	find src tests tools bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)

# The benchmark suite (docs/benchmarks.md): every scenario against a fresh
# `mpim serve`, results in bench/results/<date>.{md,json} and SVG charts;
# then offline push to 10,000 devices per provider (push_bench, about a
# minute each), appended to bench/results/push-<date>.md; then the edge
# beside HAProxy and nginx (edge_bench, about 3 minutes).
# Takes several minutes; not part of `make test`.
BENCH_TOOLS := store_bench cache_bench bus_bench lb_bench rpc_bench push_bench edge_bench
.PHONY: bench bench-tools
bench-tools: build
	cmake --build $(BUILD) -j $(JOBS) --target $(BENCH_TOOLS)

bench: bench-tools
	$(BUILD)/bin/mpim-bench --server-bin $(BUILD)/bin/mpim --suite standard --out-dir bench/results \
	  --label "commit $$(git rev-parse --short HEAD 2>/dev/null)$$(git diff --quiet HEAD -- src 2>/dev/null || echo ', src modified')"
	$(BUILD)/bin/push_bench --out bench/results/push-$$(date +%F).md
	$(BUILD)/bin/edge_bench --out bench/results/edge-$$(date +%F).md
