/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for shared outbound resources (cp/xds/share.c): for every proxy of
 * a mesh with policies that reach some outbounds and not others, with and
 * without a workload identity, cp_xds_build() through one share table gives
 * exactly the bytes of encoding cp_xds_generate()'s resources; outbounds
 * with equal inputs are encoded once and then shared; a proxy whose
 * outbounds differ (listen port, policy conf, identity) gets its own. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "store_util.h"
#include "base/err.h"
#include "cp/manager.h"
#include "cp/policy/policy.h"
#include "cp/xds/context.h"
#include "cp/pki/pki.h"
#include "cp/xds/share.h"
#include "pb/json.h"

static struct cp_config cfg;
static struct cp_runtime rt;

static void put(struct km_arena *a, const char *type, const char *name, const char *labels, const char *spec)
{
	store_put(&rt, a, type, name, labels, spec);
}

static void put_svc(struct km_arena *a, const char *name, int port, const char *proto)
{
	char spec[512];
	snprintf(spec, sizeof(spec),
		 "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"app\":\"%s\"}}},"
		 "\"ports\":[{\"port\":%d,\"targetPort\":%d,\"appProtocol\":\"%s\"}],"
		 "\"identities\":[{\"type\":\"SpiffeID\",\"value\":\"spiffe://default.zone-1.mesh.local/workload/%s\"}]}",
		 name, port, port, proto, name);
	put(a, "MeshService", name, NULL, spec);
}

/* A Dataplane of <svc> calling db, api and (by labels) cache; <base> is the
 * first listen port, <dup> adds a second outbound to db on another port. */
static void put_dp_labels(struct km_arena *a, const char *name, const char *svc, int ip, int base, bool dup,
			  const char *more_labels)
{
	char labels[256], spec[1400];
	snprintf(labels, sizeof(labels), "{\"app\":\"%s\"%s}", svc, more_labels);
	snprintf(spec, sizeof(spec),
		 "{\"networking\":{\"address\":\"10.0.0.%d\",\"inbound\":[{\"port\":8080,\"protocol\":\"http\","
		 "\"tags\":{\"kuma.io/service\":\"%s\"}}],\"outbound\":["
		 "{\"port\":%d,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"db\",\"port\":5432}},"
		 "{\"port\":%d,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"api\",\"port\":80}},"
		 "{\"port\":%d,\"backendRef\":{\"kind\":\"MeshService\",\"labels\":{\"kuma.io/display-name\":\"cache\"},\"port\":6379}}%s]}}",
		 ip, svc, base, base + 1, base + 2,
		 dup ? ",{\"port\":19999,\"address\":\"127.0.0.2\",\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"db\",\"port\":5432}}"
		     : "");
	put(a, "Dataplane", name, labels, spec);
}

static void put_dp(struct km_arena *a, const char *name, const char *svc, int ip, int base, bool dup)
{
	put_dp_labels(a, name, svc, ip, base, dup, "");
}

/* name -> bytes of one type, for comparing regardless of order */
static const struct cp_xds_blob *find(const struct cp_xds_built *b, int t, const char *name)
{
	for (size_t i = 0; i < b->n[t]; i++)
		if (strcmp(b->res[t][i]->name, name) == 0)
			return b->res[t][i];
	return NULL;
}

static struct cp_xds_tls tls = {
    .secret_name = "kri_mid_default_zone-1__identity_",
    .cert_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    .key_pem = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    .trust_domain = "default.zone-1.mesh.local",
};

/* the mesh's trust domains, {domain: PEM} */
static const char *trust_json = "{\"default.zone-1.mesh.local\":\"-----BEGIN CERTIFICATE-----\\nMIIC\\n\"}";
/* the distinct trust bundle secrets (blobs) the last check_all saw */
static size_t trust_blobs;

/* the Envoy admin listener's certificate, given to every fourth proxy
 * while <admin_tls_on> */
static bool admin_tls_on;
static const struct cp_envoy_admin_tls admin_tls = {
    .chain_pem = "-----BEGIN CERTIFICATE-----\nMIIA\n-----END CERTIFICATE-----\n",
    .key_pem = "-----BEGIN PRIVATE KEY-----\nMIIK\n-----END PRIVATE KEY-----\n",
    .ca_pem = "-----BEGIN CERTIFICATE-----\nMIIZ\n-----END CERTIFICATE-----\n",
    .fp = 11,
    .ca_fp = 12,
};

/* Builds every proxy through <sh> and compares with a plain generation. */
#define MAXDP 32

/* When set, check_all keeps each proxy's built resources (as the server's
 * snapshots do) until the next call instead of dropping them. */
static bool keeping;
static struct cp_xds_built kept[MAXDP];
/* When set, check_all builds that proxy alone. */
static const char *only;
/* When set, every proxy of a TLS check_all gets the identity. */
static bool all_tls;

