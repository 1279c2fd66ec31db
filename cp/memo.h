/* SPDX-License-Identifier: Apache-2.0 */
/* Facts derived from a stored record, recomputed only when the record
 * changes. The MeshService generator and the MeshInsight resyncer read
 * every Dataplane and DataplaneInsight of a mesh on each pass; parsing each
 * one's JSON again was most of their cost at thousands of proxies. A memo
 * keeps, per (mesh, name), the record's store version and times and a small
 * fixed-size fact computed from it. */
#ifndef CP_MEMO_H
#define CP_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "cp/store/store.h"
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
/* The fact last computed for (mesh, name), whatever was written since, or
 * NULL when none is kept: what a record was before the write whose event
 * is being handled. Valid until the memo next computes or sweeps. */
const void *cp_memo_peek(const struct cp_memo *m, struct km_str mesh, struct km_str name);
/* Drops the entries no cp_memo_get asked for since the previous sweep
 * (records deleted meanwhile). */
void cp_memo_sweep(struct cp_memo *m);
size_t cp_memo_len(const struct cp_memo *m);

/* Every record of <t> in <mesh> through the memo, as name -> fact sorted
 * by name (arrays in <a>; names and facts valid until the next sweep). The
 * first index of a mesh (and one after a sweep that did not see it, or
 * after too many touches) reads it page by page: one store call per page
 * instead of one per record, and no page outlives its processing. 0 or a
 * store error. */
struct cp_store;
struct cp_memo_index {
	const char **names;
	const void **facts;
	size_t n;
};
int cp_memo_index(struct cp_memo *m, struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		  struct km_str mesh, struct cp_memo_index *out);
const void *cp_memo_index_find(const struct cp_memo_index *x, struct km_str name);

/* The owner's change event for a record of the memo's type: once a mesh
 * was indexed whole, its next index reads only the records touched since
 * (one query each; the whole mesh again past a few hundred), so an index
 * costs the writes since the last one instead of every record. Deleted
 * records are found so too. Only a memo whose every write is touched may
 * be indexed so: the owner touches on every event, active or not. */
bool cp_memo_touch(struct cp_memo *m, struct km_str mesh, struct km_str name);
/* A write of (mesh, name) about to be made that leaves the record's fact as
 * it is (its writer computed the fact of both versions): the touch of its
 * event is not worth a read. The entry keeps the old version until some
 * other touch or listing reads it. cp_memo_same_cancel when the write
 * fails. After each change every proxy's DataplaneInsight is rewritten for
 * its ACK counters alone: without this, the controllers listed 10,000
 * insights again after every change. */
void cp_memo_same(struct cp_memo *m, struct km_str mesh, struct km_str name);
void cp_memo_same_cancel(struct cp_memo *m, struct km_str mesh, struct km_str name);
/* Events were lost (the store's resync): every mesh is listed again. */
void cp_memo_forget(struct cp_memo *m);
/* An owner's change event for a memo of the records of type <type>: a
 * touch when it names one, a forget on a resync, nothing otherwise. Both
 * return true when the event is a write declared same (cp_memo_same): it
 * changed no fact, so nothing derived from the facts needs recomputing. */
bool cp_memo_follow(struct cp_memo *m, const char *type, enum cp_store_op op, const struct km_rtype *t,
		    struct km_str mesh, struct km_str name);
/* What the last cp_memo_follow returned: for the memo's other readers,
 * called for the same event after its owner (the bus calls subscribers in
 * order). */
bool cp_memo_last_same(const struct cp_memo *m);
/* A fingerprint of every name and fact of <x>: equal when no record's fact
 * changed (facts of <fact_size> plain bytes, no pointers: they are hashed
 * as they are). */
uint64_t cp_memo_index_fp(const struct cp_memo_index *x, size_t fact_size);

/* A fingerprint the memo's user keeps per mesh (what its last full pass was
 * computed from), so that a pass can tell nothing moved since: get returns
 * false when none was set for <mesh>. Sweeps leave them alone. */
bool cp_memo_mark_get(const struct cp_memo *m, const char *mesh, uint64_t *fp);
void cp_memo_mark_set(struct cp_memo *m, const char *mesh, uint64_t fp);

#endif
