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
