/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the mesh context and its cache (cp/xds/context.c) on the memory
 * store: after any sequence of writes, with change events reaching the cache
 * as the xDS server forwards them, a context built through the cache equals
 * one built from scratch (Dataplanes, MeshServices, endpoints and every
 * fingerprint); untouched records are shared between builds; fingerprints
 * move exactly when what they cover moves. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "store_util.h"
#include "base/err.h"
#include "cp/manager.h"
#include "cp/policy/policy.h"
#include "cp/xds/context.h"
#include "cp/xds/generate.h"

static struct cp_config cfg;
static struct cp_runtime rt;
static struct cp_xds_cache *cache;
static size_t events;

static void on_change(void *ctx, enum cp_store_op op, const struct km_rtype *t, struct km_str mesh,
		      struct km_str name)
{
	events++;
	if (op == CP_STORE_RESYNC || !t)
		cp_xds_cache_reset(cache);
	else
		cp_xds_cache_stale(cache, t, name);
}

static void put(struct km_arena *a, const char *type, const char *name, const char *labels, const char *spec)
{
	store_put(&rt, a, type, name, labels, spec);
}

static void del(const char *type, const char *name)
{
	CHECK(cp_store_remove(rt.store, km_rtype_by_name(km_str_c(type)), KM_STR("default"), km_str_c(name), 0) ==
	      0);
}

static void put_dp(struct km_arena *a, const char *name, const char *svc, const char *addr, int port)
{
	char labels[128], spec[512];
	snprintf(labels, sizeof(labels), "{\"app\":\"%s\"}", svc);
	snprintf(spec, sizeof(spec),
		 "{\"networking\":{\"address\":\"%s\",\"inbound\":[{\"port\":%d,"
		 "\"tags\":{\"kuma.io/service\":\"%s\"}}]}}",
		 addr, port, svc);
	put(a, "Dataplane", name, labels, spec);
}

static void put_svc(struct km_arena *a, const char *name, int port, const char *proto)
{
	char spec[256];
	snprintf(spec, sizeof(spec),
		 "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"app\":\"%s\"}}},"
		 "\"ports\":[{\"port\":%d,\"targetPort\":%d,\"appProtocol\":\"%s\"}]}",
		 name, port, port, proto);
	put(a, "MeshService", name, NULL, spec);
}

/* The cached build equals a build from scratch. */
static void check_same(const struct cp_xds_mesh *x, const struct cp_xds_mesh *y)
{
	CHECK(x->ndataplanes == y->ndataplanes);
	CHECK(x->nservices == y->nservices);
	CHECK(x->fp_rest == y->fp_rest);
	CHECK(x->npolicies == y->npolicies);
	for (size_t i = 0; i < x->npolicies && i < y->npolicies; i++) {
		CHECK(x->policies[i].type == y->policies[i].type);
		CHECK(km_str_eq(x->policies[i].name, y->policies[i].name));
		CHECK(x->policies[i].fp == y->policies[i].fp);
	}
	for (size_t i = 0; i < x->ndataplanes && i < y->ndataplanes; i++) {
		CHECK(km_str_eq(x->dataplanes[i].res.name, y->dataplanes[i].res.name));
		CHECK(x->dataplanes[i].fp == y->dataplanes[i].fp);
		CHECK(km_str_eq(x->dataplanes[i].res.spec, y->dataplanes[i].res.spec));
	}
	for (size_t i = 0; i < x->nservices && i < y->nservices; i++) {
		const struct cp_xds_service *s = &x->services[i], *t = &y->services[i];
		CHECK(km_str_eq(s->store_name, t->store_name));
		CHECK(km_str_eq(s->name, t->name) && km_str_eq(s->zone, t->zone) && km_str_eq(s->ns, t->ns));
		CHECK(s->fp == t->fp);
		CHECK(s->nports == t->nports);
		for (size_t p = 0; p < s->nports && p < t->nports; p++) {
			const struct cp_xds_port *sp = &s->ports[p], *tp = &t->ports[p];
			CHECK(sp->nendpoints == tp->nendpoints && sp->port == tp->port);
			CHECK(km_str_eq(sp->section, tp->section) && km_str_eq(sp->app_protocol, tp->app_protocol));
			CHECK_STREQ(sp->kri, tp->kri);
			CHECK(sp->sni && tp->sni);
			if (sp->sni && tp->sni)
				CHECK_STREQ(sp->sni, tp->sni);
			for (size_t e = 0; e < sp->nendpoints && e < tp->nendpoints; e++) {
				const struct cp_xds_endpoint *se = &sp->endpoints[e], *te = &tp->endpoints[e];
				CHECK(km_str_eq(se->address, te->address) && se->port == te->port);
				CHECK(km_str_eq(se->zone, te->zone) && se->healthy == te->healthy);
				CHECK(km_json_equal(se->labels, te->labels));
			}
		}
	}
}

