/* SPDX-License-Identifier: Apache-2.0 */
/* km_prom: histograms written cumulative with +Inf, samples printed as Go
 * prints them, label values escaped, a label added to every sample. */
#include <string.h>

#include "base/prom.h"
#include "../test.h"

static void test_histogram(void)
{
	uint64_t counts[KM_PROM_DEF_NB + 1] = {0};
	struct km_prom_hist h = {km_prom_def_le, KM_PROM_DEF_NB, counts, 0};
	km_prom_observe(&h, 0.005, 1); /* on a bound: that bucket */
	km_prom_observe(&h, 0.3, 2);
	km_prom_observe(&h, 11, 1); /* above the last bound */
	km_prom_observe(&h, 0, 3);
	struct km_buf b = KM_BUF_INIT;
	km_prom_hist_write(&b, "x", "a=\"1\"", &h);
	CHECK_STREQ(km_buf_cstr(&b), "x_bucket{a=\"1\",le=\"0.005\"} 4\n"
				     "x_bucket{a=\"1\",le=\"0.01\"} 4\n"
				     "x_bucket{a=\"1\",le=\"0.025\"} 4\n"
				     "x_bucket{a=\"1\",le=\"0.05\"} 4\n"
				     "x_bucket{a=\"1\",le=\"0.1\"} 4\n"
				     "x_bucket{a=\"1\",le=\"0.25\"} 4\n"
				     "x_bucket{a=\"1\",le=\"0.5\"} 6\n"
				     "x_bucket{a=\"1\",le=\"1\"} 6\n"
				     "x_bucket{a=\"1\",le=\"2.5\"} 6\n"
				     "x_bucket{a=\"1\",le=\"5\"} 6\n"
				     "x_bucket{a=\"1\",le=\"10\"} 6\n"
				     "x_bucket{a=\"1\",le=\"+Inf\"} 7\n"
				     "x_sum{a=\"1\"} 11.605\n"
				     "x_count{a=\"1\"} 7\n");
	b.len = 0;
	struct km_prom_hist empty = {km_prom_def_le, 1, (uint64_t[2]){0, 0}, 0};
	km_prom_hist_write(&b, "y", "", &empty);
	CHECK_STREQ(km_buf_cstr(&b), "y_bucket{le=\"0.005\"} 0\ny_bucket{le=\"+Inf\"} 0\ny_sum 0\ny_count 0\n");
	km_buf_fini(&b);
}

static void test_samples_and_labels(void)
{
	struct km_buf b = KM_BUF_INIT;
	km_prom_family(&b, "up", "gauge", "Up.");
	km_prom_sample(&b, "up", "", 1);
	km_prom_sample(&b, "t", NULL, 0.25);
	struct km_buf l = KM_BUF_INIT;
	km_prom_label(&l, "v", "a\"b\\c\nd");
	km_prom_sample(&b, "s", km_buf_cstr(&l), 1e20);
	CHECK_STREQ(km_buf_cstr(&b), "# HELP up Up.\n# TYPE up gauge\nup 1\nt 0.25\ns{v=\"a\\\"b\\\\c\\nd\"} 1e+20\n");
	km_buf_fini(&l);
	km_buf_fini(&b);
}

static void test_add_label(void)
{
	/* in name order, before le and quantile; values with escapes and
	 * commas are skipped whole */
	const char *in = "# HELP a A.\n# TYPE a counter\na 1\nb{x=\"1\"} 2\nc{} 3\n\nd_bucket{le=\"+Inf\"} 4\n"
			 "e{a=\"1,\\\"}\",zz=\"2\"} 5\nf{a=\"1\",quantile=\"0.5\"} 6\ng{zone=\"x\",zonex=\"y\"} 7\n";
	struct km_buf b = KM_BUF_INIT;
	km_prom_add_label(&b, in, strlen(in), "zone", "z\"1");
	CHECK_STREQ(km_buf_cstr(&b), "# HELP a A.\n# TYPE a counter\na{zone=\"z\\\"1\"} 1\nb{x=\"1\",zone=\"z\\\"1\"} 2\n"
				     "c{zone=\"z\\\"1\"} 3\n\nd_bucket{zone=\"z\\\"1\",le=\"+Inf\"} 4\n"
				     "e{a=\"1,\\\"}\",zone=\"z\\\"1\",zz=\"2\"} 5\n"
				     "f{a=\"1\",zone=\"z\\\"1\",quantile=\"0.5\"} 6\n"
				     "g{zone=\"x\",zone=\"z\\\"1\",zonex=\"y\"} 7\n");
	km_buf_fini(&b);
}

int main(void)
{
	test_histogram();
	test_samples_and_labels();
	test_add_label();
	return test_summary();
}
