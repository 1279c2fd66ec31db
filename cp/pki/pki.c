/* SPDX-License-Identifier: Apache-2.0 */
/* Workload identity (see pki.h). Three parts: the controller (leader only,
 * one pass per dirty mesh in its own arena, writing only what differs), the
 * per-mesh read cache (identities, their CAs, trust) rebuilt lazily after a
 * change event, and the leaf table (one heap entry per Dataplane). */
#include "cp/pki/pki.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "codec/jsonf.h"
#include "cp/api/labels.h"
#include "cp/pki/spiffe.h"
#include "cp/xds/dpauth.h"
#include "resource/validate.h"

#define DEFAULT_LIFETIME_NS (5LL * 24 * 3600 * 1000000000LL) /* upstream: 5 days */

/* ---- per-mesh cache ---- */

struct ident {
	struct km_str name;
	struct km_json *labels, *spec;
	const char *kri;
	struct km_str provider;
	bool ready;
	int64_t lifetime_ns;
	bool ca_tried;
	struct cp_pki_ca *ca; /* owned; freed with the cache */
	const char *ca_err;
	const char *trust_domain, *td_err;
	uint64_t key; /* cp_pki_identity_key, once per cache generation */
	bool key_done;
};

struct mesh_cache {
	char *name;
	struct km_arena *a;
	struct ident *ids;
	size_t nids;
	const char *trust_pem;
	struct km_json *trust_domains, *trust_kris;
	uint64_t trust_fp; /* of trust_domains (cp_pki_trust_fp) */
	struct mesh_cache *next;
};

/* ---- leaves ---- */

struct leaf {
	char *mesh, *dp;
	char *identity, *kri, *spiffe_id, *trust_domain;
	unsigned char fp[32];
	int64_t lifetime_ns, issued, not_after, renew_at;
	char *cert, *key;
	uint64_t pem_fp; /* cp_pki_pem_fp(cert, key) */
	const char *key_type;
	struct leaf *next;
};

struct cp_pki {
	struct cp_runtime *rt;
	struct km_timer timer; /* debounce of change events */
	struct km_timer retry; /* store errors and not-ready identities */
	char **dirty;
	size_t ndirty, cap;
	bool active, running;
	enum cp_pki_key autogen_key;
	struct mesh_cache *meshes;
	struct leaf **buckets;
	size_t nbuckets, nleaves;
	uint64_t issued;
	int64_t (*now)(void);
	/* issuances handed out (cp_pki_leaf_deferred) and not finished: their
	 * CAs must outlive them, so caches dropped meanwhile wait here */
	size_t inflight;
	struct mesh_cache *graveyard;
	struct expiry *expiries; /* the last leaf issued per mesh (metrics) */
};

struct expiry {
	char *mesh;
	int64_t not_after;
	struct expiry *next;
};

static uint64_t hash2(struct km_str a, struct km_str b)
{
	return km_fnv(km_fnv_sep(km_fnv(KM_FNV_INIT, a.ptr, a.len), 0x1f), b.ptr, b.len);
}

/* Frees what a leaf holds of its certificate (it gets another). */
static void leaf_clear(struct leaf *l)
{
	free(l->identity);
	free(l->kri);
	free(l->spiffe_id);
	free(l->trust_domain);
	free(l->cert);
	free(l->key);
}

static void leaf_free(struct leaf *l)
{
	free(l->mesh);
	free(l->dp);
	leaf_clear(l);
	free(l);
}

static struct leaf **leaf_slot(struct cp_pki *p, struct km_str mesh, struct km_str dp)
{
	if (!p->nbuckets)
		return NULL;
	struct leaf **s = &p->buckets[hash2(mesh, dp) & (p->nbuckets - 1)];
	while (*s && !(km_str_eqc(mesh, (*s)->mesh) && km_str_eqc(dp, (*s)->dp)))
		s = &(*s)->next;
	return s;
}

static void leaf_grow(struct cp_pki *p)
{
	size_t n = p->nbuckets ? p->nbuckets * 2 : 256;
	struct leaf **b = km_calloc(n, sizeof(*b));
	for (size_t i = 0; i < p->nbuckets; i++)
		for (struct leaf *l = p->buckets[i], *next; l; l = next) {
			next = l->next;
			struct leaf **s = &b[hash2(km_str_c(l->mesh), km_str_c(l->dp)) & (n - 1)];
			l->next = *s;
			*s = l;
		}
	free(p->buckets);
	p->buckets = b;
	p->nbuckets = n;
}

static void leaf_drop(struct cp_pki *p, struct km_str mesh, struct km_str dp)
{
	struct leaf **s = leaf_slot(p, mesh, dp);
	if (s && *s) {
		struct leaf *l = *s;
		*s = l->next;
		leaf_free(l);
		p->nleaves--;
	}
}

static void leaf_drop_mesh(struct cp_pki *p, struct km_str mesh)
{
	for (size_t i = 0; i < p->nbuckets; i++)
		for (struct leaf **s = &p->buckets[i]; *s;) {
			if (km_str_eqc(mesh, (*s)->mesh)) {
				struct leaf *l = *s;
				*s = l->next;
				leaf_free(l);
				p->nleaves--;
			} else {
				s = &(*s)->next;
			}
		}
}

static void cache_free(struct mesh_cache *m)
{
	for (size_t i = 0; i < m->nids; i++)
		cp_pki_x509_ca_free(m->ids[i].ca);
	km_arena_free(m->a);
	free(m->name);
	free(m);
}

/* Frees the caches dropped while issuances were out. */
static void graveyard_free(struct cp_pki *p)
{
	while (p->graveyard) {
		struct mesh_cache *m = p->graveyard;
		p->graveyard = m->next;
		cache_free(m);
	}
}

static void invalidate(struct cp_pki *p, struct km_str mesh, bool all)
{
	for (struct mesh_cache **s = &p->meshes; *s;) {
		if (all || km_str_eqc(mesh, (*s)->name)) {
			struct mesh_cache *m = *s;
			*s = m->next;
			if (p->inflight) {
				m->next = p->graveyard;
				p->graveyard = m;
			} else {
				cache_free(m);
			}
		} else {
			s = &(*s)->next;
		}
	}
}

/* ---- reading the store ---- */

static const struct km_rtype *rtype(const char *name)
{
	return km_rtype_by_name(km_str_c(name));
}

static struct km_json *parse(struct km_arena *a, struct km_str text)
{
	struct km_json *j = NULL;
	if (!text.len || km_json_parse(a, text.ptr, text.len, &j, NULL))
		return NULL;
	return j;
}

