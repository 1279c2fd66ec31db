/* SPDX-License-Identifier: Apache-2.0 */
/* X.509 for the Bundled provider (see x509.h). A loaded CA keeps what every
 * issuance reuses: the signing certificate and key, a prepared key-generation
 * context and the constant leaf extensions, so issuing one leaf is a key
 * generation, a few setters and one signature. */
#include "cp/pki/x509.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

struct cp_pki_ca {
	STACK_OF(X509) *certs; /* [0] signs */
	X509 *cert;
	EVP_PKEY *key;
	enum cp_pki_key type;
	EVP_PKEY_CTX *keygen;
	const EVP_MD *md; /* NULL for Ed25519 */
	X509_EXTENSION *ext_ku, *ext_eku, *ext_bc, *ext_aki;
	unsigned char fp[32];
};

/* ---- helpers ---- */

static void ssl_err(struct km_buf *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	if (err)
		km_buf_printf(err, "%s%s%s", what, *buf ? ": " : "", buf);
}

static void bio_to_buf(BIO *bio, struct km_buf *out)
{
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	if (n > 0)
		km_buf_append(out, p, (size_t)n);
}

static const char *curve_of(enum cp_pki_key t)
{
	switch (t) {
	case CP_PKI_KEY_EC_P256:
		return "P-256";
	case CP_PKI_KEY_EC_P384:
		return "P-384";
	case CP_PKI_KEY_EC_P521:
		return "P-521";
	default:
		return NULL;
	}
}

const char *cp_pki_x509_key_name(enum cp_pki_key type)
{
	switch (type) {
	case CP_PKI_KEY_RSA2048:
		return "RSA-2048";
	case CP_PKI_KEY_EC_P256:
		return "ECDSA-P256";
	case CP_PKI_KEY_EC_P384:
		return "ECDSA-P384";
	case CP_PKI_KEY_EC_P521:
		return "ECDSA-P521";
	case CP_PKI_KEY_ED25519:
		return "Ed25519";
	default:
		return "other";
	}
}

/* A key-generation context for <t>, prepared once and reused. */
static EVP_PKEY_CTX *keygen_ctx(enum cp_pki_key t)
{
	EVP_PKEY_CTX *c = NULL;
	switch (t) {
	case CP_PKI_KEY_RSA2048:
	case CP_PKI_KEY_OTHER:
		c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		if (c && (EVP_PKEY_keygen_init(c) <= 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048) <= 0))
			goto fail;
		return c;
	case CP_PKI_KEY_EC_P256:
	case CP_PKI_KEY_EC_P384:
	case CP_PKI_KEY_EC_P521:
		c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (c && (EVP_PKEY_keygen_init(c) <= 0 ||
			  EVP_PKEY_CTX_set_group_name(c, curve_of(t)) <= 0))
			goto fail;
		return c;
	case CP_PKI_KEY_ED25519:
		c = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
		if (c && EVP_PKEY_keygen_init(c) <= 0)
			goto fail;
		return c;
	}
fail:
	EVP_PKEY_CTX_free(c);
	return NULL;
}

static const EVP_MD *md_of(enum cp_pki_key t)
{
	switch (t) {
	case CP_PKI_KEY_EC_P384:
		return EVP_sha384();
	case CP_PKI_KEY_EC_P521:
		return EVP_sha512();
	case CP_PKI_KEY_ED25519:
		return NULL;
	default:
		return EVP_sha256();
	}
}

static enum cp_pki_key type_of(const EVP_PKEY *k)
{
	if (EVP_PKEY_is_a(k, "RSA"))
		return EVP_PKEY_get_bits(k) == 2048 ? CP_PKI_KEY_RSA2048 : CP_PKI_KEY_OTHER;
	if (EVP_PKEY_is_a(k, "ED25519"))
		return CP_PKI_KEY_ED25519;
	if (EVP_PKEY_is_a(k, "EC")) {
		char g[64] = "";
		size_t n = 0;
		if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof(g), &n) != 1)
			return CP_PKI_KEY_OTHER;
		if (strcmp(g, "prime256v1") == 0 || strcmp(g, "P-256") == 0)
			return CP_PKI_KEY_EC_P256;
		if (strcmp(g, "secp384r1") == 0 || strcmp(g, "P-384") == 0)
			return CP_PKI_KEY_EC_P384;
		if (strcmp(g, "secp521r1") == 0 || strcmp(g, "P-521") == 0)
			return CP_PKI_KEY_EC_P521;
	}
	return CP_PKI_KEY_OTHER;
}