static struct cp_xds_mesh *build_checked(void)
{
	struct cp_xds_mesh *c = cp_xds_mesh_build(&rt, KM_STR("default"), cache);
	struct cp_xds_mesh *f = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	CHECK(c && f);
	if (c && f)
		check_same(c, f);
	cp_xds_mesh_free(f);
	return c;
}

static size_t endpoints_of(const struct cp_xds_mesh *m, const char *svc)
{
	const struct cp_xds_service *s = cp_xds_mesh_service(m, km_str_c(svc));
	return s && s->nports ? s->ports[0].nendpoints : SIZE_MAX;
}

static void test_incremental(struct km_arena *a)
{
	put_svc(a, "web", 8080, "http");
	put_svc(a, "db", 5432, "tcp");
	put_dp(a, "web-1", "web", "10.0.0.1", 8080);
	put_dp(a, "web-2", "web", "10.0.0.2", 8080);
	put_dp(a, "db-1", "db", "10.0.1.1", 5432);
	struct cp_xds_mesh *m1 = build_checked();
	CHECK(m1->ndataplanes == 3);
	CHECK(endpoints_of(m1, "web") == 2);
	CHECK(endpoints_of(m1, "db") == 1);
	CHECK(cp_xds_cache_len(cache) == 5);
	/* found through the name index, each at its own entry */
	CHECK(m1->dp_names.n == m1->ndataplanes);
	CHECK(cp_xds_mesh_dataplane(m1, KM_STR("web-2")) != NULL);
	CHECK(cp_xds_mesh_dataplane(m1, KM_STR("web-3")) == NULL);
	for (size_t i = 0; i < m1->ndataplanes; i++)
		CHECK(cp_xds_mesh_dataplane(m1, m1->dataplanes[i].res.name) == &m1->dataplanes[i]);
	CHECK(cp_xds_mesh_dataplane(m1, KM_STR("web-")) == NULL);
	CHECK(cp_xds_mesh_dataplane(m1, KM_STR("web-22")) == NULL);
	CHECK(cp_xds_mesh_dataplane(m1, KM_STR("")) == NULL);

	/* one Dataplane moves: only it and its service change */
	put_dp(a, "web-2", "web", "10.0.0.22", 8080);
	struct cp_xds_mesh *m2 = build_checked();
	const struct cp_xds_dataplane *d1 = cp_xds_mesh_dataplane(m1, KM_STR("db-1"));
	const struct cp_xds_dataplane *d2 = cp_xds_mesh_dataplane(m2, KM_STR("db-1"));
	CHECK(d1->spec == d2->spec); /* shared, not re-parsed */
	CHECK(d1->fp == d2->fp);
	CHECK(cp_xds_mesh_dataplane(m1, KM_STR("web-2"))->fp != cp_xds_mesh_dataplane(m2, KM_STR("web-2"))->fp);
	CHECK(cp_xds_mesh_service(m1, KM_STR("web"))->fp != cp_xds_mesh_service(m2, KM_STR("web"))->fp);
	CHECK(cp_xds_mesh_service(m1, KM_STR("db"))->fp == cp_xds_mesh_service(m2, KM_STR("db"))->fp);
	CHECK(m1->fp_rest == m2->fp_rest);
	/* the old context still reads its own version */
	CHECK(km_str_eqc(cp_xds_mesh_service(m1, KM_STR("web"))->ports[0].endpoints[1].address, "10.0.0.2"));
	/* only web's endpoints were resolved again: db's are the same memory */
	CHECK(m2->services_resolved == 1);
	{
		/* an identical PUT (a new version, the same content) moves no
		 * fingerprint: no proxy is built again for it */
		put_dp(a, "db-1", "db", "10.0.1.1", 5432);
		struct cp_xds_mesh *before = build_checked();
		const struct cp_xds_dataplane *d0 = cp_xds_mesh_dataplane(before, KM_STR("db-1"));
		put_dp(a, "db-1", "db", "10.0.1.1", 5432);
		struct cp_xds_mesh *same = build_checked();
		const struct cp_xds_dataplane *d3 = cp_xds_mesh_dataplane(same, KM_STR("db-1"));
		CHECK(d3->res.version != d0->res.version);
		CHECK(d3->fp == d0->fp);
		CHECK(cp_xds_mesh_service(same, KM_STR("db"))->fp == cp_xds_mesh_service(before, KM_STR("db"))->fp);
		cp_xds_mesh_free(same);
		cp_xds_mesh_free(before);
	}
	CHECK(cp_xds_mesh_service(m1, KM_STR("db"))->ports == cp_xds_mesh_service(m2, KM_STR("db"))->ports);
	CHECK(cp_xds_mesh_service(m1, KM_STR("web"))->ports != cp_xds_mesh_service(m2, KM_STR("web"))->ports);
	cp_xds_mesh_free(m1);
	/* a Dataplane moving from one service to another: both resolved again
	 * (its old labels select the one, its new the other), then back */
	put_dp(a, "web-2", "db", "10.0.0.22", 8080);
	struct cp_xds_mesh *mv = build_checked();
	CHECK(mv->services_resolved == 2);
	CHECK(endpoints_of(mv, "web") == 1);
	put_dp(a, "web-2", "web", "10.0.0.22", 8080);
	cp_xds_mesh_free(mv);
	mv = build_checked();
	CHECK(mv->services_resolved == 2);
	CHECK(endpoints_of(mv, "web") == 2);
	/* nothing changed: nothing resolved */
	cp_xds_mesh_free(mv);
	mv = build_checked();
	CHECK(mv->services_resolved == 0);
	cp_xds_mesh_free(mv);

	/* a deletion and an insertion in the middle of the sorted order */
	del("Dataplane", "web-1");
	put_dp(a, "db-0", "db", "10.0.1.0", 5432);
	struct cp_xds_mesh *m3 = build_checked();
	CHECK(endpoints_of(m3, "web") == 1);
	CHECK(endpoints_of(m3, "db") == 2);
	CHECK(cp_xds_mesh_dataplane(m3, KM_STR("web-1")) == NULL);
	CHECK(km_str_eqc(m3->dataplanes[0].res.name, "db-0"));
	cp_xds_mesh_free(m2);

	/* a status-only rewrite of the service's proxy counts keeps its fingerprint */
	struct km_resource cur;
	CHECK(cp_store_get(rt.store, a, km_rtype_by_name(KM_STR("MeshService")), KM_STR("default"), KM_STR("db"),
			   &cur) == 0);
	cur.status = KM_STR("{\"dataplaneProxies\":{\"connected\":2,\"healthy\":2,\"total\":2}}");
	CHECK(cp_store_update(rt.store, &cur) == 0);
	struct cp_xds_mesh *m4 = build_checked();
	CHECK(cp_xds_mesh_service(m3, KM_STR("db"))->fp == cp_xds_mesh_service(m4, KM_STR("db"))->fp);
	/* ...a port change does not */
	put_svc(a, "db", 5433, "tcp");
	struct cp_xds_mesh *m5 = build_checked();
	CHECK(cp_xds_mesh_service(m4, KM_STR("db"))->fp != cp_xds_mesh_service(m5, KM_STR("db"))->fp);
	CHECK(endpoints_of(m5, "db") == 0); /* nothing listens on 5433 */
	cp_xds_mesh_free(m3);
	cp_xds_mesh_free(m4);
	/* a protocol change there and back: the route name comes and goes
	 * with HTTP (check_same) */
	put_svc(a, "db", 5433, "http");
	cp_xds_mesh_free(build_checked());
	put_svc(a, "db", 5433, "tcp");
	cp_xds_mesh_free(build_checked());

	/* a policy moves the mesh-wide fingerprint only */
	put(a, "MeshTimeout", "mt", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
	    "\"default\":{\"connectionTimeout\":\"3s\"}}]}");
	struct cp_xds_mesh *m6 = build_checked();
	CHECK(m6->fp_rest == m5->fp_rest); /* policies are fingerprinted one by one */
	CHECK(m6->npolicies == m5->npolicies + 1);
	put(a, "MeshTimeout", "mt", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
	    "\"default\":{\"connectionTimeout\":\"4s\"}}]}");
	struct cp_xds_mesh *m7 = build_checked();
	for (size_t i = 0; i < m7->npolicies; i++)
		if (km_str_eqc(m7->policies[i].name, "mt"))
			for (size_t k = 0; k < m6->npolicies; k++)
				if (km_str_eqc(m6->policies[k].name, "mt"))
					CHECK(m6->policies[k].fp != m7->policies[i].fp);
	cp_xds_mesh_free(m7);
	CHECK(cp_xds_mesh_service(m5, KM_STR("web"))->fp == cp_xds_mesh_service(m6, KM_STR("web"))->fp);
	/* outbound resource names back to their port */
	const struct cp_xds_service *w = cp_xds_mesh_service(m6, KM_STR("web"));
	const char *kri = cp_xds_service_kri(a, m6, w, &w->ports[0]);
	CHECK_STREQ(kri, "kri_msvc_default_zone-1__web_8080");
	CHECK(cp_xds_mesh_port_by_kri(a, m6, km_str_c(kri)) == &w->ports[0]);
	CHECK(cp_xds_mesh_port_by_kri(a, m6, KM_STR("kri_msvc_default_zone-1__nope_8080")) == NULL);
	CHECK(cp_xds_mesh_port_by_kri(a, m6, KM_STR("kri_msvc_")) == NULL);
	CHECK(cp_xds_mesh_port_by_kri(a, m6, KM_STR("outbound:10.0.0.1:80")) == NULL);
	cp_xds_mesh_free(m5);
	cp_xds_mesh_free(m6);
}

