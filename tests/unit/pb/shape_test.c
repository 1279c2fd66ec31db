/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for lib/pb/shape.c: a message recorded with some strings and filled
 * with others gives the bytes of encoding it with the others in their
 * places: whole strings and parts of strings, several holes in one string,
 * holes inside Any, Struct and map values, in nested messages whose length
 * prefixes grow or shrink past one byte; a shape without a hole; Durations
 * that are holes by tag, empty ones among them, and tags where no hole can
 * stand for them. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "../test_json.h"
#include "base/str.h"
#include "pb/json.h"
#include "pb/registry.h"
#include "pb/shape.h"

static struct km_arena *A;

/* <tmpl> with each "$0".."$9" replaced by vars[n] (JSON-escaped not needed:
 * the test values are plain). */
static const char *subst(const char *tmpl, const struct km_str *vars)
{
	struct km_buf b = KM_BUF_INIT;
	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '$' && p[1] >= '0' && p[1] <= '9') {
			km_buf_append(&b, vars[p[1] - '0'].ptr, vars[p[1] - '0'].len);
			p++;
		} else {
			km_buf_append(&b, p, 1);
		}
	}
	char *s = km_arena_strdup(A, km_buf_cstr(&b));
	km_buf_fini(&b);
	return s;
}

static struct km_json *parse(const char *text)
{
	return test_json(A, text);
}

static char *repeat(char c, size_t n)
{
	char *s = km_arena_alloc(A, n + 1);
	memset(s, c, n);
	s[n] = 0;
	return s;
}

/* Records <tmpl> of <type> with <a>, fills with <b> and compares with the
 * plain encoding of <tmpl> with <b>; returns the shape's holes. */
static size_t round_trip(const char *type, const char *tmpl, const struct km_str *va,
			 const struct km_str *vb, size_t nvars)
{
	const ProtobufCMessageDescriptor *d = km_pb_find(km_str_c(type));
	CHECK(d != NULL);
	if (!d)
		return 0;
	struct km_buf rec = KM_BUF_INIT, want_a = KM_BUF_INIT, want_b = KM_BUF_INIT,
		      got = KM_BUF_INIT;
	struct km_pb_shape *s = NULL;
	CHECK(km_pb_shape_record(A, d, parse(subst(tmpl, va)), va, nvars, &rec, &s) == 0);
	/* recording writes what the plain encoder writes */
	CHECK(km_pb_write_json(A, d, parse(subst(tmpl, va)), &want_a) == 0);
	CHECK(rec.len == want_a.len && (!rec.len || memcmp(rec.data, want_a.data, rec.len) == 0));
	CHECK(km_pb_write_json(A, d, parse(subst(tmpl, vb)), &want_b) == 0);
	size_t holes = km_pb_shape_holes(s);
	if (s) {
		CHECK(km_pb_shape_fill(s, vb, nvars, &got) == 0);
		bool same = got.len == want_b.len && (!got.len || memcmp(got.data, want_b.data, got.len) == 0);
		if (!same)
			fprintf(stderr, "fill differs: %s (%zu bytes, want %zu)\n", tmpl, got.len,
				want_b.len);
		CHECK(same);
		/* and back with the first values */
		km_buf_reset(&got);
		CHECK(km_pb_shape_fill(s, va, nvars, &got) == 0);
		CHECK(got.len == want_a.len && (!got.len || memcmp(got.data, want_a.data, got.len) == 0));
		CHECK(km_pb_shape_fill(s, va, nvars + 1, &got) == -1);
	}
	km_pb_shape_free(s);
	km_buf_fini(&rec);
	km_buf_fini(&want_a);
	km_buf_fini(&want_b);
	km_buf_fini(&got);
	return holes;
}

#define CLUSTER  "envoy.config.cluster.v3.Cluster"
#define LISTENER "envoy.config.listener.v3.Listener"

static void test_cluster(void)
{
	struct km_str a[] = {KM_STR("kri_msvc_default___svc-1_80"),
			     KM_STR("sni.msvc.default.svc-1.80"), KM_STR("spiffe://default/svc-1")};
	struct km_str b[] = {KM_STR("kri_msvc_default___a-much-longer-service-name-2_8080"),
			     KM_STR("sni.msvc.default.a-much-longer-service-name-2.8080"),
			     KM_STR("spiffe://default/a-much-longer-service-name-2")};
	const char *tmpl =
		"{\"name\":\"$0\",\"type\":\"EDS\",\"connectTimeout\":\"5s\",\"edsClusterConfig\":{\"edsConfig\":"
		"{\"ads\":{},\"resourceApiVersion\":\"V3\"}},\"transportSocket\":{\"name\":\"envoy.transport_sockets.tls\","
		"\"typedConfig\":{\"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\","
		"\"commonTlsContext\":{\"alpnProtocols\":[\"kuma\"],\"combinedValidationContext\":{"
		"\"defaultValidationContext\":{\"matchTypedSubjectAltNames\":[{\"matcher\":{\"exact\":\"$2\"},"
		"\"sanType\":\"URI\"}]},\"validationContextSdsSecretConfig\":{\"name\":\"system_trust_bundle\"}}},"
		"\"sni\":\"$1\"}},\"metadata\":{\"filterMetadata\":{\"io.kuma.tags\":{\"$0\":\"outbound:$0:x\"}}}}";
	/* name, SAN, SNI, the Struct key and one in its value */
	CHECK(round_trip(CLUSTER, tmpl, a, b, 3) == 5);
	/* shorter values, and the reverse */
	CHECK(round_trip(CLUSTER, tmpl, b, a, 3) == 5);
}