/* Go's key PEM: PKCS#1 for RSA, SEC1 for ECDSA, PKCS#8 for Ed25519. */
static int write_key(EVP_PKEY *k, struct km_buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return -ENOMEM;
	int ok = EVP_PKEY_is_a(k, "ED25519") ?
			 PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) :
			 PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0, NULL, NULL);
	if (ok)
		bio_to_buf(bio, out);
	BIO_free(bio);
	return ok ? 0 : -EINVAL;
}

static int write_cert(X509 *x, struct km_buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return -ENOMEM;
	int ok = PEM_write_bio_X509(bio, x);
	if (ok)
		bio_to_buf(bio, out);
	BIO_free(bio);
	return ok ? 0 : -EINVAL;
}

static int write_pair(X509 *x, EVP_PKEY *k, struct km_buf *cert_pem, struct km_buf *key_pem)
{
	int rc = write_cert(x, cert_pem);
	return rc ? rc : write_key(k, key_pem);
}

/* Subject O=Kuma, OU=Mesh and CN=<cn> when given, as upstream's CAs. */
static void kuma_subject(X509 *x, const char *cn)
{
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Kuma", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, (const unsigned char *)"Mesh", -1, -1, 0);
	if (cn)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
}

/* Random serial in [1, 2^128-1] as upstream's newSerialNumber. */
static int set_serial(X509 *x)
{
	unsigned char r[16];
	if (RAND_bytes(r, sizeof(r)) != 1)
		return -EIO;
	BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
	if (!bn)
		return -ENOMEM;
	if (BN_is_zero(bn))
		BN_one(bn);
	int ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -ENOMEM;
}

static X509_EXTENSION *uri_san(const char *uri, int critical)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	X509_EXTENSION *ext = NULL;
	if (!gens || !gen || !ia5 || !ASN1_STRING_set(ia5, uri, (int)strlen(uri))) {
		ASN1_IA5STRING_free(ia5);
		GENERAL_NAME_free(gen);
		GENERAL_NAMES_free(gens);
		return NULL;
	}
	GENERAL_NAME_set0_value(gen, GEN_URI, ia5);
	sk_GENERAL_NAME_push(gens, gen);
	ext = X509V3_EXT_i2d(NID_subject_alt_name, critical, gens);
	GENERAL_NAMES_free(gens);
	return ext;
}

static X509_EXTENSION *key_usage(const int *bits, size_t n)
{
	ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
	if (!bs)
		return NULL;
	for (size_t i = 0; i < n; i++)
		ASN1_BIT_STRING_set_bit(bs, bits[i], 1);
	X509_EXTENSION *ext = X509V3_EXT_i2d(NID_key_usage, 1, bs);
	ASN1_BIT_STRING_free(bs);
	return ext;
}

static X509_EXTENSION *basic_constraints(bool ca)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	if (!bc)
		return NULL;
	bc->ca = ca ? 0xff : 0;
	X509_EXTENSION *ext = X509V3_EXT_i2d(NID_basic_constraints, 1, bc);
	BASIC_CONSTRAINTS_free(bc);
	return ext;
}

/* Subject key id as Go computes it: SHA-1 of the subjectPublicKey bits. */
static X509_EXTENSION *subject_key_id(X509 *x)
{
	const ASN1_BIT_STRING *pk = X509_get0_pubkey_bitstr(x);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!pk || !EVP_Digest(pk->data, (size_t)pk->length, md, &mdlen, EVP_sha1(), NULL))
		return NULL;
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	if (!os || !ASN1_OCTET_STRING_set(os, md, (int)mdlen)) {
		ASN1_OCTET_STRING_free(os);
		return NULL;
	}
	X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_key_identifier, 0, os);
	ASN1_OCTET_STRING_free(os);
	return ext;
}

