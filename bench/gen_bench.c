/* SPDX-License-Identifier: Apache-2.0 */
/* Generation benchmark: kuma-cp's cp_xds_build for every proxy of the
 * benchmark mesh (bench/topology.h, the same as bench/xds_load.c's), in-process
 * on one thread, with the mesh's share table and each proxy's local memo as
 * the xDS server keeps them. No network, no load generator on the same
 * cores: the cost of generation alone, measured per build with the
 * thread's CPU clock (what xds_generation_seconds counts). -t 2 adds a
 * second thread building from the far end of the order, as the server's
 * loop helps its builder thread during a large pass: what two builds at
 * once cost each other (locks, shared cache lines).
 *
 * A new mesh context per change, through a cache of parsed records as the
 * server keeps it (its build time is reported: "context ms").
 *
 * Phases: the first build of every proxy (as at connect); a Mesh-wide
 * MeshTimeout created, then changed ROUNDS times (every destination's
 * cluster and listener change); a MeshTimeout for the proxies of svc-7
 * (only their outbounds change); one more instance of svc-0, which every
 * proxy calls (its load assignment changes). Proxies are built in the
 * order a pass of the server takes them after a ramped connect (newest
 * stream first); --order name builds them in name order instead.
 *
 *   build/bench/gen_bench [-n N] [-r ROUNDS] [-s ROUNDS] [-t 1|2] [-c] [-i MS] [-m] [-P] [-V] [--order newest|name]
 *
 * -s sets the one-service phase's rounds apart from the Mesh-wide ones (-r):
 * many of them make a profile of the builds that encode.
 *
 * -c starts each pass with cold caches: 64 MiB written between the new
 * context and the first build, as the server's first build after a change
 * follows the request, the store write, the context and other processes'
 * work on the same cores (its end-to-end CPU time: xds_generation_seconds).
 * -i MS idles MS milliseconds there: the server's builder thread sleeps
 * between changes, and a CPU that was idle runs its first microseconds
 * slower (on this VM about 40 µs more for a build, data warm or not).
 * -P times the steps of the one-service phase's first build in each round
 * (cp_xds_build's step_ns; wall clock) and prints each step's p50 and max:
 * with -i, which steps the idle makes slower.
 *
 * -m adds mTLS phases at the end: a Bundled MeshIdentity (ECDSA) selecting
 * every proxy, then the Mesh-wide MeshTimeout changed once more. Each build
 * then also decides its certificate, as the server's build_prepare does
 * (cp_xds_identity_load_deferred), and gets its secrets and mTLS
 * resources; in the first of those phases it signs the certificate right
 * before the build, as the server's builder thread does, and that is not
 * counted (xds_certificate_issue_seconds apart from generation).
 *
 * -V checks every resource filled from a shape (cp/xds/shape.h) against its
 * full encoding, reports any difference and then exits 1 (bench-smoke in
 * `make test` runs it so).
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/mem.h"
#include "codec/jsonf.h"
#include "cp/events.h"
#include "cp/manager.h"
#include "cp/pki/pki.h"
#include "cp/xds/builder.h"
#include "cp/xds/context.h"
#include "cp/xds/identity.h"
#include "cp/xds/share.h"
#include "pb/json.h"
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
	struct cp_xds_blob **block; /* built's arrays, in one exact-size block */
};

/* Keeps <b>'s resources in <p> as the server's snapshot does: the arrays
 * move to one block and the build's arena is freed right away (a bench that
 * kept every arena would grow the heap and fault pages the server does not). */
static void keep(struct proxy *p, const struct cp_xds_built *b)
{
	cp_xds_built_release(&p->built);
	free(p->block);
	size_t total = 0;
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		total += b->n[t];
	p->block = km_malloc((total + 1) * sizeof(*p->block));
	for (int t = 0, k = 0; t < CP_XDS_NTYPES; t++) {
		p->built.res[t] = p->block + k;
		p->built.n[t] = b->n[t];
		if (b->n[t])
			memcpy(p->built.res[t], b->res[t], b->n[t] * sizeof(*p->block));
		k += (int)b->n[t];
	}
}

/* shapes whose fill differed from the encoding, over the run (-V) */
static uint64_t mismatches;

