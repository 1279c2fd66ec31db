/* SPDX-License-Identifier: Apache-2.0 */
/* Label rules of REST writes (see labels.c). Results live in the arena given. */
#ifndef CP_API_LABELS_H
#define CP_API_LABELS_H

#include "cp/runtime.h"
#include "resource/resource.h"
#include "resource/violations.h"

/* Appends violations of the user-supplied labels of <d> to <v>. */
void cp_labels_validate(struct km_arena *a, const struct cp_runtime *rt, const struct km_rtype *t,
			const struct km_resource_doc *d, struct km_violations *v);
/* The labels to store: <existing> plus computed ones, keys sorted. */
struct km_json *cp_labels_compute(struct km_arena *a, const struct cp_runtime *rt,
				  const struct km_rtype *t, const struct km_json *existing,
				  struct km_str mesh, struct km_str name, const struct km_json *spec);

#endif
