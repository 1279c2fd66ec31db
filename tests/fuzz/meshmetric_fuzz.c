/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for dp_metrics_config_parse (dp/metrics.c), which reads
 * the /meshmetric body Envoy relays from the control plane: arbitrary bytes
 * either fail with -KM_E_PARSE or give a config whose labels are valid label
 * names and whose selectors (fuzzed regexes included) filter a fixed body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "dp/dp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char stats[] = "# TYPE envoy_cluster_upstream_rq_total counter\n"
			    "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"backend\"} 7\n"
			    "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"_internal\"} 1\n"
			    "# TYPE envoy_server_live gauge\n"
			    "envoy_server_live 1\n"
			    "# TYPE x_h histogram\n"
			    "x_h_bucket{le=\"+Inf\"} 1\n"
			    "x_h_sum 1\n"
			    "x_h_count 1\n";

static bool valid_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_metrics_config *c = NULL;
	struct km_buf err = KM_BUF_INIT, out = KM_BUF_INIT, again = KM_BUF_INIT;
	int rc = dp_metrics_config_parse((struct km_str){(const char *)data, size}, &c, &err);
	if (rc != 0 && rc != -KM_E_PARSE)
		abort();
	if ((rc == 0) != (c != NULL))
		abort();
	if (rc == 0) {
		for (size_t i = 0; i < c->nlabels; i++)
			if (!valid_name(c->labels[i].key) ||
			    (i && strcmp(c->labels[i - 1].key, c->labels[i].key) >= 0))
				abort(); /* not a label name, or not sorted and unique */
		(void)dp_metrics_envoy_path(c);
		if (dp_metrics_rewrite(c, true, km_str_c(stats), &out, &err) != 0)
			abort();
		if (dp_metrics_rewrite(NULL, false, (struct km_str){out.data ? out.data : "", out.len},
				       &again, &err) != 0)
			abort(); /* labels made the output unparseable */
		dp_metrics_config_unref(c);
	}
	km_buf_fini(&err);
	km_buf_fini(&out);
	km_buf_fini(&again);
	return 0;
}
