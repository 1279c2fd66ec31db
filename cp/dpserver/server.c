/* SPDX-License-Identifier: Apache-2.0 */
/* dp-server transport (see server.h). Each connection owns an SSL object, an
 * nghttp2 session, a pending-output buffer and its streams; each stream owns
 * an arena for its headers, a bounded input buffer and an output queue that a
 * deferred nghttp2 data source drains. Input never grows past the caps: an
 * oversized message resets the stream with RESOURCE_EXHAUSTED. */
#include "cp/dpserver/server.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <time.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/prom.h"
#include "base/mem.h"

struct conn;

struct cp_grpc_stream {
	struct conn *c;
	int32_t id;
	struct km_arena *a;
	struct cp_http_param *headers;
	size_t nheaders, cap_headers;
	const char *method, *path;
	const struct cp_grpc_method *grpc;
	void *ctx;
	struct km_buf in;       /* HTTP body, or unparsed gRPC bytes */
	struct km_buf out;      /* queued response bytes */
	size_t out_off;
	bool responded;         /* response headers submitted */
	bool finishing;         /* trailers to send after out drains */
	bool deferred;
	bool closed_notified;
	bool too_big;
	bool dead; /* closed; freed (and its handler told) from the reaper */
	bool held; /* cp_grpc_hold: queue, write on release */
	int status_code;
	char status_msg[256];
	int64_t started_ns; /* an RPC counted as started (grpc_server_*), else 0 */
	struct cp_grpc_stream *next;
};

struct conn {
	struct cp_dpserver *srv;
	int fd;
	SSL *ssl;
	bool handshaken;
	bool closing;
	unsigned watched; /* events registered with the loop */
	/* Streams and connections are never freed under a caller: a close
	 * found while sending or receiving (a write to a dead socket, a stream
	 * ending inside a handler) only marks them, and this 0 ms timer frees
	 * them once the stack has unwound. */
	struct km_timer reap;
	/* dpServer.readHeaderTimeout: from accept to the first request's
	 * headers (TLS handshake and HTTP/2 preface included) */
	struct km_timer header_deadline;
	nghttp2_session *h2;
	struct km_buf pending; /* TLS-bound bytes not yet written */
	size_t pending_off;
	struct cp_grpc_stream *streams;
	char peer[64];
	struct conn *next, *prev; /* doubly linked: closing is O(1) with thousands open */
};

/* grpc_server_* of one method */
#define GRPC_CODES 17
struct grpc_stats {
	uint64_t started, received, sent;
	uint64_t handled[GRPC_CODES];
	uint64_t seconds[KM_PROM_DEF_NB + 1];
	double seconds_sum;
};

struct cp_dpserver {
	struct km_loop *loop;
	struct cp_dpserver_config cfg;
	int lfd;
	int port;
	SSL_CTX *ctx;
	struct conn *conns;
	struct grpc_stats *grpc; /* one per cfg.methods */
};

static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_destroy(struct conn *c);
static void schedule_reap(struct conn *c);

/* ---- streams ---- */

static struct cp_grpc_stream *stream_find(struct conn *c, int32_t id)
{
	for (struct cp_grpc_stream *s = c->streams; s; s = s->next)
		if (s->id == id && !s->dead)
			return s;
	return NULL;
}