/* <memo>: one per proxy in name order, or NULL. */
static void check_all(struct km_arena *a, struct cp_xds_share *sh, bool with_tls, struct cp_xds_share_stats *st,
		      struct cp_xds_local_memo *memo)
{
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	CHECK(m != NULL && m->ndataplanes <= MAXDP);
	if (!m || m->ndataplanes > MAXDP)
		return;
	tls.trust_domains = js(a, trust_json);
	const struct cp_xds_blob *trusts[MAXDP];
	trust_blobs = 0;
	for (size_t i = 0; i < m->ndataplanes; i++) {
		const struct cp_xds_dataplane *dp = &m->dataplanes[i];
		if (only && !km_str_eqc(dp->res.name, only))
			continue;
		struct cp_xds_metadata md = {.admin_port = 9901, .readiness_port = 9902};
		if (with_tls && (all_tls || i % 3 != 2)) /* some proxies stay plaintext */
			md.tls = &tls;
		if (admin_tls_on && i % 4 == 1) /* its admin listener is exposed (served over TLS) */
			md.admin_tls = &admin_tls;
		struct cp_xds_resources rs;
		cp_xds_generate(a, m, dp, &md, &rs);
		struct cp_xds_built b;
		struct km_buf errors = KM_BUF_INIT;
		cp_xds_build(a, m, dp, &md, sh, memo ? &memo[i] : NULL, &b, st, &errors);
		CHECK(errors.len == 0);
		km_buf_fini(&errors);
		struct km_buf bytes = KM_BUF_INIT, err = KM_BUF_INIT;
		for (int t = 0; t < CP_XDS_NTYPES; t++) {
			CHECK(b.n[t] == rs.by_type[t]->len);
			for (size_t k = 0; k < rs.by_type[t]->len; k++) {
				const char *name = km_arena_strndup(a, rs.by_type[t]->members[k].key.ptr,
								    rs.by_type[t]->members[k].key.len);
				km_buf_reset(&bytes);
				CHECK(km_pb_encode_json(a, cp_xds_type_url[t], rs.by_type[t]->members[k].val, &bytes,
							&err) == 0);
				const struct cp_xds_blob *got = find(&b, t, name);
				CHECK(got != NULL);
				if (!got)
					continue;
				/* the same bytes, except an outbound listener, whose
				 * address field comes last: the same message */
				bool same = got->len == bytes.len && memcmp(got->bytes, bytes.data, bytes.len) == 0;
				if (t == CP_XDS_LISTENER && strncmp(name, "kri_", 4) == 0) {
					/* its last field: the address, as encoding it alone */
					struct km_json *only_addr = km_json_object(a);
					km_json_set(a, only_addr, "address",
						    km_json_get(rs.by_type[t]->members[k].val, "address"));
					struct km_buf ab = KM_BUF_INIT;
					CHECK(km_pb_encode_json(a, cp_xds_type_url[t], only_addr, &ab, &err) == 0);
					CHECK(ab.len > 0 && got->len > ab.len &&
					      memcmp(got->bytes + got->len - ab.len, ab.data, ab.len) == 0);
					km_buf_fini(&ab);
				}
				if (!same && t == CP_XDS_LISTENER && strncmp(name, "kri_", 4) == 0) {
					struct km_json *x = NULL, *y = NULL;
					same = km_pb_decode_to_json(a, cp_xds_type_url[t], got->bytes, got->len, &x, NULL) ==
						   0 &&
					       km_pb_decode_to_json(a, cp_xds_type_url[t], (const uint8_t *)bytes.data,
								    bytes.len, &y, NULL) == 0 &&
					       km_json_equal(x, y);
				}
				if (!same) {
					fprintf(stderr, "differs: proxy %.*s %s\n", KM_STR_FMT(dp->res.name), name);
					CHECK(false);
				}
			}
		}
		km_buf_fini(&bytes);
		km_buf_fini(&err);
		const struct cp_xds_blob *tb = find(&b, CP_XDS_SECRET, "system_trust_bundle");
		size_t k = 0;
		while (tb && k < trust_blobs && trusts[k] != tb)
			k++;
		if (tb && k == trust_blobs)
			trusts[trust_blobs++] = tb;
		if (keeping) {
			cp_xds_built_release(&kept[i]);
			kept[i] = b;
		} else {
			cp_xds_built_release(&b);
		}
	}
	cp_xds_mesh_free(m);
}

static void test_equal_and_shared(struct km_arena *a)
{
	put_svc(a, "db", 5432, "tcp");
	put_svc(a, "api", 80, "http");
	put_svc(a, "cache", 6379, "http2");
	/* same service, same listen ports: everything outbound is shared */
	put_dp(a, "web-1", "web", 1, 10001, false);
	put_dp(a, "web-2", "web", 2, 10001, false);
	put_dp(a, "web-3", "web", 3, 10001, true);
	/* another service listening elsewhere: clusters and load assignments
	 * shared, listeners not */
	put_dp(a, "job-1", "job", 4, 20001, false);
	put_dp(a, "job-2", "job", 5, 20001, false);
	put_dp(a, "db-1", "db", 6, 30001, false);
	put_dp(a, "api-1", "api", 7, 30001, false);
	put_dp(a, "cache-1", "cache", 8, 30001, false);

	struct cp_xds_share *sh = cp_xds_share_new();
	struct cp_xds_share_stats st = {0};
	check_all(a, sh, false, &st, NULL);
	/* each proxy has 5 resources of its own (inbound cluster and
	 * listener, readiness and admin clusters, admin listener) and 3 outbounds x 3 resources; web-3 a 4th outbound
	 * to db (same cluster and load assignment, its own listener). Encoded
	 * once: 3 clusters, 3 load assignments, 3 listener bodies (each
	 * proxy's listeners are a body plus its own address field) */
	CHECK(st.encoded == 8 * 5 + 9);
	CHECK(st.shared == 8 * 9 + 3 - 9);
	/* the second time round every outbound resource comes from the table */
	struct cp_xds_share_stats st2 = {0};
	check_all(a, sh, false, &st2, NULL);
	CHECK(st2.encoded == 8 * 5);
	CHECK(st2.shared == 8 * 9 + 3);
	cp_xds_share_clear(sh);

	/* policies: a Mesh-wide timeout, a timeout of web's calls to db, a
	 * retry, a circuit breaker for api, MTP (inbound only) */
	put(a, "MeshTimeout", "mesh-wide", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
	    "\"default\":{\"connectionTimeout\":\"7s\",\"idleTimeout\":\"1800s\"}}]}");
	put(a, "MeshTimeout", "web-to-db", NULL,
	    "{\"targetRef\":{\"kind\":\"Dataplane\",\"labels\":{\"app\":\"web\"}},\"to\":[{\"targetRef\":"
	    "{\"kind\":\"MeshService\",\"labels\":{\"kuma.io/display-name\":\"db\"}},\"default\":{\"connectionTimeout\":\"2s\"}}]}");
	put(a, "MeshRetry", "retry", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
	    "\"default\":{\"http\":{\"numRetries\":3}}}]}");
	put(a, "MeshCircuitBreaker", "cb-api", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"MeshService\",\"labels\":{\"kuma.io/display-name\":\"api\"}},"
	    "\"default\":{\"connectionLimits\":{\"maxConnections\":7}}}]}");
	put(a, "MeshTrafficPermission", "allow", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"rules\":[{\"default\":{\"allow\":[{\"spiffeID\":"
	    "{\"type\":\"Prefix\",\"value\":\"spiffe://default.\"}}]}}]}");
	put(a, "MeshTLS", "tls", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"rules\":[{\"default\":{\"tlsVersion\":{\"min\":\"TLS13\"}}}]}");
	/* a proxy calling one destination twice (on two ports) first
	 * through an empty table: its second outbound takes the cluster, load
	 * assignment and listener body its first one is making */
	cp_xds_share_clear(sh);
	only = "web-3";
	struct cp_xds_share_stats st1 = {0};
	check_all(a, sh, false, &st1, NULL);
	only = NULL;
	CHECK(st1.encoded == 5 + 9);
	CHECK(st1.shared == 3);
	cp_xds_share_clear(sh);
	struct cp_xds_share_stats st3 = {0};
	check_all(a, sh, false, &st3, NULL);
	CHECK(st3.shared > 0);
	cp_xds_share_clear(sh);
	/* with identities (and MeshTLS on outbound clusters): plaintext and
	 * TLS proxies must not share */
	struct cp_xds_share_stats st4 = {0};
	check_all(a, sh, true, &st4, NULL);
	CHECK(st4.shared > 0);
	/* a built resource outlives the table */
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	struct cp_xds_metadata md = {0};
	struct cp_xds_built b;
	cp_xds_build(a, m, cp_xds_mesh_dataplane(m, KM_STR("web-1")), &md, sh, NULL, &b, NULL, NULL);
	cp_xds_share_clear(sh);
	CHECK(b.n[CP_XDS_CLUSTER] > 0 && b.res[CP_XDS_CLUSTER][0]->refs == 1);
	cp_xds_built_release(&b);
	cp_xds_mesh_free(m);
	cp_xds_share_free(sh);
}

