/* SPDX-License-Identifier: Apache-2.0 */
/* Envoy admin access (see envoyadmin.h): the envoy-admin-ca GlobalSecret,
 * the issuer and certificates made from it, and the libcurl multi handle
 * driven by the event loop (sockets watched as curl asks, one timer). */
#include "cp/envoyadmin.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/ptab.h"
#include "ev/curlm.h"
#include "codec/json.h"
#include "cp/manager.h"
#include "cp/pki/x509.h"
#include "cp/store/store.h"

#define CA_NAME "envoy-admin-ca"
#define CERT_VALIDITY_NS (10LL * 365 * 24 * 3600 * 1000000000LL) /* upstream's leaf default */
#define MAX_RESPONSE ((size_t)64 << 20)

struct server_cert {
	uint64_t h;
	char *address;
	struct cp_envoy_admin_tls tls;
	uint64_t used_ms; /* last asked for */
};

/* Certificates of addresses nobody asked for in an hour go (a proxy that
 * comes back gets a new one), looked for at most once a minute once there
 * are more than a few: proxies come and go with new addresses. */
#define CERT_IDLE_MS (3600 * 1000ULL)
#define CERT_SWEEP_MS (60 * 1000ULL)
#define CERT_SWEEP_ABOVE 256u

struct fetch {
	struct cp_envoy_admin *ea;
	CURL *easy;
	struct km_buf body;
	char errbuf[CURL_ERROR_SIZE];
	cp_envoy_admin_fn fn;
	void *ud;
	struct fetch *prev, *next;
};

struct cp_envoy_admin {
	struct cp_runtime *rt;
	struct cp_pki_ca *issuer; /* ECDSA P-256, signed by the CA */
	char *ca_pem, *issuer_pem;
	char *client_cert_pem, *client_key_pem;
	struct km_ptab certs;     /* struct server_cert by address */
	uint64_t swept_ms;
	uint64_t idle_ms, sweep_ms; /* CERT_IDLE_MS, CERT_SWEEP_MS unless a test says */
	size_t sweep_above;
	struct km_curlm *cm; /* made at the first request */
	struct fetch *fetches;
	/* a new CA's RSA key is made on a thread of its own (~0.2 s) */
	pthread_t gen_thread;
	bool gen_running;
	int gen_efd;
	int gen_rc;
	struct km_buf gen_pem; /* certificate then key */
};

struct cp_envoy_admin *cp_envoy_admin_new(struct cp_runtime *rt)
{
	struct cp_envoy_admin *ea = km_calloc(1, sizeof(*ea));
	ea->rt = rt;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ea->idle_ms = CERT_IDLE_MS;
	ea->sweep_ms = CERT_SWEEP_MS;
	ea->sweep_above = CERT_SWEEP_ABOVE;
	return ea;
}

static bool drop_cert(void *e, void *arg)
{
	struct server_cert *c = e;
	const uint64_t *before = arg;
	if (before && c->used_ms >= *before)
		return true;
	free(c->address);
	free((char *)c->tls.chain_pem);
	free((char *)c->tls.key_pem);
	free(c);
	return false;
}

static void finish(struct fetch *f, long status, const char *err);

static int gen_collect(struct cp_envoy_admin *ea);

void cp_envoy_admin_free(struct cp_envoy_admin *ea)
{
	if (!ea)
		return;
	gen_collect(ea);
	km_buf_fini(&ea->gen_pem);
	while (ea->fetches)
		finish(ea->fetches, 0, "the control plane is stopping");
	km_curlm_free(ea->cm);
	km_ptab_filter(&ea->certs, drop_cert, NULL);
	km_ptab_fini(&ea->certs);
	cp_pki_x509_ca_free(ea->issuer);
	free(ea->ca_pem);
	free(ea->issuer_pem);
	free(ea->client_cert_pem);
	free(ea->client_key_pem);
	free(ea);
}

/* ---- the CA ---- */

static void set_err(struct km_buf *err, const char *fmt, const char *detail)
{
	if (err)
		km_buf_printf(err, fmt, detail);
}

/* The CA's PEMs (certificate, then key) from the GlobalSecret: 0,
 * -KM_E_NOT_FOUND, or another negative errno. */
static int load_secret(struct cp_runtime *rt, struct km_arena *a, struct km_buf *pem)
{
	struct km_resource r;
	int rc = cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("GlobalSecret")), KM_STR(""), KM_STR(CA_NAME), &r);
	if (rc)
		return rc;
	struct km_json *spec;
	if (km_json_parse(a, r.spec.ptr, r.spec.len, &spec, NULL))
		return -EINVAL;
	return cp_pki_base64_decode(pem, km_json_get_string(spec, "data"));
}

