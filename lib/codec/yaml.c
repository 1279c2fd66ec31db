/* SPDX-License-Identifier: Apache-2.0 */
/* YAML codec: libfyaml builds a document per "---" section, which we walk
 * into the arena JSON model; the writer is ours because kumactl's output must
 * match go-yaml byte for byte. */
#include "codec/yaml.h"

#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static bool all_digits(const char *s, size_t n, const char *set)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr(set, s[i]))
			return false;
	return true;
}

static bool is_float_text(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	size_t digits = 0, frac = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		i++;
		digits++;
	}
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			i++;
			frac++;
		}
	}
	if (digits + frac == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		size_t e = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			i++;
			e++;
		}
		if (!e)
			return false;
	}
	return i == n;
}

/* RFC 8259 number grammar */
static bool json_number_ok(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && s[i] == '-')
		i++;
	if (i >= n)
		return false;
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return false;
	if (i < n && s[i] == '.') {
		i++;
		size_t f = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f)
			return false;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t e = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == e)
			return false;
	}
	return i == n;
}

/* YAML's character set: strict UTF-8 (no overlongs, surrogates or code points
 * past U+10FFFF) without C0 controls other than tab, LF and CR, and no DEL. */
static bool yaml_chars_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return false;
			i++;
			continue;
		}
		size_t len;
		unsigned cp;
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static struct km_json *resolve_plain(struct km_arena *a, const char *s, size_t n)
{
	struct km_str t = {s, n};
	if (n == 0 || km_str_eqc(t, "~") || km_str_eqc(t, "null") || km_str_eqc(t, "Null") ||
	    km_str_eqc(t, "NULL"))
		return km_json_null(a);
	if (km_str_eqc(t, "true") || km_str_eqc(t, "True") || km_str_eqc(t, "TRUE"))
		return km_json_bool(a, true);
	if (km_str_eqc(t, "false") || km_str_eqc(t, "False") || km_str_eqc(t, "FALSE"))
		return km_json_bool(a, false);
	size_t off = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	if (all_digits(s + off, n - off, "0123456789")) {
		/* normalise "+5" and "007" to JSON text */
		long long v;
		if (km_str_to_i64(t, &v) == 0)
			return km_json_int(a, v);
		/* beyond int64 (or many leading zeros): a double, always valid JSON */
		char tmp[64];
		if (n >= sizeof(tmp))
			return km_json_string(a, t);
		memcpy(tmp, s, n);
		tmp[n] = 0;
		return km_json_double(a, strtod(tmp, NULL));
	}
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
		bool hex = s[1] == 'x';
		if (all_digits(s + 2, n - 2, hex ? "0123456789abcdefABCDEF" : "01234567")) {
			char tmp[32];
			if (n < sizeof(tmp)) {
				memcpy(tmp, s + 2, n - 2);
				tmp[n - 2] = 0;
				return km_json_int(a, (int64_t)strtoll(tmp, NULL, hex ? 16 : 8));
			}
		}
	}
	if (is_float_text(s, n)) {
		/* JSON has no leading '+', '.5' or '5.' forms: go through double */
		char tmp[64];
		if (n >= sizeof(tmp))
			return km_json_string(a, t);
		if (!json_number_ok(s, n)) {
			/* "+1.5", ".5", "5.", "007.5": valid YAML, not JSON text */
			memcpy(tmp, s, n);
			tmp[n] = 0;
			return km_json_double(a, strtod(tmp, NULL));
		}
		return km_json_number_text(a, t);
	}
	return km_json_string(a, t);
}

static bool yaml_white(char c)
{
	return c == ' ' || c == '\t';
}

/* libfyaml 0.7.12 mis-reads adjacent '' escapes in single-quoted scalars
 * (4 quotes between a and b give 3 quotes instead of 2), and its unescaped
 * copy of one that spans lines leaks (fy_node_get_scalar): a single-quoted
 * scalar is decoded from the source text instead, '' escapes and YAML 1.2
 * line folding (a line break between text is a space, each empty line a
 * newline, white space around breaks dropped). Returns NULL to fall back
 * to libfyaml. */
