/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the builder thread (cp/xds/builder.c): a pass of jobs built on
 * the thread and by the taker comes back in submission order with exactly
 * the resources and bytes of the same jobs run one by one on the caller's
 * thread; the caller may drop references to blobs of an earlier pass while
 * the thread shares them; jobs submitted in windows (as the xDS server
 * does) and passes opened again work the same, also while the caller
 * builds on its own thread; an empty pass returns no job; two builds of the
 * same proxies at once through one table encode each outbound resource
 * once; a queue longer than the taker's margin (it helps from the far end)
 * comes back in order. Run under ASan and, by `make tsan`, ThreadSanitizer. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "codec/jsonf.h"
#include "cp/manager.h"
#include "cp/xds/builder.h"
#include "cp/xds/context.h"
#include "cp/xds/share.h"
#include "pb/json.h"
#include "store_util.h"

static struct cp_config cfg;
static struct cp_runtime rt;

#define NSVC 6
#define NDP  48

static void setup(struct km_arena *a)
{
	for (int i = 0; i < NSVC; i++) {
		char name[16], spec[512];
		snprintf(name, sizeof(name), "svc-%d", i);
		snprintf(spec, sizeof(spec),
			 "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"app\":\"%s\"}}},"
			 "\"ports\":[{\"port\":80,\"targetPort\":8080,\"appProtocol\":\"%s\"}]}",
			 name, i % 2 ? "http" : "tcp");
		store_put(&rt, a, "MeshService", name, NULL, spec);
	}
	for (int i = 0; i < NDP; i++) {
		char name[16], labels[64], spec[1024];
		int svc = i % NSVC;
		snprintf(name, sizeof(name), "dp-%d", i);
		snprintf(labels, sizeof(labels), "{\"app\":\"svc-%d\"}", svc);
		snprintf(
			spec, sizeof(spec),
			"{\"networking\":{\"address\":\"10.0.%d.%d\",\"inbound\":[{\"port\":8080,\"protocol\":\"%s\","
			"\"tags\":{\"kuma.io/service\":\"svc-%d\"}}],\"outbound\":["
			"{\"port\":%d,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"svc-%d\",\"port\":80}},"
			"{\"port\":%d,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"svc-%d\",\"port\":80}}]}}",
			i / 200, i % 200 + 1, svc % 2 ? "http" : "tcp", svc, 10000 + (i % 3),
			(svc + 1) % NSVC, 10010, (svc + 2) % NSVC);
		store_put(&rt, a, "Dataplane", name, labels, spec);
	}
	store_put(
		&rt, a, "MeshTimeout", "svc-1-to-all", NULL,
		"{\"targetRef\":{\"kind\":\"Dataplane\",\"labels\":{\"app\":\"svc-1\"}},\"to\":[{\"targetRef\":"
		"{\"kind\":\"Mesh\"},\"default\":{\"connectionTimeout\":\"3s\"}}]}");
	store_put(&rt, a, "MeshRetry", "retry", NULL,
		  "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
		  "\"default\":{\"http\":{\"numRetries\":2}}}]}");
}

static struct cp_xds_tls tls = {
	.secret_name = "kri_mid_default_zone-1__identity_",
	.cert_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	.key_pem = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
	.trust_domain = "default.zone-1.mesh.local",
};

static void job_init(struct cp_xds_job *j, const struct cp_xds_mesh *m, size_t i)
{
	memset(j, 0, sizeof(*j));
	j->dp = &m->dataplanes[i];
	j->a = km_arena_new(0);
	j->md.admin_port = 9901;
	if (i % 4 == 3) /* some proxies have an identity */
		j->md.tls = &tls;
	j->ud = (void *)(uintptr_t)i;
}

static void job_fini(struct cp_xds_job *j)
{
	cp_xds_built_release(&j->built);
	km_buf_fini(&j->errors);
	km_arena_free(j->a);
}

static bool same_built(const struct cp_xds_built *x, const struct cp_xds_built *y)
{
	for (int t = 0; t < CP_XDS_NTYPES; t++) {
		if (x->n[t] != y->n[t])
			return false;
		for (size_t i = 0; i < x->n[t]; i++) {
			const struct cp_xds_blob *p = x->res[t][i], *q = y->res[t][i];
			if (strcmp(p->name, q->name) != 0 || p->len != q->len ||
			    memcmp(p->bytes, q->bytes, p->len) != 0 ||
			    strcmp(p->version, q->version) != 0)
				return false;
		}
	}
	return true;
}

