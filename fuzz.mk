# libFuzzer drivers (included by the Makefile, which defines LIB_SRC, CP_SRC,
# DP_SRC, WARN, PKG_CFLAGS and PKG_LIBS). Every tests/fuzz/<name>_fuzz.c becomes
# build-fuzz/<name>_fuzz, built with clang and ASan+UBSan over a clang build of
# the core library. Seed corpora live in tests/fuzz/corpus/<name>/.
#   make fuzz          build every driver
#   make fuzz-smoke    build, then run all drivers for FUZZ_SECONDS in total
#   build-fuzz/json_fuzz build-fuzz/corpus/json tests/fuzz/corpus/json   (by hand)

FUZZ_CC ?= clang
FUZZ_BUILD := build-fuzz
FUZZ_SECONDS ?= 20
# Drivers that also need the control-plane library (cp/ without main.c).
FUZZ_CP_DRIVERS ?= jwt http grpc policy admin hds mads
# Drivers that need kuma-dp's library (dp/ without main.c).
FUZZ_DP_DRIVERS ?= meshmetric promtext

FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(WARN) \
	-Ilib -I. $(PKG_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_LDFLAGS := -fsanitize=fuzzer $(FUZZ_SAN)

FUZZ_SRC := $(sort $(wildcard tests/fuzz/*_fuzz.c))
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%_fuzz.c=%)
FUZZ_BIN := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/%_fuzz)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_CP_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out cp/main.c,$(CP_SRC)))
FUZZ_DP_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out dp/main.c,$(DP_SRC)))

.PHONY: fuzz fuzz-smoke
.PRECIOUS: $(FUZZ_BUILD)/obj/%.o

fuzz: $(FUZZ_BIN)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libkm.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/libcp.a: $(FUZZ_CP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/libdp.a: $(FUZZ_DP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(foreach d,$(filter $(FUZZ_CP_DRIVERS),$(FUZZ_NAMES)),$(eval $(FUZZ_BUILD)/$(d)_fuzz: $(FUZZ_BUILD)/libcp.a))
$(foreach d,$(filter $(FUZZ_DP_DRIVERS),$(FUZZ_NAMES)),$(eval $(FUZZ_BUILD)/$(d)_fuzz: $(FUZZ_BUILD)/libdp.a))

# Link order: driver, control plane or data plane (when needed), then the core
# library.
$(FUZZ_BUILD)/%_fuzz: $(FUZZ_BUILD)/obj/tests/fuzz/%_fuzz.o $(FUZZ_BUILD)/libkm.a
	$(FUZZ_CC) -o $@ $(filter %.o,$^) $(filter %/libcp.a,$^) $(filter %/libdp.a,$^) \
		$(filter %/libkm.a,$^) \
		$(FUZZ_LDFLAGS) $(PKG_LIBS) -lm -pthread

# Runs each driver for an equal share of FUZZ_SECONDS (at least 2 s) on its
# seed corpus; new inputs go to build-fuzz/corpus/<name>, crash reproducers to
# build-fuzz/crashes/. Any crash, leak or sanitizer report fails the target.
fuzz-smoke: fuzz
	@set -u; n=$(words $(FUZZ_NAMES)); [ "$$n" -gt 0 ] || { echo "fuzz: no drivers"; exit 0; }; \
	t=$$(( $(FUZZ_SECONDS) / n )); [ "$$t" -ge 2 ] || t=2; fails=0; \
	mkdir -p $(FUZZ_BUILD)/crashes $(FUZZ_BUILD)/logs; \
	for name in $(FUZZ_NAMES); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$name; \
		seeds=tests/fuzz/corpus/$$name; [ -d "$$seeds" ] || seeds=; \
		log=$(FUZZ_BUILD)/logs/$$name.log; \
		if $(FUZZ_BUILD)/$${name}_fuzz -max_total_time=$$t -timeout=10 -rss_limit_mb=2048 \
			-max_len=65536 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/crashes/$$name- \
			$(FUZZ_BUILD)/corpus/$$name $$seeds >$$log 2>&1; then \
			runs=$$(grep -o 'stat::number_of_executed_units: *[0-9]*' $$log | grep -o '[0-9]*$$'); \
			echo "fuzz: ok   $$name ($${runs:-?} runs in $${t}s)"; \
		else \
			fails=$$((fails+1)); tail -n 60 $$log; \
			echo "fuzz: FAIL $$name (log $$log, reproducer in $(FUZZ_BUILD)/crashes/)"; \
		fi; \
	done; \
	[ "$$fails" -eq 0 ] || { echo "fuzz: $$fails driver(s) failed"; exit 1; }

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_CP_OBJ:.o=.d) $(FUZZ_DP_OBJ:.o=.d) \
	$(FUZZ_SRC:%.c=$(FUZZ_BUILD)/obj/%.d)
