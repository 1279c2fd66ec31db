/* SPDX-License-Identifier: Apache-2.0 */
/* Shapes: an encoded message with holes where given strings were, filled
 * with other strings without encoding the message again.
 *
 * km_pb_shape_record() encodes a JSON tree as km_pb_write_json() does
 * while noting where each of <vars> occurs inside a string (or bytes)
 * value and which length-delimited spans enclose it. The shape is those
 * bytes as a list of steps: copy, fill a hole, open or close a span whose
 * length the fill recomputes. km_pb_shape_fill() with other values writes
 * what encoding the same tree with those values in those places would
 * write. Whether the tree really depends on the values only there (no
 * hash of one, no choice made from one) is the caller's to know or check.
 * A shape is immutable once made and owned by whoever made it.
 *
 * Values that are not strings in the message are holes by tag instead:
 * a tree node whose km_json.tag the recording is given stands for a value
 * (a google.protobuf.Duration's text, the only such node taken), and the
 * hole is its encoded body, filled with the bytes km_pb_duration_body()
 * makes of another text. Nothing matches those values by content. */
#ifndef KM_PB_SHAPE_H
#define KM_PB_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"
#include "codec/json.h"

#include <protobuf-c/protobuf-c.h>

struct km_pb_shape;

/* The encoder's notes while recording (lib/pb/json.c). */
struct km_pb_rec_item {
	size_t pos;   /* a span: where its length prefix starts; a hole: its first byte */
	size_t end;   /* a span: one past its body */
	uint32_t len; /* a span: its prefix's length; a hole: the value's */
	uint32_t var; /* a hole: the index of the value in <vars> */
	bool hole;
};

struct km_pb_rec {
	const struct km_str *vars;
	size_t nvars;
	size_t nmatch;        /* vars[0..nmatch): found by content in strings */
	const uint16_t *tags; /* vars[nmatch + i]: the node tagged tags[i] */
	struct km_pb_rec_item *items; /* heap */
	size_t nitems, cap;
	size_t stack[64]; /* per open span: the first item recorded in it */
	size_t depth;
	bool overflow; /* spans nested deeper than the stack: no shape */
	bool bad;      /* a tagged node where no hole can stand for it: no shape */
};

/* Encodes message <d> from <j>, appended to <bytes> (as km_pb_write_json:
 * -1 on any error), and makes <*shape> (heap; km_pb_shape_free) of those
 * bytes with a hole wherever one of <vars> (non-empty, compared as bytes,
 * the longest first where two start at one place) occurs in a string
 * (none: a shape that fills to the same bytes). No shape (NULL) when the
 * nesting is too deep. */
int km_pb_shape_record(struct km_arena *a, const ProtobufCMessageDescriptor *d,
		       const struct km_json *j, const struct km_str *vars, size_t nvars,
		       struct km_buf *bytes, struct km_pb_shape **shape);

/* As km_pb_shape_record() with vars[0..nmatch) found by content and each
 * vars[nmatch + i] standing for the nodes tagged tags[i] (its encoded
 * body, km_pb_duration_body()): a shape only when every such node is a
 * Duration whose body is that var's bytes. */
int km_pb_shape_record_tagged(struct km_arena *a, const ProtobufCMessageDescriptor *d,
			      const struct km_json *j, const struct km_str *vars, size_t nmatch,
			      const uint16_t *tags, size_t nvars, struct km_buf *bytes,
			      struct km_pb_shape **shape);

/* The body of the google.protobuf.Duration protobuf JSON text <text>
 * encodes to, written into <out> (at most KM_PB_DURATION_BODY_MAX bytes);
 * its length, or -1 when <text> is no such duration. */
#define KM_PB_DURATION_BODY_MAX 24
int km_pb_duration_body(struct km_str text, uint8_t *out);

/* How many of a shape's vars are found by content (the others by tag). */
size_t km_pb_shape_nmatch(const struct km_pb_shape *s);

/* Appends the shape filled with <vars> to <out>; -1 (nothing appended)
 * unless as many as it was recorded with. */
int km_pb_shape_fill(const struct km_pb_shape *s, const struct km_str *vars, size_t nvars,
		     struct km_buf *out);

/* Holes in <s> (a test's view). */
size_t km_pb_shape_holes(const struct km_pb_shape *s);

void km_pb_shape_free(struct km_pb_shape *s);

/* km_pb_write_json() noting in <rec> (lib/pb/json.c). */
int km_pb_write_json_rec(struct km_arena *a, const ProtobufCMessageDescriptor *d,
			 const struct km_json *j, struct km_buf *bytes, struct km_pb_rec *rec);

/* For the encoder: the var a node tagged <tag> stands for, or -1. */
int km_pb_rec_tag_var(const struct km_pb_rec *r, uint16_t tag);

/* For the encoder: where the next hole in string <p>/<n> starts at or
 * after <from> (<at>), its length and var; false when there is none. */
bool km_pb_rec_next_hole(const struct km_pb_rec *r, const char *p, size_t n, size_t from,
			 size_t *at, size_t *len, uint32_t *var);
void km_pb_rec_hole(struct km_pb_rec *r, size_t pos, size_t len, uint32_t var);
void km_pb_rec_open(struct km_pb_rec *r);
/* The span opened last: its prefix at <pos>, <prefix> bytes long, its body
 * ending at <end>; what was recorded inside moved by <prefix> - 1 bytes
 * (the encoder reserved one byte for the prefix). */
void km_pb_rec_close(struct km_pb_rec *r, size_t pos, size_t prefix, size_t end);

#endif
