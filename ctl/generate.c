/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl generate user-token|dataplane-token|zone-token|signing-key`:
 * tokens are issued by the control plane (POST /tokens/<kind>), or offline
 * with --signing-key-path/--kid (RS256, upstream's claims), and printed
 * without a newline as upstream does; signing keys are RSA 2048 PKCS#1 PEM. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "auth/selfsigned.h"
#include "ctl/ctl.h"
#include "resource/validate.h"

static int valid_for(struct ctl_ctx *c, int64_t *ns)
{
	*ns = 0;
	return km_duration_parse(km_str_c(ctl_args_str(c, "valid-for")), ns);
}

/* 0 = ask the control plane; 1 = issue offline; otherwise an exit code (2+). */
static int offline_mode(struct ctl_ctx *c)
{
	const char *skp = ctl_args_str(c, "signing-key-path");
	const char *kid = ctl_args_str(c, "kid");
	if (skp && *skp) {
		if (!kid || !*kid)
			return 1 + ctl_args_fail(
					   c, "--kid is required when --signing-key-path is used");
		return 1;
	}
	if (kid && *kid)
		return 1 + ctl_args_fail(c, "--kid cannot be used when --signing-key-path is used");
	return 0;
}

/* Signs <claims> plus upstream's registered claims (jti, iat/nbf 5 s in the
 * past, exp = iat + validFor + 5 s) with the key file, then prints it. */
static int issue_offline(struct ctl_ctx *c, struct km_json *claims, int64_t valid_for_ns)
{
	const char *path = ctl_args_str(c, "signing-key-path");
	FILE *f = fopen(path, "rb");
	if (!f)
		return ctl_args_fail(c, "open %s: no such file or directory", path);
	struct km_buf key = KM_BUF_INIT, tok = KM_BUF_INIT, err = KM_BUF_INIT;
	key.max = KM_JWT_MAX_KEY;
	char chunk[4096];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (km_buf_append(&key, chunk, n) < 0)
			rc = -E2BIG;
	fclose(f);
	unsigned char u[16];
	RAND_bytes(u, sizeof(u));
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	const char *jti = km_arena_printf(
		c->a, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		u[14], u[15]);
	int64_t now = (int64_t)time(NULL) - 5;
	km_json_set(c->a, claims, "exp", km_json_int(c->a, now + valid_for_ns / 1000000000 + 5));
	km_json_set(c->a, claims, "nbf", km_json_int(c->a, now));
	km_json_set(c->a, claims, "iat", km_json_int(c->a, now));
	km_json_set(c->a, claims, "jti", km_json_cstring(c->a, jti));
	if (rc == 0 && km_jwt_sign(&tok, km_buf_cstr(&key), key.len, ctl_args_str(c, "kid"), claims,
				   &err) == 0)
		rc = ctl_args_out(&tok);
	else
		rc = ctl_args_fail(c, "could not sign a token: %s",
				   err.len ? km_buf_cstr(&err) : "key too large");
	km_buf_fini(&key);
	km_buf_fini(&tok);
	km_buf_fini(&err);
	return rc;
}

static struct km_json *str_list(struct km_arena *a, const char **v, size_t n)
{
	if (n == 0)
		return km_json_null(a);
	struct km_json *arr = km_json_array(a);
	for (size_t i = 0; i < n; i++)
		km_json_array_push(a, arr, km_json_cstring(a, v[i]));
	return arr;
}

/* POSTs <req> to /tokens/<kind> and prints the token. */
static int issue(struct ctl_ctx *c, const char *kind, const struct km_json *req, const char *what)
{
	const struct ctl_cp *cp = ctl_client_cp(c);
	if (!cp)
		return 1;
	struct km_buf body = KM_BUF_INIT, err = KM_BUF_INIT;
	km_json_write(&body, req, 0, 0);
	struct ctl_resp r = {0};
	int rc = 0;
	const char *path = km_arena_printf(c->a, "/tokens/%s", kind);
	if (ctl_client_do(c, cp, "POST", path, km_buf_cstr(&body), &r, &err) < 0) {
		rc = ctl_args_fail(c, "%s: could not execute the request: %s", what,
				   km_buf_cstr(&err));
	} else if (r.status != 200) {
		const char *apierr = ctl_client_api_error(c->a, r.body);
		if (apierr)
			rc = ctl_args_fail(c, "%s", apierr);
		else
			rc = ctl_args_fail(c, "%s: (%ld): %.*s", what, r.status,
					   KM_STR_FMT(r.body));
	} else {
		fwrite(r.body.ptr, 1, r.body.len, stdout);
		fflush(stdout);
	}
	km_buf_fini(&body);
	km_buf_fini(&err);
	return rc;
}

int ctl_generate_user_token_run(struct ctl_ctx *c)
{
	int mode = offline_mode(c);
	if (mode > 1)
		return 1;
	int64_t ns;
	valid_for(c, &ns);
	const char **groups = NULL;
	size_t ng = ctl_args_all(c, "group", &groups);
	struct km_json *req = km_json_object(c->a);
	km_json_set(c->a, req, "name", km_json_cstring(c->a, ctl_args_str(c, "name")));
	km_json_set(c->a, req, "groups", str_list(c->a, groups, ng));
	if (mode == 1) {
		struct km_json *claims = km_json_object(c->a);
		km_json_set(c->a, claims, "Name", km_json_cstring(c->a, ctl_args_str(c, "name")));
		km_json_set(c->a, claims, "Groups", str_list(c->a, groups, ng));
		return issue_offline(c, claims, ns);
	}
	km_json_set(c->a, req, "validFor", km_json_cstring(c->a, km_duration_format(c->a, ns)));
	return issue(c, "user", req, "failed to generate a user token");
}

int ctl_generate_dataplane_token_run(struct ctl_ctx *c)
{
	const char *ptype = ctl_args_str(c, "proxy-type");
	if (ptype && *ptype && strcmp(ptype, "dataplane") != 0)
		return ctl_args_fail(c, "%s is not a valid proxy type", ptype);
	int mode = offline_mode(c);
	if (mode > 1)
		return 1;
	int64_t ns;
	valid_for(c, &ns);
	if (ns == 0 && mode == 0)
		return ctl_args_fail(
			c,
			"failed to generate a dataplane token: You must set a token validFor value");
	const char **tags = NULL;
	size_t nt = ctl_args_all(c, "tag", &tags);
	struct km_json *tj = km_json_object(c->a);
	for (size_t i = 0; i < nt; i++) {
		const char *eq = strchr(tags[i], '=');
		const char *k = km_arena_strndup(c->a, tags[i],
						 eq ? (size_t)(eq - tags[i]) : strlen(tags[i]));
		struct km_json *vals = km_json_array(c->a);
		const char *p = eq ? eq + 1 : "";
		for (;;) {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);
			km_json_array_push(c->a, vals, km_json_string(c->a, (struct km_str){p, n}));
			if (!comma)
				break;
			p = comma + 1;
		}
		km_json_set(c->a, tj, k, vals);
	}
	struct km_json *req = km_json_object(c->a);
	km_json_set(c->a, req, "name", km_json_cstring(c->a, ctl_args_str(c, "name")));
	km_json_set(c->a, req, "mesh", km_json_cstring(c->a, ctl_args_mesh(c)));
	km_json_set(c->a, req, "tags", tj);
	km_json_set(c->a, req, "type", km_json_cstring(c->a, ptype ? ptype : ""));
	km_json_set(c->a, req, "workload", km_json_cstring(c->a, ctl_args_str(c, "workload")));
	if (mode == 1) {
		struct km_json *claims = km_json_object(c->a);
		km_json_set(c->a, claims, "Name", km_json_cstring(c->a, ctl_args_str(c, "name")));
		km_json_set(c->a, claims, "Mesh", km_json_cstring(c->a, ctl_args_mesh(c)));
		km_json_set(c->a, claims, "Tags", tj);
		km_json_set(c->a, claims, "Type", km_json_cstring(c->a, ptype ? ptype : ""));
		km_json_set(c->a, claims, "Workload",
			    km_json_cstring(c->a, ctl_args_str(c, "workload")));
		return issue_offline(c, claims, ns);
	}
	km_json_set(c->a, req, "validFor", km_json_cstring(c->a, km_duration_format(c->a, ns)));
	return issue(c, "dataplane", req, "failed to generate a dataplane token");
}

int ctl_generate_zone_token_run(struct ctl_ctx *c)
{
	const char **scopes = NULL;
	size_t ns_ = ctl_args_all(c, "scope", &scopes);
	if (ns_) {
		struct km_buf b = KM_BUF_INIT;
		for (size_t i = 0; i < ns_; i++)
			km_buf_printf(&b, "%s%s", i ? " " : "", scopes[i]);
		int rc = ctl_args_fail(c, "invalid --scope values: [%s] (supported scopes: [])",
				       km_buf_cstr(&b));
		km_buf_fini(&b);
		return rc;
	}
	int mode = offline_mode(c);
	if (mode > 1)
		return 1;
	int64_t ns;
	valid_for(c, &ns);
	if (mode == 1) {
		struct km_json *claims = km_json_object(c->a);
		km_json_set(c->a, claims, "Zone", km_json_cstring(c->a, ctl_args_str(c, "zone")));
		km_json_set(c->a, claims, "Scope", km_json_null(c->a));
		return issue_offline(c, claims, ns);
	}
	struct km_json *req = km_json_object(c->a);
	km_json_set(c->a, req, "zone", km_json_cstring(c->a, ctl_args_str(c, "zone")));
	km_json_set(c->a, req, "scope", km_json_null(c->a));
	km_json_set(c->a, req, "validFor", km_json_cstring(c->a, km_duration_format(c->a, ns)));
	return issue(c, "zone", req, "failed to generate a zone token");
}

int ctl_generate_signing_key_run(struct ctl_ctx *c)
{
	const char *format = ctl_args_str(c, "format");
	struct km_buf pem = KM_BUF_INIT;
	if (km_jwt_keygen(&pem, KM_JWT_RSA_BITS) < 0) {
		km_buf_fini(&pem);
		return ctl_args_fail(c,
				     "could not generate signing key: failed to generate RSA key");
	}
	int rc = 0;
	if (!strcmp(format, "pem")) {
		rc = ctl_args_out(&pem);
	} else if (!strcmp(format, "pem-base64")) {
		struct km_buf b64 = KM_BUF_INIT;
		size_t cap = 4 * ((pem.len + 2) / 3) + 1;
		unsigned char *dst = km_arena_alloc(c->a, cap);
		int n = EVP_EncodeBlock(dst, (const unsigned char *)pem.data, (int)pem.len);
		km_buf_append(&b64, dst, (size_t)n);
		rc = ctl_args_out(&b64);
		km_buf_fini(&b64);
	} else {
		rc = ctl_args_fail(c, "invalid format");
	}
	km_buf_fini(&pem);
	return rc;
}

int ctl_generate_public_key_run(struct ctl_ctx *c)
{
	const char *path = ctl_args_str(c, "signing-key-path");
	struct km_buf key = KM_BUF_INIT, out = KM_BUF_INIT, err = KM_BUF_INIT;
	key.max = KM_JWT_MAX_KEY;
	FILE *f = fopen(path, "rb");
	int rc = 0;
	if (!f) {
		rc = ctl_args_fail(
			c, "could not read a signing key file: open %s: no such file or directory",
			path);
		goto out;
	}
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		km_buf_append(&key, chunk, n);
	fclose(f);
	if (!km_jwt_is_private_pem(km_buf_cstr(&key), key.len))
		rc = ctl_args_fail(c, "provided file is not a PEM-encoded signing key");
	else if (km_jwt_public_pem(&out, km_buf_cstr(&key), key.len, &err) < 0)
		rc = ctl_args_fail(c, "could not extract public key: %s", km_buf_cstr(&err));
	else
		rc = ctl_args_out(&out);
out:
	km_buf_fini(&key);
	km_buf_fini(&out);
	km_buf_fini(&err);
	return rc;
}

/* kumactl generate tls-certificate: a self-signed key and certificate pair
 * (upstream: "that can be used for example in Dataplane Token Server
 * setup"), RSA-2048 unless --key-type=ecdsa, written to --key-file (0400)
 * and --cert-file (0600), or stdout for "-". */
int ctl_generate_tls_certificate_run(struct ctl_ctx *c)
{
	const char *type = ctl_args_str(c, "type"), *key_type = ctl_args_str(c, "key-type");
	const char **given = NULL;
	size_t ngiven = ctl_args_all(c, "hostname", &given);
	/* pflag's StringSlice: comma-separated, repeatable */
	const char **hosts = km_arena_alloc(c->a, 64 * sizeof(*hosts));
	size_t n = 0;
	for (size_t i = 0; i < ngiven; i++)
		for (const char *p = given[i]; *p && n < 64;) {
			size_t l = strcspn(p, ",");
			if (l)
				hosts[n++] = km_arena_strndup(c->a, p, l);
			p += l + (p[l] == ',');
		}
	enum km_cert_use use;
	if (!strcmp(type, "server"))
		use = KM_CERT_SERVER;
	else if (!strcmp(type, "client"))
		use = KM_CERT_CLIENT;
	else
		return ctl_args_fail(c, "invalid certificate type \"%s\"", type);
	if (!n)
		return ctl_args_fail(c, "at least one hostname must be given");
	enum km_cert_key kt;
	if (!*key_type || !strcmp(key_type, "rsa"))
		kt = KM_CERT_RSA2048;
	else if (!strcmp(key_type, "ecdsa"))
		kt = KM_CERT_ECDSA_P256;
	else
		return ctl_args_fail(c, "invalid key type \"%s\"", key_type);
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT;
	/* upstream's DefaultAllowedClockSkew: 5 minutes. Go leaves the subject
	 * empty; libcurl (kumactl, curl) then fails with "couldn't get
	 * X509-issuer name", so the first hostname names it. */
	if (km_cert_self_signed(use, kt, hosts[0], hosts, n, 300, &cert, &key)) {
		km_buf_fini(&cert);
		km_buf_fini(&key);
		return ctl_args_fail(c, "could not generate certificate");
	}
	const char *key_file = ctl_args_str(c, "key-file"), *cert_file = ctl_args_str(c, "cert-file");
	int rc = 0;
	const struct {
		const char *path;
		struct km_buf *data;
		mode_t mode;
		const char *what;
	} out[2] = {{key_file, &key, 0400, "key"}, {cert_file, &cert, 0600, "cert"}};
	for (int i = 0; i < 2 && !rc; i++) {
		if (!strcmp(out[i].path, "-")) {
			rc = ctl_args_out(out[i].data);
			continue;
		}
		/* a fresh file with the mode from the start: the key is never readable by others */
		unlink(out[i].path);
		int fd = open(out[i].path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, out[i].mode);
		bool ok = fd >= 0 && write(fd, out[i].data->data, out[i].data->len) == (ssize_t)out[i].data->len;
		if (fd >= 0 && close(fd) != 0)
			ok = false;
		if (!ok)
			rc = ctl_args_fail(c, "could not write the %s file: %s: %s", out[i].what, out[i].path,
					   strerror(errno));
	}
	if (!rc && strcmp(key_file, "-") && strcmp(cert_file, "-"))
		printf("Private key saved in %s\nCertificate saved in %s\n", key_file, cert_file);
	OPENSSL_cleanse(key.data, key.len);
	km_buf_fini(&key);
	km_buf_fini(&cert);
	return rc;
}
