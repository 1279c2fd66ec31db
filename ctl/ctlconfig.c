/* SPDX-License-Identifier: Apache-2.0 */
/* ~/.kumactl/config: control planes, contexts and the current context, read
 * from YAML (camelCase or snake_case keys, unknown keys ignored, as protojson
 * does) and written back as sorted camelCase YAML. All strings live in the
 * arena passed in; struct ctl_config is a value owned by the caller. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/yaml.h"
#include "ctl/ctl.h"

const char *ctl_ctlconfig_default_path(struct km_arena *a)
{
	const char *home = getenv("HOME");
	return km_arena_printf(a, "%s/.kumactl/config", home ? home : "");
}

void ctl_ctlconfig_default(struct km_arena *a, struct ctl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	struct ctl_cp cp = {0};
	cp.name = "local";
	cp.url = "http://localhost:5681";
	ctl_ctlconfig_add_cp(a, cfg, &cp, false);
	struct ctl_context x = {"local", "local", NULL};
	ctl_ctlconfig_add_context(a, cfg, &x, false);
	cfg->current = "local";
}

/* Member <camel> or its snake_case spelling <snake>. */
static const struct km_json *field(const struct km_json *o, const char *camel, const char *snake)
{
	if (!o || o->kind != KM_JSON_OBJECT)
		return NULL;
	const struct km_json *v = km_json_get(o, camel);
	if (!v && snake)
		v = km_json_get(o, snake);
	return v;
}

static const char *str_field(struct km_arena *a, const struct km_json *o, const char *camel,
			     const char *snake)
{
	const struct km_json *v = field(o, camel, snake);
	if (!v || v->kind != KM_JSON_STRING || v->s.len == 0)
		return NULL;
	return km_arena_strndup(a, v->s.ptr, v->s.len);
}

