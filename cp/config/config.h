/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-cp configuration: one struct with every setting, filled from defaults,
 * then the YAML file, then KUMA_* environment variables, all driven by the
 * field table in config.c. Strings and lists live in the config's own arena,
 * owned by the struct and released by cp_config_fini(). */
#ifndef KM_CP_CONFIG_H
#define KM_CP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "codec/json.h"

/* A list of strings (string-list settings, env value "a,b,c"). */
struct cp_config_strlist {
	size_t n;
	char **items;
};

/* A static token-validation public key ({kid, key|keyFile[, mesh]}). */
struct cp_config_key {
	char *kid;
	char *key_file;
	char *key;
	char *mesh; /* dataplane-token keys only; "" = every mesh */
};

struct cp_config_keys {
	size_t n;
	struct cp_config_key *items;
};

/* Durations are Go time.Duration values: nanoseconds. */
#define CP_CONFIG_MS(d) ((d) / 1000000)
#define CP_CONFIG_SEC(d) ((d) / 1000000000)

/* Member names are the snake_case of the YAML keys; "static" becomes "static_". */
struct cp_config {
	struct km_arena *arena; /* owns every string and list below */
	struct {
		int64_t dns_cache_ttl;
		char *tls_cert_file;
		char *tls_key_file;
		char *tls_min_version;
		char *tls_max_version;
		struct cp_config_strlist tls_cipher_suites;
		char *work_dir;
		int64_t resilient_component_base_backoff;
		int64_t resilient_component_max_backoff;
		int64_t cert_generation_base_backoff;
		int64_t cert_generation_max_backoff;
		int cert_generation_circuit_breaker_min_proxies;
	} general;
	char *environment;
	char *mode;
	struct {
		char *type;
		struct {
			char *host;
			int port;
			char *user;
			char *password;
			char *db_name;
			char *driver_name;
			int connection_timeout;
			int64_t max_connection_idle_time;
			int64_t max_connection_lifetime;
			int64_t max_connection_lifetime_jitter;
			int64_t health_check_interval;
			int min_open_connections;
			int max_open_connections;
			int max_idle_connections;
			int64_t min_reconnect_interval;
			int64_t max_reconnect_interval;
			struct {
				char *mode;
				char *cert_path;
				char *key_path;
				char *ca_path;
				bool disable_sslsni;
			} tls;
			unsigned max_list_query_elements;
			struct {
				char *host;
				unsigned port;
				unsigned ratio;
			} read_replica;
			bool tolerate_newer_db_versions;
		} postgres;
		struct {
			char *system_namespace;
		} kubernetes;
		struct {
			bool enabled;
			int64_t expiration_time;
		} cache;
		struct {
			int64_t conflict_retry_base_backoff;
			unsigned conflict_retry_max_times;
			unsigned conflict_retry_jitter_percent;
		} upsert;
		bool unsafe_delete;
	} store;
	struct {
		struct {
			char *admin_address;
			unsigned admin_port;
			bool envoy_admin_unix_socket;
			unsigned readiness_port;
			char *admin_access_log_path;
			char *xds_host;
			unsigned xds_port;
			int64_t xds_connect_timeout;
			unsigned xds_grpc_max_receive_message_bytes;
		} params;
	} bootstrap_server;
	struct {
		int64_t dataplane_configuration_refresh_interval;
		int64_t dataplane_status_flush_interval;
		int64_t dataplane_deregistration_delay;
		int64_t nack_backoff;
		int policy_matching_cache_size;
	} xds_server;
	struct {
		bool enabled;
		unsigned port;
		int64_t default_fetch_timeout;
		struct cp_config_strlist api_versions;
		int64_t assignment_refresh_interval;
		bool tls_enabled;
		char *tls_cert_file;
		char *tls_key_file;
		char *tls_min_version;
		char *tls_max_version;
		struct cp_config_strlist tls_cipher_suites;
	} monitoring_assignment_server;
	struct {
		bool read_only;
		struct cp_config_strlist cors_allowed_domains;
		struct {
			bool enabled;
			char *interface;
			unsigned port;
		} http;
		struct {
			bool enabled;
			char *interface;
			unsigned port;
			char *tls_cert_file;
			char *tls_key_file;
			char *tls_min_version;
			char *tls_max_version;
			struct cp_config_strlist tls_cipher_suites;
			bool require_client_cert;
			char *tls_ca_file;
		} https;
		struct {
			char *type;
			bool localhost_is_admin;
			struct {
				bool bootstrap_admin_token;
				bool enable_issuer;
				struct {
					bool use_secrets;
					struct cp_config_keys public_keys;
				} validator;
			} tokens;
		} authn;
		char *base_path;
		char *root_url;
		struct {
			bool enabled;
			char *root_url;
			char *base_path;
		} gui;
		int64_t read_header_timeout;
		int64_t read_timeout;
		int64_t write_timeout;
		int64_t idle_timeout;
	} api_server;
	struct {
		struct {
			int64_t dataplane_cleanup_age;
			struct {
				char *socket_path;
			} spire;
			struct {
				int64_t generation_interval;
			} workload;
		} universal;
	} runtime;
	struct {
		bool skip_mesh_creation;
		bool skip_tenant_resources;
		bool skip_hostname_generators;
	} defaults;
	struct {
		struct {
			int subscription_limit;
			int64_t idle_timeout;
		} dataplane;
		struct {
			int subscription_limit;
			int64_t idle_timeout;
			bool compact_finished_subscriptions;
		} zone;
		struct {
			int buffer_size;
			int64_t min_resync_interval;
			int64_t full_resync_interval;
			int event_processors;
		} mesh;
		struct {
			bool report_resources_count;
		} control_plane;
		struct {
			bool enabled;
		} open_telemetry;
	} metrics;
	struct {
		bool enabled;
	} reports;
	struct {
		struct {
			struct {
				unsigned grpc_port;
				int64_t zone_insight_flush_interval;
				bool tls_enabled;
				char *tls_cert_file;
				char *tls_key_file;
				char *tls_min_version;
				char *tls_max_version;
				struct cp_config_strlist tls_cipher_suites;
				unsigned max_msg_size;
				int64_t msg_send_timeout;
				int64_t nack_backoff;
				int64_t response_backoff;
				bool log_payloads;
				struct {
					int64_t flush_interval;
					int64_t full_resync_interval;
					bool delay_full_resync;
				} event_based_watchdog;
				struct {
					int64_t poll_interval;
					int64_t timeout;
					bool close_stale_conn;
				} zone_health_check;
				struct {
					bool enabled;
				} tracing;
				struct {
					struct cp_config_strlist skip_prefixes;
				} labels;
			} kds;
		} global;
		struct {
			char *name;
			char *global_address;
			struct {
				bool tls_skip_verify;
				char *root_ca_file;
				unsigned max_msg_size;
				int64_t msg_send_timeout;
				int64_t nack_backoff;
				int64_t response_backoff;
				bool log_payloads;
				struct {
					int64_t flush_interval;
					int64_t full_resync_interval;
					bool delay_full_resync;
				} event_based_watchdog;
				struct {
					struct cp_config_strlist skip_prefixes;
				} labels;
			} kds;
			bool disable_origin_label_validation;
		} zone;
	} multizone;
	struct {
		char *domain;
		unsigned service_vip_port;
	} dns_server;
	struct {
		unsigned server_port;
		bool debug_endpoints;
		bool tls_enabled;
		char *tls_cert_file;
		char *tls_key_file;
		char *tls_min_version;
		char *tls_max_version;
		struct cp_config_strlist tls_cipher_suites;
	} diagnostics;
	struct {
		int port;
		char *tls_cert_file;
		char *tls_key_file;
		char *tls_min_version;
		char *tls_max_version;
		struct cp_config_strlist tls_cipher_suites;
		int64_t read_header_timeout;
		int64_t graceful_shutdown_timeout;
		struct {
			struct {
				char *type;
				struct {
					bool enable_issuer;
					struct {
						bool use_secrets;
						struct cp_config_keys public_keys;
					} validator;
				} dp_token;
			} dp_proxy;
			struct {
				char *type;
				struct {
					bool enable_issuer;
					struct {
						bool use_secrets;
						struct cp_config_keys public_keys;
					} validator;
				} zone_token;
			} zone_proxy;
			bool enable_reloadable_tokens;
		} authn;
		struct {
			bool enabled;
			int64_t interval;
			int64_t refresh_interval;
			struct {
				int64_t timeout;
				int64_t interval;
				int64_t no_traffic_interval;
				unsigned healthy_threshold;
				unsigned unhealthy_threshold;
			} check_defaults;
		} hds;
	} dp_server;
	struct {
		char *type;
		struct {
			struct {
				struct cp_config_strlist users;
				struct cp_config_strlist groups;
			} admin_resources;
			struct {
				struct cp_config_strlist users;
				struct cp_config_strlist groups;
			} generate_dp_token;
			struct {
				struct cp_config_strlist users;
				struct cp_config_strlist groups;
			} generate_user_token;
			struct {
				struct cp_config_strlist users;
				struct cp_config_strlist groups;
			} generate_zone_token;
			struct {
				struct cp_config_strlist users;
				struct cp_config_strlist groups;
			} view_config_dump;
			struct {
				struct cp_config_strlist users;
				struct cp_config_strlist groups;
			} view_stats;
			struct {
				struct cp_config_strlist users;
				struct cp_config_strlist groups;
			} view_clusters;
			struct {
				struct cp_config_strlist users;
				struct cp_config_strlist groups;
			} control_plane_metadata;
		} static_;
	} access;
	struct {
		struct {
			char *instance_address;
			char *instance_version;
			int64_t heartbeat_interval;
			int64_t writer_interval;
		} catalog;
		struct {
			unsigned port;
			char *tls_min_version;
			char *tls_max_version;
			struct cp_config_strlist tls_cipher_suites;
		} server;
	} inter_cp;
	struct {
		struct {
			bool enabled;
			char *endpoint;
		} open_telemetry;
	} tracing;
	struct {
		unsigned buffer_size;
	} event_bus;
	struct {
		struct cp_config_strlist plugin_policies_enabled;
	} policies;
	struct {
		struct cp_config_strlist enabled;
		struct {
			int64_t mesh_multi_zone_service_interval;
			int64_t mesh_service_interval;
			int64_t mesh_identity_interval;
			int64_t workload_interval;
			int64_t mesh_open_telemetry_backend_interval;
		} status;
	} core_resources;
	struct {
		struct {
			char *cidr;
		} mesh_service;
		struct {
			char *cidr;
		} mesh_external_service;
		struct {
			char *cidr;
		} mesh_multi_zone_service;
		int64_t allocation_interval;
		struct cp_config_strlist known_internal_cidrs;
	} ipam;
	struct {
		int64_t generation_interval;
		int64_t deletion_grace_period;
		struct {
			bool enabled;
			struct cp_config_strlist allowed_label_keys;
		} label_propagation;
	} mesh_service;
};