/* the one-service phase's builds that encoded, over its rounds (report()
 * adds them while <collect> is set) */
#define MAX_COLLECTED 256
static uint64_t collected[MAX_COLLECTED];
static size_t ncollected;
static bool collect;

/* -P: the steps of the one-service phase's first build in each round */
static bool profile_steps;
static uint64_t steps[MAX_COLLECTED][CP_XDS_NSTEPS];
static size_t nsteps_rounds;

static void report(const char *phase, uint64_t *ns, uint64_t *enc, size_t n, const struct cp_xds_share_stats *st,
		   double ctx_ms)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += ns[i];
	/* builds that encoded nothing (everything shared or reused) apart */
	uint64_t *hit = km_calloc(n + 1, sizeof(*hit));
	size_t nhit = 0;
	for (size_t i = 0; i < n; i++) {
		if (!enc[i])
			hit[nhit++] = ns[i];
		else if (collect && ncollected < MAX_COLLECTED)
			collected[ncollected++] = ns[i];
	}
	qsort(ns, n, sizeof(*ns), cmp_u64);
	qsort(hit, nhit, sizeof(*hit), cmp_u64);
	printf("| %s | %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %zu | %.1f / %.1f | %.1f | %llu / %llu (%llu) / "
	       "%llu |\n",
	       phase, n, pct(ns, n, 50), pct(ns, n, 90), pct(ns, n, 99), n ? (double)ns[n - 1] / 1000 : 0,
	       n ? (double)sum / (double)n / 1000 : 0, (double)sum / 1e6, n - nhit, pct(hit, nhit, 50),
	       pct(hit, nhit, 99), ctx_ms, (unsigned long long)st->shared, (unsigned long long)st->encoded,
	       (unsigned long long)st->patched, (unsigned long long)st->reused);
	if (st->shape_mismatches)
		printf("\ngen_bench: %s: %llu shapes made other bytes than the encoding\n\n", phase,
		       (unsigned long long)st->shape_mismatches);
	mismatches += st->shape_mismatches;
	fflush(stdout);
	free(hit);
}

/* blocks the last pass's sweep freed (km_heap_settle) */
static size_t settle;

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct pass_state {
	const struct cp_xds_mesh *m;
	struct cp_xds_share *sh;
	struct proxy *px;
	const int *order;
	uint64_t *ns, *enc;
	int front, back; /* next unclaimed from each end (under mu) */
	_Atomic int failed;
	pthread_mutex_t mu; /* total */
	struct cp_xds_share_stats total;
};

/* Claims and builds proxies, from the front or the back of the order,
 * until none is left (each thread of a pass). */
static int claim_next(struct pass_state *ps, bool from_back)
{
	pthread_mutex_lock(&ps->mu);
	int k = ps->front > ps->back ? -1 : from_back ? ps->back-- : ps->front++;
	pthread_mutex_unlock(&ps->mu);
	return k;
}

/* -m: the PKI module's state is the server loop's; two threads of a pass
 * take turns (signing itself runs unlocked, as on the builder thread) */
static pthread_mutex_t pki_mu = PTHREAD_MUTEX_INITIALIZER;

