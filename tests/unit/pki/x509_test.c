/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/pki/x509.c: CA generation, loading a CA pair with Go's
 * tls.X509KeyPair messages, upstream's CA checks, and leaf fields read back
 * with OpenSSL (URI SAN, EKU, key usage, validity, chain, key type), plus
 * the cost of a few issuances per key type (bench/pki_bench for throughput). */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../test.h"
#include "cp/pki/x509.h"

#define NS 1000000000LL

static X509 *cert_of(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

static EVP_PKEY *key_of(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	return k;
}

static char *uri_san_of(X509 *x, int *critical)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, critical, NULL);
	char *res = NULL;
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_URI)
			res = strndup((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
				      (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier));
	}
	GENERAL_NAMES_free(gens);
	return res;
}

static int64_t asn1_to_unix(const ASN1_TIME *t)
{
	struct tm tm;
	ASN1_TIME_to_tm(t, &tm);
	return (int64_t)timegm(&tm);
}

static struct cp_pki_ca *gen_ca(enum cp_pki_key type, struct km_buf *cert, struct km_buf *key)
{
	struct km_buf err = KM_BUF_INIT;
	int rc = cp_pki_x509_ca_generate(type, "default.zone-1.mesh.local", 1700000000LL * NS, cert, key, &err);
	CHECK(rc == 0);
	struct cp_pki_ca *ca = cp_pki_x509_ca_load(km_str_c(km_buf_cstr(cert)), km_str_c(km_buf_cstr(key)), &err);
	CHECK(ca != NULL);
	if (!ca)
		fprintf(stderr, "load: %s\n", km_buf_cstr(&err));
	km_buf_fini(&err);
	return ca;
}