static void test_lengths(void)
{
	/* a body just under 128 bytes that a longer value takes past it, in
	 * a listener's nested filter chain (Any in a repeated message) */
	char *v1 = repeat('x', 10), *v2 = repeat('y', 300), *v3 = repeat('z', 20000);
	struct km_str a[] = {km_str_c(v1)};
	struct km_str b[] = {km_str_c(v2)};
	struct km_str c[] = {km_str_c(v3)};
	const char *tmpl =
		"{\"name\":\"$0\",\"filterChains\":[{\"filters\":[{\"name\":\"envoy.filters.network.tcp_proxy\","
		"\"typedConfig\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\","
		"\"statPrefix\":\"$0\",\"cluster\":\"$0\"}}]}],\"trafficDirection\":\"OUTBOUND\"}";
	CHECK(round_trip(LISTENER, tmpl, a, b, 1) == 3);
	CHECK(round_trip(LISTENER, tmpl, b, a, 1) == 3);
	CHECK(round_trip(LISTENER, tmpl, a, c, 1) == 3);
	CHECK(round_trip(LISTENER, tmpl, c, a, 1) == 3);
}

static void test_parts(void)
{
	/* two values in one string, one inside the other's (the longest
	 * wins where both start), a value twice in a row */
	struct km_str a[] = {KM_STR("svc-1"), KM_STR("svc-1_80")};
	struct km_str b[] = {KM_STR("other"), KM_STR("another_8080")};
	CHECK(round_trip(CLUSTER, "{\"name\":\"$1:$0$0-$1\",\"altStatName\":\"x$0\"}", a, b, 2) ==
	      5);
	/* none there: a shape of constant bytes */
	CHECK(round_trip(CLUSTER, "{\"name\":\"constant\"}", a, b, 2) == 0);
	/* an empty value is never a hole */
	struct km_str e[] = {KM_STR("")};
	struct km_str f[] = {KM_STR("")};
	CHECK(round_trip(CLUSTER, "{\"name\":\"n\"}", e, f, 1) == 0);
}

/* An empty message records into a buffer that never got storage (the
 * grpc fuzzer found the null pointer arithmetic) and fills to nothing. */
static void test_empty(void)
{
	struct km_str v[] = {KM_STR("kri_msvc_default___svc-1_80")};
	struct km_buf rec = KM_BUF_INIT, got = KM_BUF_INIT;
	struct km_pb_shape *s = NULL;
	CHECK(km_pb_shape_record(A, km_pb_find(KM_STR(CLUSTER)), parse("{}"), v, 1, &rec, &s) == 0);
	CHECK(s && rec.len == 0 && km_pb_shape_holes(s) == 0);
	if (s)
		CHECK(km_pb_shape_fill(s, v, 1, &got) == 0 && got.len == 0);
	km_pb_shape_free(s);
	km_buf_fini(&rec);
	km_buf_fini(&got);
	/* and what round_trip checks of the rest */
	round_trip(CLUSTER, "{}", v, v, 1);
}

/* Sets <tag> on the node at <path> (object keys, NULL-terminated). */
static void tag_at(struct km_json *j, uint16_t tag, const char *const *path)
{
	for (; j && *path; path++)
		j = km_json_get(j, *path);
	CHECK(j != NULL);
	if (j)
		j->tag = tag;
}

#define HTTP_OPTS "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

static const char *const connect_path[] = {"connectTimeout", NULL};
static const char *const idle_path[] = {"typedExtensionProtocolOptions", HTTP_OPTS, "commonHttpProtocolOptions",
					"idleTimeout", NULL};
static const char *const stream_path[] = {"typedExtensionProtocolOptions", HTTP_OPTS,
					  "commonHttpProtocolOptions", "maxStreamDuration", NULL};

/* The cluster of <t> (name, then two durations) tagged: connectTimeout and
 * the idle timeout 1, the stream duration (the last field of three nested
 * messages and an Any) 2. */
static struct km_json *tagged_cluster(const char *const t[3])
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "{\"name\":\"%s\",\"connectTimeout\":\"%s\",\"typedExtensionProtocolOptions\":{\"" HTTP_OPTS
		 "\":{\"@type\":\"type.googleapis.com/" HTTP_OPTS "\",\"commonHttpProtocolOptions\":{"
		 "\"idleTimeout\":\"%s\",\"maxStreamDuration\":\"%s\"}}},\"altStatName\":\"%s\"}",
		 t[0], t[1], t[1], t[2], t[0]);
	struct km_json *j = parse(text);
	tag_at(j, 1, connect_path);
	tag_at(j, 1, idle_path);
	tag_at(j, 2, stream_path);
	return j;
}

