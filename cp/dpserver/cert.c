/* SPDX-License-Identifier: Apache-2.0 */
/* dp-server certificate: load or generate (see cert.h). The generated
 * certificate is its own CA (basicConstraints CA:TRUE) with SANs for
 * localhost, this host name, the loopback addresses and every address of the
 * machine's interfaces (as upstream, so a kuma-dp on another host can verify
 * it with --ca-cert-file), valid ten years. */
#include "cp/dpserver/cert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "cp/config/config.h"

static int read_file(const char *path, struct km_buf *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		km_buf_append(out, buf, n);
	fclose(f);
	return 0;
}

static int mkdirs(const char *dir)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0700);
			*p = '/';
		}
	return mkdir(tmp, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

static void add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext) {
		X509_add_ext(cert, ext, -1);
		X509_EXTENSION_free(ext);
	}
}

static int generate(const char *cert_path, const char *key_path, struct km_buf *err)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	int rc = -EIO;
	if (!key || !cert)
		goto out;
	X509_set_version(cert, 2);
	unsigned char serial[16];
	FILE *ur = fopen("/dev/urandom", "rb");
	if (!ur || fread(serial, 1, sizeof(serial), ur) != sizeof(serial))
		memset(serial, 7, sizeof(serial));
	if (ur)
		fclose(ur);
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
	X509_set_pubkey(cert, key);
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"kuma-control-plane", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	char host[256] = "localhost";
	gethostname(host, sizeof(host) - 1);
	char san[4096];
	int sl = snprintf(san, sizeof(san), "DNS:localhost,DNS:%s,IP:127.0.0.1,IP:::1", host);
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
			char ip[INET6_ADDRSTRLEN];
			if (!i->ifa_addr)
				continue;
			if (i->ifa_addr->sa_family == AF_INET) {
				const struct in_addr *in = &((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
				if ((ntohl(in->s_addr) >> 24) == 127)
					continue;
				inet_ntop(AF_INET, in, ip, sizeof(ip));
			} else if (i->ifa_addr->sa_family == AF_INET6) {
				const struct in6_addr *in6 = &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
				if (IN6_IS_ADDR_LOOPBACK(in6) || IN6_IS_ADDR_LINKLOCAL(in6))
					continue;
				inet_ntop(AF_INET6, in6, ip, sizeof(ip));
			} else {
				continue;
			}
			if (strlen(san) + strlen(ip) + 5 >= sizeof(san) || strstr(san, ip))
				continue;
			sl += snprintf(san + sl, sizeof(san) - (size_t)sl, ",IP:%s", ip);
		}
		freeifaddrs(ifs);
	}
	add_ext(cert, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(cert, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign");
	add_ext(cert, NID_ext_key_usage, "serverAuth");
	add_ext(cert, NID_subject_alt_name, san);
	add_ext(cert, NID_subject_key_identifier, "hash");
	if (!X509_sign(cert, key, EVP_sha256()))
		goto out;
	FILE *kf = fopen(key_path, "wb");
	if (!kf)
		goto out;
	fchmod(fileno(kf), 0600);
	PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL);
	fclose(kf);
	FILE *cf = fopen(cert_path, "wb");
	if (!cf)
		goto out;
	PEM_write_X509(cf, cert);
	fclose(cf);
	rc = 0;
	km_info("dp-server", "generated a self-signed TLS certificate cert=%s", cert_path);
out:
	if (rc)
		km_buf_printf(err, "cannot generate the dp-server certificate in %s", cert_path);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

int cp_dpserver_cert_load(const struct cp_config *cfg, struct cp_dpserver_cert *out,
			  struct km_buf *err)
{
	return cp_server_cert_load(cfg, cfg->dp_server.tls_cert_file, cfg->dp_server.tls_key_file, out, err);
}

int cp_server_cert_load(const struct cp_config *cfg, const char *cert, const char *key,
			struct cp_dpserver_cert *out, struct km_buf *err)
{
	if (!cert || !*cert) {
		cert = cfg->general.tls_cert_file;
		key = cfg->general.tls_key_file;
	}
	if (cert && *cert) {
		snprintf(out->cert_path, sizeof(out->cert_path), "%s", cert);
		snprintf(out->key_path, sizeof(out->key_path), "%s", key ? key : "");
	} else {
		const char *dir = cfg->general.work_dir && *cfg->general.work_dir ? cfg->general.work_dir : "/tmp/kuma";
		if (mkdirs(dir)) {
			km_buf_printf(err, "cannot create work dir %s", dir);
			return -EIO;
		}
		snprintf(out->cert_path, sizeof(out->cert_path), "%s/kuma-cp.crt", dir);
		snprintf(out->key_path, sizeof(out->key_path), "%s/kuma-cp.key", dir);
		if (access(out->cert_path, R_OK) != 0 || access(out->key_path, R_OK) != 0) {
			int rc = generate(out->cert_path, out->key_path, err);
			if (rc)
				return rc;
		}
	}
	if (read_file(out->cert_path, &out->cert_pem)) {
		km_buf_printf(err, "cannot read certificate %s", out->cert_path);
		return -ENOENT;
	}
	if (read_file(out->key_path, &out->key_pem)) {
		km_buf_printf(err, "cannot read key %s", out->key_path);
		return -ENOENT;
	}
	return 0;
}

void cp_dpserver_cert_fini(struct cp_dpserver_cert *c)
{
	km_buf_fini(&c->cert_pem);
	if (c->key_pem.data)
		OPENSSL_cleanse(c->key_pem.data, c->key_pem.len);
	km_buf_fini(&c->key_pem);
}
