/* SPDX-License-Identifier: Apache-2.0 */
/* Go text/template subset (see gotemplate.h). The lexer follows Go's state
 * machine and produces every token up front (stopping at the first error
 * token, which the parser reports where Go would); the recursive-descent
 * parser reproduces Go's grammar checks and messages. Tokens, nodes and
 * messages are allocated in the caller's arena. */
#include "resource/gotemplate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

/* ---- tokens --------------------------------------------------------------- */

enum tok_kind {
	T_ERROR,
	T_EOF,
	T_TEXT,
	T_LEFT,
	T_RIGHT,
	T_SPACE,
	T_PIPE,
	T_ASSIGN,
	T_DECLARE,
	T_STRING,
	T_RAW,
	T_CHARCONST,
	T_NUMBER,
	T_BOOL,
	T_FIELD,
	T_VARIABLE,
	T_IDENT,
	T_LPAREN,
	T_RPAREN,
	T_CHAR,
	T_KEYWORD, /* marker: kinds after it print as <word> */
	T_BLOCK,
	T_BREAK,
	T_CONTINUE,
	T_DOT,
	T_DEFINE,
	T_ELSE,
	T_END,
	T_IF,
	T_NIL,
	T_RANGE,
	T_TEMPLATE,
	T_WITH,
};

static const struct {
	const char *word;
	enum tok_kind kind;
} keywords[] = {
	{"block", T_BLOCK},
	{"break", T_BREAK},
	{"continue", T_CONTINUE},
	{"define", T_DEFINE},
	{"else", T_ELSE},
	{"end", T_END},
	{"if", T_IF},
	{"nil", T_NIL},
	{"range", T_RANGE},
	{"template", T_TEMPLATE},
	{"with", T_WITH},
};

struct tok {
	enum tok_kind kind;
	struct km_str val;
	size_t pos;
	int line;
};

struct lexer {
	struct km_arena *a;
	struct km_str in;
	size_t pos, start;
	int paren_depth;
	struct tok *toks;
	size_t n, cap;
};

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Go's unicode.IsLetter/IsDigit, with every non-ASCII byte taken as a letter */
static bool is_alnum(int c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c >= 0x80;
}

static int peekc(const struct lexer *l)
{
	return l->pos < l->in.len ? (unsigned char)l->in.ptr[l->pos] : -1;
}

static int nextc(struct lexer *l)
{
	int c = peekc(l);
	l->pos++; /* past the end too, so backup stays symmetric */
	return c;
}

static bool has_prefix_at(const struct lexer *l, size_t pos, const char *p)
{
	size_t n = strlen(p);
	return pos <= l->in.len && l->in.len - pos >= n && memcmp(l->in.ptr + pos, p, n) == 0;
}

static int line_at(const struct lexer *l, size_t pos)
{
	int line = 1;
	for (size_t i = 0; i < pos && i < l->in.len; i++)
		line += l->in.ptr[i] == '\n';
	return line;
}

static void push(struct lexer *l, enum tok_kind k, struct km_str val, size_t pos)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 32;
		l->toks = km_arena_realloc(l->a, l->toks, l->cap * sizeof(*l->toks),
					   nc * sizeof(*l->toks));
		l->cap = nc;
	}
	l->toks[l->n++] = (struct tok){k, val, pos, line_at(l, pos)};
}

static void emit(struct lexer *l, enum tok_kind k)
{
	push(l, k, (struct km_str){l->in.ptr + l->start, l->pos - l->start}, l->start);
	l->start = l->pos;
}

static void lex_error(struct lexer *l, const char *msg)
{
	push(l, T_ERROR, km_str_c(msg), l->start);
}

/* Go's %#U for an ASCII code point */
static const char *fmt_rune(struct km_arena *a, int c)
{
	if (c >= 0x20 && c < 0x7f)
		return km_arena_printf(a, "U+%04X '%c'", (unsigned)c, c);
	return km_arena_printf(a, "U+%04X", (unsigned)c);
}

static bool left_trim_marker(const struct lexer *l, size_t pos)
{
	return pos + 1 < l->in.len && l->in.ptr[pos] == '-' && is_space(l->in.ptr[pos + 1]);
}

static bool right_trim_marker(const struct lexer *l, size_t pos)
{
	return pos + 1 < l->in.len && is_space(l->in.ptr[pos]) && l->in.ptr[pos + 1] == '-';
}

static bool at_right_delim(const struct lexer *l, bool *trim)
{
	*trim = right_trim_marker(l, l->pos) && has_prefix_at(l, l->pos + 2, "}}");
	return *trim || has_prefix_at(l, l->pos, "}}");
}

static bool at_terminator(const struct lexer *l)
{
	int c = peekc(l);
	if (c < 0 || is_space(c))
		return true;
	if (strchr(".,|:)(", c))
		return true;
	return has_prefix_at(l, l->pos, "}}");
}

static size_t skip_spaces(const struct lexer *l, size_t pos)
{
	while (pos < l->in.len && is_space(l->in.ptr[pos]))
		pos++;
	return pos;
}

