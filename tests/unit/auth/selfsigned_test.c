/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for lib/auth/selfsigned.c: both key types and uses, read back with
 * OpenSSL (self-signed CA, key usage, EKU, SANs by kind, validity, the key
 * matching the certificate and its PEM type). */
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

#include "../test.h"
#include "auth/selfsigned.h"

static void check(enum km_cert_use use, enum km_cert_key kt)
{
	static const char *const hosts[] = {"localhost", "10.1.2.3", "fd00::7", "kuma.internal"};
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT;
	time_t t0 = time(NULL);
	CHECK(km_cert_self_signed(use, kt, "localhost", hosts, 4, 300, &cert, &key) == 0);
	time_t t1 = time(NULL);
	CHECK(strncmp(km_buf_cstr(&key), kt == KM_CERT_RSA2048 ? "-----BEGIN RSA PRIVATE KEY-----"
								  : "-----BEGIN EC PRIVATE KEY-----", 30) == 0);
	BIO *b = BIO_new_mem_buf(cert.data, (int)cert.len);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(key.data, (int)key.len);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	CHECK(x && k && X509_check_private_key(x, k) == 1 && X509_verify(x, k) == 1);
	CHECK(X509_check_ca(x) >= 1);
	CHECK((X509_get_key_usage(x) & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_CERT_SIGN)) ==
	      (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_CERT_SIGN));
	uint32_t xku = X509_get_extended_key_usage(x);
	CHECK(use == KM_CERT_SERVER ? (xku & XKU_SSL_SERVER) && !(xku & XKU_SSL_CLIENT)
				    : (xku & XKU_SSL_CLIENT) && !(xku & XKU_SSL_SERVER));
	CHECK(X509_check_host(x, "localhost", 0, 0, NULL) == 1 && X509_check_host(x, "kuma.internal", 0, 0, NULL) == 1);
	CHECK(X509_check_ip_asc(x, "10.1.2.3", 0) == 1 && X509_check_ip_asc(x, "fd00::7", 0) == 1);
	CHECK(X509_check_ip_asc(x, "10.1.2.4", 0) != 1 && X509_check_host(x, "other", 0, 0, NULL) != 1);
	/* valid from five minutes before it was made, for ten years: bounds
	 * from the clock read before and after (an RSA key can take a while) */
	const int64_t ten_years = 10LL * 365 * 24 * 3600;
	time_t nb_lo = t0 - 301, nb_hi = t1 - 299, na_lo = t0 - 301 + ten_years, na_hi = t1 - 299 + ten_years;
	CHECK(X509_cmp_time(X509_get0_notBefore(x), &nb_lo) > 0 && X509_cmp_time(X509_get0_notBefore(x), &nb_hi) < 0);
	CHECK(X509_cmp_time(X509_get0_notAfter(x), &na_lo) > 0 && X509_cmp_time(X509_get0_notAfter(x), &na_hi) < 0);
	X509_free(x);
	EVP_PKEY_free(k);
	km_buf_fini(&cert);
	km_buf_fini(&key);
}

int main(void)
{
	check(KM_CERT_SERVER, KM_CERT_ECDSA_P256);
	check(KM_CERT_CLIENT, KM_CERT_ECDSA_P256);
	check(KM_CERT_SERVER, KM_CERT_RSA2048);
	return test_summary();
}
