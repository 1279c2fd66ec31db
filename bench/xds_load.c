/* SPDX-License-Identifier: Apache-2.0 */
/* xds_load: N fake dataplanes on one epoll loop, each a TLS + HTTP/2 gRPC
 * delta ADS stream to kuma-cp's dp-server. Each registers its own Dataplane
 * through node metadata, subscribes CDS and LDS (wildcard) then EDS for the
 * EDS clusters it gets, and ACKs every response with its nonce. It measures
 * the time until every stream holds a complete ACKed config, then the time
 * from a write (built-in PUTs via libcurl, or --trigger shell commands) to
 * the last ACK of every affected proxy. See docs/performance.md. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/mem.h"
#include "codec/json.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "envoy/service/health/v3/hds.pb-c.h"
#include "ev/loop.h"
#include "pb/json.h"
#include "stats.h"
#include "topology.h"

extern char **environ;

#define URL_CDS "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define URL_EDS "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#define URL_SDS "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
#define URL_LDS "type.googleapis.com/envoy.config.listener.v3.Listener"
#define ADS_PATH "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define HDS_PATH "/envoy.service.health.v3.HealthDiscoveryService/StreamHealthCheck"
#define MAX_MSG (64u << 20)

enum { T_CDS, T_EDS, T_LDS, T_SDS, T_OTHER };

struct nset {
	char **v;
	size_t n, cap;
};

enum pstate { P_IDLE, P_CONNECTING, P_TLS, P_UP, P_DEAD };

struct proxy {
	int idx;
	int fd;
	enum pstate state;
	SSL *ssl;
	nghttp2_session *h2;
	int32_t sid;
	unsigned watching;
	struct km_buf body;   /* framed gRPC requests not yet handed to nghttp2 */
	size_t body_off;
	bool deferred;
	struct km_buf wire;   /* nghttp2 output not yet accepted by SSL_write */
	size_t wire_off;
	struct km_buf in;     /* gRPC message reassembly */
	struct nset cds, eds_clusters, eds_sub, eds_have, lds;
	bool cds_acked, lds_acked, complete;
	size_t secrets; /* SDS resources received (--mtls: complete needs one) */
	uint64_t t_start_us, t_complete_us;
	uint64_t responses, resources;
	uint64_t ph_responses, ph_resources, ph_last_ack_us;
	uint64_t ph_secret_us; /* first SDS resource received in the phase (0: none) */
	char grpc_status[8];
	char grpc_message[200];
	/* --hds-idle: a health stream as Envoy keeps one, reporting every
	 * interval the specifier asks for, every cluster healthy */
	int32_t hds_sid;
	struct km_buf hbody, hin, report; /* to send; reassembly; the framed report */
	size_t hbody_off;
	bool hdeferred;
	uint64_t hds_interval_ms;
	struct km_timer hds_timer;
};

struct bench {
	struct km_loop *loop;
	SSL_CTX *tls;
	struct proxy *px;
	int n;
	struct topology topo;
	const char *mesh;
	const char *host;
	int port;
	const char *token;
	int api_port;
	const char *metrics_url;
	int cp_pid;
	int max_inflight;
	int inflight, next_connect;
	int up, complete, dead;
	bool mtls; /* --mtls: a MeshIdentity exists before anyone connects */
	int hds_idle_s;      /* --hds-idle: open HDS streams; idle phase length (0: none) */
	uint64_t hds_reports; /* reports sent */
	uint64_t t0_us;
	uint64_t responses, resources;
	/* measurement phase */
	bool in_phase;
	uint64_t ph_start_us, ph_last_rx_us, ph_responses, ph_resources;
	/* run-until state */
	struct km_timer tick;
	bool (*until)(struct bench *b);
	uint64_t deadline_us;
	bool timed_out;
	int verbose;
};

static struct bench B;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static double sec(uint64_t us)
{
	return (double)us / 1e6;
}

/* ---- small name sets ---- */

static bool nset_has(const struct nset *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return true;
	return false;
}

static void nset_add(struct nset *s, const char *name)
{
	if (nset_has(s, name))
		return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->v = km_realloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = km_strdup(name);
}

static void nset_del(struct nset *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0) {
			free(s->v[i]);
			s->v[i] = s->v[--s->n];
			return;
		}
}

