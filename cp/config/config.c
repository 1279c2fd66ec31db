/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-cp configuration loader. One static table lists every setting with its
 * path, env variable, type, default and optional check; defaults, the YAML
 * file, the environment and the JSON view all walk that table. Values live in
 * the config's arena (replaced values stay there until cp_config_fini). */
#include "cp/config/config.h"
#include "cp/config/tls.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/str.h"
#include "codec/yaml.h"
#include "resource/validate.h"

#define CONFIG_FILE_MAX (4u << 20) /* a kuma-cp.yaml is a few KiB */

static int check_port(const struct cp_config_field *f, const void *v, struct km_buf *err);
static int check_port0(const struct cp_config_field *f, const void *v, struct km_buf *err);
static int check_positive(const struct cp_config_field *f, const void *v, struct km_buf *err);
static int check_nonneg(const struct cp_config_field *f, const void *v, struct km_buf *err);
static int check_percent(const struct cp_config_field *f, const void *v, struct km_buf *err);
static int check_pg_tls_mode(const struct cp_config_field *f, const void *v, struct km_buf *err);
static int check_mode(const struct cp_config_field *f, const void *v, struct km_buf *err);
static int check_environment(const struct cp_config_field *f, const void *v, struct km_buf *err);
static int check_store_type(const struct cp_config_field *f, const void *v, struct km_buf *err);

/* Upstream's JSON order (pkg/config/app/kuma-cp/config.go and the structs it
 * embeds); env names are the envconfig tags, aliases the names annotated in
 * kuma-cp.defaults.yaml where the two differ. */