static struct km_json *single_quoted(struct km_arena *a, struct fy_node *fyn, struct km_str src)
{
	struct fy_token *t = fy_node_get_scalar_token(fyn);
	const struct fy_mark *sm = t ? fy_token_start_mark(t) : NULL;
	const struct fy_mark *em = t ? fy_token_end_mark(t) : NULL;
	/* the marks span the text between the quotes */
	if (!sm || !em || sm->input_pos < 1 || em->input_pos >= src.len || em->input_pos < sm->input_pos)
		return NULL;
	const char *raw = src.ptr + sm->input_pos;
	size_t n = em->input_pos - sm->input_pos;
	if (raw[-1] != '\'' || raw[n] != '\'' || memchr(raw, '\r', n))
		return NULL;
	char *out = km_arena_alloc(a, n + 1);
	size_t o = 0, empty = 0;
	bool first = true;
	for (size_t b = 0; b <= n;) {
		const char *nl = memchr(raw + b, '\n', n - b);
		size_t e = nl ? (size_t)(nl - raw) : n, next = e + 1;
		bool last = !nl;
		/* white space before a break and after one is folding, not text */
		if (!first)
			while (b < e && yaml_white(raw[b]))
				b++;
		if (!last)
			while (e > b && yaml_white(raw[e - 1]))
				e--;
		if (!first) {
			if (b == e && !last) {
				empty++; /* an empty line: a newline */
				b = next;
				continue;
			}
			if (empty)
				for (; empty; empty--)
					out[o++] = '\n';
			else
				out[o++] = ' ';
		}
		for (size_t i = b; i < e; i++) {
			if (raw[i] == '\'' && (i + 1 == e || raw[i + 1] != '\''))
				return NULL; /* not the scalar we think it is */
			out[o++] = raw[i];
			if (raw[i] == '\'')
				i++;
		}
		first = false;
		b = next;
	}
	return km_json_string(a, (struct km_str){out, o});
}

static void put_utf8(char *out, size_t *o, unsigned cp)
{
	if (cp < 0x80) {
		out[(*o)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*o)++] = (char)(0xc0 | (cp >> 6));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*o)++] = (char)(0xe0 | (cp >> 12));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*o)++] = (char)(0xf0 | (cp >> 18));
		out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* libfyaml 0.7.12 also garbles some double-quoted scalars (escaped line
 * breaks after NUL escapes hand out NUL bytes): they are decoded from the
 * source text with YAML 1.2's escapes and line folding. NULL: fall back. */
static struct km_json *double_quoted(struct km_arena *a, struct fy_node *fyn, struct km_str src)
{
	struct fy_token *t = fy_node_get_scalar_token(fyn);
	const struct fy_mark *sm = t ? fy_token_start_mark(t) : NULL;
	const struct fy_mark *em = t ? fy_token_end_mark(t) : NULL;
	if (!sm || !em || sm->input_pos < 1 || em->input_pos >= src.len || em->input_pos < sm->input_pos)
		return NULL;
	const char *r = src.ptr + sm->input_pos;
	size_t n = em->input_pos - sm->input_pos;
	if (r[-1] != '"' || r[n] != '"')
		return NULL;
	char *out = km_arena_alloc(a, 4 * n + 1);
	size_t o = 0, i = 0, kept = 0; /* kept: what escapes wrote ends there */
	while (i < n) {
		char c = r[i];
		if (c == '\n') {
			/* fold: drop trailing blanks (not escaped ones: "\t" at the
			 * end of a line stays), count empty lines, skip indentation */
			while (o > kept && (out[o - 1] == ' ' || out[o - 1] == '\t'))
				o--;
			size_t breaks = 0;
			while (i < n && (r[i] == '\n' || r[i] == ' ' || r[i] == '\t')) {
				if (r[i] == '\n')
					breaks++;
				i++;
			}
			if (breaks == 1)
				out[o++] = ' ';
			else
				for (size_t k = 1; k < breaks; k++)
					out[o++] = '\n';
			continue;
		}
		if (c != '\\') {
			out[o++] = c;
			i++;
			continue;
		}
		if (i + 1 >= n)
			return NULL;
		char e = r[i + 1];
		i += 2;
		unsigned digits = 0;
		switch (e) {
		case '0': out[o++] = '\0'; break;
		case 'a': out[o++] = '\a'; break;
		case 'b': out[o++] = '\b'; break;
		case 't': case '\t': out[o++] = '\t'; break;
		case 'n': out[o++] = '\n'; break;
		case 'v': out[o++] = '\v'; break;
		case 'f': out[o++] = '\f'; break;
		case 'r': out[o++] = '\r'; break;
		case 'e': out[o++] = 0x1b; break;
		case ' ': out[o++] = ' '; break;
		case '"': out[o++] = '"'; break;
		case '/': out[o++] = '/'; break;
		case '\\': out[o++] = '\\'; break;
		case 'N': put_utf8(out, &o, 0x85); break;
		case '_': put_utf8(out, &o, 0xa0); break;
		case 'L': put_utf8(out, &o, 0x2028); break;
		case 'P': put_utf8(out, &o, 0x2029); break;
		case 'x': digits = 2; break;
		case 'u': digits = 4; break;
		case 'U': digits = 8; break;
		case '\n':
			/* escaped line break: joined, the next line's indentation dropped */
			while (i < n && (r[i] == ' ' || r[i] == '\t'))
				i++;
			break;
		default: return NULL;
		}
		if (digits) {
			unsigned cp = 0;
			for (unsigned k = 0; k < digits; k++, i++) {
				if (i >= n)
					return NULL;
				char h = r[i];
				int v = h >= '0' && h <= '9' ? h - '0'
					: h >= 'a' && h <= 'f' ? h - 'a' + 10
					: h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
				if (v < 0)
					return NULL;
				cp = cp * 16 + (unsigned)v;
			}
			if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
				return NULL;
			put_utf8(out, &o, cp);
		}
		kept = o;
	}
	return km_json_string(a, (struct km_str){out, o});
}