/* A burst of changes bigger than the stale queue re-lists the type. */
static void test_burst(struct km_arena *a)
{
	for (int i = 0; i < 700; i++) {
		char name[32], addr[32];
		snprintf(name, sizeof(name), "burst-%03d", i);
		snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 200, i % 200 + 1);
		put_dp(a, name, i % 2 ? "web" : "db", addr, i % 2 ? 8080 : 5433);
	}
	/* more services than the few resolved without the index: by labels,
	 * by labels nobody has, and by one Dataplane's name */
	static const char *const sels[][2] = {
	    {"web-too", "{\"dataplaneLabels\":{\"matchLabels\":{\"app\":\"web\"}}}"},
	    {"nobody", "{\"dataplaneLabels\":{\"matchLabels\":{\"app\":\"nobody\"}}}"},
	    {"by-name", "{\"dataplaneRef\":{\"name\":\"burst-001\"}}"},
	    {"by-missing-name", "{\"dataplaneRef\":{\"name\":\"burst-999\"}}"}};
	for (size_t i = 0; i < sizeof(sels) / sizeof(*sels); i++) {
		char spec[256];
		snprintf(spec, sizeof(spec),
			 "{\"selector\":%s,\"ports\":[{\"port\":8080,\"targetPort\":8080,\"appProtocol\":\"http\"}]}",
			 sels[i][1]);
		put(a, "MeshService", sels[i][0], NULL, spec);
	}
	struct cp_xds_mesh *m = build_checked();
	CHECK(m->ndataplanes == 703);
	CHECK(m->nservices >= 6);
	CHECK(endpoints_of(m, "web") == 351);
	CHECK(endpoints_of(m, "db") == 350);
	CHECK(endpoints_of(m, "web-too") == 351);
	CHECK(endpoints_of(m, "nobody") == 0);
	CHECK(endpoints_of(m, "by-name") == 1);
	CHECK(endpoints_of(m, "by-missing-name") == 0);
	for (int i = 0; i < 700; i += 3) {
		char name[32];
		snprintf(name, sizeof(name), "burst-%03d", i);
		del("Dataplane", name);
	}
	cp_xds_mesh_free(m);
	m = build_checked();
	CHECK(m->ndataplanes == 703 - 234);
	/* 234 Dataplanes re-read: past the per-service tests, all resolved */
	CHECK(m->services_resolved == m->nservices);
	CHECK(endpoints_of(m, "web-too") == 351 - 117);
	CHECK(endpoints_of(m, "by-name") == 1);
	cp_xds_mesh_free(m);
	/* a resync makes the next build list everything again */
	cp_xds_cache_reset(cache);
	m = build_checked();
	CHECK(cp_xds_cache_len(cache) == m->ndataplanes + m->nservices);
	cp_xds_mesh_free(m);
	/* a missing mesh builds nothing and leaves the cache usable */
	CHECK(cp_xds_mesh_build(&rt, KM_STR("nope"), cache) == NULL);
}