static void test_ca(enum cp_pki_key type)
{
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT, err = KM_BUF_INIT;
	struct cp_pki_ca *ca = gen_ca(type, &cert, &key);
	X509 *x = cert_of(km_buf_cstr(&cert));
	CHECK(x != NULL);
	char cn[256] = "", o[64] = "", ou[64] = "";
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, o, sizeof(o));
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationalUnitName, ou, sizeof(ou));
	CHECK_STREQ(cn, "default.zone-1.mesh.local");
	CHECK_STREQ(o, "Kuma");
	CHECK_STREQ(ou, "Mesh");
	CHECK(X509_check_ca(x) == 1);
	CHECK((X509_get_key_usage(x) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	int crit = -1;
	char *uri = uri_san_of(x, &crit);
	CHECK_STREQ(uri, "spiffe://default.zone-1.mesh.local");
	free(uri);
	CHECK(asn1_to_unix(X509_get0_notBefore(x)) == 1700000000LL - 10);
	CHECK(asn1_to_unix(X509_get0_notAfter(x)) == 1700000000LL + 10LL * 365 * 24 * 3600);
	CHECK(X509_get0_subject_key_id(x) != NULL);
	CHECK(cp_pki_x509_ca_self_signed(ca));
	CHECK(cp_pki_x509_ca_validate(ca, &err) == 0);
	CHECK(cp_pki_x509_ca_key_type(ca) == type);
	if (type == CP_PKI_KEY_RSA2048)
		CHECK(strstr(km_buf_cstr(&key), "-----BEGIN RSA PRIVATE KEY-----") != NULL);
	else
		CHECK(strstr(km_buf_cstr(&key), "-----BEGIN EC PRIVATE KEY-----") != NULL);
	X509_free(x);
	cp_pki_x509_ca_free(ca);
	km_buf_fini(&cert);
	km_buf_fini(&key);
	km_buf_fini(&err);
}

static const char *load_err(struct km_str cert, struct km_str key, char *out, size_t n)
{
	struct km_buf err = KM_BUF_INIT;
	struct cp_pki_ca *ca = cp_pki_x509_ca_load(cert, key, &err);
	snprintf(out, n, "%s", ca ? "(loaded)" : km_buf_cstr(&err));
	cp_pki_x509_ca_free(ca);
	km_buf_fini(&err);
	return out;
}

static void test_load_errors(void)
{
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT, cert2 = KM_BUF_INIT, key2 = KM_BUF_INIT;
	struct cp_pki_ca *ca = gen_ca(CP_PKI_KEY_EC_P256, &cert, &key);
	struct cp_pki_ca *ca2 = gen_ca(CP_PKI_KEY_EC_P256, &cert2, &key2);
	char m[512];
	struct km_str c = km_str_c(km_buf_cstr(&cert)), k = km_str_c(km_buf_cstr(&key));
	CHECK_STREQ(load_err(c, k, m, sizeof(m)), "(loaded)");
	CHECK_STREQ(load_err(KM_STR("not a pem"), k, m, sizeof(m)),
		    "tls: failed to find any PEM data in certificate input");
	CHECK_STREQ(load_err(k, c, m, sizeof(m)),
		    "tls: failed to find certificate PEM data in certificate input, but did find a private "
		    "key; PEM inputs may have been switched");
	CHECK_STREQ(load_err(c, KM_STR(""), m, sizeof(m)), "tls: failed to find any PEM data in key input");
	CHECK_STREQ(load_err(c, c, m, sizeof(m)),
		    "tls: found a certificate rather than a key in the PEM for the private key");
	CHECK_STREQ(load_err(c, km_str_c(km_buf_cstr(&key2)), m, sizeof(m)),
		    "tls: private key does not match public key");
	CHECK_STREQ(load_err(KM_STR("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"),
			     k, m, sizeof(m)),
		    "x509: malformed certificate");
	CHECK_STREQ(load_err(KM_STR("-----BEGIN FOO-----\naGVsbG8=\n-----END FOO-----\n"), k, m, sizeof(m)),
		    "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping PEM "
		    "blocks of the following types: [FOO]");
	CHECK_STREQ(load_err(c, KM_STR("-----BEGIN EC PRIVATE KEY-----\naGVsbG8=\n-----END EC PRIVATE KEY-----\n"),
			     m, sizeof(m)),
		    "tls: failed to parse private key");
	CHECK(cp_pki_x509_pem_equal(c, c));
	CHECK(!cp_pki_x509_pem_equal(c, km_str_c(km_buf_cstr(&cert2))));
	cp_pki_x509_ca_free(ca);
	cp_pki_x509_ca_free(ca2);
	km_buf_fini(&cert);
	km_buf_fini(&key);
	km_buf_fini(&cert2);
	km_buf_fini(&key2);
}

static void check_leaf(struct cp_pki_ca *ca, const char *ca_pem, enum cp_pki_key type)
{
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT;
	int64_t now = (int64_t)time(NULL) * NS + 123456789, na = 0;
	int rc = cp_pki_x509_issue(ca, "spiffe://default.zone-1.mesh.local/workload/backend", now, 24 * 3600 * NS,
				   &cert, &key, &na);
	CHECK(rc == 0);
	CHECK(na == (now / NS + 24 * 3600) * NS);
	X509 *x = cert_of(km_buf_cstr(&cert));
	X509 *cax = cert_of(ca_pem);
	EVP_PKEY *k = key_of(km_buf_cstr(&key));
	CHECK(x && cax && k);
	if (!x || !cax || !k)
		return;
	/* URI SAN, critical because the subject is empty */
	int crit = -1;
	char *uri = uri_san_of(x, &crit);
	CHECK_STREQ(uri, "spiffe://default.zone-1.mesh.local/workload/backend");
	CHECK(crit == 1);
	free(uri);
	CHECK(X509_NAME_entry_count(X509_get_subject_name(x)) == 0);
	/* EKU serverAuth + clientAuth, key usage, not a CA */
	CHECK((X509_get_extended_key_usage(x) & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));
	CHECK(X509_get_key_usage(x) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT));
	CHECK(X509_check_ca(x) == 0);
	CHECK((X509_get_extension_flags(x) & EXFLAG_BCONS) != 0);
	/* validity: now - 10s .. now + 24h */
	CHECK(asn1_to_unix(X509_get0_notBefore(x)) == now / NS - 10);
	CHECK(asn1_to_unix(X509_get0_notAfter(x)) == now / NS + 24 * 3600);
	/* chain: signed by the CA, AKI = CA SKI, verifies as a TLS client/server cert */
	CHECK(X509_verify(x, X509_get0_pubkey(cax)) == 1);
	CHECK(X509_check_issued(cax, x) == X509_V_OK);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x), *ski = X509_get0_subject_key_id(cax);
	CHECK(aki && ski && ASN1_OCTET_STRING_cmp(aki, ski) == 0);
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, cax);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, st, x, NULL);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	CHECK(X509_verify_cert(ctx) == 1);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	/* key type follows the CA, and the key belongs to the certificate */
	CHECK(X509_check_private_key(x, k) == 1);
	if (type == CP_PKI_KEY_RSA2048) {
		CHECK(EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 2048);
		CHECK(strstr(km_buf_cstr(&key), "BEGIN RSA PRIVATE KEY") != NULL);
		CHECK(X509_get_signature_nid(x) == NID_sha256WithRSAEncryption);
	} else {
		char g[64] = "";
		EVP_PKEY_get_group_name(k, g, sizeof(g), NULL);
		CHECK(EVP_PKEY_is_a(k, "EC"));
		CHECK_STREQ(g, type == CP_PKI_KEY_EC_P384 ? "secp384r1" : "prime256v1");
		CHECK(strstr(km_buf_cstr(&key), "BEGIN EC PRIVATE KEY") != NULL);
		CHECK(X509_get_signature_nid(x) ==
		      (type == CP_PKI_KEY_EC_P384 ? NID_ecdsa_with_SHA384 : NID_ecdsa_with_SHA256));
	}
	/* serial: positive, non-zero, random */
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
	CHECK(bn && !BN_is_zero(bn) && !BN_is_negative(bn) && BN_num_bits(bn) <= 128);
	BN_free(bn);
	/* the leaf cannot act as a CA */
	struct km_buf err = KM_BUF_INIT;
	struct cp_pki_ca *bad = cp_pki_x509_ca_load(km_str_c(km_buf_cstr(&cert)), km_str_c(km_buf_cstr(&key)), &err);
	CHECK(bad != NULL);
	if (bad) {
		CHECK(cp_pki_x509_ca_validate(bad, &err) == -EINVAL);
		CHECK_STREQ(km_buf_cstr(&err),
			    "cert[0]: basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. Basic "
			    "Constraints); cert[0]: key usage extension 'keyCertSign' must be set (see X509-SVID: "
			    "4.3. Key Usage); cert[0]: key usage extension 'keyAgreement' must NOT be set (see "
			    "X509-SVID: Appendix A. X.509 Field Reference)");
		CHECK(!cp_pki_x509_ca_self_signed(bad));
	}
	cp_pki_x509_ca_free(bad);
	km_buf_fini(&err);
	EVP_PKEY_free(k);
	X509_free(x);
	X509_free(cax);
	km_buf_fini(&cert);
	km_buf_fini(&key);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The cost of issuance is part of the contract: print it. */
