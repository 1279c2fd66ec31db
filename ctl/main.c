/* SPDX-License-Identifier: Apache-2.0 */
/* kumactl entry point: the command tree as static tables, a cobra-like
 * parser (flags anywhere, --f=v / --f v / -fv, persistent flags inherited),
 * and the root pre-run that loads ~/.kumactl/config. The per-invocation arena
 * owns everything and is freed at exit. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/str.h"
#include "ctl/ctl.h"
#include "resource/resource.h"
#include "resource/validate.h"

/* clang-format off */
static const struct ctl_flag_def root_flags[] = {
	{"config-file", 0, CTL_FLAG_STRING, "", false, "path to the configuration file to use"},
	{"context", 0, CTL_FLAG_STRING, "", false, "context to use"},
	{"log-level", 0, CTL_FLAG_STRING, "off", false, "log level: one of off|info|debug"},
	{"no-config", 0, CTL_FLAG_BOOL, "false", false, "if set no config file and config directory will be created"},
	{"api-timeout", 0, CTL_FLAG_DURATION, "1m0s", false, "the timeout for api calls. It includes connection time, any redirects, and reading the response body. A timeout of zero means no timeout"},
	{"help", 'h', CTL_FLAG_BOOL, "false", false, "help for this command"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def apply_flags[] = {
	{"file", 'f', CTL_FLAG_STRING, "", true, "Path to file or directory to apply. When a directory is provided, all .yaml, .yml, and .json files are applied. Pass `-` to read from stdin"},
	{"var", 'v', CTL_FLAG_MAP, NULL, false, "Variable to replace in configuration"},
	{"dry-run", 0, CTL_FLAG_BOOL, "false", false, "Resolve variable and prints result out without actual applying"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def get_flags[] = {
	{"output", 'o', CTL_FLAG_STRING, "table", false, "output format: one of table|yaml|json"},
	{"mesh", 'm', CTL_FLAG_STRING, "default", false, "mesh to use"},
	{"size", 0, CTL_FLAG_INT, "0", false, "maximum number of elements to return"},
	{"offset", 0, CTL_FLAG_STRING, "", false, "the offset that indicates starting element of the resources list to retrieve"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def mesh_flags[] = {
	{"mesh", 'm', CTL_FLAG_STRING, "default", false, "mesh to use"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def inspect_flags[] = {
	{"output", 'o', CTL_FLAG_STRING, "table", false, "output format: one of table|yaml|json"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def inspect_dp_flags[] = {
	{"tag", 0, CTL_FLAG_MAP, NULL, false, "filter by tag in format of key=value. You can provide many tags"},
	{"mesh", 'm', CTL_FLAG_STRING, "default", false, "mesh to use"},
	{"gateway", 0, CTL_FLAG_BOOL, "false", false, "filter gateway dataplanes"},
	{"ingress", 0, CTL_FLAG_BOOL, "false", false, "filter ingress dataplanes"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def inspect_one_dp_flags[] = {
	{"type", 0, CTL_FLAG_STRING, "policies", false, "inspection type: one of policies|config-dump|stats|clusters|config"},
	{"include-eds", 0, CTL_FLAG_BOOL, "false", false, "include EDS when dumping envoy config for dataplane"},
	{"mesh", 'm', CTL_FLAG_STRING, "default", false, "mesh to use"},
	{"shadow", 0, CTL_FLAG_BOOL, "false", false, "when computing XDS config the CP takes into account policies with 'kuma.io/effect: shadow' label"},
	{"include", 0, CTL_FLAG_LIST, NULL, false, "an array of extra fields to include in the response. When `include=diff` the server computes a diff in JSONPatch format between the XDS config returned in 'xds' and the current proxy XDS config."},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def inspect_policy_flags[] = {
	{"mesh", 'm', CTL_FLAG_STRING, "default", false, "mesh to use"},
	{"offset", 0, CTL_FLAG_INT, "0", false, "the offset for pagination"},
	{"new-api", 0, CTL_FLAG_BOOL, "false", false, "use the newer version of the inspect api"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def user_token_flags[] = {
	{"name", 0, CTL_FLAG_STRING, "", true, "name of the user"},
	{"group", 0, CTL_FLAG_LIST, NULL, false, "group of the user"},
	{"valid-for", 0, CTL_FLAG_DURATION, "0s", true, "how long the token will be valid (for example \"24h\")"},
	{"signing-key-path", 0, CTL_FLAG_STRING, "", false, "path to a file that contains private signing key. When specified, control plane won't be used to issue the token."},
	{"kid", 0, CTL_FLAG_STRING, "", false, "ID of the key that is used to issue a token. Required when --signing-key-path is used."},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def dp_token_flags[] = {
	{"name", 0, CTL_FLAG_STRING, "", false, "name of the Dataplane"},
	{"mesh", 'm', CTL_FLAG_STRING, "default", false, "mesh to use"},
	{"proxy-type", 0, CTL_FLAG_STRING, "", false, "type of the Dataplane (\"dataplane\")"},
	{"tag", 0, CTL_FLAG_MAP, NULL, false, "required tag values for dataplane (split values by comma to provide multiple values)"},
	{"workload", 0, CTL_FLAG_STRING, "", false, "required workload label value for dataplane"},
	{"valid-for", 0, CTL_FLAG_DURATION, "0s", true, "how long the token will be valid (for example \"24h\")"},
	{"signing-key-path", 0, CTL_FLAG_STRING, "", false, "path to a file that contains private signing key. When specified, control plane won't be used to issue the token."},
	{"kid", 0, CTL_FLAG_STRING, "", false, "ID of the key that is used to issue a token. Required when --signing-key-path is used."},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def zone_token_flags[] = {
	{"zone", 0, CTL_FLAG_STRING, "", true, "name of the zone where resides"},
	{"scope", 0, CTL_FLAG_LIST, NULL, false, "scope of resources which the token will be able to identify (can be: [])"},
	{"signing-key-path", 0, CTL_FLAG_STRING, "", false, "path to a file that contains private signing key. When specified, control plane won't be used to issue the token."},
	{"kid", 0, CTL_FLAG_STRING, "", false, "ID of the key that is used to issue a token. Required when --signing-key-path is used."},
	{"valid-for", 0, CTL_FLAG_DURATION, "0s", true, "how long the token will be valid (for example \"24h\")"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def public_key_flags[] = {
	{"signing-key-path", 0, CTL_FLAG_STRING, "", true, "path to a file with PEM-encoded private signing key"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def signing_key_flags[] = {
	{"format", 0, CTL_FLAG_STRING, "pem-base64", false, "format of signing key. Available values :pem-base64, pem"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def tls_cert_flags[] = {
	{"key-file", 0, CTL_FLAG_STRING, "key.pem", false, "path to a file with a generated private key ('-' for stdout)"},
	{"cert-file", 0, CTL_FLAG_STRING, "cert.pem", false, "path to a file with a generated TLS certificate ('-' for stdout)"},
	{"type", 0, CTL_FLAG_STRING, "", true, "type of the certificate: one of client|server"},
	{"key-type", 0, CTL_FLAG_STRING, "", false, "type of the private key: one of rsa|ecdsa"},
	{"hostname", 0, CTL_FLAG_LIST, NULL, true, "DNS hostname(s) to issue the certificate for"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def cp_add_flags[] = {
	{"name", 0, CTL_FLAG_STRING, "", true, "reference name for the Control Plane (required)"},
	{"address", 0, CTL_FLAG_STRING, "", true, "URL of the Control Plane API Server (required). Example: http://localhost:5681 or https://localhost:5682)"},
	{"overwrite", 0, CTL_FLAG_BOOL, "false", false, "overwrite existing Control Plane with the same reference name"},
	{"client-cert-file", 0, CTL_FLAG_STRING, "", false, "path to the certificate of a client that is authorized to use the Admin operations of the Control Plane (kumactl stores only a reference to this file)"},
	{"client-key-file", 0, CTL_FLAG_STRING, "", false, "path to the certificate key of a client that is authorized to use the Admin operations of the Control Plane (kumactl stores only a reference to this file)"},
	{"ca-cert-file", 0, CTL_FLAG_STRING, "", false, "path to the certificate authority which will be used to verify the Control Plane certificate (kumactl stores only a reference to this file)"},
	{"skip-verify", 0, CTL_FLAG_BOOL, "false", false, "skip CA verification"},
	{"headers", 0, CTL_FLAG_MAP, NULL, false, "add these headers while communicating to control plane, format key=value"},
	{"auth-type", 0, CTL_FLAG_STRING, "", false, "authentication type (for example: \"tokens\")"},
	{"auth-conf", 0, CTL_FLAG_MAP, NULL, false, "authentication configuration for defined authentication type format key=value"},
	{"skip-check", 0, CTL_FLAG_BOOL, "false", false, "skip checking if we can connect to the CP"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def cp_name_flags[] = {
	{"name", 0, CTL_FLAG_STRING, "", true, "reference name for the Control Plane (required)"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def version_flags[] = {
	{"detailed", 'a', CTL_FLAG_BOOL, "false", false, "Print detailed version"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_flag_def export_flags[] = {
	{"profile", 'p', CTL_FLAG_STRING, "federation", false, "Profile. Available values: all,federation,federation-with-policies,no-dataplanes"},
	{"format", 'f', CTL_FLAG_STRING, "universal", false, "Policy format output. Available values: \"universal\", \"kubernetes\""},
	{"system-namespace", 'n', CTL_FLAG_STRING, "kuma-system", false, "Define namespace in which control-plane was installed"},
	{"include-admin", 'a', CTL_FLAG_BOOL, "false", false, "Include admin resource types (like secrets), this flag is ignored on migration profiles like federation as these entities are required"},
	{NULL, 0, 0, NULL, false, NULL},
};

static const struct ctl_cmd inspect_cmds[] = {
	{"dataplane", "Inspect Dataplane", NULL, inspect_one_dp_flags, ctl_inspect_dataplane_run, 1, 1, 0},
	{"dataplanes", "Inspect Dataplanes", NULL, inspect_dp_flags, ctl_inspect_dataplanes_run, 0, 0, 0},
	{"meshes", "Inspect Meshes", NULL, NULL, ctl_inspect_meshes_run, 0, 0, 0},
	{"zones", "Inspect Zones", NULL, NULL, ctl_inspect_zones_run, 0, 0, 0},
	{NULL, NULL, NULL, NULL, NULL, 0, 0, 0},
};

static const struct ctl_cmd generate_cmds[] = {
	{"dataplane-token", "Generate Dataplane Token", NULL, dp_token_flags, ctl_generate_dataplane_token_run, 0, 0, 0},
	{"public-key", "Generate public key out of signing key", NULL, public_key_flags, ctl_generate_public_key_run, 0, 0, CTL_CMD_NO_CP},
	{"signing-key", "Generate signing keys", NULL, signing_key_flags, ctl_generate_signing_key_run, 0, 0, CTL_CMD_NO_CP},
	{"tls-certificate", "Generate a TLS certificate", NULL, tls_cert_flags, ctl_generate_tls_certificate_run, 0, 0, CTL_CMD_NO_CP},
	{"user-token", "Generate User Token", NULL, user_token_flags, ctl_generate_user_token_run, 0, -1, 0},
	{"zone-token", "Generate Zone Token", NULL, zone_token_flags, ctl_generate_zone_token_run, 0, 0, 0},
	{NULL, NULL, NULL, NULL, NULL, 0, 0, 0},
};

static const struct ctl_cmd config_cp_cmds[] = {
	{"add", "Add a Control Plane", NULL, cp_add_flags, ctl_config_cmd_cp_add_run, 0, 0, 0},
	{"list", "List Control Planes", NULL, NULL, ctl_config_cmd_cp_list_run, 0, 0, 0},
	{"remove", "Remove a Control Plane", NULL, cp_name_flags, ctl_config_cmd_cp_remove_run, 0, 0, 0},
	{"switch", "Switch active Control Plane", NULL, cp_name_flags, ctl_config_cmd_cp_switch_run, 0, 0, 0},
	{NULL, NULL, NULL, NULL, NULL, 0, 0, 0},
};

static const struct ctl_cmd config_cmds[] = {
	{"control-planes", "Manage known Control Planes", config_cp_cmds, NULL, NULL, 0, 0, 0},
	{"view", "Show kumactl config", NULL, NULL, ctl_config_cmd_view_run, 0, 0, 0},
	{NULL, NULL, NULL, NULL, NULL, 0, 0, 0},
};

static const struct ctl_cmd completion_cmds[] = {
	{"bash", "Output shell completions for bash", NULL, NULL, ctl_completion_bash_run, 0, 0, CTL_CMD_NO_CP},
	{"fish", "Output shell completions for fish", NULL, NULL, ctl_completion_fish_run, 0, 0, CTL_CMD_NO_CP},
	{"zsh", "Output shell completions for zsh", NULL, NULL, ctl_completion_zsh_run, 0, 0, CTL_CMD_NO_CP},
	{NULL, NULL, NULL, NULL, NULL, 0, 0, 0},
};

static const struct ctl_cmd root_cmds[] = {
	{"apply", "Create or modify Kuma resources", NULL, apply_flags, ctl_apply_run, 0, 0, 0},
	{"completion", "Output shell completion code for bash, fish or zsh", completion_cmds, NULL, NULL, 0, 0, 0},
	{"config", "Modify kumactl config files", config_cmds, NULL, NULL, 0, 0, 0},
	{"delete", "Delete Kuma resources", NULL, mesh_flags, ctl_delete_run, 2, 2, 0},
	{"export", "Export Kuma resources", NULL, export_flags, ctl_export_run, 0, 0, 0},
	{"generate", "Generate resources, tokens, etc", generate_cmds, NULL, NULL, 0, 0, 0},
	{"get", "Show Kuma resources", NULL, get_flags, ctl_get_run, 0, 1, CTL_CMD_TYPE_ARG},
	{"inspect", "Inspect Kuma resources", inspect_cmds, inspect_flags, NULL, 0, 0, CTL_CMD_POLICY_ARG},
	{"version", "Print version", NULL, version_flags, ctl_version_run, 0, -1, 0},
	{NULL, NULL, NULL, NULL, NULL, 0, 0, 0},
};
/* `inspect <policy> NAME`: reached through CTL_CMD_POLICY_ARG, not by its name */
static const struct ctl_cmd inspect_policy_cmd =
	{"<policy>", "Inspect a policy", NULL, inspect_policy_flags, ctl_inspect_policy_run, 1, 1, 0};
/* clang-format on */

const struct ctl_cmd ctl_main_root = {
	"kumactl", "Management tool for Kuma", root_cmds, root_flags, NULL, 0, 0, 0,
};

/* ---- parsing ---- */

static const struct ctl_cmd *find_sub(const struct ctl_cmd *cmd, const char *name)
{
	if (!cmd->subs)
		return NULL;
	for (const struct ctl_cmd *s = cmd->subs; s->name; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

static void add_defs(struct ctl_ctx *c, const struct ctl_flag_def *defs)
{
	if (!defs)
		return;
	size_t n = 0;
	while (defs[n].name)
		n++;
	const struct ctl_flag_def **nd = km_arena_alloc(c->a, (c->ndefs + n + 1) * sizeof(*nd));
	if (c->ndefs)
		memcpy(nd, c->defs, c->ndefs * sizeof(*nd));
	for (size_t i = 0; i < n; i++)
		nd[c->ndefs + i] = &defs[i];
	c->defs = nd;
	c->ndefs += n;
}

static void push_val(struct ctl_ctx *c, const struct ctl_flag_def *d, const char *v)
{
	if (c->nvals == c->cap_vals) {
		size_t ncap = c->cap_vals ? c->cap_vals * 2 : 16;
		c->vals = km_arena_realloc(c->a, c->vals, c->cap_vals * sizeof(*c->vals),
					   ncap * sizeof(*c->vals));
		c->cap_vals = ncap;
	}
	c->vals[c->nvals].def = d;
	c->vals[c->nvals].value = v;
	c->nvals++;
}

/* Splits a CSV-ish value on commas (pflag uses encoding/csv). */
static void push_split(struct ctl_ctx *c, const struct ctl_flag_def *d, const char *v)
{
	const char *p = v;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		push_val(c, d, km_arena_strndup(c->a, p, n));
		if (!comma)
			break;
		p = comma + 1;
	}
}

static int set_flag(struct ctl_ctx *c, const struct ctl_flag_def *d, const char *v,
		    const char *spelled)
{
	switch (d->kind) {
	case CTL_FLAG_BOOL:
		if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0"))
			return ctl_args_fail(
				c,
				"invalid argument \"%s\" for \"%s\" flag: strconv.ParseBool: parsing \"%s\": invalid syntax",
				v, spelled, v);
		push_val(c, d, (!strcmp(v, "1") || !strcmp(v, "true")) ? "true" : "false");
		return 0;
	case CTL_FLAG_INT: {
		long long n;
		if (km_str_to_i64(km_str_c(v), &n) < 0)
			return ctl_args_fail(
				c,
				"invalid argument \"%s\" for \"%s\" flag: strconv.ParseInt: parsing \"%s\": invalid syntax",
				v, spelled, v);
		push_val(c, d, v);
		return 0;
	}
	case CTL_FLAG_DURATION: {
		int64_t ns;
		if (km_duration_parse(km_str_c(v), &ns) < 0)
			return ctl_args_fail(
				c,
				"invalid argument \"%s\" for \"%s\" flag: time: invalid duration \"%s\"",
				v, spelled, v);
		push_val(c, d, v);
		return 0;
	}
	case CTL_FLAG_MAP: {
		size_t eq = 0;
		for (const char *p = v; *p; p++)
			eq += *p == '=';
		if (eq == 0)
			return ctl_args_fail(
				c,
				"invalid argument \"%s\" for \"%s\" flag: %s must be formatted as key=value",
				v, spelled, v);
		if (eq == 1) {
			size_t n = strlen(v);
			const char *s = v;
			if (n && s[0] == '"') {
				s++;
				n--;
			}
			if (n && s[n - 1] == '"')
				n--;
			push_val(c, d, km_arena_strndup(c->a, s, n));
		} else {
			push_split(c, d, v);
		}
		return 0;
	}
	case CTL_FLAG_LIST: push_split(c, d, v); return 0;
	case CTL_FLAG_STRING:
	default: push_val(c, d, v); return 0;
	}
}

static int parse_flag(struct ctl_ctx *c, char **argv, int argc, int *i)
{
	const char *arg = argv[*i];
	const struct ctl_flag_def *d = NULL;
	const char *val = NULL;
	char spelled[128];
	if (arg[1] == '-') {
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		for (size_t k = 0; k < c->ndefs; k++)
			if (strlen(c->defs[k]->name) == n && !strncmp(c->defs[k]->name, name, n)) {
				d = c->defs[k];
				break;
			}
		if (!d)
			return ctl_args_fail(c, "unknown flag: --%.*s", (int)n, name);
		snprintf(spelled, sizeof(spelled), "--%s", d->name);
		if (eq)
			val = eq + 1;
	} else {
		char sh = arg[1];
		for (size_t k = 0; k < c->ndefs; k++)
			if (c->defs[k]->shorthand == sh) {
				d = c->defs[k];
				break;
			}
		if (!d)
			return ctl_args_fail(c, "unknown shorthand flag: '%c' in %s", sh, arg);
		snprintf(spelled, sizeof(spelled), "-%c, --%s", d->shorthand, d->name);
		if (arg[2] == '=')
			val = arg + 3;
		else if (arg[2])
			val = arg + 2;
	}
	if (!val) {
		if (d->kind == CTL_FLAG_BOOL) {
			val = "true";
		} else {
			if (*i + 1 >= argc)
				return ctl_args_fail(c, "flag needs an argument: %s", arg);
			val = argv[++*i];
		}
	}
	return set_flag(c, d, val, spelled);
}

static void print_help(const struct ctl_ctx *c, const struct ctl_cmd *cmd)
{
	printf("%s\n\nUsage:\n  %s", cmd->short_help ? cmd->short_help : "", c->cmd_path);
	if (cmd->subs)
		printf(" [command]");
	printf(" [flags]\n");
	if (cmd->subs) {
		printf("\nAvailable Commands:\n");
		for (const struct ctl_cmd *s = cmd->subs; s->name; s++)
			printf("  %-16s %s\n", s->name, s->short_help);
	}
	if (cmd->opts & CTL_CMD_POLICY_ARG) {
		printf("\nPolicy Commands:\n");
		for (size_t i = 0; i < km_rtypes_len; i++)
			if (km_rtypes[i].kumactl_arg && km_rtype_has(&km_rtypes[i], KM_RT_POLICY))
				printf("  %-34s Inspect %s\n", km_rtypes[i].kumactl_arg,
				       km_rtypes[i].name);
	}
	if (cmd->opts & CTL_CMD_TYPE_ARG) {
		printf("\nAvailable Commands:\n");
		for (size_t i = 0; i < km_rtypes_len; i++) {
			const struct km_rtype *t = &km_rtypes[i];
			if (!t->kumactl_arg)
				continue;
			printf("  %-34s Show %s\n", t->kumactl_plural, t->name);
			printf("  %-34s Show a single %s resource\n", t->kumactl_arg, t->name);
		}
	}
	printf("\nFlags:\n");
	for (size_t i = 0; i < c->ndefs; i++) {
		const struct ctl_flag_def *d = c->defs[i];
		if (d->shorthand)
			printf("  -%c, --%-20s %s\n", d->shorthand, d->name, d->usage);
		else
			printf("      --%-20s %s\n", d->name, d->usage);
	}
}

/* Required flags in pflag's (sorted) order. */
static int check_required(struct ctl_ctx *c, const struct ctl_flag_def *defs)
{
	if (!defs)
		return 0;
	struct km_buf b = KM_BUF_INIT;
	const char *names[32];
	size_t n = 0;
	for (const struct ctl_flag_def *d = defs; d->name && n < 32; d++)
		if (d->required && !ctl_args_given(c, d->name))
			names[n++] = d->name;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++)
		km_buf_printf(&b, "%s\"%s\"", i ? ", " : "", names[i]);
	int rc = 0;
	if (n)
		rc = ctl_args_fail(c, "required flag(s) %s not set", km_buf_cstr(&b));
	km_buf_fini(&b);
	return rc;
}

static bool file_exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/* Upstream root PersistentPreRunE: load or create the config. */
static int pre_run(struct ctl_ctx *c)
{
	const char *lvl = ctl_args_str(c, "log-level");
	if (strcmp(lvl, "off") && strcmp(lvl, "info") && strcmp(lvl, "debug") &&
	    strcmp(lvl, "error") && strcmp(lvl, "warn"))
		return ctl_args_fail(c, "unsupported log level \"%s\"", lvl);
	if (!strcmp(lvl, "off"))
		km_log_threshold = KM_LOG_ERROR;
	else
		km_log_set_level(lvl);
	int64_t ns = 0;
	km_duration_parse(km_str_c(ctl_args_str(c, "api-timeout")), &ns);
	c->api_timeout_ns = ns;
	const char *cf = ctl_args_str(c, "config-file");
	c->config_file = cf && *cf ? cf : NULL;
	struct km_buf err = KM_BUF_INIT;
	int rc = 0;
	if (ctl_args_bool(c, "no-config")) {
		ctl_ctlconfig_default(c->a, &c->cfg);
		goto out;
	}
	const char *path = c->config_file ? c->config_file : ctl_ctlconfig_default_path(c->a);
	if (!file_exists(path)) {
		ctl_ctlconfig_default(c->a, &c->cfg);
		if (ctl_ctlconfig_save(c->a, c->config_file, &c->cfg, &err) < 0) {
			rc = ctl_args_fail(c, "%s", km_buf_cstr(&err));
			goto out;
		}
	}
	memset(&c->cfg, 0, sizeof(c->cfg));
	if (ctl_ctlconfig_load(c->a, c->config_file, &c->cfg, &err) < 0)
		rc = ctl_args_fail(c, "%s", km_buf_cstr(&err));
out:
	km_buf_fini(&err);
	return rc;
}

static int run(struct ctl_ctx *c, int argc, char **argv)
{
	const struct ctl_cmd *cmd = &ctl_main_root;
	struct km_buf path = KM_BUF_INIT;
	km_buf_puts(&path, "kumactl");
	add_defs(c, root_flags);
	c->args = km_arena_alloc(c->a, (size_t)(argc + 1) * sizeof(char *));
	bool only_args = false;
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!only_args && strcmp(arg, "--") == 0) {
			only_args = true;
			continue;
		}
		if (!only_args && arg[0] == '-' && arg[1] != '\0') {
			if ((rc = parse_flag(c, argv, argc, &i)) != 0)
				goto out;
			continue;
		}
		if (c->nargs == 0 && cmd->subs) {
			const struct ctl_cmd *sub = find_sub(cmd, arg);
			const struct km_rtype *pt = NULL;
			if (!sub && (cmd->opts & CTL_CMD_POLICY_ARG) &&
			    (pt = km_rtype_by_arg(km_str_c(arg))) && pt->kumactl_arg &&
			    !strcmp(pt->kumactl_arg, arg) && km_rtype_has(pt, KM_RT_POLICY)) {
				sub = &inspect_policy_cmd;
				c->rtype = pt;
			}
			if (!sub) {
				rc = ctl_args_fail(c, "unknown command \"%s\" for \"%s\"", arg,
						   km_buf_cstr(&path));
				if (cmd == &ctl_main_root)
					fprintf(stderr, "Run 'kumactl --help' for usage.\n");
				goto out;
			}
			cmd = sub;
			km_buf_printf(&path, " %s",
				      c->rtype && sub == &inspect_policy_cmd ? arg : sub->name);
			add_defs(c, sub->flags);
			continue;
		}
		if (c->nargs == 0 && (cmd->opts & CTL_CMD_TYPE_ARG) && !c->rtype) {
			const struct km_rtype *t = km_rtype_by_arg(km_str_c(arg));
			if (!t || !t->kumactl_arg) {
				rc = ctl_args_fail(c, "unknown command \"%s\" for \"%s\"", arg,
						   km_buf_cstr(&path));
				goto out;
			}
			c->rtype = t;
			c->plural = strcmp(arg, t->kumactl_plural) == 0 ||
				    strcmp(arg, "globalsecrets") == 0;
			km_buf_printf(&path, " %s", arg);
			continue;
		}
		c->args[c->nargs++] = arg;
	}
	c->cmd = cmd;
	c->cmd_path = km_arena_strdup(c->a, km_buf_cstr(&path));
	if (ctl_args_bool(c, "help") || (!cmd->run) ||
	    ((cmd->opts & CTL_CMD_TYPE_ARG) && !c->rtype)) {
		print_help(c, cmd);
		goto out;
	}
	if ((rc = check_required(c, cmd->flags)) != 0)
		goto out;
	if (cmd->opts & CTL_CMD_TYPE_ARG) {
		size_t want = c->plural ? 0 : 1;
		if (c->nargs != want) {
			if (want == 0)
				rc = ctl_args_fail(c, "unknown command \"%s\" for \"%s\"",
						   c->args[0], c->cmd_path);
			else
				rc = ctl_args_fail(c, "accepts 1 arg(s), received %zu", c->nargs);
			goto out;
		}
	} else if (cmd->max_args == 0 && c->nargs > 0) {
		rc = ctl_args_fail(c, "unknown command \"%s\" for \"%s\"", c->args[0], c->cmd_path);
		goto out;
	} else if (cmd->min_args == cmd->max_args && (int)c->nargs != cmd->min_args) {
		rc = ctl_args_fail(c, "accepts %d arg(s), received %zu", cmd->min_args, c->nargs);
		goto out;
	}
	if ((rc = pre_run(c)) != 0)
		goto out;
	rc = cmd->run(c);
out:
	km_buf_fini(&path);
	return rc;
}

int main(int argc, char **argv)
{
	struct ctl_ctx c;
	memset(&c, 0, sizeof(c));
	c.a = km_arena_new(0);
	c.now_ns = km_time_now();
	km_log_threshold = KM_LOG_ERROR;
	int rc = run(&c, argc, argv);
	km_arena_free(c.a);
	return rc ? 1 : 0;
}