/* A service is found by its store name, else by its display name (the
 * first in store-name order of that name); a missing one (a destination
 * whose MeshService is not generated yet) is not found, without a scan.
 * Writes stamp kuma.io/display-name with the name, so the aliases are
 * checked on a context made by hand (synced services will have them). */
static void test_lookup(struct km_arena *a)
{
	static const char spec[] = "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"app\":\"x\"}}},"
				   "\"ports\":[{\"port\":80,\"targetPort\":80,\"appProtocol\":\"http\"}]}";
	put(a, "MeshService", "lookup-a", NULL, spec);
	put(a, "MeshService", "lookup-b", NULL, spec);
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), cache);
	CHECK(m && m->sorted && m->naliases == 0);
	if (!m)
		return;
	const struct cp_xds_service *s = cp_xds_mesh_service(m, KM_STR("lookup-b"));
	CHECK(s && km_str_eqc(s->store_name, "lookup-b"));
	CHECK(cp_xds_mesh_service(m, KM_STR("lookup-c")) == NULL);
	CHECK(cp_xds_mesh_service(m, KM_STR("")) == NULL);
	cp_xds_mesh_free(m);

	struct cp_xds_service svcs[4] = {
	    {.store_name = KM_STR("a-x1"), .name = KM_STR("shown")},
	    {.store_name = KM_STR("b-x1"), .name = KM_STR("shown")},
	    {.store_name = KM_STR("c-x1"), .name = KM_STR("other")},
	    {.store_name = KM_STR("d"), .name = KM_STR("d")},
	};
	const struct cp_xds_service *aliases[] = {&svcs[2], &svcs[0], &svcs[1]};
	struct cp_xds_mesh hand = {.services = svcs, .nservices = 4, .sorted = true, .aliases = aliases, .naliases = 3};
	CHECK(cp_xds_mesh_service(&hand, KM_STR("shown")) == &svcs[0]);
	CHECK(cp_xds_mesh_service(&hand, KM_STR("other")) == &svcs[2]);
	CHECK(cp_xds_mesh_service(&hand, KM_STR("b-x1")) == &svcs[1]);
	CHECK(cp_xds_mesh_service(&hand, KM_STR("d")) == &svcs[3]);
	CHECK(cp_xds_mesh_service(&hand, KM_STR("show")) == NULL);
	CHECK(cp_xds_mesh_service(&hand, KM_STR("shown2")) == NULL);
	CHECK(cp_xds_mesh_service(&hand, KM_STR("a")) == NULL);
	hand.sorted = false; /* a scan finds both kinds of name */
	CHECK(cp_xds_mesh_service(&hand, KM_STR("shown")) == &svcs[0]);
	CHECK(cp_xds_mesh_service(&hand, KM_STR("c-x1")) == &svcs[2]);
}