static void time_issuance(struct cp_pki_ca *ca, const char *name, int n)
{
	double t0 = mono();
	int ok = 0;
	for (int i = 0; i < n; i++) {
		struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT;
		ok += cp_pki_x509_issue(ca, "spiffe://d.z.mesh.local/workload/w", (int64_t)time(NULL) * NS, 3600 * NS,
					&cert, &key, NULL) == 0;
		km_buf_fini(&cert);
		km_buf_fini(&key);
	}
	double dt = mono() - t0;
	CHECK(ok == n);
	printf("x509: %d %s leaf issuances in %.3f s (%.3f ms each, %.0f/s)\n", n, name, dt, dt * 1e3 / n, n / dt);
}

/* An Envoy Admin CA (RSA, no SAN), an ECDSA issuer it signs, a server
 * certificate for an IP address and a client certificate for a DNS name
 * signed by the issuer: both verify against the CA with the issuer as the
 * untrusted intermediate, for their purpose and host. */
static int verify_with(X509 *root, X509 *inter, X509 *leaf, int purpose, const char *ip, const char *dns)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, root);
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	sk_X509_push(untrusted, inter);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, st, leaf, untrusted);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
	if (ip)
		X509_VERIFY_PARAM_set1_ip_asc(vp, ip);
	if (dns)
		X509_VERIFY_PARAM_set1_host(vp, dns, 0);
	int ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	X509_STORE_free(st);
	return ok;
}