static struct grpc_stats *grpc_stats_of(const struct cp_grpc_stream *s)
{
	const struct cp_dpserver *srv = s->c->srv;
	return s->grpc && srv->grpc ? &srv->grpc[s->grpc - srv->cfg.methods] : NULL;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The RPC of <s> is over: handled with its status (a stream the peer
 * reset or dropped before the server finished it: Canceled, as grpc-go's
 * handler sees its context canceled). */
static void grpc_handled(struct cp_grpc_stream *s)
{
	struct grpc_stats *g = grpc_stats_of(s);
	if (!g || !s->started_ns)
		return;
	int code = s->finishing ? s->status_code : 1 /* Canceled */;
	g->handled[code >= 0 && code < GRPC_CODES ? code : 2 /* Unknown */]++;
	struct km_prom_hist h = {km_prom_def_le, KM_PROM_DEF_NB, g->seconds, g->seconds_sum};
	km_prom_observe(&h, (double)(mono_ns() - s->started_ns) / 1e9, 1);
	g->seconds_sum = h.sum;
	s->started_ns = 0;
}

static void stream_free(struct conn *c, struct cp_grpc_stream *s)
{
	grpc_handled(s);
	if (s->grpc && s->ctx && !s->closed_notified) {
		s->closed_notified = true;
		s->grpc->close(s->ctx);
	}
	for (struct cp_grpc_stream **p = &c->streams; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	km_buf_fini(&s->in);
	km_buf_fini(&s->out);
	km_arena_free(s->a);
	free(s);
}

const char *cp_grpc_metadata(const struct cp_grpc_stream *s, const char *key)
{
	for (size_t i = 0; i < s->nheaders; i++)
		if (strcasecmp(s->headers[i].key.ptr, key) == 0)
			return s->headers[i].value.ptr;
	return NULL;
}

const char *cp_grpc_peer(const struct cp_grpc_stream *s)
{
	return s->c->peer;
}

static ssize_t read_out(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			nghttp2_data_source *src, void *user)
{
	struct cp_grpc_stream *s = src->ptr;
	size_t avail = s->out.len - s->out_off;
	if (avail == 0) {
		if (s->finishing) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			if (s->grpc) {
				*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
				char code[16];
				snprintf(code, sizeof(code), "%d", s->status_code);
				nghttp2_nv trailers[] = {
				    {(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), 0},
				    {(uint8_t *)"grpc-message", (uint8_t *)s->status_msg, 12,
				     strlen(s->status_msg), 0},
				};
				nghttp2_submit_trailer(h2, id, trailers, s->status_msg[0] ? 2 : 1);
			}
			return 0;
		}
		s->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	size_t n = avail < len ? avail : len;
	memcpy(buf, s->out.data + s->out_off, n);
	s->out_off += n;
	if (s->out_off == s->out.len) {
		/* drained: give the memory back (thousands of idle streams
		 * would each keep their largest response otherwise) */
		km_buf_fini(&s->out);
		s->out_off = 0;
	}
	return (ssize_t)n;
}

static void respond_headers(struct cp_grpc_stream *s, int http_status, const char *content_type)
{
	if (s->responded)
		return;
	s->responded = true;
	char st[8];
	snprintf(st, sizeof(st), "%d", http_status);
	nghttp2_nv hdrs[] = {
	    {(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), 0},
	    {(uint8_t *)"content-type", (uint8_t *)content_type, 12, strlen(content_type), 0},
	};
	nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_out};
	nghttp2_submit_response(s->c->h2, s->id, hdrs, 2, &dp);
}

static void kick(struct cp_grpc_stream *s)
{
	if (s->deferred) {
		s->deferred = false;
		nghttp2_session_resume_data(s->c->h2, s->id);
	}
	conn_flush(s->c);
}

uint8_t *cp_grpc_send_begin(struct cp_grpc_stream *s, size_t len)
{
	if (s->finishing || s->dead || s->c->closing)
		return NULL;
	respond_headers(s, 200, "application/grpc");
	struct grpc_stats *g = grpc_stats_of(s);
	if (g)
		g->sent++;
	uint8_t *p = (uint8_t *)km_buf_extend(&s->out, 5 + len);
	p[0] = 0;
	p[1] = (uint8_t)(len >> 24);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)len;
	return p + 5;
}

void cp_grpc_send_done(struct cp_grpc_stream *s)
{
	if (!s->held)
		kick(s);
}

int cp_grpc_send(struct cp_grpc_stream *s, const void *msg, size_t len)
{
	uint8_t *p = cp_grpc_send_begin(s, len);
	if (!p)
		return -EPIPE;
	if (len)
		memcpy(p, msg, len);
	cp_grpc_send_done(s);
	return 0;
}

void cp_grpc_hold(struct cp_grpc_stream *s)
{
	s->held = true;
}

void cp_grpc_release(struct cp_grpc_stream *s)
{
	if (!s->held)
		return;
	s->held = false;
	if (!s->dead && !s->c->closing && s->out.len > s->out_off)
		kick(s);
}