static int create_secret(struct cp_runtime *rt, struct km_arena *a, struct km_str pem)
{
	struct km_buf b64 = KM_BUF_INIT;
	cp_pki_base64_encode(&b64, pem.ptr, pem.len);
	struct km_resource_doc d = {0};
	d.type = km_rtype_by_name(KM_STR("GlobalSecret"));
	d.name = KM_STR(CA_NAME);
	d.spec = km_json_object(a);
	km_json_set(a, d.spec, "data", km_json_string(a, (struct km_str){km_arena_strndup(a, b64.data, b64.len), b64.len}));
	km_buf_fini(&b64);
	struct km_violations v;
	km_violations_init(&v, a);
	return cp_manager_create(rt, a, &d, &v);
}

/* The issuer and the client certificate from the CA <pem>. */
static int prepare(struct cp_envoy_admin *ea, struct km_str pem, struct km_buf *err)
{
	struct km_buf lerr = KM_BUF_INIT;
	struct cp_pki_ca *ca = cp_pki_x509_ca_load(pem, pem, &lerr);
	if (!ca) {
		set_err(err, "could not load the Envoy Admin CA: %s", km_buf_cstr(&lerr));
		km_buf_fini(&lerr);
		return -EINVAL;
	}
	km_buf_fini(&lerr);
	int64_t now = km_time_now();
	struct km_buf icert = KM_BUF_INIT, ikey = KM_BUF_INIT, ccert = KM_BUF_INIT, ckey = KM_BUF_INIT,
		      capem = KM_BUF_INIT;
	int rc = cp_pki_x509_issue_tls(ca, CP_PKI_TLS_CA, "Envoy Admin Issuer", NULL, now, CERT_VALIDITY_NS, &icert,
				       &ikey);
	if (!rc)
		rc = cp_pki_x509_issue_tls(ca, CP_PKI_TLS_CLIENT, NULL, "kuma-cp", now, CERT_VALIDITY_NS, &ccert, &ckey);
	struct cp_pki_ca *issuer = rc ? NULL : cp_pki_x509_ca_load(km_str_c(km_buf_cstr(&icert)), km_str_c(km_buf_cstr(&ikey)), NULL);
	/* the CA certificate alone: the first PEM block */
	const char *end = strstr(pem.ptr, "-----END CERTIFICATE-----");
	if (end)
		km_buf_append(&capem, pem.ptr, (size_t)(end - pem.ptr) + strlen("-----END CERTIFICATE-----\n"));
	cp_pki_x509_ca_free(ca);
	if (rc || !issuer || !end) {
		set_err(err, "could not issue the Envoy Admin certificates%s", "");
		cp_pki_x509_ca_free(issuer);
		km_buf_fini(&icert);
		km_buf_fini(&ccert);
		km_buf_fini(&capem);
		km_buf_fini(&ikey);
		km_buf_fini(&ckey);
		return rc ? rc : -EINVAL;
	}
	if (ikey.data)
		OPENSSL_cleanse(ikey.data, ikey.len);
	km_buf_fini(&ikey);
	ea->issuer = issuer;
	ea->issuer_pem = km_buf_steal(&icert);
	ea->ca_pem = km_buf_steal(&capem);
	ea->client_cert_pem = km_buf_steal(&ccert);
	ea->client_key_pem = km_buf_steal(&ckey);
	return 0;
}

static void *gen_main(void *arg)
{
	struct cp_envoy_admin *ea = arg;
	struct km_buf key = KM_BUF_INIT;
	ea->gen_rc = cp_pki_x509_ca_generate_named(CP_PKI_KEY_RSA2048, "Envoy Admin CA", km_time_now(), &ea->gen_pem,
						   &key, NULL);
	km_buf_append(&ea->gen_pem, key.data, key.len);
	if (key.data)
		OPENSSL_cleanse(key.data, key.len);
	km_buf_fini(&key);
	uint64_t one = 1;
	if (write(ea->gen_efd, &one, sizeof(one)) < 0) {
		/* no wake-up: the loop joins the thread at its next need */
	}
	return NULL;
}

/* Waits for the generating thread: its result (0, the PEMs in gen_pem),
 * or -ENOENT when none ran. */
static int gen_collect(struct cp_envoy_admin *ea)
{
	if (!ea->gen_running)
		return -ENOENT;
	pthread_join(ea->gen_thread, NULL);
	ea->gen_running = false;
	km_loop_unwatch(ea->rt->loop, ea->gen_efd);
	close(ea->gen_efd);
	return ea->gen_rc;
}

