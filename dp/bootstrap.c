/* SPDX-License-Identifier: Apache-2.0 */
/* The bootstrap client: builds upstream's BootstrapRequest, POSTs it to
 * <cp-address>/bootstrap (HTTPS with HTTP/2 via ALPN, verified against the CP
 * CA), classifies the answer with upstream's retry rules and decodes the
 * {"bootstrap":"<base64 YAML>","kumaSidecarConfiguration":{...}} response.
 * The retry schedule itself is driven by the run loop. Results live in the
 * caller's arena. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "codec/yaml.h"
#include "dp/dp.h"

static struct km_json *str(struct km_arena *a, const char *s)
{
	return km_json_cstring(a, s ? s : "");
}

static bool set(const char *s)
{
	return s && *s;
}

/* cgroup memory limit, as upstream's DetectMaxMemory (0 = unlimited/unknown). */
static uint64_t detect_max_memory(void)
{
	static const char *const files[] = {"/sys/fs/cgroup/memory.max",
					    "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
	for (size_t i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		if (!f)
			continue;
		char line[64] = {0};
		char *ok = fgets(line, sizeof(line), f);
		fclose(f);
		if (!ok)
			continue;
		char *end;
		unsigned long long v = strtoull(line, &end, 10);
		if (end == line)
			return 0; /* "max" */
		/* cgroup v1 reports "unlimited" as a page-rounded INT64_MAX */
		if (v >= (UINT64_C(1) << 62))
			return 0;
		return v;
	}
	return 0;
}

int dp_bootstrap_request(struct km_buf *out, struct km_arena *a, const struct dp_config *c,
			 const struct dp_bootstrap_in *in, const struct dp_envoy_version *ev,
			 const char *token)
{
	struct km_json *r = km_json_object(a);
	km_json_set(a, r, "mesh", str(a, c->mesh));
	km_json_set(a, r, "name", str(a, c->name));
	km_json_set(a, r, "proxyType", str(a, c->proxy_type));
	if (set(token))
		km_json_set(a, r, "dataplaneToken", str(a, token));
	if (set(c->token_path))
		km_json_set(a, r, "dataplaneTokenPath", str(a, c->token_path));
	if (set(in->dataplane_json))
		km_json_set(a, r, "dataplaneResource", str(a, in->dataplane_json));

	struct km_json *ver = km_json_object(a), *kdp = km_json_object(a), *env = km_json_object(a);
	km_json_set(a, kdp, "version", str(a, DP_VERSION));
	km_json_set(a, kdp, "gitTag", str(a, "unknown"));
	km_json_set(a, kdp, "gitCommit", str(a, "unknown"));
	km_json_set(a, kdp, "buildDate", str(a, "unknown"));
	km_json_set(a, env, "version", str(a, ev->version));
	km_json_set(a, env, "build", str(a, ev->build));
	km_json_set(a, env, "kumaDpCompatible", km_json_bool(a, ev->compatible));
	km_json_set(a, ver, "kumaDp", kdp);
	km_json_set(a, ver, "envoy", env);
	km_json_set(a, r, "version", ver);

	km_json_set(a, r, "caCert", str(a, c->ca_cert));
	struct km_json *md = km_json_object(a);
	if (set(in->host_ip))
		km_json_set(a, md, "HOST_IP", str(a, in->host_ip));
	km_json_set(a, r, "dynamicMetadata", md);
	if (c->dns_port)
		km_json_set(a, r, "dnsPort", km_json_int(a, c->dns_port));
	if (c->readiness_port)
		km_json_set(a, r, "readinessPort", km_json_int(a, c->readiness_port));
	/* the wire key says "disabled" but carries "enabled" (upstream #13885) */
	if (c->app_probe_port > 0)
		km_json_set(a, r, "appProbeProxyDisabled", km_json_bool(a, true));
	km_json_set(a, r, "operatingSystem", str(a, in->os ? in->os : "linux"));
	struct km_json *feat = km_json_array(a);
	for (size_t i = 0; i < in->nfeatures; i++)
		km_json_array_push(a, feat, str(a, in->features[i]));
	km_json_set(a, r, "features", feat);
	struct km_json *res = km_json_object(a);
	uint64_t mem = c->max_memory_bytes ? c->max_memory_bytes : detect_max_memory();
	km_json_set(a, res, "maxHeapSizeBytes", km_json_int(a, (int64_t)mem));
	km_json_set(a, r, "resources", res);
	km_json_set(a, r, "workdir", str(a, c->work_dir));
	struct km_json *mr = km_json_object(a);
	km_json_set(a, mr, "certPath", str(a, c->metrics_cert_path));
	km_json_set(a, mr, "keyPath", str(a, c->metrics_key_path));
	km_json_set(a, r, "metricsResources", mr);
	km_json_set(a, r, "systemCaPath", str(a, c->system_ca_path));
	km_json_set(a, r, "ipv6Enabled", km_json_bool(a, c->ipv6_enabled));
	struct km_json *sp = km_json_object(a);
	km_json_set(a, sp, "socketPath", str(a, c->spire_socket_path));
	km_json_set(a, r, "spireResources", sp);
	return km_json_write(out, r, 1, 0);
}

#define DP_NOT_FOUND_MSG                                                                           \
	"Dataplane entity not found. If you are running on Universal please create a Dataplane "  \
	"entity on kuma-cp before starting kuma-dp or pass it to kuma-dp run "                    \
	"--dataplane-file=/file. If you are running on Kubernetes, please check the kuma-cp logs " \
	"to determine why the Dataplane entity could not be created by the automatic sidecar "    \
	"injection."

enum dp_bootstrap_verdict dp_bootstrap_classify(long status, struct km_str body,
						struct km_buf *err)
{
	if (status == 200)
		return DP_BOOTSTRAP_OK;
	if (status == 404 && body.len == 0) {
		km_buf_puts(err, DP_NOT_FOUND_MSG);
		return DP_BOOTSTRAP_RETRY;
	}
	if (status == 404 && km_str_eqc(body, "404: Page Not Found")) {
		km_buf_puts(err, "There is no /bootstrap endpoint for provided CP address. Double "
				 "check if the address passed to the CP has a DP Server port (5678 by "
				 "default), not HTTP API (5681 by default)");
		return DP_BOOTSTRAP_RETRY;
	}
	if (status / 100 == 4) {
		km_buf_printf(err, "Invalid request: %.*s", KM_STR_FMT(body));
		return DP_BOOTSTRAP_FATAL;
	}
	km_buf_printf(err, "unexpected status code: %ld", status);
	return DP_BOOTSTRAP_RETRY;
}

static const struct km_json *path_get(const struct km_json *v, const char *const *keys)
{
	for (; v && *keys; keys++) {
		if (v->kind != KM_JSON_OBJECT)
			return NULL;
		/* protobuf YAML may use camelCase or snake_case names */
		const char *alt = strchr(*keys, '|');
		const struct km_json *n;
		if (alt) {
			char first[64];
			snprintf(first, sizeof(first), "%.*s", (int)(alt - *keys), *keys);
			n = km_json_get(v, first);
			if (!n)
				n = km_json_get(v, alt + 1);
		} else {
			n = km_json_get(v, *keys);
		}
		v = n;
	}
	return v;
}

int dp_bootstrap_decode(struct km_arena *a, struct km_str body, struct dp_bootstrap_out *out,
			struct km_buf *err)
{
	memset(out, 0, sizeof(*out));
	out->admin_socket = out->admin_address = out->networking_address = "";
	struct km_json *doc;
	if (km_json_parse(a, body.ptr, body.len, &doc, err) != 0)
		return -EINVAL;
	if (doc->kind != KM_JSON_OBJECT) {
		km_buf_puts(err, "json: cannot unmarshal non-object into Go value of type "
				 "types.BootstrapResponse");
		return -EINVAL;
	}
	const struct km_json *b = km_json_get(doc, "bootstrap");
	if (!b || b->kind != KM_JSON_STRING) {
		km_buf_puts(err, "bootstrap response has no \"bootstrap\" field");
		return -EINVAL;
	}
	struct km_buf y = KM_BUF_INIT;
	if (dp_util_base64_decode(b->s, &y) != 0) {
		km_buf_fini(&y);
		km_buf_puts(err, "illegal base64 data in the \"bootstrap\" field");
		return -EINVAL;
	}
	out->yaml = (struct km_str){km_arena_strndup(a, km_buf_cstr(&y), y.len), y.len};
	km_buf_fini(&y);

	struct km_json **docs = NULL;
	size_t n = 0;
	struct km_buf why = KM_BUF_INIT;
	if (km_yaml_parse(a, out->yaml.ptr, out->yaml.len, &docs, &n, &why) != 0) {
		km_buf_printf(err, "invalid Envoy bootstrap YAML: %s", km_buf_cstr(&why));
		km_buf_fini(&why);
		return -EINVAL;
	}
	km_buf_fini(&why);
	if (n) {
		static const char *const pipe_path[] = {"admin", "address", "pipe", "path", NULL};
		static const char *const sock_addr[] = {"admin", "address",
							"socketAddress|socket_address", "address", NULL};
		static const char *const sock_port[] = {"admin", "address",
							"socketAddress|socket_address",
							"portValue|port_value", NULL};
		const struct km_json *v = path_get(docs[0], pipe_path);
		if (v && v->kind == KM_JSON_STRING)
			out->admin_socket = km_arena_strndup(a, v->s.ptr, v->s.len);
		v = path_get(docs[0], sock_addr);
		if (v && v->kind == KM_JSON_STRING)
			out->admin_address = km_arena_strndup(a, v->s.ptr, v->s.len);
		v = path_get(docs[0], sock_port);
		if (v && v->kind == KM_JSON_NUMBER && v->is_int)
			out->admin_port = (int)v->i;
	}
	static const char *const net_addr[] = {"kumaSidecarConfiguration", "networking", "address",
					       NULL};
	const struct km_json *v = path_get(doc, net_addr);
	if (v && v->kind == KM_JSON_STRING)
		out->networking_address = km_arena_strndup(a, v->s.ptr, v->s.len);
	return 0;
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct km_buf *b = ud;
	if (km_buf_append(b, ptr, size * nmemb) != 0)
		return 0; /* over the cap: abort the transfer */
	return size * nmemb;
}

enum dp_bootstrap_verdict dp_bootstrap_fetch_once(struct km_arena *a, const struct dp_config *c,
						  const char *body, struct dp_bootstrap_out *out,
						  struct km_buf *err)
{
	bool https = strncmp(c->cp_url, "https://", 8) == 0;
	if (!https && strncmp(c->cp_url, "http://", 7) != 0) {
		const char *colon = strstr(c->cp_url, "://");
		km_buf_printf(err, "unsupported URL scheme \"%.*s\", must be http or https",
			      colon ? (int)(colon - c->cp_url) : 0, c->cp_url);
		return DP_BOOTSTRAP_FATAL;
	}
	if (https && !c->skip_verify && set(c->ca_cert) &&
	    !strstr(c->ca_cert, "-----BEGIN CERTIFICATE-----")) {
		km_buf_puts(err, "could not add certificate");
		return DP_BOOTSTRAP_FATAL;
	}
	CURLU *u = curl_url();
	char *url = NULL;
	if (curl_url_set(u, CURLUPART_URL, c->cp_url, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PATH, "/bootstrap", 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		curl_url_cleanup(u);
		km_buf_printf(err, "parse \"%s\": invalid URL", c->cp_url);
		return DP_BOOTSTRAP_FATAL;
	}
	curl_url_cleanup(u);

	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	hdr = curl_slist_append(hdr, "Accept: application/json");
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	struct km_buf resp = KM_BUF_INIT;
	resp.max = 32u << 20;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	if (https) {
		if (c->skip_verify) {
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		} else if (set(c->ca_cert)) {
			struct curl_blob blob = {(void *)c->ca_cert, strlen(c->ca_cert),
						 CURL_BLOB_COPY};
			curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
		}
	}
	CURLcode cc = curl_easy_perform(h);
	enum dp_bootstrap_verdict verdict;
	if (cc != CURLE_OK) {
		km_buf_printf(err, "request to bootstrap server failed: Post \"%s\": %s", url,
			      curl_easy_strerror(cc));
		verdict = DP_BOOTSTRAP_RETRY;
	} else {
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		struct km_str rb = {km_buf_cstr(&resp), resp.len};
		verdict = dp_bootstrap_classify(status, rb, err);
		if (verdict == DP_BOOTSTRAP_OK && dp_bootstrap_decode(a, rb, out, err) != 0)
			verdict = DP_BOOTSTRAP_FATAL;
	}
	km_buf_fini(&resp);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	curl_free(url);
	return verdict;
}