static void *pass_worker_at(struct pass_state *ps, bool from_back)
{
	struct cp_xds_share_stats mine = {0};
	char name[32];
	for (int k; !ps->failed && (k = claim_next(ps, from_back)) >= 0;) {
		int i = ps->order[k];
		struct proxy *p = &ps->px[i];
		snprintf(name, sizeof(name), "dp-%d", i);
		struct km_arena *a = km_arena_new(16384);
		struct cp_xds_metadata md = {0};
		struct cp_xds_built b;
		struct cp_xds_share_stats st = {0};
		if (profile_steps && collect && k == 0 && nsteps_rounds < MAX_COLLECTED)
			st.step_ns = steps[nsteps_rounds++];
		struct km_buf errors = KM_BUF_INIT;
		int64_t c0 = cp_xds_thread_cpu_ns();
		const struct cp_xds_dataplane *dp = cp_xds_mesh_dataplane(ps->m, km_str_c(name));
		struct cp_xds_tls tls;
		struct cp_pki_leaf leaf;
		struct cp_pki_issue *issue = NULL;
		int64_t signing = 0;
		if (dp && rt.pki) {
			/* as the server: the certificate decided (counted), then
			 * signed by the builder (not counted), then the build */
			pthread_mutex_lock(&pki_mu);
			int irc = cp_xds_identity_load_deferred(&rt, a, dp, &tls, &leaf, &issue);
			pthread_mutex_unlock(&pki_mu);
			if (irc == -EINPROGRESS) {
				int64_t s0 = cp_xds_thread_cpu_ns();
				irc = cp_pki_issue_run(issue);
				if (!irc) {
					tls.cert_pem = cp_pki_issue_cert(issue);
					tls.key_pem = cp_pki_issue_key(issue);
					tls.keys_fp = cp_pki_pem_fp(tls.cert_pem, tls.key_pem);
				}
				signing = cp_xds_thread_cpu_ns() - s0;
			}
			if (irc == 0)
				md.tls = &tls;
		}
		if (dp)
			cp_xds_build(a, ps->m, dp, &md, ps->sh, &p->lm, &b, &st, &errors);
		ps->ns[k] = (uint64_t)(cp_xds_thread_cpu_ns() - c0 - signing);
		if (issue) {
			pthread_mutex_lock(&pki_mu);
			cp_pki_issue_finish(rt.pki, issue, a, &leaf);
			pthread_mutex_unlock(&pki_mu);
		}
		if (!dp || errors.len) {
			fprintf(stderr, "gen_bench: %s: %s\n", name, dp ? km_buf_cstr(&errors) : "no Dataplane");
			ps->failed = 1;
			if (dp)
				cp_xds_built_release(&b);
			km_buf_fini(&errors);
			km_arena_free(a);
			break;
		}
		km_buf_fini(&errors);
		ps->enc[k] = st.encoded;
		mine.shared += st.shared;
		mine.encoded += st.encoded;
		mine.reused += st.reused;
		mine.patched += st.patched;
		mine.shape_mismatches += st.shape_mismatches;
		/* the new configuration replaces the proxy's old one */
		keep(p, &b);
		km_arena_free(a);
	}
	pthread_mutex_lock(&ps->mu);
	ps->total.shared += mine.shared;
	ps->total.encoded += mine.encoded;
	ps->total.reused += mine.reused;
	ps->total.patched += mine.patched;
	ps->total.shape_mismatches += mine.shape_mismatches;
	pthread_mutex_unlock(&ps->mu);
	return NULL;
}

static void *pass_thread(void *arg)
{
	km_heap_settle(settle);
	pass_worker_at(arg, true);
	km_json_fmt_thread_fini();
	km_pb_json_thread_fini();
	return NULL;
}

/* Builds every proxy in <order> with a new context through <sh>. With
 * <threads> > 1 the others take proxies from the far end of the order, as
 * the server's loop helps its builder thread (cp/xds/builder.c). */
static bool cold;
static int idle_ms;

static int pass(const char *phase, struct cp_xds_share *sh, struct proxy *px, const int *order, int norder,
		int threads)
{
	double t0 = mono_ms();
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), cache);
	double ctx_ms = mono_ms() - t0;
	if (!m) {
		fprintf(stderr, "gen_bench: no mesh context\n");
		return -1;
	}
	cp_xds_share_next(sh);
	if (idle_ms)
		usleep((useconds_t)idle_ms * 1000);
	if (cold) {
		static volatile unsigned char *evict;
		size_t len = (size_t)64 << 20;
		if (!evict)
			evict = km_malloc(len);
		for (size_t i = 0; i < len; i += 64)
			evict[i] = (unsigned char)(evict[i] + 1);
	}
	struct pass_state ps = {.m = m, .sh = sh, .px = px, .order = order, .back = norder - 1};
	ps.ns = km_calloc((size_t)norder + 1, sizeof(*ps.ns));
	ps.enc = km_calloc((size_t)norder + 1, sizeof(*ps.enc));
	pthread_mutex_init(&ps.mu, NULL);
	pthread_t th;
	bool second = threads > 1 && pthread_create(&th, NULL, pass_thread, &ps) == 0;
	pass_worker_at(&ps, false);
	if (second)
		pthread_join(th, NULL);
	pthread_mutex_destroy(&ps.mu);
	if (!ps.failed)
		report(phase, ps.ns, ps.enc, (size_t)norder, &ps.total, ctx_ms);
	free(ps.ns);
	free(ps.enc);
	cp_xds_mesh_free(m);
	/* idle after the pass, as the server: what no proxy holds any more
	 * goes, and the heaps settle it (the second thread's when it starts
	 * the next pass, before it builds) */
	settle = 3 * cp_xds_share_sweep(sh);
	km_heap_settle(settle);
	return ps.failed ? -1 : 0;
}

