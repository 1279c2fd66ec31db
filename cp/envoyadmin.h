/* SPDX-License-Identifier: Apache-2.0 */
/* The control plane's access to the proxies' Envoy admin API, as upstream
 * gives it: a CA of its own (the GlobalSecret envoy-admin-ca, RSA-2048 as
 * upstream generates it, certificate and key PEMs concatenated), from which
 * every proxy's admin listener gets a server certificate for its address and
 * the control plane a client certificate with the DNS SAN "kuma-cp"; the
 * listener's TLS chain asks for that client certificate. Requests go out
 * over libcurl's multi interface on the event loop and come back through a
 * callback, so a slow or unreachable proxy holds up nothing else.
 *
 * Server certificates are signed by an ECDSA P-256 issuer this instance
 * makes (signed by the CA) and sent with it: a certificate per proxy costs
 * an ECDSA signature, not an RSA one (0.2 ms each). Clients that trust the
 * CA, upstream's included, verify the chain. */
#ifndef CP_ENVOYADMIN_H
#define CP_ENVOYADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"
#include "cp/runtime.h"

struct cp_envoy_admin;

/* The admin TLS material of one proxy's listener (strings owned by the
 * module, valid while it runs). */
struct cp_envoy_admin_tls {
	const char *chain_pem; /* server certificate, then the issuer */
	const char *key_pem;
	const char *ca_pem;    /* what client certificates must chain to */
	uint64_t fp;           /* of the three */
	uint64_t ca_fp;        /* of ca_pem alone */
};

struct cp_envoy_admin *cp_envoy_admin_new(struct cp_runtime *rt);
/* Cancels the requests in flight (their callbacks run with an error). */
void cp_envoy_admin_free(struct cp_envoy_admin *ea);

/* Loads the CA, creating it when the store has none (any instance may: a
 * conflict means another one did, and its CA is loaded). A new CA's key is
 * generated on a thread while the loop goes on; it is stored when ready, or
 * when a proxy or a request needs it first (which then waits for it).
 * 0, or a negative errno with a message in <err> (when not NULL). */
int cp_envoy_admin_ensure_ca(struct cp_envoy_admin *ea, struct km_buf *err);

/* Finishes a CA generation in flight (waits for it and stores the CA), so
 * that no write of this module is pending: the test hooks' reset calls it
 * before it empties the store. */
void cp_envoy_admin_settle(struct cp_envoy_admin *ea);

/* The TLS material for a proxy at <address>, issued on first use and kept
 * per address while some build asks for it (an hour unasked, it goes).
 * 0, or a negative errno when the CA cannot be had. */
int cp_envoy_admin_server_tls(struct cp_envoy_admin *ea, struct km_str address, struct cp_envoy_admin_tls *out);

/* Tests: certificates unasked for <idle_ms> go, looked for every
 * <sweep_ms> once more than <above> are kept (defaults: an hour, a minute,
 * 256); and how many are kept. */
void cp_envoy_admin_set_cert_sweep(struct cp_envoy_admin *ea, uint64_t idle_ms, uint64_t sweep_ms, size_t above);
size_t cp_envoy_admin_cached(const struct cp_envoy_admin *ea);

/* Whether a proxy's admin API is served by its system_envoy_admin listener
 * (TLS for everything but /ready) rather than bound by Envoy itself on the
 * proxy's address: no listener is made where it would take the admin's own
 * address and port. <admin_address> and <admin_socket> are the node
 * metadata's dataplane.admin.address and dataplane.admin.socketPath. */
bool cp_envoy_admin_exposed(struct km_str dp_address, struct km_str admin_address, struct km_str admin_socket);

/* Called once per request: <status> is Envoy's HTTP status (0 when there is
 * none, <err> then says why), <body> its response (the callee may take its
 * data). */
typedef void (*cp_envoy_admin_fn)(void *ud, long status, const char *err, struct km_buf *body);

/* GET <path_query> ("stats?format=json") from the admin of the proxy at
 * <host>:<port>, over mutual TLS when <tls>, else plain HTTP; 3 s to
 * connect (the TLS handshake included), 5 s in all, at most 64 MiB of response. 0 when started (<fn>
 * runs later, on the loop), or a negative errno (<fn> does not run). */
int cp_envoy_admin_get(struct cp_envoy_admin *ea, const char *host, uint32_t port, bool tls, const char *path_query,
		       cp_envoy_admin_fn fn, void *ud);

/* Upstream's Sanitize: every value of an "authorization" initial metadata
 * entry of the bootstrap's ADS and HDS gRPC services, wherever it occurs in
 * <dump>, replaced by "[redacted]". 0, or -EINVAL when <dump> is not a
 * config dump (JSON object). */
int cp_envoy_admin_sanitize(struct km_str dump, struct km_buf *out);

#endif