/* Text up to the next "{{" and the delimiter (or comment) itself. Returns
 * true when an action starts, false at EOF or after an error. */
static bool lex_text(struct lexer *l, bool *done)
{
	struct km_str rest = {l->in.ptr + l->pos, l->in.len - l->pos};
	long x = km_str_find(rest, KM_STR("{{"));
	if (x < 0) {
		l->pos = l->in.len;
		if (l->pos > l->start)
			emit(l, T_TEXT);
		emit(l, T_EOF);
		*done = true;
		return false;
	}
	size_t delim = l->pos + (size_t)x;
	size_t end = delim;
	if (left_trim_marker(l, delim + 2))
		while (end > l->start && is_space(l->in.ptr[end - 1]))
			end--;
	if (end > l->start) {
		l->pos = end;
		emit(l, T_TEXT);
	}
	l->pos = l->start = delim + 2;
	size_t after = left_trim_marker(l, l->pos) ? 2 : 0;
	if (has_prefix_at(l, l->pos + after, "/*")) {
		l->pos += after + 2;
		l->start = l->pos;
		rest = (struct km_str){l->in.ptr + l->pos, l->in.len - l->pos};
		long c = km_str_find(rest, KM_STR("*/"));
		if (c < 0) {
			lex_error(l, "unclosed comment");
			*done = true;
			return false;
		}
		l->pos += (size_t)c + 2;
		bool trim;
		if (!at_right_delim(l, &trim)) {
			lex_error(l, "comment ends before closing delimiter");
			*done = true;
			return false;
		}
		l->pos += (trim ? 2 : 0) + 2;
		if (trim)
			l->pos = skip_spaces(l, l->pos);
		l->start = l->pos;
		return false;
	}
	l->start = delim;
	emit(l, T_LEFT);
	l->pos += after;
	l->start = l->pos;
	l->paren_depth = 0;
	return true;
}

static void accept_run(struct lexer *l, const char *set)
{
	while (peekc(l) > 0 && strchr(set, peekc(l)))
		l->pos++;
}

static bool accept(struct lexer *l, const char *set)
{
	if (peekc(l) > 0 && strchr(set, peekc(l))) {
		l->pos++;
		return true;
	}
	return false;
}

static bool scan_number(struct lexer *l)
{
	const char *digits = "0123456789_";
	accept(l, "+-");
	if (accept(l, "0")) {
		if (accept(l, "xX"))
			digits = "0123456789abcdefABCDEF_";
		else if (accept(l, "oO"))
			digits = "01234567_";
		else if (accept(l, "bB"))
			digits = "01_";
	}
	accept_run(l, digits);
	if (accept(l, "."))
		accept_run(l, digits);
	if (strlen(digits) == 11 && accept(l, "eE")) {
		accept(l, "+-");
		accept_run(l, "0123456789_");
	}
	if (strlen(digits) == 23 && accept(l, "pP")) {
		accept(l, "+-");
		accept_run(l, "0123456789_");
	}
	accept(l, "i");
	if (peekc(l) >= 0 && is_alnum(peekc(l))) {
		l->pos++;
		return false;
	}
	return true;
}

/* field (after '.') or variable (after '$') */
static bool lex_field_or_var(struct lexer *l, enum tok_kind k)
{
	if (at_terminator(l)) {
		emit(l, k == T_VARIABLE ? T_VARIABLE : T_DOT);
		return true;
	}
	int c;
	while ((c = peekc(l)) >= 0 && is_alnum(c))
		l->pos++;
	if (!at_terminator(l)) {
		lex_error(l, km_arena_printf(l->a, "bad character %s", fmt_rune(l->a, c)));
		return false;
	}
	emit(l, k);
	return true;
}

static bool lex_quoted(struct lexer *l, int q, const char *msg)
{
	for (;;) {
		int c = nextc(l);
		if (c == '\\' && q != '`') {
			c = nextc(l);
			if (c >= 0 && c != '\n')
				continue;
		}
		if (c < 0 || (c == '\n' && q != '`')) {
			lex_error(l, msg);
			return false;
		}
		if (c == q)
			break;
	}
	emit(l, q == '"' ? T_STRING : q == '`' ? T_RAW : T_CHARCONST);
	return true;
}

/* One step inside an action. Returns 1 to continue, 0 when the action ended
 * (back to text), -1 after an error. */
