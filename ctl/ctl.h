/* SPDX-License-Identifier: Apache-2.0 */
/* kumactl internals shared by the verb files: the parsed command line, the
 * kumactl config (contexts and control planes), the HTTP client and the
 * printers. One invocation owns one arena (struct ctl_ctx.a); everything
 * below borrows from it and dies when main() returns. */
#ifndef KM_CTL_CTL_H
#define KM_CTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "codec/json.h"
#include "resource/type.h"

#ifndef KM_VERSION
#define KM_VERSION "3.0.0"
#endif
#define CTL_PRODUCT "Kuma"

/* ---- command line (main.c) ---- */

enum ctl_flag_kind {
	CTL_FLAG_BOOL,
	CTL_FLAG_STRING,
	CTL_FLAG_INT,
	CTL_FLAG_DURATION,
	CTL_FLAG_MAP,  /* key=value, repeatable (pflag StringToString) */
	CTL_FLAG_LIST, /* comma-separated, repeatable (pflag StringSlice) */
};

struct ctl_flag_def {
	const char *name;
	char shorthand;
	enum ctl_flag_kind kind;
	const char *defval;
	bool required;
	const char *usage;
};

struct ctl_ctx;

struct ctl_cmd {
	const char *name;
	const char *short_help;
	const struct ctl_cmd *subs;       /* terminated by a row with name NULL */
	const struct ctl_flag_def *flags; /* terminated by a row with name NULL */
	int (*run)(struct ctl_ctx *c);
	int min_args, max_args; /* positional arguments; -1 = unbounded */
	unsigned opts;
};

/* ctl_cmd.opts */
enum {
	CTL_CMD_TYPE_ARG = 1u << 0, /* `get`: the next word is a resource type argument */
	CTL_CMD_NO_CP = 1u << 1,    /* never talks to the control plane */
	CTL_CMD_POLICY_ARG =
		1u << 2, /* `inspect`: a policy's singular argument selects a command */
};

struct ctl_flag_val {
	const struct ctl_flag_def *def;
	const char *value;
};

struct ctl_cp {
	const char *name, *url, *ca_cert_file, *client_cert_file, *client_key_file;
	const char *auth_type;
	const char **auth_keys, **auth_vals; /* auth_conf, sorted by key */
	size_t n_auth;
	const char **hdr_keys, **hdr_vals;
	size_t n_hdr;
	bool skip_verify;
};

struct ctl_context {
	const char *name, *control_plane, *default_mesh; /* default_mesh may be NULL */
};

struct ctl_config {
	struct ctl_cp *cps;
	size_t n_cps, cap_cps;
	struct ctl_context *ctxs;
	size_t n_ctxs, cap_ctxs;
	const char *current;
};

struct ctl_ctx {
	struct km_arena *a;
	const struct ctl_cmd *cmd;
	const char *cmd_path; /* "kumactl get" */
	const char **args;
	size_t nargs;
	struct ctl_flag_val *vals;
	size_t nvals, cap_vals;
	const struct ctl_flag_def **defs; /* every flag visible to cmd */
	size_t ndefs;
	/* `get` / `inspect <policy>` resource type; whether `get` got the plural */
	const struct km_rtype *rtype;
	bool plural;
	/* global options */
	const char *config_file;
	int64_t api_timeout_ns;
	struct ctl_config cfg;
	int64_t now_ns; /* pinned clock for AGE columns */
};

/* ---- args.c ---- */

