/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for lib/pb/{json,registry,wire}.c: canonical JSON round trips of the
 * main xDS resources (JSON -> packed bytes -> JSON), a DiscoveryRequest built
 * with the generated structs, input leniency (original names, enum numbers,
 * quoted numbers), well-known types, error paths, the depth bound and a
 * cross-check of the encoding with `protoc --decode/--encode` when present. */
#include <stdlib.h>
#include <unistd.h>

#include "base/err.h"
#include "pb/json.h"
#include "pb/registry.h"
#include "pb/wire.h"
#include "../test.h"
#include "../test_json.h"

#include "envoy/service/discovery/v3/discovery.pb-c.h"

static struct km_arena *A;

static struct km_json *parse(const char *text)
{
	return test_json(A, text);
}

static const char *compact(const struct km_json *v)
{
	struct km_buf b = KM_BUF_INIT;
	km_json_write(&b, v, 0, 0);
	char *s = km_arena_strdup(A, km_buf_cstr(&b));
	km_buf_fini(&b);
	return s;
}

/* JSON -> bytes -> JSON; returns the re-rendered compact text or the error. */
/* The direct writer (km_pb_write_json) and the message path
 * (km_pb_from_json + pack) accept the same input and give bytes that decode
 * to the same message. */
static void check_paths_agree(const char *type, const struct km_json *j)
{
	const ProtobufCMessageDescriptor *d = km_pb_find(km_str_c(type));
	if (!d || !j)
		return;
	struct km_buf fast = KM_BUF_INIT, slow = KM_BUF_INIT;
	ProtobufCMessage *m = NULL;
	int src = km_pb_from_json(A, d, j, &m, NULL);
	if (src == 0)
		CHECK(km_pb_wire_pack(m, &slow) == 0);
	int frc = km_pb_write_json(A, d, j, &fast);
	CHECK((src == 0) == (frc == 0));
	if (src == 0 && frc == 0) {
		struct km_json *x = NULL, *y = NULL;
		CHECK(km_pb_decode_to_json(A, type, (const uint8_t *)fast.data, fast.len, &x, NULL) == 0);
		CHECK(km_pb_decode_to_json(A, type, (const uint8_t *)slow.data, slow.len, &y, NULL) == 0);
		int same = x && y && km_json_equal(x, y);
		CHECK(same);
		if (!same)
			fprintf(stderr, "  paths differ for %s: %s vs %s\n", type, x ? compact(x) : "-", y ? compact(y) : "-");
	} else if ((src == 0) != (frc == 0)) {
		fprintf(stderr, "  paths disagree on %s: message path %d, direct %d: %s\n", type, src, frc, compact(j));
	}
	km_buf_fini(&fast);
	km_buf_fini(&slow);
}

static const char *rt(const char *type, const char *json, struct km_buf *bytes)
{
	check_paths_agree(type, parse(json));
	struct km_buf err = KM_BUF_INIT, local = KM_BUF_INIT;
	if (!bytes)
		bytes = &local;
	struct km_json *back = NULL;
	int rc = km_pb_encode_json(A, type, parse(json), bytes, &err);
	if (rc == 0)
		rc = km_pb_decode_to_json(A, type, (const uint8_t *)bytes->data, bytes->len, &back, &err);
	const char *out = rc == 0 ? compact(back) : km_arena_strdup(A, km_buf_cstr(&err));
	km_buf_fini(&err);
	km_buf_fini(&local);
	return out;
}

/* The canonical input must come back equal (member order aside). */
static void check_rt(const char *type, const char *json)
{
	const char *out = rt(type, json, NULL);
	struct km_json *back = NULL;
	int ok = km_json_parse(A, out, strlen(out), &back, NULL) == 0 &&
		 km_json_equal(parse(json), back);
	CHECK(ok);
	if (!ok)
		fprintf(stderr, "  %s\n  in  %s\n  out %s\n", type, json, out);
}

static const char *encode_err(const char *type, const char *json)
{
	check_paths_agree(type, parse(json));
	struct km_buf err = KM_BUF_INIT, bytes = KM_BUF_INIT;
	int rc = km_pb_encode_json(A, type, parse(json), &bytes, &err);
	const char *out = rc ? km_arena_strdup(A, km_buf_cstr(&err)) : "(no error)";
	km_buf_fini(&err);
	km_buf_fini(&bytes);
	return out;
}

