/* SPDX-License-Identifier: Apache-2.0 */
/* A resource as stored and served: meta fields plus canonical compact JSON
 * text for labels, spec and status. Text keeps stored resources small and
 * lets GET splice them into responses without a parse. All views borrow from
 * the arena (or store) that produced the struct. */
#ifndef KM_RESOURCE_RESOURCE_H
#define KM_RESOURCE_RESOURCE_H

#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "codec/json.h"
#include "resource/type.h"

struct km_resource {
	const struct km_rtype *type;
	struct km_str mesh;   /* empty for global-scoped types */
	struct km_str name;
	uint64_t version;     /* 0 = not stored yet; the store sets 1 on create */
	int64_t ctime;        /* creation time, unix nanoseconds */
	int64_t mtime;        /* modification time, unix nanoseconds */
	struct km_str labels; /* compact JSON object, or empty for none */
	struct km_str spec;   /* compact JSON object; flat types: every non-meta field */
	struct km_str status; /* compact JSON object, or empty (new-style types only) */
	/* owner for cascading deletes; empty owner_type = none */
	struct km_str owner_type, owner_mesh, owner_name;
};

/* Parsed form used on the write path and by validators. */
struct km_resource_doc {
	const struct km_rtype *type;
	struct km_str mesh, name;
	struct km_json *labels; /* object or NULL */
	struct km_json *spec;   /* object, never NULL */
	struct km_json *status; /* object or NULL */
	int64_t ctime, mtime;   /* 0 when absent in the input */
};

/* Splits a universal-format document (REST body, kumactl YAML, seed) into meta
 * and spec. <want> may be NULL (type read from the document). Meta fields of
 * the wrong JSON type fail with Go's message, e.g. "json: cannot unmarshal
 * number into Go struct field ResourceMeta.name of type string". Returns 0,
 * -KM_E_PARSE (message in <err>) or -KM_E_NOT_FOUND for an unknown type. */
int km_resource_doc_from_json(struct km_arena *a, const struct km_json *doc,
			      const struct km_rtype *want, struct km_resource_doc *out,
			      struct km_buf *err);

/* Serialises spec/labels/status of <d> into compact text owned by <a>. */
void km_resource_from_doc(struct km_arena *a, const struct km_resource_doc *d,
			  struct km_resource *out);

/* Parses the text fields of <r> back into a doc (for validators, inspection). */
int km_resource_to_doc(struct km_arena *a, const struct km_resource *r,
		       struct km_resource_doc *out);

/* The KRI of <r>: kri_<short>_<mesh>_<zone>_<namespace>_<name>_<section>,
 * where zone comes from the kuma.io/zone label and name from
 * kuma.io/display-name when present. Returns "" for types with no short name. */
const char *km_resource_kri(struct km_arena *a, const struct km_resource *r);

/* Writes the universal JSON form (type, mesh, name, creationTime,
 * modificationTime, labels, kri, spec..., status) with Go MarshalIndent
 * spacing (<indent> spaces per level, starting at <depth>; indent 0 = compact). */
int km_resource_write_json(struct km_buf *out, struct km_arena *a, const struct km_resource *r,
			   int indent, int depth);
/* Same content as a tree (kumactl uses it for YAML output). */
struct km_json *km_resource_to_json(struct km_arena *a, const struct km_resource *r);

/* RFC 3339 with nanoseconds trimmed as Go's time.Time JSON does. */
const char *km_time_format(struct km_arena *a, int64_t unix_ns);
/* Parses RFC 3339 (with optional fraction and zone); 0 or -EINVAL. */
int km_time_parse(struct km_str s, int64_t *unix_ns);
int64_t km_time_now(void);

#endif