/* The table across contexts (as the server keeps it): a changed
 * destination gets new resources, the others are still found, and every
 * proxy's resources equal a whole-set generation after each change. */
static void test_across_contexts(struct km_arena *a)
{
	struct cp_xds_share *sh = cp_xds_share_new();
	struct cp_xds_share_stats s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
	keeping = true;
	check_all(a, sh, false, &s0, NULL);
	cp_xds_share_next(sh);
	check_all(a, sh, false, &s1, NULL);
	CHECK(s1.encoded < s0.encoded && s1.shared > s0.shared);
	/* api's protocol changes: its cluster and listener are new */
	put_svc(a, "api", 80, "tcp");
	cp_xds_share_next(sh);
	check_all(a, sh, false, &s2, NULL);
	CHECK(s2.encoded > s1.encoded && s2.shared > 0);
	/* one more db instance: db's endpoints (and fingerprint) change */
	put_dp(a, "db-2", "db", 9, 30001, false);
	cp_xds_share_next(sh);
	check_all(a, sh, false, &s3, NULL);
	CHECK(s3.shared > 0);
	put_svc(a, "api", 80, "http");
	/* entries whose resources no proxy holds any more go */
	keeping = false;
	for (size_t i = 0; i < MAXDP; i++)
		cp_xds_built_release(&kept[i]);
	/* until a sweep they stay, and a build that needs one again takes it
	 * (the next context alone drops nothing while the table has room) */
	struct cp_xds_share_stats again = {0}, fresh = {0};
	struct cp_xds_share *sh2 = cp_xds_share_new();
	check_all(a, sh2, false, &fresh, NULL);
	cp_xds_share_free(sh2);
	cp_xds_share_next(sh);
	check_all(a, sh, false, &again, NULL);
	CHECK(again.encoded < fresh.encoded && again.shared > fresh.shared);
	CHECK(cp_xds_share_sweep(sh) > 0);
	CHECK(cp_xds_share_sweep(sh) == 0); /* nothing more to drop */
	cp_xds_share_next(sh);
	struct cp_xds_share_stats s4 = {0};
	check_all(a, sh, false, &s4, NULL);
	CHECK(s4.encoded == fresh.encoded && s4.shared == fresh.shared);
	cp_xds_share_free(sh);
}

/* The local memo: after each change, every proxy's resources still equal
 * a whole-set generation (check_all), and the local ones are reused
 * exactly when nothing they are built from changed. */
