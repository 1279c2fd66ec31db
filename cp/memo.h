/* SPDX-License-Identifier: Apache-2.0 */
/* Facts derived from a stored record, recomputed only when the record
 * changes. The MeshService generator and the MeshInsight resyncer read
 * every Dataplane and DataplaneInsight of a mesh on each pass; parsing each
 * one's JSON again was most of their cost at thousands of proxies. A memo
 * keeps, per (mesh, name), the record's store version and times and a small
 * fixed-size fact computed from it. */
#ifndef CP_MEMO_H
#define CP_MEMO_H

#include <stddef.h>

#include "base/arena.h"
#include "resource/resource.h"

/* Fills <fact> (fact_size bytes, zeroed) from <r>. Strings and trees the
 * fact points to go into <a>, which lives as long as the entry. */
typedef void (*cp_memo_fn)(struct km_arena *a, const struct km_resource *r, void *fact);

struct cp_memo;
struct cp_memo *cp_memo_new(size_t fact_size, cp_memo_fn compute);
void cp_memo_free(struct cp_memo *m);
/* The fact of <r>, computed now if <r>'s version or times differ from the
 * cached entry's. Valid until the next cp_memo_sweep. */
const void *cp_memo_get(struct cp_memo *m, const struct km_resource *r);
/* Drops the entries no cp_memo_get asked for since the previous sweep
 * (records deleted meanwhile). */
void cp_memo_sweep(struct cp_memo *m);
size_t cp_memo_len(const struct cp_memo *m);

#endif
