/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for tests that write resources of mesh "default" through the
 * resource manager (validation, defaults, events) into a runtime's store.
 * Include after ../test.h. */
#ifndef KM_TEST_XDS_STORE_UTIL_H
#define KM_TEST_XDS_STORE_UTIL_H

#include "cp/manager.h"

static struct km_json *js(struct km_arena *a, const char *text)
{
	struct km_json *j = NULL;
	CHECK(km_json_parse(a, text, strlen(text), &j, NULL) == 0);
	return j;
}

/* Creates or updates <type>/<name>; a rejected write fails the test and
 * prints the violations. */
static void store_put(struct cp_runtime *rt, struct km_arena *a, const char *type, const char *name,
		      const char *labels, const char *spec)
{
	const struct km_rtype *t = km_rtype_by_name(km_str_c(type));
	struct km_resource_doc d = {.type = t, .mesh = KM_STR("default"), .name = km_str_c(name),
				    .labels = labels ? js(a, labels) : NULL, .spec = js(a, spec)};
	struct km_violations v;
	km_violations_init(&v, a);
	struct km_resource cur;
	int rc;
	if (cp_store_get(rt->store, a, t, KM_STR("default"), km_str_c(name), &cur) == 0)
		rc = cp_manager_update(rt, a, &cur, &d, &v);
	else
		rc = cp_manager_create(rt, a, &d, &v);
	for (size_t i = 0; i < v.len; i++)
		fprintf(stderr, "violation %s %s: %s\n", name, v.items[i].field, v.items[i].message);
	CHECK(rc == 0);
}

/* A memory store with Mesh "default", in zone-1. */
static void store_setup(struct cp_runtime *rt, struct cp_config *cfg, struct km_arena *a)
{
	cp_config_init_defaults(cfg);
	rt->store = cp_store_memory_new();
	rt->cfg = cfg;
	rt->zone = "zone-1";
	struct km_resource_doc mesh = {.type = km_rtype_by_name(KM_STR("Mesh")), .name = KM_STR("default"),
				       .spec = js(a, "{}")};
	struct km_violations v;
	km_violations_init(&v, a);
	CHECK(cp_manager_create(rt, a, &mesh, &v) == 0);
}

#endif
