/* SPDX-License-Identifier: Apache-2.0 */
/* Arena allocator for protobuf-c, depth-checked decoding and packing. The
 * depth check walks the wire format once with the descriptors, descending
 * only into fields known to hold messages, before protobuf-c unpacks. */
#include <stdlib.h>

#include "base/err.h"
#include "pb/wire.h"

static void *arena_alloc(void *data, size_t size)
{
	return km_arena_alloc(data, size ? size : 1);
}

static void arena_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

void km_pb_wire_allocator(ProtobufCAllocator *al, struct km_arena *a)
{
	al->alloc = arena_alloc;
	al->free = arena_free;
	al->allocator_data = a;
}

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (int shift = 0; shift < 70; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

/* 0 when every nested message of <d> in the bytes stays within the depth
 * limit; malformed framing is left for protobuf-c to reject. */
static int check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
		       int depth)
{
	if (depth > KM_PB_MAX_DEPTH)
		return -1;
	while (p < end) {
		uint64_t tag, n;
		if (read_varint(&p, end, &tag) != 0)
			return 0;
		switch (tag & 7) {
		case 0:
			if (read_varint(&p, end, &n) != 0)
				return 0;
			break;
		case 1:
			if (end - p < 8)
				return 0;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return 0;
			p += 4;
			break;
		case 2: {
			if (read_varint(&p, end, &n) != 0 || n > (uint64_t)(end - p))
				return 0;
			uint64_t id = tag >> 3;
			const ProtobufCFieldDescriptor *f =
				id <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)id)
						 : NULL;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    check_depth(f->descriptor, p, p + n, depth + 1) != 0)
				return -1;
			p += n;
			break;
		}
		default:
			return 0; /* groups and junk: protobuf-c rejects them */
		}
	}
	return 0;
}

int km_pb_wire_decode(struct km_arena *a, const ProtobufCMessageDescriptor *d, const uint8_t *data,
		      size_t len, int depth, ProtobufCMessage **out, struct km_buf *err)
{
	*out = NULL;
	if (!data)
		data = (const uint8_t *)"";
	if (check_depth(d, data, data + len, depth) != 0) {
		if (err)
			km_buf_printf(err, "%s: message nesting exceeds %d levels", d->name,
				      KM_PB_MAX_DEPTH);
		return -KM_E_PARSE;
	}
	ProtobufCAllocator al;
	km_pb_wire_allocator(&al, a);
	ProtobufCMessage *m = protobuf_c_message_unpack(d, &al, len, data);
	if (!m) {
		if (err)
			km_buf_printf(err, "%s: invalid protobuf encoding", d->name);
		return -KM_E_PARSE;
	}
	*out = m;
	return 0;
}

int km_pb_wire_pack(const ProtobufCMessage *m, struct km_buf *out)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *p = (uint8_t *)km_buf_extend(out, n);
	if (!p)
		return -E2BIG;
	protobuf_c_message_pack(m, p);
	return 0;
}
