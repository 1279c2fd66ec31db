/* SPDX-License-Identifier: Apache-2.0 */
/* TLS settings (see tls.h). The table is Go's tls.CipherSuites() and
 * tls.InsecureCipherSuites() with OpenSSL's names for the same suites. */
#include "cp/config/tls.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <string.h>

struct suite {
	const char *go;      /* Go's name */
	const char *openssl; /* NULL: TLS 1.3 (not configurable) or not in OpenSSL 3 */
	bool secure;
	bool tls13;
};

static const struct suite suites[] = {
    {"TLS_AES_128_GCM_SHA256", NULL, true, true},
    {"TLS_AES_256_GCM_SHA384", NULL, true, true},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL, true, true},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", true, false},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", true, false},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", true, false},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", true, false},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", true, false},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", true, false},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", true, false},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", true, false},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", true, false},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", true, false},
    {"TLS_RSA_WITH_RC4_128_SHA", NULL, false, false},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", false, false},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", false, false},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", false, false},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256", false, false},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", false, false},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", false, false},
    {"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", NULL, false, false},
    {"TLS_ECDHE_RSA_WITH_RC4_128_SHA", NULL, false, false},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA", false, false},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256", false, false},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256", false, false},
};

int cp_tls_version(const char *name)
{
	if (!name || !*name)
		return 0;
	if (!strcmp(name, "TLSv1_2"))
		return TLS1_2_VERSION;
	if (!strcmp(name, "TLSv1_3"))
		return TLS1_3_VERSION;
	return -1;
}

static void names(struct km_buf *out, bool secure)
{
	km_buf_putc(out, '[');
	bool first = true;
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i].secure == secure) {
			if (!first)
				km_buf_putc(out, ' ');
			km_buf_puts(out, suites[i].go);
			first = false;
		}
	km_buf_putc(out, ']');
}

int cp_tls_ciphers(const struct cp_config_strlist *list, struct km_buf *out, int *dropped, struct km_buf *err)
{
	*dropped = 0;
	for (size_t k = 0; k < list->n; k++) {
		const struct suite *s = NULL;
		for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]) && !s; i++)
			if (!strcmp(suites[i].go, list->items[k]))
				s = &suites[i];
		if (!s) {
			if (err) {
				km_buf_printf(err, "unsupported tls cipher: %s supported ciphers insecure:",
					      list->items[k]);
				names(err, false);
				km_buf_puts(err, ", secure:");
				names(err, true);
			}
			return -EINVAL;
		}
		if (!s->openssl) {
			if (!s->tls13)
				(*dropped)++;
			continue;
		}
		if (out->len)
			km_buf_putc(out, ':');
		km_buf_puts(out, s->openssl);
	}
	return 0;
}

const char *cp_tls_gnutls_priorities(const char *min, const char *max)
{
	if (cp_tls_version(min) == TLS1_3_VERSION)
		return "NORMAL:-VERS-ALL:+VERS-TLS1.3";
	if (cp_tls_version(max) == TLS1_2_VERSION)
		return "NORMAL:-VERS-ALL:+VERS-TLS1.2";
	return "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
}
