/* SPDX-License-Identifier: Apache-2.0 */
/* The benchmark mesh shared by bench/xds_load.c (fake dataplanes over the
 * network) and bench/gen_bench.c (generation in-process): N dataplanes in
 * services of 2, 3, 4, 2, 3, 4... instances (label kuma.io/workload:
 * svc-<s>), each with one HTTP inbound and five outbounds by MeshService
 * backendRef: svc-0 (a dependency every service shares, like an auth
 * service), then the next services on a ring. */
#ifndef KM_BENCH_TOPOLOGY_H
#define KM_BENCH_TOPOLOGY_H

#include <stdio.h>

#include "base/buf.h"
#include "base/mem.h"

#define TOPO_NOUT 5       /* outbounds per dataplane */
#define TOPO_SVC_PORT 8080 /* every service's port, and its instances' inbound */

struct topology {
	int n;          /* dataplanes */
	int nsvc;       /* services */
	int *svc_of;    /* dataplane -> service */
	int *svc_first; /* service -> first dataplane */
	int *svc_count; /* service -> instances */
};

static inline void topology_build(struct topology *t, int n)
{
	t->n = n;
	t->svc_of = km_calloc((size_t)n + 1, sizeof(int));
	t->svc_first = km_calloc((size_t)n + 1, sizeof(int));
	t->svc_count = km_calloc((size_t)n + 1, sizeof(int));
	int i = 0, s = 0;
	while (i < n) {
		int c = 2 + s % 3;
		if (c > n - i)
			c = n - i;
		t->svc_first[s] = i;
		t->svc_count[s] = c;
		for (int k = 0; k < c; k++)
			t->svc_of[i++] = s;
		s++;
	}
	t->nsvc = s;
}

static inline void topology_free(struct topology *t)
{
	free(t->svc_of);
	free(t->svc_first);
	free(t->svc_count);
}

/* The <k>-th outbound target of service <s>: svc-0, then the next
 * services on a ring. svc-0 itself calls its next five. */
static inline int topology_outbound(const struct topology *t, int s, int k)
{
	if (s == 0)
		return (k + 1) % t->nsvc;
	if (k == 0)
		return 0;
	int r = (s + k) % t->nsvc;
	if (r == 0 || r == s)
		r = (r + TOPO_NOUT) % t->nsvc;
	return r;
}

/* Outbounds per dataplane (fewer when there are few services). */
static inline int topology_nout(const struct topology *t)
{
	return t->nsvc > 1 ? (t->nsvc - 1 < TOPO_NOUT ? t->nsvc - 1 : TOPO_NOUT) : 0;
}

static inline void topology_address(int i, char out[20])
{
	unsigned v = (unsigned)i + 1;
	snprintf(out, 20, "127.%u.%u.%u", 1 + (v >> 16), (v >> 8) & 255, v & 255);
}

/* The Dataplane spec ({"networking": ...}) of instance <i> of service <s>. */
static inline void topology_dataplane_spec(const struct topology *t, struct km_buf *out, int i, int s,
					   const char *protocol)
{
	char addr[20];
	topology_address(i, addr);
	km_buf_printf(out, "{\"networking\":{\"address\":\"%s\",\"inbound\":[{\"port\":%d,\"protocol\":\"%s\"}],\"outbound\":[",
		      addr, TOPO_SVC_PORT, protocol);
	for (int k = 0; k < topology_nout(t); k++)
		km_buf_printf(out, "%s{\"port\":%d,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"svc-%d\",\"port\":%d}}",
			      k ? "," : "", 20001 + k, topology_outbound(t, s, k), TOPO_SVC_PORT);
	km_buf_puts(out, "]}}");
}

#endif