static const char CLUSTER[] =
	"{\"name\":\"backend_80\",\"type\":\"EDS\",\"connectTimeout\":\"5s\","
	"\"edsClusterConfig\":{\"edsConfig\":{\"ads\":{},\"resourceApiVersion\":\"V3\"}},"
	"\"circuitBreakers\":{\"thresholds\":[{\"maxConnections\":1024,\"trackRemaining\":true}]},"
	"\"outlierDetection\":{\"interval\":\"0.100s\",\"baseEjectionTime\":\"30s\","
	"\"enforcingConsecutive5xx\":100,\"successRateStdevFactor\":1900000},"
	"\"commonLbConfig\":{\"healthyPanicThreshold\":{\"value\":20.5}},"
	"\"typedExtensionProtocolOptions\":{\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\":"
	"{\"@type\":\"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\","
	"\"explicitHttpConfig\":{\"http2ProtocolOptions\":{}}}},"
	"\"transportSocket\":{\"name\":\"envoy.transport_sockets.tls\",\"typedConfig\":{"
	"\"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\","
	"\"sni\":\"backend{mesh=default}\",\"commonTlsContext\":{\"alpnProtocols\":[\"kuma\"],"
	"\"tlsCertificateSdsSecretConfigs\":[{\"name\":\"identity_cert:secret:default\","
	"\"sdsConfig\":{\"ads\":{},\"resourceApiVersion\":\"V3\"}}],"
	"\"combinedValidationContext\":{\"defaultValidationContext\":{\"matchTypedSubjectAltNames\":"
	"[{\"sanType\":\"URI\",\"matcher\":{\"exact\":\"spiffe://default/backend\"}}]},"
	"\"validationContextSdsSecretConfig\":{\"name\":\"mesh_ca:secret:default\","
	"\"sdsConfig\":{\"ads\":{},\"resourceApiVersion\":\"V3\"}}}}}},"
	"\"metadata\":{\"filterMetadata\":{\"io.kuma.tags\":{\"kuma.io/service\":\"backend\","
	"\"weights\":[1,2.5,null,true,{\"x\":\"y\"}]}}}}";

static const char LISTENER[] =
	"{\"name\":\"inbound:10.0.0.1:8080\",\"address\":{\"socketAddress\":{\"address\":\"10.0.0.1\","
	"\"portValue\":8080}},\"trafficDirection\":\"INBOUND\",\"bindToPort\":false,"
	"\"enableReusePort\":false,\"listenerFilters\":[{\"name\":\"envoy.filters.listener.tls_inspector\","
	"\"typedConfig\":{\"@type\":\"type.googleapis.com/"
	"envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\"}}],"
	"\"filterChains\":[{\"filterChainMatch\":{\"transportProtocol\":\"tls\","
	"\"applicationProtocols\":[\"kuma\"]},\"filters\":[{\"name\":"
	"\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{\"@type\":"
	"\"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
	"HttpConnectionManager\",\"statPrefix\":\"localhost_8080\",\"commonHttpProtocolOptions\":"
	"{\"idleTimeout\":\"3600s\",\"maxConnectionDuration\":\"0s\"},\"streamIdleTimeout\":\"1800s\","
	"\"requestHeadersTimeout\":\"0s\",\"normalizePath\":true,\"mergeSlashes\":true,"
	"\"pathWithEscapedSlashesAction\":\"UNESCAPE_AND_REDIRECT\",\"forwardClientCertDetails\":"
	"\"SANITIZE_SET\",\"setCurrentClientCertDetails\":{\"uri\":true},"
	"\"httpFilters\":[{\"name\":\"envoy.filters.http.router\",\"typedConfig\":{\"@type\":"
	"\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}],"
	"\"routeConfig\":{\"name\":\"inbound:backend\",\"validateClusters\":false,"
	"\"requestHeadersToRemove\":[\"x-kuma-tags\"],\"virtualHosts\":[{\"name\":\"backend\","
	"\"domains\":[\"*\"],\"routes\":[{\"name\":\"r1\",\"match\":{\"prefix\":\"/\","
	"\"headers\":[{\"name\":\":method\",\"stringMatch\":{\"exact\":\"GET\"}}]},"
	"\"route\":{\"cluster\":\"localhost:8080\",\"timeout\":\"15s\",\"idleTimeout\":\"1.500s\","
	"\"retryPolicy\":{\"retryOn\":\"5xx\",\"numRetries\":3,\"perTryTimeout\":\"0.000001s\"}},"
	"\"typedPerFilterConfig\":{\"envoy.filters.http.local_ratelimit\":{\"@type\":"
	"\"type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit\","
	"\"statPrefix\":\"rate_limit\",\"tokenBucket\":{\"maxTokens\":100,\"tokensPerFill\":100,"
	"\"fillInterval\":\"1s\"},\"filterEnabled\":{\"defaultValue\":{\"numerator\":100},"
	"\"runtimeKey\":\"local_rate_limit_enabled\"}}}}]}]}}}],"
	"\"transportSocket\":{\"name\":\"envoy.transport_sockets.tls\",\"typedConfig\":{\"@type\":"
	"\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\","
	"\"requireClientCertificate\":true,\"commonTlsContext\":{\"tlsParams\":"
	"{\"tlsMinimumProtocolVersion\":\"TLSv1_2\"}}}}}]}";