static void nset_fini(struct nset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- topology (bench/topology.h) ---- */

/* The Dataplane JSON of instance <i> of service <s> named <name>. */
static void dataplane_json(const struct bench *b, struct km_buf *out, const char *name, int i, int s,
			   const char *protocol)
{
	struct km_buf spec = KM_BUF_INIT;
	topology_dataplane_spec(&b->topo, &spec, i, s, protocol);
	/* the spec's object without its braces, after type, mesh, name, labels */
	km_buf_printf(out,
		      "{\"type\":\"Dataplane\",\"mesh\":\"%s\",\"name\":\"%s\",\"labels\":{\"kuma.io/workload\":"
		      "\"svc-%d\"},%s",
		      b->mesh, name, s, spec.data + 1);
	km_buf_fini(&spec);
}

/* svc-0 instances flip between http and tcp with the "every" trigger. */
static const char *svc0_protocol = "http";

static const char *protocol_of(int s)
{
	return s == 0 ? svc0_protocol : "http";
}

/* ---- gRPC framing ---- */

static void proxy_kill(struct proxy *p, const char *why);
static void flush(struct proxy *p);

static void queue_msg(struct proxy *p, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t hdr[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
	km_buf_append(&p->body, hdr, 5);
	uint8_t *tmp = km_malloc(len + 1);
	protobuf_c_message_pack(m, tmp);
	km_buf_append(&p->body, tmp, len);
	free(tmp);
	if (p->deferred && p->h2) {
		p->deferred = false;
		nghttp2_session_resume_data(p->h2, p->sid);
	}
}

static void send_request(struct proxy *p, const char *type_url, const char *nonce, char **sub, size_t nsub,
			 char **unsub, size_t nunsub)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest r =
	    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	r.type_url = (char *)type_url;
	if (nonce)
		r.response_nonce = (char *)nonce;
	r.resource_names_subscribe = sub;
	r.n_resource_names_subscribe = nsub;
	r.resource_names_unsubscribe = unsub;
	r.n_resource_names_unsubscribe = nunsub;
	queue_msg(p, &r.base);
}

/* The first request carries the node: id <mesh>.<name>, and the metadata
 * kuma-dp sends (proxy type, the Dataplane itself, versions). */
static int send_first(struct proxy *p)
{
	struct bench *b = &B;
	struct km_arena *a = km_arena_new(8192);
	struct km_buf dp = KM_BUF_INIT, j = KM_BUF_INIT, bytes = KM_BUF_INIT, err = KM_BUF_INIT;
	char name[32];
	snprintf(name, sizeof(name), "dp-%d", p->idx);
	int s = b->topo.svc_of[p->idx];
	dataplane_json(b, &dp, name, p->idx, s, protocol_of(s));
	km_buf_printf(&j, "{\"node\":{\"id\":\"%s.%s\",\"cluster\":\"svc-%d\",\"userAgentName\":\"envoy\","
			  "\"metadata\":{\"dataplane.proxyType\":\"dataplane\",\"dataplane.resource\":\"",
		      b->mesh, name, s);
	for (size_t i = 0; i < dp.len; i++) {
		if (dp.data[i] == '"' || dp.data[i] == '\\')
			km_buf_putc(&j, '\\');
		km_buf_putc(&j, dp.data[i]);
	}
	km_buf_printf(&j, "\",\"version\":{\"kumaDp\":{\"version\":\"xds-load\"},\"envoy\":{\"version\":\"1.40.0\"}}}},"
			  "\"typeUrl\":\"%s\"}",
		      URL_CDS);
	struct km_json *doc = NULL;
	int rc = km_json_parse(a, j.data, j.len, &doc, &err);
	if (rc == 0)
		rc = km_pb_encode_json(a, "envoy.service.discovery.v3.DeltaDiscoveryRequest", doc, &bytes, &err);
	if (rc == 0) {
		uint8_t hdr[5] = {0, (uint8_t)(bytes.len >> 24), (uint8_t)(bytes.len >> 16), (uint8_t)(bytes.len >> 8),
				  (uint8_t)bytes.len};
		km_buf_append(&p->body, hdr, 5);
		km_buf_append(&p->body, bytes.data, bytes.len);
		send_request(p, URL_LDS, NULL, NULL, 0, NULL, 0);
		/* every secret (the proxy's certificate and the trust bundle once a
		 * MeshIdentity selects it), as Envoy would ask for them by name */
		char *star[] = {"*"};
		send_request(p, URL_SDS, NULL, star, 1, NULL, 0);
	} else {
		fprintf(stderr, "xds_load: cannot encode the first request: %s\n", km_buf_cstr(&err));
	}
	km_buf_fini(&dp);
	km_buf_fini(&j);
	km_buf_fini(&bytes);
	km_buf_fini(&err);
	km_arena_free(a);
	return rc;
}

/* ---- xDS client state ---- */

static int type_of(const char *url)
{
	if (strcmp(url, URL_CDS) == 0)
		return T_CDS;
	if (strcmp(url, URL_EDS) == 0)
		return T_EDS;
	if (strcmp(url, URL_LDS) == 0)
		return T_LDS;
	if (strcmp(url, URL_SDS) == 0)
		return T_SDS;
	return T_OTHER;
}

static bool cluster_is_eds(const Envoy__Service__Discovery__V3__Resource *r)
{
	if (!r->resource)
		return false;
	Envoy__Config__Cluster__V3__Cluster *c = envoy__config__cluster__v3__cluster__unpack(
	    NULL, r->resource->value.len, r->resource->value.data);
	if (!c)
		return false;
	bool eds = c->cluster_discovery_type_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE &&
		   c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
	envoy__config__cluster__v3__cluster__free_unpacked(c, NULL);
	return eds;
}

static void check_complete(struct proxy *p, uint64_t now)
{
	if (p->complete || !p->cds_acked || !p->lds_acked || (B.mtls && !p->secrets))
		return;
	for (size_t i = 0; i < p->eds_clusters.n; i++)
		if (!nset_has(&p->eds_have, p->eds_clusters.v[i]))
			return;
	p->complete = true;
	p->t_complete_us = now;
	B.complete++;
}

static void on_message(struct proxy *p, const uint8_t *data, size_t len)
{
	struct bench *b = &B;
	uint64_t now = now_us();
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
	    envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, data);
	if (!r) {
		proxy_kill(p, "undecodable DeltaDiscoveryResponse");
		return;
	}
	int t = type_of(r->type_url);
	p->responses++;
	p->resources += r->n_resources;
	b->responses++;
	b->resources += r->n_resources;
	if (b->in_phase) {
		p->ph_responses++;
		p->ph_resources += r->n_resources;
		b->ph_responses++;
		b->ph_resources += r->n_resources;
		b->ph_last_rx_us = now;
	}
	for (size_t i = 0; i < r->n_resources; i++) {
		const char *name = r->resources[i]->name;
		if (t == T_CDS) {
			nset_add(&p->cds, name);
			if (cluster_is_eds(r->resources[i]))
				nset_add(&p->eds_clusters, name);
			else
				nset_del(&p->eds_clusters, name);
		} else if (t == T_EDS) {
			nset_add(&p->eds_have, name);
		} else if (t == T_LDS) {
			nset_add(&p->lds, name);
		} else if (t == T_SDS) {
			p->secrets++;
			if (b->in_phase && !p->ph_secret_us)
				p->ph_secret_us = now;
		}
	}
	for (size_t i = 0; i < r->n_removed_resources; i++) {
		const char *name = r->removed_resources[i];
		if (t == T_CDS) {
			nset_del(&p->cds, name);
			nset_del(&p->eds_clusters, name);
		} else if (t == T_EDS) {
			nset_del(&p->eds_have, name);
		} else if (t == T_LDS) {
			nset_del(&p->lds, name);
		}
	}
	/* ACK with the response's nonce */
	send_request(p, r->type_url, r->nonce, NULL, 0, NULL, 0);
	if (t == T_CDS) {
		p->cds_acked = true;
		/* EDS follows the clusters: subscribe new ones, drop removed ones */
		char **sub = km_calloc(p->eds_clusters.n + 1, sizeof(char *));
		char **unsub = km_calloc(p->eds_sub.n + 1, sizeof(char *));
		size_t ns = 0, nu = 0;
		for (size_t i = 0; i < p->eds_clusters.n; i++)
			if (!nset_has(&p->eds_sub, p->eds_clusters.v[i]))
				sub[ns++] = km_strdup(p->eds_clusters.v[i]);
		for (size_t i = 0; i < p->eds_sub.n; i++)
			if (!nset_has(&p->eds_clusters, p->eds_sub.v[i]))
				unsub[nu++] = km_strdup(p->eds_sub.v[i]);
		if (ns || nu)
			send_request(p, URL_EDS, NULL, sub, ns, unsub, nu);
		for (size_t i = 0; i < ns; i++) {
			nset_add(&p->eds_sub, sub[i]);
			free(sub[i]);
		}
		for (size_t i = 0; i < nu; i++) {
			nset_del(&p->eds_sub, unsub[i]);
			nset_del(&p->eds_have, unsub[i]);
			free(unsub[i]);
		}
		free(sub);
		free(unsub);
	} else if (t == T_LDS) {
		p->lds_acked = true;
	}
	if (b->in_phase)
		p->ph_last_ack_us = now;
	check_complete(p, now);
	envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
}

/* ---- HTTP/2 ---- */

static ssize_t body_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *user)
{
	struct proxy *p = src->ptr;
	size_t avail = p->body.len - p->body_off;
	if (!avail) {
		p->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	size_t n = avail < len ? avail : len;
	memcpy(buf, p->body.data + p->body_off, n);
	p->body_off += n;
	if (p->body_off == p->body.len) {
		km_buf_reset(&p->body);
		p->body_off = 0;
	}
	return (ssize_t)n;
}

static void on_hds_data(struct proxy *p, const uint8_t *data, size_t len);

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
	struct proxy *p = user;
	if (p->hds_sid && id == p->hds_sid) {
		on_hds_data(p, data, len);
		return 0;
	}
	if (km_buf_append(&p->in, data, len))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	size_t off = 0;
	while (p->in.len - off >= 5) {
		const uint8_t *h = (const uint8_t *)p->in.data + off;
		size_t mlen = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
		if (mlen > MAX_MSG) {
			proxy_kill(p, "gRPC message too large");
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
		if (p->in.len - off - 5 < mlen)
			break;
		on_message(p, h + 5, mlen);
		if (p->state == P_DEAD)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		off += 5 + mlen;
	}
	if (off) {
		memmove(p->in.data, p->in.data + off, p->in.len - off);
		p->in.len -= off;
	}
	return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct proxy *p = user;
	if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
		snprintf(p->grpc_status, sizeof(p->grpc_status), "%.*s", (int)vlen, (const char *)value);
	else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0)
		snprintf(p->grpc_message, sizeof(p->grpc_message), "%.*s", (int)vlen, (const char *)value);
	return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *user)
{
	struct proxy *p = user;
	if (p->hds_sid && id == p->hds_sid) {
		fprintf(stderr, "xds_load: dp-%d: HDS stream closed (h2 error %u)\n", p->idx, err);
		km_loop_timer_stop(B.loop, &p->hds_timer);
		p->hds_sid = 0;
		return 0;
	}
	char why[300];
	snprintf(why, sizeof(why), "stream closed (h2 error %u, grpc-status %s %s)", err,
		 p->grpc_status[0] ? p->grpc_status : "-", p->grpc_message);
	proxy_kill(p, why);
	return 0;
}

/* ---- HDS (--hds-idle) ---- */

