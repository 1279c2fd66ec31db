/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus text exposition (format 0.0.4) helpers: histograms kept as
 * per-bucket counts and written cumulative, and a pass that adds one label
 * to every sample of a written exposition (what a Go registry wrapped with
 * constant labels prints). */
#ifndef KM_BASE_PROM_H
#define KM_BASE_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* client_golang's prometheus.DefBuckets. */
#define KM_PROM_DEF_NB 11
extern const double km_prom_def_le[KM_PROM_DEF_NB];

/* A histogram: counts[i] observations <= le[i] (and > le[i-1]), counts[n]
 * those above the last bound; <le> is the caller's. */
struct km_prom_hist {
	const double *le;
	size_t n;
	uint64_t *counts; /* n + 1 */
	double sum;
};

/* Adds <count> observations of <v>. */
void km_prom_observe(struct km_prom_hist *h, double v, uint64_t count);

/* # HELP and # TYPE lines. */
void km_prom_family(struct km_buf *out, const char *name, const char *type, const char *help);
/* name{labels} v: <labels> is "" or label pairs already written
 * (a="x",b="y"), <v> printed as Go's strconv does for integral values. */
void km_prom_sample(struct km_buf *out, const char *name, const char *labels, double v);
/* A label pair, the value escaped as the format wants (\\, \", \n). */
void km_prom_label(struct km_buf *out, const char *name, const char *value);
/* The _bucket, _sum and _count lines of <h> (no family lines). */
void km_prom_hist_write(struct km_buf *out, const char *name, const char *labels, const struct km_prom_hist *h);

/* Copies the exposition <text> to <out> with name="value" added to every
 * sample line (first among a sample's labels; comments and blank lines as
 * they are). */
void km_prom_add_label(struct km_buf *out, const char *text, size_t len, const char *name, const char *value);

#endif