void cp_grpc_finish(struct cp_grpc_stream *s, int code, const char *msg)
{
	if (s->finishing)
		return;
	if (!s->responded) {
		/* trailers-only response */
		s->responded = true;
		s->status_code = code;
		char c[16];
		snprintf(c, sizeof(c), "%d", code);
		const char *m = msg ? msg : "";
		nghttp2_nv hdrs[] = {
		    {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
		    {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
		    {(uint8_t *)"grpc-status", (uint8_t *)c, 11, strlen(c), 0},
		    {(uint8_t *)"grpc-message", (uint8_t *)m, 12, strlen(m), 0},
		};
		s->finishing = true;
		nghttp2_submit_headers(s->c->h2, NGHTTP2_FLAG_END_STREAM, s->id, NULL, hdrs, *m ? 4 : 3,
				       NULL);
		conn_flush(s->c);
		return;
	}
	s->finishing = true;
	s->status_code = code;
	snprintf(s->status_msg, sizeof(s->status_msg), "%s", msg ? msg : "");
	kick(s);
}

/* ---- request dispatch ---- */

static void dispatch_http(struct cp_grpc_stream *s)
{
	struct cp_dpserver *srv = s->c->srv;
	struct cp_http_req req = {0};
	req.a = s->a;
	req.method = s->method ? s->method : "GET";
	const char *path = s->path ? s->path : "/";
	const char *q = strchr(path, '?');
	req.path = (struct km_str){path, q ? (size_t)(q - path) : strlen(path)};
	req.body = (struct km_str){km_buf_cstr(&s->in), s->in.len};
	req.headers = s->headers;
	req.nheaders = s->nheaders;
	req.remote_loopback = strncmp(s->c->peer, "127.", 4) == 0;
	if (s->too_big) {
		req.status = 413;
		req.content_type = "text/plain";
		km_buf_puts(&req.out, "request body too large");
	} else if (srv->cfg.http) {
		srv->cfg.http(srv->cfg.http_ctx, &req);
	} else {
		req.status = 404;
	}
	respond_headers(s, req.status ? req.status : 200,
			req.content_type ? req.content_type : "application/json");
	km_buf_append(&s->out, req.out.data, req.out.len);
	km_buf_fini(&req.out);
	s->finishing = true;
	kick(s);
}

/* Splits buffered input into gRPC messages. */
static void feed_grpc(struct cp_grpc_stream *s)
{
	size_t off = 0;
	while (s->in.len - off >= 5) {
		const uint8_t *p = (const uint8_t *)s->in.data + off;
		uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
		if (p[0] != 0) {
			cp_grpc_finish(s, CP_GRPC_UNIMPLEMENTED, "compressed messages are not supported");
			return;
		}
		if (len > s->c->srv->cfg.max_message) {
			km_warn("dp-server", "gRPC message too large peer=%s size=%u", s->c->peer, len);
			cp_grpc_finish(s, CP_GRPC_RESOURCE_EXHAUSTED, "message larger than the limit");
			s->in.len = 0;
			return;
		}
		if (s->in.len - off - 5 < len)
			break;
		if (s->ctx && !s->finishing) {
			struct grpc_stats *g = grpc_stats_of(s);
			if (g)
				g->received++;
			s->grpc->message(s->ctx, p + 5, len);
		}
		off += 5 + len;
		if (s->dead || s->c->closing)
			return; /* the handler's reply found the stream or connection gone */
	}
	if (off) {
		memmove(s->in.data, s->in.data + off, s->in.len - off);
		s->in.len -= off;
		if (!s->in.len)
			km_buf_fini(&s->in); /* keeps the size limit */
	}
}

static void open_grpc(struct cp_grpc_stream *s)
{
	const struct cp_dpserver_config *cfg = &s->c->srv->cfg;
	for (size_t i = 0; i < cfg->nmethods; i++)
		if (s->path && strcmp(cfg->methods[i].path, s->path) == 0) {
			s->grpc = &cfg->methods[i];
			break;
		}
	if (!s->grpc) {
		cp_grpc_finish(s, CP_GRPC_UNIMPLEMENTED, "unknown service or method");
		return;
	}
	struct grpc_stats *g = grpc_stats_of(s);
	if (g) {
		g->started++;
		s->started_ns = mono_ns();
	}
	/* bounded by the message cap plus one frame header */
	s->in.max = cfg->max_message + 5 + 16384;
	s->ctx = s->grpc->open(s->grpc->svc, s);
	if (!s->ctx && !s->finishing)
		cp_grpc_finish(s, CP_GRPC_UNAVAILABLE, "stream refused");
}

static bool is_grpc(const struct cp_grpc_stream *s)
{
	const char *ct = cp_grpc_metadata(s, "content-type");
	return ct && strncmp(ct, "application/grpc", 16) == 0;
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct cp_grpc_stream *s = km_calloc(1, sizeof(*s));
	s->c = c;
	s->id = f->hd.stream_id;
	s->a = km_arena_new(2048);
	s->in.max = c->srv->cfg.max_body;
	s->next = c->streams;
	c->streams = s;
	return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct cp_grpc_stream *s = stream_find(user, f->hd.stream_id);
	if (!s || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (s->nheaders >= 64)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
	char *k = km_arena_strndup(s->a, (const char *)name, nlen);
	char *v = km_arena_strndup(s->a, (const char *)value, vlen);
	if (strcmp(k, ":method") == 0)
		s->method = v;
	else if (strcmp(k, ":path") == 0)
		s->path = v;
	if (s->nheaders == s->cap_headers) {
		size_t cap = s->cap_headers ? s->cap_headers * 2 : 16;
		s->headers = km_arena_realloc(s->a, s->headers, s->cap_headers * sizeof(*s->headers),
					      cap * sizeof(*s->headers));
		s->cap_headers = cap;
	}
	s->headers[s->nheaders].key = (struct km_str){k, nlen};
	s->headers[s->nheaders].value = (struct km_str){v, vlen};
	s->nheaders++;
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *user)
{
	struct cp_grpc_stream *s = stream_find(user, id);
	if (!s || s->finishing)
		return 0;
	if (km_buf_append(&s->in, data, len) != 0) {
		s->too_big = true;
		if (s->grpc) {
			cp_grpc_finish(s, CP_GRPC_RESOURCE_EXHAUSTED, "message larger than the limit");
			s->in.len = 0;
		}
		return 0;
	}
	if (s->grpc)
		feed_grpc(s);
	return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct cp_grpc_stream *s = stream_find(user, f->hd.stream_id);
	if (!s)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		km_loop_timer_stop(s->c->srv->loop, &s->c->header_deadline);
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST && is_grpc(s))
		open_grpc(s);
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		if (s->grpc) {
			/* peer half-closed: the handler may still be sending */
			if (s->ctx && !s->closed_notified) {
				s->closed_notified = true;
				s->grpc->close(s->ctx);
				s->ctx = NULL;
			}
			if (!s->finishing)
				cp_grpc_finish(s, CP_GRPC_OK, NULL);
		} else if (!is_grpc(s)) {
			dispatch_http(s);
		}
	}
	return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *user)
{
	struct conn *c = user;
	struct cp_grpc_stream *s = stream_find(c, id);
	if (s) {
		s->dead = true;
		schedule_reap(c);
	}
	return 0;
}

/* ---- TLS and socket I/O ---- */

static void on_io(struct km_loop *loop, int fd, unsigned events, void *ctx);

/* Registers <ev> for the connection's socket; the same again costs no
 * system call (a flush per response would otherwise make one). */
static void set_watch(struct conn *c, unsigned ev)
{
	if (c->watched == ev)
		return;
	c->watched = ev;
	km_loop_watch(c->srv->loop, c->fd, ev, on_io, c);
}

static void watch(struct conn *c)
{
	unsigned ev = KM_EV_READ;
	if (c->pending.len > c->pending_off)
		ev |= KM_EV_WRITE;
	set_watch(c, ev);
}

static void conn_flush(struct conn *c)
{
	if (c->closing || !c->handshaken)
		return;
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->h2, &data);
		if (n < 0) {
			conn_close(c);
			return;
		}
		if (n == 0)
			break;
		km_buf_append(&c->pending, data, (size_t)n);
	}
	while (c->pending.len > c->pending_off) {
		ERR_clear_error();
		int w = SSL_write(c->ssl, c->pending.data + c->pending_off,
				  (int)(c->pending.len - c->pending_off));
		if (w <= 0) {
			int e = SSL_get_error(c->ssl, w);
			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
				break;
			conn_close(c);
			return;
		}
		c->pending_off += (size_t)w;
	}
	if (c->pending_off == c->pending.len) {
		km_buf_fini(&c->pending);
		c->pending_off = 0;
	}
	if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
	    c->pending.len == 0) {
		conn_close(c);
		return;
	}
	watch(c);
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	for (unsigned i = 0; i + 1 <= inlen;) {
		unsigned l = in[i];
		if (i + 1 + l > inlen)
			break;
		if (l == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void start_h2(struct conn *c)
{
	nghttp2_session_callbacks *cb;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_server_new(&c->h2, cb, c);
	nghttp2_session_callbacks_del(cb);
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
				       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
				       {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024}};
	nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 3);
	nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 4 << 20);
}