/* Field kinds of the table (also used by tools that list the settings). */
enum cp_config_kind {
	CP_CF_STRING,
	CP_CF_INT,
	CP_CF_UINT,
	CP_CF_BOOL,
	CP_CF_DURATION,
	CP_CF_STRLIST,
	CP_CF_KEYS,      /* list of {kid, key, keyFile} */
	CP_CF_MESH_KEYS, /* list of {kid, key, keyFile, mesh} */
	CP_CF_OBJECT,    /* placeholder object with no settings (experimental) */
};

struct cp_config_field {
	const char *path;      /* YAML/JSON path, upstream's JSON names */
	const char *env;       /* KUMA_* variable or NULL */
	const char *env_alias; /* second accepted variable (documented legacy name) or NULL */
	enum cp_config_kind kind;
	const char *dflt; /* default in env syntax ("5s", "a,b", "true") */
	size_t offset;
	unsigned flags;
	/* Optional per-field rule run by cp_config_validate; appends a message. */
	int (*check)(const struct cp_config_field *f, const void *val, struct km_buf *err);
};

#define CF_OMITEMPTY 1u /* left out of the JSON view when empty (Go omitempty) */
#define CF_SECRET 2u    /* redacted as "*****" in the JSON view */
#define CF_NOJSON 4u    /* our own setting with no upstream counterpart: not shown */