static const char CLA[] =
	"{\"clusterName\":\"backend\",\"endpoints\":[{\"locality\":{\"zone\":\"zone-1\"},"
	"\"lbEndpoints\":[{\"endpoint\":{\"address\":{\"socketAddress\":{\"address\":\"192.168.0.1\","
	"\"portValue\":80}}},\"healthStatus\":\"HEALTHY\",\"loadBalancingWeight\":1,"
	"\"metadata\":{\"filterMetadata\":{\"envoy.lb\":{\"kuma.io/protocol\":\"http\"}}}}],"
	"\"loadBalancingWeight\":2,\"priority\":1}],\"policy\":{\"overprovisioningFactor\":140}}";

static const char SECRET[] =
	"{\"name\":\"identity_cert:secret:default\",\"tlsCertificate\":{\"certificateChain\":"
	"{\"inlineBytes\":\"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\"},\"privateKey\":"
	"{\"inlineString\":\"-----BEGIN PRIVATE KEY-----\\n\"}}}";

static void test_registry(void)
{
	const ProtobufCMessageDescriptor *d = km_pb_find(KM_STR("envoy.config.cluster.v3.Cluster"));
	CHECK(d && strcmp(d->name, "envoy.config.cluster.v3.Cluster") == 0);
	CHECK(km_pb_find(KM_STR("type.googleapis.com/envoy.config.cluster.v3.Cluster")) == d);
	CHECK(km_pb_find(KM_STR("type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest")));
	CHECK(km_pb_find(KM_STR("google.protobuf.Duration")));
	CHECK(km_pb_find(KM_STR("envoy.config.cluster.v3.Cluster.EdsClusterConfig")));
	CHECK(km_pb_find(KM_STR("xds.type.matcher.v3.Matcher")));
	CHECK(km_pb_find(KM_STR("envoy.service.health.v3.HealthCheckRequestOrEndpointHealthResponse")));
	CHECK(km_pb_find(KM_STR("envoy.config.cluster.v3.Clusterx")) == NULL);
	CHECK(km_pb_find(KM_STR("type.googleapis.com/")) == NULL);
	CHECK(km_pb_find(KM_STR("")) == NULL);
	for (size_t i = 1; i < km_pb_registry_count; i++)
		if (strcmp(km_pb_registry_table[i - 1].name, km_pb_registry_table[i].name) >= 0)
			CHECK(!"registry not sorted");
}