static void on_io(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	struct conn *c = ctx;
	if (!c->handshaken) {
		ERR_clear_error();
		int r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ) {
				set_watch(c, KM_EV_READ);
				return;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				set_watch(c, KM_EV_READ | KM_EV_WRITE);
				return;
			}
			unsigned long err = ERR_peek_error();
			km_debug("dp-server", "TLS handshake failed peer=%s error=%s", c->peer,
				 err ? ERR_reason_error_string(err) : "closed");
			conn_close(c);
			return;
		}
		c->handshaken = true;
		start_h2(c);
	}
	if (events & KM_EV_READ) {
		uint8_t buf[16384];
		for (;;) {
			ERR_clear_error();
			int n = SSL_read(c->ssl, buf, sizeof(buf));
			if (n <= 0) {
				int e = SSL_get_error(c->ssl, n);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				conn_close(c);
				return;
			}
			ssize_t rv = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
			if (rv < 0) {
				km_debug("dp-server", "HTTP/2 error peer=%s error=%s", c->peer,
					 nghttp2_strerror((int)rv));
				conn_close(c);
				return;
			}
			if (c->closing)
				return;
		}
	}
	conn_flush(c);
}

static void on_reap(struct km_loop *loop, void *ctx)
{
	struct conn *c = ctx;
	if (c->closing) {
		conn_destroy(c);
		return;
	}
	for (struct cp_grpc_stream *s = c->streams, *next; s; s = next) {
		next = s->next;
		if (s->dead)
			stream_free(c, s);
	}
}

