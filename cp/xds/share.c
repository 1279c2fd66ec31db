/* SPDX-License-Identifier: Apache-2.0 */
#include "cp/xds/share.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"
#include "cp/policy/policy.h"
#include "pb/json.h"

/* ---- blobs ---- */

struct cp_xds_blob *cp_xds_blob_new(const char *name, const uint8_t *bytes, size_t len)
{
	size_t nlen = strlen(name);
	struct cp_xds_blob *b = km_malloc(sizeof(*b) + len + nlen + 1);
	atomic_init(&b->refs, 1);
	b->len = len;
	if (len)
		memcpy(b->bytes, bytes, len);
	char *n = (char *)b->bytes + len;
	memcpy(n, name, nlen + 1);
	b->name = n;
	snprintf(b->version, sizeof(b->version), "%016llx", (unsigned long long)km_hash(KM_FNV_INIT, bytes, len));
	return b;
}

struct cp_xds_blob *cp_xds_blob_ref(struct cp_xds_blob *b)
{
	if (b)
		atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

void cp_xds_blob_unref(struct cp_xds_blob *b)
{
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		free(b);
}

/* ---- the table: key bytes -> blob (NULL: the resource could not be
 * encoded, which the same inputs would repeat) ---- */

struct entry {
	uint64_t h;
	char *key; /* NULL: free slot */
	size_t klen;
	struct cp_xds_blob *blob;
};

struct cp_xds_share {
	struct entry *slots;
	size_t cap, used; /* cap: 0 or a power of two */
};

struct cp_xds_share *cp_xds_share_new(void)
{
	return km_calloc(1, sizeof(struct cp_xds_share));
}

/* Keeps the slots: the next context shares about as many resources, and
 * growing to that size again would rehash every entry on the way. */
void cp_xds_share_clear(struct cp_xds_share *sh)
{
	for (size_t i = 0; i < sh->cap; i++)
		if (sh->slots[i].key) {
			free(sh->slots[i].key);
			cp_xds_blob_unref(sh->slots[i].blob);
		}
	if (sh->cap)
		memset(sh->slots, 0, sh->cap * sizeof(*sh->slots));
	sh->used = 0;
}

void cp_xds_share_free(struct cp_xds_share *sh)
{
	if (!sh)
		return;
	cp_xds_share_clear(sh);
	free(sh->slots);
	free(sh);
}

static struct entry *slot_for(struct entry *slots, size_t cap, uint64_t h, const char *key, size_t klen)
{
	for (size_t i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
		struct entry *e = &slots[i];
		if (!e->key || (e->h == h && e->klen == klen && memcmp(e->key, key, klen) == 0))
			return e;
	}
}

/* Room for <n> more entries: lookup() never moves them. */
static void reserve(struct cp_xds_share *sh, size_t n)
{
	if ((sh->used + n) * 10 >= sh->cap * 7) {
		size_t ncap = sh->cap ? sh->cap * 2 : 256;
		struct entry *ns = km_calloc(ncap, sizeof(*ns));
		for (size_t i = 0; i < sh->cap; i++)
			if (sh->slots[i].key)
				*slot_for(ns, ncap, sh->slots[i].h, sh->slots[i].key, sh->slots[i].klen) = sh->slots[i];
		free(sh->slots);
		sh->slots = ns;
		sh->cap = ncap;
	}
}

/* The entry for <key>, added empty when missing (after reserve());
 * *found says whether it was there. */
static struct entry *lookup(struct cp_xds_share *sh, const char *key, size_t klen, bool *found)
{
	uint64_t h = km_hash(KM_FNV_INIT, key, klen);
	struct entry *e = slot_for(sh->slots, sh->cap, h, key, klen);
	*found = e->key != NULL;
	if (!e->key) {
		e->h = h;
		e->key = km_malloc(klen);
		memcpy(e->key, key, klen);
		e->klen = klen;
		e->blob = NULL;
		sh->used++;
	}
	return e;
}

/* ---- building ---- */

struct build {
	struct km_arena *a;
	struct cp_xds_built *out;
	size_t cap[CP_XDS_NTYPES];
	struct cp_xds_share_stats *stats;
	struct km_buf *errors;
	struct km_buf bytes, err;
};

static struct cp_xds_blob *encode(struct build *b, int t, const char *name, const struct km_json *tree)
{
	km_buf_reset(&b->bytes);
	km_buf_reset(&b->err);
	if (b->stats)
		b->stats->encoded++;
	if (km_pb_encode_json(b->a, cp_xds_type_url[t], tree, &b->bytes, &b->err)) {
		if (b->errors)
			km_buf_printf(b->errors, "cannot encode resource name=%s error=%s\n", name, km_buf_cstr(&b->err));
		return NULL;
	}
	return cp_xds_blob_new(name, (const uint8_t *)b->bytes.data, b->bytes.len);
}

/* Appends <blob> (owned) to type <t>; an outbound resource of the same name
 * from index <from> on is replaced, as a later outbound to the same port
 * replaces an earlier one in cp_xds_generate(). */
static void put(struct build *b, int t, struct cp_xds_blob *blob, size_t from)
{
	if (!blob)
		return;
	struct cp_xds_built *o = b->out;
	for (size_t i = from; i < o->n[t]; i++)
		if (strcmp(o->res[t][i]->name, blob->name) == 0) {
			cp_xds_blob_unref(o->res[t][i]);
			o->res[t][i] = blob;
			return;
		}
	if (o->n[t] == b->cap[t]) {
		size_t ncap = b->cap[t] ? b->cap[t] * 2 : 8;
		struct cp_xds_blob **nr = km_arena_alloc(b->a, ncap * sizeof(*nr));
		if (o->n[t])
			memcpy(nr, o->res[t], o->n[t] * sizeof(*nr));
		o->res[t] = nr;
		b->cap[t] = ncap;
	}
	o->res[t][o->n[t]++] = blob;
}

static void put_all(struct build *b, const struct cp_xds_resources *rs, size_t *from)
{
	for (int t = 0; t < CP_XDS_NTYPES; t++) {
		const struct km_json *objs = rs->by_type[t];
		for (size_t i = 0; objs && i < objs->len; i++) {
			const char *name = km_arena_strndup(b->a, objs->members[i].key.ptr, objs->members[i].key.len);
			put(b, t, encode(b, t, name, objs->members[i].val), from ? from[t] : 0);
		}
	}
}

/* <obj> without member <key> (a shallow copy in <a>). */
static struct km_json *without(struct km_arena *a, const struct km_json *obj, const char *key)
{
	struct km_json *o = km_json_object(a);
	for (size_t i = 0; i < obj->len; i++)
		if (!km_str_eqc(obj->members[i].key, key))
			km_json_append_member(a, o, obj->members[i].key, obj->members[i].val);
	return o;
}

/* An outbound listener: its shared <body> (every field but the address)
 * followed by this proxy's address field. Protobuf fields may come in any
 * order and a message's encoding is the concatenation of its fields'. */
static struct cp_xds_blob *with_address(struct build *b, const struct cp_xds_blob *body,
					const struct cp_xds_outbound *o)
{
	struct km_json *l = km_json_object(b->a);
	km_json_set(b->a, l, "address", cp_xds_outbound_address(b->a, o));
	km_buf_reset(&b->bytes);
	km_buf_reset(&b->err);
	km_buf_append(&b->bytes, body->bytes, body->len);
	if (km_pb_encode_json(b->a, cp_xds_type_url[CP_XDS_LISTENER], l, &b->bytes, &b->err)) {
		if (b->errors)
			km_buf_printf(b->errors, "cannot encode resource name=%s error=%s\n", body->name,
				      km_buf_cstr(&b->err));
		return NULL;
	}
	return cp_xds_blob_new(body->name, (const uint8_t *)b->bytes.data, b->bytes.len);
}

static const int outbound_types[] = {CP_XDS_CLUSTER, CP_XDS_ENDPOINT, CP_XDS_LISTENER};
#define NOUTBOUND_TYPES (sizeof(outbound_types) / sizeof(outbound_types[0]))

void cp_xds_build(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		  const struct cp_xds_metadata *md, struct cp_xds_share *sh, struct cp_xds_built *out,
		  struct cp_xds_share_stats *stats, struct km_buf *errors)
{
	memset(out, 0, sizeof(*out));
	struct build b = {.a = a, .out = out, .stats = stats, .errors = errors, .bytes = KM_BUF_INIT, .err = KM_BUF_INIT};
	if (!sh || md->proxyless) {
		struct cp_xds_resources rs;
		cp_xds_generate(a, m, dp, md, &rs);
		put_all(&b, &rs, NULL);
		goto done;
	}
	struct cp_policy_prepared pp;
	cp_policy_prepare(a, m, dp, md->shadow, &pp);
	struct cp_xds_resources local;
	struct cp_xds_outbound *obs;
	size_t nobs;
	cp_xds_generate_local(a, m, dp, md, &pp, &local, &obs, &nobs);
	put_all(&b, &local, NULL);
	size_t from[CP_XDS_NTYPES];
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		from[t] = out->n[t];
	struct km_buf key = KM_BUF_INIT;
	for (size_t i = 0; i < nobs; i++) {
		const struct cp_xds_outbound *o = &obs[i];
		/* the key: type, destination, identity, policy confs; the
		 * listener adds where it listens */
		km_buf_reset(&key);
		km_buf_printf(&key, "?%s", o->kri);
		km_buf_putc(&key, 0);
		if (md->tls)
			km_buf_printf(&key, "T%s", md->tls->secret_name);
		km_buf_putc(&key, 0);
		if (!cp_policy_outbound_key(&pp, o->kri, &key)) {
			/* a plugin cannot say what it reads: this proxy's own */
			struct cp_xds_resources rs;
			cp_xds_generate_outbound(a, m, dp, md, &pp, o, ~0u, &rs);
			for (size_t k = 0; k < NOUTBOUND_TYPES; k++) {
				int t = outbound_types[k];
				const struct km_json *tree = km_json_get(rs.by_type[t], o->kri);
				put(&b, t, tree ? encode(&b, t, o->kri, tree) : NULL, from[t]);
			}
			continue;
		}
		size_t common = key.len;
		struct entry *e[NOUTBOUND_TYPES], *body = NULL;
		bool found[NOUTBOUND_TYPES], body_found = false;
		reserve(sh, NOUTBOUND_TYPES + 1);
		for (size_t k = 0; k < NOUTBOUND_TYPES; k++) {
			int t = outbound_types[k];
			key.len = common;
			key.data[0] = (char)('0' + t);
			if (t == CP_XDS_LISTENER) {
				km_buf_putc(&key, 0);
				km_buf_printf(&key, "%.*s:%u", KM_STR_FMT(o->address), o->port);
			}
			e[k] = lookup(sh, key.data, key.len, &found[k]);
			if (t == CP_XDS_LISTENER && !found[k]) {
				/* the listener of another address: its body may be there */
				key.len = common;
				key.data[0] = 'B';
				body = lookup(sh, key.data, key.len, &body_found);
			}
		}
		unsigned missing = 0;
		for (size_t k = 0; k < NOUTBOUND_TYPES; k++)
			if (!found[k] && !(outbound_types[k] == CP_XDS_LISTENER && body_found))
				missing |= 1u << outbound_types[k];
		struct cp_xds_resources rs = {0};
		if (missing)
			cp_xds_generate_outbound(a, m, dp, md, &pp, o, missing, &rs);
		for (size_t k = 0; k < NOUTBOUND_TYPES; k++) {
			int t = outbound_types[k];
			struct cp_xds_blob *blob;
			if (found[k]) {
				blob = cp_xds_blob_ref(e[k]->blob);
				if (stats)
					stats->shared++;
			} else if (t == CP_XDS_LISTENER) {
				if (body_found) {
					if (stats)
						stats->shared++;
				} else {
					const struct km_json *tree = km_json_get(rs.by_type[t], o->kri);
					body->blob = tree ? encode(&b, t, o->kri, without(a, tree, "address")) : NULL;
				}
				blob = body->blob ? with_address(&b, body->blob, o) : NULL;
				e[k]->blob = cp_xds_blob_ref(blob);
			} else {
				const struct km_json *tree = km_json_get(rs.by_type[t], o->kri);
				blob = tree ? encode(&b, t, o->kri, tree) : NULL;
				e[k]->blob = cp_xds_blob_ref(blob);
			}
			put(&b, t, blob, from[t]);
		}
	}
	km_buf_fini(&key);
done:
	km_buf_fini(&b.bytes);
	km_buf_fini(&b.err);
}

void cp_xds_built_release(struct cp_xds_built *b)
{
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		for (size_t i = 0; i < b->n[t]; i++)
			cp_xds_blob_unref(b->res[t][i]);
	memset(b, 0, sizeof(*b));
}