static void test_roundtrips(void)
{
	check_rt("envoy.config.cluster.v3.Cluster", CLUSTER);
	check_rt("type.googleapis.com/envoy.config.listener.v3.Listener", LISTENER);
	check_rt("envoy.config.endpoint.v3.ClusterLoadAssignment", CLA);
	check_rt("envoy.extensions.transport_sockets.tls.v3.Secret", SECRET);
	/* Well-known types at top level and in an Any. */
	check_rt("google.protobuf.Duration", "\"-1.000000001s\"");
	check_rt("google.protobuf.Duration", "\"-0.500s\"");
	check_rt("google.protobuf.Timestamp", "\"2024-02-29T23:59:59.120Z\"");
	check_rt("google.protobuf.Timestamp", "\"0001-01-01T00:00:00Z\"");
	check_rt("google.protobuf.Struct", "{\"a\":{\"b\":[1,\"x\",false,null,{}]},\"c\":[]}");
	check_rt("google.protobuf.UInt64Value", "\"18446744073709551615\"");
	check_rt("google.protobuf.Int64Value", "\"-9223372036854775808\"");
	check_rt("google.protobuf.BytesValue", "\"AAECAw==\"");
	check_rt("google.protobuf.FloatValue", "0.1");
	check_rt("google.protobuf.DoubleValue", "\"NaN\"");
	check_rt("envoy.config.core.v3.TypedExtensionConfig",
		 "{\"name\":\"w\",\"typedConfig\":{\"@type\":"
		 "\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"2s\"}}");
	check_rt("envoy.config.core.v3.TypedExtensionConfig",
		 "{\"name\":\"s\",\"typedConfig\":{\"@type\":"
		 "\"type.googleapis.com/google.protobuf.Struct\",\"value\":{\"k\":\"v\"}}}");
	/* Empty message and zero-valued oneof members survive. */
	check_rt("envoy.config.core.v3.ConfigSource", "{\"ads\":{}}");
	check_rt("envoy.config.core.v3.DataSource", "{\"inlineBytes\":\"\"}");
}

static void test_canonical_output(void)
{
	/* Original names, enum numbers, quoted numbers, nulls, zero defaults in;
	 * canonical names and forms out. */
	CHECK_STREQ(rt("envoy.config.cluster.v3.Cluster",
		       "{\"name\":\"c\",\"connect_timeout\":\"1.5s\",\"type\":3,\"lb_policy\":\"ROUND_ROBIN\","
		       "\"per_connection_buffer_limit_bytes\":\"32768\",\"dns_lookup_family\":null,"
		       "\"ignore_health_on_host_removal\":false,\"max_requests_per_connection\":0,"
		       "\"alt_stat_name\":\"\"}",
		       NULL),
		    "{\"name\":\"c\",\"type\":\"EDS\",\"connectTimeout\":\"1.500s\","
		    "\"perConnectionBufferLimitBytes\":32768,\"maxRequestsPerConnection\":0}");
	/* int64 fields render as strings (Envoy's JSON, protojson). */
	CHECK_STREQ(rt("envoy.config.route.v3.RetryPolicy.RetryBackOff",
		       "{\"baseInterval\":\"0.025s\",\"maxInterval\":\"0.250000s\"}", NULL),
		    "{\"baseInterval\":\"0.025s\",\"maxInterval\":\"0.250s\"}");
	CHECK_STREQ(rt("envoy.config.core.v3.HealthStatusSet", "{\"statuses\":[\"HEALTHY\",5,77]}", NULL),
		    "{\"statuses\":[\"HEALTHY\",\"DEGRADED\",77]}");
	CHECK_STREQ(rt("google.protobuf.Timestamp", "\"1970-01-02T01:00:00.5+01:00\"", NULL),
		    "\"1970-01-02T00:00:00.500Z\"");
	CHECK_STREQ(rt("envoy.type.v3.FractionalPercent", "{\"numerator\":\"3\",\"denominator\":\"HUNDRED\"}",
		       NULL),
		    "{\"numerator\":3}");
	CHECK_STREQ(rt("envoy.config.core.v3.RuntimeFractionalPercent",
		       "{\"defaultValue\":{\"numerator\":1e2}}", NULL),
		    "{\"defaultValue\":{\"numerator\":100}}");
	CHECK_STREQ(rt("envoy.service.discovery.v3.DiscoveryResponse",
		       "{\"versionInfo\":\"1\",\"resources\":[{\"@type\":"
		       "\"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\","
		       "\"clusterName\":\"a\"}],\"typeUrl\":\"t\",\"nonce\":\"n\"}",
		       NULL),
		    "{\"versionInfo\":\"1\",\"resources\":[{\"@type\":"
		    "\"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\","
		    "\"clusterName\":\"a\"}],\"typeUrl\":\"t\",\"nonce\":\"n\"}");
	/* A proto name longer than the name table's slots hold (52 bytes:
	 * compared where it lives), its JSON name, and near misses of both. */
	CHECK_STREQ(rt("envoy.config.core.v3.Http2ProtocolOptions",
		       "{\"max_inbound_window_update_frames_per_data_frame_sent\":7}", NULL),
		    "{\"maxInboundWindowUpdateFramesPerDataFrameSent\":7}");
	CHECK_STREQ(rt("envoy.config.core.v3.Http2ProtocolOptions",
		       "{\"maxInboundWindowUpdateFramesPerDataFrameSent\":8}", NULL),
		    "{\"maxInboundWindowUpdateFramesPerDataFrameSent\":8}");
	CHECK_STREQ(encode_err("envoy.config.core.v3.Http2ProtocolOptions",
			       "{\"max_inbound_window_update_frames_per_data_frame_senT\":7}"),
		    "unknown field \"max_inbound_window_update_frames_per_data_frame_senT\" in "
		    "envoy.config.core.v3.Http2ProtocolOptions");
	CHECK_STREQ(encode_err("envoy.config.core.v3.Http2ProtocolOptions",
			       "{\"maxInboundWindowUpdateFramesPerDataFrameSen\":7}"),
		    "unknown field \"maxInboundWindowUpdateFramesPerDataFrameSen\" in "
		    "envoy.config.core.v3.Http2ProtocolOptions");
	/* Map keys come out sorted. */
	CHECK_STREQ(rt("google.protobuf.Struct", "{\"b\":1,\"a\":2.25}", NULL), "{\"a\":2.25,\"b\":1}");
	/* int64 as string, uint32 as number. */
	CHECK_STREQ(rt("envoy.config.route.v3.RouteAction.MaxStreamDuration",
		       "{\"maxStreamDuration\":\"315576000000s\"}", NULL),
		    "{\"maxStreamDuration\":\"315576000000s\"}");
	CHECK_STREQ(rt("envoy.type.v3.Int64Range", "{\"start\":-5,\"end\":\"9007199254740993\"}", NULL),
		    "{\"start\":\"-5\",\"end\":\"9007199254740993\"}");
}