static void schedule_reap(struct conn *c)
{
	if (!c->reap.armed)
		km_loop_timer_start(c->srv->loop, &c->reap, 0, on_reap, c);
}

/* Marks the connection closed: no more I/O; freed by the reaper. */
static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	km_loop_unwatch(c->srv->loop, c->fd);
	c->watched = 0;
	schedule_reap(c);
}

static void conn_destroy(struct conn *c)
{
	struct cp_dpserver *srv = c->srv;
	km_loop_timer_stop(srv->loop, &c->reap);
	km_loop_timer_stop(srv->loop, &c->header_deadline);
	if (!c->closing)
		km_loop_unwatch(srv->loop, c->fd);
	c->watched = 0;
	c->closing = true;
	while (c->streams)
		stream_free(c, c->streams);
	if (c->h2)
		nghttp2_session_del(c->h2);
	SSL_free(c->ssl);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	km_buf_fini(&c->pending);
	free(c);
}

static void on_header_deadline(struct km_loop *loop, void *ctx)
{
	struct conn *c = ctx;
	km_info("dp-server", "closing a connection that sent no request headers in time peer=%s", c->peer);
	conn_close(c);
}

static void on_accept(struct km_loop *loop, int lfd, unsigned events, void *ctx)
{
	struct cp_dpserver *srv = ctx;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = km_calloc(1, sizeof(*c));
		c->srv = srv;
		c->fd = fd;
		char host[INET6_ADDRSTRLEN] = "?";
		int port = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
				inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
			else
				inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			port = ntohs(in6->sin6_port);
		}
		snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
		c->ssl = SSL_new(srv->ctx);
		SSL_set_fd(c->ssl, fd);
		SSL_set_accept_state(c->ssl);
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		set_watch(c, KM_EV_READ);
		if (srv->cfg.read_header_timeout_ms)
			km_loop_timer_start(loop, &c->header_deadline, srv->cfg.read_header_timeout_ms,
					    on_header_deadline, c);
	}
}

