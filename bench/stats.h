/* SPDX-License-Identifier: Apache-2.0 */
/* Percentiles for the benchmark tools (nearest rank over sorted samples). */
#ifndef KM_BENCH_STATS_H
#define KM_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

static inline int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* The <p>-th percentile (0-100) of <n> sorted values, divided by 1000
 * (microseconds to milliseconds, nanoseconds to microseconds). */
static inline double pct(const uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t k = (size_t)((p / 100.0) * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

#endif