/* The shape vars of <t>: the name, then each duration's encoded body. */
static void tagged_vars(const char *const t[3], struct km_str v[3])
{
	v[0] = km_str_c(t[0]);
	for (int i = 1; i < 3; i++) {
		uint8_t *body = km_arena_alloc(A, KM_PB_DURATION_BODY_MAX);
		int n = km_pb_duration_body(km_str_c(t[i]), body);
		CHECK(n >= 0);
		v[i] = (struct km_str){(const char *)body, n > 0 ? (size_t)n : 0};
	}
}

static void test_tagged(void)
{
	const ProtobufCMessageDescriptor *d = km_pb_find(KM_STR(CLUSTER));
	static const uint16_t tags[] = {1, 2};
	/* recorded with an empty Duration where four spans end (0s), filled
	 * with values whose bodies are longer, fractional, negative, empty */
	static const char *const sets[][3] = {
	    {"kri_msvc_default___svc-1_80", "5s", "0s"},
	    {"kri_msvc_default___a-much-longer-name-2_8080", "1.500s", "3600s"},
	    {"kri_x", "0s", "-2.000000001s"},
	    {"kri_msvc_default___svc-3_80", "315576000000s", "0.000000001s"},
	};
	size_t nsets = sizeof(sets) / sizeof(sets[0]);
	for (size_t r = 0; r < nsets; r++) {
		struct km_str vr[3];
		tagged_vars(sets[r], vr);
		struct km_buf rec = KM_BUF_INIT, want = KM_BUF_INIT, got = KM_BUF_INIT;
		struct km_pb_shape *s = NULL;
		CHECK(km_pb_shape_record_tagged(A, d, tagged_cluster(sets[r]), vr, 1, tags, 3, &rec, &s) == 0);
		CHECK(km_pb_write_json(A, d, tagged_cluster(sets[r]), &want) == 0);
		CHECK(rec.len == want.len && memcmp(rec.data, want.data, rec.len) == 0);
		CHECK(s != NULL && km_pb_shape_nmatch(s) == 1);
		/* two names, three durations */
		CHECK(km_pb_shape_holes(s) == 5);
		for (size_t f = 0; s && f < nsets; f++) {
			struct km_str vf[3];
			tagged_vars(sets[f], vf);
			km_buf_reset(&want);
			km_buf_reset(&got);
			CHECK(km_pb_write_json(A, d, tagged_cluster(sets[f]), &want) == 0);
			CHECK(km_pb_shape_fill(s, vf, 3, &got) == 0);
			bool same = got.len == want.len && memcmp(got.data, want.data, got.len) == 0;
			if (!same)
				fprintf(stderr, "tagged fill differs: recorded with set %zu, filled with %zu\n", r, f);
			CHECK(same);
		}
		km_pb_shape_free(s);
		km_buf_fini(&rec);
		km_buf_fini(&want);
		km_buf_fini(&got);
	}
	struct km_str v[3];
	tagged_vars(sets[0], v);
	struct km_buf b = KM_BUF_INIT;
	struct km_pb_shape *s = NULL;
	/* a tagged node in a string: no hole can stand for it, no shape */
	struct km_json *j = tagged_cluster(sets[0]);
	km_json_get(j, "altStatName")->tag = 2;
	CHECK(km_pb_shape_record_tagged(A, d, j, v, 1, tags, 3, &b, &s) == 0 && s == NULL);
	/* a var that is not the tagged node's body: no shape */
	struct km_str wrong[3] = {v[0], v[2], v[2]};
	km_buf_reset(&b);
	CHECK(km_pb_shape_record_tagged(A, d, tagged_cluster(sets[0]), wrong, 1, tags, 3, &b, &s) == 0 && s == NULL);
	/* a tag the recording is not given is a node like any other; a
	 * Duration's text equal to a tagged var's is no hole by content */
	km_buf_reset(&b);
	static const uint16_t other[] = {7, 2};
	CHECK(km_pb_shape_record_tagged(A, d, tagged_cluster(sets[0]), v, 1, other, 3, &b, &s) == 0 && s != NULL);
	CHECK(km_pb_shape_holes(s) == 3);
	km_pb_shape_free(s);
	/* not a duration */
	uint8_t body[KM_PB_DURATION_BODY_MAX];
	CHECK(km_pb_duration_body(KM_STR("5m"), body) == -1);
	CHECK(km_pb_duration_body(KM_STR("-315576000000.999999999s"), body) == 22);
	km_buf_fini(&b);
}

int main(void)
{
	A = km_arena_new(0);
	test_empty();
	test_cluster();
	test_lengths();
	test_parts();
	test_tagged();
	km_arena_free(A);
	km_pb_json_thread_fini();
	return test_summary();
}