static void test_errors(void)
{
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"name\":\"c\",\"bogus\":1}"),
		    "unknown field \"bogus\" in envoy.config.cluster.v3.Cluster");
	CHECK_STREQ(encode_err("envoy.config.endpoint.v3.ClusterLoadAssignment",
			       "{\"endpoints\":[{\"lbEndpoints\":[{},{\"endpoint\":{\"address\":"
			       "{\"socketAddress\":{\"portValue\":\"x\"}}}}]}]}"),
		    "endpoints[0].lbEndpoints[1].endpoint.address.socketAddress.portValue: "
		    "invalid value for uint32: string");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"name\":5}"),
		    "name: invalid value for string: number");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"connectTimeout\":\"5\"}"),
		    "connectTimeout: invalid google.protobuf.Duration value \"5\"");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"connectTimeout\":\"1.0000000001s\"}"),
		    "connectTimeout: invalid google.protobuf.Duration value \"1.0000000001s\"");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"connectTimeout\":\"315576000001s\"}"),
		    "connectTimeout: invalid google.protobuf.Duration value \"315576000001s\"");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster",
			       "{\"transportSocket\":{\"typedConfig\":{\"@type\":\"type.googleapis.com/x.Y\"}}}"),
		    "transportSocket.typedConfig: unknown \"@type\": \"type.googleapis.com/x.Y\"");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"transportSocket\":{\"typedConfig\":{}}}"),
		    "transportSocket.typedConfig: google.protobuf.Any: missing \"@type\"");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster",
			       "{\"transportSocket\":{\"typedConfig\":{\"@type\":\"type.googleapis.com/"
			       "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\",\"sni\":1}}}"),
		    "transportSocket.typedConfig.sni: invalid value for string: number");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"type\":\"NOPE\"}"),
		    "type: invalid value for enum envoy.config.cluster.v3.Cluster.DiscoveryType: \"NOPE\"");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"type\":\"EDS\",\"clusterType\":{}}"),
		    "clusterType: oneof already set by another field");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"connect_timeout\":\"1s\",\"connectTimeout\":\"1s\"}"),
		    "connectTimeout: duplicate field");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "[]"),
		    "expected an object for envoy.config.cluster.v3.Cluster, got array");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"perConnectionBufferLimitBytes\":-1}"),
		    "perConnectionBufferLimitBytes: invalid value for uint32: number");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"perConnectionBufferLimitBytes\":4294967296}"),
		    "perConnectionBufferLimitBytes: invalid value for uint32: number");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"perConnectionBufferLimitBytes\":1.5}"),
		    "perConnectionBufferLimitBytes: invalid value for uint32: number");
	CHECK_STREQ(encode_err("envoy.config.core.v3.DataSource", "{\"inlineBytes\":\"***\"}"),
		    "inlineBytes: invalid value for bytes: expected base64 string");
	CHECK_STREQ(encode_err("envoy.config.core.v3.DataSource", "{\"inlineString\":\"a\\u0000b\"}"),
		    "inlineString: string contains a NUL byte");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster", "{\"dnsResolvers\":[null]}"),
		    "dnsResolvers[0]: null is not a valid list element");
	CHECK_STREQ(encode_err("google.protobuf.Timestamp", "\"2023-02-29T00:00:00Z\""),
		    "invalid google.protobuf.Timestamp value");
	CHECK_STREQ(encode_err("envoy.config.cluster.v3.Cluster",
			       "{\"metadata\":{\"filterMetadata\":{\"k\":[]}}}"),
		    "metadata.filterMetadata[\"k\"]: expected an object for google.protobuf.Struct, got array");
	struct km_buf err = KM_BUF_INIT, bytes = KM_BUF_INIT;
	CHECK(km_pb_encode_json(A, "no.such.Type", parse("{}"), &bytes, &err) == -KM_E_NOT_FOUND);
	CHECK(km_pb_encode_json(A, "envoy.config.cluster.v3.Cluster", parse("{\"x\":1}"), &bytes, &err) ==
	      -KM_E_INVALID);
	bytes.max = 4;
	CHECK(km_pb_encode_json(A, "envoy.config.cluster.v3.Cluster", parse("{\"name\":\"long-name\"}"),
				&bytes, &err) == -E2BIG);
	km_buf_fini(&bytes);
	km_buf_fini(&err);
}

