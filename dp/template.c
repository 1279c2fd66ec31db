/* SPDX-License-Identifier: Apache-2.0 */
/* Dataplane templates: a small mustache engine with the behaviour of the one
 * upstream kuma-dp uses (hoisie/mustache: {{x}} is HTML-escaped, {{{x}}} is
 * raw, sections, inverted sections, comments, delimiter changes, missing names
 * render empty, the same "line N: ..." parse errors), then decoding and
 * validation of the rendered Dataplane. Parse trees and values live in one
 * arena per render; the result is copied into the caller's buffer or arena. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "codec/yaml.h"
#include "dp/dp.h"
#include "resource/resource.h"
#include "resource/validate.h"

/* ---- values: the -v k=v pairs as a tree ("a.b" nests) ---- */

struct tval {
	const char *key;
	const char *str;    /* leaf value, or NULL for a map */
	struct tval *kids;  /* map members */
	struct tval *next;
};

static struct tval *tval_child(struct km_arena *a, struct tval *map, const char *key, size_t n)
{
	struct tval **pp = &map->kids;
	for (; *pp; pp = &(*pp)->next)
		if (strlen((*pp)->key) == n && memcmp((*pp)->key, key, n) == 0)
			return *pp;
	struct tval *v = km_arena_alloc(a, sizeof(*v));
	v->key = km_arena_strndup(a, key, n);
	*pp = v;
	return v;
}

static struct tval *tval_build(struct km_arena *a, const struct dp_var *vars, size_t n)
{
	struct tval *root = km_arena_alloc(a, sizeof(*root));
	for (size_t i = 0; i < n; i++) {
		struct tval *cur = root;
		const char *k = vars[i].key;
		const char *dot;
		while ((dot = strchr(k, '.')) != NULL) {
			cur = tval_child(a, cur, k, (size_t)(dot - k));
			cur->str = NULL;
			k = dot + 1;
		}
		struct tval *leaf = tval_child(a, cur, k, strlen(k));
		leaf->str = vars[i].value;
		leaf->kids = NULL;
	}
	return root;
}

/* ---- parse ---- */

enum ekind { E_TEXT, E_VAR, E_SECTION };

struct elem {
	enum ekind kind;
	struct km_str text; /* E_TEXT */
	const char *name;   /* E_VAR, E_SECTION */
	bool raw, inverted;
	struct elem *kids;  /* E_SECTION */
	struct elem *next;
};

struct parser {
	struct km_arena *a;
	const char *data;
	size_t len, p;
	int curline;
	char otag[16], ctag[16];
	struct km_buf *err;
};

/* Reads up to and including <s>; 1 at end of input (then <text> is the rest). */
static int read_until(struct parser *ps, const char *s, struct km_str *text)
{
	size_t sl = strlen(s);
	int newlines = 0;
	for (size_t i = ps->p;; i++) {
		if (i + sl > ps->len) {
			*text = (struct km_str){ps->data + ps->p, ps->len - ps->p};
			return 1;
		}
		if (ps->data[i] == '\n')
			newlines++;
		if (memcmp(ps->data + i, s, sl) == 0) {
			size_t e = i + sl;
			*text = (struct km_str){ps->data + ps->p, e - ps->p};
			ps->p = e;
			ps->curline += newlines;
			return 0;
		}
	}
}

static struct km_str trim(struct km_str s)
{
	while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t' || s.ptr[0] == '\n' || s.ptr[0] == '\r'))
		s.ptr++, s.len--;
	while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t' ||
			 s.ptr[s.len - 1] == '\n' || s.ptr[s.len - 1] == '\r'))
		s.len--;
	return s;
}

static int fail(struct parser *ps, int line, const char *msg, const char *arg)
{
	km_buf_printf(ps->err, "line %d: %s%s", line, msg, arg ? arg : "");
	return -KM_E_PARSE;
}

static struct elem **push(struct parser *ps, struct elem **tail, enum ekind k)
{
	struct elem *e = km_arena_alloc(ps->a, sizeof(*e));
	e->kind = k;
	*tail = e;
	return &e->next;
}

