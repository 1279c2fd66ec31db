/* SPDX-License-Identifier: Apache-2.0 */
/* Store benchmark: insert, update and page-by-page list of N Dataplanes on a
 * store backend (memory, or postgres from KUMA_STORE_POSTGRES_*), and for
 * postgres the time a write made through one store handle takes to reach
 * another handle's change events (LISTEN/NOTIFY), which is what a second
 * kuma-cp instance sees. Prints a Markdown table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "cp/config/config.h"
#include "cp/store/store.h"
#include "ev/loop.h"

extern char **environ;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct km_resource dp(struct km_arena *a, int i)
{
	struct km_resource r = {0};
	r.type = km_rtype_by_name(KM_STR("Dataplane"));
	r.mesh = KM_STR("default");
	r.name = km_str_c(km_arena_printf(a, "dp-%06d", i));
	r.labels = km_str_c(km_arena_printf(a, "{\"kuma.io/workload\":\"svc-%d\"}", i / 3));
	r.spec = km_str_c(km_arena_printf(
	    a, "{\"networking\":{\"address\":\"10.%d.%d.%d\",\"inbound\":[{\"port\":8080,\"servicePort\":18080,"
	       "\"protocol\":\"http\"}]}}",
	    (i >> 16) & 255, (i >> 8) & 255, i & 255));
	return r;
}

static struct cp_store *open_store(const char *kind, struct cp_config *cfg, struct km_loop *loop)
{
	if (strcmp(kind, "memory") == 0)
		return cp_store_memory_new();
	struct km_buf err = KM_BUF_INIT;
	struct cp_store *s = cp_store_postgres_new(cfg, loop, &err);
	if (!s)
		fprintf(stderr, "store: %s\n", km_buf_cstr(&err));
	km_buf_fini(&err);
	return s;
}

/* propagation: handle B records when it hears about dp-prop-<i> */
static double heard_at[1000];
static double written_at[1000];

static void on_event(void *ctx, enum cp_store_op op, const struct km_rtype *t, struct km_str mesh,
		     struct km_str name)
{
	if (!t || op != CP_STORE_UPDATE || !km_str_has_prefix(name, "prop-"))
		return;
	long long i;
	if (km_str_to_i64((struct km_str){name.ptr + 5, name.len - 5}, &i) == 0 && i >= 0 && i < 1000)
		heard_at[i] = now_s();
}

static void stop_loop(struct km_loop *loop, void *ctx)
{
	km_loop_stop(loop);
}

static int cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "memory";
	int n = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 10000;
	struct cp_config cfg;
	cp_config_init_defaults(&cfg);
	struct km_buf err = KM_BUF_INIT;
	if (cp_config_load(&cfg, NULL, environ, &err) ||
	    (strcmp(kind, "postgres") == 0 && cp_store_postgres_migrate(&cfg, &err))) {
		fprintf(stderr, "setup: %s\n", km_buf_cstr(&err));
		return 2;
	}
	struct km_loop *loop = km_loop_new();
	struct cp_store *s = open_store(kind, &cfg, loop);
	if (!s)
		return 2;
	struct km_arena *a = km_arena_new(1 << 20);
	struct km_resource mesh = {.type = km_rtype_by_name(KM_STR("Mesh")), .name = KM_STR("default"),
				   .spec = KM_STR("{}")};
	cp_store_remove(s, mesh.type, KM_STR(""), KM_STR("default"), 0);
	cp_store_create(s, &mesh);

	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		struct km_resource r = dp(a, i);
		if (cp_store_create(s, &r)) {
			fprintf(stderr, "create %d failed\n", i);
			return 1;
		}
	}
	double t_insert = now_s() - t0;
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		struct km_resource r = dp(a, i);
		r.version = 1;
		if (cp_store_update(s, &r)) {
			fprintf(stderr, "update %d failed\n", i);
			return 1;
		}
	}
	double t_update = now_s() - t0;
	t0 = now_s();
	size_t seen = 0;
	for (size_t off = 0;; off += 100) {
		struct km_arena *pa = km_arena_new(1 << 16);
		struct cp_list_opts o = {.mesh = KM_STR("default"), .offset = off, .size = 100};
		struct cp_list_result res;
		cp_store_list(s, pa, km_rtype_by_name(KM_STR("Dataplane")), &o, &res);
		seen += res.len;
		km_arena_free(pa);
		if (off + 100 >= res.total)
			break;
	}
	double t_list = now_s() - t0;
	printf("| %s | %d | %.0f/s | %.0f/s | %.3f s (%zu items, pages of 100) |", kind, n, n / t_insert,
	       n / t_update, t_list, seen);

	if (strcmp(kind, "postgres") == 0) {
		/* a second handle = what another kuma-cp instance sees */
		struct cp_store *b = open_store(kind, &cfg, loop);
		b->on_change = on_event;
		struct km_timer tm = {0};
		km_loop_timer_start(loop, &tm, 200, stop_loop, NULL);
		km_loop_run(loop);
		int m = 500;
		for (int i = 0; i < m; i++) {
			struct km_resource r = dp(a, i);
			r.name = km_str_c(km_arena_printf(a, "prop-%d", i));
			cp_store_create(s, &r);
		}
		km_loop_timer_start(loop, &tm, 300, stop_loop, NULL);
		km_loop_run(loop);
		for (int i = 0; i < m; i++) {
			struct km_resource r = dp(a, i);
			r.name = km_str_c(km_arena_printf(a, "prop-%d", i));
			r.version = 1;
			written_at[i] = now_s();
			cp_store_update(s, &r);
			/* let B's loop take the notification before the next write */
			km_loop_timer_start(loop, &tm, 2, stop_loop, NULL);
			km_loop_run(loop);
		}
		km_loop_timer_start(loop, &tm, 300, stop_loop, NULL);
		km_loop_run(loop);
		double lat[1000];
		int k = 0;
		for (int i = 0; i < m; i++)
			if (heard_at[i] > 0)
				lat[k++] = (heard_at[i] - written_at[i]) * 1000;
		qsort(lat, (size_t)k, sizeof(lat[0]), cmp_d);
		printf(" %.2f / %.2f ms (%d/%d seen) |\n", k ? lat[k / 2] : -1, k ? lat[(k * 99) / 100] : -1, k, m);
		cp_store_free(b);
	} else {
		printf(" n/a (single instance) |\n");
	}
	cp_store_remove(s, mesh.type, KM_STR(""), KM_STR("default"), 0);
	km_arena_free(a);
	cp_store_free(s);
	km_loop_free(loop);
	cp_config_fini(&cfg);
	return 0;
}
