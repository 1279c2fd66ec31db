/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for the HDS stream's messages (cp/xds/hds.c): arbitrary
 * bytes are decoded as HealthCheckRequestOrEndpointHealthResponse and a
 * report is read as the server reads it; nothing crashes, and a report
 * never names more workload ports than the server keeps. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/arena.h"
#include "cp/xds/hds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_arena *a = km_arena_new(4096);
	bool envoy = false;
	size_t nports = 0;
	int rc = cp_hds_parse_report(a, data, size, &envoy, &nports);
	if (rc < -1 || rc > 1 || (rc == 1 && nports > 1024))
		abort();
	km_arena_free(a);
	return 0;
}
