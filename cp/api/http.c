/* SPDX-License-Identifier: Apache-2.0 */
/* libmicrohttpd driven from the km_loop (ev/mhd.h).
 * Each connection gets a request arena on its first callback and frees it in
 * the completion callback. */
#include "cp/api/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"
#include "ev/mhd.h"

struct cp_http {
	struct km_mhd w; /* the daemon, on the loop */
	const char *name;
	size_t max_body;
	cp_http_handler_fn fn;
	void *ctx;
	int port;
	cp_http_observe_fn observe;
	void *observe_ctx;
	bool require_client_cert;
	char *cert_pem, *key_pem, *priorities, *ca_pem; /* MHD keeps pointers to them */
};

struct conn_state {
	struct cp_http_req req; /* first: cp_http_resume() finds the state from it */
	struct km_buf body;
	struct cp_http *h;
	bool too_big;
	bool answered; /* the handler ran (a deferred response waits for resume) */
	bool ready;    /* a deferred response was resumed */
	struct timespec t0; /* the request's first callback */
};


static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct cp_http_req *req = cls;
	struct cp_http_param *q =
	    km_arena_realloc(req->a, req->query, req->nquery * sizeof(*q), (req->nquery + 1) * sizeof(*q));
	q[req->nquery].key = (struct km_str){km_arena_strdup(req->a, key), strlen(key)};
	const char *v = value ? value : "";
	q[req->nquery].value = (struct km_str){km_arena_strdup(req->a, v), strlen(v)};
	req->query = q;
	req->nquery++;
	return MHD_YES;
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static enum MHD_Result respond(struct MHD_Connection *c, struct cp_http_req *req)
{
	const struct conn_state *st = (const struct conn_state *)req;
	if (st->h->observe) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		st->h->observe(st->h->observe_ctx, req,
			       (double)(now.tv_sec - st->t0.tv_sec) + (double)(now.tv_nsec - st->t0.tv_nsec) / 1e9);
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    req->out.len, req->out.data ? req->out.data : (char *)"", MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (req->content_type)
		MHD_add_response_header(resp, "Content-Type", req->content_type);
	if (req->extra_header_name)
		MHD_add_response_header(resp, req->extra_header_name, req->extra_header_value);
	for (size_t i = 0; i < req->nextra; i++)
		MHD_add_response_header(resp, req->extra[i].key.ptr, req->extra[i].value.ptr);
	enum MHD_Result r = MHD_queue_response(c, (unsigned)(req->status ? req->status : 200), resp);
	MHD_destroy_response(resp);
	return r;
}

/* The TLS peer sent a certificate that verifies against the trust list
 * (MHD_OPTION_HTTPS_MEM_TRUST). */
static bool client_verified(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return false;
	gnutls_session_t s = (gnutls_session_t)ci->tls_session;
	unsigned int n = 0, status = 0;
	if (!gnutls_certificate_get_peers(s, &n) || n == 0)
		return false;
	return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	struct cp_http *h = cls;
	struct conn_state *st = *con_cls;
	if (!st) {
		st = km_calloc(1, sizeof(*st));
		st->req.a = km_arena_new(8192);
		st->body.max = h->max_body;
		st->h = h;
		clock_gettime(CLOCK_MONOTONIC, &st->t0);
		*con_cls = st;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!st->too_big && km_buf_append(&st->body, upload_data, *upload_size) != 0)
			st->too_big = true;
		*upload_size = 0;
		return MHD_YES;
	}
	struct cp_http_req *req = &st->req;
	if (st->answered) /* resumed, or called again while it waits */
		return st->ready ? respond(c, req) : MHD_YES;
	st->answered = true;
	req->method = method;
	req->conn = c;
	req->path = (struct km_str){km_arena_strdup(req->a, url), strlen(url)};
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_query, req);
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	req->remote_loopback = ci && is_loopback(ci->client_addr);
	req->body = (struct km_str){km_buf_cstr(&st->body), st->body.len};
	if (h->require_client_cert && !client_verified(c)) {
		req->status = 401;
		req->content_type = "application/json";
		km_buf_puts(&req->out, "{\n \"type\": \"/std-errors\",\n \"status\": 401,\n \"title\": \"Unauthorized\",\n "
				       "\"detail\": \"a client certificate signed by apiServer.https.tlsCaFile is required\"\n}\n");
	} else if (st->too_big) {
		req->status = 413;
		req->content_type = "application/json";
		km_buf_printf(&req->out,
			      "{\n \"type\": \"/std-errors\",\n \"status\": 413,\n \"title\": \"Request "
			      "Entity Too Large\",\n \"detail\": \"request body exceeds %zu bytes\",\n "
			      "\"details\": \"request body exceeds %zu bytes\"\n}\n",
			      h->max_body, h->max_body);
	} else {
		h->fn(h->ctx, req);
		if (req->deferred) {
			MHD_suspend_connection(c);
			return MHD_YES;
		}
	}
	return respond(c, req);
}

void cp_http_defer(struct cp_http_req *req)
{
	req->deferred = true;
}

