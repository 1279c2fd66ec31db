# kuma-c: one non-recursive Makefile. `make` builds the programs, `make run`
# installs what is missing, builds and starts kuma-cp on the memory store,
# `make test` runs every test (unit, conformance, end to end, fuzz smoke)
# with AddressSanitizer and UndefinedBehaviorSanitizer.

CC ?= cc
SAN ?= 0
BUILD ?= build
ifeq ($(SAN),1)
BUILD := build-san
endif

NPROC := $(shell nproc 2>/dev/null || echo 2)
PKGS := libfyaml libmicrohttpd libcurl openssl libpq libnghttp2 gnutls
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	-Wno-unused-parameter -Wno-format-nonliteral
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -pthread -g -O2 $(WARN) -Ilib -I. $(PKG_CFLAGS)
ifeq ($(CI),true)
CFLAGS_BASE += -Werror
endif
ifeq ($(SAN),1)
CFLAGS_BASE += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
endif
CFLAGS_ALL := $(CFLAGS_BASE) $(CFLAGS)
LDLIBS_ALL := $(PKG_LIBS) -lm -pthread $(LDFLAGS_SAN)

LIB_SRC := $(sort $(wildcard lib/*/*.c))
CP_SRC := $(sort $(wildcard cp/*.c cp/*/*.c))
CTL_SRC := $(sort $(wildcard ctl/*.c ctl/*/*.c))
DP_SRC := $(sort $(wildcard dp/*.c dp/*/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*/*_test.c tests/unit/*/*/*_test.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CP_OBJ := $(CP_SRC:%.c=$(BUILD)/obj/%.o)
CTL_OBJ := $(CTL_SRC:%.c=$(BUILD)/obj/%.o)
DP_OBJ := $(DP_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%_test.c=$(BUILD)/tests/%_test)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
CP_LIB_OBJ := $(filter-out $(BUILD)/obj/cp/main.o,$(CP_OBJ))

PROGRAMS := $(BUILD)/kuma-cp $(BUILD)/kumactl $(if $(DP_SRC),$(BUILD)/kuma-dp) $(TOOL_BIN)

.PRECIOUS: $(BUILD)/obj/%.o
.PHONY: all run test unit deps check-style tsan fuzz clean bench
all: $(PROGRAMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libkm.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcp.a: $(CP_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/kuma-cp: $(BUILD)/obj/cp/main.o $(BUILD)/libcp.a $(BUILD)/libkm.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/kumactl: $(CTL_OBJ) $(BUILD)/libkm.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/kuma-dp: $(DP_OBJ) $(BUILD)/libkm.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# Unit tests: tests/unit/<dir>/<name>_test.c links the core library (and the
# control plane library for tests under tests/unit/cp).
$(BUILD)/tests/%_test: $(BUILD)/obj/tests/unit/%_test.o $(BUILD)/libcp.a $(BUILD)/libkm.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# kumactl unit tests (tests/unit/ctl) also link kumactl's objects, minus main,
# through an archive so each test pulls only the modules it uses.
CTL_LIB_OBJ := $(filter-out $(BUILD)/obj/ctl/main.o,$(CTL_OBJ))
$(BUILD)/libctl.a: $(CTL_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/ctl/%_test: $(BUILD)/obj/tests/unit/ctl/%_test.o $(BUILD)/libctl.a $(BUILD)/libkm.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# kuma-dp unit tests (tests/unit/dp) link kuma-dp's objects, minus main,
# through an archive as the kumactl tests do.
DP_LIB_OBJ := $(filter-out $(BUILD)/obj/dp/main.o,$(DP_OBJ))
$(BUILD)/libdp.a: $(DP_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/dp/%_test: $(BUILD)/obj/tests/unit/dp/%_test.o $(BUILD)/libdp.a $(BUILD)/libkm.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# Test-only tools (tests/tools/<name>.c), used by the pytest suites.
$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(BUILD)/libcp.a $(BUILD)/libkm.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

deps:
	@scripts/install-deps.sh

run: deps all
	$(BUILD)/kuma-cp run

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

check-style:
	@scripts/check-banned.sh

# The tests of code that runs on more than one thread (cp/xds/builder.c),
# again under ThreadSanitizer (it cannot be combined with ASan).
TSAN_TESTS := build-tsan/tests/xds/builder_test
tsan:
	@$(MAKE) --no-print-directory -j$(NPROC) BUILD=build-tsan SAN=0 CFLAGS="-fsanitize=thread -O1" \
		LDFLAGS_SAN=-fsanitize=thread $(TSAN_TESTS)
	@TSAN_OPTIONS=halt_on_error=1 scripts/run-unit.sh $(TSAN_TESTS)

# Everything, under ASan+UBSan: style, unit tests, conformance and e2e (pytest),
# and a short fuzz smoke run.
test: deps
	@$(MAKE) --no-print-directory check-style
	@$(MAKE) --no-print-directory -j$(NPROC) SAN=1 all
	@$(MAKE) --no-print-directory SAN=1 unit
	@$(MAKE) --no-print-directory SAN=1 bench-smoke
	@$(MAKE) --no-print-directory tsan
	@$(MAKE) --no-print-directory fuzz-smoke
	KUMA_BUILD_DIR=$(CURDIR)/build-san python3 -m pytest -q tests/conformance tests/e2e
	@echo "--- the REST conformance replay and MADS again, on PostgreSQL ---"
	KUMA_BUILD_DIR=$(CURDIR)/build-san KUMA_TEST_STORE=postgres python3 -m pytest -q \
		tests/conformance/test_rest_crud.py tests/conformance/test_base_endpoints.py \
		tests/conformance/test_overview.py tests/conformance/test_rest_inspect_basic.py \
		tests/e2e/test_mads.py

include fuzz.mk
# Envoy protobuf code generated from the pinned npm package (proto.mk).
-include proto.mk

bench: all
	bench/run.sh

clean:
	rm -rf build build-san build-fuzz build-tsan

-include $(LIB_OBJ:.o=.d) $(CP_OBJ:.o=.d) $(CTL_OBJ:.o=.d) $(DP_OBJ:.o=.d)
-include $(UNIT_SRC:%.c=$(BUILD)/obj/%.d) $(TOOL_SRC:%.c=$(BUILD)/obj/%.d)
# The xDS benchmark tool (bench/xds_load.c) and `make bench-xds`.
-include bench/bench.mk
-include bench/store.mk
-include bench/pki.mk
