/* SPDX-License-Identifier: Apache-2.0 */
/* A proxy's SDS secrets encoded straight from the PEMs into Envoy's
 * Secret messages, without the canonical-JSON tree (and its base64 round
 * trip) that generate.c's secrets generator makes: the same bytes, as
 * tests/unit/xds/secrets_test.c checks. The builder (share.c) uses these;
 * cp_xds_generate() keeps the JSON for the inspection views. */
#ifndef CP_XDS_SECRETS_H
#define CP_XDS_SECRETS_H

#include "base/buf.h"
#include "codec/json.h"

/* The names of the mesh's trust bundle secret and of the Envoy admin
 * listener's certificate. */
#define CP_XDS_TRUST_SECRET "system_trust_bundle"
#define CP_XDS_ADMIN_SECRET "system_envoy_admin_certificate"

/* Appends the Secret <name> holding a certificate chain and its private
 * key (tlsCertificate, both inline bytes) to <out>. */
int cp_xds_secrets_tls_encode(const char *name, const char *chain_pem, const char *key_pem, struct km_buf *out);

/* Appends the trust bundle secret (a SPIFFE certificate validator with
 * one trust domain per string member of <domains>, {domain: PEM}) to
 * <out>; -EINVAL, nothing appended, when no member is a string. */
int cp_xds_secrets_trust_encode(const struct km_json *domains, struct km_buf *out);

#endif