/* Parses elements into <*tail> until end of input (<section> NULL) or the
 * closing tag of <section>. */
static int parse_list(struct parser *ps, struct elem **tail, struct elem *section, int startline)
{
	for (;;) {
		struct km_str text;
		int eof = read_until(ps, ps->otag, &text);
		if (eof) {
			if (section)
				return fail(ps, startline, "Section ", km_arena_printf(ps->a, "%s has no closing tag", section->name));
			struct elem **t = tail;
			tail = push(ps, t, E_TEXT);
			(*t)->text = text;
			return 0;
		}
		text.len -= strlen(ps->otag);
		struct elem **t = tail;
		tail = push(ps, t, E_TEXT);
		(*t)->text = text;

		if (ps->p < ps->len && ps->data[ps->p] == '{') {
			char close[20];
			snprintf(close, sizeof(close), "}%s", ps->ctag);
			eof = read_until(ps, close, &text);
		} else {
			eof = read_until(ps, ps->ctag, &text);
		}
		if (eof)
			return fail(ps, ps->curline, "unmatched open tag", NULL);
		text.len -= strlen(ps->ctag);
		struct km_str tag = trim(text);
		if (!tag.len)
			return fail(ps, ps->curline, "empty tag", NULL);
		switch (tag.ptr[0]) {
		case '!':
			break;
		case '#':
		case '^': {
			struct km_str name = trim((struct km_str){tag.ptr + 1, tag.len - 1});
			if (ps->p < ps->len && ps->data[ps->p] == '\n')
				ps->p++;
			else if (ps->p + 1 < ps->len && ps->data[ps->p] == '\r' && ps->data[ps->p + 1] == '\n')
				ps->p += 2;
			t = tail;
			tail = push(ps, t, E_SECTION);
			struct elem *se = *t;
			se->name = km_arena_strndup(ps->a, name.ptr, name.len);
			se->inverted = tag.ptr[0] == '^';
			int rc = parse_list(ps, &se->kids, se, ps->curline);
			if (rc)
				return rc;
			break;
		}
		case '/': {
			if (!section)
				return fail(ps, ps->curline, "unmatched close tag", NULL);
			struct km_str name = trim((struct km_str){tag.ptr + 1, tag.len - 1});
			if (!km_str_eqc(name, section->name))
				return fail(ps, ps->curline, "interleaved closing tag: ",
					    km_arena_strndup(ps->a, name.ptr, name.len));
			return 0;
		}
		case '>':
			break; /* partials: no partial files for Dataplane templates */
		case '=': {
			if (tag.ptr[tag.len - 1] != '=')
				return fail(ps, ps->curline, "Invalid meta tag", NULL);
			struct km_str d = trim((struct km_str){tag.ptr + 1, tag.len >= 2 ? tag.len - 2 : 0});
			const char *sp = memchr(d.ptr, ' ', d.len);
			if (sp) {
				size_t on = (size_t)(sp - d.ptr), cn = d.len - on - 1;
				if (on && cn && on < sizeof(ps->otag) && cn < sizeof(ps->ctag)) {
					memcpy(ps->otag, d.ptr, on);
					ps->otag[on] = 0;
					memcpy(ps->ctag, sp + 1, cn);
					ps->ctag[cn] = 0;
				}
			}
			break;
		}
		case '{':
			if (tag.ptr[tag.len - 1] == '}') {
				t = tail;
				tail = push(ps, t, E_VAR);
				/* the name is not trimmed: {{{ x }}} looks up " x " */
				(*t)->name = km_arena_strndup(ps->a, tag.ptr + 1, tag.len >= 2 ? tag.len - 2 : 0);
				(*t)->raw = true;
			}
			break;
		default:
			t = tail;
			tail = push(ps, t, E_VAR);
			(*t)->name = km_arena_strndup(ps->a, tag.ptr, tag.len);
			break;
		}
	}
}