/* -m: a Bundled MeshIdentity selecting every proxy (each build signs its
 * certificate first, not counted), then one more Mesh-wide MeshTimeout
 * change under mTLS. */
static int mtls_phases(struct km_arena *a, struct cp_events *bus, struct cp_xds_share *sh, struct proxy *px,
		       const int *order, int n, int rounds, int threads)
{
	cp_events_attach(bus, rt.store);
	rt.pki = cp_pki_start(&rt, bus);
	cp_pki_set_autogen_key(rt.pki, CP_PKI_KEY_EC_P256);
	cp_pki_set_active(rt.pki, true);
	int rc = put(a, "MeshIdentity", "bench-identity", NULL,
		     "{\"selector\":{\"dataplane\":{\"matchLabels\":{}}},\"provider\":{\"type\":\"Bundled\","
		     "\"bundled\":{\"meshTrustCreation\":\"Enabled\",\"insecureAllowSelfSigned\":true,"
		     "\"autogenerate\":{\"enabled\":true}}}}");
	if (rc)
		return rc;
	cp_pki_reconcile_all(rt.pki);
	rc = rc ? rc : pass("MeshIdentity created (mTLS)", sh, px, order, n, threads);
	rc = rc ? rc : put_timeout(a, rounds + 1);
	return rc ? rc : pass("MeshTimeout changed (mTLS)", sh, px, order, n, threads);
}