static int lex_action(struct lexer *l)
{
	bool trim;
	if (at_right_delim(l, &trim)) {
		if (l->paren_depth) {
			lex_error(l, "unclosed left paren");
			return -1;
		}
		if (trim)
			l->pos += 2;
		l->start = l->pos;
		l->pos += 2;
		emit(l, T_RIGHT);
		if (trim)
			l->pos = l->start = skip_spaces(l, l->pos);
		return 0;
	}
	int c = nextc(l);
	if (c < 0) {
		lex_error(l, "unclosed action");
		return -1;
	}
	if (is_space(c)) {
		size_t n = 0;
		l->pos--;
		while (peekc(l) >= 0 && is_space(peekc(l))) {
			l->pos++;
			n++;
		}
		/* a lone space before "-}}" belongs to the delimiter */
		if (right_trim_marker(l, l->pos - 1) && has_prefix_at(l, l->pos + 1, "}}")) {
			l->pos--;
			if (n == 1)
				return 1;
		}
		emit(l, T_SPACE);
		return 1;
	}
	switch (c) {
	case '=': emit(l, T_ASSIGN); return 1;
	case ':':
		if (nextc(l) != '=') {
			lex_error(l, "expected :=");
			return -1;
		}
		emit(l, T_DECLARE);
		return 1;
	case '|': emit(l, T_PIPE); return 1;
	case '"': return lex_quoted(l, '"', "unterminated quoted string") ? 1 : -1;
	case '`': return lex_quoted(l, '`', "unterminated raw quoted string") ? 1 : -1;
	case '\'': return lex_quoted(l, '\'', "unterminated character constant") ? 1 : -1;
	case '$': return lex_field_or_var(l, T_VARIABLE) ? 1 : -1;
	case '(':
		l->paren_depth++;
		emit(l, T_LPAREN);
		return 1;
	case ')':
		if (--l->paren_depth < 0) {
			lex_error(l, "unexpected right paren");
			return -1;
		}
		emit(l, T_RPAREN);
		return 1;
	default: break;
	}
	if (c == '.' && l->pos < l->in.len && !(peekc(l) >= '0' && peekc(l) <= '9'))
		return lex_field_or_var(l, T_FIELD) ? 1 : -1;
	if (c == '.' || c == '+' || c == '-' || (c >= '0' && c <= '9')) {
		l->pos--;
		if (!scan_number(l)) {
			struct km_str s = {l->in.ptr + l->start, l->pos - l->start};
			lex_error(l, km_arena_printf(l->a, "bad number syntax: \"%.*s\"",
						     KM_STR_FMT(s)));
			return -1;
		}
		emit(l, T_NUMBER);
		return 1;
	}
	if (is_alnum(c)) {
		int d;
		while ((d = peekc(l)) >= 0 && is_alnum(d))
			l->pos++;
		if (!at_terminator(l)) {
			lex_error(l, km_arena_printf(l->a, "bad character %s", fmt_rune(l->a, d)));
			return -1;
		}
		struct km_str w = {l->in.ptr + l->start, l->pos - l->start};
		enum tok_kind k = T_IDENT;
		for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
			if (km_str_eqc(w, keywords[i].word))
				k = keywords[i].kind;
		if (km_str_eqc(w, "true") || km_str_eqc(w, "false"))
			k = T_BOOL;
		emit(l, k);
		return 1;
	}
	if (c >= 0x20 && c < 0x7f) {
		emit(l, T_CHAR);
		return 1;
	}
	lex_error(l,
		  km_arena_printf(l->a, "unrecognized character in action: %s", fmt_rune(l->a, c)));
	return -1;
}

static void lex_all(struct lexer *l)
{
	bool done = false;
	while (!done) {
		if (!lex_text(l, &done))
			continue;
		int r;
		while ((r = lex_action(l)) > 0)
			;
		if (r < 0)
			done = true;
	}
}

/* ---- parse tree ---------------------------------------------------------------- */

enum arg_kind {
	A_FIELD,
	A_IDENT,
	A_STRING,
	A_NUMBER,
	A_BOOL,
	A_NIL,
	A_DOT,
	A_VAR,
	A_PIPE,
	A_CHAIN
};

struct pipe;

struct arg {
	enum arg_kind kind;
	struct km_str text; /* source form: ".A.B", "label", "\"k\"" */
	struct km_str str;  /* A_STRING: unquoted value */
	size_t pos;
	struct pipe *pipe; /* A_PIPE */
};

struct cmd {
	struct arg *args;
	size_t n, cap;
	size_t pos;
};

struct pipe {
	struct cmd *cmds;
	size_t n, cap;
	size_t ndecl;
	size_t pos;
};

enum node_kind {
	N_TEXT,
	N_ACTION,
	N_CONTROL,
	N_END,
	N_ELSE
};

struct node {
	enum node_kind kind;
	struct km_str text; /* N_TEXT; N_CONTROL keyword */
	struct pipe *pipe;  /* N_ACTION */
	size_t pos;
};

struct km_gotemplate {
	struct km_arena *a;
	const char *name;
	struct km_str text;
	struct node *nodes;
	size_t n, cap;
};

struct parser {
	struct km_arena *a;
	const char *name;
	const char *const *funcs;
	struct tok *toks;
	size_t n, i;
	int line, action_line, range_depth;
	struct km_str *vars;
	size_t nvars, capvars;
	const char *err;
};

#define GROW(a, arr, n, cap)                                                         \
	do {                                                                         \
		if ((n) == (cap)) {                                                  \
			size_t nc_ = (cap) ? (cap)*2 : 4;                            \
			(arr) = km_arena_realloc((a), (arr), (cap) * sizeof(*(arr)), \
						 nc_ * sizeof(*(arr)));              \
			(cap) = nc_;                                                 \
		}                                                                    \
	} while (0)