/* ---- render ---- */

struct chain {
	const struct tval *ctx;
	const struct chain *up;
};

static const struct tval *lookup(struct km_arena *a, const struct chain *ch, const char *name)
{
	const char *dot = strcmp(name, ".") != 0 ? strchr(name, '.') : NULL;
	if (dot) {
		const struct tval *v = lookup(a, ch, km_arena_strndup(a, name, (size_t)(dot - name)));
		if (!v)
			return NULL;
		struct chain one = {v, NULL};
		return lookup(a, &one, dot + 1);
	}
	for (; ch; ch = ch->up) {
		if (strcmp(name, ".") == 0)
			return ch->ctx;
		if (ch->ctx->str)
			continue;
		for (const struct tval *k = ch->ctx->kids; k; k = k->next)
			if (strcmp(k->key, name) == 0)
				return k;
	}
	return NULL;
}

static bool is_empty(const struct tval *v)
{
	if (!v)
		return true;
	if (!v->str)
		return false;
	return trim(km_str_c(v->str)).len == 0;
}

static void escape(struct km_buf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '"':
			km_buf_puts(out, "&#34;");
			break;
		case '\'':
			km_buf_puts(out, "&#39;");
			break;
		case '&':
			km_buf_puts(out, "&amp;");
			break;
		case '<':
			km_buf_puts(out, "&lt;");
			break;
		case '>':
			km_buf_puts(out, "&gt;");
			break;
		default:
			km_buf_putc(out, *s);
		}
	}
}

static void render(struct km_arena *a, const struct elem *e, const struct chain *ch,
		   struct km_buf *out)
{
	for (; e; e = e->next) {
		switch (e->kind) {
		case E_TEXT:
			km_buf_put_str(out, e->text);
			break;
		case E_VAR: {
			const struct tval *v = lookup(a, ch, e->name);
			if (v && v->str) {
				if (e->raw)
					km_buf_puts(out, v->str);
				else
					escape(out, v->str);
			}
			break;
		}
		case E_SECTION: {
			const struct tval *v = lookup(a, ch, e->name);
			bool empty = is_empty(v);
			if (empty != e->inverted)
				break;
			const struct chain *root = ch;
			while (root->up)
				root = root->up;
			struct chain next = {(!e->inverted && v && !v->str) ? v : root->ctx, ch};
			render(a, e->kids, &next, out);
			break;
		}
		}
	}
}

int dp_template_render(struct km_str tmpl, const struct dp_var *vars, size_t nvars,
		       struct km_buf *out, struct km_buf *err)
{
	struct km_arena *a = km_arena_new(0);
	struct parser ps = {.a = a, .data = tmpl.ptr, .len = tmpl.len, .curline = 1, .err = err};
	memcpy(ps.otag, "{{", 3);
	memcpy(ps.ctag, "}}", 3);
	struct elem *root = NULL;
	int rc = parse_list(&ps, &root, NULL, 1);
	if (!rc) {
		struct chain ch = {tval_build(a, vars, nvars), NULL};
		render(a, root, &ch, out);
	}
	km_arena_free(a);
	return rc;
}

/* ---- Dataplane loading ---- */

static int read_all(FILE *f, struct km_buf *out)
{
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		km_buf_append(out, chunk, n);
	return ferror(f) ? -EIO : 0;
}

static const char *json_kind_name(const struct km_json *v)
{
	switch (v->kind) {
	case KM_JSON_STRING:
		return "string";
	case KM_JSON_NUMBER:
		return "number";
	case KM_JSON_BOOL:
		return "bool";
	case KM_JSON_ARRAY:
		return "array";
	default:
		return "null";
	}
}