static void test_pass_matches_serial(void)
{
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	CHECK(m != NULL && m->ndataplanes == NDP);
	if (!m || m->ndataplanes != NDP)
		return;
	tls.trust_domains = NULL;

	struct cp_xds_builder *b = cp_xds_builder_new();
	CHECK(b != NULL);
	if (!b)
		return;
	struct cp_xds_share *sh1 = cp_xds_share_new();
	struct cp_xds_job serial[NDP];
	struct cp_xds_share_stats s1 = {0};
	/* an empty pass */
	cp_xds_builder_begin(b, m, NULL);
	CHECK(cp_xds_builder_next(b) == NULL);
	cp_xds_builder_end(b, NULL);

	/* three passes through one table: the second takes references to
	 * the blobs the first one built while this thread drops the first
	 * pass's (as the server does when it replaces snapshots); the third
	 * starts from an emptied table with every job queued, so the taker
	 * builds alongside the thread from the start */
	struct cp_xds_share *sh2 = cp_xds_share_new();
	struct cp_xds_job *prev = NULL;
	for (int pass = 0; pass < 3; pass++) {
		if (pass == 1) {
			/* the server, idle between passes: its sweep (nothing to
			 * drop, the first pass's jobs hold their blobs) and the
			 * thread's heap settling, which it does before or
			 * between the jobs queued next */
			CHECK(cp_xds_share_sweep(sh2) == 0);
			cp_xds_builder_settle(b, 30000);
		}
		if (pass == 2)
			cp_xds_share_clear(sh2); /* both builders fill it again */
		struct cp_xds_job *jobs = calloc(NDP, sizeof(*jobs));
		struct cp_xds_share_stats s2 = {0};
		cp_xds_builder_begin(b, m, sh2);
		size_t submitted = 0, taken = 0;
		const size_t window = pass == 1 ? 5 : NDP; /* all at once, or a window */
		while (taken < NDP) {
			for (; submitted < NDP && submitted - taken < window; submitted++) {
				job_init(&jobs[submitted], m, submitted);
				cp_xds_builder_submit(b, &jobs[submitted]);
			}
			if (pass == 0 && taken == 0) {
				/* the reference: the same jobs one by one on this
				 * thread, while the builder thread runs its own; both
				 * start with cold encoder caches */
				for (size_t i = 0; i < NDP; i++) {
					job_init(&serial[i], m, i);
					cp_xds_job_run(&serial[i], m, sh1);
					CHECK(serial[i].errors.len == 0);
					s1.shared += serial[i].stats.shared;
					s1.encoded += serial[i].stats.encoded;
				}
				CHECK(s1.shared > 0);
			}
			if (pass == 1 && taken % 8 == 0) {
				/* this thread generates and encodes too meanwhile (the
				 * server's loop does): per-thread encoder caches */
				struct cp_xds_job own;
				struct cp_xds_share *sh3 = cp_xds_share_new();
				job_init(&own, m, taken);
				cp_xds_job_run(&own, m, sh3);
				CHECK(same_built(&own.built, &serial[taken].built));
				job_fini(&own);
				cp_xds_share_free(sh3);
			}
			struct cp_xds_job *j = cp_xds_builder_next(b);
			CHECK(j == &jobs[taken]);
			if (j != &jobs[taken])
				break;
			CHECK(j->errors.len == 0);
			CHECK(j->cpu_ns > 0);
			CHECK(same_built(&j->built, &serial[taken].built));
			s2.shared += j->stats.shared;
			s2.encoded += j->stats.encoded;
			if (prev)
				job_fini(&prev[taken]);
			taken++;
		}
		CHECK(cp_xds_builder_next(b) == NULL);
		cp_xds_builder_end(b, NULL);
		if (pass != 1) {
			/* through an empty table: each outbound resource encoded
			 * once (a builder that finds one the other is making
			 * waits for it), the rest taken from the table */
			CHECK(s2.encoded == s1.encoded);
			CHECK(s2.shared == s1.shared);
		} else {
			/* every outbound resource from the table */
			CHECK(s2.shared > s1.shared);
			CHECK(s2.encoded < s1.encoded);
		}
		free(prev);
		prev = jobs;
	}
	cp_xds_builder_settle(b, 1); /* pending when the thread stops: dropped */
	cp_xds_share_free(sh2); /* the built blobs outlive the table */
	for (size_t i = 0; i < NDP; i++)
		CHECK(prev[i].built.n[CP_XDS_CLUSTER] > 0 &&
		      prev[i].built.res[CP_XDS_CLUSTER][0]->len > 0);
	for (size_t i = 0; i < NDP; i++)
		job_fini(&prev[i]);
	free(prev);
	cp_xds_builder_free(b);
	for (size_t i = 0; i < NDP; i++)
		job_fini(&serial[i]);
	cp_xds_share_free(sh1);
	cp_xds_mesh_free(m);
}

