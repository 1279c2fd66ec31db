/* SPDX-License-Identifier: Apache-2.0 */
/* Resource validation as upstream's REST decoder does it: schema
 * normalisation (schema.h) then the type's validator, collecting every
 * violation with upstream's field paths and English messages. Everything
 * allocated lives in the arena passed in. */
#ifndef KM_RESOURCE_VALIDATE_H
#define KM_RESOURCE_VALIDATE_H

#include <stdint.h>

#include "base/arena.h"
#include "base/str.h"
#include "resource/resource.h"
#include "resource/violations.h"

/* Normalises <doc> in place (drops unknown spec/status fields, applies upstream defaults, checks
 * JSON types, enums and required fields against the type schema) and then runs the type's
 * validator. Appends every violation (field path + message, upstream wording and order) to <out>.
 * As upstream, schema errors stop the walk: the validator only runs on a schema-valid document.
 * Types flagged KM_RT_RFC1035 also get upstream's RFC 1035 check of the display name here
 * (upstream runs it in the type validator, during body decoding, before the meta checks).
 * Returns 0 when valid, -KM_E_INVALID when <out> gained violations. */
int km_validate_resource(struct km_arena *a, struct km_resource_doc *doc,
			 struct km_violations *out);

enum km_validate_flags {
	/* Only prune unknown fields (as decoding into a Go struct does); no defaults and no schema
	 * errors. This is what upstream's validator unit tables exercise. */
	KM_VALIDATE_VALIDATOR_ONLY = 1u << 0,
};
int km_validate_resource_ex(struct km_arena *a, struct km_resource_doc *doc,
			    struct km_violations *out, unsigned flags);

/* Meta checks as upstream's meta validator: name (RFC 1123 subdomain, 253 chars) and mesh
 * characters (mesh-scoped types), with upstream's exact messages and field names "name"/"mesh". */
void km_validate_meta(struct km_arena *a, const struct km_resource_doc *doc,
		      struct km_violations *out);

/* Go time.ParseDuration semantics; 0 or -EINVAL. Used by policies and config. */
int km_duration_parse(struct km_str s, int64_t *nanos);
/* Go time.Duration.String() formatting ("1h0m0s", "1m41s", "100ms"). */
const char *km_duration_format(struct km_arena *a, int64_t nanos);

#endif
