/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for cp/config: defaults, YAML file, KUMA_* env, errors, JSON view. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cp/config/config.h"
#include "resource/validate.h"
#include <errno.h>
#include "../test.h"

static char tmpdir[] = "/tmp/km-config-test-XXXXXX";

static const char *write_tmp(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_duration(void)
{
	int64_t d;
	CHECK(cp_config_duration_parse("72h", 3, &d) == 0 && d == 72ll * 3600 * 1000000000);
	CHECK(cp_config_duration_parse("1.5s", 4, &d) == 0 && d == 1500000000);
	CHECK(cp_config_duration_parse("2m30s", 5, &d) == 0 && d == 150000000000ll);
	CHECK(cp_config_duration_parse("0", 1, &d) == 0 && d == 0);
	CHECK(cp_config_duration_parse("-100ms", 6, &d) == 0 && d == -100000000);
	CHECK(cp_config_duration_parse("5", 1, &d) == -EINVAL);
	CHECK(cp_config_duration_parse("", 0, &d) == -EINVAL);
	CHECK(cp_config_duration_parse("1x", 2, &d) == -EINVAL);
	CHECK(cp_config_duration_parse("99999999999h", 12, &d) != 0);
	struct km_arena *a = km_arena_new(0);
	CHECK_STREQ(km_duration_format(a, 72ll * 3600 * 1000000000), "72h0m0s");
	CHECK_STREQ(km_duration_format(a, 200000000), "200ms");
	CHECK_STREQ(km_duration_format(a, 0), "0s");
	CHECK_STREQ(km_duration_format(a, 120000000000ll), "2m0s");
	km_arena_free(a);
}

static void test_defaults(void)
{
	struct cp_config c;
	struct km_buf err = KM_BUF_INIT;
	cp_config_init_defaults(&c);
	CHECK_STREQ(c.environment, "universal");
	CHECK_STREQ(c.mode, "zone");
	CHECK_STREQ(c.store.type, "memory");
	CHECK(c.store.postgres.port == 15432);
	CHECK_STREQ(c.store.postgres.password, "kuma");
	CHECK(c.store.postgres.max_open_connections == 50);
	CHECK(c.store.upsert.conflict_retry_max_times == 10);
	CHECK(c.api_server.http.port == 5681 && c.api_server.http.enabled);
	CHECK(c.api_server.https.port == 5682);
	CHECK(c.api_server.authn.localhost_is_admin);
	CHECK(c.api_server.authn.tokens.bootstrap_admin_token);
	CHECK_STREQ(c.api_server.base_path, "/");
	CHECK_STREQ(c.api_server.gui.base_path, "/gui");
	CHECK(c.diagnostics.server_port == 5680);
	CHECK(c.dp_server.port == 5678);
	CHECK(c.multizone.global.kds.grpc_port == 5685);
	CHECK_STREQ(c.multizone.zone.name, "default");
	CHECK(c.runtime.universal.dataplane_cleanup_age == 72ll * 3600 * 1000000000);
	CHECK(c.general.dns_cache_ttl == 10ll * 1000000000);
	CHECK(c.access.static_.generate_user_token.users.n == 1);
	CHECK_STREQ(c.access.static_.generate_user_token.users.items[0], "mesh-system:admin");
	CHECK(c.access.static_.view_stats.users.n == 0);
	CHECK(c.access.static_.view_stats.groups.n == 2);
	CHECK(c.policies.plugin_policies_enabled.n == 16);
	CHECK(c.core_resources.enabled.n == 9);
	CHECK(c.ipam.known_internal_cidrs.n == 7);
	CHECK(c.event_bus.buffer_size == 100);
	CHECK(cp_config_validate(&c, &err) == 0);
	CHECK_STREQ(km_buf_cstr(&err), "");
	const char *groups[] = {"mesh-system:authenticated"};
	CHECK(cp_config_access_allows(&c.access.static_.view_stats.users,
				      &c.access.static_.view_stats.groups, "x", groups, 1));
	CHECK(!cp_config_access_allows(&c.access.static_.admin_resources.users,
				       &c.access.static_.admin_resources.groups, "x", groups, 1));
	cp_config_fini(&c);
	km_buf_fini(&err);
}

static void test_file_and_env(void)
{
	struct cp_config c;
	struct km_buf err = KM_BUF_INIT;
	const char *path = write_tmp("a.yaml", "mode: global\n"
					       "store:\n"
					       "  type: postgres\n"
					       "  postgres:\n"
					       "    host: db.local\n"
					       "    port: 5432\n"
					       "    password: s3cret\n"
					       "    tls:\n"
					       "      certPath:\n"
					       "apiServer:\n"
					       "  HTTP:\n" /* keys match case-insensitively */
					       "    port: 15681\n"
					       "  corsAllowedDomains: [\"a.com\", \"b.com\"]\n"
					       "  authn:\n"
					       "    tokens:\n"
					       "      validator:\n"
					       "        publicKeys:\n"
					       "        - kid: \"1\"\n"
					       "          key: PEM\n"
					       "runtime:\n"
					       "  universal:\n"
					       "    dataplaneCleanupAge: 5h\n"
					       "xdsServer:\n"
					       "  nackBackoff: 1000000000\n"
					       "unknownKey: {deep: 1}\n");
	char *envp[] = {"KUMA_API_SERVER_HTTP_PORT=25681",
			"KUMA_STORE_POSTGRES_TLS_ROOT_CERT_PATH=/ca.pem",
			"KUMA_ACCESS_STATIC_ADMIN_RESOURCES_USERS=alice,bob",
			"KUMA_DEFAULTS_SKIP_MESH_CREATION=true",
			"KUMA_GENERAL_DNS_CACHE_TTL=1m",
			"KUMA_CORE_RESOURCES_ENABLED=",
			"OTHER=1",
			NULL};
	cp_config_init_defaults(&c);
	CHECK(cp_config_load(&c, path, envp, &err) == 0);
	CHECK_STREQ(km_buf_cstr(&err), "");
	CHECK_STREQ(c.mode, "global");
	CHECK_STREQ(c.store.type, "postgres");
	CHECK_STREQ(c.store.postgres.host, "db.local");
	CHECK(c.store.postgres.port == 5432);
	CHECK_STREQ(c.store.postgres.user, "kuma");
	CHECK_STREQ(c.store.postgres.tls.cert_path, "");
	CHECK_STREQ(c.store.postgres.tls.ca_path, "/ca.pem");
	CHECK(c.api_server.http.port == 25681); /* env beats file */
	CHECK(c.api_server.cors_allowed_domains.n == 2);
	CHECK(c.api_server.authn.tokens.validator.public_keys.n == 1);
	CHECK_STREQ(c.api_server.authn.tokens.validator.public_keys.items[0].key, "PEM");
	CHECK(c.runtime.universal.dataplane_cleanup_age == 5ll * 3600 * 1000000000);
	CHECK(c.xds_server.nack_backoff == 1000000000);
	CHECK(c.access.static_.admin_resources.users.n == 2);
	CHECK_STREQ(c.access.static_.admin_resources.users.items[1], "bob");
	CHECK(c.defaults.skip_mesh_creation);
	CHECK(c.general.dns_cache_ttl == 60ll * 1000000000);
	CHECK(c.core_resources.enabled.n == 0);
	CHECK(cp_config_validate(&c, &err) == 0);

	struct km_arena *a = km_arena_new(0);
	struct km_buf out = KM_BUF_INIT;
	struct km_json *j = cp_config_to_json(a, &c);
	km_json_write(&out, j, 0, 0);
	CHECK(strstr(out.data, "\"password\":\"*****\"") != NULL);
	CHECK(strstr(out.data, "s3cret") == NULL);
	CHECK(strstr(out.data, "\"dataplaneCleanupAge\":\"5h0m0s\"") != NULL);
	CHECK(strstr(out.data, "\"http\":{\"enabled\":true,\"interface\":\"0.0.0.0\",\"port\":25681}") != NULL);
	CHECK(strncmp(out.data, "{\"general\":{\"dnsCacheTTL\":\"1m0s\"", 32) == 0);
	CHECK(strstr(out.data, "\"experimental\":{}") != NULL);
	CHECK(strstr(out.data, "\"tracing\":{\"openTelemetry\":{}}") != NULL);
	CHECK(strstr(out.data, "\"publicKeys\":[{\"kid\":\"1\",\"key\":\"PEM\"}]") != NULL);
	CHECK(strstr(out.data, "Reconnect") == NULL);
	km_buf_fini(&out);
	km_arena_free(a);
	cp_config_fini(&c);
	km_buf_fini(&err);
}

static void test_errors(void)
{
	struct cp_config c;
	struct km_buf err = KM_BUF_INIT;
	char path[300];

	/* missing file */
	cp_config_init_defaults(&c);
	snprintf(path, sizeof(path), "%s/missing.yaml", tmpdir);
	CHECK(cp_config_load(&c, path, NULL, &err) == -ENOENT);
	CHECK(strstr(km_buf_cstr(&err), "unable to access configuration file") != NULL);
	km_buf_reset(&err);

	/* invalid YAML */
	const char *p = write_tmp("bad.yaml", "apiServer: [unclosed\n");
	CHECK(cp_config_load(&c, p, NULL, &err) == -EINVAL);
	CHECK(strstr(km_buf_cstr(&err), "bad.yaml") != NULL);
	km_buf_reset(&err);

	/* wrong type in file */
	p = write_tmp("type.yaml", "apiServer:\n  http:\n    port: \"abc\"\n");
	CHECK(cp_config_load(&c, p, NULL, &err) == -EINVAL);
	CHECK(strstr(km_buf_cstr(&err), "type.yaml") != NULL);
	CHECK(strstr(km_buf_cstr(&err), "apiServer.http.port") != NULL);
	CHECK(strstr(km_buf_cstr(&err), "cannot unmarshal string") != NULL);
	km_buf_reset(&err);

	p = write_tmp("neg.yaml", "apiServer:\n  http:\n    port: -1\n");
	CHECK(cp_config_load(&c, p, NULL, &err) == -EINVAL);
	CHECK(strstr(km_buf_cstr(&err), "cannot unmarshal number -1") != NULL);
	km_buf_reset(&err);

	p = write_tmp("obj.yaml", "apiServer: 5\n");
	CHECK(cp_config_load(&c, p, NULL, &err) == -EINVAL);
	CHECK(strstr(km_buf_cstr(&err), "field apiServer of type object") != NULL);
	km_buf_reset(&err);

	p = write_tmp("dur.yaml", "general:\n  dnsCacheTTL: 10 seconds\n");
	CHECK(cp_config_load(&c, p, NULL, &err) == -EINVAL);
	CHECK(strstr(km_buf_cstr(&err), "general.dnsCacheTTL: time: invalid duration") != NULL);
	km_buf_reset(&err);

	p = write_tmp("empty.yaml", "");
	CHECK(cp_config_load(&c, p, NULL, &err) == 0);

	/* wrong type in env */
	char *env1[] = {"KUMA_API_SERVER_HTTP_PORT=abc", NULL};
	CHECK(cp_config_load(&c, NULL, env1, &err) == -EINVAL);
	CHECK(strstr(km_buf_cstr(&err), "KUMA_API_SERVER_HTTP_PORT") != NULL);
	km_buf_reset(&err);
	char *env2[] = {"KUMA_API_SERVER_READ_ONLY=yes", NULL};
	CHECK(cp_config_load(&c, NULL, env2, &err) == -EINVAL);
	km_buf_reset(&err);
	char *env3[] = {"KUMA_METRICS_DATAPLANE_IDLE_TIMEOUT=5", NULL};
	CHECK(cp_config_load(&c, NULL, env3, &err) == -EINVAL);
	CHECK(strstr(km_buf_cstr(&err), "invalid duration") != NULL);
	km_buf_reset(&err);
	cp_config_fini(&c);

	/* validation */
	cp_config_init_defaults(&c);
	char *env4[] = {"KUMA_MODE=mars", "KUMA_STORE_TYPE=etcd", "KUMA_API_SERVER_HTTP_PORT=0",
			"KUMA_MULTIZONE_ZONE_NAME=Bad_Name", NULL};
	CHECK(cp_config_load(&c, NULL, env4, &err) == 0);
	CHECK(cp_config_validate(&c, &err) == -EINVAL);
	CHECK(strstr(km_buf_cstr(&err), "invalid mode") != NULL);
	CHECK(strstr(km_buf_cstr(&err), "Type should be either postgres or memory") != NULL);
	CHECK(strstr(km_buf_cstr(&err), "apiServer.http.port: port must be in range") != NULL);
	km_buf_reset(&err);
	cp_config_fini(&c);

	cp_config_init_defaults(&c);
	char *env5[] = {"KUMA_STORE_TYPE=postgres", "KUMA_STORE_POSTGRES_HOST=",
			"KUMA_STORE_POSTGRES_TLS_MODE=verifyCa", "KUMA_MULTIZONE_ZONE_NAME=Bad_Name",
			NULL};
	CHECK(cp_config_load(&c, NULL, env5, &err) == 0);
	CHECK(cp_config_validate(&c, &err) == -EINVAL);
	CHECK(strstr(km_buf_cstr(&err), "Host should not be empty") != NULL);
	CHECK(strstr(km_buf_cstr(&err), "CAPath cannot be empty") != NULL);
	CHECK(strstr(km_buf_cstr(&err), "RFC1035") != NULL);
	cp_config_fini(&c);
	km_buf_fini(&err);
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 2;
	test_duration();
	test_defaults();
	test_file_and_env();
	test_errors();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	return test_summary();
}