static void hds_queue(struct proxy *p, const uint8_t *framed, size_t len)
{
	km_buf_append(&p->hbody, framed, len);
	if (p->hdeferred && p->h2) {
		p->hdeferred = false;
		nghttp2_session_resume_data(p->h2, p->hds_sid);
	}
}

static void hds_frame(struct km_buf *out, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t hdr[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
	km_buf_append(out, hdr, 5);
	uint8_t *tmp = km_malloc(len + 1);
	protobuf_c_message_pack(m, tmp);
	km_buf_append(out, tmp, len);
	free(tmp);
}

static void on_hds_timer(struct km_loop *loop, void *ctx)
{
	struct proxy *p = ctx;
	if (p->state != P_UP)
		return;
	hds_queue(p, (const uint8_t *)p->report.data, p->report.len);
	B.hds_reports++;
	flush(p);
	km_loop_timer_start(loop, &p->hds_timer, p->hds_interval_ms, on_hds_timer, p);
}

/* A specifier: the report naming each of its clusters healthy, sent
 * every interval from now on. */
static void on_hds_specifier(struct proxy *p, const uint8_t *msg, size_t len)
{
	Envoy__Service__Health__V3__HealthCheckSpecifier *spec =
	    envoy__service__health__v3__health_check_specifier__unpack(NULL, len, msg);
	if (!spec)
		return;
	size_t n = spec->n_cluster_health_checks;
	Envoy__Service__Health__V3__ClusterEndpointsHealth *ceh = km_calloc(n + 1, sizeof(*ceh));
	Envoy__Service__Health__V3__ClusterEndpointsHealth **cehp = km_calloc(n + 1, sizeof(*cehp));
	Envoy__Service__Health__V3__LocalityEndpointsHealth *leh = km_calloc(n + 1, sizeof(*leh));
	Envoy__Service__Health__V3__LocalityEndpointsHealth **lehp = km_calloc(n + 1, sizeof(*lehp));
	Envoy__Service__Health__V3__EndpointHealth *eh = km_calloc(n + 1, sizeof(*eh));
	Envoy__Service__Health__V3__EndpointHealth **ehp = km_calloc(n + 1, sizeof(*ehp));
	for (size_t i = 0; i < n; i++) {
		envoy__service__health__v3__endpoint_health__init(&eh[i]);
		eh[i].health_status = ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY;
		ehp[i] = &eh[i];
		envoy__service__health__v3__locality_endpoints_health__init(&leh[i]);
		leh[i].n_endpoints_health = 1;
		leh[i].endpoints_health = &ehp[i];
		lehp[i] = &leh[i];
		envoy__service__health__v3__cluster_endpoints_health__init(&ceh[i]);
		ceh[i].cluster_name = spec->cluster_health_checks[i]->cluster_name;
		ceh[i].n_locality_endpoints_health = 1;
		ceh[i].locality_endpoints_health = &lehp[i];
		cehp[i] = &ceh[i];
	}
	Envoy__Service__Health__V3__EndpointHealthResponse resp = ENVOY__SERVICE__HEALTH__V3__ENDPOINT_HEALTH_RESPONSE__INIT;
	resp.n_cluster_endpoints_health = n;
	resp.cluster_endpoints_health = cehp;
	Envoy__Service__Health__V3__HealthCheckRequestOrEndpointHealthResponse m =
	    ENVOY__SERVICE__HEALTH__V3__HEALTH_CHECK_REQUEST_OR_ENDPOINT_HEALTH_RESPONSE__INIT;
	m.request_type_case =
	    ENVOY__SERVICE__HEALTH__V3__HEALTH_CHECK_REQUEST_OR_ENDPOINT_HEALTH_RESPONSE__REQUEST_TYPE_ENDPOINT_HEALTH_RESPONSE;
	m.endpoint_health_response = &resp;
	km_buf_reset(&p->report);
	hds_frame(&p->report, &m.base);
	uint64_t ms = spec->interval ? (uint64_t)spec->interval->seconds * 1000 + (uint64_t)spec->interval->nanos / 1000000 : 0;
	p->hds_interval_ms = ms ? ms : 5000;
	km_loop_timer_start(B.loop, &p->hds_timer, p->hds_interval_ms, on_hds_timer, p);
	free(ceh);
	free(cehp);
	free(leh);
	free(lehp);
	free(eh);
	free(ehp);
	envoy__service__health__v3__health_check_specifier__free_unpacked(spec, NULL);
}

static void on_hds_data(struct proxy *p, const uint8_t *data, size_t len)
{
	km_buf_append(&p->hin, data, len);
	size_t off = 0;
	while (p->hin.len - off >= 5) {
		const uint8_t *h = (const uint8_t *)p->hin.data + off;
		size_t mlen = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
		if (p->hin.len - off - 5 < mlen)
			break;
		on_hds_specifier(p, h + 5, mlen);
		off += 5 + mlen;
	}
	if (off) {
		memmove(p->hin.data, p->hin.data + off, p->hin.len - off);
		p->hin.len -= off;
	}
}

static ssize_t hds_body_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			     nghttp2_data_source *src, void *user)
{
	struct proxy *p = src->ptr;
	size_t avail = p->hbody.len - p->hbody_off;
	if (!avail) {
		p->hdeferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	size_t n = avail < len ? avail : len;
	memcpy(buf, p->hbody.data + p->hbody_off, n);
	p->hbody_off += n;
	if (p->hbody_off == p->hbody.len) {
		km_buf_reset(&p->hbody);
		p->hbody_off = 0;
	}
	return (ssize_t)n;
}

static int start_h2(struct proxy *p)
{
	nghttp2_session_callbacks *cb;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_client_new(&p->h2, cb, p);
	nghttp2_session_callbacks_del(cb);
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 10},
				       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
	nghttp2_submit_settings(p->h2, NGHTTP2_FLAG_NONE, iv, 2);
	nghttp2_session_set_local_window_size(p->h2, NGHTTP2_FLAG_NONE, 0, 4 << 20);
	char authority[64], auth[4200];
	snprintf(authority, sizeof(authority), "%s:%d", B.host, B.port);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
	nghttp2_nv hdrs[8] = {NV(":method", "POST"),
			      NV(":scheme", "https"),
			      NV(":authority", authority),
			      NV(":path", ADS_PATH),
			      NV("content-type", "application/grpc"),
			      NV("te", "trailers"),
			      NV("user-agent", "xds-load")};
	size_t nh = 7;
	if (B.token) {
		snprintf(auth, sizeof(auth), "Bearer %s", B.token);
		hdrs[nh++] = (nghttp2_nv)NV("authorization", auth);
	}
#undef NV
	if (send_first(p))
		return -1;
	nghttp2_data_provider dp = {.source.ptr = p, .read_callback = body_read};
	p->sid = nghttp2_submit_request(p->h2, NULL, hdrs, nh, &dp, p);
	if (p->sid < 0)
		return -1;
	if (B.hds_idle_s) {
		/* the request naming the node, as Envoy opens it */
		char id[96];
		snprintf(id, sizeof(id), "%s.dp-%d", B.mesh, p->idx);
		Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
		node.id = id;
		Envoy__Service__Health__V3__HealthCheckRequest req = ENVOY__SERVICE__HEALTH__V3__HEALTH_CHECK_REQUEST__INIT;
		req.node = &node;
		Envoy__Service__Health__V3__HealthCheckRequestOrEndpointHealthResponse m =
		    ENVOY__SERVICE__HEALTH__V3__HEALTH_CHECK_REQUEST_OR_ENDPOINT_HEALTH_RESPONSE__INIT;
		m.request_type_case =
		    ENVOY__SERVICE__HEALTH__V3__HEALTH_CHECK_REQUEST_OR_ENDPOINT_HEALTH_RESPONSE__REQUEST_TYPE_HEALTH_CHECK_REQUEST;
		m.health_check_request = &req;
		hds_frame(&p->hbody, &m.base);
		hdrs[3] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)HDS_PATH, 5, strlen(HDS_PATH), NGHTTP2_NV_FLAG_NONE};
		nghttp2_data_provider hdp = {.source.ptr = p, .read_callback = hds_body_read};
		p->hds_sid = nghttp2_submit_request(p->h2, NULL, hdrs, nh, &hdp, p);
		if (p->hds_sid < 0)
			p->hds_sid = 0;
	}
	return 0;
}

