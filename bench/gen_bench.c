/* SPDX-License-Identifier: Apache-2.0 */
/* Generation benchmark: kuma-cp's cp_xds_build for every proxy of the
 * benchmark mesh (bench/topology.h, the same as bench/xds_load.c's), in-process
 * on one thread, with the mesh's share table and each proxy's local memo as
 * the xDS server keeps them. No network, no second thread, no load
 * generator on the same cores: the cost of generation alone, measured per
 * build with the thread's CPU clock (what xds_generation_seconds counts).
 *
 * A new mesh context per change, through a cache of parsed records as the
 * server keeps it (its build time is reported: "context ms").
 *
 * Phases: the first build of every proxy (as at connect); a Mesh-wide
 * MeshTimeout created, then changed ROUNDS times (every destination's
 * cluster and listener change); one more instance of svc-0, which every
 * proxy calls (its load assignment changes). Proxies are built in the
 * order a pass of the server takes them after a ramped connect (newest
 * stream first); --order name builds them in name order instead.
 *
 *   build/bench/gen_bench [-n N] [-r ROUNDS] [--order newest|name]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "cp/manager.h"
#include "cp/xds/builder.h"
#include "cp/xds/context.h"
#include "cp/xds/share.h"
#include "stats.h"
#include "topology.h"

static struct cp_runtime rt;
static struct topology topo;
/* the parsed Dataplanes and MeshServices kept across contexts, as the
 * server keeps them: a write marks its record stale (the server's change
 * events do that) */
static struct cp_xds_cache *cache;

static int put(struct km_arena *a, const char *type, const char *name, const char *labels, const char *spec)
{
	const struct km_rtype *t = km_rtype_by_name(km_str_c(type));
	struct km_json *lj = NULL, *sj = NULL;
	if ((labels && km_json_parse(a, labels, strlen(labels), &lj, NULL)) ||
	    km_json_parse(a, spec, strlen(spec), &sj, NULL)) {
		fprintf(stderr, "gen_bench: bad JSON for %s %s\n", type, name);
		return -1;
	}
	struct km_resource_doc d = {.type = t, .mesh = KM_STR("default"), .name = km_str_c(name), .labels = lj,
				    .spec = sj};
	struct km_violations v;
	km_violations_init(&v, a);
	struct km_resource cur;
	int rc = cp_store_get(rt.store, a, t, KM_STR("default"), km_str_c(name), &cur) == 0 ?
			 cp_manager_update(&rt, a, &cur, &d, &v) :
			 cp_manager_create(&rt, a, &d, &v);
	for (size_t i = 0; i < v.len; i++)
		fprintf(stderr, "gen_bench: %s %s: %s: %s\n", type, name, v.items[i].field, v.items[i].message);
	cp_xds_cache_stale(cache, t, km_str_c(name));
	return rc;
}

static int put_dataplane(struct km_arena *a, const char *name, int i, int s)
{
	char labels[64];
	snprintf(labels, sizeof(labels), "{\"kuma.io/workload\":\"svc-%d\"}", s);
	struct km_buf spec = KM_BUF_INIT;
	topology_dataplane_spec(&topo, &spec, i, s, "http");
	int rc = put(a, "Dataplane", name, labels, km_buf_cstr(&spec));
	km_buf_fini(&spec);
	return rc;
}

/* The MeshService kuma-cp's generator makes of a workload (cp/workloads.c). */
static int put_service(struct km_arena *a, int s)
{
	char name[32], spec[512];
	snprintf(name, sizeof(name), "svc-%d", s);
	snprintf(spec, sizeof(spec),
		 "{\"state\":\"Available\",\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"kuma.io/workload\":"
		 "\"%s\"}}},\"ports\":[{\"port\":%d,\"targetPort\":%d,\"appProtocol\":\"http\"}]}",
		 name, TOPO_SVC_PORT, TOPO_SVC_PORT);
	return put(a, "MeshService", name, "{\"kuma.io/managed-by\":\"meshservice-generator\"}", spec);
}