int dp_template_load(struct dp_config *c, const char **json, const char **mesh,
		     const char **name, struct km_buf *err)
{
	*json = NULL;
	struct km_buf raw = KM_BUF_INIT, text = KM_BUF_INIT, why = KM_BUF_INIT;
	int rc = 0;
	if (!c->resource_path || !*c->resource_path) {
		if (c->resource)
			km_buf_puts(&raw, c->resource);
	} else if (strcmp(c->resource_path, "-") == 0) {
		if (read_all(stdin, &raw) != 0) {
			km_buf_printf(err, "read /dev/stdin: %s", strerror(errno));
			rc = -EIO;
			goto out;
		}
	} else {
		FILE *f = fopen(c->resource_path, "rb");
		if (!f) {
			km_buf_printf(err, "error while reading provided file: open %s: %s",
				      c->resource_path, dp_util_strerror(c->a, errno));
			rc = -EIO;
			goto out;
		}
		rc = read_all(f, &raw);
		fclose(f);
		if (rc) {
			km_buf_printf(err, "error while reading provided file: read %s: %s",
				      c->resource_path, strerror(EIO));
			goto out;
		}
	}
	if (raw.len == 0)
		goto out;

	if (dp_template_render((struct km_str){km_buf_cstr(&raw), raw.len}, c->vars, c->nvars, &text,
			       &why) != 0) {
		km_buf_printf(err, "failed to render the Dataplane template: %s", km_buf_cstr(&why));
		rc = -EINVAL;
		goto out;
	}
	km_info("kuma-dp", "rendered resource resource=%s", km_buf_cstr(&text));

	struct km_arena *a = c->a;
	struct km_json **docs = NULL;
	size_t ndocs = 0;
	if (km_yaml_parse(a, km_buf_cstr(&text), text.len, &docs, &ndocs, &why) != 0) {
		km_buf_printf(err, "invalid meta type: \"error converting YAML to JSON: yaml: %s\"",
			      km_buf_cstr(&why));
		rc = -EINVAL;
		goto out;
	}
	struct km_json *doc = ndocs ? docs[0] : km_json_object(a);
	if (doc->kind != KM_JSON_OBJECT) {
		km_buf_printf(err,
			      "invalid meta type: \"error unmarshaling JSON: while decoding JSON: json: "
			      "cannot unmarshal %s into Go value of type v1alpha1.ResourceMeta\"",
			      json_kind_name(doc));
		rc = -EINVAL;
		goto out;
	}
	struct km_resource_doc d;
	rc = km_resource_doc_from_json(a, doc, NULL, &d, &why);
	if (rc == -KM_E_NOT_FOUND) {
		km_buf_printf(err, "invalid resource type \"%.*s\"",
			      KM_STR_FMT(km_json_get_string(doc, "type")));
		rc = -EINVAL;
		goto out;
	}
	if (rc) {
		km_buf_printf(err, "invalid meta type: \"%s\"", km_buf_cstr(&why));
		rc = -EINVAL;
		goto out;
	}
	struct km_violations v;
	km_violations_init(&v, a);
	km_validate_resource(a, &d, &v);
	if (!v.len)
		km_validate_meta(a, &d, &v);
	if (v.len) {
		for (size_t i = 0; i < v.len; i++)
			km_buf_printf(err, "%s%s: %s", i ? "; " : "", v.items[i].field,
				      v.items[i].message);
		rc = -EINVAL;
		goto out;
	}
	if (strcmp(d.type->name, "Dataplane") != 0) {
		km_buf_printf(err, "invalid proxy resource type \"%s\", expected Dataplane",
			      d.type->name);
		rc = -EINVAL;
		goto out;
	}
	struct km_resource r;
	km_resource_from_doc(a, &d, &r);
	r.ctime = r.mtime = 0;
	struct km_buf js = KM_BUF_INIT;
	km_json_write(&js, km_resource_to_json(a, &r), 0, 0);
	*json = km_arena_strndup(a, km_buf_cstr(&js), js.len);
	km_buf_fini(&js);
	*mesh = km_arena_strndup(a, d.mesh.ptr, d.mesh.len);
	*name = km_arena_strndup(a, d.name.ptr, d.name.len);
out:
	km_buf_fini(&raw);
	km_buf_fini(&text);
	km_buf_fini(&why);
	return rc;
}