/* ---- connection and TLS ---- */

static void on_io(struct km_loop *loop, int fd, unsigned events, void *ctx);
static void connect_more(void);

static void watch(struct proxy *p, unsigned ev)
{
	if (p->watching == ev)
		return;
	p->watching = ev;
	km_loop_watch(B.loop, p->fd, ev, on_io, p);
}

static void proxy_kill(struct proxy *p, const char *why)
{
	if (p->state == P_DEAD)
		return;
	if (p->state != P_UP)
		B.inflight--;
	else
		B.up--;
	fprintf(stderr, "xds_load: dp-%d: %s\n", p->idx, why);
	p->state = P_DEAD;
	B.dead++;
	if (p->fd >= 0) {
		km_loop_unwatch(B.loop, p->fd);
		close(p->fd);
		p->fd = -1;
	}
	/* the SSL and nghttp2 objects may be on the stack of a callback: freed at exit */
}

static void flush(struct proxy *p)
{
	if (p->state != P_UP)
		return;
	for (;;) {
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(p->h2, &d);
		if (n < 0) {
			proxy_kill(p, nghttp2_strerror((int)n));
			return;
		}
		if (n == 0)
			break;
		km_buf_append(&p->wire, d, (size_t)n);
	}
	while (p->wire_off < p->wire.len) {
		int n = SSL_write(p->ssl, p->wire.data + p->wire_off, (int)(p->wire.len - p->wire_off));
		if (n <= 0) {
			int e = SSL_get_error(p->ssl, n);
			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
				break;
			proxy_kill(p, "TLS write failed");
			return;
		}
		p->wire_off += (size_t)n;
	}
	if (p->wire_off == p->wire.len) {
		km_buf_reset(&p->wire);
		p->wire_off = 0;
	}
	watch(p, KM_EV_READ | (p->wire.len ? KM_EV_WRITE : 0));
}

static void pump_read(struct proxy *p)
{
	uint8_t buf[32768];
	for (;;) {
		int n = SSL_read(p->ssl, buf, sizeof(buf));
		if (n <= 0) {
			int e = SSL_get_error(p->ssl, n);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			proxy_kill(p, e == SSL_ERROR_ZERO_RETURN ? "connection closed by kuma-cp" : "TLS read failed");
			return;
		}
		ssize_t rv = nghttp2_session_mem_recv(p->h2, buf, (size_t)n);
		if (rv < 0) {
			proxy_kill(p, nghttp2_strerror((int)rv));
			return;
		}
		if (p->state != P_UP)
			return;
	}
}

static void handshake(struct proxy *p)
{
	int rc = SSL_connect(p->ssl);
	if (rc != 1) {
		int e = SSL_get_error(p->ssl, rc);
		if (e == SSL_ERROR_WANT_READ) {
			watch(p, KM_EV_READ);
			return;
		}
		if (e == SSL_ERROR_WANT_WRITE) {
			watch(p, KM_EV_WRITE);
			return;
		}
		char why[300];
		snprintf(why, sizeof(why), "TLS handshake failed: %s", ERR_error_string(ERR_get_error(), NULL));
		proxy_kill(p, why);
		return;
	}
	const unsigned char *alpn;
	unsigned alen;
	SSL_get0_alpn_selected(p->ssl, &alpn, &alen);
	if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
		proxy_kill(p, "the dp-server did not select ALPN h2");
		return;
	}
	p->state = P_UP;
	B.inflight--;
	B.up++;
	if (start_h2(p)) {
		proxy_kill(p, "cannot start the ADS stream");
		return;
	}
	flush(p);
	connect_more();
}

static void on_io(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	struct proxy *p = ctx;
	if (p->state == P_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			char why[100];
			snprintf(why, sizeof(why), "connect: %s", strerror(err));
			proxy_kill(p, why);
			connect_more();
			return;
		}
		p->state = P_TLS;
	}
	if (p->state == P_TLS) {
		handshake(p);
		if (p->state == P_DEAD)
			connect_more();
		return;
	}
	if (p->state != P_UP)
		return;
	pump_read(p);
	flush(p);
}

static void proxy_connect(struct proxy *p)
{
	p->t_start_us = now_us();
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		p->state = P_DEAD;
		B.dead++;
		fprintf(stderr, "xds_load: dp-%d: socket: %s\n", p->idx, strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)B.port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	p->state = P_CONNECTING;
	B.inflight++;
	if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		char why[100];
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		proxy_kill(p, why);
		return;
	}
	p->ssl = SSL_new(B.tls);
	SSL_set_fd(p->ssl, p->fd);
	SSL_set_tlsext_host_name(p->ssl, "localhost");
	SSL_set_mode(p->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				 SSL_MODE_RELEASE_BUFFERS);
	watch(p, KM_EV_WRITE);
}

static bool connecting = true; /* false once the connect phase is over */

static void connect_more(void)
{
	while (connecting && B.inflight < B.max_inflight && B.next_connect < B.n)
		proxy_connect(&B.px[B.next_connect++]);
}

/* ---- running the loop until a condition ---- */

static long cp_rss_kib(void);
static uint64_t last_progress_us;

static void on_tick(struct km_loop *loop, void *ctx)
{
	struct bench *b = ctx;
	if (connecting)
		connect_more();
	uint64_t t = now_us();
	if (t - last_progress_us >= 10000000) {
		last_progress_us = t;
		fprintf(stderr, "xds_load: t=%.1fs connected=%d complete=%d dead=%d responses=%llu cp_rss_kib=%ld\n",
			sec(t - b->t0_us), b->up, b->complete, b->dead, (unsigned long long)b->responses, cp_rss_kib());
	}
	if (b->until(b)) {
		km_loop_stop(loop);
		return;
	}
	if (now_us() >= b->deadline_us) {
		b->timed_out = true;
		km_loop_stop(loop);
		return;
	}
	km_loop_timer_start(loop, &b->tick, 5, on_tick, b);
}

static bool run_until(bool (*cond)(struct bench *b), double timeout_s)
{
	B.until = cond;
	B.timed_out = false;
	B.deadline_us = now_us() + (uint64_t)(timeout_s * 1e6);
	km_loop_timer_start(B.loop, &B.tick, 1, on_tick, &B);
	km_loop_run(B.loop);
	return !B.timed_out;
}

static bool all_complete(struct bench *b)
{
	return b->complete + b->dead >= b->n && b->next_connect >= b->n;
}

static uint64_t settle_us = 2000000;

#define GEN_BUCKETS 32
/* A histogram of kuma-cp's /metrics: upper bounds (s) and cumulative counts. */
struct hist {
	double le[GEN_BUCKETS], cum[GEN_BUCKETS];
	int n;
};

struct counters {
	double gens, noop, sent, resources, acks, nacks, shared, encoded, reused;
	/* the controllers' passes on kuma-cp's loop: count and wall seconds */
	double gen_passes, gen_pass_s, resyncs, resync_s;
	/* kuma-cp's xds_generation_seconds and xds_certificate_issue_seconds
	 * histograms */
	struct hist gen, issue;
	bool ok;
};

static struct counters read_counters(void);
static double sent_base;       /* kuma-cp's responses_sent_total before we connected */
static double settle_gens = -1; /* generations counter last seen, and since when */
static uint64_t settle_gens_us, settle_fetch_us;
/* --min-phase: a phase lasts at least this long, and (with --cp-pid) ends
 * only once kuma-cp's CPU time has moved less than CPU_QUIET_S over
 * CPU_QUIET_US: what a change causes later (the DataplaneInsight flushes
 * of its ACK counters, dpServer's status flush interval after it) counts
 * in its own phase, not in the next one */
static uint64_t min_phase_us;
static double settle_cpu = -1;
static uint64_t settle_cpu_us, settle_cpu_read_us;
#define CPU_QUIET_S  0.02
#define CPU_QUIET_US 500000

