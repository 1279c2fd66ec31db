/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/xds/secrets.c: the secrets packed straight from the PEMs
 * are the bytes the canonical-JSON path encodes (inline bytes in base64,
 * made here with OpenSSL as the oracle), for a certificate and key and
 * for trust bundles of one and two domains (members that are not strings
 * skipped; none left: no secret); they decode back to the same JSON; a
 * capped buffer stays unchanged. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "codec/jsonf.h"
#include "cp/xds/secrets.h"
#include "pb/json.h"

#define SECRET_TYPE "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

static struct km_arena *A;

static const char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = km_arena_alloc(A, 4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

/* <j> encoded through the JSON path equals <bytes>, and <bytes> decode
 * back to <j>. */
static void check_same(const struct km_json *j, const struct km_buf *bytes)
{
	struct km_buf want = KM_BUF_INIT, err = KM_BUF_INIT;
	CHECK(km_pb_encode_json(A, SECRET_TYPE, j, &want, &err) == 0);
	CHECK(want.len > 0 && want.len == bytes->len && memcmp(want.data, bytes->data, want.len) == 0);
	struct km_json *back = NULL;
	CHECK(km_pb_decode_to_json(A, SECRET_TYPE, (const uint8_t *)bytes->data, bytes->len, &back, NULL) == 0);
	CHECK(back && km_json_equal(back, j));
	km_buf_fini(&want);
	km_buf_fini(&err);
}

static const char *const CERT = "-----BEGIN CERTIFICATE-----\nMIIBkTCCATegAwIBAgIQ\n-----END CERTIFICATE-----\n";
static const char *const KEY = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n";

static void test_tls(void)
{
	struct km_buf out = KM_BUF_INIT;
	CHECK(cp_xds_secrets_tls_encode("kri_mid_default_zone-1__identity_", CERT, KEY, &out) == 0);
	check_same(km_json_fmt(A,
			       "{\"name\":\"kri_mid_default_zone-1__identity_\",\"tlsCertificate\":{\"certificateChain\":"
			       "{\"inlineBytes\":%s},\"privateKey\":{\"inlineBytes\":%s}}}",
			       b64(CERT), b64(KEY)),
		   &out);
	/* appended after what the buffer holds */
	struct km_buf two = KM_BUF_INIT;
	km_buf_puts(&two, "xy");
	CHECK(cp_xds_secrets_tls_encode("kri_mid_default_zone-1__identity_", CERT, KEY, &two) == 0);
	CHECK(two.len == out.len + 2 && memcmp(two.data + 2, out.data, out.len) == 0);
	/* past a cap: -E2BIG, nothing written */
	struct km_buf capped = KM_BUF_INIT;
	capped.max = 64;
	km_buf_puts(&capped, "ab");
	CHECK(cp_xds_secrets_tls_encode(CP_XDS_ADMIN_SECRET, CERT, KEY, &capped) == -E2BIG);
	CHECK(capped.len == 2);
	km_buf_fini(&capped);
	km_buf_fini(&two);
	km_buf_fini(&out);
}

/* The trust bundle secret as generate.c writes it, of <domains> given as
 * the JSON array of {name, trustBundle} the PEMs make. */
static struct km_json *trust_json(struct km_json *domains)
{
	return km_json_fmt(A,
			   "{\"name\":\"system_trust_bundle\",\"validationContext\":{\"customValidatorConfig\":{"
			   "\"name\":\"envoy.tls.cert_validator.spiffe\",\"typedConfig\":{\"@type\":"
			   "\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig\","
			   "\"trustDomains\":%T}}}}",
			   domains);
}

static void test_trust(void)
{
	static const char *const CA1 = "-----BEGIN CERTIFICATE-----\nMIIC1\n-----END CERTIFICATE-----\n";
	static const char *const CA2 = "-----BEGIN CERTIFICATE-----\nMIIC22\n-----END CERTIFICATE-----\n";
	struct km_buf out = KM_BUF_INIT;
	/* two domains, a member that is not a PEM string between them */
	struct km_json *in = km_json_fmt(A, "{\"default.zone-1.mesh.local\":%s,\"broken\":7,\"other.mesh.local\":%s}",
					 CA1, CA2);
	CHECK(cp_xds_secrets_trust_encode(in, &out) == 0);
	check_same(trust_json(km_json_fmt(A,
					  "[{\"name\":\"default.zone-1.mesh.local\",\"trustBundle\":{\"inlineBytes\":%s}},"
					  "{\"name\":\"other.mesh.local\",\"trustBundle\":{\"inlineBytes\":%s}}]",
					  b64(CA1), b64(CA2))),
		   &out);
	/* one */
	km_buf_reset(&out);
	CHECK(cp_xds_secrets_trust_encode(km_json_fmt(A, "{\"a.mesh.local\":%s}", CA2), &out) == 0);
	check_same(trust_json(km_json_fmt(
		       A, "[{\"name\":\"a.mesh.local\",\"trustBundle\":{\"inlineBytes\":%s}}]", b64(CA2))),
		   &out);
	/* none (no member is a PEM string): nothing to trust, no secret */
	km_buf_reset(&out);
	km_buf_puts(&out, "ab");
	CHECK(cp_xds_secrets_trust_encode(km_json_object(A), &out) == -EINVAL);
	CHECK(cp_xds_secrets_trust_encode(km_json_fmt(A, "{\"a.mesh.local\":1}"), &out) == -EINVAL);
	CHECK(out.len == 2);
	km_buf_fini(&out);
}

int main(void)
{
	A = km_arena_new(0);
	test_tls();
	test_trust();
	km_arena_free(A);
	km_json_fmt_thread_fini();
	km_pb_json_thread_fini();
	return test_summary();
}