static void test_tls_chain(void)
{
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT, err = KM_BUF_INIT;
	int64_t now = (int64_t)time(NULL) * NS;
	CHECK(cp_pki_x509_ca_generate_named(CP_PKI_KEY_RSA2048, "Envoy Admin CA", now, &cert, &key, &err) == 0);
	X509 *root = cert_of(km_buf_cstr(&cert));
	CHECK(root && X509_get_ext_d2i(root, NID_subject_alt_name, NULL, NULL) == NULL);
	char cn[64] = "";
	X509_NAME_get_text_by_NID(X509_get_subject_name(root), NID_commonName, cn, sizeof(cn));
	CHECK_STREQ(cn, "Envoy Admin CA");
	struct cp_pki_ca *ca = cp_pki_x509_ca_load(km_str_c(km_buf_cstr(&cert)), km_str_c(km_buf_cstr(&key)), &err);
	CHECK(ca != NULL);
	struct km_buf ic = KM_BUF_INIT, ik = KM_BUF_INIT, sc = KM_BUF_INIT, sk = KM_BUF_INIT, cc = KM_BUF_INIT,
		      ck = KM_BUF_INIT;
	CHECK(cp_pki_x509_issue_tls(ca, CP_PKI_TLS_CA, "Envoy Admin Issuer", NULL, now, 3600 * NS, &ic, &ik) == 0);
	struct cp_pki_ca *issuer = cp_pki_x509_ca_load(km_str_c(km_buf_cstr(&ic)), km_str_c(km_buf_cstr(&ik)), &err);
	CHECK(issuer != NULL);
	CHECK(cp_pki_x509_issue_tls(issuer, CP_PKI_TLS_SERVER, NULL, "10.0.0.7", now, 3600 * NS, &sc, &sk) == 0);
	CHECK(cp_pki_x509_issue_tls(issuer, CP_PKI_TLS_CLIENT, NULL, "kuma-cp", now, 3600 * NS, &cc, &ck) == 0);
	X509 *inter = cert_of(km_buf_cstr(&ic)), *server = cert_of(km_buf_cstr(&sc)), *client = cert_of(km_buf_cstr(&cc));
	CHECK(inter && server && client);
	CHECK(verify_with(root, inter, server, X509_PURPOSE_SSL_SERVER, "10.0.0.7", NULL) == 1);
	CHECK(verify_with(root, inter, server, X509_PURPOSE_SSL_SERVER, "10.0.0.8", NULL) != 1); /* another address */
	CHECK(verify_with(root, inter, client, X509_PURPOSE_SSL_CLIENT, NULL, "kuma-cp") == 1);
	CHECK(verify_with(root, inter, client, X509_PURPOSE_SSL_CLIENT, NULL, "kuma-dp") != 1);
	/* from the RSA CA itself: the role's EKU alone */
	struct km_buf rc_ = KM_BUF_INIT, rk = KM_BUF_INIT;
	CHECK(cp_pki_x509_issue_tls(ca, CP_PKI_TLS_SERVER, NULL, "10.0.0.9", now, 3600 * NS, &rc_, &rk) == 0);
	X509 *rs = cert_of(km_buf_cstr(&rc_));
	CHECK(verify_with(root, inter, rs, X509_PURPOSE_SSL_SERVER, "10.0.0.9", NULL) == 1);
	CHECK(verify_with(root, inter, rs, X509_PURPOSE_SSL_CLIENT, NULL, NULL) != 1);
	X509_free(rs);
	km_buf_fini(&rc_);
	km_buf_fini(&rk);
	/* the keys are ECDSA P-256 and match their certificates */
	EVP_PKEY *k = key_of(km_buf_cstr(&sk));
	CHECK(k && EVP_PKEY_is_a(k, "EC") && X509_check_private_key(server, k) == 1);
	EVP_PKEY_free(k);
	X509_free(root);
	X509_free(inter);
	X509_free(server);
	X509_free(client);
	cp_pki_x509_ca_free(issuer);
	cp_pki_x509_ca_free(ca);
	km_buf_fini(&cert);
	km_buf_fini(&key);
	km_buf_fini(&err);
	km_buf_fini(&ic);
	km_buf_fini(&ik);
	km_buf_fini(&sc);
	km_buf_fini(&sk);
	km_buf_fini(&cc);
	km_buf_fini(&ck);
}

int main(void)
{
	test_tls_chain();
	test_ca(CP_PKI_KEY_RSA2048);
	test_ca(CP_PKI_KEY_EC_P256);
	test_load_errors();
	const enum cp_pki_key types[] = {CP_PKI_KEY_EC_P256, CP_PKI_KEY_EC_P384, CP_PKI_KEY_RSA2048};
	for (size_t i = 0; i < 3; i++) {
		struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT;
		struct cp_pki_ca *ca = gen_ca(types[i], &cert, &key);
		if (ca) {
			check_leaf(ca, km_buf_cstr(&cert), types[i]);
			if (types[i] != CP_PKI_KEY_EC_P384)
				/* RSA key generation costs ~0.3 s a key: time a few here,
				 * bench/pki_bench measures throughput properly */
				time_issuance(ca, cp_pki_x509_key_name(types[i]),
					      types[i] == CP_PKI_KEY_RSA2048 ? 3 : 100);
		}
		cp_pki_x509_ca_free(ca);
		km_buf_fini(&cert);
		km_buf_fini(&key);
	}
	/* base64 round trip */
	struct km_buf b = KM_BUF_INIT, d = KM_BUF_INIT;
	cp_pki_base64_encode(&b, "hello", 5);
	CHECK_STREQ(km_buf_cstr(&b), "aGVsbG8=");
	CHECK(cp_pki_base64_decode(&d, km_str_c(km_buf_cstr(&b))) == 0);
	CHECK_STREQ(km_buf_cstr(&d), "hello");
	km_buf_reset(&d);
	CHECK(cp_pki_base64_decode(&d, KM_STR("abc")) == -EINVAL);
	km_buf_fini(&b);
	km_buf_fini(&d);
	return test_summary();
}