static const char *not_found(struct km_arena *a, const char *type, struct km_str name, struct km_str mesh)
{
	return km_arena_printf(a, "resource not found: type=\"%s\" name=\"%.*s\" mesh=\"%.*s\"", type,
			       KM_STR_FMT(name), KM_STR_FMT(mesh));
}

/* The bytes of Secret <name> in <mesh>; NULL with <*err> when unreadable. */
static const char *read_secret(struct cp_pki *p, struct km_arena *a, struct km_str mesh, struct km_str name,
			       size_t *len, const char **err, bool *missing)
{
	struct km_resource r;
	int rc = cp_store_get(p->rt->store, a, rtype("Secret"), mesh, name, &r);
	if (missing)
		*missing = rc == -KM_E_NOT_FOUND;
	if (rc) {
		*err = rc == -KM_E_NOT_FOUND ? not_found(a, "Secret", name, mesh) :
					       km_arena_printf(a, "cannot read Secret %.*s: %s", KM_STR_FMT(name),
							       km_strerror(rc));
		return NULL;
	}
	struct km_json *spec = parse(a, r.spec);
	struct km_buf b = KM_BUF_INIT;
	if (cp_pki_base64_decode(&b, km_json_get_string(spec, "data"))) {
		km_buf_fini(&b);
		*err = km_arena_printf(a, "Secret %.*s: data is not valid base64", KM_STR_FMT(name));
		return NULL;
	}
	const char *out = km_arena_strndup(a, b.data ? b.data : "", b.len);
	*len = b.len;
	km_buf_fini(&b);
	return out;
}

