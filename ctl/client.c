/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP client of kumactl over libcurl: base URL, headers and TLS settings
 * come from the current control plane, the timeout from --api-timeout.
 * Response bodies are capped and copied into the invocation arena. Error
 * texts imitate Go's net/http ones so users see what upstream shows. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "ctl/ctl.h"

#define CTL_MAX_BODY (256u << 20)

/* Resolves the current control plane; on failure puts upstream's text in <why>. */
static const struct ctl_cp *resolve_cp(struct ctl_ctx *c, struct km_buf *why)
{
	struct ctl_config *cfg = &c->cfg;
	if (!cfg->current || !*cfg->current) {
		km_buf_puts(
			why,
			"active Control Plane is not set. Use `kumactl config control-planes add` to add a Control Plane and make it active");
		return NULL;
	}
	struct ctl_context *x = ctl_ctlconfig_context(cfg, cfg->current);
	const char *cpname = x ? x->control_plane : NULL;
	const char *override = ctl_args_str(c, "context");
	if (x && override && *override)
		cpname = override;
	struct ctl_cp *cp = cpname ? ctl_ctlconfig_cp(cfg, cpname) : NULL;
	if (!cp) {
		km_buf_puts(
			why,
			"apparently, configuration is broken. Use `kumactl config control-planes add` to add a Control Plane and make it active");
		return NULL;
	}
	if (cp->auth_type && *cp->auth_type && strcmp(cp->auth_type, "tokens") != 0) {
		km_buf_printf(why, "authentication plugin of type \"%s\" not found", cp->auth_type);
		return NULL;
	}
	return cp;
}

const struct ctl_cp *ctl_client_cp(struct ctl_ctx *c)
{
	struct km_buf why = KM_BUF_INIT;
	const struct ctl_cp *cp = resolve_cp(c, &why);
	if (!cp)
		ctl_args_fail(c, "%s", km_buf_cstr(&why));
	km_buf_fini(&why);
	return cp;
}

const struct ctl_cp *ctl_client_cp_quiet(struct ctl_ctx *c, struct km_buf *why)
{
	return resolve_cp(c, why);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct km_buf *b = ud;
	if (km_buf_append(b, p, size * n) < 0)
		return 0;
	return size * n;
}

const char *ctl_client_escape(struct km_arena *a, const char *s)
{
	struct km_buf b = KM_BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			km_buf_putc(&b, (char)*p);
		else
			km_buf_printf(&b, "%%%02X", *p);
	}
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

/* "Get", "Put": Go prints the method title-cased in url.Error. */
static const char *go_method(const char *m)
{
	if (!strcmp(m, "GET"))
		return "Get";
	if (!strcmp(m, "PUT"))
		return "Put";
	if (!strcmp(m, "POST"))
		return "Post";
	if (!strcmp(m, "DELETE"))
		return "Delete";
	return m;
}