static void test_local_memo(struct km_arena *a)
{
	struct cp_xds_local_memo memo[MAXDP];
	memset(memo, 0, sizeof(memo));
	admin_tls_on = true;
	struct cp_xds_share *sh = cp_xds_share_new();
	struct cp_xds_share_stats s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0}, s6 = {0};
	check_all(a, sh, false, &s0, memo);
	CHECK(s0.reused == 0);
	/* nothing changed: every local resource reused, nothing encoded */
	check_all(a, sh, false, &s1, memo);
	CHECK(s1.reused > 0 && s1.encoded == 0);
	/* a `to` conf changes: outbounds again, locals reused */
	put(a, "MeshTimeout", "mesh-wide", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
	    "\"default\":{\"connectionTimeout\":\"8s\",\"idleTimeout\":\"1800s\"}}]}");
	cp_xds_share_clear(sh);
	check_all(a, sh, false, &s2, memo);
	CHECK(s2.reused == s1.reused && s2.encoded > 0);
	/* inbound rules change: every proxy's locals are built again */
	put(a, "MeshTimeout", "inbound", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"rules\":[{\"default\":{\"idleTimeout\":\"77s\"}}]}");
	cp_xds_share_clear(sh);
	check_all(a, sh, false, &s3, memo);
	CHECK(s3.reused == 0);
	/* only the conf of the same rule changes */
	put(a, "MeshTimeout", "inbound", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"rules\":[{\"default\":{\"idleTimeout\":\"78s\"}}]}");
	cp_xds_share_clear(sh);
	struct cp_xds_share_stats s3b = {0};
	check_all(a, sh, false, &s3b, memo);
	CHECK(s3b.reused == 0);
	/* identities for two of every three proxies: only the others reuse */
	check_all(a, sh, true, &s4, memo);
	CHECK(s4.reused > 0 && s4.reused < s1.reused);
	check_all(a, sh, true, &s5, memo);
	CHECK(s5.reused > s1.reused && s5.encoded == 0); /* with their secrets */
	/* certificates rotate: the secrets of those proxies change */
	const char *cert = tls.cert_pem;
	tls.cert_pem = "-----BEGIN CERTIFICATE-----\nMIIR\n-----END CERTIFICATE-----\n";
	struct cp_xds_share_stats s5b = {0};
	check_all(a, sh, true, &s5b, memo);
	CHECK(s5b.reused == s4.reused);
	tls.cert_pem = cert;
	check_all(a, sh, true, &s5b, memo);
	/* the same with the hashes the PKI module makes of the PEMs once
	 * (cp_pki_pem_fp, cp_pki_trust_fp), fingerprinted instead of them */
	const char *rotated = "-----BEGIN CERTIFICATE-----\nMIIS\n-----END CERTIFICATE-----\n";
	tls.keys_fp = cp_pki_pem_fp(tls.cert_pem, tls.key_pem);
	tls.trust_fp = 7;
	struct cp_xds_share_stats h0 = {0}, h1 = {0}, h2 = {0}, h3 = {0}, h4 = {0};
	check_all(a, sh, true, &h0, memo);
	check_all(a, sh, true, &h1, memo);
	CHECK(h1.reused == s5.reused && h1.encoded == 0);
	tls.cert_pem = rotated; /* a new certificate comes with its hash */
	tls.keys_fp = cp_pki_pem_fp(tls.cert_pem, tls.key_pem);
	check_all(a, sh, true, &h2, memo);
	CHECK(h2.reused == s4.reused);
	CHECK(trust_blobs == 1); /* one trust bundle secret, shared */
	tls.trust_fp = 8; /* a MeshTrust changed */
	trust_json = "{\"default.zone-1.mesh.local\":\"-----BEGIN CERTIFICATE-----\\nMIIC\\n\","
		     "\"other.mesh.local\":\"-----BEGIN CERTIFICATE-----\\nMIID\\n\"}";
	check_all(a, sh, true, &h3, memo); /* the bundle as generated: not the old one */
	CHECK(h3.reused == s4.reused);
	CHECK(trust_blobs == 1);
	tls.cert_pem = cert;
	tls.keys_fp = tls.trust_fp = 0;
	check_all(a, sh, true, &h4, memo);
	check_all(a, sh, true, &h4, memo);
	/* one Dataplane changes, only in a label its listener carries: its
	 * locals only */
	put_dp_labels(a, "web-2", "web", 2, 10001, false, ",\"version\":\"2\"");
	check_all(a, sh, true, &s6, memo);
	CHECK(s6.reused > 0 && s6.reused < s5.reused);
	/* and where it listens */
	struct cp_xds_share_stats s7 = {0};
	put_dp_labels(a, "web-2", "web", 12, 10001, false, ",\"version\":\"2\"");
	check_all(a, sh, true, &s7, memo);
	CHECK(s7.reused == s6.reused);
	admin_tls_on = false;
	for (size_t i = 0; i < MAXDP; i++)
		cp_xds_local_memo_fini(&memo[i]);
	cp_xds_share_free(sh);
}

/* A copy of kept[] holding its own references (so that a pointer seen
 * again is the same resource, not a reused address). */
static struct cp_xds_built before[MAXDP];

static void snapshot_free(void)
{
	for (size_t i = 0; i < MAXDP; i++) {
		for (int t = 0; t < CP_XDS_NTYPES; t++) {
			for (size_t k = 0; k < before[i].n[t]; k++)
				cp_xds_blob_unref(before[i].res[t][k]);
			free(before[i].res[t]);
		}
		memset(&before[i], 0, sizeof(before[i]));
	}
}

static void snapshot(void)
{
	snapshot_free();
	for (size_t i = 0; i < MAXDP; i++) {
		for (int t = 0; t < CP_XDS_NTYPES; t++) {
			before[i].n[t] = kept[i].n[t];
			before[i].res[t] = NULL;
			if (!kept[i].n[t])
				continue;
			/* heap, not the test arena: released one by one */
			before[i].res[t] = calloc(kept[i].n[t], sizeof(*before[i].res[t]));
			for (size_t k = 0; k < kept[i].n[t]; k++)
				before[i].res[t][k] = cp_xds_blob_ref(kept[i].res[t][k]);
		}
	}
}

/* Outbound resources of type <t> (names starting with kri_msvc_ and
 * holding <part>) in kept[]:
 * how many, and how many are the very blobs of the snapshot. */
static void same_outbound(int t, const char *part, size_t *total, size_t *same)
{
	*total = *same = 0;
	for (size_t i = 0; i < MAXDP; i++)
		for (size_t k = 0; k < kept[i].n[t]; k++) {
			const struct cp_xds_blob *b = kept[i].res[t][k];
			if (strncmp(b->name, "kri_msvc_", 9) != 0 || !strstr(b->name, part))
				continue;
			(*total)++;
			*same += find(&before[i], t, b->name) == b;
		}
}

/* Every outbound resource of type <t> holding <part> is the snapshot's
 * (<kept_all>), or none is. */
static void expect_kept(int t, const char *part, bool kept_all)
{
	size_t total, same;
	same_outbound(t, part, &total, &same);
	CHECK(total > 0 && same == (kept_all ? total : 0));
}

/* A policy change rebuilds only the outbound resources its plugin shapes
 * (cp_policy_plugin.outbound_types): a MeshTimeout change leaves load
 * assignments shared, a MeshRetry change clusters too, a change of a
 * MeshCircuitBreaker for api the listeners and the other clusters; every
 * proxy's resources still equal a whole-set generation (check_all), which
 * fails if a plugin's types leave out one it changes. */
