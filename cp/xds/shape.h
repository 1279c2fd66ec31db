/* SPDX-License-Identifier: Apache-2.0 */
/* Outbound resources made from a shape instead of generated and encoded.
 *
 * A destination's cluster and listener body differ from another's with the
 * same protocol, identity shape and policy confs only in strings naming it
 * (cp_xds_outbound_vars()). The first such resource a mesh makes is encoded
 * while recording where those strings went (km_pb_shape_record()); the
 * next one is made both ways and compared, and only a shape that made the
 * same bytes for other strings is used from then on (km_pb_shape_fill()).
 * A shape that did not is never used again. The set belongs to one share
 * table (cp/xds/share.c): entries are looked up under its own lock and
 * freed only between contexts, when no build runs. */
#ifndef CP_XDS_SHAPE_H
#define CP_XDS_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"
#include "pb/shape.h"

struct cp_xds_shapes;
struct cp_xds_shape;

struct cp_xds_shapes *cp_xds_shapes_new(void);
/* A new context: shapes unused for a while are dropped. No build runs. */
void cp_xds_shapes_next(struct cp_xds_shapes *ss);
void cp_xds_shapes_clear(struct cp_xds_shapes *ss);
void cp_xds_shapes_free(struct cp_xds_shapes *ss);

/* Checks every fill against a full encoding (tests). */
void cp_xds_shapes_set_verify_all(struct cp_xds_shapes *ss, bool on);

/* What a build does with a resource of shape key <key>. */
enum cp_xds_shape_use {
	CP_XDS_SHAPE_NONE,   /* encode it (another build is recording, the shape failed, the set is
				full) */
	CP_XDS_SHAPE_RECORD, /* encode it recording (cp_xds_shape_recorded) */
	CP_XDS_SHAPE_VERIFY, /* encode it and compare a fill (cp_xds_shape_verify) */
	CP_XDS_SHAPE_FILL,   /* fill the shape (cp_xds_shape_fill) */
};

/* The shape for <key> (valid until the next context), created when
 * missing; <*use> says what to do with it for <vars>. */
struct cp_xds_shape *cp_xds_shape_get(struct cp_xds_shapes *ss, const char *key, size_t klen,
				      const struct km_str *vars, size_t nvars,
				      enum cp_xds_shape_use *use);

/* The shape for <key> when it can be filled for <vars> (FILL), else NULL;
 * creates nothing. */
struct cp_xds_shape *cp_xds_shape_find(struct cp_xds_shapes *ss, const char *key, size_t klen,
				       const struct km_str *vars, size_t nvars);

/* A shape found wrong some other way (a check beyond its bytes): never
 * used again. */
void cp_xds_shape_retire(struct cp_xds_shape *sh);

/* The recording of a RECORD use: <shape> (taken; NULL: none could be
 * made) and the <vars> it was recorded with (copied). */
void cp_xds_shape_recorded(struct cp_xds_shape *sh, struct km_pb_shape *shape,
			   const struct km_str *vars, size_t nvars);

/* A VERIFY use: the fill for <vars> compared with <bytes>, the full
 * encoding; a difference retires the shape. Returns whether they agreed. */
bool cp_xds_shape_verify(struct cp_xds_shape *sh, const struct km_str *vars, size_t nvars,
			 const void *bytes, size_t len, struct km_buf *scratch);

/* A FILL use: the resource for <vars> appended to <out>. */
void cp_xds_shape_fill(struct cp_xds_shape *sh, const struct km_str *vars, size_t nvars,
		       struct km_buf *out);

#endif
