/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/manager.c's errors: creating a mesh-scoped resource in a mesh
 * that does not exist is the client's error (KM_E_MESH_NOT_FOUND, a 400 on
 * REST), while a store that cannot answer whether the mesh exists (a
 * database gone away) is reported as the store's failure (a 503), never as
 * a missing mesh. The e2e PostgreSQL restart test met the second case when
 * the database went down between the API's own mesh check and this one. */
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "base/err.h"
#include "cp/manager.h"

static const struct cp_store_ops *memory_ops;
static struct cp_store_ops flaky_ops;
static bool mesh_reads_fail;

/* The memory store's get, except that reading a Mesh fails while
 * <mesh_reads_fail> is set, as a store whose backend went away. */
static int flaky_get(struct cp_store *s, struct km_arena *a, const struct km_rtype *t, struct km_str mesh,
		     struct km_str name, struct km_resource *out)
{
	if (mesh_reads_fail && strcmp(t->name, "Mesh") == 0)
		return -KM_E_UNAVAILABLE;
	return memory_ops->get(s, a, t, mesh, name, out);
}

static int create(struct cp_runtime *rt, struct km_arena *a, const char *type, const char *mesh,
		  const char *name, const char *spec)
{
	struct km_json *j = NULL;
	CHECK(km_json_parse(a, spec, strlen(spec), &j, NULL) == 0);
	struct km_resource_doc d = {.type = km_rtype_by_name(km_str_c(type)), .mesh = km_str_c(mesh),
				    .name = km_str_c(name), .spec = j};
	struct km_violations v;
	km_violations_init(&v, a);
	return cp_manager_create(rt, a, &d, &v);
}

int main(void)
{
	struct cp_config cfg;
	cp_config_init_defaults(&cfg);
	struct cp_runtime rt = {.store = cp_store_memory_new(), .cfg = &cfg, .zone = "zone-1"};
	memory_ops = rt.store->ops;
	flaky_ops = *memory_ops;
	flaky_ops.get = flaky_get;
	rt.store->ops = &flaky_ops;
	struct km_arena *a = km_arena_new(0);
	const char *dp = "{\"networking\":{\"address\":\"10.0.0.1\",\"inbound\":[{\"port\":8080,"
			 "\"tags\":{\"kuma.io/service\":\"web\"}}]}}";
	CHECK(create(&rt, a, "Mesh", "", "default", "{}") == 0);
	CHECK(create(&rt, a, "Dataplane", "default", "web-1", dp) == 0);
	/* a mesh that is not there */
	CHECK(create(&rt, a, "Dataplane", "nope", "web-2", dp) == -KM_E_MESH_NOT_FOUND);
	/* the store cannot tell: its error, and nothing written */
	mesh_reads_fail = true;
	CHECK(create(&rt, a, "Dataplane", "default", "web-3", dp) == -KM_E_UNAVAILABLE);
	mesh_reads_fail = false;
	struct km_resource r;
	CHECK(cp_store_get(rt.store, a, km_rtype_by_name(KM_STR("Dataplane")), KM_STR("default"), KM_STR("web-3"),
			   &r) == -KM_E_NOT_FOUND);
	/* and once it answers again, the same write goes through */
	CHECK(create(&rt, a, "Dataplane", "default", "web-3", dp) == 0);
	km_arena_free(a);
	rt.store->ops = memory_ops;
	cp_store_free(rt.store);
	cp_config_fini(&cfg);
	return test_summary();
}