static void test_policy_types(struct km_arena *a)
{
	struct cp_xds_share *sh = cp_xds_share_new();
	struct cp_xds_share_stats st = {0};
	keeping = true;
	check_all(a, sh, false, &st, NULL);
	snapshot();
	put(a, "MeshTimeout", "mesh-wide", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
	    "\"default\":{\"connectionTimeout\":\"8s\",\"idleTimeout\":\"1700s\"}}]}");
	cp_xds_share_next(sh);
	check_all(a, sh, false, &st, NULL);
	expect_kept(CP_XDS_ENDPOINT, "_", true);
	expect_kept(CP_XDS_CLUSTER, "_", false);
	expect_kept(CP_XDS_LISTENER, "_", false);

	snapshot();
	put(a, "MeshRetry", "retry", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
	    "\"default\":{\"http\":{\"numRetries\":4}}}]}");
	cp_xds_share_next(sh);
	check_all(a, sh, false, &st, NULL);
	expect_kept(CP_XDS_ENDPOINT, "_", true);
	expect_kept(CP_XDS_CLUSTER, "_", true);
	expect_kept(CP_XDS_LISTENER, "_", false);

	snapshot();
	put(a, "MeshCircuitBreaker", "cb-api", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"MeshService\",\"labels\":{\"kuma.io/display-name\":\"api\"}},"
	    "\"default\":{\"connectionLimits\":{\"maxConnections\":8}}}]}");
	cp_xds_share_next(sh);
	check_all(a, sh, false, &st, NULL);
	expect_kept(CP_XDS_ENDPOINT, "_", true);
	expect_kept(CP_XDS_LISTENER, "_", true);
	expect_kept(CP_XDS_CLUSTER, "_api_", false);
	expect_kept(CP_XDS_CLUSTER, "_db_", true);

	/* an endpoint change reaches the load assignments again: db's port
	 * now targets its proxies' inbound */
	snapshot();
	put(a, "MeshService", "db", NULL,
	    "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"app\":\"db\"}}},"
	    "\"ports\":[{\"port\":5432,\"targetPort\":8080,\"appProtocol\":\"tcp\"}]}");
	cp_xds_share_next(sh);
	check_all(a, sh, false, &st, NULL);
	expect_kept(CP_XDS_ENDPOINT, "_db_", false);
	expect_kept(CP_XDS_ENDPOINT, "_api_", true);

	snapshot_free();
	keeping = false;
	for (size_t i = 0; i < MAXDP; i++)
		cp_xds_built_release(&kept[i]);
	cp_xds_share_free(sh);
}

/* The `to` rules a context keeps (cp_policy_cache): proxies selected by
 * the same policies get the same rules, built once; others their own; and
 * the rules equal a match without the cache. */
static void test_policy_cache(struct km_arena *a)
{
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	CHECK(m && m->policy_cache);
	if (!m)
		return;
	const struct km_rtype *t = km_rtype_by_name(KM_STR("MeshTimeout"));
	const char *names[] = {"web-1", "web-2", "job-1", "job-2"};
	struct cp_policy_matched mp[4];
	for (size_t i = 0; i < 4; i++)
		cp_policy_match(a, m, cp_xds_mesh_dataplane(m, km_str_c(names[i])), t, false, &mp[i]);
	/* web's proxies: the Mesh-wide timeout and web-to-db; job's: the first */
	CHECK(mp[0].nto > 0 && mp[0].to == mp[1].to);
	CHECK(mp[2].nto > 0 && mp[2].to == mp[3].to);
	CHECK(mp[0].to != mp[2].to && mp[0].nto != mp[2].nto);
	struct cp_policy_cache *c = m->policy_cache;
	m->policy_cache = NULL;
	for (size_t i = 0; i < 4; i += 2) {
		struct cp_policy_matched own;
		cp_policy_match(a, m, cp_xds_mesh_dataplane(m, km_str_c(names[i])), t, false, &own);
		CHECK(own.to != mp[i].to && own.nto == mp[i].nto);
		for (size_t k = 0; k < own.nto && k < mp[i].nto; k++) {
			CHECK_STREQ(own.to[k].kri, mp[i].to[k].kri);
			CHECK(km_json_equal(own.to[k].conf, mp[i].to[k].conf));
			CHECK(own.to[k].inputs_len == mp[i].to[k].inputs_len &&
			      memcmp(own.to[k].inputs, mp[i].to[k].inputs, own.to[k].inputs_len) == 0);
		}
	}
	m->policy_cache = c;
	cp_xds_mesh_free(m);
}

/* More selecting-policy lists than the cache keeps (256): the lists past
 * it are built by each match on its own, and every match still equals one
 * without the cache. */
static void test_policy_cache_full(struct km_arena *a)
{
	enum { N = 300 };
	char name[32], labels[64], spec[512];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "solo-%d", i);
		snprintf(labels, sizeof(labels), ",\"solo\":\"%d\"", i);
		put_dp_labels(a, name, "solo", 20 + i % 200, 40001, false, labels);
		snprintf(name, sizeof(name), "solo-timeout-%d", i);
		snprintf(spec, sizeof(spec),
			 "{\"targetRef\":{\"kind\":\"Dataplane\",\"labels\":{\"solo\":\"%d\"}},\"to\":[{\"targetRef\":"
			 "{\"kind\":\"Mesh\"},\"default\":{\"connectionTimeout\":\"%ds\"}}]}",
			 i, 1 + i);
		put(a, "MeshTimeout", name, NULL, spec);
	}
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	CHECK(m != NULL);
	if (!m)
		return;
	const struct km_rtype *t = km_rtype_by_name(KM_STR("MeshTimeout"));
	const struct cp_policy_to_rule *first[N];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "solo-%d", i);
		struct cp_policy_matched mp;
		cp_policy_match(a, m, cp_xds_mesh_dataplane(m, km_str_c(name)), t, false, &mp);
		first[i] = mp.to;
	}
	int cached = 0, own = 0;
	struct cp_policy_cache *c = m->policy_cache;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "solo-%d", i);
		const struct cp_xds_dataplane *dp = cp_xds_mesh_dataplane(m, km_str_c(name));
		struct cp_policy_matched again, plain;
		cp_policy_match(a, m, dp, t, false, &again);
		if (again.to == first[i])
			cached++;
		else
			own++;
		m->policy_cache = NULL;
		cp_policy_match(a, m, dp, t, false, &plain);
		m->policy_cache = c;
		CHECK(again.nto == plain.nto && again.nto > 0);
		for (size_t k = 0; k < again.nto && k < plain.nto; k++) {
			CHECK_STREQ(again.to[k].kri, plain.to[k].kri);
			CHECK(km_json_equal(again.to[k].conf, plain.to[k].conf));
		}
	}
	/* each proxy's list is its own: the first 256 are kept */
	CHECK(cached == 256 && own == N - 256);
	cp_xds_mesh_free(m);
}