static const struct cp_config_field fields[] = {
	{"general.dnsCacheTTL", "KUMA_GENERAL_DNS_CACHE_TTL", NULL, CP_CF_DURATION, "10s", offsetof(struct cp_config, general.dns_cache_ttl), 0, NULL},
	{"general.tlsCertFile", "KUMA_GENERAL_TLS_CERT_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, general.tls_cert_file), 0, NULL},
	{"general.tlsKeyFile", "KUMA_GENERAL_TLS_KEY_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, general.tls_key_file), 0, NULL},
	{"general.tlsMinVersion", "KUMA_GENERAL_TLS_MIN_VERSION", NULL, CP_CF_STRING, "TLSv1_2", offsetof(struct cp_config, general.tls_min_version), 0, NULL},
	{"general.tlsMaxVersion", "KUMA_GENERAL_TLS_MAX_VERSION", NULL, CP_CF_STRING, "", offsetof(struct cp_config, general.tls_max_version), 0, NULL},
	{"general.tlsCipherSuites", "KUMA_GENERAL_TLS_CIPHER_SUITES", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, general.tls_cipher_suites), 0, NULL},
	{"general.workDir", "KUMA_GENERAL_WORK_DIR", NULL, CP_CF_STRING, "", offsetof(struct cp_config, general.work_dir), 0, NULL},
	{"general.resilientComponentBaseBackoff", "KUMA_GENERAL_RESILIENT_COMPONENT_BASE_BACKOFF", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, general.resilient_component_base_backoff), 0, NULL},
	{"general.resilientComponentMaxBackoff", "KUMA_GENERAL_RESILIENT_COMPONENT_MAX_BACKOFF", NULL, CP_CF_DURATION, "1m", offsetof(struct cp_config, general.resilient_component_max_backoff), 0, NULL},
	{"general.certGenerationBaseBackoff", "KUMA_GENERAL_CERT_GENERATION_BASE_BACKOFF", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, general.cert_generation_base_backoff), 0, NULL},
	{"general.certGenerationMaxBackoff", "KUMA_GENERAL_CERT_GENERATION_MAX_BACKOFF", NULL, CP_CF_DURATION, "5m", offsetof(struct cp_config, general.cert_generation_max_backoff), 0, NULL},
	{"general.certGenerationCircuitBreakerMinProxies", "KUMA_GENERAL_CERT_GENERATION_CIRCUIT_BREAKER_MIN_PROXIES", NULL, CP_CF_INT, "10", offsetof(struct cp_config, general.cert_generation_circuit_breaker_min_proxies), 0, NULL},
	{"environment", "KUMA_ENVIRONMENT", NULL, CP_CF_STRING, "universal", offsetof(struct cp_config, environment), CF_OMITEMPTY, check_environment},
	{"mode", "KUMA_MODE", NULL, CP_CF_STRING, "zone", offsetof(struct cp_config, mode), 0, check_mode},
	{"store.type", "KUMA_STORE_TYPE", NULL, CP_CF_STRING, "memory", offsetof(struct cp_config, store.type), 0, check_store_type},
	{"store.postgres.host", "KUMA_STORE_POSTGRES_HOST", NULL, CP_CF_STRING, "127.0.0.1", offsetof(struct cp_config, store.postgres.host), 0, NULL},
	{"store.postgres.port", "KUMA_STORE_POSTGRES_PORT", NULL, CP_CF_INT, "15432", offsetof(struct cp_config, store.postgres.port), 0, check_port},
	{"store.postgres.user", "KUMA_STORE_POSTGRES_USER", NULL, CP_CF_STRING, "kuma", offsetof(struct cp_config, store.postgres.user), 0, NULL},
	{"store.postgres.password", "KUMA_STORE_POSTGRES_PASSWORD", NULL, CP_CF_STRING, "kuma", offsetof(struct cp_config, store.postgres.password), CF_SECRET, NULL},
	{"store.postgres.dbName", "KUMA_STORE_POSTGRES_DB_NAME", NULL, CP_CF_STRING, "kuma", offsetof(struct cp_config, store.postgres.db_name), 0, NULL},
	{"store.postgres.driverName", "KUMA_STORE_POSTGRES_DRIVER_NAME", NULL, CP_CF_STRING, "pgx", offsetof(struct cp_config, store.postgres.driver_name), 0, NULL},
	{"store.postgres.connectionTimeout", "KUMA_STORE_POSTGRES_CONNECTION_TIMEOUT", NULL, CP_CF_INT, "5", offsetof(struct cp_config, store.postgres.connection_timeout), 0, NULL},
	{"store.postgres.maxConnectionIdleTime", "KUMA_STORE_POSTGRES_MAX_CONNECTION_IDLE_TIME", NULL, CP_CF_DURATION, "30m", offsetof(struct cp_config, store.postgres.max_connection_idle_time), 0, NULL},
	{"store.postgres.maxConnectionLifetime", "KUMA_STORE_POSTGRES_MAX_CONNECTION_LIFETIME", NULL, CP_CF_DURATION, "1h", offsetof(struct cp_config, store.postgres.max_connection_lifetime), 0, NULL},
	{"store.postgres.maxConnectionLifetimeJitter", "KUMA_STORE_POSTGRES_MAX_CONNECTION_LIFETIME_JITTER", NULL, CP_CF_DURATION, "1m", offsetof(struct cp_config, store.postgres.max_connection_lifetime_jitter), 0, NULL},
	{"store.postgres.healthCheckInterval", "KUMA_STORE_POSTGRES_HEALTH_CHECK_INTERVAL", NULL, CP_CF_DURATION, "30s", offsetof(struct cp_config, store.postgres.health_check_interval), 0, NULL},
	{"store.postgres.minOpenConnections", "KUMA_STORE_POSTGRES_MIN_OPEN_CONNECTIONS", NULL, CP_CF_INT, "0", offsetof(struct cp_config, store.postgres.min_open_connections), 0, NULL},
	{"store.postgres.maxOpenConnections", "KUMA_STORE_POSTGRES_MAX_OPEN_CONNECTIONS", NULL, CP_CF_INT, "50", offsetof(struct cp_config, store.postgres.max_open_connections), 0, NULL},
	{"store.postgres.maxIdleConnections", "KUMA_STORE_POSTGRES_MAX_IDLE_CONNECTIONS", NULL, CP_CF_INT, "50", offsetof(struct cp_config, store.postgres.max_idle_connections), 0, NULL},
	{"store.postgres.minReconnectInterval", "KUMA_STORE_POSTGRES_MIN_RECONNECT_INTERVAL", NULL, CP_CF_DURATION, "10s", offsetof(struct cp_config, store.postgres.min_reconnect_interval), CF_NOJSON, NULL},
	{"store.postgres.maxReconnectInterval", "KUMA_STORE_POSTGRES_MAX_RECONNECT_INTERVAL", NULL, CP_CF_DURATION, "1m", offsetof(struct cp_config, store.postgres.max_reconnect_interval), CF_NOJSON, NULL},
	{"store.postgres.tls.mode", "KUMA_STORE_POSTGRES_TLS_MODE", NULL, CP_CF_STRING, "disable", offsetof(struct cp_config, store.postgres.tls.mode), 0, check_pg_tls_mode},
	{"store.postgres.tls.certPath", "KUMA_STORE_POSTGRES_TLS_CERT_PATH", NULL, CP_CF_STRING, "", offsetof(struct cp_config, store.postgres.tls.cert_path), 0, NULL},
	{"store.postgres.tls.keyPath", "KUMA_STORE_POSTGRES_TLS_KEY_PATH", NULL, CP_CF_STRING, "", offsetof(struct cp_config, store.postgres.tls.key_path), 0, NULL},
	{"store.postgres.tls.caPath", "KUMA_STORE_POSTGRES_TLS_CA_PATH", "KUMA_STORE_POSTGRES_TLS_ROOT_CERT_PATH", CP_CF_STRING, "", offsetof(struct cp_config, store.postgres.tls.ca_path), 0, NULL},
	{"store.postgres.tls.disableSSLSNI", "KUMA_STORE_POSTGRES_TLS_DISABLE_SSLSNI", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, store.postgres.tls.disable_sslsni), 0, NULL},
	{"store.postgres.maxListQueryElements", "KUMA_STORE_POSTGRES_MAX_LIST_QUERY_ELEMENTS", NULL, CP_CF_UINT, "0", offsetof(struct cp_config, store.postgres.max_list_query_elements), 0, NULL},
	{"store.postgres.readReplica.host", "KUMA_STORE_POSTGRES_READ_REPLICA_HOST", NULL, CP_CF_STRING, "", offsetof(struct cp_config, store.postgres.read_replica.host), 0, NULL},
	{"store.postgres.readReplica.port", "KUMA_STORE_POSTGRES_READ_REPLICA_PORT", NULL, CP_CF_UINT, "5432", offsetof(struct cp_config, store.postgres.read_replica.port), 0, check_port0},
	{"store.postgres.readReplica.ratio", "KUMA_STORE_POSTGRES_READ_REPLICA_RATIO", NULL, CP_CF_UINT, "100", offsetof(struct cp_config, store.postgres.read_replica.ratio), 0, check_percent},
	{"store.postgres.tolerateNewerDBVersions", "KUMA_STORE_POSTGRES_TOLERATE_NEWER_DB_VERSIONS", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, store.postgres.tolerate_newer_db_versions), 0, NULL},
	{"store.kubernetes.systemNamespace", "KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE", NULL, CP_CF_STRING, "kuma-system", offsetof(struct cp_config, store.kubernetes.system_namespace), 0, NULL},
	{"store.cache.enabled", "KUMA_STORE_CACHE_ENABLED", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, store.cache.enabled), 0, NULL},
	{"store.cache.expirationTime", "KUMA_STORE_CACHE_EXPIRATION_TIME", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, store.cache.expiration_time), 0, NULL},
	{"store.upsert.conflictRetryBaseBackoff", "KUMA_STORE_UPSERT_CONFLICT_RETRY_BASE_BACKOFF", NULL, CP_CF_DURATION, "200ms", offsetof(struct cp_config, store.upsert.conflict_retry_base_backoff), 0, check_nonneg},
	{"store.upsert.conflictRetryMaxTimes", "KUMA_STORE_UPSERT_CONFLICT_RETRY_MAX_TIMES", NULL, CP_CF_UINT, "10", offsetof(struct cp_config, store.upsert.conflict_retry_max_times), 0, NULL},
	{"store.upsert.conflictRetryJitterPercent", "KUMA_STORE_UPSERT_CONFLICT_RETRY_JITTER_PERCENT", NULL, CP_CF_UINT, "30", offsetof(struct cp_config, store.upsert.conflict_retry_jitter_percent), 0, NULL},
	{"store.unsafeDelete", "KUMA_STORE_UNSAFE_DELETE", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, store.unsafe_delete), 0, NULL},
	{"bootstrapServer.params.adminAddress", "KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ADDRESS", NULL, CP_CF_STRING, "127.0.0.1", offsetof(struct cp_config, bootstrap_server.params.admin_address), 0, NULL},
	{"bootstrapServer.params.adminPort", "KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_PORT", NULL, CP_CF_UINT, "9901", offsetof(struct cp_config, bootstrap_server.params.admin_port), 0, check_port0},
	{"bootstrapServer.params.envoyAdminUnixSocket", "KUMA_BOOTSTRAP_SERVER_PARAMS_ENVOY_ADMIN_UNIX_SOCKET", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, bootstrap_server.params.envoy_admin_unix_socket), 0, NULL},
	{"bootstrapServer.params.readinessPort", "KUMA_BOOTSTRAP_SERVER_PARAMS_READINESS_PORT", NULL, CP_CF_UINT, "9902", offsetof(struct cp_config, bootstrap_server.params.readiness_port), 0, check_port0},
	{"bootstrapServer.params.adminAccessLogPath", "KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ACCESS_LOG_PATH", NULL, CP_CF_STRING, "/dev/null", offsetof(struct cp_config, bootstrap_server.params.admin_access_log_path), 0, NULL},
	{"bootstrapServer.params.xdsHost", "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST", NULL, CP_CF_STRING, "", offsetof(struct cp_config, bootstrap_server.params.xds_host), 0, NULL},
	{"bootstrapServer.params.xdsPort", "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT", NULL, CP_CF_UINT, "0", offsetof(struct cp_config, bootstrap_server.params.xds_port), 0, check_port0},
	{"bootstrapServer.params.xdsConnectTimeout", "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_CONNECT_TIMEOUT", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, bootstrap_server.params.xds_connect_timeout), 0, NULL},
	{"bootstrapServer.params.xdsGrpcMaxReceiveMessageBytes", "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_GRPC_MAX_RECEIVE_MESSAGE_BYTES", NULL, CP_CF_UINT, "4194304", offsetof(struct cp_config, bootstrap_server.params.xds_grpc_max_receive_message_bytes), 0, NULL},
	{"xdsServer.dataplaneConfigurationRefreshInterval", "KUMA_XDS_SERVER_DATAPLANE_CONFIGURATION_REFRESH_INTERVAL", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, xds_server.dataplane_configuration_refresh_interval), 0, check_positive},
	{"xdsServer.dataplaneStatusFlushInterval", "KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL", NULL, CP_CF_DURATION, "10s", offsetof(struct cp_config, xds_server.dataplane_status_flush_interval), 0, check_positive},
	{"xdsServer.dataplaneDeregistrationDelay", "KUMA_XDS_DATAPLANE_DEREGISTRATION_DELAY", NULL, CP_CF_DURATION, "10s", offsetof(struct cp_config, xds_server.dataplane_deregistration_delay), 0, NULL},
	{"xdsServer.nackBackoff", "KUMA_XDS_SERVER_NACK_BACKOFF", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, xds_server.nack_backoff), 0, NULL},
	{"xdsServer.policyMatchingCacheSize", "KUMA_XDS_SERVER_POLICY_MATCHING_CACHE_SIZE", NULL, CP_CF_INT, "10000", offsetof(struct cp_config, xds_server.policy_matching_cache_size), 0, check_nonneg},
	{"monitoringAssignmentServer.enabled", "KUMA_MONITORING_ASSIGNMENT_SERVER_ENABLED", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, monitoring_assignment_server.enabled), 0, NULL},
	{"monitoringAssignmentServer.port", "KUMA_MONITORING_ASSIGNMENT_SERVER_PORT", NULL, CP_CF_UINT, "5676", offsetof(struct cp_config, monitoring_assignment_server.port), 0, check_port},
	{"monitoringAssignmentServer.defaultFetchTimeout", "KUMA_MONITORING_ASSIGNMENT_SERVER_DEFAULT_FETCH_TIMEOUT", NULL, CP_CF_DURATION, "30s", offsetof(struct cp_config, monitoring_assignment_server.default_fetch_timeout), 0, NULL},
	{"monitoringAssignmentServer.apiVersions", "KUMA_MONITORING_ASSIGNMENT_SERVER_API_VERSIONS", NULL, CP_CF_STRLIST, "v1", offsetof(struct cp_config, monitoring_assignment_server.api_versions), 0, NULL},
	{"monitoringAssignmentServer.assignmentRefreshInterval", "KUMA_MONITORING_ASSIGNMENT_SERVER_ASSIGNMENT_REFRESH_INTERVAL", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, monitoring_assignment_server.assignment_refresh_interval), 0, NULL},
	{"monitoringAssignmentServer.tlsEnabled", "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_ENABLED", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, monitoring_assignment_server.tls_enabled), 0, NULL},
	{"monitoringAssignmentServer.tlsCertFile", "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_CERT_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, monitoring_assignment_server.tls_cert_file), 0, NULL},
	{"monitoringAssignmentServer.tlsKeyFile", "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_KEY_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, monitoring_assignment_server.tls_key_file), 0, NULL},
	{"monitoringAssignmentServer.tlsMinVersion", "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_MIN_VERSION", NULL, CP_CF_STRING, "TLSv1_2", offsetof(struct cp_config, monitoring_assignment_server.tls_min_version), 0, NULL},
	{"monitoringAssignmentServer.tlsMaxVersion", "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_MAX_VERSION", NULL, CP_CF_STRING, "", offsetof(struct cp_config, monitoring_assignment_server.tls_max_version), 0, NULL},
	{"monitoringAssignmentServer.tlsCipherSuites", "KUMA_MONITORING_ASSIGNMENT_SERVER_TLS_CIPHER_SUITES", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, monitoring_assignment_server.tls_cipher_suites), 0, NULL},
	{"apiServer.readOnly", "KUMA_API_SERVER_READ_ONLY", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, api_server.read_only), 0, NULL},
	{"apiServer.corsAllowedDomains", "KUMA_API_SERVER_CORS_ALLOWED_DOMAINS", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, api_server.cors_allowed_domains), 0, NULL},
	{"apiServer.http.enabled", "KUMA_API_SERVER_HTTP_ENABLED", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, api_server.http.enabled), 0, NULL},
	{"apiServer.http.interface", "KUMA_API_SERVER_HTTP_INTERFACE", NULL, CP_CF_STRING, "0.0.0.0", offsetof(struct cp_config, api_server.http.interface), 0, NULL},
	{"apiServer.http.port", "KUMA_API_SERVER_HTTP_PORT", NULL, CP_CF_UINT, "5681", offsetof(struct cp_config, api_server.http.port), 0, check_port},
	{"apiServer.https.enabled", "KUMA_API_SERVER_HTTPS_ENABLED", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, api_server.https.enabled), 0, NULL},
	{"apiServer.https.interface", "KUMA_API_SERVER_HTTPS_INTERFACE", NULL, CP_CF_STRING, "0.0.0.0", offsetof(struct cp_config, api_server.https.interface), 0, NULL},
	{"apiServer.https.port", "KUMA_API_SERVER_HTTPS_PORT", NULL, CP_CF_UINT, "5682", offsetof(struct cp_config, api_server.https.port), 0, check_port},
	{"apiServer.https.tlsCertFile", "KUMA_API_SERVER_HTTPS_TLS_CERT_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, api_server.https.tls_cert_file), 0, NULL},
	{"apiServer.https.tlsKeyFile", "KUMA_API_SERVER_HTTPS_TLS_KEY_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, api_server.https.tls_key_file), 0, NULL},
	{"apiServer.https.tlsMinVersion", "KUMA_API_SERVER_HTTPS_TLS_MIN_VERSION", NULL, CP_CF_STRING, "TLSv1_2", offsetof(struct cp_config, api_server.https.tls_min_version), 0, NULL},
	{"apiServer.https.tlsMaxVersion", "KUMA_API_SERVER_HTTPS_TLS_MAX_VERSION", NULL, CP_CF_STRING, "", offsetof(struct cp_config, api_server.https.tls_max_version), 0, NULL},
	{"apiServer.https.tlsCipherSuites", "KUMA_API_SERVER_HTTPS_TLS_CIPHER_SUITES", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, api_server.https.tls_cipher_suites), 0, NULL},
	{"apiServer.https.requireClientCert", "KUMA_API_SERVER_HTTPS_REQUIRE_CLIENT_CERT", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, api_server.https.require_client_cert), 0, NULL},
	{"apiServer.https.tlsCaFile", "KUMA_API_SERVER_HTTPS_TLS_CA_FILE", "KUMA_API_SERVER_HTTPS_CLIENT_CERTS_CA_FILE", CP_CF_STRING, "", offsetof(struct cp_config, api_server.https.tls_ca_file), 0, NULL},
	{"apiServer.authn.type", "KUMA_API_SERVER_AUTHN_TYPE", NULL, CP_CF_STRING, "tokens", offsetof(struct cp_config, api_server.authn.type), 0, NULL},
	{"apiServer.authn.localhostIsAdmin", "KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, api_server.authn.localhost_is_admin), 0, NULL},
	{"apiServer.authn.tokens.bootstrapAdminToken", "KUMA_API_SERVER_AUTHN_TOKENS_BOOTSTRAP_ADMIN_TOKEN", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, api_server.authn.tokens.bootstrap_admin_token), 0, NULL},
	{"apiServer.authn.tokens.enableIssuer", "KUMA_API_SERVER_AUTHN_TOKENS_ENABLE_ISSUER", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, api_server.authn.tokens.enable_issuer), 0, NULL},
	{"apiServer.authn.tokens.validator.useSecrets", "KUMA_API_SERVER_AUTHN_TOKENS_VALIDATOR_USE_SECRETS", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, api_server.authn.tokens.validator.use_secrets), 0, NULL},
	{"apiServer.authn.tokens.validator.publicKeys", NULL, NULL, CP_CF_KEYS, "", offsetof(struct cp_config, api_server.authn.tokens.validator.public_keys), 0, NULL},
	{"apiServer.basePath", "KUMA_API_SERVER_BASE_PATH", NULL, CP_CF_STRING, "/", offsetof(struct cp_config, api_server.base_path), 0, NULL},
	{"apiServer.rootUrl", "KUMA_API_SERVER_ROOT_URL", NULL, CP_CF_STRING, "", offsetof(struct cp_config, api_server.root_url), 0, NULL},
	{"apiServer.gui.enabled", "KUMA_API_SERVER_GUI_ENABLED", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, api_server.gui.enabled), 0, NULL},
	{"apiServer.gui.rootUrl", "KUMA_API_SERVER_GUI_ROOT_URL", NULL, CP_CF_STRING, "", offsetof(struct cp_config, api_server.gui.root_url), 0, NULL},
	{"apiServer.gui.basePath", "KUMA_API_SERVER_GUI_BASE_PATH", NULL, CP_CF_STRING, "/gui", offsetof(struct cp_config, api_server.gui.base_path), 0, NULL},
	{"apiServer.readHeaderTimeout", "KUMA_API_SERVER_READ_HEADER_TIMEOUT", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, api_server.read_header_timeout), 0, check_nonneg},
	{"apiServer.readTimeout", "KUMA_API_SERVER_READ_TIMEOUT", NULL, CP_CF_DURATION, "10s", offsetof(struct cp_config, api_server.read_timeout), 0, check_nonneg},
	{"apiServer.writeTimeout", "KUMA_API_SERVER_WRITE_TIMEOUT", NULL, CP_CF_DURATION, "30s", offsetof(struct cp_config, api_server.write_timeout), 0, check_nonneg},
	{"apiServer.idleTimeout", "KUMA_API_SERVER_IDLE_TIMEOUT", NULL, CP_CF_DURATION, "2m", offsetof(struct cp_config, api_server.idle_timeout), 0, check_nonneg},
	{"runtime.universal.dataplaneCleanupAge", "KUMA_RUNTIME_UNIVERSAL_DATAPLANE_CLEANUP_AGE", NULL, CP_CF_DURATION, "72h", offsetof(struct cp_config, runtime.universal.dataplane_cleanup_age), 0, check_positive},
	{"runtime.universal.spire.socketPath", "KUMA_RUNTIME_UNIVERSAL_SPIRE_SOCKET_PATH", NULL, CP_CF_STRING, "/tmp/spire-agent/public/api.sock", offsetof(struct cp_config, runtime.universal.spire.socket_path), 0, NULL},
	{"runtime.universal.workload.generationInterval", "KUMA_RUNTIME_UNIVERSAL_WORKLOAD_GENERATION_INTERVAL", NULL, CP_CF_DURATION, "2s", offsetof(struct cp_config, runtime.universal.workload.generation_interval), 0, NULL},
	{"defaults.skipMeshCreation", "KUMA_DEFAULTS_SKIP_MESH_CREATION", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, defaults.skip_mesh_creation), 0, NULL},
	{"defaults.skipTenantResources", "KUMA_DEFAULTS_SKIP_TENANT_RESOURCES", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, defaults.skip_tenant_resources), 0, NULL},
	{"defaults.SkipHostnameGenerators", "KUMA_DEFAULTS_SKIP_HOSTNAME_GENERATORS", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, defaults.skip_hostname_generators), 0, NULL},
	{"metrics.dataplane.subscriptionLimit", "KUMA_METRICS_DATAPLANE_SUBSCRIPTION_LIMIT", NULL, CP_CF_INT, "2", offsetof(struct cp_config, metrics.dataplane.subscription_limit), 0, check_nonneg},
	{"metrics.dataplane.idleTimeout", "KUMA_METRICS_DATAPLANE_IDLE_TIMEOUT", NULL, CP_CF_DURATION, "5m", offsetof(struct cp_config, metrics.dataplane.idle_timeout), 0, NULL},
	{"metrics.zone.subscriptionLimit", "KUMA_METRICS_ZONE_SUBSCRIPTION_LIMIT", NULL, CP_CF_INT, "10", offsetof(struct cp_config, metrics.zone.subscription_limit), 0, check_nonneg},
	{"metrics.zone.idleTimeout", "KUMA_METRICS_ZONE_IDLE_TIMEOUT", NULL, CP_CF_DURATION, "5m", offsetof(struct cp_config, metrics.zone.idle_timeout), 0, NULL},
	{"metrics.zone.compactFinishedSubscriptions", "KUMA_METRICS_ZONE_COMPACT_FINISHED_SUBSCRIPTIONS", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, metrics.zone.compact_finished_subscriptions), 0, NULL},
	{"metrics.mesh.bufferSize", "KUMA_METRICS_MESH_BUFFER_SIZE", NULL, CP_CF_INT, "1000", offsetof(struct cp_config, metrics.mesh.buffer_size), 0, NULL},
	{"metrics.mesh.minResyncInterval", "KUMA_METRICS_MESH_MIN_RESYNC_INTERVAL", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, metrics.mesh.min_resync_interval), 0, NULL},
	{"metrics.mesh.fullResyncInterval", "KUMA_METRICS_MESH_FULL_RESYNC_INTERVAL", NULL, CP_CF_DURATION, "20s", offsetof(struct cp_config, metrics.mesh.full_resync_interval), 0, NULL},
	{"metrics.mesh.eventProcessors", "KUMA_METRICS_MESH_EVENT_PROCESSORS", NULL, CP_CF_INT, "1", offsetof(struct cp_config, metrics.mesh.event_processors), 0, NULL},
	{"metrics.controlPlane.reportResourcesCount", "KUMA_METRICS_CONTROL_PLANE_REPORT_RESOURCES_COUNT", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, metrics.control_plane.report_resources_count), 0, NULL},
	{"metrics.openTelemetry.enabled", "KUMA_METRICS_OPENTELEMETRY_ENABLED", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, metrics.open_telemetry.enabled), 0, NULL},
	{"reports.enabled", "KUMA_REPORTS_ENABLED", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, reports.enabled), 0, NULL},
	{"multizone.global.kds.grpcPort", "KUMA_MULTIZONE_GLOBAL_KDS_GRPC_PORT", NULL, CP_CF_UINT, "5685", offsetof(struct cp_config, multizone.global.kds.grpc_port), 0, check_port},
	{"multizone.global.kds.zoneInsightFlushInterval", "KUMA_MULTIZONE_GLOBAL_KDS_ZONE_INSIGHT_FLUSH_INTERVAL", NULL, CP_CF_DURATION, "10s", offsetof(struct cp_config, multizone.global.kds.zone_insight_flush_interval), 0, check_positive},
	{"multizone.global.kds.tlsEnabled", "KUMA_MULTIZONE_GLOBAL_KDS_TLS_ENABLED", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, multizone.global.kds.tls_enabled), 0, NULL},
	{"multizone.global.kds.tlsCertFile", "KUMA_MULTIZONE_GLOBAL_KDS_TLS_CERT_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, multizone.global.kds.tls_cert_file), 0, NULL},
	{"multizone.global.kds.tlsKeyFile", "KUMA_MULTIZONE_GLOBAL_KDS_TLS_KEY_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, multizone.global.kds.tls_key_file), 0, NULL},
	{"multizone.global.kds.tlsMinVersion", "KUMA_MULTIZONE_GLOBAL_KDS_TLS_MIN_VERSION", NULL, CP_CF_STRING, "TLSv1_2", offsetof(struct cp_config, multizone.global.kds.tls_min_version), 0, NULL},
	{"multizone.global.kds.tlsMaxVersion", "KUMA_MULTIZONE_GLOBAL_KDS_TLS_MAX_VERSION", NULL, CP_CF_STRING, "", offsetof(struct cp_config, multizone.global.kds.tls_max_version), 0, NULL},
	{"multizone.global.kds.tlsCipherSuites", "KUMA_MULTIZONE_GLOBAL_KDS_TLS_CIPHER_SUITES", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, multizone.global.kds.tls_cipher_suites), 0, NULL},
	{"multizone.global.kds.maxMsgSize", "KUMA_MULTIZONE_GLOBAL_KDS_MAX_MSG_SIZE", NULL, CP_CF_UINT, "10485760", offsetof(struct cp_config, multizone.global.kds.max_msg_size), 0, NULL},
	{"multizone.global.kds.msgSendTimeout", "KUMA_MULTIZONE_GLOBAL_KDS_MSG_SEND_TIMEOUT", NULL, CP_CF_DURATION, "60s", offsetof(struct cp_config, multizone.global.kds.msg_send_timeout), 0, NULL},
	{"multizone.global.kds.nackBackoff", "KUMA_MULTIZONE_GLOBAL_KDS_NACK_BACKOFF", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, multizone.global.kds.nack_backoff), 0, NULL},
	{"multizone.global.kds.responseBackoff", "KUMA_MULTIZONE_GLOBAL_KDS_RESPONSE_BACKOFF", NULL, CP_CF_DURATION, "0s", offsetof(struct cp_config, multizone.global.kds.response_backoff), 0, NULL},
	{"multizone.global.kds.logPayloads", "KUMA_MULTIZONE_GLOBAL_KDS_LOG_PAYLOADS", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, multizone.global.kds.log_payloads), 0, NULL},
	{"multizone.global.kds.eventBasedWatchdog.flushInterval", "KUMA_MULTIZONE_GLOBAL_KDS_EVENT_BASED_WATCHDOG_FLUSH_INTERVAL", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, multizone.global.kds.event_based_watchdog.flush_interval), 0, NULL},
	{"multizone.global.kds.eventBasedWatchdog.fullResyncInterval", "KUMA_MULTIZONE_GLOBAL_KDS_EVENT_BASED_WATCHDOG_FULL_RESYNC_INTERVAL", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, multizone.global.kds.event_based_watchdog.full_resync_interval), 0, NULL},
	{"multizone.global.kds.eventBasedWatchdog.delayFullResync", "KUMA_MULTIZONE_GLOBAL_KDS_EVENT_BASED_WATCHDOG_DELAY_FULL_RESYNC", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, multizone.global.kds.event_based_watchdog.delay_full_resync), 0, NULL},
	{"multizone.global.kds.zoneHealthCheck.pollInterval", "KUMA_MULTIZONE_GLOBAL_KDS_ZONE_HEALTH_CHECK_POLL_INTERVAL", NULL, CP_CF_DURATION, "0s", offsetof(struct cp_config, multizone.global.kds.zone_health_check.poll_interval), 0, NULL},
	{"multizone.global.kds.zoneHealthCheck.timeout", "KUMA_MULTIZONE_GLOBAL_KDS_ZONE_HEALTH_CHECK_TIMEOUT", NULL, CP_CF_DURATION, "0s", offsetof(struct cp_config, multizone.global.kds.zone_health_check.timeout), 0, NULL},
	{"multizone.global.kds.zoneHealthCheck.closeStaleConn", "KUMA_MULTIZONE_GLOBAL_KDS_ZONE_HEALTH_CHECK_CLOSE_STALE_CONN", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, multizone.global.kds.zone_health_check.close_stale_conn), 0, NULL},
	{"multizone.global.kds.tracing.enabled", "KUMA_MULTIZONE_GLOBAL_KDS_TRACING_ENABLED", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, multizone.global.kds.tracing.enabled), CF_OMITEMPTY, NULL},
	{"multizone.global.kds.labels.skipPrefixes", "KUMA_MULTIZONE_GLOBAL_KDS_LABELS_SKIP_PREFIXES", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, multizone.global.kds.labels.skip_prefixes), CF_OMITEMPTY, NULL},
	{"multizone.zone.name", "KUMA_MULTIZONE_ZONE_NAME", NULL, CP_CF_STRING, "default", offsetof(struct cp_config, multizone.zone.name), CF_OMITEMPTY, NULL},
	{"multizone.zone.globalAddress", "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS", NULL, CP_CF_STRING, "", offsetof(struct cp_config, multizone.zone.global_address), CF_OMITEMPTY, NULL},
	{"multizone.zone.kds.tlsSkipVerify", "KUMA_MULTIZONE_ZONE_KDS_TLS_SKIP_VERIFY", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, multizone.zone.kds.tls_skip_verify), 0, NULL},
	{"multizone.zone.kds.rootCaFile", "KUMA_MULTIZONE_ZONE_KDS_ROOT_CA_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, multizone.zone.kds.root_ca_file), 0, NULL},
	{"multizone.zone.kds.maxMsgSize", "KUMA_MULTIZONE_ZONE_KDS_MAX_MSG_SIZE", NULL, CP_CF_UINT, "10485760", offsetof(struct cp_config, multizone.zone.kds.max_msg_size), 0, NULL},
	{"multizone.zone.kds.msgSendTimeout", "KUMA_MULTIZONE_ZONE_KDS_MSG_SEND_TIMEOUT", NULL, CP_CF_DURATION, "60s", offsetof(struct cp_config, multizone.zone.kds.msg_send_timeout), 0, NULL},
	{"multizone.zone.kds.nackBackoff", "KUMA_MULTIZONE_ZONE_KDS_NACK_BACKOFF", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, multizone.zone.kds.nack_backoff), 0, NULL},
	{"multizone.zone.kds.responseBackoff", "KUMA_MULTIZONE_ZONE_KDS_RESPONSE_BACKOFF", NULL, CP_CF_DURATION, "0s", offsetof(struct cp_config, multizone.zone.kds.response_backoff), 0, NULL},
	{"multizone.zone.kds.logPayloads", "KUMA_MULTIZONE_ZONE_KDS_LOG_PAYLOADS", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, multizone.zone.kds.log_payloads), 0, NULL},
	{"multizone.zone.kds.eventBasedWatchdog.flushInterval", "KUMA_MULTIZONE_ZONE_KDS_EVENT_BASED_WATCHDOG_FLUSH_INTERVAL", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, multizone.zone.kds.event_based_watchdog.flush_interval), 0, NULL},
	{"multizone.zone.kds.eventBasedWatchdog.fullResyncInterval", "KUMA_MULTIZONE_ZONE_KDS_EVENT_BASED_WATCHDOG_FULL_RESYNC_INTERVAL", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, multizone.zone.kds.event_based_watchdog.full_resync_interval), 0, NULL},
	{"multizone.zone.kds.eventBasedWatchdog.delayFullResync", "KUMA_MULTIZONE_ZONE_KDS_EVENT_BASED_WATCHDOG_DELAY_FULL_RESYNC", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, multizone.zone.kds.event_based_watchdog.delay_full_resync), 0, NULL},
	{"multizone.zone.kds.labels.skipPrefixes", "KUMA_MULTIZONE_ZONE_KDS_LABELS_SKIP_PREFIXES", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, multizone.zone.kds.labels.skip_prefixes), CF_OMITEMPTY, NULL},
	{"multizone.zone.disableOriginLabelValidation", "KUMA_MULTIZONE_ZONE_DISABLE_ORIGIN_LABEL_VALIDATION", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, multizone.zone.disable_origin_label_validation), CF_OMITEMPTY, NULL},
	{"dnsServer.domain", "KUMA_DNS_SERVER_DOMAIN", NULL, CP_CF_STRING, "mesh", offsetof(struct cp_config, dns_server.domain), 0, NULL},
	{"dnsServer.serviceVipPort", "KUMA_DNS_SERVER_SERVICE_VIP_PORT", "KUMA_DNS_SERVICE_SERVICE_VIP_PORT", CP_CF_UINT, "80", offsetof(struct cp_config, dns_server.service_vip_port), 0, check_port0},
	{"diagnostics.serverPort", "KUMA_DIAGNOSTICS_SERVER_PORT", NULL, CP_CF_UINT, "5680", offsetof(struct cp_config, diagnostics.server_port), 0, check_port},
	{"diagnostics.debugEndpoints", "KUMA_DIAGNOSTICS_DEBUG_ENDPOINTS", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, diagnostics.debug_endpoints), 0, NULL},
	{"diagnostics.tlsEnabled", "KUMA_DIAGNOSTICS_TLS_ENABLED", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, diagnostics.tls_enabled), 0, NULL},
	{"diagnostics.tlsCertFile", "KUMA_DIAGNOSTICS_TLS_CERT_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, diagnostics.tls_cert_file), 0, NULL},
	{"diagnostics.tlsKeyFile", "KUMA_DIAGNOSTICS_TLS_KEY_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, diagnostics.tls_key_file), 0, NULL},
	{"diagnostics.tlsMinVersion", "KUMA_DIAGNOSTICS_TLS_MIN_VERSION", NULL, CP_CF_STRING, "TLSv1_2", offsetof(struct cp_config, diagnostics.tls_min_version), 0, NULL},
	{"diagnostics.tlsMaxVersion", "KUMA_DIAGNOSTICS_TLS_MAX_VERSION", NULL, CP_CF_STRING, "", offsetof(struct cp_config, diagnostics.tls_max_version), 0, NULL},
	{"diagnostics.tlsCipherSuites", "KUMA_DIAGNOSTICS_TLS_CIPHER_SUITES", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, diagnostics.tls_cipher_suites), 0, NULL},
	{"dpServer.port", "KUMA_DP_SERVER_PORT", NULL, CP_CF_INT, "5678", offsetof(struct cp_config, dp_server.port), 0, check_port},
	{"dpServer.tlsCertFile", "KUMA_DP_SERVER_TLS_CERT_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, dp_server.tls_cert_file), 0, NULL},
	{"dpServer.tlsKeyFile", "KUMA_DP_SERVER_TLS_KEY_FILE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, dp_server.tls_key_file), 0, NULL},
	{"dpServer.tlsMinVersion", "KUMA_DP_SERVER_TLS_MIN_VERSION", NULL, CP_CF_STRING, "TLSv1_2", offsetof(struct cp_config, dp_server.tls_min_version), 0, NULL},
	{"dpServer.tlsMaxVersion", "KUMA_DP_SERVER_TLS_MAX_VERSION", NULL, CP_CF_STRING, "", offsetof(struct cp_config, dp_server.tls_max_version), 0, NULL},
	{"dpServer.tlsCipherSuites", "KUMA_DP_SERVER_TLS_CIPHER_SUITES", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, dp_server.tls_cipher_suites), 0, NULL},
	{"dpServer.readHeaderTimeout", "KUMA_DP_SERVER_READ_HEADER_TIMEOUT", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, dp_server.read_header_timeout), 0, check_nonneg},
	{"dpServer.gracefulShutdownTimeout", "KUMA_DP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT", NULL, CP_CF_DURATION, "10s", offsetof(struct cp_config, dp_server.graceful_shutdown_timeout), 0, check_positive},
	{"dpServer.authn.dpProxy.type", "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, dp_server.authn.dp_proxy.type), 0, NULL},
	{"dpServer.authn.dpProxy.dpToken.enableIssuer", "KUMA_DP_SERVER_AUTHN_DP_PROXY_DP_TOKEN_ENABLE_ISSUER", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, dp_server.authn.dp_proxy.dp_token.enable_issuer), 0, NULL},
	{"dpServer.authn.dpProxy.dpToken.validator.useSecrets", "KUMA_DP_SERVER_AUTHN_DP_PROXY_DP_TOKEN_VALIDATOR_USE_SECRETS", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, dp_server.authn.dp_proxy.dp_token.validator.use_secrets), 0, NULL},
	{"dpServer.authn.dpProxy.dpToken.validator.publicKeys", NULL, NULL, CP_CF_MESH_KEYS, "", offsetof(struct cp_config, dp_server.authn.dp_proxy.dp_token.validator.public_keys), 0, NULL},
	{"dpServer.authn.zoneProxy.type", "KUMA_DP_SERVER_AUTHN_ZONE_PROXY_TYPE", NULL, CP_CF_STRING, "", offsetof(struct cp_config, dp_server.authn.zone_proxy.type), 0, NULL},
	{"dpServer.authn.zoneProxy.zoneToken.enableIssuer", "KUMA_DP_SERVER_AUTHN_ZONE_PROXY_ZONE_TOKEN_ENABLE_ISSUER", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, dp_server.authn.zone_proxy.zone_token.enable_issuer), 0, NULL},
	{"dpServer.authn.zoneProxy.zoneToken.validator.useSecrets", "KUMA_DP_SERVER_AUTHN_ZONE_PROXY_ZONE_TOKEN_VALIDATOR_USE_SECRETS", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, dp_server.authn.zone_proxy.zone_token.validator.use_secrets), 0, NULL},
	{"dpServer.authn.zoneProxy.zoneToken.validator.publicKeys", NULL, NULL, CP_CF_KEYS, "", offsetof(struct cp_config, dp_server.authn.zone_proxy.zone_token.validator.public_keys), 0, NULL},
	{"dpServer.authn.enableReloadableTokens", "KUMA_DP_SERVER_AUTHN_ENABLE_RELOADABLE_TOKENS", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, dp_server.authn.enable_reloadable_tokens), 0, NULL},
	{"dpServer.hds.enabled", "KUMA_DP_SERVER_HDS_ENABLED", NULL, CP_CF_BOOL, "true", offsetof(struct cp_config, dp_server.hds.enabled), 0, NULL},
	{"dpServer.hds.interval", "KUMA_DP_SERVER_HDS_INTERVAL", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, dp_server.hds.interval), 0, check_positive},
	{"dpServer.hds.refreshInterval", "KUMA_DP_SERVER_HDS_REFRESH_INTERVAL", NULL, CP_CF_DURATION, "10s", offsetof(struct cp_config, dp_server.hds.refresh_interval), 0, NULL},
	{"dpServer.hds.checkDefaults.timeout", "KUMA_DP_SERVER_HDS_CHECK_TIMEOUT", NULL, CP_CF_DURATION, "2s", offsetof(struct cp_config, dp_server.hds.check_defaults.timeout), 0, check_positive},
	{"dpServer.hds.checkDefaults.interval", "KUMA_DP_SERVER_HDS_CHECK_INTERVAL", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, dp_server.hds.check_defaults.interval), 0, check_positive},
	{"dpServer.hds.checkDefaults.noTrafficInterval", "KUMA_DP_SERVER_HDS_CHECK_NO_TRAFFIC_INTERVAL", NULL, CP_CF_DURATION, "1s", offsetof(struct cp_config, dp_server.hds.check_defaults.no_traffic_interval), 0, check_positive},
	{"dpServer.hds.checkDefaults.healthyThreshold", "KUMA_DP_SERVER_HDS_CHECK_HEALTHY_THRESHOLD", NULL, CP_CF_UINT, "1", offsetof(struct cp_config, dp_server.hds.check_defaults.healthy_threshold), 0, NULL},
	{"dpServer.hds.checkDefaults.unhealthyThreshold", "KUMA_DP_SERVER_HDS_CHECK_UNHEALTHY_THRESHOLD", NULL, CP_CF_UINT, "1", offsetof(struct cp_config, dp_server.hds.check_defaults.unhealthy_threshold), 0, NULL},
	{"access.type", "KUMA_ACCESS_TYPE", NULL, CP_CF_STRING, "static", offsetof(struct cp_config, access.type), 0, NULL},
	{"access.static.adminResources.users", "KUMA_ACCESS_STATIC_ADMIN_RESOURCES_USERS", NULL, CP_CF_STRLIST, "mesh-system:admin", offsetof(struct cp_config, access.static_.admin_resources.users), 0, NULL},
	{"access.static.adminResources.groups", "KUMA_ACCESS_STATIC_ADMIN_RESOURCES_GROUPS", NULL, CP_CF_STRLIST, "mesh-system:admin", offsetof(struct cp_config, access.static_.admin_resources.groups), 0, NULL},
	{"access.static.generateDpToken.users", "KUMA_ACCESS_STATIC_GENERATE_DP_TOKEN_USERS", NULL, CP_CF_STRLIST, "mesh-system:admin", offsetof(struct cp_config, access.static_.generate_dp_token.users), 0, NULL},
	{"access.static.generateDpToken.groups", "KUMA_ACCESS_STATIC_GENERATE_DP_TOKEN_GROUPS", NULL, CP_CF_STRLIST, "mesh-system:admin", offsetof(struct cp_config, access.static_.generate_dp_token.groups), 0, NULL},
	{"access.static.generateUserToken.users", "KUMA_ACCESS_STATIC_GENERATE_USER_TOKEN_USERS", NULL, CP_CF_STRLIST, "mesh-system:admin", offsetof(struct cp_config, access.static_.generate_user_token.users), 0, NULL},
	{"access.static.generateUserToken.groups", "KUMA_ACCESS_STATIC_GENERATE_USER_TOKEN_GROUPS", NULL, CP_CF_STRLIST, "mesh-system:admin", offsetof(struct cp_config, access.static_.generate_user_token.groups), 0, NULL},
	{"access.static.generateZoneToken.users", "KUMA_ACCESS_STATIC_GENERATE_ZONE_TOKEN_USERS", NULL, CP_CF_STRLIST, "mesh-system:admin", offsetof(struct cp_config, access.static_.generate_zone_token.users), 0, NULL},
	{"access.static.generateZoneToken.groups", "KUMA_ACCESS_STATIC_GENERATE_ZONE_TOKEN_GROUPS", NULL, CP_CF_STRLIST, "mesh-system:admin", offsetof(struct cp_config, access.static_.generate_zone_token.groups), 0, NULL},
	{"access.static.viewConfigDump.users", "KUMA_ACCESS_STATIC_GET_CONFIG_DUMP_USERS", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, access.static_.view_config_dump.users), 0, NULL},
	{"access.static.viewConfigDump.groups", "KUMA_ACCESS_STATIC_GET_CONFIG_DUMP_GROUPS", NULL, CP_CF_STRLIST, "mesh-system:unauthenticated,mesh-system:authenticated", offsetof(struct cp_config, access.static_.view_config_dump.groups), 0, NULL},
	{"access.static.viewStats.users", "KUMA_ACCESS_STATIC_VIEW_STATS_USERS", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, access.static_.view_stats.users), 0, NULL},
	{"access.static.viewStats.groups", "KUMA_ACCESS_STATIC_VIEW_STATS_GROUPS", NULL, CP_CF_STRLIST, "mesh-system:unauthenticated,mesh-system:authenticated", offsetof(struct cp_config, access.static_.view_stats.groups), 0, NULL},
	{"access.static.viewClusters.users", "KUMA_ACCESS_STATIC_VIEW_CLUSTERS_USERS", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, access.static_.view_clusters.users), 0, NULL},
	{"access.static.viewClusters.groups", "KUMA_ACCESS_STATIC_VIEW_CLUSTERS_GROUPS", NULL, CP_CF_STRLIST, "mesh-system:unauthenticated,mesh-system:authenticated", offsetof(struct cp_config, access.static_.view_clusters.groups), 0, NULL},
	{"access.static.controlPlaneMetadata.users", "KUMA_ACCESS_STATIC_CONTROL_PLANE_METADATA_USERS", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, access.static_.control_plane_metadata.users), 0, NULL},
	{"access.static.controlPlaneMetadata.groups", "KUMA_ACCESS_STATIC_CONTROL_PLANE_METADATA_GROUPS", NULL, CP_CF_STRLIST, "mesh-system:unauthenticated,mesh-system:authenticated", offsetof(struct cp_config, access.static_.control_plane_metadata.groups), 0, NULL},
	{"experimental", NULL, NULL, CP_CF_OBJECT, "", 0, 0, NULL},
	{"interCp.catalog.instanceAddress", "KUMA_INTER_CP_CATALOG_INSTANCE_ADDRESS", NULL, CP_CF_STRING, "", offsetof(struct cp_config, inter_cp.catalog.instance_address), 0, NULL},
	{"interCp.catalog.instanceVersion", "KUMA_INTER_CP_CATALOG_INSTANCE_VERSION", NULL, CP_CF_STRING, "", offsetof(struct cp_config, inter_cp.catalog.instance_version), 0, NULL},
	{"interCp.catalog.heartbeatInterval", "KUMA_INTER_CP_CATALOG_HEARTBEAT_INTERVAL", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, inter_cp.catalog.heartbeat_interval), 0, NULL},
	{"interCp.catalog.writerInterval", "KUMA_INTER_CP_CATALOG_WRITER_INTERVAL", NULL, CP_CF_DURATION, "15s", offsetof(struct cp_config, inter_cp.catalog.writer_interval), 0, NULL},
	{"interCp.server.port", "KUMA_INTER_CP_SERVER_PORT", NULL, CP_CF_UINT, "5683", offsetof(struct cp_config, inter_cp.server.port), 0, check_port},
	{"interCp.server.tlsMinVersion", "KUMA_INTER_CP_SERVER_TLS_MIN_VERSION", NULL, CP_CF_STRING, "TLSv1_2", offsetof(struct cp_config, inter_cp.server.tls_min_version), 0, NULL},
	{"interCp.server.tlsMaxVersion", "KUMA_INTER_CP_SERVER_TLS_MAX_VERSION", NULL, CP_CF_STRING, "", offsetof(struct cp_config, inter_cp.server.tls_max_version), 0, NULL},
	{"interCp.server.tlsCipherSuites", "KUMA_INTER_CP_SERVER_TLS_CIPHER_SUITES", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, inter_cp.server.tls_cipher_suites), 0, NULL},
	{"tracing.openTelemetry.enabled", "KUMA_TRACING_OPENTELEMETRY_ENABLED", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, tracing.open_telemetry.enabled), CF_OMITEMPTY, NULL},
	{"tracing.openTelemetry.endpoint", "KUMA_TRACING_OPENTELEMETRY_ENDPOINT", NULL, CP_CF_STRING, "", offsetof(struct cp_config, tracing.open_telemetry.endpoint), CF_OMITEMPTY, NULL},
	{"eventBus.bufferSize", "KUMA_EVENT_BUS_BUFFER_SIZE", NULL, CP_CF_UINT, "100", offsetof(struct cp_config, event_bus.buffer_size), 0, NULL},
	{"policies.pluginPoliciesEnabled", "KUMA_PLUGIN_POLICIES_ENABLED", NULL, CP_CF_STRLIST, "meshaccesslogs,meshcircuitbreakers,meshfaultinjections,meshhealthchecks,meshhttproutes,meshloadbalancingstrategies,meshmetrics,meshpassthroughs,meshproxypatches,meshratelimits,meshretries,meshtcproutes,meshtimeouts,meshtlses,meshtraces,meshtrafficpermissions", offsetof(struct cp_config, policies.plugin_policies_enabled), 0, NULL},
	{"coreResources.enabled", "KUMA_CORE_RESOURCES_ENABLED", NULL, CP_CF_STRLIST, "hostnamegenerators,meshexternalservices,meshidentities,meshmultizoneservices,meshopentelemetrybackends,meshservices,meshtrusts,meshzoneaddresses,workloads", offsetof(struct cp_config, core_resources.enabled), 0, NULL},
	{"coreResources.status.meshMultiZoneServiceInterval", "KUMA_CORE_RESOURCES_STATUS_MESH_MULTI_ZONE_SERVICE_INTERVAL", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, core_resources.status.mesh_multi_zone_service_interval), 0, NULL},
	{"coreResources.status.meshServiceInterval", "KUMA_CORE_RESOURCES_STATUS_MESH_SERVICE_INTERVAL", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, core_resources.status.mesh_service_interval), 0, NULL},
	{"coreResources.status.meshIdentityInterval", "KUMA_CORE_RESOURCES_STATUS_MESH_IDENTITY_INTERVAL", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, core_resources.status.mesh_identity_interval), 0, NULL},
	{"coreResources.status.workloadInterval", "KUMA_CORE_RESOURCES_STATUS_WORKLOAD_INTERVAL", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, core_resources.status.workload_interval), 0, NULL},
	{"coreResources.status.meshOpenTelemetryBackendInterval", "KUMA_CORE_RESOURCES_STATUS_MESH_OPEN_TELEMETRY_BACKEND_INTERVAL", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, core_resources.status.mesh_open_telemetry_backend_interval), 0, NULL},
	{"ipam.meshService.cidr", "KUMA_IPAM_MESH_SERVICE_CIDR", NULL, CP_CF_STRING, "241.0.0.0/8", offsetof(struct cp_config, ipam.mesh_service.cidr), 0, NULL},
	{"ipam.meshExternalService.cidr", "KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR", NULL, CP_CF_STRING, "242.0.0.0/8", offsetof(struct cp_config, ipam.mesh_external_service.cidr), 0, NULL},
	{"ipam.meshMultiZoneService.cidr", "KUMA_IPAM_MESH_MULTI_ZONE_SERVICE_CIDR", NULL, CP_CF_STRING, "243.0.0.0/8", offsetof(struct cp_config, ipam.mesh_multi_zone_service.cidr), 0, NULL},
	{"ipam.allocationInterval", "KUMA_IPAM_ALLOCATION_INTERVAL", NULL, CP_CF_DURATION, "5s", offsetof(struct cp_config, ipam.allocation_interval), 0, NULL},
	{"ipam.knownInternalCIDRs", "KUMA_IPAM_KNOWN_INTERNAL_CIDRS", NULL, CP_CF_STRLIST, "10.0.0.0/8,192.168.0.0/16,172.16.0.0/12,fc00::/7,fd00::/8,127.0.0.1/32,::1/128", offsetof(struct cp_config, ipam.known_internal_cidrs), 0, NULL},
	{"meshService.generationInterval", "KUMA_MESH_SERVICE_GENERATION_INTERVAL", NULL, CP_CF_DURATION, "2s", offsetof(struct cp_config, mesh_service.generation_interval), 0, NULL},
	{"meshService.deletionGracePeriod", "KUMA_MESH_SERVICE_DELETION_GRACE_PERIOD", NULL, CP_CF_DURATION, "1h", offsetof(struct cp_config, mesh_service.deletion_grace_period), 0, NULL},
	{"meshService.labelPropagation.enabled", "KUMA_MESH_SERVICE_LABEL_PROPAGATION_ENABLED", NULL, CP_CF_BOOL, "false", offsetof(struct cp_config, mesh_service.label_propagation.enabled), 0, NULL},
	{"meshService.labelPropagation.allowedLabelKeys", "KUMA_MESH_SERVICE_LABEL_PROPAGATION_ALLOWED_LABEL_KEYS", NULL, CP_CF_STRLIST, "", offsetof(struct cp_config, mesh_service.label_propagation.allowed_label_keys), 0, NULL},
};

