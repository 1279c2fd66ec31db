/* SPDX-License-Identifier: Apache-2.0 */
#include "cp/xds/share.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hash.h"
#include "base/mem.h"
#include "cp/policy/policy.h"
#include "cp/xds/secrets.h"
#include "cp/xds/shape.h"
#include "envoy/config/core/v3/address.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "pb/json.h"
#include "pb/registry.h"
#include "pb/shape.h"
#include "pb/wire.h"

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
	uint64_t h = km_hash(KM_FNV_INIT, bytes, len);
	for (int i = 15; i >= 0; i--, h >>= 4) /* %016llx */
		b->version[i] = "0123456789abcdef"[h & 15];
	b->version[16] = 0;
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

/* An entry's key, hash and length are set before its key pointer is
 * published and never change while builds run; its blob is set before it
 * stops being pending. Lookups without the lock read only those. */
struct entry {
	uint64_t h;
	size_t klen;
	_Atomic(char *) key; /* NULL: free slot */
	_Atomic(struct cp_xds_blob *) blob;
	_Atomic(bool) pending; /* claimed by a build that is making it (blob NULL until published) */
	struct cp_xds_blob *body; /* a listener's: the body it was made from (a reference) */
	uint64_t used;            /* the table's epoch when a build last found or added it */
	const void *owner;        /* pending: that build */
};

/* One array of slots. A grown table keeps the one it replaced (retired): a
 * build may still be reading it; the retired ones go at the next context
 * or sweep, when no build runs. The current table owns the entries' keys
 * and blobs. */
struct table {
	struct table *retired;
	size_t cap; /* a power of two */
	struct entry e[];
};

/* Builds on two threads may use one table (cp/xds/builder.c). A build
 * first looks its keys up without the lock: when every one is there, made
 * and published, that is all (a proxy whose outbounds are all shared takes
 * no lock). Otherwise it takes <mu> once to look up the rest, claiming the
 * missing ones (pending entries), and once to publish what it made; a build
 * that finds a key claimed by another waits on <published> for it, after
 * publishing its own claims (so no two builds wait for each other), rather
 * than make the same resource again. */
struct cp_xds_share {
	pthread_mutex_t mu;
	pthread_cond_t published;
	size_t waiters;
	_Atomic(struct table *) t; /* NULL: no entry yet; replaced under mu */
	size_t used;               /* entries (under mu) */
	uint64_t epoch;            /* contexts seen (cp_xds_share_next) */
	struct cp_xds_shapes *shapes; /* clusters and listener bodies by shape (cp/xds/shape.h) */
	struct cp_xds_shapes *local_shapes; /* proxies' local resources by shape (put_local) */
	struct cp_policy_rule_shapes *rule_shapes; /* policy rules split for outbound shapes */
	/* the mesh's trust bundle secret, the same for every proxy: encoded
	 * once per trust fingerprint (under mu) */
	struct cp_xds_blob *trust;
	uint64_t trust_fp;
};

struct cp_xds_share *cp_xds_share_new(void)
{
	struct cp_xds_share *sh = km_calloc(1, sizeof(struct cp_xds_share));
	pthread_mutex_init(&sh->mu, NULL);
	pthread_cond_init(&sh->published, NULL);
	sh->shapes = cp_xds_shapes_new();
	sh->local_shapes = cp_xds_shapes_new();
	sh->rule_shapes = cp_policy_rule_shapes_new();
	return sh;
}

static char *key_of(struct entry *e, memory_order mo)
{
	return atomic_load_explicit(&e->key, mo);
}

static struct cp_xds_blob *blob_of(struct entry *e)
{
	return atomic_load_explicit(&e->blob, memory_order_relaxed);
}

static bool is_pending(struct entry *e, memory_order mo)
{
	return atomic_load_explicit(&e->pending, mo);
}

static struct table *table_of(struct cp_xds_share *sh, memory_order mo)
{
	return atomic_load_explicit(&sh->t, mo);
}

static struct table *table_new(size_t cap)
{
	struct table *t = km_calloc(1, sizeof(*t) + cap * sizeof(t->e[0]));
	t->cap = cap;
	return t;
}

/* Frees the tables <t> retired (not their entries: the current one owns them). */
static void free_retired(struct table *t)
{
	struct table *r = t ? t->retired : NULL;
	while (r) {
		struct table *next = r->retired;
		free(r);
		r = next;
	}
	if (t)
		t->retired = NULL;
}

static void entry_fini(struct entry *e)
{
	free(key_of(e, memory_order_relaxed));
	cp_xds_blob_unref(blob_of(e));
	cp_xds_blob_unref(e->body);
}

/* Copies entry <src> into a slot of a table no build can see yet. */
static void entry_copy(struct entry *dst, struct entry *src)
{
	dst->h = src->h;
	dst->klen = src->klen;
	dst->body = src->body;
	dst->used = src->used;
	dst->owner = src->owner;
	atomic_store_explicit(&dst->pending, is_pending(src, memory_order_relaxed), memory_order_relaxed);
	atomic_store_explicit(&dst->blob, blob_of(src), memory_order_relaxed);
	atomic_store_explicit(&dst->key, key_of(src, memory_order_relaxed), memory_order_relaxed);
}

void cp_xds_share_verify_shapes(struct cp_xds_share *sh, bool on)
{
	cp_xds_shapes_set_verify_all(sh->shapes, on);
	cp_xds_shapes_set_verify_all(sh->local_shapes, on);
}

/* Keeps the slots (about as many entries come back). */
void cp_xds_share_clear(struct cp_xds_share *sh)
{
	cp_xds_shapes_clear(sh->shapes);
	cp_xds_shapes_clear(sh->local_shapes);
	struct table *t = table_of(sh, memory_order_relaxed);
	free_retired(t);
	for (size_t i = 0; t && i < t->cap; i++)
		if (key_of(&t->e[i], memory_order_relaxed))
			entry_fini(&t->e[i]);
	if (t)
		memset(t->e, 0, t->cap * sizeof(t->e[0]));
	sh->used = 0;
	cp_xds_blob_unref(sh->trust);
	sh->trust = NULL;
	sh->trust_fp = 0;
}

void cp_xds_share_free(struct cp_xds_share *sh)
{
	if (!sh)
		return;
	cp_xds_share_clear(sh);
	pthread_cond_destroy(&sh->published);
	pthread_mutex_destroy(&sh->mu);
	free(table_of(sh, memory_order_relaxed));
	cp_xds_shapes_free(sh->shapes);
	cp_xds_shapes_free(sh->local_shapes);
	cp_policy_rule_shapes_free(sh->rule_shapes);
	free(sh);
}

static struct entry *slot_for(struct table *t, uint64_t h, const char *key, size_t klen)
{
	for (size_t i = (size_t)h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct entry *e = &t->e[i];
		const char *k = key_of(e, memory_order_acquire);
		if (!k || (e->h == h && e->klen == klen && memcmp(k, key, klen) == 0))
			return e;
	}
}

/* An entry whose resource no snapshot holds any more (its blob's only
 * reference is the table's; a listener body's references are the table's
 * and its listeners') is dropped by the next sweep; so is a failed one
 * (no blob) unused for this many contexts. */
#define KEEP_FAILED 16

