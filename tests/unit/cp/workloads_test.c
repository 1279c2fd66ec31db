/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the MeshService/Workload generator (cp/workloads.c) on the
 * memory store, through its timer on a real loop: a pass after a write
 * reconciles only the workloads the write touched (a Dataplane's before
 * and after, an insight's Dataplane's, a MeshService or Workload by name),
 * and what it writes is what a pass over everything writes. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "../xds/store_util.h"
#include "cp/workloads.h"
#include "ev/loop.h"

static struct cp_config cfg;
static struct cp_runtime rt;
static struct cp_workloads *gen;

static void stop(struct km_loop *loop, void *ctx)
{
	km_loop_stop(loop);
}

/* Runs the loop long enough for the pass a write asked for (its timer
 * waits 20 ms at least). */
static void settle(void)
{
	struct km_timer t = {0};
	km_loop_timer_start(rt.loop, &t, 150, stop, NULL);
	km_loop_run(rt.loop);
}

static void put_dp(struct km_arena *a, const char *name, const char *workload, const char *protocol)
{
	char labels[128], spec[512];
	snprintf(labels, sizeof(labels), "{\"kuma.io/workload\":\"%s\"}", workload);
	snprintf(spec, sizeof(spec),
		 "{\"networking\":{\"address\":\"10.0.0.1\",\"inbound\":[{\"port\":8080,\"protocol\":\"%s\","
		 "\"tags\":{\"kuma.io/service\":\"%s\"}}]}}",
		 protocol, workload);
	store_put(&rt, a, "Dataplane", name, labels, spec);
}

/* MeshService <name>'s version and a field of it (NULL: none). */
static struct km_json *service(struct km_arena *a, const char *name, uint64_t *version)
{
	struct km_resource r;
	if (cp_store_get(rt.store, a, km_rtype_by_name(KM_STR("MeshService")), KM_STR("default"), km_str_c(name),
			 &r))
		return NULL;
	if (version)
		*version = r.version;
	struct km_json *spec = NULL, *labels = NULL;
	km_json_parse(a, r.spec.ptr, r.spec.len, &spec, NULL);
	km_json_parse(a, r.labels.ptr, r.labels.len, &labels, NULL);
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "spec", spec);
	if (labels)
		km_json_set(a, o, "labels", labels);
	return o;
}

static const char *protocol_of(struct km_json *svc)
{
	struct km_json *ports = km_json_get(km_json_get(svc, "spec"), "ports");
	if (!ports || ports->kind != KM_JSON_ARRAY || !ports->len)
		return "";
	struct km_str p = km_json_get_string(ports->items[0], "appProtocol");
	static char buf[32];
	snprintf(buf, sizeof(buf), "%.*s", KM_STR_FMT(p));
	return buf;
}

static uint64_t reconciled(void)
{
	struct cp_workloads_stats st;
	cp_workloads_stats(gen, &st);
	return st.workloads;
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	store_setup(&rt, &cfg, a);
	rt.side_effects = true;
	rt.loop = km_loop_new();
	struct cp_events bus = {0};
	cp_events_attach(&bus, rt.store);
	gen = cp_workloads_start(&rt, &bus, 60000000000LL);

	put_dp(a, "a-1", "alpha", "http");
	put_dp(a, "a-2", "alpha", "http");
	put_dp(a, "b-1", "beta", "http");
	put_dp(a, "c-1", "gamma", "tcp");
	cp_workloads_set_active(gen, true); /* a full pass */
	settle();
	uint64_t va = 0, vb = 0, vg = 0;
	CHECK(service(a, "alpha", &va) && service(a, "beta", &vb) && service(a, "gamma", &vg));
	CHECK(strcmp(protocol_of(service(a, "gamma", NULL)), "tcp") == 0);
	uint64_t full = reconciled();
	CHECK(full >= 3);

	/* beta's protocol: beta alone is looked at, and rewritten */
	put_dp(a, "b-1", "beta", "tcp");
	settle();
	uint64_t v2;
	struct km_json *b = service(a, "beta", &v2);
	CHECK(b && strcmp(protocol_of(b), "tcp") == 0 && v2 != vb);
	CHECK(service(a, "alpha", &v2) && v2 == va);
	/* the pass for the write, then the one for its own MeshService and
	 * Workload events (which finds them as it wrote them): beta each time */
	CHECK(reconciled() - full <= 2);
	CHECK(reconciled() - full >= 1);

	/* a-2 moves from alpha to gamma: both are looked at (alpha through
	 * the Dataplane's workload before the write) */
	uint64_t before = reconciled();
	put_dp(a, "a-2", "gamma", "tcp");
	settle();
	CHECK(reconciled() - before >= 2);
	CHECK(service(a, "alpha", &v2) && v2 != va); /* one Dataplane now */
	struct km_json *g = service(a, "gamma", &v2);
	CHECK(g && v2 != vg);

	/* a generated MeshService deleted by hand comes back: its own event
	 * names it */
	CHECK(cp_store_remove(rt.store, km_rtype_by_name(KM_STR("MeshService")), KM_STR("default"), KM_STR("beta"),
			      0) == 0);
	settle();
	CHECK(service(a, "beta", NULL) != NULL);

	/* beta's last Dataplane goes: its MeshService starts a grace period */
	CHECK(cp_store_remove(rt.store, km_rtype_by_name(KM_STR("Dataplane")), KM_STR("default"), KM_STR("b-1"), 0) ==
	      0);
	settle();
	struct km_json *gone = service(a, "beta", NULL);
	CHECK(gone && km_json_get(km_json_get(gone, "labels"), "kuma.io/deletion-grace-period-started-at"));

	/* what the selective passes left is what a full pass computes: one
	 * over everything writes nothing */
	uint64_t alpha_v, gamma_v;
	CHECK(service(a, "alpha", &alpha_v) && service(a, "gamma", &gamma_v));
	cp_workloads_set_active(gen, false);
	cp_workloads_set_active(gen, true);
	settle();
	CHECK(service(a, "alpha", &v2) && v2 == alpha_v);
	CHECK(service(a, "gamma", &v2) && v2 == gamma_v);

	cp_workloads_stop(gen);
	km_loop_free(rt.loop);
	km_arena_free(a);
	cp_store_free(rt.store);
	cp_config_fini(&cfg);
	return test_summary();
}
