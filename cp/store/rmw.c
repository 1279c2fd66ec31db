/* SPDX-License-Identifier: Apache-2.0 */
/* cp_store_rmw() for backends that run it at once (the memory store): a
 * get, the caller's merge, then a create or an update at the version read.
 * A record created or changed by someone else in between is read again. */
#include "base/err.h"
#include "cp/store/store.h"

#define RMW_TRIES 5

void cp_store_rmw_now(struct cp_store *s, struct cp_store_rmw *op)
{
	int rc = 0;
	for (op->tries = 0; op->tries < RMW_TRIES; op->tries++) {
		struct km_arena *a = km_arena_new(4096);
		struct km_resource cur, out = {.type = op->type, .mesh = op->mesh, .name = op->name};
		rc = cp_store_get(s, a, op->type, op->mesh, op->name, &cur);
		bool have = rc == 0;
		if (rc && rc != -KM_E_NOT_FOUND) {
			km_arena_free(a);
			break;
		}
		rc = 0;
		if (op->merge(op, a, have ? &cur : NULL, &out)) {
			cp_store_relaxed(s, true);
			if (have) {
				out.version = cur.version;
				out.ctime = cur.ctime;
				rc = cp_store_update(s, &out);
			} else {
				rc = cp_store_create(s, &out);
			}
			cp_store_relaxed(s, false);
		}
		km_arena_free(a);
		/* changed or created meanwhile: merge with what is there now;
		 * deleted meanwhile: merge with nothing */
		if (rc != -KM_E_CONFLICT && rc != -KM_E_EXISTS && !(rc == -KM_E_NOT_FOUND && have))
			break;
	}
	op->done(op, rc);
}