static bool dead(const struct cp_xds_share *sh, struct entry *e)
{
	struct cp_xds_blob *b = blob_of(e);
	if (is_pending(e, memory_order_relaxed))
		return true; /* cannot outlive its build; none runs now */
	return b ? atomic_load_explicit(&b->refs, memory_order_acquire) == 1 : e->used + KEEP_FAILED < sh->epoch;
}

size_t cp_xds_share_sweep(struct cp_xds_share *sh)
{
	struct table *t = table_of(sh, memory_order_relaxed);
	if (!t)
		return 0;
	free_retired(t);
	/* resources first, then listener bodies (a dropped listener releases
	 * its body) */
	size_t dropped = 0, live = 0;
	for (size_t i = 0; i < t->cap; i++) {
		struct entry *e = &t->e[i];
		char *k = key_of(e, memory_order_relaxed);
		if (k && k[0] != 'B' && dead(sh, e)) {
			entry_fini(e);
			atomic_store_explicit(&e->key, NULL, memory_order_relaxed);
			dropped++;
		}
	}
	for (size_t i = 0; i < t->cap; i++) {
		if (!key_of(&t->e[i], memory_order_relaxed))
			continue;
		if (dead(sh, &t->e[i]))
			dropped++;
		else
			live++;
	}
	/* room for every live entry twice over: a pass that replaces every
	 * resource (a new identity, a Mesh-wide policy) then adds its new
	 * entries without growing the table under the lock, in a build */
	size_t cap = t->cap;
	while (2 * live * 10 >= cap * 7)
		cap *= 2;
	if (!dropped && cap == t->cap)
		return 0;
	/* the rest is rehashed into a new array (linear probing has no
	 * cheaper delete, and the first loop left holes) */
	struct table *nt = table_new(cap);
	sh->used = 0;
	for (size_t i = 0; i < t->cap; i++) {
		struct entry *e = &t->e[i];
		char *k = key_of(e, memory_order_relaxed);
		if (!k)
			continue;
		if (dead(sh, e)) {
			entry_fini(e);
			continue;
		}
		entry_copy(slot_for(nt, e->h, k, e->klen), e);
		sh->used++;
	}
	free(t);
	atomic_store_explicit(&sh->t, nt, memory_order_relaxed);
	return dropped;
}

void cp_xds_share_next(struct cp_xds_share *sh)
{
	sh->epoch++;
	cp_xds_shapes_next(sh->shapes);
	cp_xds_shapes_next(sh->local_shapes);
	cp_policy_rule_shapes_next(sh->rule_shapes);
	struct table *t = table_of(sh, memory_order_relaxed);
	if (!t)
		return;
	free_retired(t);
	/* entries no snapshot holds stay for the sweep (the server's, when
	 * idle) unless the table lacks room for what it holds twice over */
	if (2 * sh->used * 10 >= t->cap * 7)
		cp_xds_share_sweep(sh);
}

/* Room for <n> more entries (under the lock): a bigger table replaces the
 * current one, which builds reading without the lock may still hold. */
static void reserve(struct cp_xds_share *sh, size_t n)
{
	struct table *t = table_of(sh, memory_order_relaxed);
	size_t cap = t ? t->cap : 0;
	if ((sh->used + n) * 10 < cap * 7)
		return;
	size_t ncap = cap ? cap * 2 : 256;
	while ((sh->used + n) * 10 >= ncap * 7)
		ncap *= 2;
	struct table *nt = table_new(ncap);
	for (size_t i = 0; i < cap; i++) {
		struct entry *e = &t->e[i];
		char *k = key_of(e, memory_order_relaxed);
		if (k)
			entry_copy(slot_for(nt, e->h, k, e->klen), e);
	}
	nt->retired = t;
	atomic_store_explicit(&sh->t, nt, memory_order_release);
}

/* The entry for <key> of hash <h> (under the lock), or NULL. */
static struct entry *find(struct cp_xds_share *sh, const char *key, size_t klen, uint64_t h)
{
	struct table *t = table_of(sh, memory_order_relaxed);
	if (!t)
		return NULL;
	struct entry *e = slot_for(t, h, key, klen);
	if (!key_of(e, memory_order_relaxed))
		return NULL;
	e->used = sh->epoch;
	return e;
}

/* <key>'s blob (a new reference) when it is in the table, made and
 * published, without the lock; NULL otherwise (pending, failed or missing:
 * the locked pass decides). */
static struct cp_xds_blob *find_fast(struct cp_xds_share *sh, const char *key, size_t klen, uint64_t h)
{
	struct table *t = table_of(sh, memory_order_acquire);
	if (!t)
		return NULL;
	struct entry *e = slot_for(t, h, key, klen);
	if (!key_of(e, memory_order_relaxed) || is_pending(e, memory_order_acquire))
		return NULL;
	return cp_xds_blob_ref(blob_of(e));
}

/* A pending entry for <key>, claimed by build <owner> (under the lock,
 * after reserve()). */
static void claim(struct cp_xds_share *sh, const char *key, size_t klen, uint64_t h, const void *owner)
{
	struct table *t = table_of(sh, memory_order_relaxed);
	struct entry *e = slot_for(t, h, key, klen);
	e->used = sh->epoch;
	e->h = h;
	e->klen = klen;
	e->owner = owner;
	e->body = NULL;
	atomic_store_explicit(&e->blob, NULL, memory_order_relaxed);
	atomic_store_explicit(&e->pending, true, memory_order_relaxed);
	char *k = km_malloc(klen);
	memcpy(k, key, klen);
	atomic_store_explicit(&e->key, k, memory_order_release);
	sh->used++;
}

/* Fills the caller's claimed entry for <key> with <blob> and <body> (new
 * references; NULL blob: it could not be made). */
static void publish(struct cp_xds_share *sh, const char *key, size_t klen, uint64_t h, struct cp_xds_blob *blob,
		    struct cp_xds_blob *body)
{
	struct entry *e = find(sh, key, klen, h);
	atomic_store_explicit(&e->blob, cp_xds_blob_ref(blob), memory_order_relaxed);
	e->body = cp_xds_blob_ref(body);
	e->owner = NULL;
	atomic_store_explicit(&e->pending, false, memory_order_release);
}

/* ---- building ---- */

