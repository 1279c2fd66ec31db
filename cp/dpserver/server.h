/* SPDX-License-Identifier: Apache-2.0 */
/* The dp-server (port 5678): TLS with ALPN h2, HTTP/2 via nghttp2, and gRPC
 * framing on top, all on the control plane's event loop. Plain HTTP routes
 * (POST /bootstrap) get a whole request as struct cp_http_req; gRPC methods
 * get a stream object that delivers each length-prefixed message and queues
 * replies. Streams and connections are owned by the server; a handler's
 * context lives from open() until close(). */
#ifndef CP_DPSERVER_SERVER_H
#define CP_DPSERVER_SERVER_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

#include "cp/api/http.h"
#include "ev/loop.h"

struct cp_dpserver;
struct cp_grpc_stream;

struct cp_grpc_method {
	const char *path; /* "/envoy.service.discovery.v3.AggregatedDiscoveryService/..." */
	/* A stream opened; returns the handler context (NULL refuses the stream). */
	void *(*open)(void *svc, struct cp_grpc_stream *s);
	/* One complete message from the peer (borrowed for the call). */
	void (*message)(void *ctx, const uint8_t *data, size_t len);
	/* The stream ended (peer half-close, reset, or connection loss); the
	 * stream object is invalid after this returns. */
	void (*close)(void *ctx);
	void *svc;
};

struct cp_dpserver_config {
	const char *iface;
	int port;
	const char *cert_pem; /* PEM file paths */
	const char *key_pem;
	int tls_min, tls_max;    /* OpenSSL protocol versions, 0: no bound (TLS 1.2 at least) */
	const char *tls_ciphers; /* OpenSSL TLS 1.2 cipher list, NULL or "": OpenSSL's */
	uint64_t read_header_timeout_ms; /* accept to first request headers; 0: none */
	size_t max_message;   /* gRPC message cap (bytes) */
	size_t max_body;      /* HTTP body cap */
	cp_http_handler_fn http; /* plain HTTP requests */
	void *http_ctx;
	const struct cp_grpc_method *methods;
	size_t nmethods;
};

/* Starts listening; NULL (and a log line) on failure. */
struct cp_dpserver *cp_dpserver_start(struct km_loop *loop, const struct cp_dpserver_config *cfg);
int cp_dpserver_port(const struct cp_dpserver *s);
/* Closes every connection (handlers get close()) and the listener. */
void cp_dpserver_stop(struct cp_dpserver *s);

/* Upstream's grpc_server_* families (go-grpc-prometheus: started, handled by
 * code, messages received and sent, handling seconds), written for every
 * method a stream was opened on. */
void cp_dpserver_grpc_metrics_write(const struct cp_dpserver *s, struct km_buf *out);

/* Queues one message; sent as fast as the peer's flow control allows. */
int cp_grpc_send(struct cp_grpc_stream *s, const void *msg, size_t len);
/* cp_grpc_send without a copy: room for a message of <len> bytes at the
 * end of <s>'s output, framed, for the caller to write (an encoder packing
 * straight into it), then cp_grpc_send_done(s) before anything else is
 * sent on <s>. NULL, nothing queued, where cp_grpc_send fails. */
uint8_t *cp_grpc_send_begin(struct cp_grpc_stream *s, size_t len);
void cp_grpc_send_done(struct cp_grpc_stream *s);
/* Between hold and release, sends only queue: the messages leave together
 * (one TLS record, one write) on release. */
void cp_grpc_hold(struct cp_grpc_stream *s);
void cp_grpc_release(struct cp_grpc_stream *s);
/* Ends the stream with grpc-status <code> and grpc-message <msg>; close()
 * follows once the peer is done. */
void cp_grpc_finish(struct cp_grpc_stream *s, int code, const char *msg);
/* Request metadata (lower-case key), e.g. "authorization"; NULL when absent. */
const char *cp_grpc_metadata(const struct cp_grpc_stream *s, const char *key);
/* Peer address as text ("127.0.0.1:41234"). */
const char *cp_grpc_peer(const struct cp_grpc_stream *s);

enum {
	CP_GRPC_OK = 0,
	CP_GRPC_INVALID_ARGUMENT = 3,
	CP_GRPC_PERMISSION_DENIED = 7,
	CP_GRPC_RESOURCE_EXHAUSTED = 8,
	CP_GRPC_UNIMPLEMENTED = 12,
	CP_GRPC_INTERNAL = 13,
	CP_GRPC_UNAVAILABLE = 14,
	CP_GRPC_UNAUTHENTICATED = 16,
};

#endif
