/* SPDX-License-Identifier: Apache-2.0 */
/* Self-signed TLS certificates as upstream's tls.NewSelfSignedCert makes
 * them (kumactl generate tls-certificate, the control plane's generated
 * server certificate): the certificate is its own CA (basicConstraints
 * CA:TRUE, keyUsage digitalSignature|keyEncipherment|keyCertSign), with
 * serverAuth or clientAuth, a subjectAltName per host (an IP address when it
 * parses as one, else a DNS name), a random 128-bit serial, valid ten years
 * from now minus a clock skew. Keys are PEM as Go writes them (PKCS#1 for
 * RSA, SEC1 for ECDSA). */
#ifndef KM_AUTH_SELFSIGNED_H
#define KM_AUTH_SELFSIGNED_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum km_cert_use { KM_CERT_SERVER, KM_CERT_CLIENT };
enum km_cert_key { KM_CERT_RSA2048, KM_CERT_ECDSA_P256 };

/* Appends the certificate and key PEMs; <cn> (may be NULL: an empty
 * subject, as Go's) names the subject; <skew_s> seconds of notBefore in the
 * past. 0, or a negative errno. */
int km_cert_self_signed(enum km_cert_use use, enum km_cert_key key, const char *cn, const char *const *hosts,
			size_t nhosts, int64_t skew_s, struct km_buf *cert_pem, struct km_buf *key_pem);

#endif