/* A Dataplane of service <svc> calling every one of <svcs> (name:port,
 * NULL-ended). */
static void put_dp_of(struct km_arena *a, const char *name, const char *svc, int ip, const char *const *svcs)
{
	struct km_buf spec = KM_BUF_INIT;
	km_buf_printf(&spec,
		      "{\"networking\":{\"address\":\"10.0.1.%d\",\"inbound\":[{\"port\":8080,\"protocol\":\"http\","
		      "\"tags\":{\"kuma.io/service\":\"%s\"}}],\"outbound\":[",
		      ip, svc);
	for (int i = 0; svcs[i]; i++) {
		const char *colon = strchr(svcs[i], ':');
		km_buf_printf(&spec, "%s{\"port\":%d,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"%.*s\",\"port\":%s}}",
			      i ? "," : "", 50001 + i, (int)(colon - svcs[i]), svcs[i], colon + 1);
	}
	km_buf_puts(&spec, "]}}");
	char labels[128];
	snprintf(labels, sizeof(labels), "{\"app\":\"%s\"}", svc);
	put(a, "Dataplane", name, labels, km_buf_cstr(&spec));
	km_buf_fini(&spec);
}

static void put_dp_to(struct km_arena *a, const char *name, int ip, const char *const *svcs)
{
	put_dp_of(a, name, name, ip, svcs);
}

/* Clusters and listener bodies of destinations that differ only in their
 * names are filled from a shape after the first two (cp/xds/shape.h): the
 * same bytes as generating and encoding them, with and without mTLS, for
 * HTTP and TCP, names whose length moves a length prefix past one byte,
 * a service with two identities. */
static void test_shapes(struct km_arena *a)
{
	static const char *const svcs[] = {
	    "h0:80", "h1:80", "h2:81", "h3-with-a-much-longer-name-to-grow-a-length-prefix-xxxxxxx:8080",
	    "h4:80", "t0:5432", "t1:5433", "t2:5434", "t3:5435", "w0:80", "w1:80", "w2:80", "w3:80", NULL};
	char spec[1024];
	for (int i = 0; svcs[i]; i++) {
		const char *colon = strchr(svcs[i], ':');
		char name[128];
		snprintf(name, sizeof(name), "%.*s", (int)(colon - svcs[i]), svcs[i]);
		int port = (int)strtol(colon + 1, NULL, 10);
		if (name[0] == 'w') /* two identities */
			snprintf(spec, sizeof(spec),
				 "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"app\":\"%s\"}}},"
				 "\"ports\":[{\"port\":%d,\"targetPort\":%d,\"appProtocol\":\"http\"}],"
				 "\"identities\":[{\"type\":\"SpiffeID\",\"value\":\"spiffe://default.zone-1.mesh.local/workload/%s\"},"
				 "{\"type\":\"SpiffeID\",\"value\":\"spiffe://default/%s-legacy\"}]}",
				 name, port, port, name, name);
		else
			snprintf(spec, sizeof(spec),
				 "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"app\":\"%s\"}}},"
				 "\"ports\":[{\"port\":%d,\"targetPort\":%d,\"appProtocol\":\"%s\"}],"
				 "\"identities\":[{\"type\":\"SpiffeID\",\"value\":\"spiffe://default.zone-1.mesh.local/workload/%s\"}]}",
				 name, port, port, name[0] == 'h' ? "http" : "tcp", name);
		put(a, "MeshService", name, NULL, spec);
	}
	put_dp_to(a, "shaper-1", 1, svcs);
	put_dp_to(a, "shaper-2", 2, svcs);
	struct cp_xds_share *sh = cp_xds_share_new();
	for (int tls_on = 0; tls_on <= 1; tls_on++) {
		/* shaper-1 makes every outbound: the first of a shape records
		 * it, the second checks it, the rest are filled */
		cp_xds_share_clear(sh);
		only = "shaper-1";
		struct cp_xds_share_stats st = {0};
		check_all(a, sh, tls_on, &st, NULL);
		CHECK(st.patched >= 6);
		CHECK(st.shape_mismatches == 0);
		/* shaper-2 listens on the same ports: everything shared
		 * (with TLS on, check_all may leave one of them plaintext) */
		only = "shaper-2";
		struct cp_xds_share_stats st2 = {0};
		check_all(a, sh, tls_on, &st2, NULL);
		CHECK(st2.shape_mismatches == 0);
		if (!tls_on)
			CHECK(st2.patched == 0 && st2.shared == 13 * 3);
		/* every fill checked against the encoding */
		cp_xds_share_clear(sh);
		cp_xds_share_verify_shapes(sh, true);
		only = "shaper-1";
		struct cp_xds_share_stats st3 = {0};
		check_all(a, sh, tls_on, &st3, NULL);
		CHECK(st3.patched == 0 && st3.shape_mismatches == 0 && st3.encoded == st.encoded);
		cp_xds_share_verify_shapes(sh, false);
		only = NULL;
	}
	/* four instances of one service, plaintext then all with the same
	 * identity: from the third on their local resources but secrets are
	 * filled from the first's shapes, the second having checked them and
	 * their list, and none is generated; the same bytes as generating
	 * them */
	static const char *const few[] = {"h0:80", "t0:5432", NULL};
	const char *twins[] = {"twin-1", "twin-2", "twin-3", "twin-4"};
	for (int i = 0; i < 4; i++)
		put_dp_of(a, twins[i], "twin", 11 + i, few);
	all_tls = true;
	for (int tls_on = 0; tls_on <= 1; tls_on++) {
		cp_xds_share_clear(sh);
		struct cp_xds_share_stats st = {0};
		for (int i = 0; i < 4; i++) {
			only = twins[i];
			struct cp_xds_share_stats one = {0};
			check_all(a, sh, tls_on, &one, NULL);
			CHECK(i >= 2 || one.patched == 0);
			/* from the third on nothing local is generated */
			CHECK(one.local_filled == (i >= 2));
			st.patched += one.patched;
			st.shape_mismatches += one.shape_mismatches;
		}
		only = NULL;
		/* inbound cluster and listener, admin listener of two */
		CHECK(st.patched >= 6);
		CHECK(st.shape_mismatches == 0);
	}
	all_tls = false;
	cp_xds_share_free(sh);
}