/* Rewrites MeshService <name>'s status (and state) as the generator does. */
static void put_status(struct km_arena *a, const char *name, const char *state, int connected)
{
	const struct km_rtype *t = km_rtype_by_name(KM_STR("MeshService"));
	struct km_resource cur;
	CHECK(cp_store_get(rt.store, a, t, KM_STR("default"), km_str_c(name), &cur) == 0);
	struct km_json *spec = NULL;
	km_json_parse(a, cur.spec.ptr, cur.spec.len, &spec, NULL);
	km_json_set(a, spec, "state", km_json_cstring(a, state));
	struct km_buf b = KM_BUF_INIT;
	km_json_write(&b, spec, 0, 0);
	cur.spec = km_str_c(km_arena_strdup(a, km_buf_cstr(&b)));
	km_buf_fini(&b);
	cur.status = km_str_c(km_arena_printf(
	    a, "{\"dataplaneProxies\":{\"connected\":%d,\"healthy\":%d,\"total\":2}}", connected, connected));
	CHECK(cp_store_update(rt.store, &cur) == 0);
}

/* The generator's status rewrites change nothing a context holds: the
 * server keeps its context; anything else in a MeshService moves it. */
static void test_status_rewrites(struct km_arena *a)
{
	struct cp_xds_mesh *m0 = build_checked();
	CHECK(!cp_xds_cache_services_moved(&rt, KM_STR("default"), cache));
	put_status(a, "web", "Available", 2);
	CHECK(!cp_xds_cache_services_moved(&rt, KM_STR("default"), cache));
	put_status(a, "web", "Unavailable", 0);
	put_status(a, "db", "Available", 1);
	CHECK(!cp_xds_cache_services_moved(&rt, KM_STR("default"), cache));
	/* what was re-read meanwhile reaches the next build all the same */
	struct cp_xds_mesh *m1 = build_checked();
	CHECK(cp_xds_mesh_service(m0, KM_STR("web"))->fp == cp_xds_mesh_service(m1, KM_STR("web"))->fp);
	cp_xds_mesh_free(m1);
	/* a port, a new service, a deleted one: moved */
	put_status(a, "web", "Available", 2);
	put_svc(a, "web", 8081, "http");
	CHECK(cp_xds_cache_services_moved(&rt, KM_STR("default"), cache));
	CHECK(cp_xds_cache_services_moved(&rt, KM_STR("default"), cache)); /* until a build */
	m1 = build_checked();
	CHECK(cp_xds_mesh_service(m1, KM_STR("web"))->ports[0].port == 8081);
	cp_xds_mesh_free(m1);
	put_svc(a, "extra", 9000, "tcp");
	CHECK(cp_xds_cache_services_moved(&rt, KM_STR("default"), cache));
	cp_xds_mesh_free(build_checked());
	del("MeshService", "extra");
	CHECK(cp_xds_cache_services_moved(&rt, KM_STR("default"), cache));
	cp_xds_mesh_free(build_checked());
	put_svc(a, "web", 8080, "http");
	cp_xds_mesh_free(build_checked());
	cp_xds_mesh_free(m0);
}

