/* SPDX-License-Identifier: Apache-2.0 */
/* The resource manager: the one write path shared by the REST API, the
 * defaults and (later) the xDS callbacks. It checks what only a write can
 * check (mesh exists, name rules applied at creation, immutable labels),
 * computes labels, stores, and runs side effects (a new Mesh gets its signing
 * key and default policies). */
#ifndef CP_MANAGER_H
#define CP_MANAGER_H

#include "cp/runtime.h"
#include "resource/resource.h"
#include "resource/violations.h"

/* Creates <d> with computed labels. Returns 0, -KM_E_INVALID (violations in
 * <v>), -KM_E_MESH_NOT_FOUND, or a store error. */
int cp_manager_create(struct cp_runtime *rt, struct km_arena *a, const struct km_resource_doc *d,
		      struct km_violations *v);
/* Replaces <current> (as read from the store) with <d>; labels recomputed,
 * kuma.io/zone immutable. Store status is kept. */
int cp_manager_update(struct cp_runtime *rt, struct km_arena *a, const struct km_resource *current,
		      const struct km_resource_doc *d, struct km_violations *v);
/* Creates <d> as given (no label computation) unless it exists; used for
 * defaults. Returns 0 when created or already present. */
int cp_manager_ensure(struct cp_runtime *rt, struct km_arena *a, const struct km_resource_doc *d,
		      bool *created);

/* Side effects of a new Mesh (cp/defaults.c). */
int cp_defaults_mesh(struct cp_runtime *rt, struct km_arena *a, struct km_str mesh,
		     const struct km_json *mesh_spec);
/* Everything a fresh control plane creates (cp/defaults.c). */
int cp_defaults_ensure(struct cp_runtime *rt, bool skip_mesh, bool skip_hostname_generators);

#endif
