# Envoy/xDS protobuf code, generated at build time (included by the Makefile).
# The .proto files come from the pinned npm package @grpc/grpc-js-xds
# (package-lock.json); nothing generated is committed. Steps, all under $(BUILD):
#   proto/    copy of the package's deps/ with two small patches (see below)
#   proto/set.pb  self-contained descriptor set of the subset (for `protoc --decode`)
#   gen/      protoc-c output for the subset and its imports, the type registry
#             (km_pb_registry.c) and pb.mk, the list of generated sources
# Generated objects are added to libkm.a (and to the fuzz build's libkm.a), so
# no link line changes. Regeneration happens only when package-lock.json,
# this file or the registry script change; files whose text did not change
# keep their timestamps, so nothing recompiles needlessly.
#   protoc --descriptor_set_in=build/proto/set.pb \
#       --decode=envoy.config.cluster.v3.Cluster < cluster.bin     (debugging)

PB_NPM_PKG := node_modules/@grpc/grpc-js-xds
PB_PROTO := $(BUILD)/proto
PB_GEN := $(BUILD)/gen
PB_INC := -I$(PB_PROTO)/envoy-api -I$(PB_PROTO)/xds -I$(PB_PROTO)/googleapis \
	-I$(PB_PROTO)/protoc-gen-validate -I/usr/include