static int ensure(struct cp_envoy_admin *ea, bool wait, struct km_buf *err);

static void on_generated(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	struct km_buf err = KM_BUF_INIT;
	if (ensure(ctx, true, &err))
		km_warn("envoy-admin", "%s", km_buf_cstr(&err));
	km_buf_fini(&err);
}

static int ensure(struct cp_envoy_admin *ea, bool wait, struct km_buf *err)
{
	if (ea->issuer)
		return 0;
	struct km_arena *a = km_arena_new(8192);
	struct km_buf pem = KM_BUF_INIT;
	int rc = load_secret(ea->rt, a, &pem);
	if (rc == -KM_E_NOT_FOUND && !ea->gen_running && !ea->gen_pem.len) {
		ea->gen_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		/* the thread takes no signal: the loop's signalfd gets them */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		bool started = ea->gen_efd >= 0 &&
			       km_loop_watch(ea->rt->loop, ea->gen_efd, KM_EV_READ, on_generated, ea) == 0 &&
			       pthread_create(&ea->gen_thread, NULL, gen_main, ea) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (started) {
			ea->gen_running = true;
		} else {
			if (ea->gen_efd >= 0) {
				km_loop_unwatch(ea->rt->loop, ea->gen_efd);
				close(ea->gen_efd);
			}
			ea->gen_efd = -1;
			gen_main(ea); /* no thread: here, then */
		}
	}
	if (rc == -KM_E_NOT_FOUND && ea->gen_running) {
		if (!wait) {
			km_buf_fini(&pem);
			km_arena_free(a);
			return -EINPROGRESS;
		}
		rc = gen_collect(ea);
		if (rc)
			km_buf_reset(&ea->gen_pem);
		else
			rc = -KM_E_NOT_FOUND;
	}
	if (rc == -KM_E_NOT_FOUND && ea->gen_pem.len) {
		rc = create_secret(ea->rt, a, (struct km_str){ea->gen_pem.data, ea->gen_pem.len});
		if (rc == 0) {
			km_info("envoy-admin", "Envoy Admin CA created");
			km_buf_append(&pem, ea->gen_pem.data, ea->gen_pem.len);
		} else if (rc == -KM_E_EXISTS) { /* another instance made it first */
			rc = load_secret(ea->rt, a, &pem);
		}
		if (rc != -KM_E_NOT_FOUND && rc != -KM_E_EXISTS) {
			OPENSSL_cleanse(ea->gen_pem.data, ea->gen_pem.len);
			km_buf_fini(&ea->gen_pem);
		}
	}
	if (rc)
		set_err(err, "could not load the Envoy Admin CA: %s", km_strerror(rc));
	else
		rc = prepare(ea, (struct km_str){km_buf_cstr(&pem), pem.len}, err);
	km_buf_fini(&pem);
	km_arena_free(a);
	return rc;
}

int cp_envoy_admin_ensure_ca(struct cp_envoy_admin *ea, struct km_buf *err)
{
	int rc = ensure(ea, false, err);
	return rc == -EINPROGRESS ? 0 : rc;
}

void cp_envoy_admin_settle(struct cp_envoy_admin *ea)
{
	if (ea && ea->gen_running)
		ensure(ea, true, NULL);
}

/* ---- per-proxy server certificates ---- */

int cp_envoy_admin_server_tls(struct cp_envoy_admin *ea, struct km_str address, struct cp_envoy_admin_tls *out)
{
	int rc = ensure(ea, true, NULL);
	if (rc)
		return rc;
	uint64_t h = km_hash(KM_FNV_INIT, address.ptr, address.len);
	size_t it = 0;
	for (struct server_cert *c; (c = km_ptab_next(&ea->certs, h, &it));)
		if (strlen(c->address) == address.len && memcmp(c->address, address.ptr, address.len) == 0) {
			c->used_ms = km_loop_now_ms();
			*out = c->tls;
			return 0;
		}
	uint64_t now = km_loop_now_ms();
	if (ea->certs.n > ea->sweep_above && now - ea->swept_ms >= ea->sweep_ms && now >= ea->idle_ms) {
		uint64_t before = now - ea->idle_ms;
		km_ptab_filter(&ea->certs, drop_cert, &before);
		ea->swept_ms = now;
	}
	char *host = km_strndup(address.ptr, address.len);
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT;
	rc = cp_pki_x509_issue_tls(ea->issuer, CP_PKI_TLS_SERVER, NULL, host, km_time_now(), CERT_VALIDITY_NS, &cert,
				   &key);
	if (rc) {
		free(host);
		km_buf_fini(&cert);
		km_buf_fini(&key);
		return rc;
	}
	km_buf_puts(&cert, ea->issuer_pem);
	struct server_cert *c = km_calloc(1, sizeof(*c));
	c->h = h;
	c->used_ms = now;
	c->address = host;
	c->tls.chain_pem = km_buf_steal(&cert);
	c->tls.key_pem = km_buf_steal(&key);
	c->tls.ca_pem = ea->ca_pem;
	uint64_t fp = km_hash(KM_FNV_INIT, c->tls.chain_pem, strlen(c->tls.chain_pem));
	fp = km_hash(fp, c->tls.key_pem, strlen(c->tls.key_pem));
	c->tls.fp = km_hash(fp, ea->ca_pem, strlen(ea->ca_pem));
	c->tls.ca_fp = km_hash(KM_FNV_INIT, ea->ca_pem, strlen(ea->ca_pem));
	km_ptab_add(&ea->certs, h, c);
	*out = c->tls;
	return 0;
}