static double cp_cpu_s(void);

/* Quiet for the settle time, and (with --metrics) kuma-cp agrees: every
 * response it sent has arrived, and its generation counter has not moved for
 * half the settle time. kuma-cp flushes its sockets only between passes, so
 * a pass longer than the settle time would otherwise look like silence. */
static bool settled(struct bench *b)
{
	uint64_t now = now_us();
	uint64_t last = b->ph_last_rx_us > b->ph_start_us ? b->ph_last_rx_us : b->ph_start_us;
	if (now - b->ph_start_us < settle_us || now - last < settle_us || now - b->ph_start_us < min_phase_us)
		return false;
	if (min_phase_us && b->cp_pid) {
		if (now - settle_cpu_read_us < 100000)
			return false; /* /proc read at most ten times a second */
		settle_cpu_read_us = now;
		double cpu = cp_cpu_s();
		if (settle_cpu < 0 || cpu - settle_cpu >= CPU_QUIET_S) {
			settle_cpu = cpu;
			settle_cpu_us = now;
		}
		if (now - settle_cpu_us < CPU_QUIET_US)
			return false;
	}
	if (!b->metrics_url)
		return true;
	if (now - settle_fetch_us < 200000)
		return false;
	struct counters c = read_counters();
	settle_fetch_us = now = now_us();
	if (!c.ok)
		return true;
	if (c.gens != settle_gens) {
		settle_gens = c.gens;
		settle_gens_us = now;
		return false;
	}
	return now - settle_gens_us >= settle_us / 2 && c.sent - sent_base == (double)b->responses;
}

static void settle_reset(void)
{
	settle_gens = -1;
	settle_fetch_us = 0;
	settle_cpu = -1;
}

static bool never(struct bench *b)
{
	return false;
}

/* ---- kuma-cp observations ---- */

static long cp_rss_kib(void)
{
	if (!B.cp_pid)
		return -1;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", B.cp_pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static long self_rss_kib(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* utime + stime of kuma-cp, in seconds. */
static double cp_cpu_s(void)
{
	if (!B.cp_pid)
		return -1;
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", B.cp_pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* fields after ")": state(3) ... utime(14) stime(15) */
	unsigned long long ut = 0, st = 0;
	int field = 2;
	for (char *tok = p + 1; *tok && field < 15;) {
		while (*tok == ' ')
			tok++;
		field++;
		if (field == 14)
			ut = strtoull(tok, NULL, 10);
		if (field == 15)
			st = strtoull(tok, NULL, 10);
		while (*tok && *tok != ' ')
			tok++;
	}
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static size_t curl_sink(char *ptr, size_t size, size_t n, void *ud)
{
	km_buf_append(ud, ptr, size * n);
	return size * n;
}

/* The labels kuma-cp adds to every sample ({zone="..."}, as upstream's
 * registry does) skipped: the first sample of <name>. */
static double metric(const char *text, const char *name)
{
	size_t nl = strlen(name);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, name, nl) != 0 || (l[nl] != ' ' && l[nl] != '{'))
			continue;
		const char *v = l + nl;
		if (*v == '{')
			v = strstr(v, "} ");
		if (v)
			return strtod(v + (*v == '}' ? 2 : 1), NULL);
	}
	return -1;
}

static void read_hist(const char *text, const char *name, struct hist *h)
{
	char bucket[128];
	int bl = snprintf(bucket, sizeof(bucket), "%s_bucket{", name);
	h->n = 0;
	for (const char *l = text; l && *l && h->n < GEN_BUCKETS; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, bucket, (size_t)bl) != 0)
			continue;
		const char *v = strstr(l + bl, "le=\"");
		const char *eol = strchr(l, '\n');
		if (!v || (eol && v > eol))
			continue;
		v += 4;
		h->le[h->n] = strncmp(v, "+Inf", 4) == 0 ? 1e9 : strtod(v, NULL);
		const char *sp = strchr(v, ' ');
		h->cum[h->n++] = sp ? strtod(sp + 1, NULL) : 0;
	}
}

static struct counters read_counters(void)
{
	struct counters c = {0};
	if (!B.metrics_url)
		return c;
	struct km_buf out = KM_BUF_INIT;
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, B.metrics_url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	if (curl_easy_perform(h) == CURLE_OK) {
		const char *t = km_buf_cstr(&out);
		c.gens = metric(t, "xds_generations_total");
		c.noop = metric(t, "xds_generations_noop_total");
		c.sent = metric(t, "xds_responses_sent_total");
		c.resources = metric(t, "xds_resources_sent_total");
		c.acks = metric(t, "xds_acks_total");
		c.nacks = metric(t, "xds_nacks_total");
		c.shared = metric(t, "xds_resources_shared_total");
		c.reused = metric(t, "xds_resources_reused_total");
		c.encoded = metric(t, "xds_resources_encoded_total");
		c.gen_passes = metric(t, "meshservice_generator_passes_total");
		c.gen_pass_s = metric(t, "meshservice_generator_pass_seconds_total");
		c.resyncs = metric(t, "mesh_insight_resyncs_total");
		c.resync_s = metric(t, "mesh_insight_resync_seconds_total");
		read_hist(t, "xds_generation_seconds", &c.gen);
		read_hist(t, "xds_certificate_issue_seconds", &c.issue);
		c.ok = true;
	}
	curl_easy_cleanup(h);
	km_buf_fini(&out);
	return c;
}

/* The <q>th percentile (µs) of what a histogram counted between two reads
 * of it, interpolated within its bucket; -1 without any. */
static double hist_pct(const struct hist *h0, const struct hist *h1, double q)
{
	if (!h1->n || h1->n != h0->n)
		return -1;
	double total = h1->cum[h1->n - 1] - h0->cum[h0->n - 1];
	if (total <= 0)
		return -1;
	double want = total * q / 100.0, prev = 0, lo = 0;
	for (int b = 0; b < h1->n; b++) {
		double cum = h1->cum[b] - h0->cum[b];
		if (cum >= want) {
			double hi = h1->le[b] >= 1e9 ? lo * 2 : h1->le[b];
			double in = cum - prev;
			return (lo + (hi - lo) * (in > 0 ? (want - prev) / in : 1)) * 1e6;
		}
		prev = cum;
		lo = h1->le[b];
	}
	return lo * 1e6;
}

/* Of the generations (certificate signing apart, see issue_pct). */
static double gen_pct(const struct counters *c0, const struct counters *c1, double q)
{
	return c1->ok ? hist_pct(&c0->gen, &c1->gen, q) : -1;
}

/* Of the certificates signed for the proxies' builds. */
static double issue_pct(const struct counters *c0, const struct counters *c1, double q)
{
	return c1->ok ? hist_pct(&c0->issue, &c1->issue, q) : -1;
}

/* ---- triggers ---- */

