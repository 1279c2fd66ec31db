/* SPDX-License-Identifier: Apache-2.0 */
/* A subset of Go's text/template: the whole lexer and parser grammar with
 * Go's parse error messages, and rendering of text, fields ({{ .Mesh }}) and
 * function calls ({{ label "k" }}, {{ .A | f }}) through a caller lookup.
 * Control structures parse but do not render. A parsed template and every
 * message live in the arena given to km_gotemplate_parse. */
#ifndef KM_RESOURCE_GOTEMPLATE_H
#define KM_RESOURCE_GOTEMPLATE_H

#include <stddef.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"

struct km_gotemplate;

/* Parses <text> as Go's template.New(<name>).Funcs(<funcs>).Parse(text) would.
 * <funcs> is the NULL-terminated list of function names the caller provides
 * at render time (Go's builtins are always known; NULL means none). Returns 0
 * and sets <*out>, or -KM_E_PARSE and sets <*err> to Go's message
 * ("template: :1: function \"x\" not defined"). Both live in <a>. */
int km_gotemplate_parse(struct km_arena *a, const char *name, struct km_str text,
			const char *const *funcs, struct km_gotemplate **out, const char **err);

enum km_gotemplate_ref {
	KM_GOTEMPLATE_FIELD, /* {{ .Name }} or {{ .A.B }}: <name> is "Name" / "A.B" */
	KM_GOTEMPLATE_FUNC,  /* {{ fn "a" .B }}: <name> is "fn", <args> evaluated */
};

/* Supplies one value while rendering. Sets <*value> (borrowed until render
 * returns) and returns NULL, or returns an error message: for a field Go's
 * tail ("can't evaluate field X in type T"), for a function the function's own
 * error (it is wrapped as Go does: "error calling fn: <msg>"). In a pipeline
 * the previous stage's value is the last of <args>. */
typedef const char *km_gotemplate_lookup_fn(void *ctx, enum km_gotemplate_ref kind,
					    struct km_str name, const struct km_str *args,
					    size_t nargs, struct km_str *value);

/* Renders <t> into <out>. Returns 0, or -KM_E_INVALID with <*err> set (in the
 * template's arena) to Go's execution message "template: <name>:1:<col>:
 * executing \"<name>\" at <.X>: <msg>"; control structures, variables and
 * dot are reported the same way as unsupported. */
int km_gotemplate_render(const struct km_gotemplate *t, km_gotemplate_lookup_fn *lookup, void *ctx,
			 struct km_buf *out, const char **err);

#endif