struct build {
	struct km_arena *a;
	struct cp_xds_built *out;
	size_t cap[CP_XDS_NTYPES];
	struct cp_xds_share_stats *stats;
	struct km_buf *errors;
	struct km_buf bytes, err, scratch;
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

static struct cp_xds_blob *secret_tls(struct build *b, const char *name, const char *chain, const char *key)
{
	km_buf_reset(&b->bytes);
	if (b->stats)
		b->stats->encoded++;
	if (cp_xds_secrets_tls_encode(name, chain, key, &b->bytes))
		return NULL;
	return cp_xds_blob_new(name, (const uint8_t *)b->bytes.data, b->bytes.len);
}

/* The trust bundle secret of <tls>: the one <sh> keeps for its trust
 * fingerprint, made when it has none or another. */
static struct cp_xds_blob *secret_trust(struct build *b, struct cp_xds_share *sh, const struct cp_xds_tls *tls)
{
	struct cp_xds_blob *blob = NULL;
	if (sh && tls->trust_fp) {
		pthread_mutex_lock(&sh->mu);
		if (sh->trust && sh->trust_fp == tls->trust_fp)
			blob = cp_xds_blob_ref(sh->trust);
		pthread_mutex_unlock(&sh->mu);
		if (blob) {
			if (b->stats)
				b->stats->shared++;
			return blob;
		}
	}
	km_buf_reset(&b->bytes);
	if (b->stats)
		b->stats->encoded++;
	if (cp_xds_secrets_trust_encode(tls->trust_domains, &b->bytes))
		return NULL;
	blob = cp_xds_blob_new(CP_XDS_TRUST_SECRET, (const uint8_t *)b->bytes.data, b->bytes.len);
	if (sh && tls->trust_fp) {
		pthread_mutex_lock(&sh->mu);
		cp_xds_blob_unref(sh->trust);
		sh->trust = cp_xds_blob_ref(blob);
		sh->trust_fp = tls->trust_fp;
		pthread_mutex_unlock(&sh->mu);
	}
	return blob;
}

/* Puts a proxy's secrets, in the order of generate.c's secrets generator
 * and with the same bytes: the Envoy admin certificate when its listener is
 * exposed, the workload certificate, the mesh's trust bundle (one blob for
 * every proxy of a trust fingerprint). */
static void put_secrets(struct build *b, struct cp_xds_share *sh, const struct cp_xds_dataplane *dp,
			const struct cp_xds_metadata *md)
{
	const struct cp_envoy_admin_tls *at = md->admin_tls;
	if (at && md->admin_port && md->readiness_port &&
	    cp_envoy_admin_exposed(km_json_get_string(km_json_get(dp->spec, "networking"), "address"),
				   md->admin_address, md->admin_socket))
		put(b, CP_XDS_SECRET, secret_tls(b, CP_XDS_ADMIN_SECRET, at->chain_pem, at->key_pem), 0);
	const struct cp_xds_tls *tls = md->tls;
	if (!tls)
		return;
	put(b, CP_XDS_SECRET, secret_tls(b, tls->secret_name, tls->cert_pem, tls->key_pem), 0);
	if (tls->trust_domains && tls->trust_domains->len)
		put(b, CP_XDS_SECRET, secret_trust(b, sh, tls), 0);
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

static uint32_t field_id(const ProtobufCMessageDescriptor *d, const char *name)
{
	return protobuf_c_message_descriptor_get_field_by_name(d, name)->id;
}

static uint32_t listener_address, socket_address, address, port_value;
static pthread_once_t ids_once = PTHREAD_ONCE_INIT;

static void ids_init(void)
{
	listener_address = field_id(&envoy__config__listener__v3__listener__descriptor, "address");
	socket_address = field_id(&envoy__config__core__v3__address__descriptor, "socket_address");
	address = field_id(&envoy__config__core__v3__socket_address__descriptor, "address");
	port_value = field_id(&envoy__config__core__v3__socket_address__descriptor, "port_value");
}

/* Appends the Listener field holding <o>'s address, as protobuf-c packs a
 * Listener with nothing else set: address { socket_address { address,
 * port_value } } (the port in a oneof: written even when 0). */
static void address_field(struct km_buf *out, const struct cp_xds_outbound *o)
{
	pthread_once(&ids_once, ids_init);
	/* the socket address: tag and length of its address, the address,
	 * the port */
	uint8_t sa[32];
	size_t sal = 0;
	if (o->address.len) {
		sal += km_pb_wire_varint((uint64_t)address << 3 | 2, sa + sal);
		sal += km_pb_wire_varint(o->address.len, sa + sal);
	}
	uint8_t port[16];
	size_t pl = km_pb_wire_varint((uint64_t)port_value << 3 | 0, port);
	pl += km_pb_wire_varint(o->port, port + pl);
	size_t sa_len = sal + (sal ? o->address.len : 0) + pl;
	uint8_t head[32];
	size_t hl = km_pb_wire_varint((uint64_t)listener_address << 3 | 2, head);
	uint8_t mid[16];
	size_t ml = km_pb_wire_varint((uint64_t)socket_address << 3 | 2, mid);
	ml += km_pb_wire_varint(sa_len, mid + ml);
	hl += km_pb_wire_varint(ml + sa_len, head + hl);
	km_buf_append(out, head, hl);
	km_buf_append(out, mid, ml);
	if (sal) {
		km_buf_append(out, sa, sal);
		km_buf_append(out, o->address.ptr, o->address.len);
	}
	km_buf_append(out, port, pl);
}

/* An outbound listener: its shared <body> (every field but the address)
 * followed by this proxy's address field. Protobuf fields may come in any
 * order and a message's encoding is the concatenation of its fields'. */
static struct cp_xds_blob *with_address(struct build *b, const struct cp_xds_blob *body,
					const struct cp_xds_outbound *o)
{
	km_buf_reset(&b->bytes);
	km_buf_append(&b->bytes, body->bytes, body->len);
	address_field(&b->bytes, o);
	return cp_xds_blob_new(body->name, (const uint8_t *)b->bytes.data, b->bytes.len);
}

/* ---- the local memo ---- */

void cp_xds_local_memo_fini(struct cp_xds_local_memo *lm)
{
	size_t total = 0;
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		total += lm->n[t];
	for (size_t k = 0; k < total; k++)
		cp_xds_blob_unref(lm->res[k]);
	free(lm->res);
	memset(lm, 0, sizeof(*lm));
}

static void fp_byte(struct km_buf *k, unsigned char c)
{
	km_buf_add(k, &c, 1);
}

static void fp_str(struct km_buf *k, const char *s)
{
	if (s)
		km_buf_add(k, s, strlen(s) + 1);
	else
		fp_byte(k, 1);
}

static void fp_json(struct km_buf *k, const struct km_json *v)
{
	if (v)
		km_json_write(k, v, 0, 0);
	fp_byte(k, 0);
}

static void fp_u64(struct km_buf *k, uint64_t v)
{
	km_buf_add(k, &v, sizeof(v));
}

/* What the local resources are built from (cp_xds_generate_local and the
 * plugins' edits of them): the Dataplane (its store version), the
 * metadata and identity, the mesh-wide inputs, and per running plugin the
 * rules of each inbound (by their policy's fingerprint). Plugins read
 * their `to` confs only for outbound (kri_) resources, so those stay out.
 * Hashed twice with two seeds. */
/* What a proxy's local resources are built from but its Dataplane (and,
 * without <keys>, its certificate and key). */
static void local_inputs(struct km_buf *k0, const struct cp_xds_mesh *m, const struct cp_xds_metadata *md,
			 const struct cp_policy_prepared *pp, bool keys)
{
	struct km_buf k = *k0;
	fp_u64(&k, m->fp_rest);
	fp_u64(&k, ((uint64_t)md->admin_port << 32) | md->readiness_port);
	if (md->admin_port) { /* else there is no admin listener, cluster or secret */
		km_buf_add(&k, md->admin_address.ptr, md->admin_address.len);
		fp_byte(&k, 0);
		km_buf_add(&k, md->admin_socket.ptr, md->admin_socket.len);
		fp_byte(&k, 0);
		/* the CA is in the admin listener; its certificate and key in a secret */
		fp_u64(&k, md->admin_tls ? (keys ? md->admin_tls->fp : md->admin_tls->ca_fp) : 0);
	}
	km_buf_add(&k, md->workdir.ptr, md->workdir.len);
	fp_byte(&k, 0);
	km_buf_add(&k, md->metrics_cert.ptr, md->metrics_cert.len);
	fp_byte(&k, 0);
	km_buf_add(&k, md->metrics_key.ptr, md->metrics_key.len);
	fp_byte(&k, 0);
	km_buf_add(&k, md->host_ip.ptr, md->host_ip.len);
	fp_byte(&k, md->ipv6);
	fp_json(&k, md->features);
	fp_byte(&k, md->shadow);
	if (md->tls) {
		/* the PEMs by the hashes the PKI module made of them once, when
		 * it has (writing them out and hashing them was a tenth of an
		 * mTLS build) */
		fp_str(&k, md->tls->secret_name);
		if (md->tls->keys_fp) {
			fp_byte(&k, 'K');
			fp_u64(&k, keys ? md->tls->keys_fp : 0);
		} else {
			fp_str(&k, keys ? md->tls->cert_pem : NULL);
			fp_str(&k, keys ? md->tls->key_pem : NULL);
		}
		fp_str(&k, md->tls->trust_domain);
		if (md->tls->trust_fp) {
			fp_byte(&k, 'T');
			fp_u64(&k, md->tls->trust_fp);
		} else {
			fp_json(&k, md->tls->trust_domains);
		}
	}
	fp_byte(&k, 2);
	for (size_t i = 0; i < cp_policy_nplugins; i++) {
		if (!pp->run[i])
			continue;
		const struct cp_policy_matched *mp = &pp->mp[i];
		fp_u64(&k, i);
		for (size_t n = 0; n < mp->ninbounds; n++) {
			const struct cp_policy_inbound *in = &mp->inbounds[n];
			fp_str(&k, in->resource);
			km_buf_add(&k, in->address.ptr, in->address.len);
			fp_byte(&k, 0);
			km_buf_add(&k, in->name.ptr, in->name.len);
			fp_byte(&k, 0);
			fp_u64(&k, ((uint64_t)in->port << 32) | (in->inbound != NULL));
			for (size_t r = 0; r < in->nrules; r++) {
				const struct cp_policy_rule *rule = &in->rules[r];
				/* a rule is its policy's rules[index] default (the
				 * policy's fingerprint covers its spec) for one of its
				 * matches */
				const struct cp_policy *rp = rule->origin.policy;
				fp_str(&k, rp ? rp->kri : NULL);
				fp_u64(&k, (uint64_t)(int64_t)rule->origin.rule_index);
				fp_json(&k, rule->match);
				if (rp)
					fp_u64(&k, rp->fp);
				else
					fp_json(&k, rule->conf);
			}
			fp_byte(&k, 3);
		}
		fp_json(&k, mp->proxy_conf);
	}
	*k0 = k;
}

static void local_fp(const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		     const struct cp_xds_metadata *md, const struct cp_policy_prepared *pp, uint64_t fp[2])
{
	struct km_buf k = KM_BUF_INIT;
	fp_u64(&k, dp->fp);
	local_inputs(&k, m, md, pp, true);
	fp[0] = km_hash(KM_FNV_INIT, k.data, k.len);
	fp[1] = km_hash(0x6A09E667F3BCC909ULL, k.data, k.len);
	km_buf_fini(&k);
}

/* ---- local resources through shapes ---- */

/* Resource <name> filled from shape <sp> with <vars>. */
static struct cp_xds_blob *filled(struct build *b, struct cp_xds_shape *sp, const struct km_str *vars, size_t nvars,
				  const char *name)
{
	km_buf_reset(&b->bytes);
	cp_xds_shape_fill(sp, vars, nvars, &b->bytes);
	if (b->stats) {
		b->stats->encoded++;
		b->stats->patched++;
	}
	return cp_xds_blob_new(name, (const uint8_t *)b->bytes.data, b->bytes.len);
}

static struct cp_xds_blob *encode_shaped(struct build *b, int t, const char *name, const struct km_json *tree,
					 struct cp_xds_shape *sp, enum cp_xds_shape_use use, const struct km_str *vars,
					 size_t nmatch, const uint16_t *tags, size_t nvars);

/* The strings naming a proxy in its local resources: its address, its
 * name (the kuma.io/display-name label) and its workload (the
 * kuma.io/workload label, when it has one); none shorter than 4 bytes. */
static size_t local_vars(const struct cp_xds_dataplane *dp, struct km_str *vars)
{
	size_t n = 0;
	struct km_str addr = km_json_get_string(km_json_get(dp->spec, "networking"), "address");
	struct km_str wl = km_json_get_string(dp->labels, "kuma.io/workload");
	if (addr.len < 4 || dp->res.name.len < 4 || (wl.len && wl.len < 4))
		return 0;
	vars[n++] = addr;
	vars[n++] = dp->res.name;
	if (wl.len)
		vars[n++] = wl;
	return n;
}

/* <p>/<n> appended to <out> with every occurrence of one of <vars> (the
 * first found, the longer where two start at one place) replaced by a
 * mark naming it: what two proxies whose strings differ only there have
 * in common. */
static void masked(struct km_buf *out, const char *p, size_t n, const struct km_str *vars, size_t nvars)
{
	const char *next[4]; /* each var's next occurrence from i on (NULL: none) */
	size_t i = 0;
	for (size_t v = 0; v < nvars && v < 4; v++)
		next[v] = memmem(p, n, vars[v].ptr, vars[v].len);
	for (;;) {
		const char *best = NULL;
		size_t bv = 0;
		for (size_t v = 0; v < nvars && v < 4; v++)
			if (next[v] && (!best || next[v] < best || (next[v] == best && vars[v].len > vars[bv].len))) {
				best = next[v];
				bv = v;
			}
		if (!best) {
			km_buf_add(out, p + i, n - i);
			return;
		}
		km_buf_add(out, p + i, (size_t)(best - (p + i)));
		char mark[2] = {1, (char)('0' + bv)};
		km_buf_add(out, mark, 2);
		i = (size_t)(best - p) + vars[bv].len;
		for (size_t v = 0; v < nvars && v < 4; v++)
			if (next[v] && next[v] < p + i)
				next[v] = memmem(p + i, n - i, vars[v].ptr, vars[v].len);
	}
}

/* A proxy's local build through shapes: the strings naming it and the
 * fingerprint of everything else its local resources are built from. */
struct local_ctx {
	struct km_str vars[3];
	size_t nvars; /* 0: no shapes for this proxy */
	uint64_t fp[2];
};

static void local_prepare(struct build *b, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
			  const struct cp_xds_metadata *md, const struct cp_policy_prepared *pp,
			  struct local_ctx *lc)
{
	memset(lc, 0, sizeof(*lc));
	lc->nvars = local_vars(dp, lc->vars);
	if (!lc->nvars)
		return;
	/* the outbounds are not local resources' (cp_xds_generate_local
	 * leaves them to cp_xds_generate_outbound) */
	struct km_json *net = km_json_get(dp->spec, "networking");
	struct km_json *spec = dp->spec;
	if (net && net->kind == KM_JSON_OBJECT && dp->spec->kind == KM_JSON_OBJECT) {
		spec = without(b->a, dp->spec, "networking");
		km_json_set(b->a, spec, "networking", without(b->a, net, "outbound"));
	}
	struct km_buf in = KM_BUF_INIT, k = KM_BUF_INIT;
	fp_json(&in, spec);
	fp_json(&in, dp->labels);
	local_inputs(&in, m, md, pp, false);
	masked(&k, in.data, in.len, lc->vars, lc->nvars);
	lc->fp[0] = km_hash(KM_FNV_INIT, k.data, k.len);
	lc->fp[1] = km_hash(0x6A09E667F3BCC909ULL, k.data, k.len);
	km_buf_fini(&in);
	km_buf_fini(&k);
}

/* The shape key of local resource <t>/<name>, or (<t> < 0) of the list
 * of a proxy's local resources but its secrets. */
static void local_key(struct km_buf *key, const struct local_ctx *lc, int t, struct km_str name)
{
	km_buf_reset(key);
	char head[2] = {t < 0 ? 'M' : 'P', (char)('0' + (t < 0 ? 0 : t))};
	km_buf_add(key, head, 2);
	masked(key, name.ptr, name.len, lc->vars, lc->nvars);
	km_buf_add(key, "", 1);
	km_buf_add(key, lc->fp, sizeof(lc->fp));
}

/* Puts a proxy's local resources, all from shapes, when another proxy's
 * list of them and each of them were checked for the same inputs but the
 * strings naming it: then nothing is generated but its secrets (its own
 * certificate). Returns false, having put nothing, otherwise. */
static bool fill_local(struct build *b, struct cp_xds_share *sh, const struct cp_xds_dataplane *dp,
		       const struct cp_xds_metadata *md, const struct local_ctx *lc)
{
	if (!lc->nvars)
		return false;
	struct km_buf key = KM_BUF_INIT;
	local_key(&key, lc, -1, KM_STR(""));
	struct cp_xds_shape *ms = cp_xds_shape_find(sh->local_shapes, key.data, key.len, lc->vars, lc->nvars);
	ProtobufCMessage *msg = NULL;
	if (ms) {
		km_buf_reset(&b->scratch);
		cp_xds_shape_fill(ms, lc->vars, lc->nvars, &b->scratch);
		if (km_pb_wire_decode(b->a, &google__protobuf__list_value__descriptor, (const uint8_t *)b->scratch.data,
				      b->scratch.len, 0, &msg, NULL))
			msg = NULL;
	}
	const Google__Protobuf__ListValue *lv = (const Google__Protobuf__ListValue *)msg;
	struct cp_xds_shape **sps = lv ? km_arena_alloc(b->a, (lv->n_values + 1) * sizeof(*sps)) : NULL;
	for (size_t i = 0; lv && i < lv->n_values; i++) {
		const Google__Protobuf__Value *v = lv->values[i];
		const char *item = v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE ? v->string_value : "";
		int t = item[0] - '0';
		if (strlen(item) < 2 || t <= CP_XDS_SECRET || t >= CP_XDS_NTYPES) {
			lv = NULL;
			break;
		}
		local_key(&key, lc, t, km_str_c(item + 1));
		if (!(sps[i] = cp_xds_shape_find(sh->local_shapes, key.data, key.len, lc->vars, lc->nvars)))
			lv = NULL;
	}
	km_buf_fini(&key);
	if (!lv)
		return false;
	put_secrets(b, sh, dp, md);
	for (size_t i = 0; i < lv->n_values; i++) {
		const char *item = lv->values[i]->string_value;
		put(b, item[0] - '0', filled(b, sps[i], lc->vars, lc->nvars, item + 1), 0);
	}
	if (b->stats)
		b->stats->local_filled++;
	return true;
}

/* Encodes <rs>, a proxy's local resources, as put_all() does, each but its
 * secrets from a shape when another proxy's local resources had the same
 * inputs but for the strings naming it; records or checks the shape of the
 * list of them (fill_local). */
static void put_local(struct build *b, struct cp_xds_share *sh, const struct cp_xds_dataplane *dp,
		      const struct cp_xds_metadata *md, const struct local_ctx *lc, const struct cp_xds_resources *rs)
{
	const struct km_str *vars = lc->vars;
	size_t nvars = lc->nvars;
	struct km_buf key = KM_BUF_INIT;
	enum cp_xds_shape_use muse = CP_XDS_SHAPE_NONE;
	struct cp_xds_shape *ms = NULL;
	if (nvars) {
		local_key(&key, lc, -1, KM_STR(""));
		ms = cp_xds_shape_get(sh->local_shapes, key.data, key.len, vars, nvars, &muse);
	}
	bool list_needed = muse == CP_XDS_SHAPE_RECORD || muse == CP_XDS_SHAPE_VERIFY;
	struct km_json *list = list_needed ? km_json_array(b->a) : NULL;
	put_secrets(b, sh, dp, md); /* not in <rs> (cp_xds_generate_local) */
	for (int t = 0; t < CP_XDS_NTYPES; t++) {
		const struct km_json *objs = rs->by_type[t];
		for (size_t i = 0; objs && i < objs->len; i++) {
			struct km_str kn = objs->members[i].key;
			const char *name = km_arena_strndup(b->a, kn.ptr, kn.len);
			const struct km_json *tree = objs->members[i].val;
			if (!nvars || t == CP_XDS_SECRET) {
				put(b, t, encode(b, t, name, tree), 0);
				continue;
			}
			if (list_needed) /* the list is recorded or checked */
				km_json_array_push(b->a, list,
						   km_json_cstring(b->a, km_arena_printf(b->a, "%d%s", t, name)));
			local_key(&key, lc, t, kn);
			enum cp_xds_shape_use use;
			struct cp_xds_shape *sp = cp_xds_shape_get(sh->local_shapes, key.data, key.len, vars, nvars, &use);
			put(b, t,
			    use == CP_XDS_SHAPE_FILL ? filled(b, sp, vars, nvars, name)
						     : encode_shaped(b, t, name, tree, sp, use, vars, nvars, NULL, nvars),
			    0);
		}
	}
	km_buf_fini(&key);
	const ProtobufCMessageDescriptor *ld = &google__protobuf__list_value__descriptor;
	if (muse == CP_XDS_SHAPE_RECORD) {
		struct km_pb_shape *shape = NULL;
		km_buf_reset(&b->scratch);
		if (km_pb_shape_record(b->a, ld, list, vars, nvars, &b->scratch, &shape))
			shape = NULL;
		cp_xds_shape_recorded(ms, shape, vars, nvars);
	} else if (muse == CP_XDS_SHAPE_VERIFY) {
		km_buf_reset(&b->bytes);
		bool same = km_pb_write_json(b->a, ld, list, &b->bytes) == 0 &&
			    cp_xds_shape_verify(ms, vars, nvars, b->bytes.data, b->bytes.len, &b->scratch);
		if (!same && b->stats)
			b->stats->shape_mismatches++;
	}
}

/* Keeps the local resources just put in <out> (all of it so far). */
static void memo_save(struct cp_xds_local_memo *lm, const struct cp_xds_built *out, const uint64_t fp[2])
{
	cp_xds_local_memo_fini(lm);
	size_t total = 0;
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		total += out->n[t];
	lm->res = km_malloc((total + 1) * sizeof(*lm->res));
	for (int t = 0, k = 0; t < CP_XDS_NTYPES; t++) {
		lm->n[t] = out->n[t];
		for (size_t i = 0; i < out->n[t]; i++)
			lm->res[k++] = cp_xds_blob_ref(out->res[t][i]);
	}
	lm->fp[0] = fp[0];
	lm->fp[1] = fp[1];
}

/* An outbound's resources by key index, then its listener body's key. */
enum { K_CLUSTER, K_ENDPOINT, K_LISTENER, K_BODY };
static const int outbound_types[] = {[K_CLUSTER] = CP_XDS_CLUSTER, [K_ENDPOINT] = CP_XDS_ENDPOINT,
				     [K_LISTENER] = CP_XDS_LISTENER};
#define NOUTBOUND_TYPES (sizeof(outbound_types) / sizeof(outbound_types[0]))

/* ---- a build's outbounds through the table ---- */

/* Per outbound: its keys (NULL kk[K_CLUSTER]: a plugin cannot say what it
 * reads, so the proxy makes its own), what the table gave and how. */
struct ob_keys {
	const char *kk[NOUTBOUND_TYPES + 1];
	size_t kl[NOUTBOUND_TYPES + 1];
	uint64_t kh[NOUTBOUND_TYPES + 1]; /* the keys' hashes, computed once */
	size_t dest;   /* where the keys' part that is not the destination's starts */
	size_t common; /* and where its policies' part starts */
	struct cp_xds_blob *got[NOUTBOUND_TYPES + 1];
	unsigned char state[NOUTBOUND_TYPES + 1];
};

/* S_SELF: claimed by this build for an earlier outbound (the same
 * destination twice), taken once this build published it. S_UNUSED: a
 * listener body when the listener itself was there. */
enum { S_FOUND = 1, S_CLAIMED, S_WAIT, S_SELF, S_UNUSED };
enum { TOOK_CLAIMED = 1, TOOK_WAIT = 2 };

/* Fills <ks> with each outbound's keys: type and destination (its name and
 * the fingerprint of everything read of it: spec, labels, status,
 * endpoints); a cluster and a listener add the mesh-wide inputs, the
 * identity and the confs of the policies that shape them, and the listener
 * where it listens; the listener body's is the listener's without where it
 * listens. A load assignment is made of the destination alone. Entries
 * outlive the context they were built in (cp_xds_share_next). */
static void outbound_keys(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_metadata *md,
			  struct cp_policy_prepared *pp, const struct cp_xds_outbound *obs, size_t nobs,
			  struct ob_keys *ks)
{
	struct km_buf key = KM_BUF_INIT;
	for (size_t i = 0; i < nobs; i++) {
		const struct cp_xds_outbound *o = &obs[i];
		struct ob_keys *ok = &ks[i];
		km_buf_reset(&key);
		km_buf_add(&key, "?", 1);
		km_buf_add(&key, o->kri, strlen(o->kri) + 1);
		km_buf_add(&key, &o->s->fp, sizeof(o->s->fp));
		size_t dest = ok->dest = key.len;
		/* a load assignment: the destination and the confs of the
		 * plugins that shape load assignments (most often none) */
		if (pp->endpoint_plugins && !cp_policy_outbound_key(pp, o->kri, 1u << CP_XDS_ENDPOINT, &key))
			continue;
		key.data[0] = '0' + CP_XDS_ENDPOINT;
		ok->kk[K_ENDPOINT] = km_arena_strndup(a, key.data, ok->kl[K_ENDPOINT] = key.len);
		key.data[0] = '?';
		key.len = dest;
		km_buf_add(&key, &m->fp_rest, sizeof(m->fp_rest));
		if (md->tls) {
			km_buf_add(&key, "T", 1);
			km_buf_add(&key, md->tls->secret_name, strlen(md->tls->secret_name));
		}
		km_buf_add(&key, "", 1);
		size_t common = ok->common = key.len;
		if (!cp_policy_outbound_key(pp, o->kri, 1u << CP_XDS_CLUSTER, &key))
			continue;
		key.data[0] = '0' + CP_XDS_CLUSTER;
		ok->kk[K_CLUSTER] = km_arena_strndup(a, key.data, ok->kl[K_CLUSTER] = key.len);
		key.len = common;
		cp_policy_outbound_key(pp, o->kri, 1u << CP_XDS_LISTENER, &key);
		/* a backend-only outbound has no listener: its (empty) entries
		 * get keys of their own */
		key.data[0] = o->backend_only ? 'b' : 'B';
		ok->kk[K_BODY] = km_arena_strndup(a, key.data, ok->kl[K_BODY] = key.len);
		key.data[0] = o->backend_only ? 'l' : '0' + CP_XDS_LISTENER;
		km_buf_add(&key, "", 1);
		km_buf_add(&key, o->address.ptr, o->address.len);
		km_buf_add(&key, ":", 1);
		km_buf_add(&key, &o->port, sizeof(o->port));
		ok->kk[K_LISTENER] = km_arena_strndup(a, key.data, ok->kl[K_LISTENER] = key.len);
		/* the body's when a listener is missing (table_take) */
		for (size_t k = 0; k < NOUTBOUND_TYPES; k++)
			ok->kh[k] = km_hash(KM_FNV_INIT, ok->kk[k], ok->kl[k]);
	}
	km_buf_fini(&key);
}

/* Takes from <sh> what is there, made and published, without the lock;
 * then, when something is missing, one locked pass over the rest: found,
 * claimed by build <self>, or claimed by another build (waited for in
 * publish_and_wait). Returns TOOK_* bits. */
static unsigned table_take(struct cp_xds_share *sh, const void *self, struct ob_keys *ks, size_t nobs)
{
	unsigned took = 0;
	bool need_lock = false;
	for (size_t i = 0; i < nobs; i++) {
		struct ob_keys *ok = &ks[i];
		if (!ok->kk[K_CLUSTER])
			continue;
		for (size_t k = 0; k < NOUTBOUND_TYPES; k++) {
			if ((ok->got[k] = find_fast(sh, ok->kk[k], ok->kl[k], ok->kh[k])))
				ok->state[k] = S_FOUND;
			else
				need_lock = true;
		}
		if (ok->state[K_LISTENER] == S_FOUND)
			ok->state[K_BODY] = S_UNUSED;
	}
	if (!need_lock)
		return 0;
	pthread_mutex_lock(&sh->mu);
	reserve(sh, nobs * (NOUTBOUND_TYPES + 1));
	for (size_t i = 0; i < nobs; i++) {
		struct ob_keys *ok = &ks[i];
		if (!ok->kk[K_CLUSTER])
			continue;
		for (size_t k = 0; k <= NOUTBOUND_TYPES; k++) {
			if (ok->state[k])
				continue; /* found above */
			if (k == K_BODY && ok->state[K_LISTENER] != S_CLAIMED) {
				ok->state[k] = S_UNUSED; /* the listener itself is there */
				continue;
			}
			if (k == K_BODY)
				ok->kh[k] = km_hash(KM_FNV_INIT, ok->kk[k], ok->kl[k]);
			struct entry *e = find(sh, ok->kk[k], ok->kl[k], ok->kh[k]);
			if (!e) {
				claim(sh, ok->kk[k], ok->kl[k], ok->kh[k], self);
				ok->state[k] = S_CLAIMED;
				took |= TOOK_CLAIMED;
			} else if (is_pending(e, memory_order_relaxed) && e->owner == self) {
				ok->state[k] = S_SELF;
			} else if (is_pending(e, memory_order_relaxed)) {
				ok->state[k] = S_WAIT;
				took |= TOOK_WAIT;
			} else {
				ok->state[k] = S_FOUND;
				ok->got[k] = cp_xds_blob_ref(blob_of(e));
			}
		}
	}
	pthread_mutex_unlock(&sh->mu);
	return took;
}

#define MAX_VARS 32

/* An outbound's shape vars: its names (cp_xds_outbound_vars(), found by
 * content) then its policies' conf values (holes by tag). */
struct ob_vars {
	struct km_str v[MAX_VARS];
	uint16_t tags[MAX_VARS]; /* of v[nmatch..n) */
	size_t n, nmatch;
};

/* A resource of a shape (cp/xds/shape.h) encoded: recording the shape,
 * or checking it, as the shape's use says. vars[nmatch..nvars) are holes
 * by tags[] (km_pb_shape_record_tagged). */
static struct cp_xds_blob *encode_shaped(struct build *b, int t, const char *name, const struct km_json *tree,
					 struct cp_xds_shape *sp, enum cp_xds_shape_use use, const struct km_str *vars,
					 size_t nmatch, const uint16_t *tags, size_t nvars)
{
	if (use == CP_XDS_SHAPE_RECORD) {
		const ProtobufCMessageDescriptor *d = km_pb_find(km_str_c(cp_xds_type_url[t]));
		struct km_pb_shape *shape = NULL;
		km_buf_reset(&b->bytes);
		if (d && km_pb_shape_record_tagged(b->a, d, tree, vars, nmatch, tags, nvars, &b->bytes, &shape) == 0) {
			cp_xds_shape_recorded(sp, shape, vars, nvars);
			if (b->stats)
				b->stats->encoded++;
			return cp_xds_blob_new(name, (const uint8_t *)b->bytes.data, b->bytes.len);
		}
		cp_xds_shape_recorded(sp, NULL, vars, nvars);
		return encode(b, t, name, tree); /* says what is wrong */
	}
	struct cp_xds_blob *blob = encode(b, t, name, tree);
	if (use == CP_XDS_SHAPE_VERIFY && blob &&
	    !cp_xds_shape_verify(sp, vars, nvars, blob->bytes, blob->len, &b->scratch) && b->stats)
		b->stats->shape_mismatches++;
	return blob;
}

/* Generates and encodes what this build claimed, outside the lock; a
 * claimed listener gets its body here and its address in make_listeners.
 * A cluster or listener body whose shape is known is filled instead. */
static void make_claimed(struct cp_xds_share *sh, struct build *b, const struct cp_xds_mesh *m,
			 const struct cp_xds_dataplane *dp, const struct cp_xds_metadata *md,
			 struct cp_policy_prepared *pp, const struct cp_xds_outbound *obs, size_t nobs,
			 struct ob_keys *ks)
{
	struct km_buf key = KM_BUF_INIT;
	for (size_t i = 0; i < nobs; i++) {
		const struct cp_xds_outbound *o = &obs[i];
		struct ob_keys *ok = &ks[i];
		unsigned missing = 0;
		for (size_t k = 0; k < NOUTBOUND_TYPES; k++)
			if (ok->state[k] == S_CLAIMED && !(k == K_LISTENER && ok->state[K_BODY] != S_CLAIMED))
				missing |= 1u << outbound_types[k];
		if (o->backend_only)
			missing &= ~(1u << CP_XDS_LISTENER);
		if (!missing)
			continue;
		/* by key index: the cluster's and the listener body's shape */
		struct cp_xds_shape *sp[NOUTBOUND_TYPES + 1] = {0};
		enum cp_xds_shape_use use[NOUTBOUND_TYPES + 1] = {0};
		struct ob_vars ov;
		ov.n = 0;
		if (missing & ((1u << CP_XDS_CLUSTER) | (1u << CP_XDS_LISTENER))) {
			/* the key of both shapes: the names' kinds, what is not the
			 * destination's but its policies, and their confs without
			 * the values that are holes (one layout of vars for both) */
			km_buf_reset(&key);
			km_buf_add(&key, "?", 1);
			ov.nmatch = ov.n = cp_xds_outbound_vars(b->a, m, md, o, ov.v, MAX_VARS, &key);
			km_buf_add(&key, ok->kk[K_CLUSTER] + ok->dest, ok->common - ok->dest);
			if (ov.n && !cp_policy_outbound_shape_key(pp, sh->rule_shapes, o->kri,
								 (1u << CP_XDS_CLUSTER) | (1u << CP_XDS_LISTENER), &key,
								 ov.v, ov.tags, &ov.n, MAX_VARS))
				ov.n = 0;
			for (size_t k = 0; ov.n && k <= NOUTBOUND_TYPES; k++) {
				int t = k == K_CLUSTER ? CP_XDS_CLUSTER : CP_XDS_LISTENER;
				if ((k != K_CLUSTER && k != K_BODY) || !(missing & (1u << t)))
					continue;
				key.data[0] = k == K_CLUSTER ? 'C' : 'L';
				sp[k] = cp_xds_shape_get(sh->shapes, key.data, key.len, ov.v, ov.n, &use[k]);
				if (use[k] != CP_XDS_SHAPE_FILL)
					continue;
				ok->got[k] = filled(b, sp[k], ov.v, ov.n, o->kri);
				missing &= ~(1u << t);
			}
		}
		if (!missing)
			continue;
		struct cp_xds_resources rs = {0};
		cp_xds_generate_outbound(b->a, m, dp, md, pp, o, missing, &rs);
		for (size_t k = 0; k < NOUTBOUND_TYPES; k++) {
			int t = outbound_types[k];
			if (!(missing & (1u << t)))
				continue;
			const struct km_json *tree = km_json_get(rs.by_type[t], o->kri);
			size_t into = k == K_LISTENER ? K_BODY : k;
			if (tree && k == K_LISTENER)
				tree = without(b->a, tree, "address");
			ok->got[into] = tree ? encode_shaped(b, t, o->kri, tree, sp[into], use[into], ov.v, ov.nmatch,
								ov.tags + ov.nmatch, ov.n)
				     : NULL;
			if (!tree && use[into] == CP_XDS_SHAPE_RECORD)
				cp_xds_shape_recorded(sp[into], NULL, ov.v, ov.n);
		}
	}
	km_buf_fini(&key);
}

/* Publishes this build's claims but its listeners (made from bodies that
 * may be another build's), then takes what other builds were making and
 * what this one claimed for an earlier outbound. A build waits only after
 * publishing its own claims, so no two builds wait for each other. */
static void publish_and_wait(struct cp_xds_share *sh, struct ob_keys *ks, size_t nobs, unsigned took)
{
	pthread_mutex_lock(&sh->mu);
	for (size_t i = 0; (took & TOOK_CLAIMED) && i < nobs; i++) {
		struct ob_keys *ok = &ks[i];
		if (ok->state[K_BODY] == S_CLAIMED)
			publish(sh, ok->kk[K_BODY], ok->kl[K_BODY], ok->kh[K_BODY], ok->got[K_BODY], NULL);
		for (size_t k = 0; k < NOUTBOUND_TYPES; k++)
			if (ok->state[k] == S_CLAIMED && k != K_LISTENER)
				publish(sh, ok->kk[k], ok->kl[k], ok->kh[k], ok->got[k], NULL);
	}
	if ((took & TOOK_CLAIMED) && sh->waiters)
		pthread_cond_broadcast(&sh->published);
	for (size_t i = 0; i < nobs; i++) {
		struct ob_keys *ok = &ks[i];
		for (size_t k = 0; k <= NOUTBOUND_TYPES; k++) {
			if (ok->state[k] == S_SELF && k != K_LISTENER) {
				ok->got[k] = cp_xds_blob_ref(blob_of(find(sh, ok->kk[k], ok->kl[k], ok->kh[k])));
				ok->state[k] = S_FOUND;
			}
			if (ok->state[k] != S_WAIT)
				continue;
			struct entry *e;
			while (is_pending(e = find(sh, ok->kk[k], ok->kl[k], ok->kh[k]), memory_order_relaxed)) {
				sh->waiters++;
				pthread_cond_wait(&sh->published, &sh->mu);
				sh->waiters--;
			}
			ok->got[k] = cp_xds_blob_ref(blob_of(e));
			ok->state[k] = S_FOUND;
		}
	}
	pthread_mutex_unlock(&sh->mu);
}

/* A claimed listener: its body (made here or by another build) followed by
 * this proxy's address; published, then the listeners this build claimed
 * for an earlier outbound are taken. */
static void make_listeners(struct cp_xds_share *sh, struct build *b, const struct cp_xds_outbound *obs,
			   size_t nobs, struct ob_keys *ks)
{
	bool made = false, self = false;
	for (size_t i = 0; i < nobs; i++) {
		struct ob_keys *ok = &ks[i];
		self |= ok->state[K_LISTENER] == S_SELF;
		if (ok->state[K_LISTENER] == S_CLAIMED) {
			ok->got[K_LISTENER] = ok->got[K_BODY] ? with_address(b, ok->got[K_BODY], &obs[i]) : NULL;
			made = true;
		}
	}
	if (!made && !self)
		return;
	pthread_mutex_lock(&sh->mu);
	for (size_t i = 0; i < nobs; i++) {
		struct ob_keys *ok = &ks[i];
		if (ok->state[K_LISTENER] == S_CLAIMED)
			publish(sh, ok->kk[K_LISTENER], ok->kl[K_LISTENER], ok->kh[K_LISTENER], ok->got[K_LISTENER],
				ok->got[K_BODY]);
	}
	if (made && sh->waiters)
		pthread_cond_broadcast(&sh->published);
	for (size_t i = 0; i < nobs; i++) {
		struct ob_keys *ok = &ks[i];
		if (ok->state[K_LISTENER] == S_SELF) {
			ok->got[K_LISTENER] = cp_xds_blob_ref(
				blob_of(find(sh, ok->kk[K_LISTENER], ok->kl[K_LISTENER], ok->kh[K_LISTENER])));
			ok->state[K_LISTENER] = S_FOUND;
		}
	}
	pthread_mutex_unlock(&sh->mu);
}

/* Adds the time since *<t> to step <k> when the caller times steps. */
static void step_done(struct cp_xds_share_stats *stats, enum cp_xds_build_step k, int64_t *t)
{
	if (!stats || !stats->step_ns)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (*t)
		stats->step_ns[k] += (uint64_t)(now - *t);
	*t = now;
}

void cp_xds_build(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		  const struct cp_xds_metadata *md, struct cp_xds_share *sh, struct cp_xds_local_memo *lm,
		  struct cp_xds_built *out, struct cp_xds_share_stats *stats, struct km_buf *errors)
{
	memset(out, 0, sizeof(*out));
	struct build b = {.a = a,
			  .out = out,
			  .stats = stats,
			  .errors = errors,
			  .bytes = KM_BUF_INIT,
			  .err = KM_BUF_INIT,
			  .scratch = KM_BUF_INIT};
	if (!sh || md->proxyless) {
		struct cp_xds_resources rs;
		cp_xds_generate(a, m, dp, md, &rs);
		put_all(&b, &rs, NULL);
		goto done;
	}
	int64_t at = 0;
	step_done(stats, CP_XDS_STEP_RULES, &at);
	struct cp_policy_prepared pp;
	cp_policy_prepare(a, m, dp, md, &pp);
	step_done(stats, CP_XDS_STEP_RULES, &at);
	struct cp_xds_outbound *obs;
	size_t nobs;
	uint64_t fp[2] = {0, 0};
	if (lm)
		local_fp(m, dp, md, &pp, fp);
	step_done(stats, CP_XDS_STEP_FINGERPRINT, &at);
	if (lm && lm->res && lm->fp[0] == fp[0] && lm->fp[1] == fp[1]) {
		cp_xds_list_outbounds(a, m, dp, md, &pp, &obs, &nobs);
		for (int t = 0, k = 0; t < CP_XDS_NTYPES; t++)
			for (size_t i = 0; i < lm->n[t]; i++, k++)
				put(&b, t, cp_xds_blob_ref(lm->res[k]), 0);
		if (stats)
			for (int t = 0; t < CP_XDS_NTYPES; t++)
				stats->reused += lm->n[t];
	} else {
		struct local_ctx lc;
		local_prepare(&b, m, dp, md, &pp, &lc);
		if (fill_local(&b, sh, dp, md, &lc)) {
			cp_xds_list_outbounds(a, m, dp, md, &pp, &obs, &nobs);
		} else {
			struct cp_xds_resources local;
			cp_xds_generate_local(a, m, dp, md, &pp, &local, &obs, &nobs);
			put_local(&b, sh, dp, md, &lc, &local);
		}
		if (lm)
			memo_save(lm, out, fp);
	}
	step_done(stats, CP_XDS_STEP_LOCAL, &at);
	size_t from[CP_XDS_NTYPES];
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		from[t] = out->n[t];
	struct ob_keys *ks = km_arena_alloc(a, (nobs + 1) * sizeof(*ks));
	outbound_keys(a, m, md, &pp, obs, nobs, ks);
	step_done(stats, CP_XDS_STEP_KEYS, &at);
	unsigned took = table_take(sh, &b, ks, nobs);
	step_done(stats, CP_XDS_STEP_TAKE, &at);
	if (took & TOOK_CLAIMED)
		make_claimed(sh, &b, m, dp, md, &pp, obs, nobs, ks);
	step_done(stats, CP_XDS_STEP_MAKE, &at);
	if (took & (TOOK_CLAIMED | TOOK_WAIT))
		publish_and_wait(sh, ks, nobs, took);
	if (took & TOOK_CLAIMED)
		make_listeners(sh, &b, obs, nobs, ks);
	step_done(stats, CP_XDS_STEP_LISTENERS, &at);
	for (size_t i = 0; i < nobs; i++) {
		const struct cp_xds_outbound *o = &obs[i];
		struct ob_keys *ok = &ks[i];
		if (!ok->kk[K_CLUSTER]) {
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
		for (size_t k = 0; k < NOUTBOUND_TYPES; k++) {
			if (stats && ok->state[k] == S_FOUND)
				stats->shared++;
			put(&b, outbound_types[k], ok->got[k], from[outbound_types[k]]);
		}
		if (stats && ok->state[K_LISTENER] == S_CLAIMED && ok->state[K_BODY] == S_FOUND)
			stats->shared++;
		cp_xds_blob_unref(ok->got[K_BODY]);
	}
	step_done(stats, CP_XDS_STEP_PUT, &at);
done:
	km_buf_fini(&b.bytes);
	km_buf_fini(&b.err);
	km_buf_fini(&b.scratch);
}

void cp_xds_built_release(struct cp_xds_built *b)
{
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		for (size_t i = 0; i < b->n[t]; i++)
			cp_xds_blob_unref(b->res[t][i]);
	memset(b, 0, sizeof(*b));
}
