/* SPDX-License-Identifier: Apache-2.0 */
/* The dp-server's TLS certificate: the configured files, or a self-signed
 * certificate generated on first start under general.workDir and reused
 * afterwards, so kuma-dp can pin it with --ca-cert-file. */
#ifndef CP_DPSERVER_CERT_H
#define CP_DPSERVER_CERT_H

#include "base/buf.h"

struct cp_config;

struct cp_dpserver_cert {
	char cert_path[512];
	char key_path[512];
	struct km_buf cert_pem; /* the certificate (the CA kuma-dp verifies against) */
	struct km_buf key_pem;  /* its key (the HTTPS API takes PEM text) */
};

/* 0, or a negative code with a message in <err>. */
int cp_dpserver_cert_load(const struct cp_config *cfg, struct cp_dpserver_cert *out,
			  struct km_buf *err);
/* The same for another server: <cert_file> and <key_file> when set, else
 * general.tlsCertFile / tlsKeyFile, else the generated certificate (upstream
 * autoconfigures the HTTPS API so). */
int cp_server_cert_load(const struct cp_config *cfg, const char *cert_file, const char *key_file,
			struct cp_dpserver_cert *out, struct km_buf *err);
void cp_dpserver_cert_fini(struct cp_dpserver_cert *c);

#endif
