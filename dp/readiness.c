/* SPDX-License-Identifier: Apache-2.0 */
/* The readiness reporter: HTTP on <addr>:<readinessPort> serving only /ready.
 * While running it relays Envoy admin /ready over the admin Unix socket (so a
 * probe passes only once Envoy has its configuration); after SIGTERM it
 * answers 503 TERMINATING. libmicrohttpd runs in external epoll mode on the
 * kuma-dp loop; responses are built per request and freed by MHD. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/mem.h"
#include "ev/mhd.h"
#include "dp/dp.h"

struct dp_readiness {
	struct km_mhd w; /* the daemon, on the loop */
	int port;
	bool terminating;
	char *admin_socket;
};

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *ctype,
				 const char *body, size_t len, bool state)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	if (state) {
		MHD_add_response_header(resp, "Cache-Control", "no-cache, max-age=0");
		MHD_add_response_header(resp, "X-Powered-By", "kuma-dp");
	} else if (status >= 400) {
		MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	}
	enum MHD_Result rc = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

struct admin_reply {
	struct km_buf body;
	char ctype[128];
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct admin_reply *ar = ud;
	return km_buf_append(&ar->body, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct admin_reply *ar = ud;
	size_t n = size * nmemb;
	if (n > 13 && strncasecmp(ptr, "content-type:", 13) == 0) {
		const char *v = ptr + 13;
		size_t vn = n - 13;
		while (vn && (*v == ' ' || *v == '\t'))
			v++, vn--;
		while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
			vn--;
		snprintf(ar->ctype, sizeof(ar->ctype), "%.*s", (int)vn, v);
	}
	return n;
}

/* Relays GET /ready to Envoy admin; bounded by short timeouts because the
 * loop waits for it (admin is a local Unix socket and answers at once). */
static enum MHD_Result proxy_admin(struct dp_readiness *r, struct MHD_Connection *c)
{
	struct admin_reply ar = {KM_BUF_INIT, ""};
	ar.body.max = 64 * 1024;
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, "http://localhost/ready");
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, r->admin_socket);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &ar);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &ar);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	enum MHD_Result rc;
	if (cc != CURLE_OK || status < 100) {
		km_info("readiness", "envoy admin not ready err=\"%s\"", curl_easy_strerror(cc));
		static const char msg[] = "envoy not ready\n";
		rc = send_text(c, 503, "text/plain; charset=utf-8", msg, sizeof(msg) - 1, false);
	} else {
		rc = send_text(c, (unsigned)status, ar.ctype[0] ? ar.ctype : "text/plain",
			       km_buf_cstr(&ar.body), ar.body.len, false);
	}
	km_buf_fini(&ar.body);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	struct dp_readiness *r = cls;
	if (!*con_cls) {
		*con_cls = r; /* first call: headers only */
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* bodies are ignored */
		return MHD_YES;
	}
	if (strcmp(url, "/ready") != 0) {
		static const char nf[] = "404 page not found\n";
		return send_text(c, 404, "text/plain; charset=utf-8", nf, sizeof(nf) - 1, false);
	}
	if (r->terminating)
		return send_text(c, 503, "text/plain", "TERMINATING", 11, true);
	if (r->admin_socket && *r->admin_socket)
		return proxy_admin(r, c);
	return send_text(c, 200, "text/plain", "READY", 5, true);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = 0;
	km_warn("readiness", "%s", msg);
}

struct dp_readiness *dp_readiness_start(struct km_loop *loop, const char *addr, int port,
					const char *admin_socket)
{
	struct dp_readiness *r = km_calloc(1, sizeof(*r));
	r->admin_socket = km_strdup(admin_socket ? admin_socket : "");
	struct sockaddr_in6 sa6 = {0};
	struct sockaddr_in sa4 = {0};
	const struct sockaddr *sa;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (strchr(addr, ':')) {
		sa6.sin6_family = AF_INET6;
		sa6.sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, addr, &sa6.sin6_addr) != 1)
			goto bad_addr;
		sa = (const struct sockaddr *)&sa6;
		flags |= MHD_USE_IPv6;
		if (IN6_IS_ADDR_UNSPECIFIED(&sa6.sin6_addr))
			flags |= MHD_USE_DUAL_STACK;
	} else {
		sa4.sin_family = AF_INET;
		sa4.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, addr, &sa4.sin_addr) != 1)
			goto bad_addr;
		sa = (const struct sockaddr *)&sa4;
	}
	struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, r,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, sa,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_END);
	if (!d) {
		km_error("readiness", "cannot listen address=%s:%d", addr, port);
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	r->port = di ? di->port : port;
	if (km_mhd_attach(&r->w, loop, d) != 0) {
		km_error("readiness", "cannot watch the readiness server");
		MHD_stop_daemon(d);
		goto fail;
	}
	km_info("readiness", "starting readiness reporter addr=%s:%d", addr, r->port);
	return r;
bad_addr:
	km_error("readiness", "invalid listen address addr=%s", addr);
fail:
	free(r->admin_socket);
	free(r);
	return NULL;
}

int dp_readiness_port(const struct dp_readiness *r)
{
	return r->port;
}

void dp_readiness_terminating(struct dp_readiness *r)
{
	if (r)
		r->terminating = true;
}

void dp_readiness_stop(struct dp_readiness *r)
{
	if (!r)
		return;
	km_info("readiness", "stopping readiness reporter");
	km_mhd_stop(&r->w);
	free(r->admin_socket);
	free(r);
}