/* The field table, in upstream's JSON order; <*n> gets its length. */
const struct cp_config_field *cp_config_fields(size_t *n);

/* Sets every field to its upstream default; allocates the config's arena. */
void cp_config_init_defaults(struct cp_config *c);
/* Loads <path> (may be NULL) over the defaults, then KUMA_* from <envp> (may be
 * NULL). Unknown keys are ignored like upstream (non-strict) and keys match
 * case-insensitively like Go's encoding/json; a value of the wrong type or an
 * unreadable/invalid YAML file is an error with a message in <err> naming the
 * file, key and problem. Returns 0, -ENOENT (file missing) or -EINVAL. */
int cp_config_load(struct cp_config *c, const char *path, char *const *envp, struct km_buf *err);
/* Validates ranges and cross-field rules (ports, mode, store type, postgres,
 * zone name...). Every violation is appended to <err>, one per line; returns 0
 * or -EINVAL. */
int cp_config_validate(const struct cp_config *c, struct km_buf *err);
/* The effective config as JSON in upstream's shape and key order (GET /config),
 * with the postgres password shown as "*****". The tree lives in <a>. */
struct km_json *cp_config_to_json(struct km_arena *a, const struct cp_config *c);
void cp_config_fini(struct cp_config *c);

/* Go time.ParseDuration ("1h2m3.5s", "300ms", "0") over km_duration_parse from
 * lib/resource/validate.h; 0 or -EINVAL. */
int cp_config_duration_parse(const char *s, size_t len, int64_t *out);

/* True when <user> or one of <groups> is allowed by a users/groups pair of the
 * access.static section (e.g. &c->access.static_.generate_user_token). */
bool cp_config_access_allows(const struct cp_config_strlist *users,
			     const struct cp_config_strlist *groups, const char *user,
			     const char *const *user_groups, size_t n_groups);

#endif