const struct cp_config_field *cp_config_fields(size_t *n)
{
	*n = sizeof(fields) / sizeof(fields[0]);
	return fields;
}

/* ---- durations ---- */

int cp_config_duration_parse(const char *s, size_t len, int64_t *out)
{
	return km_duration_parse((struct km_str){s, len}, out) ? -EINVAL : 0;
}

/* ---- setting values ---- */

static void *field_ptr(const struct cp_config *c, const struct cp_config_field *f)
{
	return (char *)c + f->offset;
}

static const char *go_type(const struct cp_config_field *f)
{
	switch (f->kind) {
	case CP_CF_STRING: return "string";
	case CP_CF_INT: return "int";
	case CP_CF_UINT: return "uint32";
	case CP_CF_BOOL: return "bool";
	case CP_CF_DURATION: return "types.Duration";
	case CP_CF_STRLIST: return "[]string";
	case CP_CF_KEYS: return "[]types.PublicKey";
	case CP_CF_MESH_KEYS: return "[]types.MeshedPublicKey";
	case CP_CF_OBJECT: break;
	}
	return "object";
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* strconv.ParseInt(s, 0, 64) semantics: optional sign, 0x/0o/0b/0 prefixes. */
static int parse_i64(const char *s, long long *out)
{
	char *end;
	if (!*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

static void strlist_set_csv(struct km_arena *a, struct cp_config_strlist *l, const char *s)
{
	size_t n = 0, len = strlen(s);
	const char *p;

	memset(l, 0, sizeof(*l));
	for (p = s; *p == ' ' || *p == '\t'; p++)
		;
	if (!*p)
		return; /* envconfig: blank value = empty list */
	n = 1;
	for (p = s; *p; p++)
		n += *p == ',';
	l->items = km_arena_alloc(a, n * sizeof(char *));
	const char *start = s;
	for (size_t i = 0; i < n; i++) {
		const char *comma = memchr(start, ',', (size_t)(s + len - start));
		const char *stop = comma ? comma : s + len;
		l->items[i] = km_arena_strndup(a, start, (size_t)(stop - start));
		start = stop + 1;
	}
	l->n = n;
}

/* Sets <f> from <text> in env syntax. On error returns -EINVAL/-ERANGE and
 * writes strconv-style details into <why>. */
static int set_from_text(struct cp_config *c, const struct cp_config_field *f, const char *text,
			 struct km_buf *why)
{
	void *p = field_ptr(c, f);
	long long v;
	int rc;

	switch (f->kind) {
	case CP_CF_STRING:
		*(char **)p = km_arena_strdup(c->arena, text);
		return 0;
	case CP_CF_BOOL:
		if (parse_bool(text, p) == 0)
			return 0;
		km_buf_printf(why, "strconv.ParseBool: parsing \"%s\": invalid syntax", text);
		return -EINVAL;
	case CP_CF_INT:
		rc = parse_i64(text, &v);
		if (rc == 0 && (v < INT_MIN || v > INT_MAX))
			rc = -ERANGE;
		if (rc) {
			km_buf_printf(why, "strconv.ParseInt: parsing \"%s\": %s", text,
				      rc == -ERANGE ? "value out of range" : "invalid syntax");
			return rc;
		}
		*(int *)p = (int)v;
		return 0;
	case CP_CF_UINT:
		rc = (text[0] == '-' || text[0] == '+') ? -EINVAL : parse_i64(text, &v);
		if (rc == 0 && (v < 0 || v > (long long)UINT32_MAX))
			rc = -ERANGE;
		if (rc) {
			km_buf_printf(why, "strconv.ParseUint: parsing \"%s\": %s", text,
				      rc == -ERANGE ? "value out of range" : "invalid syntax");
			return rc;
		}
		*(unsigned *)p = (unsigned)v;
		return 0;
	case CP_CF_DURATION:
		rc = cp_config_duration_parse(text, strlen(text), p);
		if (rc) {
			km_buf_printf(why, "time: invalid duration \"%s\"", text);
			return -EINVAL;
		}
		return 0;
	case CP_CF_STRLIST:
		strlist_set_csv(c->arena, p, text);
		return 0;
	case CP_CF_KEYS:
	case CP_CF_MESH_KEYS:
	case CP_CF_OBJECT:
		return 0; /* no text form; defaults are empty */
	}
	return -EINVAL;
}

static const char *json_kind_name(const struct km_json *v)
{
	switch (v->kind) {
	case KM_JSON_NULL: return "null";
	case KM_JSON_BOOL: return "bool";
	case KM_JSON_NUMBER: return "number";
	case KM_JSON_STRING: return "string";
	case KM_JSON_ARRAY: return "array";
	case KM_JSON_OBJECT: return "object";
	}
	return "value";
}

/* sigs.k8s.io/yaml turns a scalar into a string when the target is a string. */
static const char *scalar_text(struct km_arena *a, const struct km_json *v)
{
	switch (v->kind) {
	case KM_JSON_STRING: return km_arena_strndup(a, v->s.ptr, v->s.len);
	case KM_JSON_BOOL: return v->b ? "true" : "false";
	case KM_JSON_NUMBER:
		if (v->s.ptr)
			return km_arena_strndup(a, v->s.ptr, v->s.len);
		if (v->is_int)
			return km_arena_printf(a, "%" PRId64, v->i);
		return km_arena_printf(a, "%g", v->d);
	default: return NULL;
	}
}

static int type_error(struct km_buf *err, const char *path, const struct km_json *v,
		      const char *type)
{
	if (v->kind == KM_JSON_NUMBER && v->s.ptr)
		km_buf_printf(err, "json: cannot unmarshal number %.*s into Go struct field %s of type %s",
			      KM_STR_FMT(v->s), path, type);
	else
		km_buf_printf(err, "json: cannot unmarshal %s into Go struct field %s of type %s",
			      json_kind_name(v), path, type);
	return -EINVAL;
}

/* Case-insensitive member lookup; the last matching key wins like Go's decoder. */
static const struct km_json *member_fold(const struct km_json *obj, const char *key, size_t klen)
{
	const struct km_json *found = NULL;
	for (size_t i = 0; i < obj->len; i++) {
		struct km_str k = obj->members[i].key;
		if (k.len == klen && strncasecmp(k.ptr, key, klen) == 0)
			found = obj->members[i].val;
	}
	return found;
}

static int set_keys(struct cp_config *c, const struct cp_config_field *f, const struct km_json *v,
		    struct km_buf *err)
{
	struct cp_config_keys *keys = field_ptr(c, f);
	static const char *const names[] = {"kid", "keyFile", "key", "mesh"};

	if (v->kind != KM_JSON_ARRAY)
		return type_error(err, f->path, v, go_type(f));
	keys->n = 0;
	keys->items = km_arena_alloc(c->arena, (v->len ? v->len : 1) * sizeof(*keys->items));
	for (size_t i = 0; i < v->len; i++) {
		const struct km_json *o = v->items[i];
		struct cp_config_key *k = &keys->items[i];
		char **slots[] = {&k->kid, &k->key_file, &k->key, &k->mesh};
		if (o->kind == KM_JSON_NULL)
			o = NULL;
		else if (o->kind != KM_JSON_OBJECT)
			return type_error(err, f->path, o, go_type(f) + 2);
		for (size_t j = 0; j < 4; j++) {
			const struct km_json *m = o ? member_fold(o, names[j], strlen(names[j])) : NULL;
			*slots[j] = "";
			if (j == 3 && f->kind != CP_CF_MESH_KEYS)
				continue;
			if (!m || m->kind == KM_JSON_NULL)
				continue;
			if (m->kind == KM_JSON_ARRAY || m->kind == KM_JSON_OBJECT) {
				char *p = km_arena_printf(c->arena, "%s.%s", f->path, names[j]);
				return type_error(err, p, m, "string");
			}
			*slots[j] = (char *)scalar_text(c->arena, m);
		}
		keys->n++;
	}
	return 0;
}

/* Sets <f> from a YAML value (already checked non-null). */
static int set_from_json(struct cp_config *c, const struct cp_config_field *f,
			 const struct km_json *v, struct km_buf *err)
{
	void *p = field_ptr(c, f);

	switch (f->kind) {
	case CP_CF_STRING: {
		const char *s = scalar_text(c->arena, v);
		if (!s)
			return type_error(err, f->path, v, "string");
		*(char **)p = (char *)s;
		return 0;
	}
	case CP_CF_BOOL:
		if (v->kind != KM_JSON_BOOL)
			return type_error(err, f->path, v, "bool");
		*(bool *)p = v->b;
		return 0;
	case CP_CF_INT:
	case CP_CF_UINT: {
		bool ok = v->kind == KM_JSON_NUMBER && v->is_int;
		if (ok && f->kind == CP_CF_INT)
			ok = v->i >= INT_MIN && v->i <= INT_MAX;
		if (ok && f->kind == CP_CF_UINT)
			ok = v->i >= 0 && v->i <= (int64_t)UINT32_MAX;
		if (!ok)
			return type_error(err, f->path, v, go_type(f));
		if (f->kind == CP_CF_INT)
			*(int *)p = (int)v->i;
		else
			*(unsigned *)p = (unsigned)v->i;
		return 0;
	}
	case CP_CF_DURATION:
		if (v->kind == KM_JSON_NUMBER) {
			double d = v->is_int ? (double)v->i : v->d;
			if (d > 9.2e18 || d < -9.2e18)
				return type_error(err, f->path, v, go_type(f));
			*(int64_t *)p = (int64_t)d;
			return 0;
		}
		if (v->kind == KM_JSON_STRING) {
			if (cp_config_duration_parse(v->s.ptr, v->s.len, p) == 0)
				return 0;
			km_buf_printf(err, "%s: time: invalid duration \"%.*s\"", f->path,
				      KM_STR_FMT(v->s));
			return -EINVAL;
		}
		km_buf_printf(err, "%s: invalid duration", f->path);
		return -EINVAL;
	case CP_CF_STRLIST: {
		struct cp_config_strlist *l = p;
		if (v->kind != KM_JSON_ARRAY)
			return type_error(err, f->path, v, "[]string");
		l->n = 0;
		l->items = km_arena_alloc(c->arena, (v->len ? v->len : 1) * sizeof(char *));
		for (size_t i = 0; i < v->len; i++) {
			const struct km_json *it = v->items[i];
			const char *s = it->kind == KM_JSON_NULL ? "" : scalar_text(c->arena, it);
			if (!s)
				return type_error(err, f->path, it, "string");
			l->items[l->n++] = (char *)s;
		}
		return 0;
	}
	case CP_CF_KEYS:
	case CP_CF_MESH_KEYS:
		return set_keys(c, f, v, err);
	case CP_CF_OBJECT:
		return 0; /* accepted and ignored, like upstream's empty struct */
	}
	return -EINVAL;
}

/* Finds <f>'s value in the YAML document. Returns 0 with *out NULL when absent
 * or null (null leaves the default, except lists which Go resets to nil). */
static int lookup(const struct km_json *doc, const struct cp_config_field *f,
		  const struct km_json **out, struct km_buf *err)
{
	const struct km_json *cur = doc;
	const char *seg = f->path;

	*out = NULL;
	for (;;) {
		const char *dot = strchr(seg, '.');
		size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
		const struct km_json *m = member_fold(cur, seg, n);
		if (!m)
			return 0;
		if (!dot) {
			*out = m;
			return 0;
		}
		if (m->kind == KM_JSON_NULL)
			return 0;
		if (m->kind != KM_JSON_OBJECT) {
			km_buf_printf(err,
				      "json: cannot unmarshal %s into Go struct field %.*s of type object",
				      json_kind_name(m), (int)(dot - f->path), f->path);
			return -EINVAL;
		}
		cur = m;
		seg = dot + 1;
	}
}

void cp_config_init_defaults(struct cp_config *c)
{
	struct km_buf why = KM_BUF_INIT;

	memset(c, 0, sizeof(*c));
	c->arena = km_arena_new(0);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		int rc = set_from_text(c, &fields[i], fields[i].dflt, &why);
		if (rc) { /* a broken default is a programming error */
			fprintf(stderr, "config: bad default for %s: %s\n", fields[i].path,
				km_buf_cstr(&why));
			abort();
		}
	}
	km_buf_fini(&why);
}

void cp_config_fini(struct cp_config *c)
{
	if (c->arena)
		km_arena_free(c->arena);
	memset(c, 0, sizeof(*c));
}

static int read_file(struct km_arena *a, const char *path, char **out, size_t *len,
		     struct km_buf *err)
{
	struct stat st;
	FILE *fp;

	if (stat(path, &st) != 0 || !(fp = fopen(path, "rb"))) {
		km_buf_printf(err,
			      "unable to access configuration file '%s', please check if the file "
			      "exists and has the correct permissions",
			      path);
		return -ENOENT;
	}
	if (S_ISDIR(st.st_mode) || st.st_size > (off_t)CONFIG_FILE_MAX) {
		fclose(fp);
		km_buf_printf(err, "reading configuration from file '%s' failed: %s", path,
			      S_ISDIR(st.st_mode) ? "is a directory" : "file is larger than 4 MiB");
		return -EINVAL;
	}
	char *buf = km_arena_alloc(a, (size_t)st.st_size + 1);
	size_t n = fread(buf, 1, (size_t)st.st_size, fp);
	bool bad = ferror(fp);
	fclose(fp);
	if (bad) {
		km_buf_printf(err, "reading configuration from file '%s' failed: read error", path);
		return -EINVAL;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int load_file(struct cp_config *c, const char *path, struct km_buf *err)
{
	struct km_arena *tmp = km_arena_new(0);
	struct km_buf why = KM_BUF_INIT;
	struct km_json **docs;
	size_t ndocs = 0, len = 0;
	char *text = NULL;
	int rc;

	rc = read_file(tmp, path, &text, &len, err);
	if (rc)
		goto out;
	rc = km_yaml_parse(tmp, text, len, &docs, &ndocs, &why);
	if (rc) {
		rc = -EINVAL;
		goto fail;
	}
	if (ndocs == 0)
		goto out; /* empty file: defaults */
	if (docs[0]->kind != KM_JSON_OBJECT) {
		if (docs[0]->kind == KM_JSON_NULL)
			goto out;
		km_buf_printf(&why, "json: cannot unmarshal %s into Go value of type kuma_cp.Config",
			      json_kind_name(docs[0]));
		rc = -EINVAL;
		goto fail;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct cp_config_field *f = &fields[i];
		const struct km_json *v;
		rc = lookup(docs[0], f, &v, &why);
		if (rc)
			goto fail;
		if (!v)
			continue;
		if (v->kind == KM_JSON_NULL) {
			if (f->kind == CP_CF_STRLIST)
				memset(field_ptr(c, f), 0, sizeof(struct cp_config_strlist));
			else if (f->kind == CP_CF_KEYS || f->kind == CP_CF_MESH_KEYS)
				memset(field_ptr(c, f), 0, sizeof(struct cp_config_keys));
			continue;
		}
		rc = set_from_json(c, f, v, &why);
		if (rc)
			goto fail;
	}
	goto out;
fail:
	km_buf_printf(err, "parsing configuration from file '%s' failed: unable to parse configuration: %s",
		      path, km_buf_cstr(&why));
out:
	km_buf_fini(&why);
	km_arena_free(tmp);
	return rc;
}

static const char *env_lookup(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (char *const *e = envp; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int load_env(struct cp_config *c, char *const *envp, struct km_buf *err)
{
	struct km_buf why = KM_BUF_INIT;
	int rc = 0;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]) && rc == 0; i++) {
		const struct cp_config_field *f = &fields[i];
		const char *name = f->env, *val;
		if (!name)
			continue;
		val = env_lookup(envp, name);
		if (!val && f->env_alias) {
			name = f->env_alias;
			val = env_lookup(envp, name);
		}
		if (!val)
			continue;
		rc = set_from_text(c, f, val, &why);
		if (rc) {
			km_buf_printf(err,
				      "processing environment variables failed: envconfig.Process: "
				      "assigning %s to %s: converting '%s' to type %s. details: %s",
				      name, f->path, val,
				      f->kind == CP_CF_DURATION ? "types.Duration" : go_type(f),
				      km_buf_cstr(&why));
			rc = -EINVAL;
		}
	}
	km_buf_fini(&why);
	return rc;
}

int cp_config_load(struct cp_config *c, const char *path, char *const *envp, struct km_buf *err)
{
	int rc;

	if (path && *path) {
		rc = load_file(c, path, err);
		if (rc)
			return rc;
	}
	if (envp)
		return load_env(c, envp, err);
	return 0;
}

/* ---- validation ---- */

static void violation(struct km_buf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(struct km_buf *err, const char *fmt, ...)
{
	va_list ap;
	if (err->len)
		km_buf_putc(err, '\n');
	va_start(ap, fmt);
	km_buf_vprintf(err, fmt, ap);
	va_end(ap);
}

static int64_t int_value(const struct cp_config_field *f, const void *v)
{
	switch (f->kind) {
	case CP_CF_INT: return *(const int *)v;
	case CP_CF_UINT: return *(const unsigned *)v;
	case CP_CF_DURATION: return *(const int64_t *)v;
	default: return 0;
	}
}

static int check_port(const struct cp_config_field *f, const void *v, struct km_buf *err)
{
	int64_t p = int_value(f, v);
	if (p >= 1 && p <= 65535)
		return 0;
	violation(err, "%s: port must be in range [1, 65535], got %" PRId64, f->path, p);
	return -EINVAL;
}

static int check_port0(const struct cp_config_field *f, const void *v, struct km_buf *err)
{
	int64_t p = int_value(f, v);
	if (p >= 0 && p <= 65535)
		return 0;
	violation(err, "%s: port must be in range [0, 65535], got %" PRId64, f->path, p);
	return -EINVAL;
}

static int check_positive(const struct cp_config_field *f, const void *v, struct km_buf *err)
{
	if (int_value(f, v) > 0)
		return 0;
	violation(err, "%s: must be positive", f->path);
	return -EINVAL;
}

static int check_nonneg(const struct cp_config_field *f, const void *v, struct km_buf *err)
{
	if (int_value(f, v) >= 0)
		return 0;
	violation(err, "%s: must be greater or equal 0", f->path);
	return -EINVAL;
}

static int check_percent(const struct cp_config_field *f, const void *v, struct km_buf *err)
{
	if (int_value(f, v) <= 100)
		return 0;
	violation(err, "%s: out of [0-100] range", f->path);
	return -EINVAL;
}

static bool one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static int check_pg_tls_mode(const struct cp_config_field *f, const void *v, struct km_buf *err)
{
	static const char *const ok[] = {"disable", "verifyNone", "verifyCa", "verifyFull", NULL};
	const char *s = *(char *const *)v;
	if (one_of(s, ok))
		return 0;
	violation(err, "%s: invalid mode: %s", f->path, s);
	return -EINVAL;
}

static int check_mode(const struct cp_config_field *f, const void *v, struct km_buf *err)
{
	static const char *const ok[] = {"zone", "global", NULL};
	if (one_of(*(char *const *)v, ok))
		return 0;
	violation(err, "Mode validation failed: invalid mode. Available modes: zone, global");
	return -EINVAL;
}

static int check_environment(const struct cp_config_field *f, const void *v, struct km_buf *err)
{
	static const char *const ok[] = {"universal", "kubernetes", NULL};
	if (one_of(*(char *const *)v, ok))
		return 0;
	violation(err, "Environment should be either kubernetes or universal");
	return -EINVAL;
}

static int check_store_type(const struct cp_config_field *f, const void *v, struct km_buf *err)
{
	static const char *const ok[] = {"memory", "postgres", NULL};
	if (one_of(*(char *const *)v, ok))
		return 0;
	violation(err, "Store validation failed: Type should be either postgres or memory");
	return -EINVAL;
}

/* RFC 1035 label: lower-case alphanumerics and '-', starts with a letter, ends
 * alphanumeric, at most 63 characters (k8s IsDNS1035Label). */
static bool dns1035_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return s[n - 1] != '-';
}

static void check_keys(const struct cp_config_keys *keys, const char *path, struct km_buf *err)
{
	for (size_t i = 0; i < keys->n; i++) {
		const struct cp_config_key *k = &keys->items[i];
		if (!*k->kid)
			violation(err, "%s[%zu] is not valid: .KID is required", path, i);
		else if (!*k->key && !*k->key_file)
			violation(err, "%s[%zu] is not valid: either .KeyFile or .Key has to be defined",
				  path, i);
		else if (*k->key && *k->key_file)
			violation(err, "%s[%zu] is not valid: both .KeyFile or .Key cannot be defined",
				  path, i);
	}
}

static void check_postgres(const struct cp_config *c, struct km_buf *err)
{
	const __typeof__(c->store.postgres) *pg = &c->store.postgres;
	const char *pre = "Store validation failed: Postgres validation failed:";

	if (!*pg->host)
		violation(err, "%s Host should not be empty", pre);
	if (!*pg->user)
		violation(err, "%s User should not be empty", pre);
	if (!*pg->password)
		violation(err, "%s Password should not be empty", pre);
	if (!*pg->db_name)
		violation(err, "%s DbName should not be empty", pre);
	if ((!strcmp(pg->tls.mode, "verifyCa") || !strcmp(pg->tls.mode, "verifyFull")) &&
	    !*pg->tls.ca_path)
		violation(err, "%s TLS validation failed: CAPath cannot be empty", pre);
	if (*pg->tls.cert_path && !*pg->tls.key_path)
		violation(err, "%s TLS validation failed: KeyPath cannot be empty when CertPath is provided", pre);
	if (*pg->tls.key_path && !*pg->tls.cert_path)
		violation(err, "%s TLS validation failed: CertPath cannot be empty when KeyPath is provided", pre);
	if (pg->min_open_connections < 0)
		violation(err, "%s MinOpenConnections should be greater than 0", pre);
	if (pg->max_open_connections > 0 && pg->min_open_connections > pg->max_open_connections)
		violation(err, "%s MinOpenConnections should be less than MaxOpenConnections", pre);
	if (pg->max_connection_lifetime <= 0)
		violation(err, "%s MaxConnectionLifetime should be greater than 0", pre);
	if (pg->max_connection_lifetime_jitter < 0)
		violation(err, "%s MaxConnectionLifetimeJitter should be greater than 0", pre);
	if (pg->max_connection_lifetime_jitter > pg->max_connection_lifetime)
		violation(err, "%s MaxConnectionLifetimeJitter should be less than MaxConnectionLifetime", pre);
	if (pg->health_check_interval <= 0)
		violation(err, "%s HealthCheckInterval should be greater than 0", pre);
	if (pg->min_reconnect_interval <= 0 || pg->max_reconnect_interval < pg->min_reconnect_interval)
		violation(err, "%s MinReconnectInterval should be positive and not above MaxReconnectInterval", pre);
}

int cp_config_validate(const struct cp_config *c, struct km_buf *err)
{
	size_t before = err->len;
	static const char *const dp_authn[] = {"", "dpToken", "serviceAccountToken", "none", NULL};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i].check)
			fields[i].check(&fields[i], field_ptr(c, &fields[i]), err);

	if (!strcmp(c->mode, "zone")) {
		const char *name = c->multizone.zone.name;
		const char *ga = c->multizone.zone.global_address;
		if (!*name)
			violation(err, "Multizone Zone validation failed: Name is mandatory");
		else if (!dns1035_label(name))
			violation(err,
				  "Multizone Zone validation failed: Zone name \"%s\" has to be a valid "
				  "RFC1035 DNS label",
				  name);
		if (*ga && strncmp(ga, "grpc://", 7) != 0 && strncmp(ga, "grpcs://", 8) != 0)
			violation(err,
				  "Multizone Zone validation failed: unsupported scheme in zone "
				  "GlobalAddress \"%s\". Use one of [grpc grpcs]",
				  ga);
		if (c->metrics.mesh.full_resync_interval <= c->metrics.mesh.min_resync_interval)
			violation(err, "Metrics validation failed: FullResyncInterval should be greater "
				       "than MinResyncInterval");
	}
	if (!strcmp(c->store.type, "postgres"))
		check_postgres(c, err);
	if (!*c->api_server.http.interface)
		violation(err, "ApiServer validation failed: .HTTP not valid: Interface cannot be empty");
	if (!*c->api_server.https.interface)
		violation(err, "ApiServer validation failed: .HTTPS not valid: .Interface cannot be empty");
	if (!*c->api_server.https.tls_cert_file != !*c->api_server.https.tls_key_file)
		violation(err, "ApiServer validation failed: .HTTPS not valid: Both TlsCertFile and "
			       "TlsKeyFile has to be specified");
	if (!*c->diagnostics.tls_cert_file != !*c->diagnostics.tls_key_file)
		violation(err, "Diagnostics validation failed: .TlsCertFile and .TlsKeyFile have to "
			       "be set together");
	if (!*c->general.tls_cert_file != !*c->general.tls_key_file)
		violation(err, "General validation failed: TlsCertFile and TlsKeyFile have to be set "
			       "together");
	/* upstream: ".TlsMinVersion" + the parser's error, no separator */
	static const char *const tls_versions[2][2] = {{"min", ".TlsMinVersion"}, {"max", ".TlsMaxVersion"}};
	for (int i = 0; i < 2; i++) {
		const char *v = i ? c->dp_server.tls_max_version : c->dp_server.tls_min_version;
		if (cp_tls_version(v) < 0)
			violation(err,
				  "DpServer validation failed: %sunsupported tls version: %s supported "
				  "versions:[TLSv1_2 TLSv1_3]",
				  tls_versions[i][1], v);
	}
	struct km_buf ciphers = KM_BUF_INIT, cerr = KM_BUF_INIT;
	int dropped;
	if (cp_tls_ciphers(&c->dp_server.tls_cipher_suites, &ciphers, &dropped, &cerr))
		violation(err, "DpServer validation failed: .TlsCipherSuites%s", km_buf_cstr(&cerr));
	km_buf_fini(&ciphers);
	km_buf_fini(&cerr);
	if (!one_of(c->dp_server.authn.dp_proxy.type, dp_authn))
		violation(err, "DpServer validation failed: .Authn.DpProxy.Type must be one of "
			       "dpToken, serviceAccountToken, none");
	if (!*c->api_server.authn.type)
		violation(err, "ApiServer validation failed: .Authn.Type cannot be empty");
	check_keys(&c->api_server.authn.tokens.validator.public_keys,
		   "ApiServer validation failed: .Authn is not valid: .Tokens is not valid: "
		   ".Validator is not valid: .PublicKeys",
		   err);
	check_keys(&c->dp_server.authn.dp_proxy.dp_token.validator.public_keys,
		   "DpServer validation failed: .Auth is invalid: .DpProxy is not valid: .DpToken is "
		   "not valid: .Validator is not valid: .PublicKeys",
		   err);
	return err->len > before ? -EINVAL : 0;
}

/* ---- JSON view ---- */

static struct km_json *parent_of(struct km_arena *a, struct km_json *root, const char *path,
				 const char **leaf)
{
	struct km_json *cur = root;
	const char *seg = path;
	const char *dot;

	while ((dot = strchr(seg, '.'))) {
		struct km_str key = {seg, (size_t)(dot - seg)};
		struct km_json *next = km_json_get_str(cur, key);
		if (!next) {
			next = km_json_object(a);
			km_json_set_str(a, cur, key, next);
		}
		cur = next;
		seg = dot + 1;
	}
	*leaf = seg;
	return cur;
}

static struct km_json *strlist_json(struct km_arena *a, const struct cp_config_strlist *l)
{
	struct km_json *arr = km_json_array(a);
	for (size_t i = 0; i < l->n; i++)
		km_json_array_push(a, arr, km_json_cstring(a, l->items[i]));
	return arr;
}

static struct km_json *keys_json(struct km_arena *a, const struct cp_config_keys *keys, bool mesh)
{
	struct km_json *arr = km_json_array(a);
	for (size_t i = 0; i < keys->n; i++) {
		const struct cp_config_key *k = &keys->items[i];
		struct km_json *o = km_json_object(a);
		km_json_set(a, o, "kid", km_json_cstring(a, k->kid));
		if (*k->key_file)
			km_json_set(a, o, "keyFile", km_json_cstring(a, k->key_file));
		if (*k->key)
			km_json_set(a, o, "key", km_json_cstring(a, k->key));
		if (mesh)
			km_json_set(a, o, "mesh", km_json_cstring(a, k->mesh));
		km_json_array_push(a, arr, o);
	}
	return arr;
}

struct km_json *cp_config_to_json(struct km_arena *a, const struct cp_config *c)
{
	struct km_json *root = km_json_object(a);

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct cp_config_field *f = &fields[i];
		const void *p = field_ptr(c, f);
		const char *leaf;
		struct km_json *parent, *v = NULL;
		bool empty = false;

		if (f->flags & CF_NOJSON)
			continue;
		parent = parent_of(a, root, f->path, &leaf);
		switch (f->kind) {
		case CP_CF_STRING:
			empty = !**(char *const *)p;
			v = km_json_cstring(a, (f->flags & CF_SECRET) ? "*****" : *(char *const *)p);
			break;
		case CP_CF_INT:
			empty = *(const int *)p == 0;
			v = km_json_int(a, *(const int *)p);
			break;
		case CP_CF_UINT:
			empty = *(const unsigned *)p == 0;
			v = km_json_int(a, *(const unsigned *)p);
			break;
		case CP_CF_BOOL:
			empty = !*(const bool *)p;
			v = km_json_bool(a, *(const bool *)p);
			break;
		case CP_CF_DURATION:
			empty = *(const int64_t *)p == 0;
			v = km_json_cstring(a, km_duration_format(a, *(const int64_t *)p));
			break;
		case CP_CF_STRLIST:
			empty = ((const struct cp_config_strlist *)p)->n == 0;
			v = strlist_json(a, p);
			break;
		case CP_CF_KEYS:
		case CP_CF_MESH_KEYS:
			empty = ((const struct cp_config_keys *)p)->n == 0;
			v = keys_json(a, p, f->kind == CP_CF_MESH_KEYS);
			break;
		case CP_CF_OBJECT: v = km_json_object(a); break;
		}
		if (empty && (f->flags & CF_OMITEMPTY))
			continue;
		km_json_set(a, parent, leaf, v);
	}
	return root;
}

bool cp_config_access_allows(const struct cp_config_strlist *users,
			     const struct cp_config_strlist *groups, const char *user,
			     const char *const *user_groups, size_t n_groups)
{
	for (size_t i = 0; user && i < users->n; i++)
		if (strcmp(users->items[i], user) == 0)
			return true;
	for (size_t g = 0; g < n_groups; g++)
		for (size_t i = 0; i < groups->n; i++)
			if (strcmp(groups->items[i], user_groups[g]) == 0)
				return true;
	return false;
}