static int add_ext(X509 *x, X509_EXTENSION *ext)
{
	if (!ext)
		return -ENOMEM;
	int ok = X509_add_ext(x, ext, -1);
	return ok ? 0 : -ENOMEM;
}

/* ---- CA generation ---- */

static int ca_generate(enum cp_pki_key type, const char *cn, bool spiffe_san, int64_t now_ns,
		       struct km_buf *cert_pem, struct km_buf *key_pem, struct km_buf *err)
{
	EVP_PKEY_CTX *kc = keygen_ctx(type == CP_PKI_KEY_OTHER ? CP_PKI_KEY_RSA2048 : type);
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509_EXTENSION *exts[4] = {0};
	int rc = -EINVAL;
	if (!kc || EVP_PKEY_keygen(kc, &key) <= 0) {
		ssl_err(err, "failed to generate the CA key");
		goto out;
	}
	x = X509_new();
	if (!x || !X509_set_version(x, 2) || set_serial(x)) {
		ssl_err(err, "failed to generate X509 certificate");
		goto out;
	}
	kuma_subject(x, cn);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	time_t now = (time_t)(now_ns / 1000000000LL);
	ASN1_TIME_set(X509_getm_notBefore(x), now - CP_PKI_CLOCK_SKEW_NS / 1000000000LL);
	ASN1_TIME_set(X509_getm_notAfter(x), now + CP_PKI_CA_VALIDITY_NS / 1000000000LL);
	X509_set_pubkey(x, key);
	static const int ku[] = {5 /* keyCertSign */, 6 /* cRLSign */};
	char uri[600];
	snprintf(uri, sizeof(uri), "spiffe://%s", cn);
	exts[0] = key_usage(ku, 2);
	exts[1] = basic_constraints(true);
	exts[2] = subject_key_id(x);
	exts[3] = spiffe_san ? uri_san(uri, 0) : NULL;
	for (size_t i = 0; i < 4; i++)
		if ((i < 3 || spiffe_san) && add_ext(x, exts[i])) {
			ssl_err(err, "failed to generate X509 certificate");
			goto out;
		}
	if (!X509_sign(x, key, md_of(type))) {
		ssl_err(err, "failed to sign the CA certificate");
		goto out;
	}
	rc = write_pair(x, key, cert_pem, key_pem);
out:
	for (size_t i = 0; i < 4; i++)
		X509_EXTENSION_free(exts[i]);
	X509_free(x);
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(kc);
	return rc;
}

int cp_pki_x509_ca_generate(enum cp_pki_key type, const char *trust_domain, int64_t now_ns,
			    struct km_buf *cert_pem, struct km_buf *key_pem, struct km_buf *err)
{
	return ca_generate(type, trust_domain, true, now_ns, cert_pem, key_pem, err);
}

int cp_pki_x509_ca_generate_named(enum cp_pki_key type, const char *cn, int64_t now_ns, struct km_buf *cert_pem,
				  struct km_buf *key_pem, struct km_buf *err)
{
	return ca_generate(type, cn, false, now_ns, cert_pem, key_pem, err);
}

/* ---- loading (Go's tls.X509KeyPair) ---- */

struct pem_block {
	char *name;
	unsigned char *data;
	long len;
};

/* Every PEM block of <s>, in order (at most <max>). */
static size_t pem_blocks(struct km_str s, struct pem_block *out, size_t max)
{
	if (!s.len || s.len > (size_t)1 << 24)
		return 0;
	BIO *bio = BIO_new_mem_buf(s.ptr, (int)s.len);
	size_t n = 0;
	while (bio && n < max) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long len = 0;
		if (PEM_read_bio(bio, &name, &header, &data, &len) != 1)
			break;
		OPENSSL_free(header);
		out[n].name = name;
		out[n].data = data;
		out[n].len = len;
		n++;
	}
	BIO_free(bio);
	ERR_clear_error();
	return n;
}

