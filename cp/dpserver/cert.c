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
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/selfsigned.h"
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

/* Writes <data> to <path> with <mode>. */
static int write_file(const char *path, const struct km_buf *data, mode_t mode)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	fchmod(fileno(f), mode);
	size_t n = data->len ? fwrite(data->data, 1, data->len, f) : 0;
	int rc = fclose(f) == 0 && n == data->len ? 0 : -EIO;
	return rc;
}

static int generate(const char *cert_path, const char *key_path, struct km_buf *err)
{
	/* localhost, the host name and every address but loopback ones (a
	 * kuma-dp on another host verifies the name it dials) */
	enum { MAX_HOSTS = 64 };
	char names[MAX_HOSTS][INET6_ADDRSTRLEN + 256];
	const char *hosts[MAX_HOSTS];
	size_t n = 0;
	char host[256] = "localhost";
	gethostname(host, sizeof(host) - 1);
	hosts[n++] = "localhost";
	snprintf(names[n], sizeof(names[n]), "%s", host);
	hosts[n] = names[n];
	n++;
	hosts[n++] = "127.0.0.1";
	hosts[n++] = "::1";
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i && n < MAX_HOSTS; i = i->ifa_next) {
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
			bool seen = false;
			for (size_t k = 0; k < n && !seen; k++)
				seen = strcmp(hosts[k], ip) == 0;
			if (seen)
				continue;
			snprintf(names[n], sizeof(names[n]), "%s", ip);
			hosts[n] = names[n];
			n++;
		}
		freeifaddrs(ifs);
	}
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT;
	int rc = km_cert_self_signed(KM_CERT_SERVER, KM_CERT_ECDSA_P256, "kuma-control-plane", hosts, n, 3600, &cert,
				     &key);
	if (!rc)
		rc = write_file(key_path, &key, 0600);
	if (!rc)
		rc = write_file(cert_path, &cert, 0644);
	if (rc)
		km_buf_printf(err, "cannot generate the dp-server certificate in %s", cert_path);
	else
		km_info("dp-server", "generated a self-signed TLS certificate cert=%s", cert_path);
	if (key.data)
		OPENSSL_cleanse(key.data, key.len);
	km_buf_fini(&key);
	km_buf_fini(&cert);
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