/* host:port of <url> for the "dial tcp" message. */
static void host_port(const char *url, struct km_buf *out)
{
	const char *p = strstr(url, "://");
	bool https = strncmp(url, "https", 5) == 0;
	p = p ? p + 3 : url;
	size_t n = strcspn(p, "/?#");
	const char *at = memchr(p, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	km_buf_append(out, p, n);
	bool has_port = false;
	if (n && p[0] == '[')
		has_port = memchr(p, ']', n) && p[n - 1] != ']';
	else
		has_port = memchr(p, ':', n) != NULL;
	if (!has_port)
		km_buf_puts(out, https ? ":443" : ":80");
}

int ctl_client_do(struct ctl_ctx *c, const struct ctl_cp *cp, const char *method, const char *path,
		  const char *body, struct ctl_resp *resp, struct km_buf *err)
{
	static bool inited;
	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = true;
	}
	const char *base = cp->url ? cp->url : "";
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	const char *url = km_arena_printf(c->a, "%.*s%s", (int)bl, base, path);
	CURL *h = curl_easy_init();
	if (!h) {
		km_buf_puts(err, "could not initialise libcurl");
		return -ENOMEM;
	}
	struct km_buf data = KM_BUF_INIT;
	data.max = CTL_MAX_BODY;
	struct curl_slist *hdrs = NULL;
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	char line[8192];
	snprintf(line, sizeof(line), "User-Agent: kumactl/%s (linux; C; %s/unknown)", KM_VERSION,
		 CTL_PRODUCT);
	hdrs = curl_slist_append(hdrs, line);
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	for (size_t i = 0; i < cp->n_hdr; i++) {
		snprintf(line, sizeof(line), "%s: %s", cp->hdr_keys[i], cp->hdr_vals[i]);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (cp->auth_type && strcmp(cp->auth_type, "tokens") == 0) {
		const char *tok = "";
		for (size_t i = 0; i < cp->n_auth; i++)
			if (strcmp(cp->auth_keys[i], "token") == 0)
				tok = cp->auth_vals[i];
		snprintf(line, sizeof(line), "Authorization: Bearer %s", tok);
		hdrs = curl_slist_append(hdrs, line);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "GET"))
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &data);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
	if (c->api_timeout_ns > 0) {
		long ms = (long)(c->api_timeout_ns / 1000000);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
	}
	if (cp->ca_cert_file && *cp->ca_cert_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, cp->ca_cert_file);
	if (cp->client_cert_file && *cp->client_cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, cp->client_cert_file);
	if (cp->client_key_file && *cp->client_key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, cp->client_key_file);
	if (cp->skip_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	CURLcode rc = curl_easy_perform(h);
	int ret = 0;
	if (rc != CURLE_OK) {
		km_buf_printf(err, "%s \"%s\": ", go_method(method), url);
		if (rc == CURLE_COULDNT_CONNECT) {
			km_buf_puts(err, "dial tcp ");
			host_port(url, err);
			km_buf_puts(err, ": connect: connection refused");
		} else if (rc == CURLE_OPERATION_TIMEDOUT) {
			km_buf_puts(
				err,
				"context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
		} else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
			km_buf_puts(err, "dial tcp: lookup ");
			host_port(url, err);
			km_buf_puts(err, ": no such host");
		} else {
			km_buf_puts(err, curl_easy_strerror(rc));
		}
		ret = -EIO;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
		resp->body.ptr = km_arena_strndup(c->a, km_buf_cstr(&data), data.len);
		resp->body.len = data.len;
		km_debug("kumactl", "request method=%s url=%s status=%ld", method, url,
			 resp->status);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	km_buf_fini(&data);
	return ret;
}

static const struct km_json *parse_api_error(struct km_arena *a, struct km_str body)
{
	struct km_json *v = NULL;
	if (body.len == 0 || km_json_parse(a, body.ptr, body.len, &v, NULL) < 0)
		return NULL;
	if (!v || v->kind != KM_JSON_OBJECT || km_json_get_string(v, "title").len == 0)
		return NULL;
	return v;
}

const char *ctl_client_api_error(struct km_arena *a, struct km_str body)
{
	const struct km_json *e = parse_api_error(a, body);
	if (!e)
		return NULL;
	struct km_buf b = KM_BUF_INIT;
	struct km_str detail = km_json_get_string(e, "detail");
	if (detail.len == 0)
		detail = km_json_get_string(e, "details");
	km_buf_printf(&b, "%.*s (%.*s)", KM_STR_FMT(km_json_get_string(e, "title")),
		      KM_STR_FMT(detail));
	const struct km_json *params = km_json_get(e, "invalid_parameters");
	const struct km_json *causes = km_json_get(e, "causes");
	bool use_causes = causes && causes->kind == KM_JSON_ARRAY &&
			  (!params || params->kind == KM_JSON_NULL);
	const struct km_json *list = use_causes ? causes : params;
	const char *msgkey = use_causes ? "message" : "reason";
	if (list && list->kind == KM_JSON_ARRAY)
		for (size_t i = 0; i < list->len; i++)
			km_buf_printf(&b, "\n* %.*s: %.*s",
				      KM_STR_FMT(km_json_get_string(list->items[i], "field")),
				      KM_STR_FMT(km_json_get_string(list->items[i], msgkey)));
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

const char *ctl_client_api_error_short(struct km_arena *a, struct km_str body)
{
	const struct km_json *e = parse_api_error(a, body);
	if (!e)
		return NULL;
	struct km_buf b = KM_BUF_INIT;
	km_buf_printf(&b, "%.*s (%.*s)", KM_STR_FMT(km_json_get_string(e, "title")),
		      KM_STR_FMT(km_json_get_string(e, "detail")));
	const struct km_json *params = km_json_get(e, "invalid_parameters");
	if (params && params->kind == KM_JSON_ARRAY)
		for (size_t i = 0; i < params->len; i++)
			km_buf_printf(&b, ";%.*s=%.*s ",
				      KM_STR_FMT(km_json_get_string(params->items[i], "field")),
				      KM_STR_FMT(km_json_get_string(params->items[i], "reason")));
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

const struct km_json *ctl_client_check_version(struct ctl_ctx *c)
{
	struct ctl_resp r = {0};
	struct km_buf err = KM_BUF_INIT;
	const struct ctl_cp *cp = resolve_cp(c, &err);
	if (!cp) {
		fprintf(stderr,
			"WARNING: Failed to retrieve server version, can't check compatibility: %s\n",
			km_buf_cstr(&err));
		km_buf_fini(&err);
		return NULL;
	}
	if (ctl_client_do(c, cp, "GET", "/", NULL, &r, &err) < 0) {
		fprintf(stderr,
			"WARNING: Failed to retrieve server version, can't check compatibility: Unable to retrieve server version: %s\n",
			km_buf_cstr(&err));
		km_buf_fini(&err);
		return NULL;
	}
	km_buf_fini(&err);
	struct km_json *v = NULL;
	if (r.status != 200) {
		fprintf(stderr,
			"WARNING: Failed to retrieve server version, can't check compatibility: Unable to retrieve server version: (%ld): %.*s\n",
			r.status, KM_STR_FMT(r.body));
		return NULL;
	}
	if (km_json_parse(c->a, r.body.ptr, r.body.len, &v, NULL) < 0 || v->kind != KM_JSON_OBJECT)
		return NULL;
	struct km_str ver = km_json_get_string(v, "version");
	struct km_str product = km_json_get_string(v, "product");
	if (km_str_find(ver, KM_STR("preview")) >= 0)
		return v;
	if (!km_str_eqc(ver, KM_VERSION) || !km_str_eqc(product, CTL_PRODUCT))
		fprintf(stderr,
			"WARNING: You are using kumactl version %s for %s, but the server returned version: %.*s for %.*s\n",
			KM_VERSION, CTL_PRODUCT, KM_STR_FMT(product), KM_STR_FMT(ver));
	return v;
}
