/* SPDX-License-Identifier: Apache-2.0 */
/* Schema engine: the static tables generated into schema_gen.c (one node per
 * distinct schema, properties in upstream order, enums as JSON text) and the
 * walk that normalises a resource's spec/status the way upstream's REST decoder
 * does (structural defaulting, kube-openapi checks, unknown fields dropped by
 * decoding into a Go struct). Tables are immutable; results live in the arena. */
#ifndef KM_RESOURCE_SCHEMA_H
#define KM_RESOURCE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "codec/json.h"
#include "resource/violations.h"

enum km_schema_kind {
	KM_SK_ANY,    /* anything, kept as is */
	KM_SK_OBJECT, /* fixed properties; others are dropped */
	KM_SK_MAP,    /* free keys, values of one schema */
	KM_SK_ARRAY,
	KM_SK_STRING,
	KM_SK_INT,
	KM_SK_NUMBER,
	KM_SK_BOOL,
	KM_SK_INT_OR_STRING, /* x-kubernetes-int-or-string */
};

enum km_schema_flags {
	KM_SF_HAS_MIN = 1u << 0,
	KM_SF_HAS_MAX = 1u << 1,
	KM_SF_DURATION = 1u << 2, /* proto Duration carried as a Go duration string */
};

struct km_schema_node {
	unsigned char kind;  /* enum km_schema_kind */
	unsigned char flags; /* enum km_schema_flags */
	int child;           /* ARRAY items / MAP values: node index */
	int props, nprops;   /* OBJECT: range in km_schema_props */
	int enums, nenums;   /* range in km_schema_enums (JSON text of each value) */
	int min_len, max_len, min_items, max_items; /* -1 = unbounded */
	long long min, max;
	const char *def;         /* default as compact JSON text, or NULL */
	const char *pattern;     /* upstream (RE2) pattern, used in messages */
	const char *pattern_ere; /* same language as POSIX ERE, for regcomp */
	const char *format;      /* "byte", "date-time" or NULL */
};

struct km_schema_prop {
	const char *name;
	int node;
	int required;
};

struct km_schema_root {
	const char *type; /* resource type name */
	int spec;         /* node of spec (flat types: the whole body minus meta) */
	int status;       /* node of status, or -1 */
};

extern const struct km_schema_node km_schema_nodes[];
extern const struct km_schema_prop km_schema_props[];
extern const char *const km_schema_enums[];
extern const struct km_schema_root km_schema_roots[];
extern const size_t km_schema_roots_len;

const struct km_schema_root *km_schema_root_find(const char *type);

/* Normalises <*v> (may be replaced, e.g. by a default) against node <node>:
 * applies defaults, drops unknown object members, and appends kube-openapi
 * style errors "<path> in body <reason>" to <errs> (arena strings, unsorted).
 * <path> is the dotted path of <*v> ("spec"). */
enum km_schema_opts {
	/* YAML decoded into a Go struct (sigs.k8s.io/yaml): scalars bound for string fields
	 * become strings ("retryOn: [500]") instead of type errors */
	KM_SCHEMA_COERCE_STRINGS = 1u << 0,
};
void km_schema_normalize(struct km_arena *a, int node, struct km_json **v, const char *path,
			 struct km_violations *errs, unsigned opts);

/* Turns the error strings collected in <errs> (message only, field unused)
 * into upstream violations: sorted by text, split into field + reason when
 * the text starts with "spec." (or always, for <flat> proto types whose
 * fields sit at the top), otherwise field "" and the whole text. */
void km_schema_errors_to_violations(struct km_violations *errs, struct km_violations *out,
				    bool flat);

#endif
