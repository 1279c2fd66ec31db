/* SPDX-License-Identifier: Apache-2.0 */
/* Upstream's store metrics (store.h): a histogram of seconds per operation
 * and resource type in client_golang's default buckets, and the conflicts
 * of creates and updates per type. Counted with relaxed atomics: the store
 * is called from the loop and from the builder thread. */
#include <time.h>

#include "base/prom.h"
#include "cp/store/store.h"

#define MAX_TYPES 128

struct cell {
	uint64_t counts[KM_PROM_DEF_NB + 1];
	uint64_t sum_ns;
};

static struct cell cells[CP_STORE_NOPS][MAX_TYPES];
static uint64_t conflicts[MAX_TYPES];

const char *const cp_store_op_name[CP_STORE_NOPS] = {"create", "update", "delete", "get", "list"};

int64_t cp_store_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cp_store_observe(int op, const struct km_rtype *t, int64_t t0, int rc)
{
	size_t ti = t ? (size_t)(t - km_rtypes) : MAX_TYPES;
	if (op < 0 || op >= CP_STORE_NOPS || ti >= km_rtypes_len || ti >= MAX_TYPES)
		return;
	int64_t ns = cp_store_clock_ns() - t0;
	if (ns < 0)
		ns = 0;
	double s = (double)ns / 1e9;
	size_t b = 0;
	while (b < KM_PROM_DEF_NB && s > km_prom_def_le[b])
		b++;
	struct cell *c = &cells[op][ti];
	__atomic_fetch_add(&c->counts[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->sum_ns, (uint64_t)ns, __ATOMIC_RELAXED);
	if (rc == -KM_E_CONFLICT && (op == CP_STORE_OP_CREATE || op == CP_STORE_OP_UPDATE))
		__atomic_fetch_add(&conflicts[ti], 1, __ATOMIC_RELAXED);
}

void cp_store_metrics_write(struct km_buf *out)
{
	struct km_buf v = KM_BUF_INIT, l = KM_BUF_INIT;
	for (int op = 0; op < CP_STORE_NOPS; op++)
		for (size_t ti = 0; ti < km_rtypes_len && ti < MAX_TYPES; ti++) {
			uint64_t counts[KM_PROM_DEF_NB + 1], n = 0;
			for (size_t b = 0; b <= KM_PROM_DEF_NB; b++)
				n += counts[b] = __atomic_load_n(&cells[op][ti].counts[b], __ATOMIC_RELAXED);
			if (!n)
				continue;
			l.len = 0;
			km_prom_label(&l, "operation", cp_store_op_name[op]);
			km_buf_putc(&l, ',');
			km_prom_label(&l, "resource_type", km_rtypes[ti].name);
			struct km_prom_hist h = {km_prom_def_le, KM_PROM_DEF_NB, counts,
						 (double)__atomic_load_n(&cells[op][ti].sum_ns, __ATOMIC_RELAXED) / 1e9};
			km_prom_hist_write(&v, "store", km_buf_cstr(&l), &h);
		}
	if (v.len) {
		km_prom_family(out, "store", "histogram", "Summary of Store operations");
		km_buf_add(out, v.data, v.len);
	}
	v.len = 0;
	for (size_t ti = 0; ti < km_rtypes_len && ti < MAX_TYPES; ti++) {
		uint64_t n = __atomic_load_n(&conflicts[ti], __ATOMIC_RELAXED);
		if (!n)
			continue;
		l.len = 0;
		km_prom_label(&l, "resource_type", km_rtypes[ti].name);
		km_prom_sample(&v, "store_conflicts", km_buf_cstr(&l), (double)n);
	}
	if (v.len) {
		km_prom_family(out, "store_conflicts", "counter", "Counter of store conflicts while update");
		km_buf_add(out, v.data, v.len);
	}
	km_buf_fini(&v);
	km_buf_fini(&l);
}