/* MeshTimeout, MeshRetry and MeshCircuitBreaker confs that differ only in
 * their durations fill the outbound clusters and listeners from the
 * shapes the first recorded (the durations are holes by tag,
 * cp_policy_conf_var): the same bytes as generating them, 0s (an empty
 * Duration) and fractions among them; a conf with other fields records
 * shapes of its own. */
static void test_conf_shapes(struct km_arena *a)
{
	static const char *const rounds[][7] = {
	    {"4s", "100s", "1.5s", "20s", "3s", "30s", "40s"},
	    {"0s", "7200s", "0s", "1m", "0s", "2h", "0.25s"},
	    {"123456s", "1ms", "15s", "0.5s", "10s", "0s", "1h30m"},
	};
	static const char *const cb[][2] = {{"10s", "1m"}, {"3s", "7s"}, {"0.5s", "2h"}};
	struct cp_xds_share *sh = cp_xds_share_new();
	for (int tls_on = 0; tls_on <= 1; tls_on++) {
		cp_xds_share_clear(sh);
		for (size_t r = 0; r < sizeof(rounds) / sizeof(rounds[0]) + 1; r++) {
			char spec[1024];
			const char *const *v = rounds[r % 3];
			if (r < 3)
				snprintf(spec, sizeof(spec),
					 "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
					 "\"default\":{\"connectionTimeout\":\"%s\",\"idleTimeout\":\"%s\",\"http\":{"
					 "\"requestTimeout\":\"%s\",\"streamIdleTimeout\":\"%s\",\"requestHeadersTimeout\":\"%s\","
					 "\"maxStreamDuration\":\"%s\",\"maxConnectionDuration\":\"%s\"}}}]}",
					 v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
			else /* no stream idle timeout: routes get the default */
				snprintf(spec, sizeof(spec),
					 "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
					 "\"default\":{\"connectionTimeout\":\"9s\",\"http\":{\"requestTimeout\":\"2s\"}}}]}");
			put(a, "MeshTimeout", "conf-holes", NULL, spec);
			/* MeshRetry's and MeshCircuitBreaker's durations too */
			snprintf(spec, sizeof(spec),
				 "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
				 "\"default\":{\"http\":{\"numRetries\":3,\"perTryTimeout\":\"%s\",\"backOff\":{"
				 "\"baseInterval\":\"%s\",\"maxInterval\":\"%s\"},\"rateLimitedBackOff\":{"
				 "\"resetHeaders\":[{\"name\":\"retry-after\",\"format\":\"Seconds\"}],\"maxInterval\":\"%s\"}},\"grpc\":{\"perTryTimeout\":\"%s\"}}}]}",
				 v[2], v[6], v[1], v[3], v[0]);
			put(a, "MeshRetry", "conf-holes-retry", NULL, spec);
			snprintf(spec, sizeof(spec),
				 "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
				 "\"default\":{\"outlierDetection\":{\"interval\":\"%s\",\"baseEjectionTime\":\"%s\","
				 "\"detectors\":{\"totalFailures\":{\"consecutive\":5}}}}}]}",
				 cb[r % 3][0], cb[r % 3][1]);
			put(a, "MeshCircuitBreaker", "conf-holes-cb", NULL, spec);
			cp_xds_share_next(sh);
			only = "shaper-1";
			struct cp_xds_share_stats st = {0};
			check_all(a, sh, tls_on, &st, NULL);
			only = NULL;
			CHECK(st.shape_mismatches == 0);
			/* after the first conf every cluster and listener of its
			 * 13 outbounds is filled (its local resources, without a
			 * memo here, and load assignments are encoded) */
			if (r == 1 || r == 2)
				CHECK(st.patched == 13 * 2);
			else
				CHECK(st.patched < 13 * 2);
		}
		/* every fill checked against the encoding, with new values */
		put(a, "MeshTimeout", "conf-holes", NULL,
		    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},"
		    "\"default\":{\"connectionTimeout\":\"11s\",\"http\":{\"requestTimeout\":\"0s\"}}}]}");
		cp_xds_share_next(sh);
		cp_xds_share_verify_shapes(sh, true);
		only = "shaper-1";
		struct cp_xds_share_stats st = {0};
		check_all(a, sh, tls_on, &st, NULL);
		only = NULL;
		CHECK(st.encoded > 0 && st.patched == 0 && st.shape_mismatches == 0);
		cp_xds_share_verify_shapes(sh, false);
	}
	cp_xds_share_free(sh);
	CHECK(cp_store_remove(rt.store, km_rtype_by_name(KM_STR("MeshTimeout")), KM_STR("default"), KM_STR("conf-holes"), 0) == 0);
	CHECK(cp_store_remove(rt.store, km_rtype_by_name(KM_STR("MeshRetry")), KM_STR("default"), KM_STR("conf-holes-retry"),
			      0) == 0);
	CHECK(cp_store_remove(rt.store, km_rtype_by_name(KM_STR("MeshCircuitBreaker")), KM_STR("default"),
			      KM_STR("conf-holes-cb"), 0) == 0);
}