int main(int argc, char **argv)
{
	int n = 10000, rounds = 5, one_rounds = -1, threads = 1;
	bool by_name = false, verify = false;
	static const struct option opts[] = {{"order", 1, NULL, 'o'}, {0, 0, 0, 0}};
	bool mtls = false;
	for (int c; (c = getopt_long(argc, argv, "n:r:s:t:ci:mPV", opts, NULL)) != -1;) {
		switch (c) {
		case 'n': n = (int)strtol(optarg, NULL, 10); break;
		case 't': threads = (int)strtol(optarg, NULL, 10); break;
		case 'r': rounds = (int)strtol(optarg, NULL, 10); break;
		case 's': one_rounds = (int)strtol(optarg, NULL, 10); break;
		case 'o': by_name = strcmp(optarg, "name") == 0; break;
		case 'V': verify = true; break;
		case 'c': cold = true; break;
		case 'i': idle_ms = (int)strtol(optarg, NULL, 10); break;
		case 'm': mtls = true; break;
		case 'P': profile_steps = true; break;
		default:
			fprintf(stderr, "usage: gen_bench [-n N] [-r ROUNDS] [-s ROUNDS] [-t 1|2] [-c] [-i MS] [-m] [-P] [-V] "
					"[--order newest|name]\n");
			return 2;
		}
	}
	if (one_rounds < 0)
		one_rounds = rounds;
	if (n < 2 || rounds < 1 || one_rounds < 1 || threads < 1 || threads > 2) {
		fprintf(stderr, "gen_bench: N >= 2, ROUNDS >= 1 and 1 or 2 threads\n");
		return 2;
	}
	/* the heap kept as kuma-cp run keeps it (cp/main.c) */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
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
	cp_xds_share_verify_shapes(sh, verify);
	printf("gen_bench: %d dataplanes, %d services, %d outbounds each, %d thread%s, order %s\n\n", n, topo.nsvc,
	       topology_nout(&topo), threads, threads > 1 ? "s" : "", by_name ? "name" : "newest first");
	printf("| phase | builds | p50 µs | p90 µs | p99 µs | max µs | mean µs | total ms | builds that encoded | "
	       "p50 / p99 µs of the others | context ms | shared / encoded (from shapes) / reused |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	rc = pass("first build (connect)", sh, px, order, n, threads);
	for (int r = 0; r <= rounds && !rc; r++) {
		char phase[64];
		snprintf(phase, sizeof(phase), r ? "MeshTimeout changed (%d)" : "Mesh-wide MeshTimeout created", r);
		rc = put_timeout(a, r);
		rc = rc ? rc : pass(phase, sh, px, order, n, threads);
	}
	/* as bench/xds_load.c's one-service phase: svc-7's 2-4 proxies, with a
	 * new conf each round (the first of them encodes its outbounds again).
	 * The server regenerates only the proxies a change can affect
	 * (cp/xds/server.c: the policy selects svc-7's proxies), so the pass
	 * builds those alone, right after the new context, as the server does */
	int *svc7 = km_calloc((size_t)n + 1, sizeof(*svc7));
	int nsvc7 = 0;
	for (int k = 0; k < n; k++)
		if (topo.svc_of[order[k]] == 7)
			svc7[nsvc7++] = order[k];
	collect = true;
	for (int r = 0; r <= one_rounds && !rc; r++) {
		char spec[512], phase[64];
		snprintf(spec, sizeof(spec),
			 "{\"targetRef\":{\"kind\":\"Dataplane\",\"labels\":{\"kuma.io/workload\":\"svc-7\"}},"
			 "\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{\"connectionTimeout\":\"%ds\"}}]}",
			 3 + r);
		snprintf(phase, sizeof(phase), r ? "MeshTimeout for svc-7's proxies changed (%d)" : "MeshTimeout for svc-7's proxies", r);
		rc = put(a, "MeshTimeout", "bench-timeout-svc-7", NULL, spec);
		rc = rc ? rc : pass(phase, sh, px, svc7, nsvc7, threads);
	}
	collect = false;
	free(svc7);
	if (!rc) {
		snprintf(name, sizeof(name), "dp-%d", n);
		rc = put_dataplane(a, name, n, 0);
		rc = rc ? rc : pass("+1 instance of svc-0 (EDS to all)", sh, px, order, n, threads);
	}
	struct cp_events bus = {0};
	if (!rc && mtls)
		rc = mtls_phases(a, &bus, sh, px, order, n, rounds, threads);
	if (!rc && ncollected) {
		qsort(collected, ncollected, sizeof(*collected), cmp_u64);
		printf("\nThe one-service phase's builds that encoded (%zu, one per round): p50 %.1f µs, max %.1f µs\n",
		       ncollected, pct(collected, ncollected, 50), (double)collected[ncollected - 1] / 1000);
	}
	if (!rc && nsteps_rounds) {
		static const char *const names[CP_XDS_NSTEPS] = {"rules",     "fingerprint", "local", "keys",
								  "take",      "make",	      "listeners", "put"};
		printf("\nThe one-service phase's first build by step (%zu rounds, wall clock), µs p50 / max:",
		       nsteps_rounds);
		for (int k = 0; k < CP_XDS_NSTEPS; k++) {
			uint64_t per[MAX_COLLECTED];
			for (size_t r = 0; r < nsteps_rounds; r++)
				per[r] = steps[r][k];
			qsort(per, nsteps_rounds, sizeof(*per), cmp_u64);
			printf("%s %s %.1f / %.1f", k ? "," : "", names[k], pct(per, nsteps_rounds, 50),
			       (double)per[nsteps_rounds - 1] / 1000);
		}
		printf("\n");
	}
	if (!rc && verify && mismatches) {
		fprintf(stderr, "gen_bench: %llu shapes made other bytes than the encoding\n",
			(unsigned long long)mismatches);
		rc = 1;
	}
	for (int i = 0; i < n; i++) {
		cp_xds_built_release(&px[i].built);
		free(px[i].block);
		cp_xds_local_memo_fini(&px[i].lm);
	}
	free(px);
	free(order);
	cp_xds_share_free(sh);
	cp_xds_cache_free(cache);
	if (rt.pki)
		cp_pki_stop(rt.pki);
	topology_free(&topo);
	km_arena_free(a);
	cp_store_free(rt.store);
	cp_config_fini(&cfg);
	return rc ? 1 : 0;
}