void cp_http_resume(struct cp_http_req *req)
{
	struct conn_state *st = (struct conn_state *)req;
	st->ready = true;
	MHD_resume_connection(req->conn);
	km_mhd_run(&st->h->w);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn_state *st = *con_cls;
	if (!st)
		return;
	km_buf_fini(&st->req.out);
	km_buf_fini(&st->body);
	km_arena_free(st->req.a);
	free(st);
	*con_cls = NULL;
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decoding in place that keeps "%00" literal: a NUL would silently
 * cut paths and values short. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		int h, l;
		if (*r == '%' && (h = hexv(r[1])) >= 0 && (l = hexv(r[2])) >= 0 && (h | l)) {
			*w++ = (char)(h * 16 + l);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
	return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = 0;
	km_warn("http", "%s", msg);
}

struct cp_http *cp_http_start(struct km_loop *loop, const char *name, const char *iface, int port,
			      size_t max_body, cp_http_handler_fn fn, void *ctx)
{
	return cp_http_start_tls(loop, name, iface, port, max_body, fn, ctx, NULL);
}

static void free_server(struct cp_http *h)
{
	free(h->cert_pem);
	free(h->key_pem);
	free(h->priorities);
	free(h->ca_pem);
	free(h);
}

struct cp_http *cp_http_start_tls(struct km_loop *loop, const char *name, const char *iface, int port,
				  size_t max_body, cp_http_handler_fn fn, void *ctx, const struct cp_http_tls *tls)
{
	struct cp_http *h = km_calloc(1, sizeof(*h));
	h->name = name;
	h->max_body = max_body;
	h->fn = fn;
	h->ctx = ctx;
	struct sockaddr_in6 sa6 = {0};
	struct sockaddr_in sa4 = {0};
	const struct sockaddr *sa;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	if (iface && strchr(iface, ':')) {
		sa6.sin6_family = AF_INET6;
		sa6.sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, iface, &sa6.sin6_addr) != 1) {
			km_error("http", "invalid interface address server=%s interface=%s", name, iface);
			free_server(h);
			return NULL;
		}
		sa = (const struct sockaddr *)&sa6;
		flags |= MHD_USE_IPv6;
		if (IN6_IS_ADDR_UNSPECIFIED(&sa6.sin6_addr))
			flags |= MHD_USE_DUAL_STACK;
	} else {
		sa4.sin_family = AF_INET;
		sa4.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, iface && *iface ? iface : "0.0.0.0", &sa4.sin_addr) != 1) {
			km_error("http", "invalid interface address server=%s interface=%s", name, iface);
			free_server(h);
			return NULL;
		}
		sa = (const struct sockaddr *)&sa4;
	}
	struct MHD_OptionItem topts[5];
	size_t nt = 0;
	if (tls) {
		flags |= MHD_USE_TLS;
		h->cert_pem = km_strdup(tls->cert_pem);
		h->key_pem = km_strdup(tls->key_pem);
		topts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert_pem};
		topts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->key_pem};
		if (tls->priorities) {
			h->priorities = km_strdup(tls->priorities);
			topts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, h->priorities};
		}
		if (tls->client_ca_pem) {
			h->ca_pem = km_strdup(tls->client_ca_pem);
			topts[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, h->ca_pem};
		}
		h->require_client_cert = tls->require_client_cert;
	}
	topts[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_UNESCAPE_CALLBACK,
				unescape, NULL, MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
				h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
				MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_ARRAY, topts, MHD_OPTION_END);
	if (!d) {
		km_error("http", "cannot listen server=%s address=%s:%d", name, iface ? iface : "", port);
		free_server(h);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : port;
	if (km_mhd_attach(&h->w, loop, d) != 0) {
		km_error("http", "cannot watch daemon server=%s", name);
		MHD_stop_daemon(d);
		free_server(h);
		return NULL;
	}
	km_info("http", "listening server=%s address=%s:%d", name, iface ? iface : "0.0.0.0", h->port);
	return h;
}

void cp_http_observe(struct cp_http *h, cp_http_observe_fn fn, void *ctx)
{
	h->observe = fn;
	h->observe_ctx = ctx;
}

int cp_http_port(const struct cp_http *h)
{
	return h->port;
}

void cp_http_stop(struct cp_http *h)
{
	if (!h)
		return;
	km_mhd_stop(&h->w);
	free_server(h);
}

int cp_http_add_connection(struct cp_http *h, int fd)
{
	struct sockaddr_in sa = {0};
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (MHD_add_connection(h->w.d, fd, (const struct sockaddr *)&sa, sizeof(sa)) != MHD_YES)
		return -EIO;
	km_mhd_run(&h->w);
	return 0;
}

void cp_http_run(struct cp_http *h)
{
	km_mhd_run(&h->w);
}

const char *cp_http_header(const struct cp_http_req *req, const char *name)
{
	if (req->conn)
		return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
	size_t n = strlen(name);
	for (size_t i = 0; i < req->nheaders; i++)
		if (req->headers[i].key.len == n && strncasecmp(req->headers[i].key.ptr, name, n) == 0)
			return req->headers[i].value.ptr;
	return NULL;
}

const struct km_str *cp_http_query(const struct cp_http_req *req, const char *key)
{
	for (size_t i = 0; i < req->nquery; i++)
		if (km_str_eqc(req->query[i].key, key))
			return &req->query[i].value;
	return NULL;
}

void cp_http_add_header(struct cp_http_req *req, const char *name, const char *value)
{
	if (req->nextra < sizeof(req->extra) / sizeof(req->extra[0]))
		req->extra[req->nextra++] = (struct cp_http_param){km_str_c(name), km_str_c(value)};
}
