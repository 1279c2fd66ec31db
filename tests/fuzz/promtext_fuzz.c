/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for dp_metrics_rewrite (dp/metrics.c), which reads what
 * applications and Envoy answer to a scrape: arbitrary bytes either fail
 * with -KM_E_PARSE or give text that parses again, and rewriting that output
 * once more changes nothing, with or without a profile and extra labels. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "dp/dp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dp_metrics_config *cfg;

/* Basic with an excluding regex and an exact include, and labels none of
 * which is an entity label Basic's sample filter reads. */
static const char config[] =
    "{\"observability\":{\"metrics\":{\"sidecar\":{\"profiles\":{\"appendProfiles\":[{\"name\":"
    "\"Basic\"}],\"exclude\":[{\"type\":\"Regex\",\"match\":\"external_.*_rq\"}],\"include\":"
    "[{\"type\":\"Exact\",\"match\":\"a\"},{\"type\":\"Contains\",\"match\":\"x\"}]}},"
    "\"extraLabels\":{\"kuma.io/zone\":\"z\\\"1\",\"mesh\":\"default\",\"le\":\"1\"}}}}";

static void check_stable(const struct dp_metrics_config *c, bool envoy, struct km_str in)
{
	struct km_buf out = KM_BUF_INIT, again = KM_BUF_INIT, err = KM_BUF_INIT;
	int rc = dp_metrics_rewrite(c, envoy, in, &out, &err);
	if (rc != 0 && rc != -KM_E_PARSE)
		abort();
	if (rc != 0 && out.len)
		abort(); /* a failed body gives nothing */
	if (rc == 0) {
		struct km_str o = {out.data ? out.data : "", out.len};
		if (dp_metrics_rewrite(c, envoy, o, &again, &err) != 0)
			abort(); /* our own output must parse */
		if (again.len != out.len || (out.len && memcmp(again.data, out.data, out.len) != 0))
			abort(); /* rewriting is not idempotent */
	}
	km_buf_fini(&out);
	km_buf_fini(&again);
	km_buf_fini(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!cfg) {
		struct km_buf err = KM_BUF_INIT;
		if (dp_metrics_config_parse(km_str_c(config), &cfg, &err) != 0)
			abort();
		km_buf_fini(&err);
	}
	struct km_str in = {(const char *)data, size};
	check_stable(NULL, false, in);
	check_stable(cfg, false, in);
	check_stable(cfg, true, in);
	return 0;
}