/* The plugins that route (MeshHTTPRoute, MeshTCPRoute: backend-only
 * outbounds), shape load assignments (MeshLoadBalancingStrategy), depend on
 * the proxy (MeshAccessLog, MeshHealthCheck) or edit inbounds
 * (MeshFaultInjection, MeshRateLimit), every listener (MeshTrace) or any
 * resource (MeshProxyPatch):
 * through the share table (twice: the
 * second time from it, shapes checked against their encoding) every proxy
 * gets exactly what a whole-set generation encodes, with and without an
 * identity. */
static void test_route_and_plugin_policies(struct km_arena *a)
{
	put_svc(a, "extra", 80, "http");
	put_dp(a, "extra-1", "extra", 20, 40001, false);
	put(a, "MeshHTTPRoute", "to-extra", NULL,
	    "{\"to\":[{\"targetRef\":{\"kind\":\"MeshService\",\"labels\":{\"kuma.io/display-name\":\"api\"}},"
	    "\"rules\":[{\"matches\":[{\"path\":{\"type\":\"PathPrefix\",\"value\":\"/x\"}}],\"default\":{\"backendRefs\":["
	    "{\"kind\":\"MeshService\",\"labels\":{\"kuma.io/display-name\":\"extra\"},\"port\":80,\"weight\":3},"
	    "{\"kind\":\"MeshService\",\"labels\":{\"kuma.io/display-name\":\"api\"},\"port\":80,\"weight\":1}],"
	    "\"filters\":[{\"type\":\"RequestMirror\",\"requestMirror\":{\"backendRef\":{\"kind\":\"MeshService\","
	    "\"labels\":{\"kuma.io/display-name\":\"cache\"},\"port\":6379}}}]}}]}]}");
	put(a, "MeshTCPRoute", "db-to-extra", NULL,
	    "{\"to\":[{\"targetRef\":{\"kind\":\"MeshService\",\"labels\":{\"kuma.io/display-name\":\"db\"}},"
	    "\"rules\":[{\"default\":{\"backendRefs\":[{\"kind\":\"MeshService\",\"labels\":{\"kuma.io/display-name\":"
	    "\"extra\"},\"port\":80}]}}]}]}");
	put(a, "MeshLoadBalancingStrategy", "lb", NULL,
	    "{\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{\"loadBalancer\":{\"type\":\"Maglev\"},"
	    "\"hashPolicies\":[{\"type\":\"Header\",\"header\":{\"name\":\"x-user\"}}],"
	    "\"localityAwareness\":{\"localZone\":{\"affinityTags\":[{\"key\":\"app\"}]}}}}]}");
	put(a, "MeshAccessLog", "logs", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{\"backends\":["
	    "{\"type\":\"File\",\"file\":{\"path\":\"/tmp/out.log\"}}]}}]}");
	put(a, "MeshHealthCheck", "hc", NULL,
	    "{\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{\"interval\":\"5s\",\"http\":{\"path\":\"/h\"},"
	    "\"tcp\":{}}}]}");
	put(a, "MeshFaultInjection", "faults", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"rules\":[{\"default\":{\"http\":[{\"abort\":{\"httpStatus\":503,"
	    "\"percentage\":1}}]}}]}");
	put(a, "MeshRateLimit", "limits", NULL,
	    "{\"targetRef\":{\"kind\":\"Dataplane\"},\"rules\":[{\"default\":{\"local\":{\"http\":{\"requestRate\":"
	    "{\"num\":5,\"interval\":\"1s\"}}}}}]}");
	put(a, "MeshTrace", "trace", NULL,
	    "{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{\"backends\":[{\"type\":\"Datadog\",\"datadog\":"
	    "{\"url\":\"http://dd.local:8126\",\"splitService\":true}}]}}");
	put(a, "MeshProxyPatch", "patch", NULL,
	    "{\"targetRef\":{\"kind\":\"Dataplane\",\"labels\":{\"app\":\"web\"}},\"default\":{\"appendModifications\":["
	    "{\"cluster\":{\"operation\":\"Patch\",\"match\":{\"origin\":\"outbound\"},\"value\":\"connectTimeout: 9s\"}},"
	    "{\"virtualHost\":{\"operation\":\"Patch\",\"match\":{\"origin\":\"outbound\"},"
	    "\"jsonPatches\":[{\"op\":\"add\",\"path\":\"/domains/-\",\"value\":\"x.local\"}]}}]}}");
	struct cp_xds_share *sh = cp_xds_share_new();
	cp_xds_share_verify_shapes(sh, true);
	for (int tls_on = 0; tls_on <= 1; tls_on++) {
		for (int round = 0; round < 2; round++) {
			struct cp_xds_share_stats st = {0};
			check_all(a, sh, tls_on, &st, NULL);
			CHECK(st.shape_mismatches == 0);
			CHECK(round == 0 || st.shared > 0);
		}
		cp_xds_share_clear(sh);
	}
	cp_xds_share_free(sh);
	/* web-1's configuration: the route's backends have clusters (extra
	 * and cache as backend only: no listener), the db outbound is a TCP
	 * proxy to extra */
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	struct cp_xds_metadata md = {0};
	struct cp_xds_resources rs;
	cp_xds_generate(a, m, cp_xds_mesh_dataplane(m, KM_STR("web-1")), &md, &rs);
	CHECK(km_json_get(rs.by_type[CP_XDS_CLUSTER], "kri_msvc_default_zone-1__extra_80") != NULL);
	CHECK(km_json_get(rs.by_type[CP_XDS_ENDPOINT], "kri_msvc_default_zone-1__extra_80") != NULL);
	CHECK(km_json_get(rs.by_type[CP_XDS_LISTENER], "kri_msvc_default_zone-1__extra_80") == NULL);
	cp_xds_mesh_free(m);
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	store_setup(&rt, &cfg, a);
	test_equal_and_shared(a);
	test_local_memo(a);
	test_across_contexts(a);
	test_policy_types(a);
	test_policy_cache(a);
	test_shapes(a);
	test_conf_shapes(a);
	test_route_and_plugin_policies(a);
	test_policy_cache_full(a);
	km_arena_free(a);
	cp_store_free(rt.store);
	cp_config_fini(&cfg);
	return test_summary();
}