/* Two threads building the same proxies in the same order through one
 * empty table, so that they keep meeting at the same new destinations: a
 * build that finds a resource the other is making waits for it, so each
 * outbound resource is encoded once, and both get the serial bytes. */
struct racer {
	const struct cp_xds_mesh *m;
	struct cp_xds_share *sh;
	struct cp_xds_job jobs[NDP];
	uint64_t encoded, shared;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	for (size_t i = 0; i < NDP; i++) {
		job_init(&r->jobs[i], r->m, i);
		cp_xds_job_run(&r->jobs[i], r->m, r->sh);
		r->encoded += r->jobs[i].stats.encoded;
		r->shared += r->jobs[i].stats.shared;
	}
	/* the encoders' per-thread caches die with the thread */
	km_pb_json_thread_fini();
	km_json_fmt_thread_fini();
	return NULL;
}

static void test_two_builders_one_table(void)
{
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	CHECK(m != NULL && m->ndataplanes == NDP);
	if (!m || m->ndataplanes != NDP)
		return;
	/* the reference, and what a proxy encodes of its own (a second round
	 * through the now full table) */
	struct cp_xds_share *ref = cp_xds_share_new();
	static struct cp_xds_job serial[NDP];
	uint64_t enc_once = 0, own = 0;
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < NDP; i++) {
			struct cp_xds_job j;
			job_init(&j, m, i);
			cp_xds_job_run(&j, m, ref);
			CHECK(j.errors.len == 0);
			if (round == 0) {
				enc_once += j.stats.encoded;
				serial[i] = j;
			} else {
				own += j.stats.encoded;
				job_fini(&j);
			}
		}
	CHECK(own > 0 && own < enc_once);
	for (int attempt = 0; attempt < 4; attempt++) {
		static struct racer r[2];
		struct cp_xds_share *sh = cp_xds_share_new();
		pthread_t th[2];
		for (int t = 0; t < 2; t++) {
			memset(&r[t], 0, sizeof(r[t]));
			r[t].m = m;
			r[t].sh = sh;
		}
		int started = 0;
		for (; started < 2; started++)
			if (pthread_create(&th[started], NULL, race, &r[started]) != 0)
				break;
		CHECK(started == 2);
		for (int t = 0; t < started; t++)
			pthread_join(th[t], NULL);
		/* every outbound resource once, every proxy's own twice */
		CHECK(r[0].encoded + r[1].encoded == enc_once + own);
		for (int t = 0; t < started; t++)
			for (size_t i = 0; i < NDP; i++) {
				CHECK(r[t].jobs[i].errors.len == 0);
				CHECK(same_built(&r[t].jobs[i].built, &serial[i].built));
				job_fini(&r[t].jobs[i]);
			}
		cp_xds_share_free(sh);
	}
	for (size_t i = 0; i < NDP; i++)
		job_fini(&serial[i]);
	cp_xds_share_free(ref);
	cp_xds_mesh_free(m);
}

/* The mesh of the fixture, and every proxy built alone through <ref> into
 * <serial> (what a pass must give byte for byte); NULL when it is not
 * there (a failed check). */
static struct cp_xds_mesh *mesh_and_serial(struct cp_xds_job *serial, struct cp_xds_share *ref)
{
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	CHECK(m != NULL && m->ndataplanes == NDP);
	if (!m || m->ndataplanes != NDP)
		return NULL;
	for (size_t i = 0; i < NDP; i++) {
		job_init(&serial[i], m, i);
		cp_xds_job_run(&serial[i], m, ref);
	}
	return m;
}

/* What the taker tests start from: the mesh, each proxy built serially
 * through <ref>, and an empty table <sh> for the builder. */
struct fixture {
	struct cp_xds_job serial[NDP];
	struct cp_xds_share *ref, *sh;
	struct cp_xds_mesh *m;
};