struct cp_dpserver *cp_dpserver_start(struct km_loop *loop, const struct cp_dpserver_config *cfg)
{
	struct cp_dpserver *srv = km_calloc(1, sizeof(*srv));
	srv->loop = loop;
	srv->cfg = *cfg;
	if (!srv->cfg.max_message)
		srv->cfg.max_message = 4 << 20;
	if (!srv->cfg.max_body)
		srv->cfg.max_body = 1 << 20;
	srv->ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_min_proto_version(srv->ctx, cfg->tls_min > TLS1_2_VERSION ? cfg->tls_min : TLS1_2_VERSION);
	if (cfg->tls_max)
		SSL_CTX_set_max_proto_version(srv->ctx, cfg->tls_max);
	if (cfg->tls_ciphers && *cfg->tls_ciphers && SSL_CTX_set_cipher_list(srv->ctx, cfg->tls_ciphers) != 1) {
		km_error("dp-server", "no usable TLS cipher suite ciphers=%s", cfg->tls_ciphers);
		SSL_CTX_free(srv->ctx);
		free(srv);
		return NULL;
	}
	/* thousands of mostly idle streams: give the read/write buffers (about
	 * 34 KiB per connection) back while a connection has nothing in flight */
	SSL_CTX_set_mode(srv->ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(srv->ctx, cfg->cert_pem) != 1 ||
	    SSL_CTX_use_PrivateKey_file(srv->ctx, cfg->key_pem, SSL_FILETYPE_PEM) != 1) {
		km_error("dp-server", "cannot load TLS certificate cert=%s key=%s", cfg->cert_pem,
			 cfg->key_pem);
		SSL_CTX_free(srv->ctx);
		free(srv);
		return NULL;
	}
	SSL_CTX_set_alpn_select_cb(srv->ctx, alpn_select, NULL);
	/* "0.0.0.0" (the default) means every address, IPv6 included: Envoy
	 * may resolve "localhost" to ::1 */
	const char *iface = cfg->iface && *cfg->iface ? cfg->iface : "0.0.0.0";
	bool any = strcmp(iface, "0.0.0.0") == 0 || strcmp(iface, "::") == 0;
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int family;
	if (any || strchr(iface, ':')) {
		struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)&ss;
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons((uint16_t)cfg->port);
		if (!any)
			inet_pton(AF_INET6, iface, &sa6->sin6_addr);
		sl = sizeof(*sa6);
		family = AF_INET6;
	} else {
		struct sockaddr_in *sa4 = (struct sockaddr_in *)&ss;
		sa4->sin_family = AF_INET;
		sa4->sin_port = htons((uint16_t)cfg->port);
		inet_pton(AF_INET, iface, &sa4->sin_addr);
		sl = sizeof(*sa4);
		family = AF_INET;
	}
	srv->lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->lfd < 0 && any) { /* no IPv6 on this host */
		struct sockaddr_in *sa4 = (struct sockaddr_in *)&ss;
		memset(&ss, 0, sizeof(ss));
		sa4->sin_family = AF_INET;
		sa4->sin_port = htons((uint16_t)cfg->port);
		sl = sizeof(*sa4);
		family = AF_INET;
		srv->lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	int one = 1, zero = 0;
	setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(srv->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(srv->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(srv->lfd, 1024) < 0) {
		km_error("dp-server", "cannot listen port=%d error=%s", cfg->port, strerror(errno));
		close(srv->lfd);
		SSL_CTX_free(srv->ctx);
		free(srv);
		return NULL;
	}
	sl = sizeof(ss);
	getsockname(srv->lfd, (struct sockaddr *)&ss, &sl);
	srv->port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					     : ((struct sockaddr_in *)&ss)->sin_port);
	km_loop_watch(loop, srv->lfd, KM_EV_READ, on_accept, srv);
	km_info("dp-server", "listening address=%s:%d protocols=h2,grpc", cfg->iface ? cfg->iface : "0.0.0.0",
		srv->port);
	srv->grpc = km_calloc(srv->cfg.nmethods ? srv->cfg.nmethods : 1, sizeof(*srv->grpc));
	return srv;
}