static void sort_pairs(const char **k, const char **v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(k[j - 1], k[j]) > 0; j--) {
			const char *t = k[j];
			k[j] = k[j - 1];
			k[j - 1] = t;
			t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

static void parse_cp(struct km_arena *a, const struct km_json *o, struct ctl_cp *cp)
{
	memset(cp, 0, sizeof(*cp));
	cp->name = str_field(a, o, "name", NULL);
	const struct km_json *api = field(field(o, "coordinates", NULL), "apiServer", "api_server");
	if (!api)
		return;
	cp->url = str_field(a, api, "url", NULL);
	cp->ca_cert_file = str_field(a, api, "caCertFile", "ca_cert_file");
	cp->client_cert_file = str_field(a, api, "clientCertFile", "client_cert_file");
	cp->client_key_file = str_field(a, api, "clientKeyFile", "client_key_file");
	cp->auth_type = str_field(a, api, "authType", "auth_type");
	const struct km_json *sv = field(api, "skipVerify", "skip_verify");
	cp->skip_verify = sv && sv->kind == KM_JSON_BOOL && sv->b;
	const struct km_json *hs = field(api, "headers", NULL);
	if (hs && hs->kind == KM_JSON_ARRAY && hs->len) {
		cp->hdr_keys = km_arena_alloc(a, hs->len * sizeof(char *));
		cp->hdr_vals = km_arena_alloc(a, hs->len * sizeof(char *));
		for (size_t i = 0; i < hs->len; i++) {
			const char *k = str_field(a, hs->items[i], "key", NULL);
			const char *v = str_field(a, hs->items[i], "value", NULL);
			cp->hdr_keys[cp->n_hdr] = k ? k : "";
			cp->hdr_vals[cp->n_hdr] = v ? v : "";
			cp->n_hdr++;
		}
	}
	const struct km_json *ac = field(api, "authConf", "auth_conf");
	if (ac && ac->kind == KM_JSON_OBJECT && ac->len) {
		cp->auth_keys = km_arena_alloc(a, ac->len * sizeof(char *));
		cp->auth_vals = km_arena_alloc(a, ac->len * sizeof(char *));
		for (size_t i = 0; i < ac->len; i++) {
			const struct km_json *v = ac->members[i].val;
			cp->auth_keys[cp->n_auth] =
				km_arena_strndup(a, ac->members[i].key.ptr, ac->members[i].key.len);
			cp->auth_vals[cp->n_auth] =
				v->kind == KM_JSON_STRING ?
					km_arena_strndup(a, v->s.ptr, v->s.len) :
					"";
			cp->n_auth++;
		}
		sort_pairs(cp->auth_keys, cp->auth_vals, cp->n_auth);
	}
}

int ctl_ctlconfig_load(struct km_arena *a, const char *file, struct ctl_config *cfg,
		       struct km_buf *err)
{
	const char *path = file ? file : ctl_ctlconfig_default_path(a);
	memset(cfg, 0, sizeof(*cfg));
	if (access(path, F_OK) != 0) {
		if (file) {
			km_buf_printf(err, "Failed to access configuration file \"%s\"", file);
			return -ENOENT;
		}
		return 0;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		km_buf_printf(err, "Failed to read configuration from file \"%s\": %s", path,
			      strerror(errno));
		return -errno;
	}
	struct km_buf text = KM_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		km_buf_append(&text, chunk, n);
	fclose(f);
	struct km_json **docs = NULL;
	size_t ndocs = 0;
	struct km_buf perr = KM_BUF_INIT;
	int rc = km_yaml_parse(a, km_buf_cstr(&text), text.len, &docs, &ndocs, &perr);
	km_buf_fini(&text);
	if (rc < 0) {
		km_buf_printf(err, "Failed to parse configuration from file \"%s\": %s", path,
			      km_buf_cstr(&perr));
		km_buf_fini(&perr);
		return -EINVAL;
	}
	km_buf_fini(&perr);
	if (ndocs == 0 || docs[0]->kind != KM_JSON_OBJECT)
		return 0;
	const struct km_json *root = docs[0];
	const struct km_json *cps = field(root, "controlPlanes", "control_planes");
	if (cps && cps->kind == KM_JSON_ARRAY)
		for (size_t i = 0; i < cps->len; i++) {
			struct ctl_cp cp;
			parse_cp(a, cps->items[i], &cp);
			if (!cp.name)
				cp.name = "";
			ctl_ctlconfig_add_cp(a, cfg, &cp, true);
		}
	const struct km_json *xs = field(root, "contexts", NULL);
	if (xs && xs->kind == KM_JSON_ARRAY)
		for (size_t i = 0; i < xs->len; i++) {
			struct ctl_context x;
			x.name = str_field(a, xs->items[i], "name", NULL);
			x.control_plane =
				str_field(a, xs->items[i], "controlPlane", "control_plane");
			x.default_mesh =
				str_field(a, field(xs->items[i], "defaults", NULL), "mesh", NULL);
			if (!x.name)
				x.name = "";
			if (!x.control_plane)
				x.control_plane = "";
			ctl_ctlconfig_add_context(a, cfg, &x, true);
		}
	cfg->current = str_field(a, root, "currentContext", "current_context");
	return 0;
}

static struct km_json *jstr(struct km_arena *a, const char *s)
{
	return km_json_cstring(a, s);
}

static struct km_json *to_json(struct km_arena *a, const struct ctl_config *cfg)
{
	struct km_json *root = km_json_object(a);
	if (cfg->n_cps) {
		struct km_json *arr = km_json_array(a);
		for (size_t i = 0; i < cfg->n_cps; i++) {
			const struct ctl_cp *cp = &cfg->cps[i];
			struct km_json *o = km_json_object(a);
			struct km_json *api = km_json_object(a);
			if (cp->url)
				km_json_set(a, api, "url", jstr(a, cp->url));
			if (cp->ca_cert_file)
				km_json_set(a, api, "caCertFile", jstr(a, cp->ca_cert_file));
			if (cp->client_cert_file)
				km_json_set(a, api, "clientCertFile",
					    jstr(a, cp->client_cert_file));
			if (cp->client_key_file)
				km_json_set(a, api, "clientKeyFile", jstr(a, cp->client_key_file));
			if (cp->n_hdr) {
				struct km_json *hs = km_json_array(a);
				for (size_t k = 0; k < cp->n_hdr; k++) {
					struct km_json *h = km_json_object(a);
					if (*cp->hdr_keys[k])
						km_json_set(a, h, "key", jstr(a, cp->hdr_keys[k]));
					if (*cp->hdr_vals[k])
						km_json_set(a, h, "value",
							    jstr(a, cp->hdr_vals[k]));
					km_json_array_push(a, hs, h);
				}
				km_json_set(a, api, "headers", hs);
			}
			if (cp->auth_type)
				km_json_set(a, api, "authType", jstr(a, cp->auth_type));
			if (cp->n_auth) {
				struct km_json *ac = km_json_object(a);
				for (size_t k = 0; k < cp->n_auth; k++)
					km_json_set(a, ac, cp->auth_keys[k],
						    jstr(a, cp->auth_vals[k]));
				km_json_set(a, api, "authConf", ac);
			}
			if (cp->skip_verify)
				km_json_set(a, api, "skipVerify", km_json_bool(a, true));
			struct km_json *coords = km_json_object(a);
			km_json_set(a, coords, "apiServer", api);
			if (cp->name && *cp->name)
				km_json_set(a, o, "name", jstr(a, cp->name));
			km_json_set(a, o, "coordinates", coords);
			km_json_array_push(a, arr, o);
		}
		km_json_set(a, root, "controlPlanes", arr);
	}
	if (cfg->n_ctxs) {
		struct km_json *arr = km_json_array(a);
		for (size_t i = 0; i < cfg->n_ctxs; i++) {
			const struct ctl_context *x = &cfg->ctxs[i];
			struct km_json *o = km_json_object(a);
			if (*x->name)
				km_json_set(a, o, "name", jstr(a, x->name));
			if (*x->control_plane)
				km_json_set(a, o, "controlPlane", jstr(a, x->control_plane));
			if (x->default_mesh) {
				struct km_json *d = km_json_object(a);
				km_json_set(a, d, "mesh", jstr(a, x->default_mesh));
				km_json_set(a, o, "defaults", d);
			}
			km_json_array_push(a, arr, o);
		}
		km_json_set(a, root, "contexts", arr);
	}
	if (cfg->current && *cfg->current)
		km_json_set(a, root, "currentContext", jstr(a, cfg->current));
	km_json_sort_keys(root);
	return root;
}

void ctl_ctlconfig_to_yaml(struct km_arena *a, const struct ctl_config *cfg, struct km_buf *out)
{
	km_yaml_write(out, to_json(a, cfg));
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof(tmp))
		return n ? -ENAMETOOLONG : 0;
	memcpy(tmp, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] == '/' || tmp[i] == '\0') {
			char saved = tmp[i];
			tmp[i] = '\0';
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				return -errno;
			tmp[i] = saved;
		}
	}
	return 0;
}

