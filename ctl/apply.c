/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl apply -f FILE|DIR|URL|- [-v k=v] [--dry-run]`: splits the YAML
 * stream, renders {{ vars }}, checks each document's meta, then GETs and
 * PUTs every resource ("Created"/"Updated") or prints it (--dry-run).
 * Documents and bodies live in the invocation arena. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "codec/yaml.h"
#include "ctl/ctl.h"
#include "resource/resource.h"
#include "resource/validate.h"

#define APPLY_MAX_INPUT (64u << 20)

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static const char *trim(struct km_arena *a, const char *s, size_t n)
{
	while (n && is_space(*s)) {
		s++;
		n--;
	}
	while (n && is_space(s[n - 1]))
		n--;
	return km_arena_strndup(a, s, n);
}

size_t ctl_apply_split(struct km_arena *a, const char *text, const char ***docs)
{
	const char *s = trim(a, text, strlen(text));
	size_t len = strlen(s), cap = 8, n = 0;
	const char **out = km_arena_alloc(a, cap * sizeof(*out));
	size_t start = 0, i = 0;
	for (;;) {
		/* a separator is "---" at the start of the text or of a line */
		bool sep = i + 3 <= len && memcmp(s + i, "---", 3) == 0 &&
			   (i == 0 || s[i - 1] == '\n');
		if (sep || i >= len) {
			size_t end = i;
			if (sep) /* the separator also eats the whitespace before its newline */
				while (end > start && is_space(s[end - 1]))
					end--;
			const char *doc = km_arena_strndup(a, s + start, end - start);
			/* a document that is exactly one comment line is dropped */
			if (doc[0] == '#' && !strchr(doc, '\n'))
				doc = "";
			doc = trim(a, doc, strlen(doc));
			if (*doc) {
				if (n + 1 >= cap) {
					out = km_arena_realloc(a, out, cap * sizeof(*out),
							       cap * 2 * sizeof(*out));
					cap *= 2;
				}
				out[n++] = doc;
			}
			if (i >= len)
				break;
			i += 3;
			while (i < len && is_space(s[i]))
				i++;
			start = i;
			continue;
		}
		i++;
	}
	*docs = out;
	return n;
}

static void html_escape(struct km_buf *b, const char *v)
{
	for (; *v; v++) {
		switch (*v) {
		case '&': km_buf_puts(b, "&amp;"); break;
		case '<': km_buf_puts(b, "&lt;"); break;
		case '>': km_buf_puts(b, "&gt;"); break;
		case '"': km_buf_puts(b, "&#34;"); break;
		case '\'': km_buf_puts(b, "&#39;"); break;
		default: km_buf_putc(b, *v);
		}
	}
}

const char *ctl_apply_render(struct km_arena *a, const char *doc, const char **keys,
			     const char **vals, size_t n)
{
	struct km_buf b = KM_BUF_INIT;
	const char *p = doc;
	for (;;) {
		const char *open = strstr(p, "{{");
		if (!open) {
			km_buf_puts(&b, p);
			break;
		}
		km_buf_append(&b, p, (size_t)(open - p));
		bool triple = open[2] == '{';
		const char *inner = open + (triple ? 3 : 2);
		const char *close = strstr(inner, triple ? "}}}" : "}}");
		if (!close) {
			km_buf_puts(&b, open);
			break;
		}
		const char *name = trim(a, inner, (size_t)(close - inner));
		bool raw = triple;
		if (*name == '&') {
			raw = true;
			name = trim(a, name + 1, strlen(name + 1));
		}
		if (*name != '!' && *name != '#' && *name != '^' && *name != '/') {
			for (size_t i = n; i-- > 0;)
				if (strcmp(keys[i], name) == 0) {
					if (raw)
						km_buf_puts(&b, vals[i]);
					else
						html_escape(&b, vals[i]);
					break;
				}
		}
		p = close + (triple ? 3 : 2);
	}
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

/* Go's syscall error texts are lower-case ("no such file or directory"). */
static const char *go_strerror(struct km_arena *a, int err)
{
	char *s = km_arena_strdup(a, strerror(err));
	if (s[0] >= 'A' && s[0] <= 'Z')
		s[0] = (char)(s[0] - 'A' + 'a');
	return s;
}

static int read_fd_all(FILE *f, struct km_buf *b)
{
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (km_buf_append(b, chunk, n) < 0)
			return -E2BIG;
	return ferror(f) ? -EIO : 0;
}

static int read_file(const char *path, struct km_buf *b)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	int rc = read_fd_all(f, b);
	fclose(f);
	return rc;
}

static bool has_ext(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return false;
	return !strcasecmp(dot, ".yaml") || !strcasecmp(dot, ".yml") || !strcasecmp(dot, ".json");
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static size_t on_url_data(char *p, size_t size, size_t n, void *ud)
{
	return km_buf_append(ud, p, size * n) < 0 ? 0 : size * n;
}

static int read_url(struct ctl_ctx *c, const char *url, struct km_buf *b)
{
	CURL *h = curl_easy_init();
	if (!h)
		return ctl_args_fail(c, "error creating new http request");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_url_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK)
		return ctl_args_fail(c, "error with GET http request: Get \"%s\": %s", url,
				     curl_easy_strerror(rc));
	if (status != 200)
		return ctl_args_fail(c, "error while retrieving URL");
	return 0;
}

static int read_content(struct ctl_ctx *c, const char *file, struct km_buf *b)
{
	if (strcmp(file, "-") == 0) {
		if (read_fd_all(stdin, b) < 0)
			return ctl_args_fail(
				c, "error while reading provided file: read stdin failed");
		return 0;
	}
	if (!strncmp(file, "http://", 7) || !strncmp(file, "https://", 8))
		return read_url(c, file, b);
	struct stat st;
	if (stat(file, &st) < 0)
		return ctl_args_fail(c, "error while reading provided file: stat %s: %s", file,
				     go_strerror(c->a, errno));
	if (!S_ISDIR(st.st_mode)) {
		int rc = read_file(file, b);
		if (rc < 0)
			return ctl_args_fail(c, "error while reading provided file: open %s: %s",
					     file, go_strerror(c->a, -rc));
		return 0;
	}
	DIR *d = opendir(file);
	if (!d)
		return ctl_args_fail(c, "error reading directory: open %s: %s", file,
				     go_strerror(c->a, errno));
	const char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' &&
		    (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		const char *full = km_arena_printf(c->a, "%s/%s", file, e->d_name);
		if (stat(full, &st) < 0 || S_ISDIR(st.st_mode) || !has_ext(e->d_name))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			names = km_arena_realloc(c->a, names, cap * sizeof(*names),
						 ncap * sizeof(*names));
			cap = ncap;
		}
		names[n++] = full;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (b->len)
			km_buf_puts(b, "\n---\n");
		int rc = read_file(names[i], b);
		if (rc < 0)
			return ctl_args_fail(c, "error reading file %s: open %s: %s", names[i],
					     names[i], go_strerror(c->a, -rc));
	}
	return 0;
}

/* Go's %q for plain ASCII messages. */
static const char *go_quote(struct km_arena *a, const char *s)
{
	struct km_buf b = KM_BUF_INIT;
	km_json_write_string(&b, km_str_c(s));
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

/* upstream ValidationError.Error(): "field: message; field: message". */
static const char *violations_text(struct km_arena *a, const struct km_violations *v)
{
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < v->len; i++)
		km_buf_printf(&b, "%s%s: %s", i ? "; " : "", v->items[i].field,
			      v->items[i].message);
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

/* Maps libfyaml's wording to go-yaml's for the common cases. */
static const char *yaml_error_text(struct km_arena *a, const char *msg)
{
	if (!strncmp(msg, "yaml: ", 6))
		msg += 6;
	if (strstr(msg, "end of stream") || strstr(msg, "without closing") ||
	    strstr(msg, "unterminated") || strstr(msg, "unexpected end"))
		return "found unexpected end of stream";
	int line = 0, col = 0, n = 0;
	if (sscanf(msg, "line %d, column %d: %n", &line, &col, &n) == 2 && n > 0)
		return km_arena_printf(a, "line %d: %s", line, msg + n);
	return km_arena_strdup(a, msg);
}

/* The REST body kumactl PUTs: meta (type, mesh, name, labels) plus the spec. */
static struct km_json *rest_body(struct km_arena *a, const struct km_resource_doc *d)
{
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "type", km_json_cstring(a, d->type->name));
	if (d->mesh.len)
		km_json_set(a, o, "mesh", km_json_string(a, d->mesh));
	km_json_set(a, o, "name", km_json_string(a, d->name));
	if (d->labels && d->labels->len)
		km_json_set(a, o, "labels", d->labels);
	if (km_rtype_has(d->type, KM_RT_NEW_STYLE)) {
		km_json_set(a, o, "spec", d->spec);
	} else {
		for (size_t i = 0; i < d->spec->len; i++)
			km_json_append_member(a, o, d->spec->members[i].key,
					      d->spec->members[i].val);
	}
	return o;
}

/* What `--dry-run` prints: the resource as upstream's REST form. */
static struct km_json *dry_run_form(struct km_arena *a, const struct km_resource_doc *d)
{
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "type", km_json_cstring(a, d->type->name));
	if (d->mesh.len)
		km_json_set(a, o, "mesh", km_json_string(a, d->mesh));
	km_json_set(a, o, "name", km_json_string(a, d->name));
	km_json_set(a, o, "creationTime", km_json_cstring(a, "0001-01-01T00:00:00Z"));
	km_json_set(a, o, "modificationTime", km_json_cstring(a, "0001-01-01T00:00:00Z"));
	if (d->labels && d->labels->len)
		km_json_set(a, o, "labels", d->labels);
	struct km_resource r;
	km_resource_from_doc(a, d, &r);
	const char *kri = km_resource_kri(a, &r);
	if (kri && *kri)
		km_json_set(a, o, "kri", km_json_cstring(a, kri));
	if (km_rtype_has(d->type, KM_RT_NEW_STYLE)) {
		km_json_set(a, o, "spec", d->spec);
	} else {
		for (size_t i = 0; i < d->spec->len; i++)
			km_json_append_member(a, o, d->spec->members[i].key,
					      d->spec->members[i].val);
	}
	return o;
}

static const char *item_path(struct km_arena *a, const struct km_resource_doc *d)
{
	const char *name = km_arena_strndup(a, d->name.ptr, d->name.len);
	if (d->type->scope == KM_SCOPE_MESH)
		return km_arena_printf(
			a, "/meshes/%s/%s/%s",
			ctl_client_escape(a, km_arena_strndup(a, d->mesh.ptr, d->mesh.len)),
			d->type->path, ctl_client_escape(a, name));
	return km_arena_printf(a, "/%s/%s", d->type->path, ctl_client_escape(a, name));
}

/* Formats a failed REST answer the way the remote store reports it. */
static const char *server_error(struct km_arena *a, const struct ctl_resp *r)
{
	const char *e = r->status >= 400 ? ctl_client_api_error_short(a, r->body) : NULL;
	if (e)
		return e;
	if (r->status == 405)
		return km_arena_printf(a, "%.*s", KM_STR_FMT(r->body));
	return km_arena_printf(a, "(%ld): %.*s", r->status, KM_STR_FMT(r->body));
}

static int upsert(struct ctl_ctx *c, const struct ctl_cp *cp, const struct km_resource_doc *d)
{
	const char *path = item_path(c->a, d);
	struct ctl_resp r = {0};
	struct km_buf err = KM_BUF_INIT;
	const char *fail = NULL;
	bool update = false;
	if (ctl_client_do(c, cp, "GET", path, NULL, &r, &err) < 0) {
		fail = km_arena_strdup(c->a, km_buf_cstr(&err));
	} else if (r.status == 200) {
		update = true;
	} else if (r.status != 404) {
		fail = server_error(c->a, &r);
	}
	if (!fail) {
		struct km_buf body = KM_BUF_INIT;
		km_json_write(&body, rest_body(c->a, d), 0, 0);
		km_buf_reset(&err);
		memset(&r, 0, sizeof(r));
		if (ctl_client_do(c, cp, "PUT", path, km_buf_cstr(&body), &r, &err) < 0)
			fail = km_arena_strdup(c->a, km_buf_cstr(&err));
		else if (r.status != 200 && r.status != 201)
			fail = server_error(c->a, &r);
		km_buf_fini(&body);
	}
	km_buf_fini(&err);
	const char *tn = d->type->name;
	if (fail)
		return ctl_args_fail(
			c,
			"resource type=\"%s\" mesh=\"%.*s\" name=\"%.*s\": failed server side: %s",
			tn, KM_STR_FMT(d->mesh), KM_STR_FMT(d->name), fail);
	printf("resource type=\"%s\" mesh=\"%.*s\" name=\"%.*s\" %s\n", tn, KM_STR_FMT(d->mesh),
	       KM_STR_FMT(d->name), update ? "Updated" : "Created");
	fflush(stdout);
	struct km_json *resp = NULL;
	if (r.body.len && km_json_parse(c->a, r.body.ptr, r.body.len, &resp, NULL) == 0 &&
	    resp->kind == KM_JSON_OBJECT) {
		const struct km_json *w = km_json_get(resp, "warnings");
		if (w && w->kind == KM_JSON_ARRAY)
			for (size_t i = 0; i < w->len; i++)
				if (w->items[i]->kind == KM_JSON_STRING)
					fprintf(stderr, "Warning: %.*s\n",
						KM_STR_FMT(w->items[i]->s));
	}
	return 0;
}

int ctl_apply_run(struct ctl_ctx *c)
{
	ctl_client_check_version(c);
	struct km_buf in = KM_BUF_INIT;
	in.max = APPLY_MAX_INPUT;
	int rc = read_content(c, ctl_args_str(c, "file"), &in);
	if (rc) {
		km_buf_fini(&in);
		return rc;
	}
	if (in.len == 0) {
		km_buf_fini(&in);
		return ctl_args_fail(c, "no resource(s) passed to apply");
	}
	const char **docs = NULL;
	size_t ndocs = ctl_apply_split(c->a, km_buf_cstr(&in), &docs);
	km_buf_fini(&in);
	const char **vars = NULL;
	size_t nvars = ctl_args_all(c, "var", &vars);
	const char **keys = km_arena_alloc(c->a, (nvars + 1) * sizeof(*keys));
	const char **vals = km_arena_alloc(c->a, (nvars + 1) * sizeof(*vals));
	for (size_t i = 0; i < nvars; i++) {
		const char *eq = strchr(vars[i], '=');
		keys[i] = km_arena_strndup(c->a, vars[i],
					   eq ? (size_t)(eq - vars[i]) : strlen(vars[i]));
		vals[i] = eq ? eq + 1 : "";
	}
	struct km_resource_doc *res = km_arena_alloc(c->a, (ndocs + 1) * sizeof(*res));
	size_t nres = 0;
	bool has_errors = false;
	for (size_t i = 0; i < ndocs; i++) {
		const char *text =
			nvars ? ctl_apply_render(c->a, docs[i], keys, vals, nvars) : docs[i];
		struct km_json **parsed = NULL;
		size_t np = 0;
		struct km_buf perr = KM_BUF_INIT;
		int prc = km_yaml_parse(c->a, text, strlen(text), &parsed, &np, &perr);
		const char *failure = NULL;
		if (prc < 0) {
			const char *m =
				km_arena_printf(c->a, "error converting YAML to JSON: yaml: %s",
						yaml_error_text(c->a, km_buf_cstr(&perr)));
			failure = km_arena_printf(c->a,
						  "failed to parse resource: invalid meta type: %s",
						  go_quote(c->a, m));
		} else if (np == 0 || parsed[0]->kind != KM_JSON_OBJECT) {
			failure =
				"failed to parse resource: invalid meta type: \"json: cannot unmarshal string into Go value of type v1alpha1.ResourceMeta\"";
		} else {
			struct km_str tn = km_json_get_string(parsed[0], "type");
			km_buf_reset(&perr);
			if (!km_rtype_by_name(tn)) {
				failure = km_arena_printf(
					c->a,
					"failed to parse resource: invalid resource type \"%.*s\"",
					KM_STR_FMT(tn));
			} else if (km_resource_doc_from_json(c->a, parsed[0], NULL, &res[nres],
							     &perr) < 0) {
				const char *m = km_arena_strdup(c->a, km_buf_cstr(&perr));
				failure = km_arena_printf(
					c->a, "failed to parse resource: invalid meta type: %s",
					go_quote(c->a, m));
			} else {
				struct km_resource_doc *d = &res[nres];
				struct km_violations viol, meta;
				km_violations_init(&viol, c->a);
				km_violations_init(&meta, c->a);
				if (km_validate_resource(c->a, d, &viol) < 0 || viol.len)
					failure = km_arena_printf(c->a,
								  "failed to parse resource: %s",
								  violations_text(c->a, &viol));
				else if (km_validate_meta(c->a, d, &meta), meta.len)
					failure = km_arena_printf(c->a, "failed to read meta: %s",
								  violations_text(c->a, &meta));
				else
					nres++;
			}
		}
		km_buf_fini(&perr);
		if (failure) {
			fprintf(stderr, "resource[%zu]: %s\n", i, failure);
			has_errors = true;
		}
	}
	if (has_errors)
		return ctl_args_fail(c, "failed to validate some resources");
	if (ctl_args_bool(c, "dry-run")) {
		struct km_buf out = KM_BUF_INIT;
		for (size_t i = 0; i < nres; i++) {
			if (i)
				km_buf_puts(&out, "---\n");
			ctl_table_print_resource_yaml(c->a, dry_run_form(c->a, &res[i]), &out);
		}
		rc = ctl_args_out(&out);
		km_buf_fini(&out);
		return rc;
	}
	const struct ctl_cp *cp = ctl_client_cp(c);
	if (!cp)
		return 1;
	for (size_t i = 0; i < nres; i++)
		if ((rc = upsert(c, cp, &res[i])) != 0)
			return rc;
	return 0;
}