/* Whether <fyn> is the last item or value of its parent collection. */
static bool is_last_child(struct fy_node *fyn)
{
	struct fy_node *parent = fy_node_get_parent(fyn);
	if (!parent)
		return true;
	if (fy_node_get_type(parent) == FYNT_SEQUENCE) {
		int cnt = fy_node_sequence_item_count(parent);
		return cnt <= 0 || fy_node_sequence_get_by_index(parent, cnt - 1) == fyn;
	}
	if (fy_node_get_type(parent) == FYNT_MAPPING) {
		void *it = NULL;
		struct fy_node_pair *pair, *last = NULL;
		while ((pair = fy_node_mapping_iterate(parent, &it)))
			last = pair;
		return !last || fy_node_pair_value(last) == fyn;
	}
	return true;
}

/* A block scalar's text from the source. libfyaml 0.7.12 leaked 512 bytes
 * on some (blank lines deeper than their text: fuzz finding) and differed
 * from PyYAML and the spec on others (a clipped scalar at the end of input
 * without a line break, some folded ones with deeper text, explicit
 * indentation indicators, scalars without text): tests/e2e/
 * test_yaml_pyyaml.py compares thousands of generated ones.
 *
 * The content is indented by the parent's indentation n (the column of
 * the mapping key or sequence dash the scalar belongs to; -1 at the top
 * level) plus an explicit indicator m, else by the most spaces among the
 * leading lines up to the first with text, at least n + 1 (both at least
 * 1, as libyaml, PyYAML and Go's reader have it). It ends at the first
 * line with text indented less. A literal keeps every line break, a folded
 * one turns a break between two lines of text into a space (into
 * newlines, one per empty line, when empty lines come between) except
 * around lines that start with white space; the last break and trailing
 * empty lines are clipped to one, stripped (-) or kept (+).
 *
 * NULL with *bad false: not what this expects (libfyaml decodes it); with
 * *bad: libfyaml read the lines around it otherwise (refused). */