static void test_depth(void)
{
	/* 110 nested objects are 220 Struct/Value levels: beyond KM_PB_MAX_DEPTH. */
	struct km_buf j = KM_BUF_INIT;
	for (int i = 0; i < 110; i++)
		km_buf_puts(&j, "{\"a\":");
	km_buf_puts(&j, "1");
	for (int i = 0; i < 110; i++)
		km_buf_putc(&j, '}');
	const char *e = encode_err("google.protobuf.Struct", j.data);
	CHECK(strstr(e, "message nesting exceeds 100 levels") != NULL);
	km_buf_fini(&j);
	/* A Value holding a scalar counts as a level on both paths: 34 nested
	 * objects put the innermost Struct at 100 and its scalar Value at 102
	 * (fuzz finding: the direct writer took what km_pb_from_json refused) */
	const ProtobufCMessageDescriptor *vd = km_pb_find(KM_STR("google.protobuf.Value"));
	for (int k = 33; k <= 34; k++) {
		struct km_buf t = KM_BUF_INIT, bytes = KM_BUF_INIT, err = KM_BUF_INIT;
		for (int i = 0; i < k; i++)
			km_buf_puts(&t, "{\"a\":");
		km_buf_puts(&t, "\"x\"");
		for (int i = 0; i < k; i++)
			km_buf_putc(&t, '}');
		struct km_json *v = NULL;
		CHECK(km_json_parse(A, t.data, t.len, &v, NULL) == 0);
		ProtobufCMessage *m = NULL;
		int slow = km_pb_from_json(A, vd, v, &m, &err);
		int fast = km_pb_write_json(A, vd, v, &bytes);
		CHECK(k == 33 ? slow == 0 && fast == 0 : slow != 0 && fast != 0);
		km_buf_fini(&t);
		km_buf_fini(&bytes);
		km_buf_fini(&err);
	}
	/* Bytes: ListValue{values: Value{list_value: ListValue{...}}} nested 40000 deep,
	 * built inside out: each level is tag, length, inner. */
	struct km_buf b = KM_BUF_INIT;
	for (int i = 0; i < 40000; i++) {
		struct km_buf n = KM_BUF_INIT;
		uint8_t hdr[12];
		size_t h = 0, len = b.len;
		hdr[h++] = i % 2 ? 0x0a : 0x32; /* ListValue.values=1 / Value.list_value=6 */
		do {
			hdr[h++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
			len >>= 7;
		} while (len);
		km_buf_append(&n, hdr, h);
		km_buf_append(&n, b.data, b.len);
		km_buf_fini(&b);
		b = n;
	}
	struct km_json *out = NULL;
	struct km_buf err = KM_BUF_INIT;
	int rc = km_pb_decode_to_json(A, "google.protobuf.ListValue", (const uint8_t *)b.data, b.len,
				      &out, &err);
	CHECK(rc == -KM_E_PARSE);
	CHECK(strstr(km_buf_cstr(&err), "nesting exceeds") != NULL);
	km_buf_fini(&err);
	km_buf_fini(&b);
	/* Garbage bytes are rejected, not crashed on. */
	rc = km_pb_decode_to_json(A, "envoy.config.cluster.v3.Cluster", (const uint8_t *)"\x0a\xff", 2,
				  &out, NULL);
	CHECK(rc == -KM_E_PARSE);
}

static void test_discovery_request(void)
{
	Google__Protobuf__Value token = GOOGLE__PROTOBUF__VALUE__INIT;
	token.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
	token.string_value = "abc";
	Google__Protobuf__Struct__FieldsEntry fe = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
	fe.key = "dataplane.token";
	fe.value = &token;
	Google__Protobuf__Struct__FieldsEntry *fes[] = {&fe};
	Google__Protobuf__Struct md = GOOGLE__PROTOBUF__STRUCT__INIT;
	md.n_fields = 1;
	md.fields = fes;
	Envoy__Config__Core__V3__Locality loc = ENVOY__CONFIG__CORE__V3__LOCALITY__INIT;
	loc.zone = "zone-1";
	Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
	node.id = "default.backend-1";
	node.cluster = "backend";
	node.metadata = &md;
	node.locality = &loc;
	node.user_agent_name = "envoy";
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	st.code = 3;
	st.message = "bad cluster";
	char *names[] = {"a", "b"};
	Envoy__Service__Discovery__V3__DiscoveryRequest req =
		ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	req.version_info = "7";
	req.node = &node;
	req.n_resource_names = 2;
	req.resource_names = names;
	req.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
	req.response_nonce = "42";
	req.error_detail = &st;
	struct km_buf bytes = KM_BUF_INIT, err = KM_BUF_INIT;
	CHECK(km_pb_wire_pack(&req.base, &bytes) == 0);
	struct km_json *j = NULL;
	const char *want =
		"{\"versionInfo\":\"7\",\"node\":{\"id\":\"default.backend-1\",\"cluster\":\"backend\","
		"\"metadata\":{\"dataplane.token\":\"abc\"},\"locality\":{\"zone\":\"zone-1\"},"
		"\"userAgentName\":\"envoy\"},\"resourceNames\":[\"a\",\"b\"],\"typeUrl\":"
		"\"type.googleapis.com/envoy.config.cluster.v3.Cluster\",\"responseNonce\":\"42\","
		"\"errorDetail\":{\"code\":3,\"message\":\"bad cluster\"}}";
	CHECK(km_pb_decode_to_json(A, "type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest",
				   (const uint8_t *)bytes.data, bytes.len, &j, &err) == 0);
	CHECK_STREQ(j ? compact(j) : km_buf_cstr(&err), want);
	/* And JSON -> bytes gives the same encoding protobuf-c produced. */
	struct km_buf again = KM_BUF_INIT;
	CHECK(km_pb_encode_json(A, "envoy.service.discovery.v3.DiscoveryRequest", parse(want), &again,
				&err) == 0);
	CHECK(again.len == bytes.len && memcmp(again.data, bytes.data, bytes.len) == 0);
	/* Decoded struct is usable directly too. */
	ProtobufCMessage *m = NULL;
	CHECK(km_pb_wire_decode(A, &envoy__service__discovery__v3__discovery_request__descriptor,
				(const uint8_t *)bytes.data, bytes.len, 0, &m, &err) == 0);
	Envoy__Service__Discovery__V3__DiscoveryRequest *r = (void *)m;
	CHECK(r && r->node && strcmp(r->node->id, "default.backend-1") == 0);
	km_buf_fini(&again);
	km_buf_fini(&bytes);
	km_buf_fini(&err);
}

/* Cross-check with the reference implementation: protoc decodes our bytes,
 * and we decode protoc's bytes. Skipped without protoc or the descriptor set. */
static const char *descriptor_set(void)
{
	static const char *paths[] = {"build/proto/set.pb", "build-san/proto/set.pb",
				      "build-fuzz/proto/set.pb"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], R_OK) == 0)
			return paths[i];
	return NULL;
}

