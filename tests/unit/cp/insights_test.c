/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the MeshInsight resyncer (cp/insights.c) on the memory store:
 * counts follow Dataplane and DataplaneInsight writes, including the
 * insight-only writes it may skip (ACK counters) and the ones it must not
 * (a proxy going offline, a new version). */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "../xds/store_util.h"
#include "cp/insights.h"
#include "cp/memo.h"
#include "ev/loop.h"

static struct cp_config cfg;
static struct cp_runtime rt;

/* Writes dp-1's DataplaneInsight: one subscription, online or not, with
 * <acks> ACKs and Envoy <envoy>. */
static void put_insight(struct km_arena *a, bool online, int acks, const char *envoy)
{
	char spec[512];
	snprintf(spec, sizeof(spec),
		 "{\"subscriptions\":[{\"id\":\"s1\",\"controlPlaneInstanceId\":\"cp\","
		 "\"connectTime\":\"2026-11-28T00:00:00Z\"%s,\"status\":{\"total\":{\"responsesAcknowledged\":\"%d\"}},"
		 "\"version\":{\"kumaDp\":{\"version\":\"3.0.0\"},\"envoy\":{\"version\":\"%s\"}}}]}",
		 online ? "" : ",\"disconnectTime\":\"2026-11-28T00:01:00Z\"", acks, envoy);
	const struct km_rtype *t = km_rtype_by_name(KM_STR("DataplaneInsight"));
	struct km_resource_doc d = {.type = t, .mesh = KM_STR("default"), .name = KM_STR("dp-1"), .spec = js(a, spec)};
	struct km_resource r, cur;
	km_resource_from_doc(a, &d, &r);
	if (cp_store_get(rt.store, a, t, KM_STR("default"), KM_STR("dp-1"), &cur) == 0) {
		r.version = cur.version;
		CHECK(cp_store_update(rt.store, &r) == 0);
	} else {
		CHECK(cp_store_create(rt.store, &r) == 0);
	}
}

/* MeshInsight default's spec, NULL when there is none. */
static struct km_json *insight_spec(struct km_arena *a)
{
	struct km_resource r;
	if (cp_store_get(rt.store, a, km_rtype_by_name(KM_STR("MeshInsight")), KM_STR(""), KM_STR("default"), &r))
		return NULL;
	struct km_json *spec = NULL;
	km_json_parse(a, r.spec.ptr, r.spec.len, &spec, NULL);
	return spec ? spec : km_json_object(a);
}

/* MeshInsight default's spec.dataplanes.<field>, -1 when there is none. */
static int64_t count(struct km_arena *a, const char *field)
{
	struct km_json *spec = insight_spec(a);
	if (!spec)
		return -1;
	struct km_json *v = km_json_get(km_json_get(spec, "dataplanes"), field);
	return v ? km_json_i64_sat(v) : 0;
}

/* MeshInsight default's spec.resources.<type>.total, 0 when absent (-1
 * when there is no MeshInsight). */
static int64_t resources(struct km_arena *a, const char *type)
{
	struct km_json *spec = insight_spec(a);
	if (!spec)
		return -1;
	struct km_json *v = km_json_get(km_json_get(km_json_get(spec, "resources"), type), "total");
	return v ? km_json_i64_sat(v) : 0;
}

/* the memory store with its count calls counted */
static const struct cp_store_ops *real_ops;
static int counts;

static size_t counted_count(struct cp_store *s, const struct km_rtype *t, struct km_str mesh)
{
	counts++;
	return real_ops->count(s, t, mesh);
}