static void errorf(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void errorf(struct parser *p, const char *fmt, ...)
{
	if (p->err)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *m = km_arena_vprintf(p->a, fmt, ap);
	va_end(ap);
	p->err = km_arena_printf(p->a, "template: %s:%d: %s", p->name, p->line, m);
}

static struct tok *next(struct parser *p)
{
	struct tok *t = &p->toks[p->i < p->n ? p->i : p->n - 1];
	if (p->i < p->n)
		p->i++;
	p->line = t->line;
	return t;
}

static void backup(struct parser *p)
{
	if (p->i > 0)
		p->i--;
}

static struct tok *peek(struct parser *p)
{
	struct tok *t = next(p);
	backup(p);
	return t;
}

static struct tok *next_non_space(struct parser *p)
{
	struct tok *t;
	do
		t = next(p);
	while (t->kind == T_SPACE);
	return t;
}

static struct tok *peek_non_space(struct parser *p)
{
	struct tok *t = next_non_space(p);
	backup(p);
	return t;
}

/* strconv.Quote of <s>, cut to <max> runes first when max > 0 (Go's %.10q) */
static const char *go_quote(struct km_arena *a, struct km_str s, size_t max)
{
	struct km_buf b = KM_BUF_INIT;
	km_buf_putc(&b, '"');
	size_t runes = 0;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if ((c & 0xc0) != 0x80 && max && runes++ == max)
			break;
		if (c == '"' || c == '\\')
			km_buf_printf(&b, "\\%c", c);
		else if (c == '\n')
			km_buf_puts(&b, "\\n");
		else if (c == '\t')
			km_buf_puts(&b, "\\t");
		else if (c == '\r')
			km_buf_puts(&b, "\\r");
		else if (c < 0x20 || c == 0x7f)
			km_buf_printf(&b, "\\x%02x", c);
		else
			km_buf_putc(&b, (char)c);
	}
	km_buf_putc(&b, '"');
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

/* Go's item.String() */
static const char *tok_string(struct parser *p, const struct tok *t)
{
	if (t->kind == T_EOF)
		return "EOF";
	if (t->kind == T_ERROR)
		return km_arena_strndup(p->a, t->val.ptr, t->val.len);
	if (t->kind > T_KEYWORD)
		return km_arena_printf(p->a, "<%.*s>", KM_STR_FMT(t->val));
	if (t->val.len > 10)
		return km_arena_printf(p->a, "%s...", go_quote(p->a, t->val, 10));
	return go_quote(p->a, t->val, 0);
}

static void unexpected(struct parser *p, const struct tok *t, const char *context)
{
	if (t->kind == T_ERROR) {
		const char *extra = "";
		if (p->action_line && p->action_line != t->line) {
			bool action = km_str_has_suffix(t->val, " action");
			extra = km_arena_printf(p->a, "%s started at %s:%d",
						action ? "" : " in action", p->name,
						p->action_line);
		}
		errorf(p, "%.*s%s", KM_STR_FMT(t->val), extra);
		return;
	}
	errorf(p, "unexpected %s in %s", tok_string(p, t), context);
}

static bool has_function(const struct parser *p, struct km_str name)
{
	static const char *const builtins[] = {"and",    "call",    "html",     "index", "slice",
					       "js",     "len",     "not",      "or",    "print",
					       "printf", "println", "urlquery", "eq",    "ge",
					       "gt",     "le",      "lt",       "ne",    NULL};
	for (const char *const *b = builtins; *b; b++)
		if (km_str_eqc(name, *b))
			return true;
	for (const char *const *f = p->funcs; f && *f; f++)
		if (km_str_eqc(name, *f))
			return true;
	return false;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void put_utf8(struct km_buf *b, unsigned long r)
{
	if (r < 0x80) {
		km_buf_putc(b, (char)r);
	} else if (r < 0x800) {
		km_buf_putc(b, (char)(0xc0 | (r >> 6)));
		km_buf_putc(b, (char)(0x80 | (r & 0x3f)));
	} else if (r < 0x10000) {
		km_buf_putc(b, (char)(0xe0 | (r >> 12)));
		km_buf_putc(b, (char)(0x80 | ((r >> 6) & 0x3f)));
		km_buf_putc(b, (char)(0x80 | (r & 0x3f)));
	} else {
		km_buf_putc(b, (char)(0xf0 | (r >> 18)));
		km_buf_putc(b, (char)(0x80 | ((r >> 12) & 0x3f)));
		km_buf_putc(b, (char)(0x80 | ((r >> 6) & 0x3f)));
		km_buf_putc(b, (char)(0x80 | (r & 0x3f)));
	}
}

/* strconv.Unquote for "..." and `...`; false on a bad escape ("invalid syntax") */
static bool go_unquote(struct km_arena *a, struct km_str q, struct km_str *out)
{
	if (q.len < 2)
		return false;
	if (q.ptr[0] == '`') {
		*out = (struct km_str){q.ptr + 1, q.len - 2};
		return true;
	}
	struct km_buf b = KM_BUF_INIT;
	bool ok = true;
	for (size_t i = 1; ok && i + 1 < q.len; i++) {
		char c = q.ptr[i];
		if (c != '\\') {
			km_buf_putc(&b, c);
			continue;
		}
		if (++i + 1 >= q.len) {
			ok = false;
			break;
		}
		c = q.ptr[i];
		static const char esc_in[] = "abfnrtv\\\"", esc_out[] = "\a\b\f\n\r\t\v\\\"";
		const char *e = strchr(esc_in, c);
		if (c && e) {
			km_buf_putc(&b, esc_out[e - esc_in]);
		} else if (c == 'x' || c == 'u' || c == 'U') {
			size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
			unsigned long v = 0;
			for (size_t k = 0; k < n; k++) {
				int h = i + 1 + k < q.len - 1 ? hexval(q.ptr[i + 1 + k]) : -1;
				if (h < 0) {
					ok = false;
					break;
				}
				v = v * 16 + (unsigned long)h;
			}
			i += n;
			if (!ok || (c != 'x' && (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))))
				ok = false;
			else if (c == 'x')
				km_buf_putc(&b, (char)v);
			else
				put_utf8(&b, v);
		} else if (c >= '0' && c <= '7') {
			unsigned v = 0;
			for (size_t k = 0; k < 3; k++) {
				char d = i + k < q.len - 1 ? q.ptr[i + k] : 0;
				if (d < '0' || d > '7') {
					ok = false;
					break;
				}
				v = v * 8 + (unsigned)(d - '0');
			}
			i += 2;
			if (!ok || v > 255)
				ok = false;
			else
				km_buf_putc(&b, (char)v);
		} else {
			ok = false;
		}
	}
	if (ok)
		*out = (struct km_str){km_arena_strndup(a, km_buf_cstr(&b), b.len), b.len};
	km_buf_fini(&b);
	return ok;
}

/* Go's Node.String() for "unexpected . after term %q" */
static struct km_str arg_string(const struct arg *x)
{
	switch (x->kind) {
	case A_NIL: return KM_STR("nil");
	case A_DOT: return KM_STR(".");
	default: return x->text;
	}
}

static struct pipe *pipeline(struct parser *p, const char *context, enum tok_kind end);

static bool digit_of(int c, int base)
{
	int v = hexval(c);
	return v >= 0 && v < base;
}

/* what strconv accepts for a number token: integer or float, any Go base
 * prefix, '_' separators, an optional imaginary 'i' */
static bool valid_number(struct km_str s)
{
	size_t i = 0, len = s.len;
	if (i < len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
		i++;
	if (len > i && s.ptr[len - 1] == 'i')
		len--;
	int base = 10;
	if (len - i >= 2 && s.ptr[i] == '0' && strchr("xXoObB", s.ptr[i + 1]) && s.ptr[i + 1]) {
		char b = s.ptr[i + 1];
		base = (b == 'x' || b == 'X') ? 16 : (b == 'o' || b == 'O') ? 8 : 2;
		i += 2;
	}
	size_t mant = 0;
	bool dot = false, exp = false;
	for (; i < len; i++) {
		char c = s.ptr[i];
		if (c == '_')
			continue;
		if (digit_of(c, base))
			mant++;
		else if (c == '.' && !dot && (base == 10 || base == 16))
			dot = true;
		else
			break;
	}
	if (mant == 0)
		return false;
	if (i < len) {
		char c = s.ptr[i];
		if (!((base == 10 && (c == 'e' || c == 'E')) ||
		      (base == 16 && (c == 'p' || c == 'P'))))
			return false;
		exp = true;
		i++;
		if (i < len && (s.ptr[i] == '+' || s.ptr[i] == '-'))
			i++;
		size_t d = 0;
		while (i < len && ((s.ptr[i] >= '0' && s.ptr[i] <= '9') || s.ptr[i] == '_'))
			d += s.ptr[i++] != '_';
		if (!d)
			return false;
	}
	if (base == 16 && dot && !exp)
		return false;
	return i == len;
}

static bool term(struct parser *p, struct arg *out)
{
	struct tok *t = next_non_space(p);
	*out = (struct arg){.text = t->val, .pos = t->pos};
	switch (t->kind) {
	case T_IDENT:
		if (!has_function(p, t->val))
			errorf(p, "function %s not defined", go_quote(p->a, t->val, 0));
		out->kind = A_IDENT;
		return true;
	case T_DOT: out->kind = A_DOT; return true;
	case T_NIL: out->kind = A_NIL; return true;
	case T_VARIABLE: {
		bool known = false;
		for (size_t i = 0; i < p->nvars; i++)
			known = known || km_str_eq(p->vars[i], t->val);
		if (!known)
			errorf(p, "undefined variable %s", go_quote(p->a, t->val, 0));
		out->kind = A_VAR;
		return true;
	}
	case T_FIELD: out->kind = A_FIELD; return true;
	case T_BOOL: out->kind = A_BOOL; return true;
	case T_CHARCONST:
	case T_NUMBER:
		if (t->kind == T_NUMBER && !valid_number(t->val))
			errorf(p, "illegal number syntax: %s", go_quote(p->a, t->val, 0));
		out->kind = A_NUMBER;
		return true;
	case T_LPAREN:
		out->kind = A_PIPE;
		out->pipe = pipeline(p, "parenthesized pipeline", T_RPAREN);
		return true;
	case T_STRING:
	case T_RAW:
		out->kind = A_STRING;
		if (!go_unquote(p->a, t->val, &out->str))
			errorf(p, "invalid syntax");
		return true;
	default: backup(p); return false;
	}
}

static bool operand(struct parser *p, struct arg *out)
{
	if (!term(p, out) || p->err)
		return false;
	if (peek(p)->kind != T_FIELD)
		return true;
	size_t end = out->pos + out->text.len;
	while (peek(p)->kind == T_FIELD) {
		struct tok *f = next(p);
		end = f->pos + f->val.len;
	}
	struct km_str chain = {out->text.ptr, end - out->pos};
	switch (out->kind) {
	case A_FIELD:
	case A_VAR: out->text = chain; break;
	case A_BOOL:
	case A_STRING:
	case A_NUMBER:
	case A_NIL:
	case A_DOT:
		errorf(p, "unexpected . after term %s", go_quote(p->a, arg_string(out), 0));
		break;
	default:
		out->kind = A_CHAIN;
		out->text = chain;
		break;
	}
	return true;
}

static struct cmd command(struct parser *p)
{
	struct cmd c = {.pos = peek_non_space(p)->pos};
	for (;;) {
		peek_non_space(p);
		struct arg x;
		bool have = operand(p, &x);
		if (p->err)
			return c;
		if (have) {
			GROW(p->a, c.args, c.n, c.cap);
			c.args[c.n++] = x;
		}
		struct tok *t = next(p);
		if (t->kind == T_SPACE)
			continue;
		if (t->kind == T_RIGHT || t->kind == T_RPAREN)
			backup(p);
		else if (t->kind != T_PIPE)
			unexpected(p, t, "operand");
		break;
	}
	if (!p->err && c.n == 0)
		errorf(p, "empty command");
	return c;
}

static void add_var(struct parser *p, struct km_str v)
{
	GROW(p->a, p->vars, p->nvars, p->capvars);
	p->vars[p->nvars++] = v;
}

static struct pipe *pipeline(struct parser *p, const char *context, enum tok_kind end)
{
	struct pipe *pp = km_arena_alloc(p->a, sizeof(*pp));
	memset(pp, 0, sizeof(*pp));
	pp->pos = peek_non_space(p)->pos;
	for (;;) { /* declarations */
		struct tok *v = peek_non_space(p);
		if (v->kind != T_VARIABLE)
			break;
		size_t at = p->i;
		next(p);
		struct tok *nx = peek_non_space(p);
		if (nx->kind == T_ASSIGN || nx->kind == T_DECLARE) {
			next_non_space(p);
			pp->ndecl++;
			add_var(p, v->val);
			break;
		}
		if (nx->kind == T_CHAR && km_str_eqc(nx->val, ",")) {
			next_non_space(p);
			pp->ndecl++;
			add_var(p, v->val);
			if (strcmp(context, "range") == 0 && pp->ndecl < 2) {
				enum tok_kind k = peek_non_space(p)->kind;
				if (k == T_VARIABLE || k == T_RIGHT || k == T_RPAREN)
					continue;
				errorf(p, "range can only initialize variables");
				return pp;
			}
			errorf(p, "too many declarations in %s", context);
			return pp;
		}
		p->i = at;
		break;
	}
	for (;;) {
		struct tok *t = next_non_space(p);
		if (t->kind == end) {
			if (pp->n == 0) {
				errorf(p, "missing value for %s", context);
				return pp;
			}
			for (size_t i = 1; i < pp->n; i++) {
				enum arg_kind k = pp->cmds[i].args[0].kind;
				if (k == A_BOOL || k == A_DOT || k == A_NIL || k == A_NUMBER ||
				    k == A_STRING) {
					errorf(p, "non executable command in pipeline stage %zu",
					       i + 1);
					break;
				}
			}
			return pp;
		}
		switch (t->kind) {
		case T_BOOL:
		case T_CHARCONST:
		case T_DOT:
		case T_FIELD:
		case T_IDENT:
		case T_NUMBER:
		case T_NIL:
		case T_RAW:
		case T_STRING:
		case T_VARIABLE:
		case T_LPAREN: {
			backup(p);
			struct cmd c = command(p);
			if (p->err)
				return pp;
			GROW(p->a, pp->cmds, pp->n, pp->cap);
			pp->cmds[pp->n++] = c;
			break;
		}
		default: unexpected(p, t, context); return pp;
		}
	}
}

static struct node text_or_action(struct parser *p);

/* Parses nodes up to {{end}} or {{else}}; returns that node's kind. */
static enum node_kind item_list(struct parser *p)
{
	while (!p->err && peek_non_space(p)->kind != T_EOF) {
		struct node n = text_or_action(p);
		if (p->err)
			return N_END;
		if (n.kind == N_END || n.kind == N_ELSE)
			return n.kind;
	}
	errorf(p, "unexpected EOF");
	return N_END;
}

static void expect(struct parser *p, enum tok_kind k, const char *context)
{
	struct tok *t = next_non_space(p);
	if (t->kind != k)
		unexpected(p, t, context);
}

static void parse_control(struct parser *p, const char *context)
{
	size_t nvars = p->nvars;
	pipeline(p, context, T_RIGHT);
	bool range = strcmp(context, "range") == 0;
	if (p->err)
		return;
	p->range_depth += range;
	enum node_kind next_kind = item_list(p);
	p->range_depth -= range;
	if (!p->err && next_kind == N_ELSE) {
		enum tok_kind k = peek(p)->kind;
		if ((strcmp(context, "if") == 0 && k == T_IF) ||
		    (strcmp(context, "with") == 0 && k == T_WITH)) {
			next(p);
			parse_control(p, context);
		} else if (item_list(p) != N_END) {
			errorf(p, "expected end; found {{else}}");
		}
	}
	p->nvars = nvars;
}

static void template_name(struct parser *p, const char *context)
{
	struct tok *t = next_non_space(p);
	struct km_str s;
	if (t->kind != T_STRING && t->kind != T_RAW)
		unexpected(p, t, context);
	else if (!go_unquote(p->a, t->val, &s))
		errorf(p, "invalid syntax");
}

static struct node action(struct parser *p)
{
	struct tok *t = next_non_space(p);
	struct node n = {.kind = N_CONTROL, .text = t->val, .pos = t->pos};
	switch (t->kind) {
	case T_BLOCK:
		template_name(p, "block clause");
		if (!p->err)
			pipeline(p, "block clause", T_RIGHT);
		if (!p->err && item_list(p) != N_END)
			errorf(p, "unexpected {{else}} in block clause");
		return n;
	case T_BREAK:
	case T_CONTINUE: {
		const char *ctx = t->kind == T_BREAK ? "{{break}}" : "{{continue}}";
		struct tok *r = next_non_space(p);
		if (r->kind != T_RIGHT)
			unexpected(p, r, ctx);
		else if (p->range_depth == 0)
			errorf(p, "%s outside {{range}}", ctx);
		return n;
	}
	case T_ELSE: {
		enum tok_kind k = peek_non_space(p)->kind;
		if (k != T_IF && k != T_WITH)
			expect(p, T_RIGHT, "else");
		n.kind = N_ELSE;
		return n;
	}
	case T_END:
		expect(p, T_RIGHT, "end");
		n.kind = N_END;
		return n;
	case T_IF: parse_control(p, "if"); return n;
	case T_RANGE: parse_control(p, "range"); return n;
	case T_WITH: parse_control(p, "with"); return n;
	case T_TEMPLATE:
		template_name(p, "template clause");
		if (!p->err && next_non_space(p)->kind != T_RIGHT) {
			backup(p);
			pipeline(p, "template clause", T_RIGHT);
		}
		return n;
	default: break;
	}
	backup(p);
	n.kind = N_ACTION;
	n.pos = peek(p)->pos;
	n.pipe = pipeline(p, "command", T_RIGHT);
	return n;
}

static struct node text_or_action(struct parser *p)
{
	struct tok *t = next_non_space(p);
	struct node n = {.kind = N_TEXT, .text = t->val, .pos = t->pos};
	if (t->kind == T_TEXT)
		return n;
	if (t->kind == T_LEFT) {
		p->action_line = t->line;
		n = action(p);
		p->action_line = 0;
		return n;
	}
	unexpected(p, t, "input");
	return n;
}

static void parse_define(struct parser *p)
{
	const char *ctx = "define clause";
	template_name(p, ctx);
	if (!p->err)
		expect(p, T_RIGHT, ctx);
	if (!p->err && item_list(p) != N_END)
		errorf(p, "unexpected {{else}} in %s", ctx);
}

int km_gotemplate_parse(struct km_arena *a, const char *name, struct km_str text,
			const char *const *funcs, struct km_gotemplate **out, const char **err)
{
	struct lexer l = {.a = a, .in = text};
	lex_all(&l);
	struct km_gotemplate *t = km_arena_alloc(a, sizeof(*t));
	memset(t, 0, sizeof(*t));
	t->a = a;
	t->name = km_arena_strdup(a, name ? name : "");
	t->text = text;
	struct parser p = {.a = a, .name = t->name, .funcs = funcs, .toks = l.toks, .n = l.n};
	add_var(&p, KM_STR("$"));
	while (!p.err && peek(&p)->kind != T_EOF) {
		if (peek(&p)->kind == T_LEFT) {
			size_t at = p.i;
			next(&p);
			if (next_non_space(&p)->kind == T_DEFINE) {
				parse_define(&p);
				continue;
			}
			p.i = at;
		}
		struct node n = text_or_action(&p);
		if (p.err)
			break;
		if (n.kind == N_END || n.kind == N_ELSE) {
			errorf(&p, "unexpected %s", n.kind == N_END ? "{{end}}" : "{{else}}");
			break;
		}
		GROW(a, t->nodes, t->n, t->cap);
		t->nodes[t->n++] = n;
	}
	if (p.err) {
		*err = p.err;
		return -KM_E_PARSE;
	}
	*out = t;
	return 0;
}

/* ---- rendering ------------------------------------------------------------------ */

struct render {
	const struct km_gotemplate *t;
	km_gotemplate_lookup_fn *lookup;
	void *ctx;
	const char *err;
};

/* Go's state.errorf: "template: name:line:col: executing \"name\" at <node>: msg" */
static void exec_error(struct render *r, size_t pos, struct km_str node, const char *msg)
{
	if (r->err)
		return;
	const struct km_gotemplate *t = r->t;
	int line = 1;
	size_t col = pos;
	for (size_t i = 0; i < pos && i < t->text.len; i++)
		if (t->text.ptr[i] == '\n') {
			line++;
			col = pos - i - 1;
		}
	const char *at = node.len > 20 ? km_arena_printf(t->a, "%.20s...", node.ptr) :
					 km_arena_strndup(t->a, node.ptr, node.len);
	r->err = km_arena_printf(t->a, "template: %s:%d:%zu: executing \"%s\" at <%s>: %s", t->name,
				 line, col, t->name, at, msg);
}

static bool eval_pipe(struct render *r, const struct pipe *pp, struct km_str *val);

static bool eval_arg(struct render *r, const struct arg *x, struct km_str *val)
{
	switch (x->kind) {
	case A_STRING: *val = x->str; return true;
	case A_NUMBER:
	case A_BOOL: *val = x->text; return true;
	case A_FIELD: {
		struct km_str name = {x->text.ptr + 1, x->text.len - 1};
		const char *e = r->lookup(r->ctx, KM_GOTEMPLATE_FIELD, name, NULL, 0, val);
		if (e)
			exec_error(r, x->pos, x->text, e);
		return e == NULL;
	}
	case A_PIPE: return eval_pipe(r, x->pipe, val);
	default:
		exec_error(r, x->pos, arg_string(x), "not supported by this template subset");
		return false;
	}
}

static bool eval_cmd(struct render *r, const struct cmd *c, const struct km_str *prev,
		     struct km_str *val)
{
	const struct arg *fn = &c->args[0];
	if (fn->kind == A_FIELD && (c->n > 1 || prev)) {
		exec_error(r, fn->pos, fn->text,
			   km_arena_printf(r->t->a,
					   "%.*s has arguments but cannot be invoked as function",
					   (int)fn->text.len - 1, fn->text.ptr + 1));
		return false;
	}
	if (fn->kind != A_IDENT) {
		if (c->n > 1 || prev) {
			exec_error(r, fn->pos, arg_string(fn),
				   km_arena_printf(r->t->a,
						   "can't give argument to non-function %.*s",
						   KM_STR_FMT(arg_string(fn))));
			return false;
		}
		return eval_arg(r, fn, val);
	}
	size_t n = c->n - 1 + (prev ? 1 : 0);
	struct km_str *args = km_arena_alloc(r->t->a, (n + 1) * sizeof(*args));
	for (size_t i = 1; i < c->n; i++)
		if (!eval_arg(r, &c->args[i], &args[i - 1]))
			return false;
	if (prev)
		args[n - 1] = *prev;
	const char *e = r->lookup(r->ctx, KM_GOTEMPLATE_FUNC, fn->text, args, n, val);
	if (e)
		exec_error(r, fn->pos, fn->text,
			   km_arena_printf(r->t->a, "error calling %.*s: %s", KM_STR_FMT(fn->text),
					   e));
	return e == NULL;
}

static bool eval_pipe(struct render *r, const struct pipe *pp, struct km_str *val)
{
	for (size_t i = 0; i < pp->n; i++)
		if (!eval_cmd(r, &pp->cmds[i], i ? val : NULL, val))
			return false;
	return true;
}

int km_gotemplate_render(const struct km_gotemplate *t, km_gotemplate_lookup_fn *lookup, void *ctx,
			 struct km_buf *out, const char **err)
{
	struct render r = {t, lookup, ctx, NULL};
	for (size_t i = 0; i < t->n && !r.err; i++) {
		const struct node *n = &t->nodes[i];
		struct km_str v;
		if (n->kind == N_TEXT) {
			km_buf_put_str(out, n->text);
		} else if (n->kind == N_ACTION && n->pipe->ndecl == 0) {
			if (eval_pipe(&r, n->pipe, &v))
				km_buf_put_str(out, v);
		} else {
			exec_error(&r, n->pos, n->kind == N_ACTION ? KM_STR(":=") : n->text,
				   "not supported by this template subset");
		}
	}
	if (r.err) {
		*err = r.err;
		return -KM_E_INVALID;
	}
	return 0;
}