static struct km_json *block_scalar(struct km_arena *a, struct fy_node *fyn, struct km_str src, bool folded,
				    bool *bad)
{
	*bad = false;
	struct fy_token *t = fy_node_get_scalar_token(fyn);
	const struct fy_mark *sm = t ? fy_token_start_mark(t) : NULL;
	const struct fy_mark *em = t ? fy_token_end_mark(t) : NULL;
	if (!sm || !em || sm->input_pos < 2 || em->input_pos > src.len || em->input_pos < sm->input_pos ||
	    src.ptr[sm->input_pos - 1] != '\n')
		return NULL;
	size_t hb = sm->input_pos - 1;
	while (hb > 0 && src.ptr[hb - 1] != '\n')
		hb--;
	/* the header: the indicator after white space (or at the line's
	 * start), its chomping and indentation indicators in either order,
	 * then the end of the line or white space and a comment. A key may
	 * hold such text too: more than one match is left to libfyaml */
	char chomp = 0;
	size_t found = 0, he = sm->input_pos - 1, at = 0, m = 0;
	for (size_t i = hb; i < he; i++) {
		if (src.ptr[i] != (folded ? '>' : '|') || (i > hb && src.ptr[i - 1] != ' ' && src.ptr[i - 1] != '\t'))
			continue;
		size_t k = i + 1, digit = 0;
		char c = 0;
		for (int part = 0; part < 2 && k < he; part++) {
			if (!c && (src.ptr[k] == '-' || src.ptr[k] == '+'))
				c = src.ptr[k++];
			else if (!digit && src.ptr[k] >= '1' && src.ptr[k] <= '9')
				digit = (size_t)(src.ptr[k++] - '0');
		}
		if (k < he && src.ptr[k] != ' ' && src.ptr[k] != '\t')
			continue;
		while (k < he && (src.ptr[k] == ' ' || src.ptr[k] == '\t'))
			k++;
		if (k < he && src.ptr[k] != '#')
			continue;
		chomp = c;
		m = digit;
		at = i;
		found++;
	}
	if (found != 1)
		return NULL;
	/* n: after the line's sequence dashes (and explicit key marks), a
	 * key's column, else the last dash's (the scalar is that entry,
	 * perhaps with a tag or anchor), else -1 (a document's: "--- |") */
	long n = -1;
	size_t q = hb;
	while (q < at && src.ptr[q] == ' ')
		q++;
	while (q < at && (src.ptr[q] == '-' || src.ptr[q] == '?') && q + 1 <= at &&
	       (src.ptr[q + 1] == ' ' || src.ptr[q + 1] == '\t')) {
		n = (long)(q - hb);
		q++;
		while (q < at && (src.ptr[q] == ' ' || src.ptr[q] == '\t'))
			q++;
	}
	bool key = false;
	for (size_t i = q; i + 1 < at && !key; i++)
		key = src.ptr[i] == ':' && (src.ptr[i + 1] == ' ' || src.ptr[i + 1] == '\t');
	if (key)
		n = (long)(q - hb);
	size_t min_indent = n + 1 < 1 ? 1 : (size_t)(n + 1);
	const char *p = src.ptr + sm->input_pos;
	size_t avail = src.len - sm->input_pos;
	/* the lines from the header's on: the content's indentation, then
	 * where the scalar ends (a text line indented less, or the end) */
	size_t indent;
	if (m) {
		indent = min_indent + m - 1;
	} else {
		indent = 0;
		for (size_t b = 0; b < avail;) {
			size_t sp = 0;
			while (b + sp < avail && p[b + sp] == ' ')
				sp++;
			if (sp > indent)
				indent = sp;
			if (b + sp < avail && p[b + sp] != '\n')
				break; /* the first line with text */
			b += sp + 1;
		}
		if (indent < min_indent)
			indent = min_indent;
	}
	size_t n_bytes = 0; /* the scalar's lines: up to the first text line indented less */
	for (size_t b = 0; b < avail;) {
		const char *e = memchr(p + b, '\n', avail - b);
		size_t len = e ? (size_t)(e - (p + b)) : avail - b;
		size_t sp = 0;
		while (sp < len && p[b + sp] == ' ')
			sp++;
		if (sp < len && sp < indent)
			break;
		b += len + (e != NULL);
		n_bytes = b;
	}
	/* libfyaml must have read the same lines. With text, its token holds
	 * them and no other text (text between its end and this one: it read
	 * the structure around otherwise). Without, its token's end and value
	 * are no guide (the value may be uninitialised bytes); followed by a
	 * line at its parent's indentation (the next entry or key), it must be
	 * followed by a sibling in libfyaml's collection too (it can run over
	 * that line) */
	bool has_text = false;
	for (size_t i = 0; i < n_bytes && !has_text; i++)
		has_text = p[i] != ' ' && p[i] != '\n';
	if (has_text) {
		size_t tok = em->input_pos - sm->input_pos;
		size_t lo = n_bytes < tok ? n_bytes : tok, hi = n_bytes < tok ? tok : n_bytes;
		for (size_t i = lo; i < hi && !*bad; i++)
			*bad = p[i] != ' ' && p[i] != '\n';
	} else if (n >= 0 && n_bytes < avail) {
		size_t sp = 0;
		while (n_bytes + sp < avail && p[n_bytes + sp] == ' ')
			sp++;
		if (sp == (size_t)n)
			*bad = is_last_child(fyn);
	} else if (n < 0 && n_bytes < avail) {
		/* a document's: only a marker or a comment may follow */
		const char *nx = p + n_bytes;
		size_t left = avail - n_bytes;
		*bad = !(left >= 3 && (memcmp(nx, "---", 3) == 0 || memcmp(nx, "...", 3) == 0)) && nx[0] != '#';
	}
	if (*bad)
		return NULL;
	size_t nl = 0;
	for (size_t i = 0; i < n_bytes; i++)
		nl += p[i] == '\n';
	size_t nlines = nl + (n_bytes && p[n_bytes - 1] != '\n');
	struct line {
		const char *s;
		size_t len;
		bool broken; /* a line break ends it */
	} *ls = km_arena_alloc(a, (nlines + 1) * sizeof(*ls));
	for (size_t i = 0, b = 0; i < nlines; i++) {
		const char *e = memchr(p + b, '\n', n_bytes - b);
		size_t len = e ? (size_t)(e - (p + b)) : n_bytes - b;
		ls[i] = (struct line){p + b, len, e != NULL};
		b += len + 1;
	}
	char *out = km_arena_alloc(a, n_bytes + 1);
	size_t o = 0, empties = 0;
	bool any = false, prev_spaced = false, trailing_break = false;
	for (size_t i = 0; i < nlines; i++) {
		const struct line *l = &ls[i];
		bool text = l->len > indent;
		if (!text) {
			empties += l->broken; /* the last one may end without its break */
			continue;
		}
		const char *s = l->s + indent;
		size_t len = l->len - indent;
		bool spaced = s[0] == ' ' || s[0] == '\t';
		if (!any) {
			for (; empties; empties--)
				out[o++] = '\n';
		} else if (folded && !spaced && !prev_spaced) {
			if (!empties)
				out[o++] = ' ';
			for (; empties; empties--)
				out[o++] = '\n';
		} else {
			for (empties++; empties; empties--)
				out[o++] = '\n';
		}
		memcpy(out + o, s, len);
		o += len;
		any = true;
		prev_spaced = spaced;
		trailing_break = l->broken;
	}
	/* the last text line's break and the empty lines after it (all of
	 * them, without text, when kept) */
	if (chomp != '-' && trailing_break)
		out[o++] = '\n';
	if (chomp == '+')
		for (; empties; empties--)
			out[o++] = '\n';
	return km_json_string(a, (struct km_str){out, o});
}

