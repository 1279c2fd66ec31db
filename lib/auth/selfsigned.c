/* SPDX-License-Identifier: Apache-2.0 */
/* Self-signed certificates over OpenSSL 3 (see selfsigned.h). */
#include "auth/selfsigned.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

static int add_conf_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EINVAL;
}

static int add_sans(X509 *x, const char *const *hosts, size_t n)
{
	if (!n)
		return 0;
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	if (!gens)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		GENERAL_NAME *g = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_IPADD, hosts[i], 0);
		if (!g) {
			ERR_clear_error();
			g = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_DNS, hosts[i], 0);
		}
		if (!g || !sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			rc = -EINVAL;
		}
	}
	X509_EXTENSION *ext = rc ? NULL : X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
	if (!rc && (!ext || !X509_add_ext(x, ext, -1)))
		rc = -EINVAL;
	X509_EXTENSION_free(ext);
	GENERAL_NAMES_free(gens);
	return rc;
}

static void to_buf(BIO *b, struct km_buf *out)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	if (n > 0)
		km_buf_append(out, p, (size_t)n);
}

int km_cert_self_signed(enum km_cert_use use, enum km_cert_key key, const char *cn, const char *const *hosts,
			size_t nhosts, int64_t skew_s, struct km_buf *cert_pem, struct km_buf *key_pem)
{
	EVP_PKEY *k = key == KM_CERT_RSA2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	BIGNUM *bn = NULL;
	unsigned char serial[16];
	int rc = -EINVAL;
	if (!k || !x || !cb || !kb || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f; /* positive, under 2^128 */
	serial[15] |= 1;   /* not zero */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !X509_set_version(x, 2) || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto out;
	X509_gmtime_adj(X509_getm_notBefore(x), -(long)skew_s);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600 - (long)skew_s);
	X509_NAME *name = X509_get_subject_name(x);
	if (cn)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (!X509_set_pubkey(x, k) || add_conf_ext(x, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_conf_ext(x, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign") ||
	    add_conf_ext(x, NID_ext_key_usage, use == KM_CERT_SERVER ? "serverAuth" : "clientAuth") ||
	    add_conf_ext(x, NID_subject_key_identifier, "hash") || add_sans(x, hosts, nhosts) ||
	    !X509_sign(x, k, EVP_sha256()))
		goto out;
	if (!PEM_write_bio_X509(cb, x) || !PEM_write_bio_PrivateKey_traditional(kb, k, NULL, NULL, 0, NULL, NULL))
		goto out;
	to_buf(cb, cert_pem);
	to_buf(kb, key_pem);
	rc = 0;
out:
	ERR_clear_error();
	BN_free(bn);
	BIO_free(cb);
	BIO_free_all(kb);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}