static char *run(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	if (!p)
		return NULL;
	struct km_buf b = KM_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		km_buf_append(&b, chunk, n);
	int rc = pclose(p);
	char *s = km_arena_strdup(A, km_buf_cstr(&b));
	km_buf_fini(&b);
	return rc == 0 ? s : NULL;
}

static void test_protoc(void)
{
	const char *set = descriptor_set();
	if (!set || system("protoc --version >/dev/null 2>&1") != 0) {
		printf("skip: protoc cross-check (no protoc or descriptor set)\n");
		return;
	}
	char tmpl[] = "/tmp/pbtestXXXXXX";
	int fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	struct km_buf bytes = KM_BUF_INIT, err = KM_BUF_INIT;
	CHECK(km_pb_encode_json(A, "envoy.config.cluster.v3.Cluster",
				parse("{\"name\":\"c\",\"type\":\"EDS\",\"connectTimeout\":\"5.25s\","
				      "\"perConnectionBufferLimitBytes\":32768,"
				      "\"metadata\":{\"filterMetadata\":{\"m\":{\"k\":[true]}}}}"),
				&bytes, &err) == 0);
	CHECK(write(fd, bytes.data, bytes.len) == (ssize_t)bytes.len);
	close(fd);
	char *cmd = km_arena_printf(A, "protoc --descriptor_set_in=%s "
				       "--decode=envoy.config.cluster.v3.Cluster <%s", set, tmpl);
	char *text = run(cmd);
	CHECK_STREQ(text, "name: \"c\"\n"
			  "type: EDS\n"
			  "connect_timeout {\n  seconds: 5\n  nanos: 250000000\n}\n"
			  "per_connection_buffer_limit_bytes {\n  value: 32768\n}\n"
			  "metadata {\n  filter_metadata {\n    key: \"m\"\n    value {\n"
			  "      fields {\n        key: \"k\"\n        value {\n"
			  "          list_value {\n            values {\n              bool_value: true\n"
			  "            }\n          }\n        }\n      }\n    }\n  }\n}\n");
	/* protoc's encoding of a text-format ClusterLoadAssignment, decoded by us. */
	cmd = km_arena_printf(A, "printf '%%s' 'cluster_name: \"x\" endpoints { lb_endpoints { endpoint "
				 "{ address { socket_address { address: \"1.2.3.4\" port_value: 80 } } } "
				 "load_balancing_weight { value: 0 } } }' | protoc --descriptor_set_in=%s "
				 "--encode=envoy.config.endpoint.v3.ClusterLoadAssignment >%s",
			      set, tmpl);
	CHECK(system(cmd) == 0);
	FILE *f = fopen(tmpl, "rb");
	uint8_t buf[512];
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (f)
		fclose(f);
	struct km_json *j = NULL;
	CHECK(km_pb_decode_to_json(A, "envoy.config.endpoint.v3.ClusterLoadAssignment", buf, n, &j,
				   &err) == 0);
	CHECK_STREQ(j ? compact(j) : km_buf_cstr(&err),
		    "{\"clusterName\":\"x\",\"endpoints\":[{\"lbEndpoints\":[{\"endpoint\":{\"address\":"
		    "{\"socketAddress\":{\"address\":\"1.2.3.4\",\"portValue\":80}}},"
		    "\"loadBalancingWeight\":0}]}]}");
	unlink(tmpl);
	km_buf_fini(&bytes);
	km_buf_fini(&err);
}

int main(void)
{
	A = km_arena_new(0);
	test_registry();
	test_roundtrips();
	test_canonical_output();
	test_errors();
	test_depth();
	test_discovery_request();
	test_protoc();
	km_arena_free(A);
	return test_summary();
}