static int api_put(const char *path, const char *body)
{
	char url[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", B.api_port, path);
	struct km_buf out = KM_BUF_INIT;
	CURL *h = curl_easy_init();
	struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	long code = 0;
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	int ret = 0;
	if (rc != CURLE_OK || (code != 200 && code != 201)) {
		fprintf(stderr, "xds_load: PUT %s: %s HTTP %ld %s\n", path, curl_easy_strerror(rc), code,
			km_buf_cstr(&out));
		ret = -1;
	}
	km_buf_fini(&out);
	return ret;
}

static int put_dataplane(const char *name, int i, int s, const char *protocol)
{
	struct km_buf body = KM_BUF_INIT;
	dataplane_json(&B, &body, name, i, s, protocol);
	char path[128];
	snprintf(path, sizeof(path), "/meshes/%s/dataplanes/%s", B.mesh, name);
	int rc = api_put(path, km_buf_cstr(&body));
	km_buf_fini(&body);
	return rc;
}

static int extra_seq;
static int extra_svc0[64]; /* extra instances of svc-0, by sequence number */
static int nextra_svc0;

/* One more instance of a service on the ring, half way round: only its
 * consumers (the services just before it) see an EDS update. */
static int trig_endpoint(void)
{
	int s = B.topo.nsvc / 2;
	char name[48];
	snprintf(name, sizeof(name), "dp-extra-%d", ++extra_seq);
	return put_dataplane(name, B.n + extra_seq, s, protocol_of(s));
}

/* One more instance of svc-0, which every other service calls: EDS to all. */
static int trig_endpoint_all(void)
{
	char name[48];
	snprintf(name, sizeof(name), "dp-extra-%d", ++extra_seq);
	if (nextra_svc0 < 64)
		extra_svc0[nextra_svc0++] = extra_seq;
	return put_dataplane(name, B.n + extra_seq, 0, protocol_of(0));
}

/* svc-0's port protocol flips (http <-> tcp) on all its instances: every
 * consumer gets a new cluster and listener (CDS + LDS), as a policy would. */
static int trig_every(void)
{
	svc0_protocol = strcmp(svc0_protocol, "http") == 0 ? "tcp" : "http";
	for (int k = 0; k < B.topo.svc_count[0]; k++) {
		char name[32];
		int i = B.topo.svc_first[0] + k;
		snprintf(name, sizeof(name), "dp-%d", i);
		if (put_dataplane(name, i, 0, svc0_protocol))
			return -1;
	}
	for (int k = 0; k < nextra_svc0; k++) {
		/* the extra svc-0 instances too, so the MeshService ports agree */
		char name[48];
		snprintf(name, sizeof(name), "dp-extra-%d", extra_svc0[k]);
		if (put_dataplane(name, B.n + extra_svc0[k], 0, svc0_protocol))
			return -1;
	}
	return 0;
}

/* PUTs the MeshTimeout <name> with top-level targetRef <target> (JSON)
 * and, to every destination, <conf> (JSON). */
static int put_timeout(const char *name, const char *target, const char *conf)
{
	char path[128], body[768];
	snprintf(path, sizeof(path), "/meshes/%s/meshtimeouts/%s", B.mesh, name);
	snprintf(body, sizeof(body),
		 "{\"type\":\"MeshTimeout\",\"mesh\":\"%s\",\"name\":\"%s\",\"spec\":{\"targetRef\":%s,"
		 "\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":%s}]}}",
		 B.mesh, name, target, conf);
	return api_put(path, body);
}

/* A Mesh-wide MeshTimeout: in upstream Kuma this changes every proxy. */
static int trig_policy(void)
{
	return put_timeout("bench-timeout", "{\"kind\":\"Mesh\"}",
			   "{\"connectionTimeout\":\"7s\",\"idleTimeout\":\"1800s\"}");
}

/* A MeshTimeout for the proxies of one service (svc-7, 2-4 instances): a
 * policy change that must reach those and nobody else. Listed again in the
 * triggers, it changes the timeout again (9s, 10s, ...). */
static int trig_policy_one(void)
{
	static int times;
	char target[128], conf[64];
	snprintf(target, sizeof(target), "{\"kind\":\"Dataplane\",\"labels\":{\"kuma.io/workload\":\"svc-%d\"}}",
		 B.topo.nsvc > 7 ? 7 : B.topo.nsvc - 1);
	snprintf(conf, sizeof(conf), "{\"connectionTimeout\":\"%ds\"}", 9 + times++);
	return put_timeout("bench-timeout-one", target, conf);
}

/* A Bundled MeshIdentity with an autogenerated CA selecting every proxy:
 * each gets its certificate and trust bundle (SDS) and mesh TLS on its
 * clusters and listeners; the phase ends at the last ACK. */
static int trig_identity(void)
{
	char path[128];
	snprintf(path, sizeof(path), "/meshes/%s/meshidentities/bench-identity", B.mesh);
	char body[1024];
	snprintf(body, sizeof(body),
		 "{\"type\":\"MeshIdentity\",\"mesh\":\"%s\",\"name\":\"bench-identity\",\"spec\":{"
		 "\"selector\":{\"dataplane\":{\"matchLabels\":{}}},\"spiffeID\":{\"trustDomain\":"
		 "\"{{ .Mesh }}.{{ .Zone }}.mesh.local\",\"path\":\"/workload/{{ .Workload }}\"},"
		 "\"provider\":{\"type\":\"Bundled\",\"bundled\":{\"meshTrustCreation\":\"Enabled\","
		 "\"insecureAllowSelfSigned\":true,\"autogenerate\":{\"enabled\":true},"
		 "\"certificateParameters\":{\"expiry\":\"24h\"}}}}}",
		 B.mesh);
	return api_put(path, body);
}

static int api_get(const char *path, struct km_buf *out)
{
	char url[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", B.api_port, path);
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	long code = 0;
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	return rc == CURLE_OK && code == 200 ? 0 : -1;
}

/* --mtls: the identity of trig_identity, Ready before the first proxy
 * connects, so every proxy's first configuration carries its certificate. */
static int start_with_identity(double timeout_s)
{
	if (!B.api_port) {
		fprintf(stderr, "xds_load: --mtls needs --api\n");
		return -1;
	}
	if (trig_identity())
		return -1;
	/* with mTLS, permissions apply: a mesh-wide allow, as a mesh that
	 * enables zero trust would have (an RBAC filter on every inbound) */
	char path[128], mtp[512];
	snprintf(path, sizeof(path), "/meshes/%s/meshtrafficpermissions/allow-all", B.mesh);
	snprintf(mtp, sizeof(mtp),
		 "{\"type\":\"MeshTrafficPermission\",\"mesh\":\"%s\",\"name\":\"allow-all\",\"spec\":{"
		 "\"targetRef\":{\"kind\":\"Mesh\"},\"rules\":[{\"default\":{\"allow\":[{\"spiffeID\":"
		 "{\"type\":\"Prefix\",\"value\":\"spiffe://%s.\"}}]}}]}}",
		 B.mesh, B.mesh);
	if (api_put(path, mtp))
		return -1;
	snprintf(path, sizeof(path), "/meshes/%s/meshidentities/bench-identity", B.mesh);
	for (uint64_t t0 = now_us(); now_us() - t0 < (uint64_t)(timeout_s * 1e6);) {
		struct km_buf body = KM_BUF_INIT;
		struct km_arena *a = km_arena_new(0);
		struct km_json *doc = NULL;
		bool ready = false;
		if (api_get(path, &body) == 0 && km_json_parse(a, body.data, body.len, &doc, NULL) == 0) {
			struct km_json *conds = km_json_get(km_json_get(doc, "status"), "conditions");
			for (size_t i = 0; conds && conds->kind == KM_JSON_ARRAY && i < conds->len; i++)
				ready |= km_str_eqc(km_json_get_string(conds->items[i], "type"), "Ready") &&
					 km_str_eqc(km_json_get_string(conds->items[i], "status"), "True");
		}
		km_arena_free(a);
		km_buf_fini(&body);
		if (ready) {
			printf("xds_load: MeshIdentity bench-identity is Ready\n");
			return 0;
		}
		usleep(100000);
	}
	fprintf(stderr, "xds_load: MeshIdentity bench-identity not Ready in time\n");
	return -1;
}

/* The same Dataplane again, byte for byte: must cause no push at all. */
static int trig_noop(void)
{
	int i = B.n - 1, s = B.topo.svc_of[i];
	char name[32];
	snprintf(name, sizeof(name), "dp-%d", i);
	return put_dataplane(name, i, s, protocol_of(s));
}

static const char *shell_cmd;

static int trig_shell(void)
{
	pid_t pid;
	char *argv[] = {"/bin/sh", "-c", (char *)shell_cmd, NULL};
	if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0)
		return -1;
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "xds_load: trigger command failed: %s\n", shell_cmd);
		return -1;
	}
	return 0;
}

/* Runs one write, waits until nothing has arrived for the settle time, and
 * prints the write-to-last-ACK latency over the proxies that got anything. */
