/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for the dp-server's ADS message path: the input is a gRPC
 * request body (5-byte length-prefixed frames, split the way the dp-server
 * splits them) delivered to cp/xds/server.c's Delta (first byte even) or
 * state-of-the-world (odd) method over a fresh memory store holding a mesh,
 * two Dataplanes and a MeshService. The transport calls are stubbed here, so
 * the TLS/HTTP/2 layer is not linked; what runs is decoding, handshake,
 * registration, subscriptions, ACK/NACK, generation and encoding. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cp/events.h"
#include "cp/runtime.h"
#include "cp/xds/server.h"
#include "resource/resource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- transport stubs (replace cp/dpserver/server.c) ---- */

struct cp_grpc_stream {
	bool finished;
	int code;
	size_t sent, bytes;
};

int cp_grpc_send(struct cp_grpc_stream *s, const void *msg, size_t len)
{
	if (s->finished)
		return -EPIPE;
	if (len && !msg)
		abort();
	s->sent++;
	s->bytes += len;
	return 0;
}

/* the message cp_grpc_send_begin() handed out: exactly its size, so that
 * AddressSanitizer sees an encoder writing past it */
static uint8_t *pending;
static size_t pending_len;

uint8_t *cp_grpc_send_begin(struct cp_grpc_stream *s, size_t len)
{
	if (s->finished)
		return NULL;
	free(pending);
	pending = malloc(len ? len : 1);
	if (!pending)
		abort();
	pending_len = len;
	return pending;
}

void cp_grpc_send_done(struct cp_grpc_stream *s)
{
	if (!pending)
		abort(); /* done without begin */
	s->sent++;
	s->bytes += pending_len;
	free(pending);
	pending = NULL;
}

void cp_grpc_finish(struct cp_grpc_stream *s, int code, const char *msg)
{
	if (s->finished)
		return;
	if (code != 0 && (!msg || !*msg))
		abort(); /* every error carries a message */
	s->finished = true;
	s->code = code;
}

void cp_grpc_hold(struct cp_grpc_stream *s)
{
	(void)s;
}

void cp_grpc_release(struct cp_grpc_stream *s)
{
	(void)s;
}

const char *cp_grpc_metadata(const struct cp_grpc_stream *s, const char *key)
{
	(void)s;
	(void)key;
	return NULL;
}

const char *cp_grpc_peer(const struct cp_grpc_stream *s)
{
	(void)s;
	return "127.0.0.1:40000";
}

/* ---- fixture ---- */

static const char *const seed_docs[][2] = {
    {"Mesh", "{\"type\":\"Mesh\",\"name\":\"default\"}"},
    {"Dataplane",
     "{\"type\":\"Dataplane\",\"mesh\":\"default\",\"name\":\"dp-1\",\"labels\":{\"kuma.io/workload\":"
     "\"web\"},\"networking\":{\"address\":\"127.0.0.1\",\"inbound\":[{\"port\":8080,\"servicePort\":"
     "18080,\"protocol\":\"http\"}],\"outbound\":[{\"port\":10001,\"backendRef\":{\"kind\":"
     "\"MeshService\",\"name\":\"backend\",\"port\":80}}]}}"},
    {"Dataplane",
     "{\"type\":\"Dataplane\",\"mesh\":\"default\",\"name\":\"be-1\",\"labels\":{\"kuma.io/workload\":"
     "\"backend\"},\"networking\":{\"address\":\"127.0.0.2\",\"inbound\":[{\"port\":80,\"servicePort\":"
     "8080,\"protocol\":\"grpc\"}]}}"},
    {"MeshService",
     "{\"type\":\"MeshService\",\"mesh\":\"default\",\"name\":\"backend\",\"spec\":{\"selector\":{"
     "\"dataplaneTags\":{\"kuma.io/workload\":\"backend\"}},\"ports\":[{\"port\":80,\"targetPort\":80,"
     "\"appProtocol\":\"grpc\"}]}}"},
};

static struct km_loop *loop;
static struct cp_config cfg;

static void seed(struct cp_store *store)
{
	struct km_arena *a = km_arena_new(0);
	for (size_t i = 0; i < sizeof(seed_docs) / sizeof(seed_docs[0]); i++) {
		const struct km_rtype *t = km_rtype_by_name(km_str_c(seed_docs[i][0]));
		struct km_json *doc;
		struct km_resource_doc d;
		struct km_resource r;
		if (!t || km_json_parse(a, seed_docs[i][1], strlen(seed_docs[i][1]), &doc, NULL) ||
		    km_resource_doc_from_json(a, doc, t, &d, NULL))
			abort(); /* the fixture itself is wrong */
		km_resource_from_doc(a, &d, &r);
		if (cp_store_create(store, &r))
			abort();
	}
	km_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!loop) {
		km_log_set_level("error");
		loop = km_loop_new();
		cp_config_init_defaults(&cfg);
		cfg.dp_server.authn.dp_proxy.type = "none"; /* tokens have their own fuzzer */
	}
	struct cp_runtime rt = {0};
	struct cp_events bus = {0};
	rt.loop = loop;
	rt.cfg = &cfg;
	rt.store = cp_store_memory_new();
	rt.zone = "default";
	rt.instance_id = "fuzz-cp";
	rt.hostname = "fuzz";
	rt.version = KM_VERSION;
	rt.side_effects = false;
	cp_events_attach(&bus, rt.store);
	seed(rt.store);
	struct cp_xds_server *xs = cp_xds_server_new(&rt, &bus);
	size_t nm;
	const struct cp_grpc_method *methods = cp_xds_server_methods(xs, &nm);
	if (nm < 2)
		abort();
	const struct cp_grpc_method *m = &methods[data[0] & 1];
	struct cp_grpc_stream gs = {0};
	void *ctx = m->open(m->svc, &gs);
	/* frame splitter: flag byte, 32-bit big-endian length, message */
	size_t off = 1;
	while (ctx && !gs.finished && size - off >= 5) {
		const uint8_t *p = data + off;
		uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
		if (p[0] != 0) {
			cp_grpc_finish(&gs, 12, "compressed messages are not supported");
			break;
		}
		if (size - off - 5 < len)
			break; /* incomplete message: the peer would still be sending */
		m->message(ctx, p + 5, len);
		off += 5 + len;
	}
	if (ctx)
		m->close(ctx);
	cp_xds_server_free(xs);
	cp_store_free(rt.store);
	return 0;
}