int ctl_ctlconfig_save(struct km_arena *a, const char *file, const struct ctl_config *cfg,
		       struct km_buf *err)
{
	const char *path = file ? file : ctl_ctlconfig_default_path(a);
	const char *slash = strrchr(path, '/');
	if (slash && slash != path) {
		const char *dir = km_arena_strndup(a, path, (size_t)(slash - path));
		int rc = mkdir_p(dir);
		if (rc < 0) {
			km_buf_printf(err, "Failed to create a directory \"%s\": %s", dir,
				      strerror(-rc));
			return rc;
		}
	}
	struct km_buf y = KM_BUF_INIT;
	ctl_ctlconfig_to_yaml(a, cfg, &y);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int rc = 0;
	if (fd < 0 || (y.len && write(fd, y.data, y.len) != (ssize_t)y.len)) {
		rc = -errno;
		km_buf_printf(err, "Failed to write configuration into file \"%s\": %s", path,
			      strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	km_buf_fini(&y);
	return rc;
}

struct ctl_cp *ctl_ctlconfig_cp(struct ctl_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_cps; i++)
		if (strcmp(cfg->cps[i].name, name) == 0)
			return &cfg->cps[i];
	return NULL;
}

struct ctl_context *ctl_ctlconfig_context(struct ctl_config *cfg, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < cfg->n_ctxs; i++)
		if (strcmp(cfg->ctxs[i].name, name) == 0)
			return &cfg->ctxs[i];
	return NULL;
}

bool ctl_ctlconfig_add_cp(struct km_arena *a, struct ctl_config *cfg, const struct ctl_cp *cp,
			  bool force)
{
	struct ctl_cp *old = ctl_ctlconfig_cp(cfg, cp->name);
	if (old) {
		if (!force)
			return false;
		*old = *cp;
		return true;
	}
	if (cfg->n_cps == cfg->cap_cps) {
		size_t ncap = cfg->cap_cps ? cfg->cap_cps * 2 : 4;
		cfg->cps = km_arena_realloc(a, cfg->cps, cfg->cap_cps * sizeof(*cfg->cps),
					    ncap * sizeof(*cfg->cps));
		cfg->cap_cps = ncap;
	}
	cfg->cps[cfg->n_cps++] = *cp;
	return true;
}

bool ctl_ctlconfig_add_context(struct km_arena *a, struct ctl_config *cfg,
			       const struct ctl_context *x, bool force)
{
	struct ctl_context *old = ctl_ctlconfig_context(cfg, x->name);
	if (old) {
		if (!force)
			return false;
		*old = *x;
		return true;
	}
	if (cfg->n_ctxs == cfg->cap_ctxs) {
		size_t ncap = cfg->cap_ctxs ? cfg->cap_ctxs * 2 : 4;
		cfg->ctxs = km_arena_realloc(a, cfg->ctxs, cfg->cap_ctxs * sizeof(*cfg->ctxs),
					     ncap * sizeof(*cfg->ctxs));
		cfg->cap_ctxs = ncap;
	}
	cfg->ctxs[cfg->n_ctxs++] = *x;
	return true;
}

static void remove_context_at(struct ctl_config *cfg, size_t i)
{
	const char *name = cfg->ctxs[i].name;
	bool was_current = cfg->current && strcmp(cfg->current, name) == 0;
	memmove(&cfg->ctxs[i], &cfg->ctxs[i + 1], (cfg->n_ctxs - i - 1) * sizeof(*cfg->ctxs));
	cfg->n_ctxs--;
	if (was_current)
		cfg->current = cfg->n_ctxs ? cfg->ctxs[0].name : NULL;
}

bool ctl_ctlconfig_remove_cp(struct ctl_config *cfg, const char *name)
{
	size_t idx = cfg->n_cps;
	for (size_t i = 0; i < cfg->n_cps; i++)
		if (strcmp(cfg->cps[i].name, name) == 0)
			idx = i;
	if (idx == cfg->n_cps)
		return false;
	for (size_t i = 0; i < cfg->n_ctxs;) {
		if (strcmp(cfg->ctxs[i].control_plane, name) == 0)
			remove_context_at(cfg, i);
		else
			i++;
	}
	memmove(&cfg->cps[idx], &cfg->cps[idx + 1], (cfg->n_cps - idx - 1) * sizeof(*cfg->cps));
	cfg->n_cps--;
	return true;
}