static struct km_json *convert(struct km_arena *a, struct fy_node *fyn, int depth, struct km_str src)
{
	if (!fyn)
		return km_json_null(a);
	if (depth > KM_JSON_MAX_DEPTH)
		return NULL;
	switch (fy_node_get_type(fyn)) {
	case FYNT_SCALAR: {
		/* before fy_node_get_scalar: libfyaml's own unescaped copy of a
		 * single-quoted scalar that spans lines leaks */
		if (fy_node_get_style(fyn) == FYNS_SINGLE_QUOTED) {
			struct km_json *sq = single_quoted(a, fyn, src);
			if (sq)
				return sq;
		}
		if (fy_node_get_style(fyn) == FYNS_DOUBLE_QUOTED) {
			struct km_json *dq = double_quoted(a, fyn, src);
			if (dq)
				return dq;
		}
		if (fy_node_get_style(fyn) == FYNS_LITERAL || fy_node_get_style(fyn) == FYNS_FOLDED) {
			bool bad;
			struct km_json *bs = block_scalar(a, fyn, src, fy_node_get_style(fyn) == FYNS_FOLDED, &bad);
			if (bs || bad)
				return bs;
		}
		size_t len = 0;
		const char *s = fy_node_get_scalar(fyn, &len);
		/* the input holds no control characters (checked up front), so
		 * one in a non-escaped scalar is libfyaml 0.7.12 misreading a
		 * block scalar (it hands out uninitialised bytes): refuse */
		if (s && fy_node_get_style(fyn) != FYNS_DOUBLE_QUOTED &&
		    !yaml_chars_ok((const unsigned char *)s, len))
			return NULL;
		size_t tlen = 0;
		const char *tag = fy_node_get_tag(fyn, &tlen);
		if (!s)
			s = "";
		if (tag && tlen && strncmp(tag, "tag:yaml.org,2002:str", tlen) == 0)
			return km_json_string(a, (struct km_str){s, len});
		if (fy_node_get_style(fyn) == FYNS_PLAIN)
			return resolve_plain(a, s, len);
		return km_json_string(a, (struct km_str){s, len});
	}
	case FYNT_SEQUENCE: {
		struct km_json *arr = km_json_array(a);
		void *it = NULL;
		struct fy_node *item;
		while ((item = fy_node_sequence_iterate(fyn, &it))) {
			struct km_json *v = convert(a, item, depth + 1, src);
			if (!v)
				return NULL;
			km_json_array_push(a, arr, v);
		}
		return arr;
	}
	case FYNT_MAPPING: {
		struct km_json *obj = km_json_object(a);
		void *it = NULL;
		struct fy_node_pair *pair;
		while ((pair = fy_node_mapping_iterate(fyn, &it))) {
			struct fy_node *k = fy_node_pair_key(pair);
			size_t klen = 0;
			const char *ks = "";
			if (k && fy_node_get_type(k) == FYNT_SCALAR) {
				struct km_json *sq = fy_node_get_style(k) == FYNS_SINGLE_QUOTED
							 ? single_quoted(a, k, src)
						     : fy_node_get_style(k) == FYNS_DOUBLE_QUOTED
							 ? double_quoted(a, k, src)
							 : NULL;
				if (sq) {
					ks = sq->s.ptr;
					klen = sq->s.len;
				} else {
					ks = fy_node_get_scalar(k, &klen);
				}
			} else if (k)
				return NULL; /* complex keys have no JSON form */
			struct km_json *v = convert(a, fy_node_pair_value(pair), depth + 1, src);
			if (!v)
				return NULL;
			km_json_set_str(a, obj, (struct km_str){ks ? ks : "", klen}, v);
		}
		return obj;
	}
	}
	return NULL;
}