/* Policy listings kept by the cache: read again only after a write of
 * their type, and a context keeps its copy when the cache lists again. */
static size_t lists;
static const struct cp_store_ops *real_ops;

static int counted_list(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
			const struct cp_list_opts *o, struct cp_list_result *out)
{
	lists++;
	return real_ops->list(s, a, t, o, out);
}

static bool timeout_is(const struct cp_policy *p, const char *want)
{
	struct km_json *to = km_json_get(p->spec, "to");
	if (!to || to->kind != KM_JSON_ARRAY || !to->len)
		return false;
	return km_str_eqc(km_json_get_string(km_json_get(to->items[0], "default"), "connectionTimeout"), want);
}

static void test_policies(struct km_arena *a)
{
	put(a, "MeshTimeout", "mt-1", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
	    "\"default\":{\"connectionTimeout\":\"3s\"}}]}");
	struct cp_xds_mesh *m0 = build_checked();
	static struct cp_store_ops counting;
	real_ops = rt.store->ops;
	counting = *real_ops;
	counting.list = counted_list;
	rt.store->ops = &counting;
	lists = 0;
	struct cp_xds_mesh *m1 = cp_xds_mesh_build(&rt, KM_STR("default"), cache);
	CHECK(m1 && lists == 0); /* nothing written: nothing listed */
	cp_xds_mesh_free(m1);
	put_dp(a, "web-9", "web", "10.0.0.9", 8080);
	m1 = cp_xds_mesh_build(&rt, KM_STR("default"), cache);
	CHECK(m1 && lists == 0); /* a Dataplane: re-read by name, no listing */
	cp_xds_mesh_free(m1);
	put(a, "MeshTimeout", "mt-1", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
	    "\"default\":{\"connectionTimeout\":\"4s\"}}]}");
	m1 = cp_xds_mesh_build(&rt, KM_STR("default"), cache);
	CHECK(m1 && lists == 1); /* MeshTimeouts alone */
	cp_xds_mesh_free(m1);
	rt.store->ops = real_ops;
	m1 = build_checked(); /* the new conf, as a build from scratch has it */
	bool found = false;
	for (size_t i = 0; i < m1->npolicies; i++)
		if (km_str_eqc(m1->policies[i].name, "mt-1")) {
			found = true;
			CHECK(timeout_is(&m1->policies[i], "4s"));
		}
	CHECK(found);
	/* the old context still reads its own copy */
	for (size_t i = 0; i < m0->npolicies; i++)
		if (km_str_eqc(m0->policies[i].name, "mt-1"))
			CHECK(timeout_is(&m0->policies[i], "3s"));
	del("MeshTimeout", "mt-1");
	cp_xds_mesh_free(build_checked());
	del("Dataplane", "web-9");
	cp_xds_mesh_free(build_checked());
	cp_xds_mesh_free(m1);
	cp_xds_mesh_free(m0);
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	store_setup(&rt, &cfg, a);
	cache = cp_xds_cache_new();
	rt.store->on_change = on_change;
	test_incremental(a);
	test_burst(a);
	CHECK(events > 700);
	test_lookup(a);
	test_status_rewrites(a);
	test_policies(a);
	cp_xds_cache_free(cache);
	km_arena_free(a);
	cp_store_free(rt.store);
	cp_config_fini(&cfg);
	return test_summary();
}