static void pem_free(struct pem_block *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		OPENSSL_free(b[i].name);
		OPENSSL_free(b[i].data);
	}
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static void skipped_types(struct km_buf *err, struct pem_block *b, size_t n)
{
	km_buf_putc(err, '[');
	for (size_t i = 0; i < n; i++)
		km_buf_printf(err, "%s%s", i ? " " : "", b[i].name);
	km_buf_putc(err, ']');
}

#define MAX_BLOCKS 32

void cp_pki_x509_ca_free(struct cp_pki_ca *ca)
{
	if (!ca)
		return;
	sk_X509_pop_free(ca->certs, X509_free);
	EVP_PKEY_free(ca->key);
	EVP_PKEY_CTX_free(ca->keygen);
	X509_EXTENSION_free(ca->ext_ku);
	X509_EXTENSION_free(ca->ext_eku);
	X509_EXTENSION_free(ca->ext_bc);
	X509_EXTENSION_free(ca->ext_aki);
	free(ca);
}

static int prepare(struct cp_pki_ca *ca)
{
	ca->type = type_of(ca->key);
	ca->md = md_of(ca->type);
	ca->keygen = keygen_ctx(ca->type);
	static const int ku[] = {0 /* digitalSignature */, 2 /* keyEncipherment */, 4 /* keyAgreement */};
	ca->ext_ku = key_usage(ku, 3);
	ca->ext_bc = basic_constraints(false);
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	if (eku) {
		sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth));
		sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth));
		ca->ext_eku = X509V3_EXT_i2d(NID_ext_key_usage, 0, eku);
		sk_ASN1_OBJECT_free(eku);
	}
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca->cert);
	if (ski) {
		AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
		if (aki) {
			aki->keyid = ASN1_OCTET_STRING_dup(ski);
			ca->ext_aki = X509V3_EXT_i2d(NID_authority_key_identifier, 0, aki);
			AUTHORITY_KEYID_free(aki);
		}
	}
	unsigned int n = 0;
	X509_digest(ca->cert, EVP_sha256(), ca->fp, &n);
	ERR_clear_error();
	return ca->keygen && ca->ext_ku && ca->ext_bc && ca->ext_eku ? 0 : -EINVAL;
}

struct cp_pki_ca *cp_pki_x509_ca_load(struct km_str cert_pem, struct km_str key_pem, struct km_buf *err)
{
	struct pem_block cb[MAX_BLOCKS], kb[MAX_BLOCKS];
	size_t nc = pem_blocks(cert_pem, cb, MAX_BLOCKS), nk = 0;
	struct cp_pki_ca *ca = km_calloc(1, sizeof(*ca));
	ca->certs = sk_X509_new_null();
	size_t skipped = 0;
	struct pem_block skip[MAX_BLOCKS];
	for (size_t i = 0; i < nc; i++) {
		if (strcmp(cb[i].name, "CERTIFICATE") == 0) {
			const unsigned char *p = cb[i].data;
			X509 *x = d2i_X509(NULL, &p, cb[i].len);
			if (!x || p != cb[i].data + cb[i].len) {
				X509_free(x);
				km_buf_puts(err, "x509: malformed certificate");
				goto fail;
			}
			sk_X509_push(ca->certs, x);
		} else {
			skip[skipped++] = cb[i];
		}
	}
	if (sk_X509_num(ca->certs) == 0) {
		if (nc == 0)
			km_buf_puts(err, "tls: failed to find any PEM data in certificate input");
		else if (skipped == 1 && ends_with(skip[0].name, "PRIVATE KEY"))
			km_buf_puts(err, "tls: failed to find certificate PEM data in certificate input, but did "
					 "find a private key; PEM inputs may have been switched");
		else {
			km_buf_puts(err, "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after "
					 "skipping PEM blocks of the following types: ");
			skipped_types(err, skip, skipped);
		}
		goto fail;
	}
	ca->cert = sk_X509_value(ca->certs, 0);
	nk = pem_blocks(key_pem, kb, MAX_BLOCKS);
	const struct pem_block *key = NULL;
	for (size_t i = 0; i < nk && !key; i++)
		if (strcmp(kb[i].name, "PRIVATE KEY") == 0 || ends_with(kb[i].name, " PRIVATE KEY"))
			key = &kb[i];
	if (!key) {
		if (nk == 0) {
			km_buf_puts(err, "tls: failed to find any PEM data in key input");
		} else if (nk == 1 && strcmp(kb[0].name, "CERTIFICATE") == 0) {
			km_buf_puts(err, "tls: found a certificate rather than a key in the PEM for the private key");
		} else {
			km_buf_puts(err, "tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key "
					 "input after skipping PEM blocks of the following types: ");
			skipped_types(err, kb, nk);
		}
		goto fail;
	}
	/* PKCS#1, PKCS#8 and SEC1 as Go's parsePrivateKey tries them */
	const unsigned char *p = key->data;
	ca->key = d2i_AutoPrivateKey(NULL, &p, key->len);
	if (!ca->key) {
		p = key->data;
		ca->key = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, key->len);
	}
	if (!ca->key) {
		km_buf_puts(err, "tls: failed to parse private key");
		goto fail;
	}
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		km_buf_puts(err, "tls: private key does not match public key");
		goto fail;
	}
	if (prepare(ca)) {
		ssl_err(err, "unsupported CA key type");
		goto fail;
	}
	pem_free(cb, nc);
	pem_free(kb, nk);
	ERR_clear_error();
	return ca;
