/* SPDX-License-Identifier: Apache-2.0 */
/* A proxy's resources as encoded protobuf, built once and shared.
 *
 * Most of a sidecar's resources are its outbounds: a cluster, a load
 * assignment and a listener per MeshService port it calls, equal for every
 * consumer with the same identity and the same policy confs for that
 * destination. cp_xds_build() generates the rest of the proxy's
 * configuration and looks each outbound resource up in the mesh's share
 * table, keyed by exactly what shapes it (cp_xds_generate_outbound() and
 * cp_policy_outbound_key()); only a miss is generated and encoded. A
 * listener for a new address is the destination's listener body (every
 * field but the address, kept in the table) followed by the proxy's own
 * address field. Encoded resources are refcounted blobs: snapshots of many
 * streams point at the same bytes. The table belongs to one mesh context
 * and is cleared when the context is rebuilt. */
#ifndef CP_XDS_SHARE_H
#define CP_XDS_SHARE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "cp/xds/generate.h"

/* One encoded resource: immutable once built. */
struct cp_xds_blob {
	atomic_uint refs; /* the builder thread and the loop both take and drop references */
	char version[17]; /* km_hash of the bytes, hex */
	const char *name; /* in the same allocation */
	size_t len;
	uint8_t bytes[];
};

struct cp_xds_blob *cp_xds_blob_new(const char *name, const uint8_t *bytes, size_t len);
struct cp_xds_blob *cp_xds_blob_ref(struct cp_xds_blob *b);
void cp_xds_blob_unref(struct cp_xds_blob *b);

struct cp_xds_share;
struct cp_xds_share *cp_xds_share_new(void);
/* A new mesh context: entries stay (their keys name everything they were
 * built from, the destination's fingerprint and the mesh-wide inputs
 * included). Those whose resource no snapshot holds any more go at the
 * next sweep, or here when the table is short of room for twice what it
 * holds. Called with no build running. */
void cp_xds_share_next(struct cp_xds_share *sh);
/* Drops the entries whose resource no snapshot holds any more and sizes
 * the table for twice the rest; returns how many it dropped (each freed up
 * to three blocks). Called with no build running: the server sweeps when
 * it is idle after a pass, so neither the walk nor the frees (nor the
 * allocator's sorting of them, km_heap_settle) fall on the next change. */
size_t cp_xds_share_sweep(struct cp_xds_share *sh);
/* Checks every resource filled from a shape against its full encoding
 * (tests: stats' shape_mismatches counts the differences). */
void cp_xds_share_verify_shapes(struct cp_xds_share *sh, bool on);
/* Forgets every entry. */
void cp_xds_share_clear(struct cp_xds_share *sh);
void cp_xds_share_free(struct cp_xds_share *sh);

struct cp_xds_share_stats {
	uint64_t shared;  /* outbound resources taken from the table */
	uint64_t encoded; /* resources generated and encoded */
	uint64_t reused;  /* local resources taken from the proxy's last build */
	uint64_t patched; /* of those encoded, filled from a shape (cp/xds/shape.h) */
	uint64_t shape_mismatches; /* shapes retired: a fill differed from the encoding */
	uint64_t local_filled; /* builds whose local resources all came from shapes (none generated) */
	/* NULL, or CP_XDS_NSTEPS sums to which cp_xds_build adds the monotonic
	 * nanoseconds of each of its steps (bench/gen_bench -P) */
	uint64_t *step_ns;
};

/* The steps of cp_xds_build, in order, as step_ns counts them. */
enum cp_xds_build_step {
	CP_XDS_STEP_RULES,	 /* policies matched, their rules merged */
	CP_XDS_STEP_FINGERPRINT, /* the local resources' fingerprint */
	CP_XDS_STEP_LOCAL,	 /* local resources: memo, shapes or generated; outbound list */
	CP_XDS_STEP_KEYS,	 /* each outbound's share keys */
	CP_XDS_STEP_TAKE,	 /* share table lookups and claims */
	CP_XDS_STEP_MAKE,	 /* claimed clusters, load assignments, listener bodies */
	CP_XDS_STEP_LISTENERS,	 /* publishing; listeners with this proxy's addresses */
	CP_XDS_STEP_PUT,	 /* outbound resources into the result */
	CP_XDS_NSTEPS
};

/* A proxy's local resources (all but its MeshService outbounds: secrets,
 * admin and readiness, inbounds) from its last build, and a 128-bit
 * fingerprint of everything they were built from: its Dataplane's store
 * version, its metadata and identity, the mesh-wide inputs, and each
 * running policy plugin's inbound rules. A build whose fingerprint matches
 * takes them instead of generating and encoding them again; a change that
 * reaches only outbounds (a `to` conf, endpoints, another service) leaves
 * them alone. One per proxy, owned by the caller; zeroed means empty. */
struct cp_xds_local_memo {
	uint64_t fp[2];
	struct cp_xds_blob **res; /* n[0] of type 0, then type 1, ... (heap) */
	size_t n[CP_XDS_NTYPES];
};
void cp_xds_local_memo_fini(struct cp_xds_local_memo *lm);

/* A proxy's encoded resources by type, in generation order. The arrays are
 * in the caller's arena; the caller owns one reference to each blob. */
struct cp_xds_built {
	struct cp_xds_blob **res[CP_XDS_NTYPES];
	size_t n[CP_XDS_NTYPES];
};

/* Generates and encodes <dp>'s configuration (cp_xds_generate()'s
 * resources) with the outbounds from <sh> (NULL: nothing shared) and the
 * local resources from <lm> when they are still current (<lm> NULL: no
 * memo; else it is updated). A
 * resource that cannot be encoded is left out and reported in <errors>
 * (one line each; a shared one only by the build that encoded it).
 * Temporaries go to <a>. */
void cp_xds_build(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		  const struct cp_xds_metadata *md, struct cp_xds_share *sh, struct cp_xds_local_memo *lm,
		  struct cp_xds_built *out, struct cp_xds_share_stats *stats, struct km_buf *errors);
/* Drops the references of <b>. */
void cp_xds_built_release(struct cp_xds_built *b);

#endif