int cp_dpserver_port(const struct cp_dpserver *s)
{
	return s->port;
}

void cp_dpserver_stop(struct cp_dpserver *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_destroy(s->conns);
	km_loop_unwatch(s->loop, s->lfd);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
	free(s->grpc);
	free(s);
}

/* The labels of a method's samples into <l> (reset): grpc_code (when
 * <code>), grpc_method, grpc_service, grpc_type. */
static const char *method_labels(struct km_buf *l, const char *path, const char *code)
{
	const char *slash = strrchr(path, '/');
	l->len = 0;
	if (code)
		km_buf_printf(l, "grpc_code=\"%s\",", code);
	km_buf_printf(l, "grpc_method=\"%s\",grpc_service=\"%.*s\",grpc_type=\"bidi_stream\"", slash + 1,
		      (int)(slash - path - 1), path + 1);
	return km_buf_cstr(l);
}

void cp_dpserver_grpc_metrics_write(const struct cp_dpserver *s, struct km_buf *out)
{
	static const char *const code_name[GRPC_CODES] = {
	    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
	    "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"};
	static const struct {
		const char *name, *help;
		size_t off;
	} counters[] = {
	    {"grpc_server_started_total", "Total number of RPCs started on the server.", offsetof(struct grpc_stats, started)},
	    {"grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.",
	     offsetof(struct grpc_stats, received)},
	    {"grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.",
	     offsetof(struct grpc_stats, sent)},
	};
	if (!s || !s->grpc)
		return;
	bool started = false, handled = false; /* Go prints no family without samples */
	for (size_t i = 0; i < s->cfg.nmethods; i++) {
		started |= s->grpc[i].started != 0;
		for (int code = 0; code < GRPC_CODES; code++)
			handled |= s->grpc[i].handled[code] != 0;
	}
	if (!started)
		return;
	struct km_buf l = KM_BUF_INIT;
	for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
		km_prom_family(out, counters[c].name, "counter", counters[c].help);
		for (size_t i = 0; i < s->cfg.nmethods; i++)
			if (s->grpc[i].started)
				km_prom_sample(out, counters[c].name, method_labels(&l, s->cfg.methods[i].path, NULL),
					       (double)*(const uint64_t *)((const char *)&s->grpc[i] + counters[c].off));
	}
	if (handled)
		km_prom_family(out, "grpc_server_handled_total", "counter",
			       "Total number of RPCs completed on the server, regardless of success or failure.");
	for (size_t i = 0; i < s->cfg.nmethods; i++)
		for (int code = 0; code < GRPC_CODES; code++) {
			if (s->grpc[i].handled[code])
				km_prom_sample(out, "grpc_server_handled_total",
					       method_labels(&l, s->cfg.methods[i].path, code_name[code]),
					       (double)s->grpc[i].handled[code]);
		}
	km_prom_family(out, "grpc_server_handling_seconds", "histogram",
		       "Histogram of response latency (seconds) of gRPC that had been application-level handled by the "
		       "server.");
	for (size_t i = 0; i < s->cfg.nmethods; i++) {
		const struct grpc_stats *g = &s->grpc[i];
		struct km_prom_hist h = {km_prom_def_le, KM_PROM_DEF_NB, (uint64_t *)g->seconds, g->seconds_sum};
		if (g->started)
			km_prom_hist_write(out, "grpc_server_handling_seconds",
					   method_labels(&l, s->cfg.methods[i].path, NULL), &h);
	}
	km_buf_fini(&l);
}
