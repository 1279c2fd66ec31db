/* SPDX-License-Identifier: Apache-2.0 */
/* The resource type table: one static row per type of the Kuma 3.0 registry.
 * It drives storage, REST paths, kumactl arguments, scope, read-only-ness,
 * KRI short names, the wire form (flat proto-style vs spec/status) and which
 * validator runs. Rows are immutable and live for the whole process. */
#ifndef KM_RESOURCE_TYPE_H
#define KM_RESOURCE_TYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/str.h"

enum km_scope { KM_SCOPE_MESH, KM_SCOPE_GLOBAL };

enum km_rtype_flags {
	KM_RT_READ_ONLY = 1u << 0,   /* REST writes answer 405 */
	KM_RT_NEW_STYLE = 1u << 1,   /* wire form has spec: and status: */
	KM_RT_POLICY = 1u << 2,      /* a targetRef Mesh* policy */
	KM_RT_HAS_TO = 1u << 3,      /* policy has to[] */
	KM_RT_HAS_RULES = 1u << 4,   /* policy has rules[] */
	KM_RT_HAS_STATUS = 1u << 5,  /* status is kept (read-only on REST) */
	KM_RT_ADMIN_ONLY = 1u << 6,  /* secrets: admin users only */
	KM_RT_FEDERATION = 1u << 7,  /* includeInFederation */
	KM_RT_ZONE_LABELS = 1u << 8, /* gets kuma.io/zone and kuma.io/env on write */
	KM_RT_INSIGHT = 1u << 9,     /* owned by a same-named resource (cascade) */
	KM_RT_INBOUND = 1u << 10,    /* /policies isInbound */
	KM_RT_OUTBOUND = 1u << 11,   /* /policies isOutbound */
	KM_RT_RFC1035 = 1u << 12,    /* name must be an RFC 1035 label */
};

struct km_rtype {
	const char *name;            /* "MeshTrafficPermission" */
	const char *path;            /* REST collection: "meshtrafficpermissions" */
	const char *alt_path;        /* alias ("global-secrets") or NULL */
	const char *kumactl_arg;     /* singular kumactl arg or NULL */
	const char *kumactl_plural;  /* plural kumactl arg or NULL */
	const char *short_name;      /* KRI short name ("mtp") or "" */
	const char *singular_display;
	const char *plural_display;
	enum km_scope scope;
	unsigned flags;
	const char *owner_type;      /* for KM_RT_INSIGHT: the owning type name */
	/* JSON of the status as upstream's Go struct marshals when empty (its
	 * non-omitempty members); stored status is merged over it. NULL: the
	 * type has no status. */
	const char *status_skeleton;
};

extern const struct km_rtype km_rtypes[];
extern const size_t km_rtypes_len;

const struct km_rtype *km_rtype_by_name(struct km_str name);
/* Matches path or alt_path. */
const struct km_rtype *km_rtype_by_path(struct km_str path);
/* Matches the singular or plural kumactl argument. */
const struct km_rtype *km_rtype_by_arg(struct km_str arg);
const struct km_rtype *km_rtype_by_short(struct km_str short_name);

static inline bool km_rtype_has(const struct km_rtype *t, unsigned flag)
{
	return (t->flags & flag) != 0;
}

#endif
