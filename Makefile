# The two commands of the README's Quick start, and a few more.
#
#   make        build build/voice-and-score
#   make run    run the server on the demo configuration (simulator, SQLite)
#   make test   run the whole suite: plain build, ASan+UBSan build, and the
#               unit tests under valgrind
#   make fuzz   run every libFuzzer target for FUZZ_SECONDS (needs clang)
#   make bench  the benchmark: writes bench/RESULTS.md (see bench/README.md)
#   make install   binary, manual pages, example config, systemd unit;
#               PREFIX (default /usr/local) and DESTDIR as usual
#
# Each installs missing Debian packages first (scripts/install-deps).

BUILD      ?= build
ASAN_BUILD ?= build-asan
VG_BUILD   ?= build-valgrind
MESON_OPTS ?= -Dwerror=true
FUZZ_BUILD ?= build-fuzz
CONFIG     ?= examples/demo.yaml
FUZZ_SECONDS ?= 60
FUZZERS    := callback config event http json packed phone score

.PHONY: all deps run test test-plain test-asan test-valgrind fuzz bench \
	install clean

PREFIX     ?= /usr/local
DESTDIR    ?=

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) $(MESON_OPTS) -Db_sanitize=address,undefined \
	  -Db_lundef=false

run: all
	@mkdir -p var
	$(BUILD)/voice-and-score serve --config $(CONFIG)

test:
	@scripts/install-deps --test
	$(MAKE) test-plain test-asan test-valgrind

test-plain: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	meson test -C $(BUILD) --print-errorlogs --no-suite valgrind

test-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  meson test -C $(ASAN_BUILD) --print-errorlogs --no-suite soak \
	  --no-suite valgrind

$(VG_BUILD)/build.ninja:
	meson setup $(VG_BUILD) $(MESON_OPTS)

# The unit suite under valgrind's memcheck, in a build of its own so that
# its test log sits beside the other two for .ci/run to count.
test-valgrind: $(VG_BUILD)/build.ninja
	ninja -C $(VG_BUILD)
	meson test -C $(VG_BUILD) --print-errorlogs --suite valgrind

$(FUZZ_BUILD)/build.ninja:
	@scripts/install-deps --fuzz
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false \
	  -Db_sanitize=address,undefined -Db_lundef=false

# Each target runs on a scratch copy of its seed corpus, so that what the
# fuzzer learns does not churn the repository; findings go to
# tests/fuzz/findings/.
fuzz: $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	@mkdir -p tests/fuzz/findings
	@set -e; for f in $(FUZZERS); do \
	  work=$$(mktemp -d); cp -r tests/fuzz/corpus/$$f/. $$work/; \
	  echo "fuzz_$$f: $(FUZZ_SECONDS) s"; \
	  if ! $(FUZZ_BUILD)/tests/fuzz/fuzz_$$f \
	      -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	      -artifact_prefix=tests/fuzz/findings/$$f- $$work \
	      > $$work.log 2>&1; then \
	    tail -n 40 $$work.log; rm -rf $$work $$work.log; exit 1; \
	  fi; \
	  grep -E '^Done|^#[0-9]+.*DONE' $$work.log | tail -n 1; \
	  rm -rf $$work $$work.log; \
	done

bench:
	bench/run

install: all
	meson configure $(BUILD) --prefix=$(PREFIX)
	meson install -C $(BUILD) --destdir "$(DESTDIR)"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(VG_BUILD) $(FUZZ_BUILD) build-bench
