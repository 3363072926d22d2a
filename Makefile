# The two commands of the README's Quick start, and a few more.
#
#   make        build build/voice-and-score
#   make run    run the server on the demo configuration (simulator, SQLite)
#   make test   run the whole suite: plain build, then ASan+UBSan build
#
# Each installs missing Debian packages first (scripts/install-deps).

BUILD      ?= build
ASAN_BUILD ?= build-asan
MESON_OPTS ?= -Dwerror=true
CONFIG     ?= examples/demo.yaml

.PHONY: all deps run test test-plain test-asan clean

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

test: deps test-plain test-asan

test-plain: $(BUILD)/build.ninja
	ninja -C $(BUILD)
	meson test -C $(BUILD) --print-errorlogs

test-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  meson test -C $(ASAN_BUILD) --print-errorlogs

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
