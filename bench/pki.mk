# Workload-certificate benchmark (bench/pki_bench.c): build/bench/pki_bench.
# Not part of `all`; `make bench-pki` builds and runs it.
.PHONY: bench-pki
PKI_BENCH := $(BUILD)/bench/pki_bench

$(PKI_BENCH): $(BUILD)/obj/bench/pki_bench.o $(BUILD)/libcp.a $(BUILD)/libkm.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

bench-pki: $(PKI_BENCH)
	$(PKI_BENCH)

-include $(BUILD)/obj/bench/pki_bench.d