static int put_timeout(struct km_arena *a, int round)
{
	char spec[512];
	snprintf(spec, sizeof(spec),
		 "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":"
		 "{\"connectionTimeout\":\"%ds\",\"idleTimeout\":\"1800s\"}}]}",
		 7 + round);
	return put(a, "MeshTimeout", "bench-timeout", NULL, spec);
}

struct proxy {
	struct cp_xds_local_memo lm;
	struct cp_xds_built built; /* its current configuration (the server's snapshot) */
	struct km_arena *a;        /* built's arrays */
};

static void report(const char *phase, uint64_t *ns, uint64_t *enc, size_t n, const struct cp_xds_share_stats *st,
		   double ctx_ms)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += ns[i];
	/* builds that encoded nothing (everything shared or reused) apart */
	uint64_t *hit = km_calloc(n + 1, sizeof(*hit));
	size_t nhit = 0;
	for (size_t i = 0; i < n; i++)
		if (!enc[i])
			hit[nhit++] = ns[i];
	qsort(ns, n, sizeof(*ns), cmp_u64);
	qsort(hit, nhit, sizeof(*hit), cmp_u64);
	printf("| %s | %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %zu | %.1f / %.1f | %.1f | %llu / %llu / %llu |\n",
	       phase, n, pct(ns, n, 50), pct(ns, n, 90), pct(ns, n, 99), n ? (double)ns[n - 1] / 1000 : 0,
	       n ? (double)sum / (double)n / 1000 : 0, (double)sum / 1e6, n - nhit, pct(hit, nhit, 50),
	       pct(hit, nhit, 99), ctx_ms, (unsigned long long)st->shared, (unsigned long long)st->encoded,
	       (unsigned long long)st->reused);
	fflush(stdout);
	free(hit);
}

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Builds every proxy in <order> with a new context through <sh>. */
static int pass(const char *phase, struct cp_xds_share *sh, struct proxy *px, const int *order)
{
	double t0 = mono_ms();
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), cache);
	double ctx_ms = mono_ms() - t0;
	if (!m) {
		fprintf(stderr, "gen_bench: no mesh context\n");
		return -1;
	}
	cp_xds_share_next(sh);
	uint64_t *ns = km_calloc((size_t)topo.n + 1, sizeof(*ns));
	uint64_t *enc = km_calloc((size_t)topo.n + 1, sizeof(*enc));
	struct cp_xds_share_stats total = {0};
	char name[32];
	for (int k = 0; k < topo.n; k++) {
		int i = order[k];
		struct proxy *p = &px[i];
		snprintf(name, sizeof(name), "dp-%d", i);
		struct km_arena *a = km_arena_new(16384);
		struct cp_xds_metadata md = {0};
		struct cp_xds_built b;
		struct cp_xds_share_stats st = {0};
		struct km_buf errors = KM_BUF_INIT;
		int64_t c0 = cp_xds_thread_cpu_ns();
		const struct cp_xds_dataplane *dp = cp_xds_mesh_dataplane(m, km_str_c(name));
		if (dp)
			cp_xds_build(a, m, dp, &md, sh, &p->lm, &b, &st, &errors);
		ns[k] = (uint64_t)(cp_xds_thread_cpu_ns() - c0);
		if (!dp || errors.len) {
			fprintf(stderr, "gen_bench: %s: %s\n", name, dp ? km_buf_cstr(&errors) : "no Dataplane");
			km_buf_fini(&errors);
			km_arena_free(a);
			free(ns);
			free(enc);
			cp_xds_mesh_free(m);
			return -1;
		}
		km_buf_fini(&errors);
		enc[k] = st.encoded;
		total.shared += st.shared;
		total.encoded += st.encoded;
		total.reused += st.reused;
		/* the new configuration replaces the proxy's old one */
		cp_xds_built_release(&p->built);
		km_arena_free(p->a);
		p->built = b;
		p->a = a;
	}
	report(phase, ns, enc, (size_t)topo.n, &total, ctx_ms);
	free(ns);
	free(enc);
	cp_xds_mesh_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 10000, rounds = 5;
	bool by_name = false;
	static const struct option opts[] = {{"order", 1, NULL, 'o'}, {0, 0, 0, 0}};
	for (int c; (c = getopt_long(argc, argv, "n:r:", opts, NULL)) != -1;) {
		switch (c) {
		case 'n': n = (int)strtol(optarg, NULL, 10); break;
		case 'r': rounds = (int)strtol(optarg, NULL, 10); break;
		case 'o': by_name = strcmp(optarg, "name") == 0; break;
		default:
			fprintf(stderr, "usage: gen_bench [-n N] [-r ROUNDS] [--order newest|name]\n");
			return 2;
		}
	}
	if (n < 2 || rounds < 1) {
		fprintf(stderr, "gen_bench: N >= 2 and ROUNDS >= 1\n");
		return 2;
	}
	struct cp_config cfg;
	cp_config_init_defaults(&cfg);
	rt.store = cp_store_memory_new();
	rt.cfg = &cfg;
	cache = cp_xds_cache_new();
	struct km_arena *a = km_arena_new(0);
	topology_build(&topo, n);
	int rc = 0;
	struct km_resource_doc mesh = {.type = km_rtype_by_name(KM_STR("Mesh")), .name = KM_STR("default")};
	km_json_parse(a, "{}", 2, &mesh.spec, NULL);
	struct km_violations v;
	km_violations_init(&v, a);
	rc = cp_manager_create(&rt, a, &mesh, &v);
	if (!rc)
		rc = cp_defaults_mesh(&rt, a, KM_STR("default"), mesh.spec);
	char name[32];
	for (int i = 0; i < n && !rc; i++) {
		snprintf(name, sizeof(name), "dp-%d", i);
		rc = put_dataplane(a, name, i, topo.svc_of[i]);
	}
	for (int s = 0; s < topo.nsvc && !rc; s++)
		rc = put_service(a, s);
	if (rc) {
		fprintf(stderr, "gen_bench: setup failed: %s\n", km_strerror(rc));
		return 1;
	}
	/* a pass's order: the server's stream list holds the newest first */
	int *order = km_calloc((size_t)n + 1, sizeof(*order));
	for (int k = 0; k < n; k++)
		order[k] = n - 1 - k;
	if (by_name) {
		/* the context's order: by name, as strings */
		struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
		for (size_t k = 0; m && k < m->ndataplanes; k++)
			order[k] = (int)strtol(m->dataplanes[k].res.name.ptr + 3, NULL, 10);
		cp_xds_mesh_free(m);
	}
	struct proxy *px = km_calloc((size_t)n + 1, sizeof(*px));
	struct cp_xds_share *sh = cp_xds_share_new();
	printf("gen_bench: %d dataplanes, %d services, %d outbounds each, one thread, order %s\n\n", n, topo.nsvc,
	       topology_nout(&topo), by_name ? "name" : "newest first");
	printf("| phase | builds | p50 µs | p90 µs | p99 µs | max µs | mean µs | total ms | builds that encoded | "
	       "p50 / p99 µs of the others | context ms | shared / encoded / reused |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	rc = pass("first build (connect)", sh, px, order);
	for (int r = 0; r <= rounds && !rc; r++) {
		char phase[64];
		snprintf(phase, sizeof(phase), r ? "MeshTimeout changed (%d)" : "Mesh-wide MeshTimeout created", r);
		rc = put_timeout(a, r);
		rc = rc ? rc : pass(phase, sh, px, order);
	}
	if (!rc) {
		snprintf(name, sizeof(name), "dp-%d", n);
		rc = put_dataplane(a, name, n, 0);
		rc = rc ? rc : pass("+1 instance of svc-0 (EDS to all)", sh, px, order);
	}
	for (int i = 0; i < n; i++) {
		cp_xds_built_release(&px[i].built);
		km_arena_free(px[i].a);
		cp_xds_local_memo_fini(&px[i].lm);
	}
	free(px);
	free(order);
	cp_xds_share_free(sh);
	cp_xds_cache_free(cache);
	topology_free(&topo);
	km_arena_free(a);
	cp_store_free(rt.store);
	cp_config_fini(&cfg);
	return rc ? 1 : 0;
}