void cp_envoy_admin_set_cert_sweep(struct cp_envoy_admin *ea, uint64_t idle_ms, uint64_t sweep_ms, size_t above)
{
	ea->idle_ms = idle_ms;
	ea->sweep_ms = sweep_ms;
	ea->sweep_above = above;
}

size_t cp_envoy_admin_cached(const struct cp_envoy_admin *ea)
{
	return ea->certs.n;
}

static bool is_wildcard(struct km_str a)
{
	return !a.len || km_str_eqc(a, "0.0.0.0") || km_str_eqc(a, "::");
}

bool cp_envoy_admin_exposed(struct km_str dp_address, struct km_str admin_address, struct km_str admin_socket)
{
	if (admin_socket.len)
		return true;
	/* Envoy binds its admin to admin_address (127.0.0.1 when unset) */
	if (!admin_address.len)
		admin_address = KM_STR("127.0.0.1");
	return !is_wildcard(admin_address) && !km_str_eq(admin_address, dp_address);
}

/* ---- requests ---- */

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct fetch *f = ud;
	if (km_buf_append(&f->body, p, size * n) != 0)
		return 0; /* over MAX_RESPONSE: the transfer fails */
	return size * n;
}

static void finish(struct fetch *f, long status, const char *err)
{
	struct cp_envoy_admin *ea = f->ea;
	if (f->prev)
		f->prev->next = f->next;
	else
		ea->fetches = f->next;
	if (f->next)
		f->next->prev = f->prev;
	/* the callback may start another request: this one is unlinked */
	char *msg = err ? km_strdup(err) : NULL;
	km_curlm_remove(ea->cm, f->easy);
	curl_easy_cleanup(f->easy);
	f->fn(f->ud, status, msg, &f->body);
	free(msg);
	km_buf_fini(&f->body);
	free(f);
}

static void on_done(void *ctx, CURL *easy, CURLcode res)
{
	struct fetch *f = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&f);
	if (res == CURLE_OK) {
		long status = 0;
		curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
		finish(f, status, NULL);
	} else {
		finish(f, 0, f->errbuf[0] ? f->errbuf : curl_easy_strerror(res));
	}
}

int cp_envoy_admin_get(struct cp_envoy_admin *ea, const char *host, uint32_t port, bool tls, const char *path_query,
		       cp_envoy_admin_fn fn, void *ud)
{
	if (tls) {
		int rc = ensure(ea, true, NULL);
		if (rc)
			return rc;
	}
	if (!ea->cm && !(ea->cm = km_curlm_new(ea->rt->loop, on_done, ea)))
		return -ENOMEM;
	struct fetch *f = km_calloc(1, sizeof(*f));
	f->ea = ea;
	f->fn = fn;
	f->ud = ud;
	f->body.max = MAX_RESPONSE;
	f->easy = curl_easy_init();
	if (!f->easy) {
		free(f);
		return -ENOMEM;
	}
	struct in6_addr a6;
	bool v6 = inet_pton(AF_INET6, host, &a6) == 1;
	char url[512];
	snprintf(url, sizeof(url), "%s://%s%s%s:%u/%s", tls ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "",
		 port, path_query);
	CURL *e = f->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, f);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	if (tls) {
		struct curl_blob ca = {ea->ca_pem, strlen(ea->ca_pem), CURL_BLOB_NOCOPY};
		struct curl_blob cert = {ea->client_cert_pem, strlen(ea->client_cert_pem), CURL_BLOB_NOCOPY};
		struct curl_blob key = {ea->client_key_pem, strlen(ea->client_key_pem), CURL_BLOB_NOCOPY};
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	if (km_curlm_add(ea->cm, e) != 0) {
		curl_easy_cleanup(e);
		free(f);
		return -ENOMEM;
	}
	f->next = ea->fetches;
	if (f->next)
		f->next->prev = f;
	ea->fetches = f;
	return 0;
}