static bool fixture_init(struct fixture *f)
{
	f->ref = cp_xds_share_new();
	f->sh = cp_xds_share_new();
	f->m = mesh_and_serial(f->serial, f->ref);
	if (f->m)
		return true;
	cp_xds_share_free(f->sh);
	cp_xds_share_free(f->ref);
	return false;
}

static void fixture_fini(struct fixture *f)
{
	for (size_t i = 0; i < NDP; i++)
		job_fini(&f->serial[i]);
	cp_xds_share_free(f->sh);
	cp_xds_share_free(f->ref);
	cp_xds_mesh_free(f->m);
}

/* Many more jobs queued than the thread's margin (the taker then builds
 * from the far end of the queue while the thread works from the front):
 * they come back in order, each with the serial bytes. */
#define NJOBS 240

static void test_taker_from_the_back(void)
{
	static struct cp_xds_job jobs[NJOBS];
	static struct fixture f;
	if (!fixture_init(&f))
		return;
	struct cp_xds_mesh *m = f.m;
	struct cp_xds_job *serial = f.serial;
	struct cp_xds_builder *b = cp_xds_builder_new();
	CHECK(b != NULL);
	for (int pass = 0; b && pass < 2; pass++) {
		cp_xds_builder_begin(b, m, f.sh);
		for (size_t i = 0; i < NJOBS; i++) {
			job_init(&jobs[i], m, i % NDP);
			cp_xds_builder_submit(b, &jobs[i]);
		}
		size_t taken = 0;
		for (struct cp_xds_job *j; (j = cp_xds_builder_next(b)); taken++) {
			CHECK(j == &jobs[taken]);
			if (j != &jobs[taken])
				break;
			CHECK(j->errors.len == 0);
			CHECK(same_built(&j->built, &serial[taken % NDP].built));
		}
		CHECK(taken == NJOBS);
		cp_xds_builder_end(b, NULL);
		for (size_t i = 0; i < NJOBS; i++)
			job_fini(&jobs[i]);
	}
	cp_xds_builder_free(b);
	fixture_fini(&f);
}

/* As the server's pass: a window of job slots recycled as jobs are taken
 * back, some left empty (a stream closed before its turn, never submitted),
 * with the taker helping from the far end. A slot taken back and recycled
 * is still named by the queue's old entry: it must never be built through
 * it (an empty one looked unclaimed to the thread: built with no arena). */
#define WINDOW 96
#define NRECYCLED 1200

static void test_recycled_slots(void)
{
	static struct cp_xds_job slot[WINDOW];
	static bool queued[WINDOW];
	static struct fixture f;
	if (!fixture_init(&f))
		return;
	struct cp_xds_mesh *m = f.m;
	struct cp_xds_job *serial = f.serial;
	struct cp_xds_builder *b = cp_xds_builder_new();
	CHECK(b != NULL);
	size_t taken = 0, bad = 0;
	if (b) {
		cp_xds_builder_begin(b, m, f.sh);
		size_t prepared = 0, installed = 0;
		while (installed < NRECYCLED) {
			for (; prepared < NRECYCLED && prepared - installed < WINDOW; prepared++) {
				struct cp_xds_job *j = &slot[prepared % WINDOW];
				memset(j, 0, sizeof(*j));
				queued[prepared % WINDOW] = prepared % 7 != 3; /* every 7th: closed */
				if (queued[prepared % WINDOW]) {
					job_init(j, m, prepared % NDP);
					cp_xds_builder_submit(b, j);
				}
			}
			size_t k = installed++;
			if (!queued[k % WINDOW])
				continue;
			struct cp_xds_job *j = cp_xds_builder_next(b);
			if (j != &slot[k % WINDOW] || j->errors.len ||
			    !same_built(&j->built, &serial[k % NDP].built))
				bad++;
			taken++;
			job_fini(j);
		}
		cp_xds_builder_end(b, NULL);
		cp_xds_builder_free(b);
	}
	CHECK(bad == 0);
	CHECK(taken == NRECYCLED - (NRECYCLED + 3) / 7);
	fixture_fini(&f);
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	store_setup(&rt, &cfg, a);
	setup(a);
	test_pass_matches_serial();
	test_two_builders_one_table();
	test_taker_from_the_back();
	test_recycled_slots();
	km_arena_free(a);
	cp_store_free(rt.store);
	cp_config_fini(&cfg);
	return test_summary();
}