fail:
	pem_free(cb, nc);
	pem_free(kb, nk);
	cp_pki_x509_ca_free(ca);
	ERR_clear_error();
	return NULL;
}

int cp_pki_x509_ca_validate(const struct cp_pki_ca *ca, struct km_buf *err)
{
	size_t before = err->len;
	int n = sk_X509_num(ca->certs);
	for (int i = 0; i < n; i++) {
		X509 *x = sk_X509_value(ca->certs, i);
		uint32_t flags = X509_get_extension_flags(x);
		uint32_t ku = X509_get_key_usage(x); /* UINT32_MAX when absent */
		bool has_ku = (flags & EXFLAG_KUSAGE) != 0;
#define VIOLATION(msg) km_buf_printf(err, "%scert[%d]: %s", err->len > before ? "; " : "", i, msg)
		if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA))
			VIOLATION("basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. Basic Constraints)");
		if (!has_ku || !(ku & KU_KEY_CERT_SIGN))
			VIOLATION("key usage extension 'keyCertSign' must be set (see X509-SVID: 4.3. Key Usage)");
		if (has_ku && (ku & KU_KEY_AGREEMENT))
			VIOLATION("key usage extension 'keyAgreement' must NOT be set (see X509-SVID: Appendix A. "
				  "X.509 Field Reference)");
#undef VIOLATION
	}
	ERR_clear_error();
	return err->len > before ? -EINVAL : 0;
}

bool cp_pki_x509_ca_self_signed(const struct cp_pki_ca *ca)
{
	if (X509_NAME_cmp(X509_get_subject_name(ca->cert), X509_get_issuer_name(ca->cert)) != 0)
		return false;
	EVP_PKEY *pub = X509_get0_pubkey(ca->cert);
	bool ok = pub && X509_verify(ca->cert, pub) == 1;
	ERR_clear_error();
	return ok;
}

const unsigned char *cp_pki_x509_ca_fingerprint(const struct cp_pki_ca *ca)
{
	return ca->fp;
}

enum cp_pki_key cp_pki_x509_ca_key_type(const struct cp_pki_ca *ca)
{
	return ca->type;
}

bool cp_pki_x509_pem_equal(struct km_str a, struct km_str b)
{
	struct pem_block x, y;
	size_t nx = pem_blocks(a, &x, 1), ny = pem_blocks(b, &y, 1);
	bool eq = nx && ny && x.len == y.len && memcmp(x.data, y.data, (size_t)x.len) == 0;
	pem_free(&x, nx);
	pem_free(&y, ny);
	return eq;
}

/* ---- issuance ---- */