static int measure(const char *label, int (*fn)(void), double timeout_s)
{
	struct bench *b = &B;
	for (int i = 0; i < b->n; i++) {
		b->px[i].ph_responses = b->px[i].ph_resources = 0;
		b->px[i].ph_last_ack_us = 0;
		b->px[i].ph_secret_us = 0;
	}
	struct counters c0 = read_counters();
	double cpu0 = cp_cpu_s();
	b->ph_responses = b->ph_resources = 0;
	b->ph_last_rx_us = 0;
	b->in_phase = true;
	settle_reset();
	b->ph_start_us = now_us();
	int rc = fn();
	uint64_t put_us = now_us() - b->ph_start_us;
	bool ok = run_until(settled, timeout_s);
	b->in_phase = false;
	double cpu1 = cp_cpu_s();
	struct counters c1 = read_counters();
	uint64_t *lat = km_calloc((size_t)b->n + 1, sizeof(uint64_t));
	size_t nl = 0;
	for (int i = 0; i < b->n; i++)
		if (b->px[i].ph_responses)
			lat[nl++] = b->px[i].ph_last_ack_us - b->ph_start_us;
	qsort(lat, nl, sizeof(*lat), cmp_u64);
	/* the first certificate (or trust bundle) each proxy received */
	uint64_t *sec_lat = km_calloc((size_t)b->n + 1, sizeof(uint64_t));
	size_t ns = 0;
	for (int i = 0; i < b->n; i++)
		if (b->px[i].ph_secret_us)
			sec_lat[ns++] = b->px[i].ph_secret_us - b->ph_start_us;
	qsort(sec_lat, ns, sizeof(*sec_lat), cmp_u64);
	double gens = c1.gens - c0.gens, cpu = cpu1 - cpu0;
	printf("RESULT phase=%s write_ok=%d settled=%d write_ms=%.2f proxies_updated=%zu responses=%llu "
	       "resources=%llu p50_ms=%.1f p99_ms=%.1f max_ms=%.1f cp_cpu_s=%.3f generations=%.0f "
	       "generations_noop=%.0f responses_sent=%.0f us_per_generation=%.1f secret_proxies=%zu "
	       "secret_p50_ms=%.1f secret_p99_ms=%.1f secret_max_ms=%.1f gen_p50_us=%.1f gen_p99_us=%.1f "
	       "resources_shared=%.0f resources_encoded=%.0f resources_reused=%.0f generator_passes=%.0f "
	       "generator_ms=%.1f insight_resyncs=%.0f insight_resync_ms=%.1f issue_p50_us=%.1f issue_p99_us=%.1f\n",
	       label, rc == 0, ok, (double)put_us / 1000.0, nl, (unsigned long long)b->ph_responses,
	       (unsigned long long)b->ph_resources, pct(lat, nl, 50), pct(lat, nl, 99), pct(lat, nl, 100),
	       cpu, c1.ok ? gens : -1, c1.ok ? c1.noop - c0.noop : -1, c1.ok ? c1.sent - c0.sent : -1,
	       gens > 0 ? cpu * 1e6 / gens : -1, ns, pct(sec_lat, ns, 50), pct(sec_lat, ns, 99),
	       pct(sec_lat, ns, 100), gen_pct(&c0, &c1, 50), gen_pct(&c0, &c1, 99),
	       c1.ok ? c1.shared - c0.shared : -1, c1.ok ? c1.encoded - c0.encoded : -1,
	       c1.ok ? c1.reused - c0.reused : -1, c1.ok ? c1.gen_passes - c0.gen_passes : -1,
	       c1.ok ? (c1.gen_pass_s - c0.gen_pass_s) * 1e3 : -1, c1.ok ? c1.resyncs - c0.resyncs : -1,
	       c1.ok ? (c1.resync_s - c0.resync_s) * 1e3 : -1, issue_pct(&c0, &c1, 50), issue_pct(&c0, &c1, 99));
	fflush(stdout);
	free(lat);
	free(sec_lat);
	return rc;
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: xds_load --port DP_SERVER_PORT --ca CA_PEM [-n N] [--mesh M] [--token T]\n"
		"         [--api API_PORT] [--builtin LIST] [--trigger LABEL=SHELL_CMD]... [--cp-pid PID]\n"
		"         [--metrics URL] [--inflight K] [--timeout S] [--settle MS] [--min-phase MS] [--hold S]\n"
		"         [--mtls] [--hds-idle SECONDS]\n"
		"  --min-phase a change's phase lasts at least MS, then ends once kuma-cp's CPU is\n"
		"              quiet (with --cp-pid): set it past dpServer's status flush interval\n"
		"              so that a change's DataplaneInsight writes count in its phase\n"
		"  --mtls      create a MeshIdentity (every proxy) and a mesh-wide allow\n"
		"              MeshTrafficPermission first and wait until the identity is Ready;\n"
		"              a stream is complete once it also holds its certificate (SDS)\n"
		"  --builtin   comma list of endpoint,endpoint-all,every,policy,policy-one,noop,identity\n"
		"              (PUTs to --api)\n"
		"  prints RESULT lines (key=value) for the connect phase and each trigger\n");
}

