/* SPDX-License-Identifier: Apache-2.0 */
/* The TLS settings of kuma-cp's servers as upstream spells them
 * (pkg/config/types/tls.go): versions "TLSv1_2" / "TLSv1_3" and Go's
 * cipher suite names, mapped to OpenSSL's. */
#ifndef CP_CONFIG_TLS_H
#define CP_CONFIG_TLS_H

#include <stdbool.h>

#include "base/buf.h"
#include "cp/config/config.h"

/* OpenSSL's protocol version for <name>: 0 for "" (no bound),
 * TLS1_2_VERSION, TLS1_3_VERSION, or -1 for anything else. */
int cp_tls_version(const char *name);

/* Go's cipher suite names <suites> as an OpenSSL cipher list for TLS 1.2
 * (TLS 1.3 suites are accepted and, as Go does, not configurable: they are
 * left out), appended to <out> joined by ':'. Suites OpenSSL 3 does not
 * have (RC4) are left out too; <dropped> counts them. An empty result
 * leaves OpenSSL's default list. 0, or -EINVAL with upstream's message in
 * <err> (when not NULL) for a name Go does not know. */
int cp_tls_ciphers(const struct cp_config_strlist *suites, struct km_buf *out, int *dropped, struct km_buf *err);

/* GnuTLS priorities (libmicrohttpd's servers) for versions <min>..<max>
 * as cp_tls_version reads them: TLS 1.2 and 1.3 unless a bound narrows. */
const char *cp_tls_gnutls_priorities(const char *min, const char *max);

#endif