int km_yaml_parse(struct km_arena *a, const char *text, size_t len, struct km_json ***docs,
		  size_t *n, struct km_buf *err)
{
	struct fy_diag_cfg dcfg;
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.colorize = false;
	struct fy_diag *diag = fy_diag_create(&dcfg);
	if (!diag)
		return -ENOMEM;
	fy_diag_set_collect_errors(diag, true);
	struct fy_parse_cfg cfg = {
	    .flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT | FYPCF_DEFAULT_VERSION_1_2,
	    .diag = diag,
	};
	struct fy_parser *fyp = fy_parser_create(&cfg);
	if (!fyp) {
		fy_diag_destroy(diag);
		return -ENOMEM;
	}
	int rc = 0;
	size_t count = 0, cap = 0;
	/* libfyaml loops forever on some invalid UTF-8 and returns uninitialised
	 * bytes for scalars holding NUL: refuse what YAML forbids up front */
	if (!yaml_chars_ok((const unsigned char *)text, len)) {
		if (err)
			km_buf_puts(err, "yaml: invalid UTF-8 or control character in input");
		fy_parser_destroy(fyp);
		fy_diag_destroy(diag);
		return -KM_E_PARSE;
	}
	struct km_json **out = NULL;
	/* YAML reads CR, CRLF and LF alike; libfyaml 0.7.12 mis-decodes
	 * scalars broken by a lone CR, so it only ever sees LF */
	if (memchr(text, '\r', len)) {
		char *norm = km_arena_alloc(a, len + 1);
		size_t o = 0;
		for (size_t i = 0; i < len; i++) {
			if (text[i] == '\r') {
				norm[o++] = '\n';
				if (i + 1 < len && text[i + 1] == '\n')
					i++;
			} else {
				norm[o++] = text[i];
			}
		}
		norm[o] = '\0';
		text = norm;
		len = o;
	}
	/* libfyaml 0.7.12 crashes destroying its parser after an explicit key
	 * (?) whose key holds a tab after a colon ("? N:\t:", "?\n N:\t>",
	 * "? N: \t>": fuzz findings). Explicit keys are refused anyway unless
	 * a plain scalar: input with both, an explicit key (a line whose first
	 * token, after any sequence entries, is "?") and a tab, is refused
	 * before libfyaml reads it */
	bool tab = memchr(text, '\t', len) != NULL;
	for (size_t b = 0, line = 1; tab && b < len; line++) {
		const char *e = memchr(text + b, '\n', len - b);
		size_t l = e ? (size_t)(e - (text + b)) : len - b;
		const char *s = text + b;
		size_t i = 0;
		for (;;) {
			while (i < l && s[i] == ' ')
				i++;
			if (i + 1 < l && s[i] == '-' && (s[i + 1] == ' ' || s[i + 1] == '\t'))
				i += 2;
			else
				break;
		}
		if (i < l && s[i] == '?' && (i + 1 == l || s[i + 1] == ' ' || s[i + 1] == '\t')) {
			if (err)
				km_buf_printf(err,
					      "yaml: line %zu: an explicit key (?) in input with a tab is not supported",
					      line);
			fy_parser_destroy(fyp);
			fy_diag_destroy(diag);
			return -KM_E_PARSE;
		}
		b += l + 1;
	}
	if (fy_parser_set_string(fyp, text, len) != 0)
		rc = -KM_E_PARSE;
	while (rc == 0) {
		struct fy_document *fyd = fy_parse_load_document(fyp);
		if (!fyd)
			break;
		struct fy_node *root = fy_document_root(fyd);
		if (root) {
			struct km_json *v = convert(a, root, 0, (struct km_str){text, len});
			if (!v) {
				rc = -KM_E_PARSE;
				if (err)
					km_buf_puts(err, "unsupported YAML construct (complex key, nesting too deep or an undecodable block scalar)");
			} else if (v->kind != KM_JSON_NULL) {
				if (count == cap) {
					size_t nc = cap ? cap * 2 : 4;
					out = km_arena_realloc(a, out, cap * sizeof(*out), nc * sizeof(*out));
					cap = nc;
				}
				out[count++] = v;
			}
		}
		fy_parse_document_destroy(fyp, fyd);
	}
	if (rc == 0 && fy_diag_got_error(diag))
		rc = -KM_E_PARSE;
	if (rc == -KM_E_PARSE && err && err->len == 0) {
		void *it = NULL;
		struct fy_diag_error *de = fy_diag_errors_iterate(diag, &it);
		if (de)
			km_buf_printf(err, "yaml: line %d, column %d: %s", de->line + 1, de->column + 1,
				      de->msg ? de->msg : "syntax error");
		else
			km_buf_puts(err, "yaml: syntax error");
	}
	fy_parser_destroy(fyp);
	fy_diag_destroy(diag);
	if (rc == 0) {
		*docs = out;
		*n = count;
	}
	return rc;
}