/* Prints "Error: <fmt>" on stderr the way cobra does; returns 1 (exit code). */
int ctl_args_fail(struct ctl_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes <b> to stdout; returns 0 or 1 on a write error. */
int ctl_args_out(const struct km_buf *b);
/* Last value of flag <name> or its default; NULL when unset with no default. */
const char *ctl_args_str(const struct ctl_ctx *c, const char *name);
bool ctl_args_bool(const struct ctl_ctx *c, const char *name);
bool ctl_args_given(const struct ctl_ctx *c, const char *name);
/* Every value of a repeatable flag (MAP items are "k=v"), in command-line order. */
size_t ctl_args_all(const struct ctl_ctx *c, const char *name, const char ***out);
/* The mesh to use: -m/--mesh, default "default". */
const char *ctl_args_mesh(const struct ctl_ctx *c);

/* ---- kumactl config (ctlconfig.c) ---- */

/* Loads <file> (NULL = ~/.kumactl/config) into <cfg>. A missing default file
 * leaves <cfg> empty; a missing explicit file is an error. Keys are accepted
 * in camelCase and snake_case, unknown keys are ignored (protojson).
 * Returns 0 or -errno with a message in <err>. */
int ctl_ctlconfig_load(struct km_arena *a, const char *file, struct ctl_config *cfg,
		       struct km_buf *err);
/* Writes <cfg> as sorted YAML (mode 0600, directory created as needed). */
int ctl_ctlconfig_save(struct km_arena *a, const char *file, const struct ctl_config *cfg,
		       struct km_buf *err);
/* Serialises <cfg> the way upstream's util_proto.ToYAML does. */
void ctl_ctlconfig_to_yaml(struct km_arena *a, const struct ctl_config *cfg, struct km_buf *out);
void ctl_ctlconfig_default(struct km_arena *a, struct ctl_config *cfg);
/* Path of the default config file ($HOME/.kumactl/config), in <a>. */
const char *ctl_ctlconfig_default_path(struct km_arena *a);
struct ctl_cp *ctl_ctlconfig_cp(struct ctl_config *cfg, const char *name);
struct ctl_context *ctl_ctlconfig_context(struct ctl_config *cfg, const char *name);
/* Adds or (with <force>) replaces; false when it exists and !force. */
bool ctl_ctlconfig_add_cp(struct km_arena *a, struct ctl_config *cfg, const struct ctl_cp *cp,
			  bool force);
bool ctl_ctlconfig_add_context(struct km_arena *a, struct ctl_config *cfg,
			       const struct ctl_context *x, bool force);
/* Removes the control plane and every context using it. */
bool ctl_ctlconfig_remove_cp(struct ctl_config *cfg, const char *name);

/* ---- HTTP client (client.c) ---- */

struct ctl_resp {
	long status;
	struct km_str body;
};

/* Resolves the current control plane (honouring --context). Returns NULL and
 * prints the upstream error when the configuration is broken. */
const struct ctl_cp *ctl_client_cp(struct ctl_ctx *c);
/* Same without printing: the reason goes to <why>. */
const struct ctl_cp *ctl_client_cp_quiet(struct ctl_ctx *c, struct km_buf *why);
/* Performs <method> <path> (path may carry a query) against <cp>, with
 * <body> as JSON when not NULL. Transport failures return -EIO with a Go-like
 * message ("Get \"url\": dial tcp ...") in <err>. */
int ctl_client_do(struct ctl_ctx *c, const struct ctl_cp *cp, const char *method, const char *path,
		  const char *body, struct ctl_resp *resp, struct km_buf *err);
/* If <body> is a Kuma API error (non-empty title), returns kumactl's
 * formatted text "Title (Detail)\n* field: reason"; otherwise NULL. */
const char *ctl_client_api_error(struct km_arena *a, struct km_str body);
/* Same error in types.Error.Error() form: "Title (Detail);field=reason ". */
const char *ctl_client_api_error_short(struct km_arena *a, struct km_str body);
/* Upstream CheckCompatibility: warns on stderr when GET / fails or differs.
 * Returns the index (GET /) when it was read, else NULL. */
const struct km_json *ctl_client_check_version(struct ctl_ctx *c);
/* Percent-encodes <s> for a URL path segment or query value. */
const char *ctl_client_escape(struct km_arena *a, const char *s);

/* ---- printers (table.c) ---- */

struct ctl_table {
	struct km_arena *a;
	size_t ncols;
	const char ***rows; /* rows[0] = headers */
	size_t nrows, cap;
	const char *footer;
};

void ctl_table_init(struct ctl_table *t, struct km_arena *a, const char *const *headers,
		    size_t ncols);
/* <cells> is copied (pointers only): <ncols> strings borrowed by the caller. */
void ctl_table_row(struct ctl_table *t, const char *const *cells);
/* Go text/tabwriter(minwidth 1, tabwidth 0, padding 3, ' ') layout. */
void ctl_table_write(const struct ctl_table *t, struct km_buf *out);

/* Upstream table.Duration: "12s", "5m", "3h", "4d", "292y", "never". */
const char *ctl_table_duration(struct km_arena *a, int64_t ns);
/* Age of an RFC 3339 timestamp at <now_ns>; Go's saturating subtraction. */
const char *ctl_table_age(struct km_arena *a, struct km_str rfc3339, int64_t now_ns);
/* Dataplane TAGS cell: sorted "k=v" labels (plus gateway tags) joined by " ". */
const char *ctl_table_tags(struct km_arena *a, const struct km_json *labels,
			   const struct km_json *networking);
/* "Rerun command with --offset=N ..." footer from a list's "next" URL, or NULL. */
const char *ctl_table_pagination(struct km_arena *a, const struct km_json *list);

/* kumactl -o json: Go MarshalIndent with two spaces and a trailing newline. */
void ctl_table_print_json(const struct km_json *v, struct km_buf *out);
/* kumactl -o yaml for one resource: meta keys sorted, then spec keys sorted
 * (old-style types), or the whole sorted object (spec/status types). */
void ctl_table_print_resource_yaml(struct km_arena *a, const struct km_json *res,
				   struct km_buf *out);
/* kumactl -o yaml for anything else: one sorted YAML document. */
void ctl_table_print_yaml(struct km_arena *a, const struct km_json *v, struct km_buf *out);

/* Builds the `get` table of <rtype> for a list ("items") or one resource. */
void ctl_table_resources(struct ctl_table *t, struct km_arena *a, const struct km_rtype *rtype,
			 const struct km_json *v, bool is_list, int64_t now_ns);

/* inspect tables (inspect.c), fed by the server's JSON answers. */
void ctl_inspect_dataplanes_table(struct ctl_table *t, struct km_arena *a,
				  const struct km_json *list, int64_t now_ns);
void ctl_inspect_meshes_table(struct ctl_table *t, struct km_arena *a, const struct km_json *list);
/* `inspect dataplane NAME --type policies`: Kind / Origins of a _policies answer. */
void ctl_inspect_policies_table(struct ctl_table *t, struct km_arena *a, const struct km_json *v);
/* `inspect <policy> NAME --new-api`: Type / Mesh / Name and a "Total: N" footer. */
void ctl_inspect_policy_dataplanes_table(struct ctl_table *t, struct km_arena *a,
					 const struct km_json *v);
/* `inspect <policy> NAME` (legacy API): "Affected data plane proxies:" text. */
void ctl_inspect_policy_legacy(const struct km_json *v, struct km_buf *out);
void ctl_inspect_zones_table(struct ctl_table *t, struct km_arena *a, const struct km_json *list,
			     int64_t now_ns);

/* ---- apply helpers (apply.c) ---- */

/* Splits a YAML stream like upstream's SplitYAML; returns arena strings. */
size_t ctl_apply_split(struct km_arena *a, const char *text, const char ***docs);
/* Mustache-style {{ var }} substitution (dotted names, HTML-escaped). */
const char *ctl_apply_render(struct km_arena *a, const char *doc, const char **keys,
			     const char **vals, size_t n);

/* ---- verbs ---- */
int ctl_apply_run(struct ctl_ctx *c);
int ctl_get_run(struct ctl_ctx *c);
int ctl_delete_run(struct ctl_ctx *c);
int ctl_inspect_dataplanes_run(struct ctl_ctx *c);
int ctl_inspect_meshes_run(struct ctl_ctx *c);
int ctl_inspect_zones_run(struct ctl_ctx *c);
int ctl_inspect_dataplane_run(struct ctl_ctx *c);
int ctl_inspect_policy_run(struct ctl_ctx *c);
int ctl_generate_user_token_run(struct ctl_ctx *c);
int ctl_generate_dataplane_token_run(struct ctl_ctx *c);
int ctl_generate_zone_token_run(struct ctl_ctx *c);
int ctl_generate_signing_key_run(struct ctl_ctx *c);
int ctl_generate_public_key_run(struct ctl_ctx *c);
int ctl_generate_tls_certificate_run(struct ctl_ctx *c);
int ctl_config_cmd_view_run(struct ctl_ctx *c);
int ctl_config_cmd_cp_list_run(struct ctl_ctx *c);
int ctl_config_cmd_cp_add_run(struct ctl_ctx *c);
int ctl_config_cmd_cp_remove_run(struct ctl_ctx *c);
int ctl_config_cmd_cp_switch_run(struct ctl_ctx *c);
int ctl_version_run(struct ctl_ctx *c);
int ctl_export_run(struct ctl_ctx *c);
int ctl_completion_zsh_run(struct ctl_ctx *c);
int ctl_completion_bash_run(struct ctl_ctx *c);
int ctl_completion_fish_run(struct ctl_ctx *c);
/* The root of the command tree, for completion. */
extern const struct ctl_cmd ctl_main_root;

#endif
