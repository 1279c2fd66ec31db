/* SPDX-License-Identifier: Apache-2.0 */
/* POST /bootstrap on the dp-server (upstream pkg/xds/bootstrap): kuma-dp
 * sends a BootstrapRequest, the control plane answers with the Envoy bootstrap
 * that points Envoy's ADS stream back at it. Parsing, the Dataplane lookup
 * and rendering are separate steps so each can be tested alone; everything
 * they produce lives in the request's arena. */
#ifndef CP_XDS_BOOTSTRAP_H
#define CP_XDS_BOOTSTRAP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"
#include "codec/json.h"
#include "cp/api/http.h"

struct cp_runtime;

/* A BootstrapRequest (upstream types/bootstrap_request.go) after decoding.
 * Strings are never NULL ("" when absent). */
struct cp_bootstrap_request {
	const char *mesh, *name, *proxy_type;
	const char *token, *token_path;   /* dataplaneToken, dataplaneTokenPath */
	const char *dp_resource;          /* dataplaneResource, verbatim */
	const char *host;                 /* HTTP Host without port (not in the JSON) */
	struct km_json *version;          /* {"kumaDp":{..},"envoy":{..}}, empty fields left out */
	const char *ca_cert;              /* PEM the proxy verifies the CP with */
	struct km_json *dynamic_metadata; /* object of strings, or NULL */
	struct km_json *otel_env;         /* otelEnv object, or NULL */
	uint32_t dns_port, readiness_port;
	bool app_probe_proxy_enabled; /* JSON key "appProbeProxyDisabled" (sic, wire compatible) */
	const char *operating_system;
	struct km_json *features; /* array of strings, request order, never NULL */
	const char *workdir, *metrics_cert_path, *metrics_key_path, *system_ca_path;
	const char *spire_socket_path;
	struct km_json *transparent_proxy; /* dataplaneConfig in its canonical shape, or NULL */
	bool transparent_proxy_enabled;    /* upstream DataplaneConfig.Enabled() */
	bool ipv6_enabled;
};

/* Decodes <body> with Go encoding/json rules (unknown keys ignored, keys
 * matched case-insensitively, null = zero value, wrong JSON types rejected).
 * Returns 0 or -KM_E_PARSE with the reason in <err> (upstream answers 400). */
int cp_bootstrap_request_parse(struct km_arena *a, struct km_str body,
			       struct cp_bootstrap_request *out, struct km_buf *err);

/* Everything the renderer needs (upstream configParameters). */
struct cp_bootstrap_params {
	const struct cp_bootstrap_request *req;
	const char *id;      /* node id "<mesh>.<name>" */
	const char *service; /* node.cluster: the kuma.io/workload label or "unknown" */
	const char *admin_address;
	uint32_t admin_port;           /* 0 = no admin section */
	const char *admin_socket_path; /* "" = TCP admin */
	const char *admin_access_log_path;
	const char *xds_host;
	uint32_t xds_port;
	int64_t xds_connect_timeout; /* nanoseconds */
	uint32_t xds_grpc_max_receive_message_bytes;
	bool hds_enabled;
	bool reloadable_tokens;        /* dpServer.authn.enableReloadableTokens */
	struct km_str ca_pem;          /* trusted CA handed to Envoy */
	const char *dns_lookup_family; /* NULL (AUTO, left out) or "V4_ONLY" */
};

/* The Envoy bootstrap as a protojson-shaped tree (upstream genConfig), or NULL
 * when <p>->id has no name after the mesh (upstream fails the same way). */
struct km_json *cp_bootstrap_config_build(struct km_arena *a, const struct cp_bootstrap_params *p);

/* Outcome of generation: status 200 with <config> and the Dataplane's
 * networking address, or the HTTP status and body text upstream answers. */
struct cp_bootstrap_result {
	int status;
	const char *body; /* error text, "" for none */
	struct km_json *config;
	const char *address;
};

/* Upstream Generate(): token presence, the SAN check of the request host,
 * the Dataplane (from <req>->dp_resource, validated, or from the store), the
 * CA check, then rendering with the settings of <rt>->cfg. <cp_ca_pem> is the
 * dp-server certificate PEM (leaf first): its first certificate is checked
 * against the host and handed to Envoy unless the request carries caCert. */
void cp_bootstrap_generate(struct cp_runtime *rt, struct km_arena *a, const char *cp_ca_pem,
			   struct cp_bootstrap_request *req, struct cp_bootstrap_result *out);

/* Serves POST /bootstrap: fills <req>'s status, content type and body. With
 * "Accept: application/json" the body is the BootstrapResponse JSON (bootstrap
 * YAML in base64 plus kumaSidecarConfiguration), otherwise the YAML itself as
 * text/x-yaml. The Dataplane sent by the proxy is never stored here (the ADS
 * stream registers it). */
void cp_bootstrap_handle(struct cp_runtime *rt, const char *cp_ca_pem, struct cp_http_req *req);

/* Renders <config> as YAML (keys sorted, as upstream's proto-to-YAML). */
void cp_bootstrap_yaml(struct km_buf *out, struct km_json *config);

/* Go net.SplitHostPort's host when <hostport> has a port, else <hostport>. */
const char *cp_bootstrap_host_only(struct km_arena *a, const char *hostport);

/* Where kuma-dp serves a side component (access-log pipe, metrics
 * sockets): <workdir>/<name> cleaned, cut to fit a Unix socket path (98
 * bytes), then ".sock", as upstream's pkg/core/xds/sockets.go. */
const char *cp_xds_socket_path(struct km_arena *a, struct km_str workdir, const char *name);

#endif