static bool envoy_version_counted(struct km_arena *a, const char *version)
{
	struct km_resource r;
	if (cp_store_get(rt.store, a, km_rtype_by_name(KM_STR("MeshInsight")), KM_STR(""), KM_STR("default"), &r))
		return false;
	struct km_json *spec = NULL;
	km_json_parse(a, r.spec.ptr, r.spec.len, &spec, NULL);
	return km_json_get(km_json_get(km_json_get(spec, "dpVersions"), "envoy"), version) != NULL;
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	store_setup(&rt, &cfg, a);
	rt.loop = km_loop_new();
	struct cp_events bus = {0};
	cp_events_attach(&bus, rt.store);
	struct cp_insights *ins = cp_insights_start(&rt, &bus, 0);
	cp_insights_set_active(ins, true);

	store_put(&rt, a, "Dataplane", "dp-1", NULL,
		  "{\"networking\":{\"address\":\"10.0.0.1\",\"inbound\":[{\"port\":8080,"
		  "\"tags\":{\"kuma.io/service\":\"web\"}}]}}");
	cp_insights_flush(ins);
	CHECK(count(a, "total") == 1);
	CHECK(count(a, "offline") == 1);

	/* insight-only writes from here on */
	put_insight(a, true, 1, "1.40.0");
	cp_insights_flush(ins);
	CHECK(count(a, "online") == 1);
	CHECK(count(a, "offline") == 0);
	CHECK(envoy_version_counted(a, "1.40.0"));

	put_insight(a, true, 2, "1.40.0"); /* ACK counters: same counts */
	cp_insights_flush(ins);
	CHECK(count(a, "online") == 1);

	put_insight(a, true, 3, "1.41.0"); /* a new Envoy version must show */
	cp_insights_flush(ins);
	CHECK(envoy_version_counted(a, "1.41.0"));
	CHECK(!envoy_version_counted(a, "1.40.0"));

	put_insight(a, false, 3, "1.41.0"); /* going offline must show */
	cp_insights_flush(ins);
	CHECK(count(a, "online") == 0);
	CHECK(count(a, "offline") == 1);

	put_insight(a, true, 4, "1.41.0");
	cp_insights_flush(ins);
	CHECK(count(a, "online") == 1);

	/* a deleted MeshInsight comes back without waiting for another write */
	CHECK(cp_store_remove(rt.store, km_rtype_by_name(KM_STR("MeshInsight")), KM_STR(""), KM_STR("default"), 0) ==
	      0);
	CHECK(count(a, "online") == -1);
	cp_insights_flush(ins);
	CHECK(count(a, "online") == 1);

	/* a write its writer declared same (the xDS server's ACK counters,
	 * cp_memo_same): no pass at all; the next one that is not, a pass */
	uint64_t passes0, passes1;
	double secs;
	cp_insights_stats(ins, &passes0, &secs);
	cp_memo_same(cp_insights_memo(ins), KM_STR("default"), KM_STR("dp-1"));
	put_insight(a, true, 5, "1.41.0");
	cp_insights_flush(ins);
	cp_insights_stats(ins, &passes1, &secs);
	CHECK(passes1 == passes0);
	put_insight(a, false, 6, "1.41.0");
	cp_insights_flush(ins);
	cp_insights_stats(ins, &passes1, &secs);
	CHECK(passes1 == passes0 + 1);
	CHECK(count(a, "offline") == 1);

	/* resources are counted again only after a create or delete: not
	 * for insight writes, nor for updates */
	CHECK(resources(a, "Dataplane") == 1);
	real_ops = rt.store->ops;
	struct cp_store_ops counting = *real_ops;
	counting.count = counted_count;
	rt.store->ops = &counting;
	put_insight(a, true, 7, "1.41.0");
	cp_insights_flush(ins);
	CHECK(count(a, "online") == 1);
	CHECK(counts == 0);
	store_put(&rt, a, "Dataplane", "dp-1", NULL,
		  "{\"networking\":{\"address\":\"10.0.0.9\",\"inbound\":[{\"port\":8080,"
		  "\"tags\":{\"kuma.io/service\":\"web\"}}]}}");
	cp_insights_flush(ins);
	CHECK(counts == 0);
	store_put(&rt, a, "Dataplane", "dp-2", NULL,
		  "{\"networking\":{\"address\":\"10.0.0.2\",\"inbound\":[{\"port\":8080,"
		  "\"tags\":{\"kuma.io/service\":\"web\"}}]}}");
	cp_insights_flush(ins);
	CHECK(counts > 0);
	CHECK(resources(a, "Dataplane") == 2);
	CHECK(cp_store_remove(rt.store, km_rtype_by_name(KM_STR("Dataplane")), KM_STR("default"), KM_STR("dp-2"), 0) ==
	      0);
	cp_insights_flush(ins);
	CHECK(resources(a, "Dataplane") == 1);
	store_put(&rt, a, "MeshTimeout", "t-1", NULL,
		  "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
		  "\"default\":{\"connectionTimeout\":\"3s\"}}]}");
	cp_insights_flush(ins);
	CHECK(resources(a, "MeshTimeout") >= 1);
	int64_t timeouts = resources(a, "MeshTimeout");
	/* a delete: counted again */
	counts = 0;
	cp_store_remove(rt.store, km_rtype_by_name(KM_STR("MeshTimeout")), KM_STR("default"), KM_STR("t-1"), 0);
	cp_insights_flush(ins);
	CHECK(counts > 0 && resources(a, "MeshTimeout") == timeouts - 1);
	rt.store->ops = real_ops;

	cp_insights_stop(ins);
	km_loop_free(rt.loop);
	cp_store_free(rt.store);
	cp_config_fini(&cfg);
	km_arena_free(a);
	return test_summary();
}
