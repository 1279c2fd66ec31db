/* SPDX-License-Identifier: Apache-2.0 */
/* Binary protobuf glue over protobuf-c: an allocator backed by a km_arena (so
 * a decoded message dies with its arena and is never freed on its own), a
 * bounded decoder for untrusted bytes, and packing into a km_buf. */
#ifndef KM_PB_WIRE_H
#define KM_PB_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "base/arena.h"
#include "base/buf.h"

/* <v> as a base-128 varint in <out>; returns its length (1 to 10). Inline:
 * the protobuf writer calls it for every tag and length. */
static inline size_t km_pb_wire_varint(uint64_t v, uint8_t out[10])
{
	size_t n = 0;
	for (; v >= 0x80; v >>= 7)
		out[n++] = (uint8_t)(v | 0x80);
	out[n++] = (uint8_t)v;
	return n;
}

/* Deepest message nesting accepted from bytes or JSON (protobuf C++ uses 100). */
#define KM_PB_MAX_DEPTH 100

/* Fills <al> so that protobuf-c allocates from <a>; its free is a no-op.
 * <al> must not outlive <a>. */
void km_pb_wire_allocator(ProtobufCAllocator *al, struct km_arena *a);

/* Decodes <len> untrusted bytes as message <d> into <a>. The nesting depth is
 * checked before protobuf-c (which recurses without bound) sees the bytes.
 * Returns 0 and *<out> (owned by <a>, never protobuf_c_message_free it), or
 * -KM_E_PARSE with a message in <err> (when given); <depth> is the nesting
 * already used by the caller (0 at top level). */
int km_pb_wire_decode(struct km_arena *a, const ProtobufCMessageDescriptor *d, const uint8_t *data,
		      size_t len, int depth, ProtobufCMessage **out, struct km_buf *err);

/* Appends the packed form of <m> to <out>: 0, or -E2BIG when <out>'s cap is
 * reached (<out> is then unchanged). */
int km_pb_wire_pack(const ProtobufCMessage *m, struct km_buf *out);

#endif
