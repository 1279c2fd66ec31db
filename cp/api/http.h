/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 server glue: libmicrohttpd in external-select mode driven by our
 * epoll loop. A request is collected whole (body capped) and handed to the
 * handler, which fills a response; both live in a per-request arena that is
 * freed when the response has been queued. */
#ifndef CP_API_HTTP_H
#define CP_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/buf.h"
#include "ev/loop.h"

struct cp_http_param {
	struct km_str key, value;
};

struct cp_http_req {
	struct km_arena *a;      /* request lifetime */
	const char *method;      /* "GET", "PUT", ... */
	struct km_str path;      /* percent-decoded, no query */
	struct cp_http_param *query;
	size_t nquery;
	struct km_str body;
	bool remote_loopback;    /* peer address is 127.0.0.0/8 or ::1 */
	void *conn;              /* libmicrohttpd connection, or NULL */
	/* headers, when the transport is not libmicrohttpd (the dp-server) */
	struct cp_http_param *headers;
	size_t nheaders;
	/* response */
	int status;
	const char *content_type;
	struct km_buf out;       /* freed by the server */
	const char *extra_header_name, *extra_header_value;
	struct cp_http_param extra[6]; /* more response headers (cp_http_add_header) */
	size_t nextra;
	bool deferred; /* private: cp_http_defer() */
	bool unrouted; /* set by a handler: no route serves the path (request metrics leave it out) */
};

typedef void (*cp_http_handler_fn)(void *ctx, struct cp_http_req *req);

struct cp_http;

/* Starts listening on <iface>:<port> ("0.0.0.0", "127.0.0.1", "::"); port 0
 * picks a free one (see cp_http_port). Requests with bodies over <max_body>
 * get 413 without reaching <fn>. Returns NULL and logs on failure. */
struct cp_http *cp_http_start(struct km_loop *loop, const char *name, const char *iface, int port,
			      size_t max_body, cp_http_handler_fn fn, void *ctx);

/* HTTPS (libmicrohttpd over GnuTLS): PEM texts (copied), GnuTLS priorities,
 * and client certificates: with <client_ca_pem>, clients are asked for one;
 * with <require_client_cert>, a request without one that verifies against
 * it is answered 401 without reaching the handler. */
struct cp_http_tls {
	const char *cert_pem, *key_pem;
	const char *priorities;
	const char *client_ca_pem; /* NULL: no client certificates */
	bool require_client_cert;
};
struct cp_http *cp_http_start_tls(struct km_loop *loop, const char *name, const char *iface, int port,
				  size_t max_body, cp_http_handler_fn fn, void *ctx, const struct cp_http_tls *tls);
int cp_http_port(const struct cp_http *h);
/* <fn> is told of every answer the server sends from a handler (right after
 * the handler, or when a deferred one resumes), with the seconds since the
 * request began; for request metrics. */
typedef void (*cp_http_observe_fn)(void *ctx, const struct cp_http_req *req, double seconds);
void cp_http_observe(struct cp_http *h, cp_http_observe_fn fn, void *ctx);
void cp_http_stop(struct cp_http *h);

/* Hands an already connected socket to the server (tests and fuzzing feed a
 * socketpair through it). The server owns <fd> afterwards. */
int cp_http_add_connection(struct cp_http *h, int fd);
/* Runs one round of the server's I/O without waiting. */
void cp_http_run(struct cp_http *h);

/* Defers the response of <req> (libmicrohttpd transport only): the handler
 * returns without one, the connection waits, and cp_http_resume(<req>),
 * called later on the loop, sends what <req> then holds. The request and
 * its arena live until then; every deferred request must be resumed. */
void cp_http_defer(struct cp_http_req *req);
/* Whether the handler deferred <req> (its answer comes with cp_http_resume). */
static inline bool cp_http_is_deferred(const struct cp_http_req *req)
{
	return req->deferred;
}
void cp_http_resume(struct cp_http_req *req);

/* Adds a response header (<name> and <value> must live as long as <req>);
 * past the room for them, nothing. */
void cp_http_add_header(struct cp_http_req *req, const char *name, const char *value);
/* Request header value (case-insensitive name) or NULL. */
const char *cp_http_header(const struct cp_http_req *req, const char *name);
/* First query value for <key>, or NULL when absent. */
const struct km_str *cp_http_query(const struct cp_http_req *req, const char *key);

#endif
