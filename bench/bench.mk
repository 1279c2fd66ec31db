# Benchmark tools (included by the Makefile): build/bench/xds_load, the fake
# dataplane load generator for the xDS benchmark (bench/xds.sh). Not part of
# `all`; `make bench-xds` builds it and runs the benchmark.
.PHONY: bench-xds
XDS_LOAD := $(BUILD)/bench/xds_load

$(XDS_LOAD): $(BUILD)/obj/bench/xds_load.o $(BUILD)/libkm.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

bench-xds: all $(XDS_LOAD)
	bench/xds.sh

-include $(BUILD)/obj/bench/xds_load.d

# The generation benchmark (bench/gen_bench.c): cp_xds_build for every proxy
# of the benchmark mesh, in-process on one thread. `make bench-gen`.
.PHONY: bench-gen
GEN_BENCH := $(BUILD)/bench/gen_bench

$(GEN_BENCH): $(BUILD)/obj/bench/gen_bench.o $(BUILD)/libcp.a $(BUILD)/libkm.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

bench-gen: $(GEN_BENCH)
	$(GEN_BENCH)

-include $(BUILD)/obj/bench/gen_bench.d

# The benchmark tools build, and the generation benchmark runs on a small
# mesh (under the sanitizers in `make test`), so they do not rot; -V checks
# every resource it fills from a shape against a full encoding (-m: mTLS
# phases too, their line must be there), -P times the steps of a build
# (their line must be there).
.PHONY: bench-smoke
bench-smoke: $(GEN_BENCH) $(XDS_LOAD)
	@$(GEN_BENCH) -n 300 -r 1 -V -P -m >$(BUILD)/bench/gen_bench.out 2>&1 || { cat $(BUILD)/bench/gen_bench.out; exit 1; }
	@grep -q "first build by step" $(BUILD)/bench/gen_bench.out || { cat $(BUILD)/bench/gen_bench.out; exit 1; }
	@grep -q "MeshTimeout changed (mTLS)" $(BUILD)/bench/gen_bench.out || { cat $(BUILD)/bench/gen_bench.out; exit 1; }
	@echo "bench-smoke: gen_bench ok, xds_load built"