static size_t der_len(unsigned char *p, size_t n)
{
	if (n < 128) {
		p[0] = (unsigned char)n;
		return 1;
	}
	if (n < 256) {
		p[0] = 0x81;
		p[1] = (unsigned char)n;
		return 2;
	}
	p[0] = 0x82;
	p[1] = (unsigned char)(n >> 8);
	p[2] = (unsigned char)n;
	return 3;
}

/* DER tag + length + <n> bytes of <body> at <p>; returns bytes written. */
static size_t der_put(unsigned char *p, unsigned char tag, const unsigned char *body, size_t n)
{
	p[0] = tag;
	size_t h = 1 + der_len(p + 1, n);
	memcpy(p + h, body, n);
	return h + n;
}

/* The fast path for ECDSA leaves: OpenSSL 3's generic encoders cost ~0.5 ms
 * per key, so the SubjectPublicKeyInfo is set from the raw point and the
 * key is written as SEC1 (RFC 5915, what Go's MarshalECPrivateKey writes)
 * by hand. Returns 0, or -EINVAL to fall back to the generic path. */
static int ec_fast(EVP_PKEY *k, X509 *x, struct km_buf *key_pem)
{
	char group[32] = "";
	size_t glen = 0, publen = 0, fbytes;
	int nid;
	if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1)
		return -EINVAL;
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
		nid = NID_X9_62_prime256v1, fbytes = 32;
	else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
		nid = NID_secp384r1, fbytes = 48;
	else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
		nid = NID_secp521r1, fbytes = 66;
	else
		return -EINVAL;
	unsigned char pub[160], priv[66];
	if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof(pub), &publen) != 1 ||
	    publen != 2 * fbytes + 1 || pub[0] != 4)
		return -EINVAL;
	BIGNUM *bn = NULL;
	if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1)
		return -EINVAL;
	int ok = BN_bn2binpad(bn, priv, (int)fbytes) == (int)fbytes;
	BN_clear_free(bn);
	if (!ok)
		return -EINVAL;
	unsigned char *penc = OPENSSL_memdup(pub, publen);
	if (!penc || !X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
					     V_ASN1_OBJECT, OBJ_nid2obj(nid), penc, (int)publen)) {
		OPENSSL_free(penc);
		return -EINVAL;
	}
	/* ECPrivateKey ::= SEQUENCE { 1, OCTET STRING priv, [0] curve OID, [1] BIT STRING pub } */
	unsigned char oid[16], body[640], bits[300], tmp[320], der[660];
	unsigned char *op = oid;
	int oidlen = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &op);
	if (oidlen <= 0 || oidlen > (int)sizeof(oid))
		return -EINVAL;
	size_t n = 0;
	static const unsigned char version[] = {0x02, 0x01, 0x01};
	memcpy(body, version, sizeof(version));
	n += sizeof(version);
	n += der_put(body + n, 0x04, priv, fbytes);
	n += der_put(body + n, 0xa0, oid, (size_t)oidlen);
	bits[0] = 0; /* no unused bits */
	memcpy(bits + 1, pub, publen);
	size_t bl = der_put(tmp, 0x03, bits, publen + 1);
	n += der_put(body + n, 0xa1, tmp, bl);
	size_t dl = der_put(der, 0x30, body, n);
	OPENSSL_cleanse(priv, sizeof(priv));
	OPENSSL_cleanse(body, sizeof(body));
	BIO *bio = BIO_new(BIO_s_mem());
	ok = bio && PEM_write_bio(bio, "EC PRIVATE KEY", "", der, (long)dl) > 0;
	OPENSSL_cleanse(der, sizeof(der));
	if (ok)
		bio_to_buf(bio, key_pem);
	BIO_free(bio);
	return ok ? 0 : -EINVAL;
}

/* A fresh key from <keygen> and its certificate to be signed by <ca>:
 * version 3, random serial, the CA's subject as issuer, valid from <now_ns>
 * minus the clock skew to <now_ns> + <lifetime_ns> (*<na>, in seconds, when
 * given). 0, or a negative errno; *<xo> and *<key> are the caller's to free
 * either way. */