int main(int argc, char **argv)
{
	struct bench *b = &B;
	b->n = 100;
	b->mesh = "default";
	b->host = "localhost";
	b->max_inflight = 256;
	const char *ca = NULL, *builtin = NULL;
	char *triggers[32];
	int ntrig = 0;
	double timeout_s = 300, hold_s = 0;
	static const struct option opts[] = {
	    {"port", 1, NULL, 'p'},    {"ca", 1, NULL, 'c'},      {"n", 1, NULL, 'n'},
	    {"mesh", 1, NULL, 'm'},    {"token", 1, NULL, 'k'},   {"api", 1, NULL, 'a'},
	    {"builtin", 1, NULL, 'b'}, {"trigger", 1, NULL, 't'}, {"cp-pid", 1, NULL, 'P'},
	    {"metrics", 1, NULL, 'M'}, {"inflight", 1, NULL, 'i'}, {"timeout", 1, NULL, 'T'},
	    {"settle", 1, NULL, 's'},  {"hold", 1, NULL, 'H'},    {"help", 0, NULL, 'h'},
	    {"mtls", 0, NULL, 'L'},    {"min-phase", 1, NULL, 'Q'},    {"hds-idle", 1, NULL, 'D'},
	    {NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (o) {
		case 'p': b->port = (int)strtol(optarg, NULL, 10); break;
		case 'c': ca = optarg; break;
		case 'n': b->n = (int)strtol(optarg, NULL, 10); break;
		case 'm': b->mesh = optarg; break;
		case 'k': b->token = optarg; break;
		case 'a': b->api_port = (int)strtol(optarg, NULL, 10); break;
		case 'b': builtin = optarg; break;
		case 't':
			if (ntrig < 32)
				triggers[ntrig++] = optarg;
			break;
		case 'P': b->cp_pid = (int)strtol(optarg, NULL, 10); break;
		case 'M': b->metrics_url = optarg; break;
		case 'i': b->max_inflight = (int)strtol(optarg, NULL, 10); break;
		case 'T': timeout_s = strtod(optarg, NULL); break;
		case 's': settle_us = (uint64_t)(strtod(optarg, NULL) * 1000.0); break;
		case 'H': hold_s = strtod(optarg, NULL); break;
		case 'L': b->mtls = true; break;
		case 'D': b->hds_idle_s = (int)strtol(optarg, NULL, 10); break;
		case 'Q': min_phase_us = (uint64_t)(strtod(optarg, NULL) * 1000.0); break;
		default: usage(); return o == 'h' ? 0 : 2;
		}
	}
	if (!b->port || b->n < 1 || b->max_inflight < 1) {
		usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	b->tls = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_alpn_protos(b->tls, (const unsigned char *)"\x02h2", 3);
	if (ca) {
		if (SSL_CTX_load_verify_locations(b->tls, ca, NULL) != 1) {
			fprintf(stderr, "xds_load: cannot load CA %s\n", ca);
			return 1;
		}
		SSL_CTX_set_verify(b->tls, SSL_VERIFY_PEER, NULL);
	}
	topology_build(&b->topo, b->n);
	b->loop = km_loop_new();
	b->px = km_calloc((size_t)b->n, sizeof(*b->px));
	for (int i = 0; i < b->n; i++) {
		b->px[i].idx = i;
		b->px[i].fd = -1;
	}
	printf("xds_load: %d dataplanes in %d services (2-4 instances), %d outbounds each, delta ADS to "
	       "127.0.0.1:%d\n",
	       b->n, b->topo.nsvc, TOPO_NOUT, b->port);
	if (b->mtls && start_with_identity(timeout_s))
		return 1;
	long rss_idle = cp_rss_kib();
	double cpu_idle = cp_cpu_s();
	struct counters c0 = read_counters();
	sent_base = c0.ok ? c0.sent : 0;
	b->t0_us = now_us();
	connect_more();
	bool ok = run_until(all_complete, timeout_s);
	uint64_t t_all = now_us() - b->t0_us;
	connecting = false; /* a timed-out run measures what it has */
	/* wait for the follow-up writes (insights, MeshService status) to calm
	 * down; after a timeout, for a minute at most */
	b->ph_start_us = now_us();
	b->ph_last_rx_us = 0;
	b->in_phase = true;
	settle_reset();
	uint64_t before = b->responses;
	run_until(settled, ok ? timeout_s : 60);
	b->in_phase = false;
	long rss_conn = cp_rss_kib();
	double cpu_conn = cp_cpu_s();
	struct counters c1 = read_counters();
	uint64_t *lat = km_calloc((size_t)b->n + 1, sizeof(uint64_t));
	size_t nl = 0;
	for (int i = 0; i < b->n; i++)
		if (b->px[i].complete)
			lat[nl++] = b->px[i].t_complete_us - b->px[i].t_start_us;
	qsort(lat, nl, sizeof(*lat), cmp_u64);
	printf("RESULT phase=connect n=%d services=%d connected=%d complete=%d dead=%d all_complete=%d seconds=%.3f "
	       "responses=%llu resources=%llu settle_responses=%llu per_stream_p50_ms=%.1f per_stream_p99_ms=%.1f "
	       "per_stream_max_ms=%.1f cp_rss_idle_kib=%ld cp_rss_connected_kib=%ld cp_cpu_s=%.3f "
	       "generations=%.0f generations_noop=%.0f responses_sent=%.0f tool_rss_kib=%ld gen_p50_us=%.1f "
	       "gen_p99_us=%.1f resources_shared=%.0f resources_encoded=%.0f resources_reused=%.0f "
	       "generator_passes=%.0f generator_ms=%.1f insight_resyncs=%.0f insight_resync_ms=%.1f issue_p50_us=%.1f "
	       "issue_p99_us=%.1f\n",
	       b->n, b->topo.nsvc, b->up, b->complete, b->dead, ok && b->complete == b->n, sec(t_all),
	       (unsigned long long)b->responses, (unsigned long long)b->resources,
	       (unsigned long long)(b->responses - before), pct(lat, nl, 50), pct(lat, nl, 99),
	       pct(lat, nl, 100), rss_idle, rss_conn, cpu_conn - cpu_idle, c1.ok ? c1.gens - c0.gens : -1,
	       c1.ok ? c1.noop - c0.noop : -1, c1.ok ? c1.sent - c0.sent : -1, self_rss_kib(), gen_pct(&c0, &c1, 50),
	       gen_pct(&c0, &c1, 99), c1.ok ? c1.shared - c0.shared : -1, c1.ok ? c1.encoded - c0.encoded : -1,
	       c1.ok ? c1.reused - c0.reused : -1, c1.ok ? c1.gen_passes - c0.gen_passes : -1,
	       c1.ok ? (c1.gen_pass_s - c0.gen_pass_s) * 1e3 : -1, c1.ok ? c1.resyncs - c0.resyncs : -1,
	       c1.ok ? (c1.resync_s - c0.resync_s) * 1e3 : -1, issue_pct(&c0, &c1, 50), issue_pct(&c0, &c1, 99));
	fflush(stdout);
	free(lat);
	int rc = ok && b->complete == b->n ? 0 : 1;
	if (rc == 0 && b->hds_idle_s > 0) {
		/* every proxy reporting its health every interval, nothing else:
		 * what kuma-cp spends on it */
		int streams = 0;
		for (int i = 0; i < b->n; i++)
			streams += b->px[i].hds_sid != 0 && b->px[i].hds_interval_ms != 0;
		double cpu0 = cp_cpu_s();
		uint64_t r0 = b->hds_reports, resp0 = b->responses;
		run_until(never, b->hds_idle_s);
		double cpu1 = cp_cpu_s();
		printf("RESULT phase=hds-idle n=%d hds_streams=%d seconds=%d reports=%llu responses=%llu cp_cpu_s=%.3f\n",
		       b->n, streams, b->hds_idle_s, (unsigned long long)(b->hds_reports - r0),
		       (unsigned long long)(b->responses - resp0), cpu1 - cpu0);
		fflush(stdout);
	}
	if (rc == 0 && builtin) {
		if (!b->api_port) {
			fprintf(stderr, "xds_load: --builtin needs --api\n");
			return 2;
		}
		static const struct {
			const char *name;
			int (*fn)(void);
		} table[] = {{"endpoint", trig_endpoint}, {"endpoint-all", trig_endpoint_all},
			     {"every", trig_every},       {"policy", trig_policy},
			     {"noop", trig_noop},         {"identity", trig_identity},
			     {"policy-one", trig_policy_one}};
		char *list = km_strdup(builtin);
		for (char *s = list, *next; s && *s; s = next) {
			next = strchr(s, ',');
			if (next)
				*next++ = 0;
			size_t k = 0;
			while (k < sizeof(table) / sizeof(table[0]) && strcmp(table[k].name, s) != 0)
				k++;
			if (k == sizeof(table) / sizeof(table[0])) {
				fprintf(stderr, "xds_load: unknown built-in trigger %s\n", s);
				rc = 2;
				break;
			}
			if (measure(table[k].name, table[k].fn, timeout_s))
				rc = 1;
		}
		free(list);
	}
	for (int t = 0; rc == 0 && t < ntrig; t++) {
		char *eq = strchr(triggers[t], '=');
		if (!eq) {
			fprintf(stderr, "xds_load: --trigger wants LABEL=COMMAND\n");
			return 2;
		}
		*eq = 0;
		shell_cmd = eq + 1;
		if (measure(triggers[t], trig_shell, timeout_s))
			rc = 1;
	}
	if (builtin || ntrig) {
		/* every build of the run (connect and each phase) together */
		struct counters cend = read_counters();
		printf("RESULT phase=all generations=%.0f gen_p50_us=%.1f gen_p99_us=%.1f gen_p999_us=%.1f\n",
		       cend.ok && c0.ok ? cend.gens - c0.gens : -1, gen_pct(&c0, &cend, 50), gen_pct(&c0, &cend, 99),
		       gen_pct(&c0, &cend, 99.9));
		fflush(stdout);
	}
	if (hold_s > 0)
		run_until(never, hold_s);
	if (b->dead)
		fprintf(stderr, "xds_load: %d streams died\n", b->dead);
	for (int i = 0; i < b->n; i++) {
		struct proxy *p = &b->px[i];
		if (p->fd >= 0)
			close(p->fd);
		if (p->h2)
			nghttp2_session_del(p->h2);
		if (p->ssl)
			SSL_free(p->ssl);
		km_buf_fini(&p->body);
		km_buf_fini(&p->wire);
		km_buf_fini(&p->in);
		nset_fini(&p->cds);
		nset_fini(&p->eds_clusters);
		nset_fini(&p->eds_sub);
		nset_fini(&p->eds_have);
		nset_fini(&p->lds);
	}
	free(b->px);
	topology_free(&b->topo);
	km_loop_free(b->loop);
	SSL_CTX_free(b->tls);
	curl_global_cleanup();
	return rc;
}