/* ---- writer ---- */

static bool looks_special(const char *s, size_t n)
{
	/* anything go-yaml (YAML 1.1 resolver) would read back as a non-string */
	static const char *const words[] = {
	    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE",
	    "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null",
	    "NULL", "~", ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN",
	    ".NAN", "<<", "="};
	struct km_str t = {s, n};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (km_str_eqc(t, words[i]))
			return true;
	size_t off = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	if (all_digits(s + off, n - off, "0123456789_"))
		return true;
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'b' || s[1] == 'o'))
		return true;
	if (is_float_text(s, n))
		return true;
	/* timestamps: YYYY-MM-DD... */
	if (n >= 10 && all_digits(s, 4, "0123456789") && s[4] == '-' &&
	    all_digits(s + 5, 2, "0123456789") && s[7] == '-')
		return true;
	/* sexagesimal 1:20 */
	bool digits_colons = true, colon = false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ':')
			colon = true;
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '.' && s[i] != '_')
			digits_colons = false;
	}
	return colon && digits_colons;
}

static bool plain_ok(const char *s, size_t n)
{
	if (n == 0 || looks_special(s, n))
		return false;
	if (s[0] == ' ' || s[n - 1] == ' ')
		return false;
	/* a document marker ("---", "...") at the start of a line */
	if (n >= 3 && (memcmp(s, "---", 3) == 0 || memcmp(s, "...", 3) == 0) &&
	    (n == 3 || s[3] == ' ' || s[3] == '\t'))
		return false;
	if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]) && !(s[0] == '-' && n > 1 && s[1] != ' '))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c == ':' && (i + 1 == n || s[i + 1] == ' '))
			return false;
		if (c == '#' && i > 0 && s[i - 1] == ' ')
			return false;
	}
	return true;
}

/* A double-quoted scalar with YAML escapes. */
static int write_double_quoted(struct km_buf *out, struct km_str s)
{
	int rc = km_buf_putc(out, '"');
	for (size_t i = 0; i < s.len && rc == 0; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		switch (c) {
		case '"': rc = km_buf_puts(out, "\\\""); break;
		case '\\': rc = km_buf_puts(out, "\\\\"); break;
		case '\n': rc = km_buf_puts(out, "\\n"); break;
		case '\t': rc = km_buf_puts(out, "\\t"); break;
		case '\r': rc = km_buf_puts(out, "\\r"); break;
		default:
			if (c < 0x20 || c == 0x7f) /* not printable in YAML: escaped */
				rc = km_buf_printf(out, "\\x%02X", c);
			else
				rc = km_buf_putc(out, (char)c);
		}
	}
	return rc ? rc : km_buf_putc(out, '"');
}

static int write_scalar_string(struct km_buf *out, struct km_str s)
{
	if (plain_ok(s.ptr, s.len))
		return km_buf_put_str(out, s);
	/* go-yaml: strings that would resolve to another type are double-quoted;
	 * other non-plain strings are single-quoted unless they need escapes */
	bool printable = true;
	for (size_t i = 0; i < s.len; i++)
		if ((unsigned char)s.ptr[i] < 0x20 || s.ptr[i] == 0x7f)
			printable = false;
	if (printable && s.len && !looks_special(s.ptr, s.len)) {
		int r = km_buf_putc(out, '\'');
		for (size_t i = 0; i < s.len && r == 0; i++)
			r = s.ptr[i] == '\'' ? km_buf_puts(out, "''") : km_buf_putc(out, s.ptr[i]);
		return r ? r : km_buf_putc(out, '\'');
	}
	/* multi-line text: literal block, as go-yaml does */
	size_t first = 0; /* the first line with text sets the block's indentation */
	while (first < s.len && s.ptr[first] == '\n')
		first++;
	if (memchr(s.ptr, '\n', s.len) && first < s.len && s.ptr[first] != ' ') {
		bool ok = true;
		for (size_t i = 0; i < s.len; i++)
			if (((unsigned char)s.ptr[i] < 0x20 && s.ptr[i] != '\n') || s.ptr[i] == 0x7f ||
			    (s.ptr[i] == ' ' && i + 1 < s.len && s.ptr[i + 1] == '\n'))
				ok = false;
		if (ok)
			return 1; /* caller emits block */
	}
	return write_double_quoted(out, s);
}

static int pad(struct km_buf *out, int n)
{
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++)
		rc = km_buf_putc(out, ' ');
	return rc;
}

