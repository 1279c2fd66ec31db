# Store benchmark (bench/store.sh): build/bench/store_bench.
.PHONY: bench-store
STORE_BENCH := $(BUILD)/bench/store_bench

$(STORE_BENCH): $(BUILD)/obj/bench/store_bench.o $(BUILD)/libcp.a $(BUILD)/libkm.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

bench-store: $(STORE_BENCH)
	bench/store.sh

-include $(BUILD)/obj/bench/store_bench.d