/* ---- sanitizing a config dump ---- */

/* Member <camel> of <o>, or <snake>: Envoy's admin writes proto field
 * names, protojson writes JSON names. */
static const struct km_json *field(const struct km_json *o, const char *camel, const char *snake)
{
	const struct km_json *v = km_json_get(o, camel);
	return v ? v : km_json_get(o, snake);
}

static void tokens_of(const struct km_json *grpc_services, struct km_json *acc, struct km_arena *a)
{
	for (size_t i = 0; grpc_services && grpc_services->kind == KM_JSON_ARRAY && i < grpc_services->len; i++) {
		const struct km_json *md = field(grpc_services->items[i], "initialMetadata", "initial_metadata");
		for (size_t k = 0; md && md->kind == KM_JSON_ARRAY && k < md->len; k++)
			if (km_str_eqc(km_json_get_string(md->items[k], "key"), "authorization")) {
				struct km_str v = km_json_get_string(md->items[k], "value");
				if (v.len)
					km_json_array_push(a, acc, km_json_string(a, v));
			}
	}
}

int cp_envoy_admin_sanitize(struct km_str dump, struct km_buf *out)
{
	struct km_arena *a = km_arena_new(16384);
	struct km_json *root = NULL;
	if (km_json_parse(a, dump.ptr, dump.len, &root, NULL) || root->kind != KM_JSON_OBJECT) {
		km_arena_free(a);
		return -EINVAL;
	}
	struct km_json *tokens = km_json_array(a);
	const struct km_json *configs = km_json_get(root, "configs");
	for (size_t i = 0; configs && configs->kind == KM_JSON_ARRAY && i < configs->len; i++) {
		const struct km_json *c = configs->items[i];
		if (!km_str_eqc(km_json_get_string(c, "@type"), "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"))
			continue;
		const struct km_json *b = km_json_get(c, "bootstrap");
		const struct km_json *ads =
		    field(field(b, "dynamicResources", "dynamic_resources"), "adsConfig", "ads_config");
		tokens_of(field(ads, "grpcServices", "grpc_services"), tokens, a);
		tokens_of(field(field(b, "hdsConfig", "hds_config"), "grpcServices", "grpc_services"), tokens, a);
	}
	/* Walk the text (valid JSON: it parsed) literal by literal, so a token
	 * is only ever a whole string value, never a run of bytes that spans
	 * the end of one string and the start of the next; everything but the
	 * redacted values stays byte for byte as Envoy wrote it. */
	size_t i = 0;
	while (i < dump.len) {
		const char *q = tokens->len ? memchr(dump.ptr + i, '"', dump.len - i) : NULL;
		size_t at = q ? (size_t)(q - dump.ptr) : dump.len;
		km_buf_append(out, dump.ptr + i, at - i);
		i = at;
		if (i >= dump.len)
			break;
		size_t end = i + 1;
		bool escaped = false;
		while (end < dump.len && dump.ptr[end] != '"') {
			if (dump.ptr[end] == '\\') {
				escaped = true;
				end++;
			}
			end++;
		}
		end = end < dump.len ? end + 1 : dump.len; /* one past the closing quote */
		size_t next = end;
		while (next < dump.len && (dump.ptr[next] == ' ' || dump.ptr[next] == '\t' ||
					   dump.ptr[next] == '\r' || dump.ptr[next] == '\n'))
			next++;
		bool is_key = next < dump.len && dump.ptr[next] == ':';
		struct km_str lit = {dump.ptr + i, end - i};
		struct km_str val = {lit.ptr + 1, lit.len >= 2 ? lit.len - 2 : 0};
		struct km_json *decoded = NULL;
		if (!is_key && escaped && km_json_parse(a, lit.ptr, lit.len, &decoded, NULL) == 0 &&
		    decoded->kind == KM_JSON_STRING)
			val = decoded->s;
		bool secret = false;
		for (size_t t = 0; !is_key && !secret && t < tokens->len; t++)
			secret = km_str_eq(val, tokens->items[t]->s);
		if (secret)
			km_buf_puts(out, "\"[redacted]\"");
		else
			km_buf_append(out, lit.ptr, lit.len);
		i = end;
	}
	km_arena_free(a);
	return 0;
}
