/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for lib/pb: arbitrary bytes decoded as an xDS
 * DiscoveryRequest (what a peer sends; error_detail.details are Anys of any
 * registered type) -> canonical JSON -> message -> bytes -> JSON again. What
 * we render must read back, and the second rendering must equal the first;
 * the direct writer (km_pb_write_json) must take it too and mean the same. */
#include <stdint.h>
#include <stdlib.h>

#include "pb/json.h"
#include "pb/registry.h"
#include "pb/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TYPE "type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_arena *a = km_arena_new(0);
	struct km_buf err = KM_BUF_INIT, bytes = KM_BUF_INIT;
	struct km_json *j = NULL, *j2 = NULL;
	if (km_pb_decode_to_json(a, TYPE, data, size, &j, &err) != 0) {
		if (err.len == 0)
			abort(); /* every failure carries a reason */
		goto out;
	}
	ProtobufCMessage *m = NULL;
	km_buf_reset(&err);
	if (km_pb_from_json(a, km_pb_find(KM_STR(TYPE)), j, &m, &err) != 0)
		abort(); /* our own output was rejected */
	if (km_pb_wire_pack(m, &bytes) != 0)
		abort();
	if (km_pb_decode_to_json(a, TYPE, (const uint8_t *)bytes.data, bytes.len, &j2, &err) != 0)
		abort(); /* our own encoding does not decode */
	if (!km_json_equal(j, j2))
		abort(); /* the round trip changed the message */
	km_buf_reset(&bytes);
	if (km_pb_write_json(a, km_pb_find(KM_STR(TYPE)), j, &bytes) != 0)
		abort(); /* the direct writer rejects what the message path takes */
	j2 = NULL;
	if (km_pb_decode_to_json(a, TYPE, (const uint8_t *)bytes.data, bytes.len, &j2, &err) != 0 ||
	    !km_json_equal(j, j2))
		abort(); /* the direct writer's bytes mean something else */
	/* The compact text re-parses (JSON writer over decoded strings). */
	struct km_buf text = KM_BUF_INIT;
	km_json_write(&text, j, 0, 0);
	km_buf_fini(&text);
out:
	km_buf_fini(&bytes);
	km_buf_fini(&err);
	km_arena_free(a);
	return 0;
}
