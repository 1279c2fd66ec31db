/* SPDX-License-Identifier: Apache-2.0 */
/* Envoy's canonical proto3 JSON <-> protobuf-c messages, driven by the
 * generated descriptors (protoc-c has no JSON mapping). Follows protojson:
 * lowerCamel names on output (original names accepted on input), zero proto3
 * scalars omitted, int64 as strings, enums by name, bytes as base64, and the
 * well-known types Any ("@type"), Duration, Timestamp, wrappers, Struct,
 * Value, ListValue, Empty and FieldMask in their special forms. Every input
 * is untrusted: unknown fields and bad values are errors with a field path,
 * and message nesting is bounded (KM_PB_MAX_DEPTH). Everything produced
 * (messages, JSON trees, strings) lives in the caller's arena. */
#ifndef KM_PB_JSON_H
#define KM_PB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "base/arena.h"
#include "base/buf.h"
#include "codec/json.h"

/* Builds message <d> from <j> into <a>. On success *<out> is an initialised
 * message ready for protobuf_c_message_pack(); all its memory (strings,
 * arrays, sub-messages) belongs to <a>: release it with km_arena_free, never
 * with protobuf_c_message_free. On error returns -KM_E_INVALID and appends
 * "<path>: <reason>" to <err> (when given), e.g.
 * `loadAssignment.endpoints[0].lbEndpoints[0]: unknown field "foo"`. */
int km_pb_from_json(struct km_arena *a, const ProtobufCMessageDescriptor *d, const struct km_json *j,
		    ProtobufCMessage **out, struct km_buf *err);

/* Convenience: JSON -> packed bytes appended to <bytes>. <type> is a full
 * message name or a type URL. -KM_E_NOT_FOUND for an unknown type,
 * -KM_E_INVALID for bad JSON (details in <err>), -E2BIG past <bytes>' cap.
 * Temporaries go to <a>. */
int km_pb_encode_json(struct km_arena *a, const char *type, const struct km_json *j,
		      struct km_buf *bytes, struct km_buf *err);

/* JSON -> bytes appended to <bytes> without building protobuf-c messages:
 * what km_pb_encode_json() tries first. The same message as from_json +
 * pack (fields in JSON order; proto3 zero scalars left out). -1 without a
 * reason on any error, <bytes> as it was. */
int km_pb_write_json(struct km_arena *a, const ProtobufCMessageDescriptor *d, const struct km_json *j,
		     struct km_buf *bytes);

/* Canonical JSON of <m>, owned by <a>. NULL when an Any inside cannot be
 * rendered (type not compiled in, or an undecodable payload); use
 * km_pb_message_to_json for the reason. */
struct km_json *km_pb_to_json(struct km_arena *a, const ProtobufCMessage *m);

/* Same as km_pb_to_json with an error report: 0, or -KM_E_PARSE/-KM_E_NOT_FOUND
 * with "<path>: <reason>" appended to <err>. */
int km_pb_message_to_json(struct km_arena *a, const ProtobufCMessage *m, struct km_json **out,
			  struct km_buf *err);

/* Decodes <len> untrusted bytes of message <type> (full name or type URL; a
 * DiscoveryRequest, an Any payload) and renders them as canonical JSON into
 * *<out>, owned by <a>. 0, -KM_E_NOT_FOUND (unknown type) or -KM_E_PARSE. */
int km_pb_decode_to_json(struct km_arena *a, const char *type, const uint8_t *bytes, size_t len,
			 struct km_json **out, struct km_buf *err);

/* Frees the calling thread's table of descriptor name entries (a thread
 * other than the main one calls it before it exits; the entries stay,
 * shared by every thread for the life of the process). */
void km_pb_json_thread_fini(void);

#endif