# The control-plane subset: roots relative to deps/envoy-api (PB_ENVOY_ROOTS)
# and deps/xds (PB_XDS_ROOTS), shell globs. Their imports come along.
# Left out: trace/v3/{opencensus,trace}.proto and access_loggers/open_telemetry
# import opencensus/opentelemetry protos that the package does not ship.
PB_ENVOY_ROOTS := \
	envoy/service/discovery/v3/ads.proto envoy/service/discovery/v3/discovery.proto \
	envoy/service/secret/v3/sds.proto envoy/service/health/v3/hds.proto \
	envoy/config/listener/v3/*.proto envoy/config/cluster/v3/*.proto \
	envoy/config/endpoint/v3/*.proto envoy/config/route/v3/*.proto \
	envoy/config/core/v3/*.proto envoy/config/bootstrap/v3/bootstrap.proto \
	envoy/config/rbac/v3/rbac.proto envoy/config/accesslog/v3/accesslog.proto \
	envoy/config/trace/v3/datadog.proto envoy/config/trace/v3/zipkin.proto \
	envoy/config/trace/v3/opentelemetry.proto envoy/config/trace/v3/http_tracer.proto \
	envoy/admin/v3/config_dump.proto \
	envoy/extensions/filters/network/http_connection_manager/v3/*.proto \
	envoy/extensions/filters/network/tcp_proxy/v3/*.proto \
	envoy/extensions/filters/network/rbac/v3/*.proto \
	envoy/extensions/filters/network/local_ratelimit/v3/*.proto \
	envoy/extensions/filters/http/router/v3/*.proto \
	envoy/extensions/filters/http/rbac/v3/*.proto \
	envoy/extensions/filters/http/local_ratelimit/v3/*.proto \
	envoy/extensions/filters/http/fault/v3/*.proto \
	envoy/extensions/filters/http/lua/v3/*.proto \
	envoy/extensions/filters/http/health_check/v3/*.proto \
	envoy/extensions/filters/http/grpc_stats/v3/*.proto \
	envoy/extensions/filters/listener/tls_inspector/v3/*.proto \
	envoy/extensions/filters/listener/original_dst/v3/*.proto \
	envoy/extensions/filters/listener/http_inspector/v3/*.proto \
	envoy/extensions/filters/common/matcher/action/v3/*.proto \
	envoy/extensions/common/matching/v3/*.proto \
	envoy/extensions/transport_sockets/tls/v3/*.proto \
	envoy/extensions/transport_sockets/raw_buffer/v3/*.proto \
	envoy/extensions/matching/common_inputs/ssl/v3/*.proto \
	envoy/extensions/matching/common_inputs/network/v3/*.proto \
	envoy/extensions/upstreams/http/v3/*.proto \
	envoy/extensions/access_loggers/file/v3/*.proto \
	envoy/extensions/access_loggers/filters/cel/v3/*.proto \
	envoy/extensions/health_check/event_sinks/file/v3/*.proto \
	envoy/extensions/access_loggers/grpc/v3/*.proto \
	envoy/extensions/access_loggers/stream/v3/*.proto \
	envoy/extensions/clusters/aggregate/v3/*.proto \
	envoy/extensions/load_balancing_policies/*/v3/*.proto
PB_XDS_ROOTS := xds/type/matcher/v3/*.proto udpa/type/v1/typed_struct.proto \
	xds/type/v3/typed_struct.proto

# Goals that must not trigger generation (`test` installs first and recurses;
# its sub-makes generate).
PB_SKIP_GOALS := clean deps check-style test
PB_WANTED := $(if $(MAKECMDGOALS),$(filter-out $(PB_SKIP_GOALS),$(MAKECMDGOALS)),all)

$(PB_GEN)/pb.mk: package-lock.json proto.mk scripts/gen-pb-registry.py
	@command -v protoc >/dev/null && command -v protoc-c >/dev/null || \
		{ echo "proto.mk: protoc/protoc-c missing: run 'make deps'" >&2; exit 1; }
	@want=$$(python3 -c 'import json,sys; print(json.load(open("package-lock.json"))["packages"]["node_modules/@grpc/grpc-js-xds"]["version"])'); \
	have=$$(python3 -c 'import json; print(json.load(open("$(PB_NPM_PKG)/package.json"))["version"])' 2>/dev/null); \
	if [ "$$want" != "$$have" ]; then \
		echo "npm ci (@grpc/grpc-js-xds $$want)"; \
		command -v npm >/dev/null || { echo "proto.mk: npm missing: run 'make deps'" >&2; exit 1; }; \
		npm ci --no-audit --no-fund >/dev/null || exit 1; \
	fi
	@echo "protoc-c Envoy/xDS subset -> $(PB_GEN)"
	@rm -rf $(PB_PROTO) $(PB_GEN).tmp && mkdir -p $(PB_PROTO) $(PB_GEN).tmp
	@cp -r $(PB_NPM_PKG)/deps/envoy-api $(PB_NPM_PKG)/deps/xds $(PB_NPM_PKG)/deps/googleapis \
		$(PB_NPM_PKG)/deps/protoc-gen-validate $(PB_PROTO)/
	@# The bundled validate.proto predates the Envoy protos (ignore_empty).
	@sed -i '/^message StringRules {/a\    optional bool ignore_empty = 26;' \
		$(PB_PROTO)/protoc-gen-validate/validate/validate.proto
	@# Bootstrap.Runtime.base clashes with protobuf-c's `base` member: rename
	@# the C member only (same number, same JSON name).
	@sed -i 's/^\(  google.protobuf.Struct \)base = 4;/\1base_ = 4 [json_name = "base"];/' \
		$(PB_PROTO)/envoy-api/envoy/config/bootstrap/v3/bootstrap.proto
	@grep -q 'ignore_empty = 26' $(PB_PROTO)/protoc-gen-validate/validate/validate.proto && \
		grep -q 'base_ = 4' $(PB_PROTO)/envoy-api/envoy/config/bootstrap/v3/bootstrap.proto || \
		{ echo "proto.mk: patching the .proto copy failed" >&2; exit 1; }
	@roots="$$(cd $(PB_PROTO)/envoy-api && ls $(PB_ENVOY_ROOTS)) $$(cd $(PB_PROTO)/xds && ls $(PB_XDS_ROOTS))" && \
	protoc $(PB_INC) --include_imports --descriptor_set_out=$(PB_PROTO)/set.pb $$roots && \
	files=$$(protoc -I/usr/include --decode=google.protobuf.FileDescriptorSet \
		google/protobuf/descriptor.proto <$(PB_PROTO)/set.pb | sed -n 's/^  name: "\(.*\)"$$/\1/p') && \
	protoc-c $(PB_INC) --c_out=$(PB_GEN).tmp $$files
	@python3 scripts/gen-pb-registry.py $(PB_GEN).tmp $(PB_GEN) $@
	@rm -rf $(PB_GEN).tmp

ifneq ($(PB_WANTED),)
include $(PB_GEN)/pb.mk
endif

# pb.mk defines PB_GEN_SRC: generated .c files relative to $(PB_GEN).
PB_OBJ := $(PB_GEN_SRC:%.c=$(BUILD)/pbobj/%.o)
FUZZ_PB_OBJ := $(PB_GEN_SRC:%.c=$(FUZZ_BUILD)/pbobj/%.o)

PB_CFLAGS := $(shell pkg-config --cflags libprotobuf-c 2>/dev/null)
PB_LIBS := $(shell pkg-config --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c)
CFLAGS_ALL += -I$(PB_GEN) $(PB_CFLAGS)
FUZZ_CFLAGS += -I$(PB_GEN) $(PB_CFLAGS)
LDLIBS_ALL += $(PB_LIBS)
PKG_LIBS += $(PB_LIBS)

# Generated code keeps the project's warnings, but they never fail the build.
.PRECIOUS: $(BUILD)/pbobj/%.o $(FUZZ_BUILD)/pbobj/%.o
$(BUILD)/pbobj/%.o: $(PB_GEN)/%.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS_ALL) -Wno-error -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/pbobj/%.o: $(PB_GEN)/%.c
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-error -MMD -MP -c $< -o $@

$(BUILD)/libkm.a: $(PB_OBJ)
$(FUZZ_BUILD)/libkm.a: $(FUZZ_PB_OBJ)

-include $(PB_OBJ:.o=.d)