static const char *read_file(struct km_arena *a, const char *path, size_t *len, const char **err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		*err = km_arena_printf(a, "open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct km_buf b = {.max = 1 << 20};
	char tmp[4096];
	size_t n;
	int rc = 0;
	while (!rc && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		rc = km_buf_append(&b, tmp, n);
	fclose(f);
	if (rc) {
		km_buf_fini(&b);
		*err = km_arena_printf(a, "read %s: file too large", path);
		return NULL;
	}
	const char *out = km_arena_strndup(a, b.data ? b.data : "", b.len);
	*len = b.len;
	km_buf_fini(&b);
	return out;
}

/* upstream SecureDataSource.ReadByControlPlane. */
static const char *read_source(struct cp_pki *p, struct km_arena *a, struct km_str mesh, const struct km_json *sds,
			       size_t *len, const char **err)
{
	struct km_str type = km_json_get_string(sds, "type");
	if (km_str_eqc(type, "Secret")) {
		struct km_str name = km_json_get_string(km_json_get(sds, "secretRef"), "name");
		return read_secret(p, a, mesh, name, len, err, NULL);
	}
	if (km_str_eqc(type, "InsecureInline")) {
		struct km_str v = km_json_get_string(km_json_get(sds, "insecureInline"), "value");
		*len = v.len;
		return km_arena_strndup(a, v.ptr ? v.ptr : "", v.len);
	}
	if (km_str_eqc(type, "EnvVar")) {
		struct km_str name = km_json_get_string(km_json_get(sds, "envVar"), "name");
		const char *v = getenv(km_arena_strndup(a, name.ptr ? name.ptr : "", name.len));
		if (!v) {
			*err = km_arena_printf(a, "environment variable: %.*s is not defined", KM_STR_FMT(name));
			return NULL;
		}
		*len = strlen(v);
		return km_arena_strdup(a, v);
	}
	if (km_str_eqc(type, "File")) {
		struct km_str ps = km_json_get_string(km_json_get(sds, "file"), "path");
		const char *path = km_arena_strndup(a, ps.ptr ? ps.ptr : "", ps.len);
		const char *bad = NULL;
		if (!*path)
			bad = "file path cannot be empty";
		else if (strstr(path, ".."))
			bad = km_arena_printf(a, "file path contains directory traversal sequence: %s", path);
		else if (path[0] != '/')
			bad = km_arena_printf(a, "file path must be absolute: %s", path);
		if (bad) {
			*err = km_arena_printf(a, "invalid file path: %s", bad);
			return NULL;
		}
		return read_file(a, path, len, err);
	}
	*err = km_arena_printf(a, "datasource type: %.*s is not supported", KM_STR_FMT(type));
	return NULL;
}

/* ---- MeshIdentity accessors ---- */

static const struct km_json *bundled_of(const struct km_json *spec)
{
	const struct km_json *b = km_json_get(km_json_get(spec, "provider"), "bundled");
	return b && b->kind == KM_JSON_OBJECT ? b : NULL;
}

static bool flag(const struct km_json *obj, const char *key)
{
	const struct km_json *v = km_json_get(obj, key);
	return v && v->kind == KM_JSON_BOOL && v->b;
}

static bool autogenerated(const struct km_json *bundled)
{
	return flag(km_json_get(bundled, "autogenerate"), "enabled");
}

static struct km_str display_name(const struct km_json *labels, struct km_str name)
{
	struct km_str d = km_json_get_string(labels, "kuma.io/display-name");
	return d.len ? d : name;
}

static bool is_ready(const struct km_json *status)
{
	const struct km_json *c = km_json_get(status, "conditions");
	for (size_t i = 0; c && c->kind == KM_JSON_ARRAY && i < c->len; i++)
		if (km_str_eqc(km_json_get_string(c->items[i], "type"), "Ready") &&
		    km_str_eqc(km_json_get_string(c->items[i], "status"), "True"))
			return true;
	return false;
}

static int64_t lifetime_of(const struct km_json *spec)
{
	struct km_str e = km_json_get_string(km_json_get(bundled_of(spec), "certificateParameters"), "expiry");
	int64_t ns;
	if (e.len && km_duration_parse(e, &ns) == 0 && ns > 0)
		return ns;
	return DEFAULT_LIFETIME_NS;
}

struct pair {
	const char *cert, *key;
	size_t cert_len, key_len;
};

/* upstream loadCAKeyPair: the provided sources, or the autogenerated Secrets.
 * <*missing> tells an autogenerated pair that does not exist yet. */
static int load_pair(struct cp_pki *p, struct km_arena *a, struct km_str mesh, struct km_str name,
		     const struct km_json *labels, const struct km_json *spec, struct pair *out,
		     const char **err, bool *missing)
{
	const struct km_json *b = bundled_of(spec);
	*missing = false;
	if (!autogenerated(b) && km_json_get(b, "ca")) {
		const struct km_json *ca = km_json_get(b, "ca");
		out->cert = read_source(p, a, mesh, km_json_get(ca, "certificate"), &out->cert_len, err);
		if (!out->cert)
			return -EINVAL;
		out->key = read_source(p, a, mesh, km_json_get(ca, "privateKey"), &out->key_len, err);
		return out->key ? 0 : -EINVAL;
	}
	struct km_str dn = display_name(labels, name);
	bool m1 = false, m2 = false;
	out->cert = read_secret(p, a, mesh, km_str_c(km_arena_printf(a, "%.*s-root-ca", KM_STR_FMT(dn))),
				&out->cert_len, err, &m1);
	if (!out->cert) {
		*missing = m1;
		return -EINVAL;
	}
	out->key = read_secret(p, a, mesh, km_str_c(km_arena_printf(a, "%.*s-private-key", KM_STR_FMT(dn))),
			       &out->key_len, err, &m2);
	*missing = m2;
	return out->key ? 0 : -EINVAL;
}

/* Builds the cache of <mesh> from the store; NULL when the store fails. */
static struct mesh_cache *cache_get(struct cp_pki *p, struct km_str mesh)
{
	for (struct mesh_cache *m = p->meshes; m; m = m->next)
		if (km_str_eqc(mesh, m->name))
			return m;
	struct km_arena *a = km_arena_new(0);
	struct cp_list_opts o = {.mesh = mesh};
	struct cp_list_result ids, trusts;
	if (cp_store_list(p->rt->store, a, rtype("MeshIdentity"), &o, &ids) ||
	    cp_store_list(p->rt->store, a, rtype("MeshTrust"), &o, &trusts)) {
		km_arena_free(a);
		return NULL;
	}
	struct mesh_cache *m = km_calloc(1, sizeof(*m));
	m->name = km_strndup(mesh.ptr, mesh.len);
	m->a = a;
	m->ids = km_arena_alloc(a, (ids.len + 1) * sizeof(*m->ids));
	for (size_t i = 0; i < ids.len; i++) {
		struct ident *id = &m->ids[m->nids];
		id->spec = parse(a, ids.items[i].spec);
		if (!id->spec)
			continue;
		id->name = ids.items[i].name;
		id->labels = parse(a, ids.items[i].labels);
		id->kri = km_resource_kri(a, &ids.items[i]);
		id->provider = km_json_get_string(km_json_get(id->spec, "provider"), "type");
		id->ready = is_ready(parse(a, ids.items[i].status));
		id->lifetime_ns = lifetime_of(id->spec);
		m->nids++;
	}
	/* trust: PEMs by trust domain, in MeshTrust name order */
	struct km_buf all = KM_BUF_INIT;
	struct km_json *tds = km_json_object(a), *kris = km_json_array(a);
	for (size_t i = 0; i < trusts.len; i++) {
		struct km_json *spec = parse(a, trusts.items[i].spec);
		struct km_str td = km_json_get_string(spec, "trustDomain");
		struct km_json *bundles = km_json_get(spec, "caBundles");
		km_json_array_push(a, kris, km_json_cstring(a, km_resource_kri(a, &trusts.items[i])));
		for (size_t k = 0; bundles && bundles->kind == KM_JSON_ARRAY && k < bundles->len; k++) {
			struct km_str pem = km_json_get_string(km_json_get(bundles->items[k], "pem"), "value");
			if (!pem.len)
				continue;
			if (all.len)
				km_buf_putc(&all, '\n');
			km_buf_put_str(&all, pem);
			struct km_json *cur = km_json_get_str(tds, td);
			const char *joined = cur ? km_arena_printf(a, "%.*s\n%.*s", KM_STR_FMT(cur->s), KM_STR_FMT(pem))
						 : km_arena_strndup(a, pem.ptr, pem.len);
			km_json_set_str(a, tds, td, km_json_cstring(a, joined));
		}
	}
	km_json_sort_keys(tds);
	for (size_t i = 1; i < kris->len; i++) /* insertion sort: few MeshTrusts */
		for (size_t k = i; k > 0 && km_str_cmp(kris->items[k - 1]->s, kris->items[k]->s) > 0; k--) {
			struct km_json *t = kris->items[k];
			kris->items[k] = kris->items[k - 1];
			kris->items[k - 1] = t;
		}
	m->trust_pem = km_arena_strndup(a, all.data ? all.data : "", all.len);
	km_buf_fini(&all);
	m->trust_domains = tds;
	struct km_buf text = KM_BUF_INIT;
	km_json_write(&text, tds, 0, 0);
	m->trust_fp = km_hash(KM_FNV_INIT, text.data, text.len) | 1;
	km_buf_fini(&text);
	m->trust_kris = kris;
	m->next = p->meshes;
	p->meshes = m;
	return m;
}

/* The CA of a Bundled identity, loaded once per cache generation. */
static struct cp_pki_ca *ident_ca(struct cp_pki *p, struct mesh_cache *m, struct ident *id)
{
	if (id->ca_tried)
		return id->ca;
	id->ca_tried = true;
	struct pair pr;
	const char *err = NULL;
	bool missing;
	if (load_pair(p, m->a, km_str_c(m->name), id->name, id->labels, id->spec, &pr, &err, &missing)) {
		id->ca_err = err;
		return NULL;
	}
	struct km_buf e = KM_BUF_INIT;
	id->ca = cp_pki_x509_ca_load((struct km_str){pr.cert, pr.cert_len}, (struct km_str){pr.key, pr.key_len}, &e);
	if (!id->ca)
		id->ca_err = km_arena_printf(m->a, "failed to load CA key pair: %s", km_buf_cstr(&e));
	km_buf_fini(&e);
	return id->ca;
}

/* ---- the leaf API ---- */

static const char *environment(const struct cp_pki *p)
{
	return p->rt->cfg ? p->rt->cfg->environment : NULL;
}

static void fill(struct km_arena *a, const struct leaf *l, struct cp_pki_leaf *out, bool now)
{
	out->secret_name = km_arena_strdup(a, l->kri);
	out->identity_kri = out->secret_name;
	out->identity_name = km_arena_strdup(a, l->identity);
	out->spiffe_id = km_arena_strdup(a, l->spiffe_id);
	out->trust_domain = km_arena_strdup(a, l->trust_domain);
	out->cert_pem = km_arena_strdup(a, l->cert);
	out->key_pem = km_arena_strdup(a, l->key);
	out->pem_fp = l->pem_fp;
	out->not_after_ns = l->not_after;
	out->renew_at_ns = l->renew_at;
	out->issued_at_ns = l->issued;
	out->key_type = l->key_type;
	out->issued_now = now;
}

/* The identity best matching <dp_labels> (upstream BestMatched: most
 * matchLabels, then the smallest name), or NULL. */
static struct ident *best_match(struct mesh_cache *m, const struct km_json *dp_labels)
{
	struct ident *best = NULL;
	size_t best_count = 0;
	for (size_t i = 0; i < m->nids; i++) {
		size_t count;
		if (!cp_dpauth_identity_selects(m->ids[i].spec, dp_labels, &count))
			continue;
		if (!best || count > best_count ||
		    (count == best_count && km_str_cmp(m->ids[i].name, best->name) < 0)) {
			best = &m->ids[i];
			best_count = count;
		}
	}
	return best;
}

uint64_t cp_pki_identity_key(struct cp_pki *p, struct km_str mesh, const struct km_json *dp_labels)
{
	struct mesh_cache *m = cache_get(p, mesh);
	if (!m)
		return 1; /* store down: not "no identity" */
	struct ident *id = best_match(m, dp_labels);
	if (!id || !id->ready)
		return 0; /* plaintext either way */
	if (!id->key_done) {
		uint64_t h = km_fnv_sep(km_fnv(KM_FNV_INIT, id->name.ptr, id->name.len), '|');
		struct km_buf tmp = KM_BUF_INIT;
		h = km_json_fnv(h, &tmp, id->spec);
		h = km_json_fnv(h, &tmp, id->labels);
		km_buf_fini(&tmp);
		struct cp_pki_ca *ca = km_str_eqc(id->provider, "Spire") ? NULL : ident_ca(p, m, id);
		if (ca)
			h = km_fnv(h, cp_pki_x509_ca_fingerprint(ca), 32);
		else if (id->ca_err)
			h = km_fnv(h, id->ca_err, strlen(id->ca_err));
		h = km_fnv(h, m->trust_pem, strlen(m->trust_pem));
		id->key = h ? h : 2;
		id->key_done = true;
	}
	return id->key;
}

/* A certificate to issue, decided on the loop thread and signed on another
 * (cp_pki_leaf_deferred). */
struct cp_pki_issue {
	struct cp_pki *p;
	struct cp_pki_ca *ca;
	char *mesh, *dp, *identity, *kri, *spiffe_id, *trust_domain;
	const char *key_type;
	unsigned char fp[32];
	int64_t now, lifetime_ns;
	struct km_buf cert, key;
	int64_t not_after;
	int rc;
};

void cp_pki_issue_free(struct cp_pki_issue *r)
{
	if (!r)
		return;
	if (r->p && --r->p->inflight == 0)
		graveyard_free(r->p);
	free(r->mesh);
	free(r->dp);
	free(r->identity);
	free(r->kri);
	free(r->spiffe_id);
	free(r->trust_domain);
	km_buf_fini(&r->cert);
	km_buf_fini(&r->key);
	free(r);
}

int cp_pki_issue_run(struct cp_pki_issue *r)
{
	r->rc = cp_pki_x509_issue_mt(r->ca, r->spiffe_id, r->now, r->lifetime_ns, &r->cert, &r->key, &r->not_after);
	return r->rc;
}

const char *cp_pki_issue_cert(const struct cp_pki_issue *r)
{
	return r->rc ? NULL : km_buf_cstr(&r->cert);
}

const char *cp_pki_issue_key(const struct cp_pki_issue *r)
{
	return r->rc ? NULL : km_buf_cstr(&r->key);
}

/* <b>'s text, in a block of its size: a leaf's PEMs are kept for its
 * lifetime (the buffer grew by doubling: a P-256 certificate of 700 bytes
 * sat in 1,024). */
static char *steal_exact(struct km_buf *b)
{
	size_t n = b->len;
	return km_realloc(km_buf_steal(b), n + 1);
}

/* Keeps the leaf just issued from <r> (cert and key taken) for <r>'s
 * Dataplane and fills <out> from it. */
static void leaf_store(struct cp_pki *p, struct cp_pki_issue *r, struct km_arena *a, struct cp_pki_leaf *out)
{
	struct km_str mesh = km_str_c(r->mesh), dp_name = km_str_c(r->dp);
	p->issued++;
	struct leaf **slot = leaf_slot(p, mesh, dp_name);
	struct leaf *l = slot ? *slot : NULL;
	if (!l) {
		if (p->nleaves + 1 > p->nbuckets)
			leaf_grow(p);
		slot = leaf_slot(p, mesh, dp_name);
		l = km_calloc(1, sizeof(*l));
		l->mesh = km_strdup(r->mesh);
		l->dp = km_strdup(r->dp);
		*slot = l;
		p->nleaves++;
	} else {
		leaf_clear(l);
	}
	l->identity = km_strdup(r->identity);
	l->kri = km_strdup(r->kri);
	l->spiffe_id = km_strdup(r->spiffe_id);
	l->trust_domain = km_strdup(r->trust_domain);
	memcpy(l->fp, r->fp, 32);
	l->lifetime_ns = r->lifetime_ns;
	l->issued = r->now;
	l->not_after = r->not_after;
	/* upstream ExpiringSoon: generation + lifetime / 5 * 4 */
	l->renew_at = r->now + r->lifetime_ns / 5 * 4;
	struct expiry *e = p->expiries;
	while (e && strcmp(e->mesh, r->mesh) != 0)
		e = e->next;
	if (!e) {
		e = km_calloc(1, sizeof(*e));
		e->mesh = km_strdup(r->mesh);
		e->next = p->expiries;
		p->expiries = e;
	}
	e->not_after = r->not_after;
	l->cert = steal_exact(&r->cert);
	l->key = steal_exact(&r->key);
	l->pem_fp = cp_pki_pem_fp(l->cert, l->key);
	l->key_type = r->key_type;
	fill(a, l, out, true);
}

int cp_pki_issue_finish(struct cp_pki *p, struct cp_pki_issue *r, struct km_arena *a, struct cp_pki_leaf *out)
{
	memset(out, 0, sizeof(*out));
	int rc = r->rc;
	if (rc)
		out->error = "failed to generate X509 certificate";
	else
		leaf_store(p, r, a, out);
	cp_pki_issue_free(r);
	return rc;
}

/* cp_pki_leaf; with <defer>, a certificate due is not issued here but
 * handed back in *<defer> (-EINPROGRESS, <out> filled but for the
 * certificate, key and times). */
static int leaf_get(struct cp_pki *p, struct km_arena *a, struct km_str mesh, struct km_str dp_name,
		    const struct km_json *dp_labels, struct cp_pki_leaf *out, struct cp_pki_issue **defer)
{
	memset(out, 0, sizeof(*out));
	struct mesh_cache *m = cache_get(p, mesh);
	if (!m) {
		out->error = "store unavailable";
		return -KM_E_UNAVAILABLE;
	}
	struct ident *best = best_match(m, dp_labels);
	if (!best) {
		leaf_drop(p, mesh, dp_name);
		return -KM_E_NOT_FOUND;
	}
	struct ident *id = best;
	out->identity_name = km_arena_strndup(a, id->name.ptr, id->name.len);
	out->identity_kri = km_arena_strdup(a, id->kri);
	out->secret_name = out->identity_kri;
	if (!id->ready) {
		out->error = "identity hasn't been initialized yet";
		out->pending = true;
		return -EAGAIN;
	}
	if (!id->trust_domain && !id->td_err)
		cp_pki_spiffe_trust_domain(m->a, id->spec, mesh, id->labels, p->rt->zone, &id->trust_domain,
					   &id->td_err);
	if (id->td_err) {
		out->error = km_arena_strdup(a, id->td_err);
		return -EINVAL;
	}
	out->trust_domain = km_arena_strdup(a, id->trust_domain);
	const char *sid = NULL, *err = NULL;
	if (cp_pki_spiffe_id(a, id->spec, id->trust_domain, dp_labels, environment(p), &sid, &err)) {
		out->error = err;
		return -EINVAL;
	}
	out->spiffe_id = sid;
	if (km_str_eqc(id->provider, "Spire")) {
		out->external = true;
		return 0;
	}
	if (!km_str_eqc(id->provider, "Bundled")) {
		out->error = km_arena_printf(a, "identity provider %.*s not supported", KM_STR_FMT(id->provider));
		return -ENOTSUP;
	}
	struct cp_pki_ca *ca = ident_ca(p, m, id);
	if (!ca) {
		out->error = km_arena_strdup(a, id->ca_err ? id->ca_err : "CA key pair is not defined");
		return -EAGAIN;
	}
	int64_t now = p->now();
	const unsigned char *fp = cp_pki_x509_ca_fingerprint(ca);
	struct leaf **slot = leaf_slot(p, mesh, dp_name);
	struct leaf *l = slot ? *slot : NULL;
	if (l && km_str_eqc(id->name, l->identity) && memcmp(l->fp, fp, 32) == 0 && strcmp(l->spiffe_id, sid) == 0 &&
	    l->lifetime_ns == id->lifetime_ns && strcmp(l->kri, id->kri) == 0 && now < l->renew_at) {
		fill(a, l, out, false);
		return 0;
	}
	struct cp_pki_issue *r = km_calloc(1, sizeof(*r));
	r->ca = ca;
	r->mesh = km_strndup(mesh.ptr, mesh.len);
	r->dp = km_strndup(dp_name.ptr, dp_name.len);
	r->identity = km_strndup(id->name.ptr, id->name.len);
	r->kri = km_strdup(id->kri);
	r->spiffe_id = km_strdup(sid);
	r->trust_domain = km_strdup(id->trust_domain);
	memcpy(r->fp, fp, 32);
	r->now = now;
	r->lifetime_ns = id->lifetime_ns;
	r->key_type = cp_pki_x509_key_name(cp_pki_x509_ca_key_type(ca) == CP_PKI_KEY_OTHER ?
						   CP_PKI_KEY_RSA2048 : cp_pki_x509_ca_key_type(ca));
	if (defer) {
		r->p = p;
		p->inflight++;
		*defer = r;
		return -EINPROGRESS;
	}
	r->rc = cp_pki_x509_issue(ca, sid, now, id->lifetime_ns, &r->cert, &r->key, &r->not_after);
	return cp_pki_issue_finish(p, r, a, out);
}

int cp_pki_leaf(struct cp_pki *p, struct km_arena *a, struct km_str mesh, struct km_str dp_name,
		const struct km_json *dp_labels, struct cp_pki_leaf *out)
{
	return leaf_get(p, a, mesh, dp_name, dp_labels, out, NULL);
}

int cp_pki_leaf_deferred(struct cp_pki *p, struct km_arena *a, struct km_str mesh, struct km_str dp_name,
			 const struct km_json *dp_labels, struct cp_pki_leaf *out, struct cp_pki_issue **issue)
{
	*issue = NULL;
	return leaf_get(p, a, mesh, dp_name, dp_labels, out, issue);
}

int cp_pki_trust_bundle(struct cp_pki *p, struct km_arena *a, struct km_str mesh, const char **pem,
			struct km_json **trust_domains)
{
	struct mesh_cache *m = cache_get(p, mesh);
	if (!m)
		return -KM_E_UNAVAILABLE;
	if (pem)
		*pem = km_arena_strdup(a, m->trust_pem);
	if (trust_domains)
		*trust_domains = km_json_clone(a, m->trust_domains);
	return 0;
}

uint64_t cp_pki_trust_fp(struct cp_pki *p, struct km_str mesh)
{
	struct mesh_cache *m = cache_get(p, mesh);
	return m ? m->trust_fp : 0;
}

uint64_t cp_pki_pem_fp(const char *cert_pem, const char *key_pem)
{
	uint64_t h = KM_FNV_INIT;
	if (cert_pem)
		h = km_hash(h, cert_pem, strlen(cert_pem));
	h = km_fnv_sep(h, '|');
	if (key_pem)
		h = km_hash(h, key_pem, strlen(key_pem));
	return h | 1;
}

int cp_pki_trust_kris(struct cp_pki *p, struct km_arena *a, struct km_str mesh, struct km_json **kris)
{
	struct mesh_cache *m = cache_get(p, mesh);
	if (!m)
		return -KM_E_UNAVAILABLE;
	*kris = km_json_clone(a, m->trust_kris);
	return 0;
}

uint64_t cp_pki_issued(const struct cp_pki *p)
{
	return p->issued;
}

/* ---- the controller ---- */

static struct km_json *condition(struct km_arena *a, const char *type, bool ok, const char *reason,
				 const char *message)
{
	return km_json_fmt(a, "{\"type\":%s,\"status\":%s,\"reason\":%s,\"message\":%s}", type,
			   ok ? "True" : "False", reason, message);
}

static int write_secret(struct cp_pki *p, struct km_arena *a, const struct km_resource *owner,
			struct km_str name, const struct km_buf *data, const struct km_resource *cur)
{
	struct km_buf b64 = KM_BUF_INIT;
	cp_pki_base64_encode(&b64, data->data, data->len);
	struct km_json *spec = km_json_fmt(a, "{\"data\":%s}", km_buf_cstr(&b64));
	km_buf_fini(&b64);
	const struct km_rtype *t = rtype("Secret");
	struct km_resource_doc d = {.type = t, .mesh = owner->mesh, .name = name, .spec = spec};
	d.labels = cp_labels_compute(a, p->rt, t, NULL, owner->mesh, name, spec);
	struct km_resource r;
	km_resource_from_doc(a, &d, &r);
	r.owner_type = KM_STR("MeshIdentity");
	r.owner_mesh = owner->mesh;
	r.owner_name = owner->name;
	if (!cur)
		return cp_store_create(p->rt->store, &r);
	r.version = cur->version;
	r.ctime = cur->ctime;
	return cp_store_update(p->rt->store, &r);
}

/* upstream bundled Initialize: generate the CA unless its Secrets exist. */
static const char *initialize_bundled(struct cp_pki *p, struct km_arena *a, const struct km_resource *r,
				      const struct km_json *labels, const struct km_json *spec)
{
	const struct km_json *b = bundled_of(spec);
	if (!b)
		return "bundled configuration needs to be defined";
	if (!autogenerated(b))
		return NULL;
	struct pair pr;
	const char *err = NULL;
	bool missing = false;
	if (load_pair(p, a, r->mesh, r->name, labels, spec, &pr, &err, &missing) == 0)
		return NULL;
	if (!missing)
		return err;
	const char *td, *terr;
	if (cp_pki_spiffe_trust_domain(a, spec, r->mesh, labels, p->rt->zone, &td, &terr))
		return terr;
	const char *bad = cp_pki_spiffe_check_trust_domain(km_str_c(td));
	if (bad)
		return bad;
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT, e = KM_BUF_INIT;
	int rc = cp_pki_x509_ca_generate(p->autogen_key, td, km_time_now(), &cert, &key, &e);
	const char *res = NULL;
	if (rc) {
		res = km_arena_printf(a, "failed to generate X509 certificate: %s", km_buf_cstr(&e));
		goto out;
	}
	struct km_str dn = display_name(labels, r->name);
	struct km_str names[2] = {km_str_c(km_arena_printf(a, "%.*s-root-ca", KM_STR_FMT(dn))),
				  km_str_c(km_arena_printf(a, "%.*s-private-key", KM_STR_FMT(dn)))};
	struct km_buf *data[2] = {&cert, &key};
	for (int i = 0; i < 2 && !res; i++) {
		/* both are written together: a lone survivor of an old pair is replaced */
		struct km_resource cur;
		bool exists = cp_store_get(p->rt->store, a, rtype("Secret"), r->mesh, names[i], &cur) == 0;
		rc = write_secret(p, a, r, names[i], data[i], exists ? &cur : NULL);
		if (rc && rc != -KM_E_EXISTS)
			res = km_arena_printf(a, "cannot store Secret %.*s: %s", KM_STR_FMT(names[i]), km_strerror(rc));
	}
	if (!res)
		km_info("pki", "generated the CA of a MeshIdentity mesh=%.*s identity=%.*s trustDomain=%s key=%s",
			KM_STR_FMT(r->mesh), KM_STR_FMT(r->name), td, cp_pki_x509_key_name(p->autogen_key));
out:
	km_buf_fini(&cert);
	km_buf_fini(&key);
	km_buf_fini(&e);
	return res;
}

/* upstream bundled Validate. */
static const char *validate_bundled(struct cp_pki *p, struct km_arena *a, const struct km_resource *r,
				    const struct km_json *labels, const struct km_json *spec)
{
	const struct km_json *b = bundled_of(spec);
	bool allow_self_signed = flag(b, "insecureAllowSelfSigned");
	if (autogenerated(b))
		return allow_self_signed ? NULL : "self-signed certificates are not allowed";
	struct pair pr;
	const char *err = NULL;
	bool missing;
	if (load_pair(p, a, r->mesh, r->name, labels, spec, &pr, &err, &missing))
		return err;
	struct km_buf e = KM_BUF_INIT;
	const char *res = NULL;
	struct cp_pki_ca *ca =
	    cp_pki_x509_ca_load((struct km_str){pr.cert, pr.cert_len}, (struct km_str){pr.key, pr.key_len}, &e);
	if (!ca) {
		res = km_arena_printf(a, "cert: not a valid TLS key pair: %s", km_buf_cstr(&e));
	} else if (cp_pki_x509_ca_validate(ca, &e)) {
		res = km_arena_strdup(a, km_buf_cstr(&e));
	} else if (!allow_self_signed && cp_pki_x509_ca_self_signed(ca)) {
		res = "self-signed certificates are not allowed";
	}
	cp_pki_x509_ca_free(ca);
	km_buf_fini(&e);
	return res;
}

/* upstream createOrUpdateMeshTrust: a MeshTrust named as the identity. */
static const char *ensure_trust(struct cp_pki *p, struct km_arena *a, const struct km_resource *r,
				const struct km_json *labels, const struct km_json *spec, struct km_str ca_pem)
{
	const char *td, *terr;
	if (cp_pki_spiffe_trust_domain(a, spec, r->mesh, labels, p->rt->zone, &td, &terr))
		return terr;
	const char *origin = km_resource_kri(a, r);
	const struct km_rtype *t = rtype("MeshTrust");
	struct km_resource cur;
	int rc = cp_store_get(p->rt->store, a, t, r->mesh, r->name, &cur);
	struct km_json *bundle =
	    km_json_fmt(a, "{\"type\":\"Pem\",\"pem\":{\"value\":%S}}", &ca_pem);
	if (rc == 0) {
		struct km_json *ospec = parse(a, cur.spec), *ostatus = parse(a, cur.status);
		if (!ospec)
			ospec = km_json_object(a);
		if (!ostatus)
			ostatus = km_json_object(a);
		bool changed = false, found = false;
		struct km_json *bundles = km_json_get(ospec, "caBundles");
		for (size_t i = 0; bundles && bundles->kind == KM_JSON_ARRAY && i < bundles->len && !found; i++)
			found = cp_pki_x509_pem_equal(km_json_get_string(km_json_get(bundles->items[i], "pem"), "value"),
						      ca_pem);
		if (!found) {
			if (!bundles || bundles->kind != KM_JSON_ARRAY) {
				bundles = km_json_array(a);
				km_json_set(a, ospec, "caBundles", bundles);
			}
			km_json_array_push(a, bundles, bundle);
			changed = true;
		}
		struct km_str okri = km_json_get_string(km_json_get(ostatus, "origin"), "kri");
		if (!km_str_eqc(okri, origin)) {
			km_json_set(a, ostatus, "origin", km_json_fmt(a, "{\"kri\":%s}", origin));
			changed = true;
		}
		if (!changed)
			return NULL;
		struct km_resource_doc d = {.type = t, .mesh = r->mesh, .name = r->name,
					    .labels = parse(a, cur.labels), .spec = ospec, .status = ostatus};
		struct km_resource nr;
		km_resource_from_doc(a, &d, &nr);
		nr.version = cur.version;
		nr.ctime = cur.ctime;
		nr.owner_type = cur.owner_type;
		nr.owner_mesh = cur.owner_mesh;
		nr.owner_name = cur.owner_name;
		rc = cp_store_update(p->rt->store, &nr);
	} else if (rc == -KM_E_NOT_FOUND) {
		struct km_json *nspec = km_json_fmt(a, "{\"trustDomain\":%s,\"caBundles\":[%J]}", td, bundle);
		struct km_resource_doc d = {.type = t, .mesh = r->mesh, .name = r->name, .spec = nspec,
					    .status = km_json_fmt(a, "{\"origin\":{\"kri\":%s}}", origin)};
		d.labels = cp_labels_compute(a, p->rt, t, NULL, r->mesh, r->name, nspec);
		struct km_resource nr;
		km_resource_from_doc(a, &d, &nr);
		rc = cp_store_create(p->rt->store, &nr);
		if (rc == 0)
			km_info("pki", "created MeshTrust mesh=%.*s name=%.*s trustDomain=%s", KM_STR_FMT(r->mesh),
				KM_STR_FMT(r->name), td);
	}
	return rc ? km_arena_printf(a, "cannot write MeshTrust: %s", km_strerror(rc)) : NULL;
}

/* upstream IdentityProviderReconciler.initialize: the conditions before Ready. */
static void initialize(struct cp_pki *p, struct km_arena *a, const struct km_resource *r,
		       const struct km_json *labels, const struct km_json *spec, struct km_json *conds)
{
	const struct km_json *prov = km_json_get(spec, "provider");
	if (!prov || prov->kind != KM_JSON_OBJECT) {
		km_json_array_push(a, conds, condition(a, "SpiffeIDProvider", true, "SpiffeIDProvided",
						       "Providing only SpiffeIDs for services."));
		return;
	}
	struct km_str type = km_json_get_string(prov, "type");
	const char *err = NULL;
	if (km_str_eqc(type, "Bundled")) {
		err = initialize_bundled(p, a, r, labels, spec);
	} else if (km_str_eqc(type, "Extension")) {
		/* no extension is registered in this control plane */
		const struct km_json *ext = km_json_get(prov, "extension");
		if (!ext || ext->kind != KM_JSON_OBJECT)
			err = km_arena_printf(a, "MeshIdentity \"%.*s\" has provider type Extension but extension "
						 "config is nil", KM_STR_FMT(r->name));
		else
			err = km_arena_printf(a, "unknown extension \"%.*s\", registered: []",
					      KM_STR_FMT(km_json_get_string(ext, "name")));
	} else if (!km_str_eqc(type, "Spire")) {
		km_json_array_push(a, conds,
				   condition(a, "Provider", false, "ProviderNotFoundError",
					     km_arena_printf(a, "provider: %.*s not found", KM_STR_FMT(type))));
		return;
	}
	if (err) {
		km_json_array_push(a, conds, condition(a, "Provider", false, "ProviderInitializationError", err));
		return;
	}
	if (km_str_eqc(type, "Bundled"))
		err = validate_bundled(p, a, r, labels, spec);
	if (err) {
		km_json_array_push(a, conds, condition(a, "Provider", false, "ProviderValidationError", err));
		return;
	}
	km_json_array_push(a, conds,
			   condition(a, "Provider", true, "ProviderInitialized", "Provider successfully initialized"));
	/* GetMeshTrustCA: Spire manages its own trust; Bundled unless disabled */
	const struct km_json *b = bundled_of(spec);
	if (!km_str_eqc(type, "Bundled") || km_str_eqc(km_json_get_string(b, "meshTrustCreation"), "Disabled"))
		return;
	struct pair pr;
	bool missing;
	const char *ca = NULL;
	size_t ca_len = 0;
	if (!autogenerated(b) && km_json_get(b, "ca")) {
		ca = read_source(p, a, r->mesh, km_json_get(km_json_get(b, "ca"), "certificate"), &ca_len, &err);
	} else if (load_pair(p, a, r->mesh, r->name, labels, spec, &pr, &err, &missing) == 0) {
		ca = pr.cert;
		ca_len = pr.cert_len;
	}
	if (ca)
		err = ensure_trust(p, a, r, labels, spec, (struct km_str){ca, ca_len});
	if (err)
		km_json_array_push(a, conds, condition(a, "MeshTrustCreated", false, "MeshTrustCreationError", err));
	else
		km_json_array_push(a, conds, condition(a, "MeshTrustCreated", true, "MeshTrustCreated",
						       "MeshTrust has been successfully created"));
}

/* One MeshIdentity: conditions, then the status write when they changed. */
static int reconcile_identity(struct cp_pki *p, struct km_arena *a, const struct km_resource *r, bool *failing)
{
	struct km_json *spec = parse(a, r->spec), *labels = parse(a, r->labels);
	if (!spec)
		return 0;
	struct km_json *conds = km_json_array(a);
	initialize(p, a, r, labels, spec, conds);
	bool ok = true;
	const char *reason = "Ready", *message = "Successfully initialized";
	for (size_t i = 0; i < conds->len; i++) {
		if (km_str_eqc(km_json_get_string(conds->items[i], "status"), "False")) {
			ok = false;
			reason = "Failure";
			message = "One of initialization steps failed";
		}
		if (km_str_eqc(km_json_get_string(conds->items[i], "type"), "SpiffeIDProvider")) {
			ok = false;
			reason = "PartiallyReady";
			message = "Running in SpiffeID providing only mode.";
		}
	}
	km_json_array_push(a, conds, condition(a, "Ready", ok, reason, message));
	/* upstream re-checks every identity every few seconds; here events do,
	 * except for what has none (File and EnvVar sources): failures retry */
	if (!ok && strcmp(reason, "Failure") == 0)
		*failing = true;
	/* re-read: the pass may have written Secrets owned by it, never it */
	struct km_resource cur;
	int rc = cp_store_get(p->rt->store, a, r->type, r->mesh, r->name, &cur);
	if (rc)
		return rc == -KM_E_NOT_FOUND ? 0 : rc;
	struct km_json *status = parse(a, cur.status);
	if (!status || status->kind != KM_JSON_OBJECT)
		status = km_json_object(a);
	if (km_json_equal(km_json_get(status, "conditions"), conds))
		return 0;
	km_json_set(a, status, "conditions", conds);
	struct km_buf b = KM_BUF_INIT;
	km_json_write(&b, status, 0, 0);
	struct km_resource nr = cur;
	nr.status = km_str_c(km_arena_strndup(a, b.data, b.len));
	km_buf_fini(&b);
	rc = cp_store_update(p->rt->store, &nr);
	if (rc == 0)
		km_info("pki", "MeshIdentity status updated mesh=%.*s name=%.*s ready=%s", KM_STR_FMT(r->mesh),
			KM_STR_FMT(r->name), ok ? "true" : "false");
	return rc;
}

static int reconcile_mesh(struct cp_pki *p, struct km_arena *a, struct km_str mesh, bool *failing)
{
	struct km_resource m;
	if (cp_store_get(p->rt->store, a, rtype("Mesh"), KM_STR(""), mesh, &m))
		return 0;
	struct cp_list_opts o = {.mesh = mesh};
	struct cp_list_result ids;
	int rc = cp_store_list(p->rt->store, a, rtype("MeshIdentity"), &o, &ids);
	if (rc)
		return rc;
	int first = 0;
	for (size_t i = 0; i < ids.len; i++) {
		rc = reconcile_identity(p, a, &ids.items[i], failing);
		if (rc) {
			km_warn("pki", "cannot reconcile MeshIdentity mesh=%.*s name=%.*s error=%s", KM_STR_FMT(mesh),
				KM_STR_FMT(ids.items[i].name), km_strerror(rc));
			if (!first)
				first = rc;
		}
	}
	return first;
}

static void run(struct km_loop *loop, void *ctx);
static void retry(struct km_loop *loop, void *ctx);

static void mark(struct cp_pki *p, struct km_str mesh)
{
	for (size_t i = 0; i < p->ndirty; i++)
		if (km_str_eqc(mesh, p->dirty[i]))
			return;
	if (p->ndirty == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->dirty = km_realloc(p->dirty, p->cap * sizeof(*p->dirty));
	}
	p->dirty[p->ndirty++] = km_strndup(mesh.ptr, mesh.len);
	if (!p->timer.armed && p->rt->loop)
		km_loop_timer_start(p->rt->loop, &p->timer, 20, run, p);
}

static void mark_all(struct cp_pki *p)
{
	struct km_arena *a = km_arena_new(0);
	struct cp_list_opts o = {0};
	struct cp_list_result r;
	if (cp_store_list(p->rt->store, a, rtype("Mesh"), &o, &r) == 0)
		for (size_t i = 0; i < r.len; i++)
			mark(p, r.items[i].name);
	km_arena_free(a);
}

static bool controller_on(const struct cp_pki *p)
{
	return p->active && !p->rt->global_mode;
}

static void pass(struct cp_pki *p)
{
	p->running = true;
	struct km_arena *a = km_arena_new(0);
	char **dirty = p->dirty;
	size_t n = p->ndirty;
	p->dirty = NULL;
	p->ndirty = p->cap = 0;
	bool failed = false, failing = false;
	for (size_t i = 0; i < n; i++) {
		if (reconcile_mesh(p, a, km_str_c(dirty[i]), &failing))
			failed = true;
		free(dirty[i]);
	}
	free(dirty);
	km_arena_free(a);
	p->running = false;
	if ((failed || failing) && p->rt->loop && !p->retry.armed)
		/* a conflicting write or a store hiccup (soon), or an identity
		 * whose CA source may get fixed without an event (later) */
		km_loop_timer_start(p->rt->loop, &p->retry, failed ? 2000 : 10000, retry, p);
}

static void run(struct km_loop *loop, void *ctx)
{
	struct cp_pki *p = ctx;
	if (controller_on(p))
		pass(p);
}

static void retry(struct km_loop *loop, void *ctx)
{
	struct cp_pki *p = ctx;
	if (!controller_on(p))
		return;
	mark_all(p);
	km_loop_timer_stop(loop, &p->timer);
	pass(p);
}

void cp_pki_reconcile_all(struct cp_pki *p)
{
	if (!controller_on(p))
		return;
	mark_all(p);
	if (p->rt->loop)
		km_loop_timer_stop(p->rt->loop, &p->timer);
	pass(p);
}

static void on_change(void *ctx, enum cp_store_op op, const struct km_rtype *t, struct km_str mesh,
		      struct km_str name)
{
	struct cp_pki *p = ctx;
	if (op == CP_STORE_RESYNC) {
		invalidate(p, KM_STR_NULL, true);
		if (controller_on(p) && !p->running)
			mark_all(p);
		return;
	}
	if (strcmp(t->name, "MeshIdentity") == 0 || strcmp(t->name, "Secret") == 0 ||
	    strcmp(t->name, "MeshTrust") == 0) {
		invalidate(p, mesh, false);
		if (controller_on(p) && !p->running)
			mark(p, mesh);
	} else if (strcmp(t->name, "Mesh") == 0) {
		invalidate(p, name, false);
		if (op == CP_STORE_DELETE)
			leaf_drop_mesh(p, name);
		else if (controller_on(p) && !p->running)
			mark(p, name);
	} else if (strcmp(t->name, "Dataplane") == 0 && op == CP_STORE_DELETE) {
		leaf_drop(p, mesh, name);
	}
}

struct cp_pki *cp_pki_start(struct cp_runtime *rt, struct cp_events *bus)
{
	struct cp_pki *p = km_calloc(1, sizeof(*p));
	p->rt = rt;
	p->autogen_key = CP_PKI_KEY_RSA2048;
	p->now = km_time_now;
	if (bus && cp_events_subscribe(bus, on_change, p))
		km_warn("pki", "cannot subscribe to store events: identity caches will not refresh");
	return p;
}

void cp_pki_set_autogen_key(struct cp_pki *p, enum cp_pki_key type)
{
	p->autogen_key = type;
}

void cp_pki_set_clock(struct cp_pki *p, int64_t (*now)(void))
{
	p->now = now ? now : km_time_now;
}

void cp_pki_set_active(struct cp_pki *p, bool leader)
{
	if (!p)
		return;
	p->active = leader;
	if (controller_on(p)) {
		mark_all(p);
	} else if (p->rt->loop) {
		km_loop_timer_stop(p->rt->loop, &p->timer);
		km_loop_timer_stop(p->rt->loop, &p->retry);
	}
}

void cp_pki_stop(struct cp_pki *p)
{
	if (!p)
		return;
	if (p->rt->loop) {
		km_loop_timer_stop(p->rt->loop, &p->timer);
		km_loop_timer_stop(p->rt->loop, &p->retry);
	}
	for (size_t i = 0; i < p->ndirty; i++)
		free(p->dirty[i]);
	free(p->dirty);
	invalidate(p, KM_STR_NULL, true);
	graveyard_free(p); /* issuances never finished: none by now */
	for (size_t i = 0; i < p->nbuckets; i++)
		for (struct leaf *l = p->buckets[i], *next; l; l = next) {
			next = l->next;
			leaf_free(l);
		}
	free(p->buckets);
	while (p->expiries) {
		struct expiry *e = p->expiries;
		p->expiries = e->next;
		free(e->mesh);
		free(e);
	}
	free(p);
}

void cp_pki_cert_expirations(const struct cp_pki *p, void (*fn)(void *ctx, const char *mesh, int64_t not_after_ns),
			     void *ctx)
{
	for (const struct expiry *e = p ? p->expiries : NULL; e; e = e->next)
		fn(ctx, e->mesh, e->not_after);
}
