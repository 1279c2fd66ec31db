/* SPDX-License-Identifier: Apache-2.0 */
/* Validator of MeshTrust: caBundles (PEM blocks that are not private keys, as
 * upstream's pem.Decode check) and trustDomain (required, 253 characters).
 * PEM decoding goes through OpenSSL's generic PEM reader; nothing outlives
 * the call except violations in the caller's arena. */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "resource/validate_util.h"

/* Go's pem.Decode finds the first well-formed block; upstream then rejects
 * the private key block types. */
static bool is_pem_certificate(struct km_str s)
{
	static const char *const key_types[] = {"PRIVATE KEY",           "RSA PRIVATE KEY",
						"EC PRIVATE KEY",        "DSA PRIVATE KEY",
						"ENCRYPTED PRIVATE KEY", NULL};
	if (s.len == 0 || s.len > (size_t)1 << 24)
		return false;
	BIO *bio = BIO_new_mem_buf(s.ptr, (int)s.len);
	if (!bio)
		return false;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	bool ok = PEM_read_bio(bio, &name, &header, &data, &len) == 1;
	if (ok)
		ok = !km_v_in(km_str_c(name), key_types);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	ERR_clear_error();
	return ok;
}

static void ca_bundles(struct km_arena *a, struct km_violations *out, const struct km_json *spec)
{
	struct km_json *bundles = km_v_get(spec, "caBundles");
	if (!bundles || bundles->kind != KM_JSON_ARRAY || bundles->len == 0) {
		km_violations_add(out, "spec.caBundles", "must not be empty");
		return;
	}
	for (size_t i = 0; i < bundles->len; i++) {
		const struct km_json *b = bundles->items[i];
		struct km_str type = km_v_str(b, "type");
		if (!km_str_eqc(type, "Pem")) {
			km_violations_add(out, km_v_path(a, "spec.caBundles[%zu].type", i),
					  "%.*s must be one of: Pem", KM_STR_FMT(type));
			continue;
		}
		struct km_json *pem = km_v_get(b, "pem");
		if (!pem) {
			km_violations_add(out, km_v_path(a, "spec.caBundles[%zu].pem", i),
					  "must be defined");
			continue;
		}
		if (!is_pem_certificate(km_v_str(pem, "value")))
			km_violations_add(out, km_v_path(a, "spec.caBundles[%zu].pem.value", i),
					  "provided certificate has incorrect format");
	}
}

void km_validate_meshtrust(struct km_arena *a, const struct km_resource_doc *doc,
			   struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	ca_bundles(a, out, spec);
	struct km_str td = km_v_str(spec, "trustDomain");
	if (td.len == 0)
		km_violations_add(out, "spec.trustDomain", "trustDomain needs to be defined");
	if (td.len > 253)
		km_violations_add(out, "spec.trustDomain",
				  "must not be longer than 253 characters");
}
