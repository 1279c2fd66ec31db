/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for lib/pb's JSON -> protobuf paths: the first byte picks
 * a message type, the rest is JSON text. The direct writer
 * (km_pb_write_json, what the xDS server encodes with) and the message path
 * (km_pb_from_json + pack, which explains errors) must agree: both reject,
 * or both accept and their bytes decode to the same message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pb/json.h"
#include "pb/registry.h"
#include "pb/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const types[] = {
    "envoy.config.cluster.v3.Cluster",
    "envoy.config.listener.v3.Listener",
    "envoy.config.endpoint.v3.ClusterLoadAssignment",
    "envoy.extensions.transport_sockets.tls.v3.Secret",
    "envoy.config.core.v3.TypedExtensionConfig",
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "envoy.service.discovery.v3.DiscoveryRequest",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	const ProtobufCMessageDescriptor *d = km_pb_find(km_str_c(type));
	if (!d)
		abort();
	struct km_arena *a = km_arena_new(0);
	struct km_json *j = NULL;
	if (km_json_parse(a, (const char *)data + 1, size - 1, &j, NULL) != 0)
		goto out;
	struct km_buf fast = KM_BUF_INIT, slow = KM_BUF_INIT, err = KM_BUF_INIT;
	ProtobufCMessage *m = NULL;
	int src = km_pb_from_json(a, d, j, &m, &err);
	if (src == 0 && km_pb_wire_pack(m, &slow) != 0)
		abort();
	if (src != 0 && err.len == 0)
		abort(); /* every rejection carries a reason */
	int frc = km_pb_write_json(a, d, j, &fast);
	if ((src == 0) != (frc == 0))
		abort(); /* one path accepts what the other rejects */
	if (src == 0) {
		struct km_json *x = NULL, *y = NULL;
		if (km_pb_decode_to_json(a, type, (const uint8_t *)fast.data, fast.len, &x, NULL) != 0 ||
		    km_pb_decode_to_json(a, type, (const uint8_t *)slow.data, slow.len, &y, NULL) != 0)
			abort(); /* bytes we wrote do not decode */
		if (!km_json_equal(x, y))
			abort(); /* the two paths mean different messages */
	}
	km_buf_fini(&fast);
	km_buf_fini(&slow);
	km_buf_fini(&err);
out:
	km_arena_free(a);
	return 0;
}