static int write_block(struct km_buf *out, struct km_str s, int indent)
{
	bool trailing_nl = s.len && s.ptr[s.len - 1] == '\n';
	bool keep = s.len >= 2 && s.ptr[s.len - 2] == '\n' && trailing_nl; /* more than one final break */
	int rc = km_buf_puts(out, keep ? "|+" : trailing_nl ? "|" : "|-");
	size_t i = 0;
	while (i < s.len && rc == 0) {
		size_t j = i;
		while (j < s.len && s.ptr[j] != '\n')
			j++;
		if (j == s.len && j == i)
			break;
		rc = km_buf_putc(out, '\n');
		if (j > i && rc == 0) {
			rc = pad(out, indent);
			if (rc == 0)
				rc = km_buf_append(out, s.ptr + i, j - i);
		}
		i = j + 1;
	}
	return rc;
}

static bool is_container(const struct km_json *v)
{
	return v && (v->kind == KM_JSON_OBJECT || v->kind == KM_JSON_ARRAY) && v->len > 0;
}

static int write_value(struct km_buf *out, const struct km_json *v, int indent);

/* Writes a scalar (or empty container) inline after "key: " or "- ". */
static int write_inline(struct km_buf *out, const struct km_json *v, int indent)
{
	if (!v)
		return km_buf_puts(out, "null");
	switch (v->kind) {
	case KM_JSON_NULL: return km_buf_puts(out, "null");
	case KM_JSON_BOOL: return km_buf_puts(out, v->b ? "true" : "false");
	case KM_JSON_NUMBER: return km_buf_put_str(out, v->s);
	case KM_JSON_STRING: {
		int rc = write_scalar_string(out, v->s);
		if (rc == 1)
			rc = write_block(out, v->s, indent);
		return rc;
	}
	case KM_JSON_ARRAY: return km_buf_puts(out, "[]");
	case KM_JSON_OBJECT: return km_buf_puts(out, "{}");
	}
	return 0;
}

static int write_key(struct km_buf *out, struct km_str k)
{
	int rc = write_scalar_string(out, k);
	if (rc == 1) {
		/* multi-line key: always double-quote */
		rc = write_double_quoted(out, k);
	}
	return rc;
}

static int write_mapping(struct km_buf *out, const struct km_json *v, int indent, bool first_inline)
{
	int rc = 0;
	for (size_t i = 0; i < v->len && rc == 0; i++) {
		if (i > 0 || !first_inline)
			rc = pad(out, indent);
		const struct km_json *val = v->members[i].val;
		if (rc == 0)
			rc = write_key(out, v->members[i].key);
		if (rc)
			break;
		if (is_container(val)) {
			rc = km_buf_puts(out, ":\n");
			if (rc == 0)
				rc = write_value(out, val, val->kind == KM_JSON_OBJECT ? indent + 2 : indent);
		} else {
			rc = km_buf_puts(out, ": ");
			if (rc == 0)
				rc = write_inline(out, val, indent + 2);
			if (rc == 0)
				rc = km_buf_putc(out, '\n');
		}
	}
	return rc;
}

static int write_sequence(struct km_buf *out, const struct km_json *v, int indent)
{
	int rc = 0;
	for (size_t i = 0; i < v->len && rc == 0; i++) {
		const struct km_json *item = v->items[i];
		rc = pad(out, indent);
		if (rc == 0)
			rc = km_buf_puts(out, "- ");
		if (rc)
			break;
		if (is_container(item) && item->kind == KM_JSON_OBJECT) {
			rc = write_mapping(out, item, indent + 2, true);
		} else if (is_container(item)) {
			/* nested sequence: "- - a" */
			struct km_buf tmp = KM_BUF_INIT;
			rc = write_sequence(&tmp, item, indent + 2);
			if (rc == 0)
				rc = km_buf_append(out, tmp.data + indent + 2, tmp.len - (size_t)indent - 2);
			km_buf_fini(&tmp);
		} else {
			rc = write_inline(out, item, indent + 2);
			if (rc == 0)
				rc = km_buf_putc(out, '\n');
		}
	}
	return rc;
}

static int write_value(struct km_buf *out, const struct km_json *v, int indent)
{
	if (is_container(v))
		return v->kind == KM_JSON_OBJECT ? write_mapping(out, v, indent, false)
						 : write_sequence(out, v, indent);
	int rc = pad(out, indent);
	if (rc == 0)
		rc = write_inline(out, v, indent + 2); /* block scalars indent their lines */
	return rc ? rc : km_buf_putc(out, '\n');
}

int km_yaml_write(struct km_buf *out, const struct km_json *v)
{
	return write_value(out, v, 0);
}