static int leaf_start(struct cp_pki_ca *ca, EVP_PKEY_CTX *keygen, int64_t now_ns, int64_t lifetime_ns, X509 **xo,
		      EVP_PKEY **key, int64_t *na)
{
	if (!keygen || EVP_PKEY_keygen(keygen, key) <= 0)
		return -EINVAL;
	X509 *x = *xo = X509_new();
	if (!x || !X509_set_version(x, 2))
		return -EINVAL;
	int rc = set_serial(x);
	if (rc)
		return rc;
	X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
	int64_t nb = now_ns / 1000000000LL - CP_PKI_CLOCK_SKEW_NS / 1000000000LL;
	int64_t after = (now_ns + lifetime_ns) / 1000000000LL;
	ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb);
	ASN1_TIME_set(X509_getm_notAfter(x), (time_t)after);
	if (na)
		*na = after;
	return 0;
}

static X509_EXTENSION *host_san(const char *name, int critical);

/* A leaf with the CA's prepared extensions and a subjectAltName of the URI
 * <spiffe_id>, or else of <host> (cp_pki_x509_issue_tls). */
static int issue_with(struct cp_pki_ca *ca, EVP_PKEY_CTX *keygen, const char *spiffe_id, const char *host,
		      int64_t now_ns, int64_t lifetime_ns, struct km_buf *cert_pem, struct km_buf *key_pem,
		      int64_t *not_after_ns)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509_EXTENSION *san = NULL;
	int64_t na;
	int rc = leaf_start(ca, keygen, now_ns, lifetime_ns, &x, &key, &na);
	if (rc)
		goto out;
	rc = -EINVAL;
	bool ec = ca->type == CP_PKI_KEY_EC_P256 || ca->type == CP_PKI_KEY_EC_P384 || ca->type == CP_PKI_KEY_EC_P521;
	bool fast = ec && ec_fast(key, x, key_pem) == 0;
	if (!fast && !X509_set_pubkey(x, key))
		goto out;
	/* critical: the subject is empty (RFC 5280 4.2.1.6) */
	san = spiffe_id ? uri_san(spiffe_id, 1) : host_san(host, 1);
	if (add_ext(x, ca->ext_ku) || add_ext(x, ca->ext_eku) || add_ext(x, ca->ext_bc) ||
	    (ca->ext_aki && add_ext(x, ca->ext_aki)) || add_ext(x, san))
		goto out;
	if (!X509_sign(x, ca->key, ca->md))
		goto out;
	rc = write_cert(x, cert_pem);
	if (!rc && !fast)
		rc = write_key(key, key_pem);
	if (!rc && not_after_ns)
		*not_after_ns = na * 1000000000LL;
out:
	X509_EXTENSION_free(san);
	X509_free(x);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}

int cp_pki_x509_issue(struct cp_pki_ca *ca, const char *spiffe_id, int64_t now_ns, int64_t lifetime_ns,
		      struct km_buf *cert_pem, struct km_buf *key_pem, int64_t *not_after_ns)
{
	return issue_with(ca, ca->keygen, spiffe_id, NULL, now_ns, lifetime_ns, cert_pem, key_pem, not_after_ns);
}

int cp_pki_x509_issue_mt(struct cp_pki_ca *ca, const char *spiffe_id, int64_t now_ns, int64_t lifetime_ns,
			 struct km_buf *cert_pem, struct km_buf *key_pem, int64_t *not_after_ns)
{
	/* the CA's own key-generation context is one object: a thread of its own */
	EVP_PKEY_CTX *kc = keygen_ctx(ca->type);
	int rc = issue_with(ca, kc, spiffe_id, NULL, now_ns, lifetime_ns, cert_pem, key_pem, not_after_ns);
	EVP_PKEY_CTX_free(kc);
	return rc;
}

/* ---- TLS certificates (CA, server, client) ---- */

/* A subjectAltName of one DNS name, or of one IP address when <name> is
 * one. */
static X509_EXTENSION *host_san(const char *name, int critical)
{
	GENERAL_NAME *gen = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_IPADD, name, 0);
	if (!gen) {
		ERR_clear_error();
		gen = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_DNS, name, 0);
	}
	GENERAL_NAMES *gens = gen ? GENERAL_NAMES_new() : NULL;
	if (!gens) {
		GENERAL_NAME_free(gen);
		return NULL;
	}
	sk_GENERAL_NAME_push(gens, gen);
	X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, critical, gens);
	GENERAL_NAMES_free(gens);
	return ext;
}

int cp_pki_x509_issue_tls(struct cp_pki_ca *ca, enum cp_pki_tls_role role, const char *cn, const char *host,
			  int64_t now_ns, int64_t lifetime_ns, struct km_buf *cert_pem, struct km_buf *key_pem)
{
	/* a leaf of an ECDSA P-256 issuer: the CA's prepared key generation and
	 * extensions (EKU serverAuth and clientAuth), a fifth of the cost */
	if (role != CP_PKI_TLS_CA && !cn && host && ca->type == CP_PKI_KEY_EC_P256)
		return issue_with(ca, ca->keygen, NULL, host, now_ns, lifetime_ns, cert_pem, key_pem, NULL);
	EVP_PKEY_CTX *kc = keygen_ctx(CP_PKI_KEY_EC_P256);
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509_EXTENSION *exts[5] = {0};
	int rc = leaf_start(ca, kc, now_ns, lifetime_ns, &x, &key, NULL);
	if (rc)
		goto out;
	rc = -EINVAL;
	kuma_subject(x, cn);
	if (!X509_set_pubkey(x, key))
		goto out;
	size_t n = 0;
	if (role == CP_PKI_TLS_CA) {
		static const int ku[] = {0 /* digitalSignature */, 5 /* keyCertSign */, 6 /* cRLSign */};
		exts[n++] = key_usage(ku, 3);
		exts[n++] = basic_constraints(true);
	} else {
		static const int ku[] = {0 /* digitalSignature */, 2 /* keyEncipherment */};
		exts[n++] = key_usage(ku, 2);
		exts[n++] = basic_constraints(false);
		EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
		if (eku) {
			sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(role == CP_PKI_TLS_SERVER ? NID_server_auth : NID_client_auth));
			exts[n++] = X509V3_EXT_i2d(NID_ext_key_usage, 0, eku);
			sk_ASN1_OBJECT_free(eku);
		} else {
			exts[n++] = NULL;
		}
	}
	exts[n++] = subject_key_id(x);
	if (host)
		exts[n++] = host_san(host, 0);
	for (size_t i = 0; i < n; i++)
		if (add_ext(x, exts[i]))
			goto out;
	if ((ca->ext_aki && add_ext(x, ca->ext_aki)) || !X509_sign(x, ca->key, ca->md))
		goto out;
	rc = write_pair(x, key, cert_pem, key_pem);
out:
	for (size_t i = 0; i < 5; i++)
		X509_EXTENSION_free(exts[i]);
	X509_free(x);
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(kc);
	ERR_clear_error();
	return rc;
}

/* ---- base64 ---- */

void cp_pki_base64_encode(struct km_buf *out, const void *data, size_t len)
{
	size_t n = 4 * ((len + 2) / 3);
	unsigned char *tmp = km_malloc(n + 1);
	EVP_EncodeBlock(tmp, data, (int)len);
	km_buf_append(out, tmp, n);
	free(tmp);
}

int cp_pki_base64_decode(struct km_buf *out, struct km_str in)
{
	if (in.len % 4 || in.len > (size_t)1 << 26)
		return -EINVAL;
	if (!in.len)
		return 0;
	unsigned char *tmp = km_malloc(in.len / 4 * 3 + 1);
	int n = EVP_DecodeBlock(tmp, (const unsigned char *)in.ptr, (int)in.len);
	if (n < 0) {
		free(tmp);
		return -EINVAL;
	}
	size_t pad = 0;
	if (in.ptr[in.len - 1] == '=')
		pad++;
	if (in.len > 1 && in.ptr[in.len - 2] == '=')
		pad++;
	km_buf_append(out, tmp, (size_t)n - pad);
	free(tmp);
	return 0;
}
